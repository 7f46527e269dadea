//! One partition's replica set, leader and in-sync set ([`PartitionState`]), and the rules
//! that change them: elections when brokers come and go (what KRaft's controller decides), the
//! leader's own in-sync set changes (Kafka's AlterPartition), preferred-leader elections, and
//! reassignments.
//!
//! Everything here is a pure function of the partition and the live brokers, so every node
//! reaches the same result from the same log.

use serde::{Deserialize, Serialize};

use crate::codes;
use crate::command::Rejection;

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The broker that leads the partition; `None` while no in-sync replica is live.
    pub leader: Option<u64>,
    /// The replica set, preferred leader first.
    pub replicas: Vec<u64>,
    /// The in-sync replicas: every one holds every acknowledged write. Never empty: when the
    /// last in-sync replica dies it stays listed, so it is the one elected when it returns.
    pub isr: Vec<u64>,
    /// Bumped whenever the leader changes, so a stale leader's writes are fenced.
    pub leader_epoch: i32,
    /// Bumped on every change (leader or in-sync set); an in-sync set change names the
    /// version it starts from, so a stale one is refused.
    pub partition_epoch: i32,
    /// A reassignment in progress (Kafka's adding and removing replicas): `replicas` holds
    /// both the old and the new set until every new replica is in sync.
    pub adding: Vec<u64>,
    pub removing: Vec<u64>,
}

/// Why an election moves leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Election {
    /// Brokers came or went: replace a leader that is not live, drop dead followers from the
    /// in-sync set, elect a leader for a partition that has none.
    Liveness { unclean: bool },
    /// The broker restarted (a new incarnation): it may have lost unflushed data it led, so
    /// its partitions get a new epoch, led by another in-sync replica when there is one.
    Restarted(u64),
}

