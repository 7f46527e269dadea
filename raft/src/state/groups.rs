//! Consumer group writes on the image, and the placement epochs that fence them.
//!
//! Which broker coordinates a group follows from the live brokers
//! ([`crate::consumer_groups::coordinator_of`]). Each change of the live set starts a new
//! placement epoch; a coordinator names the epoch at which it loaded a group, and its writes
//! apply only if it coordinated the group under every placement since, so a coordinator that
//! lost the group (even briefly, without noticing) can never overwrite the new one's state.

use super::{reject, MetadataState};
use crate::codes;
use crate::command::{CommandOutput, CommandResult, Rejection};
use crate::consumer_groups::{
    self, ConsumerGroups, GroupCommit, GroupRecord, GROUP_STATE_MAX_BYTES,
};

/// Placement epochs remembered; a coordinator that loaded a group before the oldest of them
/// must reload it before it may write again.
const PLACEMENT_HISTORY: usize = 64;

impl MetadataState {
    /// Consumer groups and their committed offsets.
    pub fn groups(&self) -> &ConsumerGroups {
        &self.groups
    }

    /// The live broker that coordinates `group`, if any broker is live.
    pub fn group_coordinator(&self, group: &str) -> Option<u64> {
        consumer_groups::coordinator_of(group, self.live_brokers().map(|b| b.id))
    }

    /// The current placement epoch (see [`MetadataState::coordinates_since`]).
    pub fn placement_epoch(&self) -> u64 {
        self.placement_epoch
    }

    /// Whether `broker` has coordinated `group` without a break since placement epoch
    /// `since`: it coordinates it now and under every placement from `since` on. A coordinator
    /// that was paused or cut off while the group went elsewhere (and perhaps came back) fails
    /// this even if it never saw the move, so its writes are refused and it reloads the group.
    pub fn coordinates_since(&self, group: &str, broker: u64, since: u64) -> bool {
        if self.group_coordinator(group) != Some(broker) || since > self.placement_epoch {
            return false;
        }
        let remembered = self
            .placements
            .front()
            .map_or(self.placement_epoch + 1, |(epoch, _)| *epoch);
        if since < remembered {
            return false;
        }
        self.placements
            .iter()
            .filter(|(epoch, _)| *epoch >= since)
            .all(|(_, live)| {
                consumer_groups::coordinator_of(group, live.iter().copied()) == Some(broker)
            })
    }

    /// Record a new placement epoch if the live brokers changed; returns whether they did.
    pub(super) fn note_placement(&mut self) -> bool {
        let live: Vec<u64> = self.live_brokers().map(|b| b.id).collect();
        if self.placements.back().map(|(_, l)| l) == Some(&live) {
            return false;
        }
        self.placement_epoch += 1;
        self.placements.push_back((self.placement_epoch, live));
        while self.placements.len() > PLACEMENT_HISTORY {
            self.placements.pop_front();
        }
        true
    }

    /// The refusal of a write from a broker that does not (or not since long enough)
    /// coordinate the group.
    fn check_coordinator(
        &self,
        coordinator: u64,
        since: u64,
        group: &str,
    ) -> Result<(), Rejection> {
        if self.coordinates_since(group, coordinator, since) {
            return Ok(());
        }
        Err(Rejection::new(
            codes::NOT_COORDINATOR,
            format!("broker {coordinator} no longer coordinates group {group}"),
        ))
    }

    /// `StoreGroup`: record a completed generation; an older one than stored is refused.
    pub(super) fn apply_store_group(
        &mut self,
        coordinator: u64,
        since: u64,
        group: &str,
        record: &GroupRecord,
    ) -> CommandResult {
        self.check_coordinator(coordinator, since, group)?;
        match self.groups.store(group, record) {
            Ok(()) => Ok(CommandOutput::Done),
            Err(codes::ILLEGAL_GENERATION) => reject(
                codes::ILLEGAL_GENERATION,
                format!("group {group}: generation {} is stale", record.generation),
            ),
            Err(code) => reject(
                code,
                format!(
                    "group {group}: the group state would exceed {GROUP_STATE_MAX_BYTES} bytes"
                ),
            ),
        }
    }

    /// `CommitOffsets`: each group's commit is fenced on its own; one code per commit.
    pub(super) fn apply_commit_offsets(
        &mut self,
        coordinator: u64,
        at_ms: u64,
        commits: &[GroupCommit],
    ) -> CommandResult {
        let codes = commits
            .iter()
            .map(|c| {
                if self.coordinates_since(&c.group, coordinator, c.since) {
                    self.groups.commit(c, at_ms)
                } else {
                    codes::NOT_COORDINATOR
                }
            })
            .collect();
        Ok(CommandOutput::GroupResults { codes })
    }

