//! The commands that move a partition's leadership, in-sync set or replica set (Kafka's
//! AlterPartition, ElectLeaders and AlterPartitionReassignments), and the elections every
//! partition goes through when brokers come, go or restart. The rules for one partition live
//! in `replicas`; this is where they meet the image's topics and live brokers.

use super::replicas::{Election, PartitionState};
use super::topics::TopicState;
use super::{reject, MetadataState};
use crate::codes;
use crate::command::{CommandOutput, CommandResult, Reassignment};

impl MetadataState {
    /// Runs an election on every partition (the controller's reaction to a broker coming,
    /// going or restarting).
    pub(super) fn elect_all(&mut self, election: impl Fn(&TopicState) -> Election) {
        let live = self.live_ids();
        let is_live = |id: u64| live.contains(&id);
        for topic in self.topics.values_mut() {
            let election = election(topic);
            for p in &mut topic.partitions {
                p.elect(election, &is_live);
            }
        }
    }

    /// `AlterPartition`: the partition's leader changes its in-sync set.
    pub(super) fn apply_alter_partition(
        &mut self,
        topic_id: &[u8; 16],
        partition: u32,
        leader: u64,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[u64],
    ) -> CommandResult {
        let live = self.live_ids();
        let Some(p) = self
            .topics
            .values_mut()
            .find(|t| &t.id == topic_id)
            .and_then(|t| t.partitions.get_mut(partition as usize))
        else {
            return reject(
                codes::UNKNOWN_TOPIC_OR_PARTITION,
                format!("partition {partition} of the topic does not exist"),
            );
        };
        let partition_epoch = p.alter_isr(leader, leader_epoch, partition_epoch, isr, &|id| {
            live.contains(&id)
        })?;
        Ok(CommandOutput::PartitionAltered { partition_epoch })
    }

    /// `ElectPreferredLeaders` and `ElectUncleanLeaders`: `elect` on each partition; one code
    /// per partition, in order.
    pub(super) fn apply_elect(
        &mut self,
        partitions: &[(String, u32)],
        elect: impl Fn(&mut PartitionState, &dyn Fn(u64) -> bool) -> i16,
    ) -> CommandResult {
        let live = self.live_ids();
        let codes = partitions
            .iter()
            .map(|(topic, partition)| {
                match self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.partitions.get_mut(*partition as usize))
                {
                    Some(p) => elect(p, &|id| live.contains(&id)),
                    None => codes::UNKNOWN_TOPIC_OR_PARTITION,
                }
            })
            .collect();
        Ok(CommandOutput::PartitionResults { codes })
    }

    /// `ReassignPartitions`: start or cancel each move; one code per move, in order.
    pub(super) fn apply_reassign_partitions(&mut self, moves: &[Reassignment]) -> CommandResult {
        let live = self.live_ids();
        let is_live = |id: u64| live.contains(&id);
        let codes = moves
            .iter()
            .map(|m| {
                if let Some(target) = &m.replicas {
                    if self.check_replicas(target).is_err() {
                        return codes::INVALID_REPLICA_ASSIGNMENT;
                    }
                }
                let Some(p) = self
                    .topics
                    .get_mut(&m.topic)
                    .and_then(|t| t.partitions.get_mut(m.partition as usize))
                else {
                    return codes::UNKNOWN_TOPIC_OR_PARTITION;
                };
                match &m.replicas {
                    Some(target) => {
                        p.reassign(target, &is_live);
                        codes::NONE
                    }
                    None if p.cancel_reassignment(&is_live) => codes::NONE,
                    None => codes::NO_REASSIGNMENT_IN_PROGRESS,
                }
            })
            .collect();
        Ok(CommandOutput::PartitionResults { codes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;
    use crate::state::testkit::*;

    #[test]
    fn a_dead_leader_is_replaced_and_fenced_by_epoch() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create_rf("t", 1, 3, 3)).unwrap();
        let p0 = s.partition("t", 0).unwrap().clone();
        let dead = p0.leader.unwrap();
        let alive: Vec<u64> = [1, 2, 3].into_iter().filter(|&b| b != dead).collect();
        // Liveness follows the newest heartbeat in the log, so the survivors keep beating.
        for at in [4_000, 8_000, 12_000] {
            for &b in &alive {
                s.apply(&heartbeat(b, at)).unwrap();
            }
        }
        let p = s.partition("t", 0).unwrap();
        assert_ne!(p.leader, Some(dead));
        assert!(p.leader.is_some_and(|l| alive.contains(&l)));
        assert!(!p.isr.contains(&dead), "{p:?}");
        assert_eq!(p.leader_epoch, p0.leader_epoch + 1);
        assert_eq!(p.offline(&|b| s.is_live(b)), vec![dead]);
        // The deposed leader can no longer change the in-sync set.
        let stale = MetadataCommand::AlterPartition {
            topic_id: [1; 16],
            partition: 0,
            leader: dead,
            leader_epoch: p0.leader_epoch,
            partition_epoch: p0.partition_epoch,
            isr: vec![dead],
        };
        assert_rejected(&mut s, stale, codes::NOT_LEADER_OR_FOLLOWER);
        // The dead broker returns (same incarnation): it stays out of the in-sync set until
        // the leader adds it back.
        s.apply(&heartbeat(dead, 12_000)).unwrap();
        let p = s.partition("t", 0).unwrap().clone();
        assert!(!p.isr.contains(&dead));
        let leader = p.leader.unwrap();
        let mut isr = p.isr.clone();
        isr.push(dead);
        let add = MetadataCommand::AlterPartition {
            topic_id: [1; 16],
            partition: 0,
            leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr,
        };
        assert_eq!(
            s.apply(&add),
            Ok(CommandOutput::PartitionAltered {
                partition_epoch: p.partition_epoch + 1
            })
        );
        assert_eq!(
            s.partition("t", 0).unwrap().isr.len(),
            3,
            "{:?}",
            s.partition("t", 0)
        );
        // The same change again starts from an old partition epoch.
        assert_rejected(&mut s, add, codes::INVALID_UPDATE_VERSION);
        // Preferred leadership goes back to the first replica.
        let out = s
            .apply(&MetadataCommand::ElectPreferredLeaders {
                partitions: vec![("t".into(), 0), ("nope".into(), 0)],
            })
            .unwrap();
        assert_eq!(
            out,
            CommandOutput::PartitionResults {
                codes: vec![codes::NONE, codes::UNKNOWN_TOPIC_OR_PARTITION]
            }
        );
        let p = s.partition("t", 0).unwrap();
        assert_eq!(p.leader, Some(p.replicas[0]));
    }

    #[test]
    fn a_restarted_leader_gets_a_new_epoch() {
        let mut s = with_brokers(&[1]);
        s.apply(&create_rf("t", 1, 1, 1)).unwrap();
        assert_eq!(s.partition("t", 0).unwrap().leader_epoch, 0);
        s.apply(&MetadataCommand::RegisterBroker {
            id: 1,
            host: "host1".into(),
            port: 9092,
            endpoints: Vec::new(),
            rack: None,
            epoch: 2,
            at_ms: 10,
        })
        .unwrap();
        let p = s.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 1));
    }
}