impl PartitionState {
    pub(super) fn new(replicas: Vec<u64>) -> Self {
        PartitionState {
            leader: replicas.first().copied(),
            isr: replicas.clone(),
            replicas,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// Starts moving the partition to `target` (leader first), replacing any move in
    /// progress. The new replicas join as followers; the move completes once all of them are
    /// in sync ([`PartitionState::finish_reassignment`]). Returns whether anything changed.
    pub(super) fn reassign(&mut self, target: &[u64], live: &impl Fn(u64) -> bool) -> bool {
        let original = self.without(&self.adding);
        let mut replicas = target.to_vec();
        replicas.extend(original.iter().filter(|r| !target.contains(r)));
        let adding: Vec<u64> = target
            .iter()
            .copied()
            .filter(|r| !original.contains(r))
            .collect();
        let removing: Vec<u64> = original
            .iter()
            .copied()
            .filter(|r| !target.contains(r))
            .collect();
        if replicas == self.replicas && adding == self.adding && removing == self.removing {
            return false;
        }
        // Replicas dropped by replacing an earlier move leave the in-sync set too.
        self.isr.retain(|r| replicas.contains(r));
        self.replicas = replicas;
        self.adding = adding;
        self.removing = removing;
        self.partition_epoch = self.partition_epoch.saturating_add(1);
        self.finish_reassignment(live);
        true
    }

    /// Gives up a move in progress: back to the original replicas.
    pub(super) fn cancel_reassignment(&mut self, live: &impl Fn(u64) -> bool) -> bool {
        if self.adding.is_empty() && self.removing.is_empty() {
            return false;
        }
        let original = self.without(&self.adding);
        self.adding.clear();
        self.removing.clear();
        self.reassign(&original, live)
    }

    /// Completes a move once every target replica is in sync: the replica set becomes the
    /// target, the removed replicas leave the in-sync set, and leadership moves into the
    /// target if it was outside.
    fn finish_reassignment(&mut self, live: &impl Fn(u64) -> bool) -> bool {
        if self.adding.is_empty() && self.removing.is_empty() {
            return false;
        }
        let target = self.without(&self.removing);
        if !target.iter().all(|r| self.isr.contains(r)) {
            return false;
        }
        self.replicas = target;
        self.isr.retain(|r| self.replicas.contains(r));
        self.adding.clear();
        self.removing.clear();
        if !self.leader.is_some_and(|l| self.replicas.contains(&l)) {
            let leader = self.first_live_in_sync(live, None);
            self.set_leader(leader);
        }
        self.partition_epoch = self.partition_epoch.saturating_add(1);
        true
    }

    /// Applies an election; returns whether anything changed.
    pub(super) fn elect(&mut self, election: Election, live: &impl Fn(u64) -> bool) -> bool {
        let before = self.clone();
        match election {
            Election::Liveness { unclean } => {
                let live_isr: Vec<u64> = self.isr.iter().copied().filter(|&r| live(r)).collect();
                if !live_isr.is_empty() {
                    self.isr = live_isr;
                }
                if !self.leader.is_some_and(live) {
                    let leader = self.first_live_in_sync(live, None).or_else(|| {
                        // An unclean election may lose acknowledged writes; only on request.
                        unclean
                            .then(|| self.replicas.iter().copied().find(|&r| live(r)))
                            .flatten()
                    });
                    if let Some(l) = leader.filter(|l| !self.isr.contains(l)) {
                        self.isr = vec![l];
                    }
                    self.set_leader(leader);
                }
            }
            Election::Restarted(broker) => {
                if self.leader == Some(broker) {
                    match self.first_live_in_sync(live, Some(broker)) {
                        Some(other) => self.set_leader(Some(other)),
                        None => self.leader_epoch = self.leader_epoch.saturating_add(1),
                    }
                }
            }
        }
        let changed = *self != before;
        if changed {
            self.partition_epoch = self.partition_epoch.saturating_add(1);
        }
        changed
    }

    /// Moves leadership to the preferred replica (the first) if it is live and in sync.
    /// Returns Kafka's ElectLeaders code for the partition.
    pub(super) fn elect_preferred(&mut self, live: &impl Fn(u64) -> bool) -> i16 {
        let Some(&preferred) = self.replicas.first() else {
            return codes::PREFERRED_LEADER_NOT_AVAILABLE;
        };
        if self.leader == Some(preferred) {
            return codes::ELECTION_NOT_NEEDED;
        }
        if !live(preferred) || !self.isr.contains(&preferred) {
            return codes::PREFERRED_LEADER_NOT_AVAILABLE;
        }
        self.set_leader(Some(preferred));
        self.partition_epoch = self.partition_epoch.saturating_add(1);
        codes::NONE
    }

    /// Elects a leader for a partition that has none, from its live replicas even if none of
    /// them is in sync (the elected one becomes the whole in-sync set). Returns Kafka's
    /// ElectLeaders code: a partition with a live leader needs no election.
    pub(super) fn elect_unclean(&mut self, live: &impl Fn(u64) -> bool) -> i16 {
        if self.leader.is_some_and(live) {
            return codes::ELECTION_NOT_NEEDED;
        }
        self.elect(Election::Liveness { unclean: true }, live);
        if self.leader.is_some() {
            codes::NONE
        } else {
            codes::ELIGIBLE_LEADERS_NOT_AVAILABLE
        }
    }

    /// The leader changes its in-sync set (Kafka's AlterPartition). Only the current leader at
    /// its current epoch may, starting from the current partition epoch; the new set must
    /// hold the leader, only replicas, and only live brokers among those it adds.
    pub(super) fn alter_isr(
        &mut self,
        leader: u64,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[u64],
        live: &impl Fn(u64) -> bool,
    ) -> Result<i32, Rejection> {
        if self.leader != Some(leader) {
            return Err(Rejection::new(
                codes::NOT_LEADER_OR_FOLLOWER,
                format!("broker {leader} does not lead the partition"),
            ));
        }
        if leader_epoch != self.leader_epoch {
            return Err(Rejection::new(
                codes::FENCED_LEADER_EPOCH,
                format!(
                    "leader epoch {leader_epoch} is not the current {}",
                    self.leader_epoch
                ),
            ));
        }
        if partition_epoch != self.partition_epoch {
            return Err(Rejection::new(
                codes::INVALID_UPDATE_VERSION,
                format!(
                    "partition epoch {partition_epoch} is not the current {}",
                    self.partition_epoch
                ),
            ));
        }
        let mut new: Vec<u64> = isr.to_vec();
        new.sort_unstable();
        new.dedup();
        let eligible = |r: &u64| self.replicas.contains(r) && (self.isr.contains(r) || live(*r));
        if !new.contains(&leader) || !new.iter().all(eligible) {
            return Err(Rejection::new(
                codes::INELIGIBLE_REPLICA,
                format!(
                    "in-sync set {isr:?} is not valid for replicas {:?}",
                    self.replicas
                ),
            ));
        }
        // Replica order, so answers look the same on every node.
        self.isr = self
            .replicas
            .iter()
            .copied()
            .filter(|r| new.contains(r))
            .collect();
        self.partition_epoch = self.partition_epoch.saturating_add(1);
        self.finish_reassignment(live);
        Ok(self.partition_epoch)
    }

    /// The replicas not in `excluded`, in order.
    fn without(&self, excluded: &[u64]) -> Vec<u64> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !excluded.contains(r))
            .collect()
    }