    /// `DeleteGroup`: only an empty group can be deleted.
    pub(super) fn apply_delete_group(
        &mut self,
        coordinator: u64,
        since: u64,
        group: &str,
    ) -> CommandResult {
        self.check_coordinator(coordinator, since, group)?;
        match self.groups.delete(group) {
            codes::NONE => Ok(CommandOutput::Done),
            code => reject(code, format!("group {group} cannot be deleted")),
        }
    }

    /// `DeleteOffsets`: forget some committed offsets of one group.
    pub(super) fn apply_delete_offsets(
        &mut self,
        coordinator: u64,
        since: u64,
        group: &str,
        partitions: &[(String, i32)],
    ) -> CommandResult {
        self.check_coordinator(coordinator, since, group)?;
        match self.groups.delete_offsets(group, partitions) {
            codes::NONE => Ok(CommandOutput::Done),
            code => reject(code, format!("group {group} does not exist")),
        }
    }

    /// `ExpireOffsets`: drop offsets past their retention in every group. Housekeeping rather
    /// than one coordinator's write, so it is not fenced.
    pub(super) fn apply_expire_offsets(&mut self, at_ms: u64, retention_ms: u64) -> CommandResult {
        self.groups.expire(at_ms, retention_ms);
        Ok(CommandOutput::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;
    use crate::state::testkit::*;

    #[test]
    fn group_writes_apply_only_from_the_coordinator() {
        let mut s = with_brokers(&[1, 2, 3]);
        let coordinator = s.group_coordinator("g").unwrap();
        let other = [1, 2, 3].into_iter().find(|&b| b != coordinator).unwrap();
        let loaded = s.placement_epoch();
        let commit_since = |by, since| MetadataCommand::CommitOffsets {
            coordinator: by,
            at_ms: 7,
            commits: vec![GroupCommit {
                group: "g".into(),
                since,
                offsets: vec![crate::consumer_groups::OffsetCommit {
                    topic: "t".into(),
                    partition: 0,
                    offset: 42,
                    leader_epoch: 3,
                    metadata: "m".into(),
                }],
            }],
        };
        let commit = |by| commit_since(by, loaded);
        assert_eq!(
            s.apply(&commit(other)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            }
        );
        assert!(s.groups().get("g").is_none());
        assert_eq!(
            s.apply(&commit(coordinator)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NONE]
            }
        );
        let stored = &s.groups().get("g").unwrap().offsets[&("t".to_string(), 0)];
        assert_eq!(
            (stored.offset, stored.leader_epoch, stored.commit_ms),
            (42, 3, 7)
        );
        let store = |by| MetadataCommand::StoreGroup {
            coordinator: by,
            since: loaded,
            group: "g".into(),
            record: GroupRecord {
                generation: 1,
                ..Default::default()
            },
        };
        assert_rejected(&mut s, store(other), codes::NOT_COORDINATOR);
        s.apply(&store(coordinator)).unwrap();

        // The coordinator stops heartbeating: once it is down, another broker takes over and
        // the old one's writes are refused.
        for at in [5_000, 10_000] {
            for b in [1, 2, 3].into_iter().filter(|&b| b != coordinator) {
                s.apply(&MetadataCommand::BrokerHeartbeat { id: b, at_ms: at })
                    .unwrap();
            }
        }
        let next = s.group_coordinator("g").unwrap();
        assert_ne!(next, coordinator);
        assert_eq!(
            s.apply(&commit(coordinator)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            }
        );
        let taken_over = s.placement_epoch();
        assert!(taken_over > loaded);
        assert_eq!(
            s.apply(&commit(next)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            },
            "the new coordinator must load the group at the new placement first"
        );
        assert_eq!(
            s.apply(&commit_since(next, taken_over)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NONE]
            }
        );

        // The old coordinator comes back and coordinates the group again. Having missed the
        // move (it was paused, say), it still holds the group as loaded at `loaded`: refused,
        // although it is the coordinator now. Reloaded at the current placement, it may write.
        s.apply(&MetadataCommand::BrokerHeartbeat {
            id: coordinator,
            at_ms: 10_000,
        })
        .unwrap();
        assert_eq!(s.group_coordinator("g"), Some(coordinator));
        assert_eq!(
            s.apply(&commit_since(coordinator, loaded)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            }
        );
        let back = s.placement_epoch();
        assert_eq!(
            s.apply(&commit_since(coordinator, back)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NONE]
            }
        );
        // A barrier (a commit without offsets) changes nothing, even for an unknown group.
        let barrier = MetadataCommand::CommitOffsets {
            coordinator: 99,
            at_ms: 8,
            commits: vec![GroupCommit {
                group: "unknown".into(),
                since: 0,
                offsets: vec![],
            }],
        };
        let before = s.clone();
        s.apply(&barrier).unwrap();
        assert_eq!(s, before);
    }
}