    /// Replicas that are not live (Metadata's offline replicas).
    pub fn offline(&self, live: &impl Fn(u64) -> bool) -> Vec<u64> {
        self.replicas
            .iter()
            .copied()
            .filter(|&r| !live(r))
            .collect()
    }

    fn first_live_in_sync(&self, live: &impl Fn(u64) -> bool, except: Option<u64>) -> Option<u64> {
        self.replicas
            .iter()
            .copied()
            .find(|&r| Some(r) != except && live(r) && self.isr.contains(&r))
    }

    fn set_leader(&mut self, leader: Option<u64>) {
        if leader != self.leader {
            self.leader = leader;
            self.leader_epoch = self.leader_epoch.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live_set(ids: &'static [u64]) -> impl Fn(u64) -> bool {
        move |id| ids.contains(&id)
    }

    #[test]
    fn a_dead_leader_is_replaced_from_the_in_sync_set() {
        let mut p = PartitionState::new(vec![1, 2, 3]);
        p.isr = vec![1, 3];
        assert!(p.elect(Election::Liveness { unclean: false }, &live_set(&[2, 3])));
        assert_eq!(
            (p.leader, p.isr.clone(), p.leader_epoch),
            (Some(3), vec![3], 1)
        );
        assert_eq!(p.partition_epoch, 1);
        // Nothing to do the second time.
        assert!(!p.elect(Election::Liveness { unclean: false }, &live_set(&[2, 3])));
    }

    #[test]
    fn the_last_in_sync_replica_stays_listed_and_is_elected_on_return() {
        let mut p = PartitionState::new(vec![1, 2]);
        p.isr = vec![1];
        assert!(p.elect(Election::Liveness { unclean: false }, &live_set(&[2])));
        assert_eq!((p.leader, p.isr.clone()), (None, vec![1]));
        assert_eq!(p.leader_epoch, 1, "losing the leader bumps the epoch too");
        assert!(p.elect(Election::Liveness { unclean: false }, &live_set(&[1, 2])));
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 2));
    }

    #[test]
    fn an_unclean_election_is_for_leaderless_partitions_with_a_live_replica() {
        let mut p = PartitionState::new(vec![1, 2]);
        assert_eq!(
            p.elect_unclean(&live_set(&[1, 2])),
            codes::ELECTION_NOT_NEEDED
        );
        p.isr = vec![1];
        p.elect(Election::Liveness { unclean: false }, &live_set(&[]));
        assert_eq!(p.leader, None);
        assert_eq!(
            p.elect_unclean(&live_set(&[])),
            codes::ELIGIBLE_LEADERS_NOT_AVAILABLE
        );
        let epoch = p.leader_epoch;
        assert_eq!(p.elect_unclean(&live_set(&[2])), codes::NONE);
        assert_eq!((p.leader, p.isr.clone()), (Some(2), vec![2]));
        assert_eq!(p.leader_epoch, epoch + 1);
    }

    #[test]
    fn unclean_election_only_when_allowed() {
        let mut p = PartitionState::new(vec![1, 2]);
        p.isr = vec![1];
        p.elect(Election::Liveness { unclean: false }, &live_set(&[2]));
        assert_eq!(p.leader, None);
        p.elect(Election::Liveness { unclean: true }, &live_set(&[2]));
        assert_eq!((p.leader, p.isr.clone()), (Some(2), vec![2]));
    }

    #[test]
    fn dead_followers_leave_the_in_sync_set() {
        let mut p = PartitionState::new(vec![1, 2, 3]);
        assert!(p.elect(Election::Liveness { unclean: false }, &live_set(&[1, 3])));
        assert_eq!(
            (p.leader, p.isr.clone(), p.leader_epoch),
            (Some(1), vec![1, 3], 0)
        );
    }

    #[test]
    fn a_restarted_leader_hands_over_or_takes_a_new_epoch() {
        let mut p = PartitionState::new(vec![1, 2, 3]);
        assert!(p.elect(Election::Restarted(1), &live_set(&[1, 2, 3])));
        assert_eq!((p.leader, p.leader_epoch), (Some(2), 1));
        let mut alone = PartitionState::new(vec![1]);
        assert!(alone.elect(Election::Restarted(1), &live_set(&[1])));
        assert_eq!((alone.leader, alone.leader_epoch), (Some(1), 1));
        // Another broker's restart leaves the partition alone.
        assert!(!alone.elect(Election::Restarted(2), &live_set(&[1])));
    }

    #[test]
    fn alter_isr_is_checked() {
        let live = live_set(&[1, 2, 3]);
        let mut p = PartitionState::new(vec![1, 2, 3]);
        let err = |r: Result<i32, Rejection>| r.unwrap_err().code;
        assert_eq!(
            err(p.alter_isr(2, 0, 0, &[2], &live)),
            codes::NOT_LEADER_OR_FOLLOWER
        );
        assert_eq!(
            err(p.alter_isr(1, 1, 0, &[1], &live)),
            codes::FENCED_LEADER_EPOCH
        );
        assert_eq!(
            err(p.alter_isr(1, 0, 5, &[1], &live)),
            codes::INVALID_UPDATE_VERSION
        );
        assert_eq!(
            err(p.alter_isr(1, 0, 0, &[2, 3], &live)),
            codes::INELIGIBLE_REPLICA
        );
        assert_eq!(
            err(p.alter_isr(1, 0, 0, &[1, 4], &live)),
            codes::INELIGIBLE_REPLICA
        );
        assert_eq!(p.alter_isr(1, 0, 0, &[3, 1], &live), Ok(1));
        assert_eq!(p.isr, vec![1, 3]);
        // A dead broker may not be added back.
        assert_eq!(
            err(p.alter_isr(1, 0, 1, &[1, 2, 3], &live_set(&[1, 3]))),
            codes::INELIGIBLE_REPLICA
        );
    }

    #[test]
    fn preferred_election() {
        let live = live_set(&[1, 2, 3]);
        let mut p = PartitionState::new(vec![1, 2, 3]);
        assert_eq!(p.elect_preferred(&live), codes::ELECTION_NOT_NEEDED);
        p.elect(Election::Liveness { unclean: false }, &live_set(&[2, 3]));
        assert_eq!(
            p.elect_preferred(&live),
            codes::PREFERRED_LEADER_NOT_AVAILABLE
        );
        p.isr = vec![1, 2, 3];
        assert_eq!(p.elect_preferred(&live), codes::NONE);
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 2));
    }

    #[test]
    fn a_reassignment_completes_once_the_new_replicas_are_in_sync() {
        let live = live_set(&[1, 2, 3, 4]);
        let mut p = PartitionState::new(vec![1, 2, 3]);
        assert!(p.reassign(&[4, 2, 3], &live));
        assert_eq!(
            (p.replicas.clone(), p.adding.clone(), p.removing.clone()),
            (vec![4, 2, 3, 1], vec![4], vec![1])
        );
        assert_eq!(
            p.leader,
            Some(1),
            "the old leader leads until the move completes"
        );
        // The leader adds 4 to the in-sync set: the move completes and 1 hands over.
        let epoch = p.partition_epoch;
        p.alter_isr(1, 0, epoch, &[1, 2, 3, 4], &live).unwrap();
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![4, 2, 3], vec![4, 2, 3])
        );
        assert!(p.adding.is_empty() && p.removing.is_empty());
        assert_eq!((p.leader, p.leader_epoch), (Some(4), 1));
        // Shrinking needs no catch-up.
        assert!(p.reassign(&[4, 2], &live));
        assert_eq!(
            (p.replicas.clone(), p.isr.clone()),
            (vec![4, 2], vec![4, 2])
        );
    }

    #[test]
    fn a_reassignment_can_be_cancelled() {
        let live = live_set(&[1, 2, 3, 4]);
        let mut p = PartitionState::new(vec![1, 2]);
        p.reassign(&[3, 4], &live);
        assert_eq!(p.replicas, vec![3, 4, 1, 2]);
        assert!(p.cancel_reassignment(&live));
        assert_eq!(
            (p.replicas.clone(), p.isr.clone(), p.leader),
            (vec![1, 2], vec![1, 2], Some(1))
        );
        assert!(!p.cancel_reassignment(&live));
    }
}
