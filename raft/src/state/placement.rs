//! Where the replicas of new partitions go: an explicit assignment, checked, or a placement
//! that spreads leaders evenly over the live brokers and followers over racks. Used when topics
//! are created or grown; reassignments check their target replica sets here too.

use std::collections::BTreeMap;

use super::MetadataState;
use crate::codes;
use crate::command::Rejection;

impl MetadataState {
    /// A replica set must be non-empty, name each broker once, and only registered ones.
    pub(super) fn check_replicas(&self, replicas: &[u64]) -> Result<(), Rejection> {
        let mut distinct = replicas.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if replicas.is_empty() || distinct.len() != replicas.len() {
            return Err(Rejection::new(
                codes::INVALID_REPLICA_ASSIGNMENT,
                format!("replica set {replicas:?} is empty or repeats a broker"),
            ));
        }
        if let Some(unknown) = replicas.iter().find(|b| !self.brokers.contains_key(b)) {
            return Err(Rejection::new(
                codes::INVALID_REPLICA_ASSIGNMENT,
                format!("broker {unknown} is not registered"),
            ));
        }
        Ok(())
    }

    /// The replica sets of `count` new partitions: the given assignment, checked, or placed.
    pub(super) fn replica_sets(
        &self,
        topic_id: &[u8; 16],
        existing_leaders: &[u64],
        count: u32,
        replication_factor: u32,
        assignment: &[Vec<u64>],
    ) -> Result<Vec<Vec<u64>>, Rejection> {
        if assignment.is_empty() {
            return self.place(topic_id, existing_leaders, count, replication_factor);
        }
        if assignment.len() != count as usize {
            return Err(Rejection::new(
                codes::INVALID_REPLICA_ASSIGNMENT,
                format!("{} partitions assigned, {count} expected", assignment.len()),
            ));
        }
        for replicas in assignment {
            self.check_replicas(replicas)?;
        }
        Ok(assignment.to_vec())
    }

    /// Choose replica sets for `count` new partitions of the topic with id `topic_id`, whose
    /// existing partitions have the preferred leaders `existing`.
    ///
    /// Live brokers are ordered so that neighbours are on different racks where racks are
    /// known, and rotated to start at an index derived from the topic id, so different topics
    /// start on different brokers. Each new partition's leader is the live broker that leads
    /// the fewest partitions of this topic, ties broken by that order (continuing after the
    /// previous pick); its followers are the next brokers in the order. For a new topic this
    /// is plain round-robin from the start index: 12 partitions over 3 brokers lead 4/4/4.
    fn place(
        &self,
        topic_id: &[u8; 16],
        existing: &[u64],
        count: u32,
        replication_factor: u32,
    ) -> Result<Vec<Vec<u64>>, Rejection> {
        let brokers: Vec<(u64, Option<String>)> = self
            .live_brokers()
            .map(|b| (b.id, b.rack.clone()))
            .collect();
        let live = rack_alternated(&brokers);
        let rf = replication_factor as usize;
        if live.is_empty() || rf == 0 || rf > live.len() {
            return Err(Rejection::new(
                codes::INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {replication_factor} needs as many live brokers; {} are live",
                    live.len()
                ),
            ));
        }
        let n = live.len();
        let start = (u128::from_be_bytes(*topic_id) % n as u128) as usize;
        let mut load: Vec<usize> = live
            .iter()
            .map(|id| existing.iter().filter(|o| *o == id).count())
            .collect();
        let mut sets = Vec::with_capacity(count as usize);
        let mut next = (start + existing.len()) % n;
        for _ in 0..count {
            let mut best = next;
            for step in 0..n {
                let i = (next + step) % n;
                if load[i] < load[best] {
                    best = i;
                }
            }
            load[best] += 1;
            sets.push(replica_set(&live, best, rf));
            next = (best + 1) % n;
        }
        Ok(sets)
    }
}

/// Orders brokers so that neighbours sit on different racks where possible (Kafka's
/// rack-alternated list): racks in name order, taking one broker from each in turn. Brokers
/// without a rack count as one rack of their own.
fn rack_alternated(brokers: &[(u64, Option<String>)]) -> Vec<u64> {
    let mut by_rack: BTreeMap<Option<&str>, Vec<u64>> = BTreeMap::new();
    for (id, rack) in brokers {
        by_rack.entry(rack.as_deref()).or_default().push(*id);
    }
    if by_rack.len() <= 1 {
        return brokers.iter().map(|(id, _)| *id).collect();
    }
    let mut out = Vec::with_capacity(brokers.len());
    let mut round = 0;
    while out.len() < brokers.len() {
        for ids in by_rack.values() {
            if let Some(id) = ids.get(round) {
                out.push(*id);
            }
        }
        round += 1;
    }
    out
}

/// The replica set of a partition led by `order[leader_index]`: the leader, then the next
/// `replication_factor - 1` brokers of `order`, wrapping around.
fn replica_set(order: &[u64], leader_index: usize, replication_factor: usize) -> Vec<u64> {
    (0..replication_factor.min(order.len()))
        .map(|i| order[(leader_index + i) % order.len()])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{CommandOutput, MetadataCommand};
    use crate::state::testkit::*;

    #[test]
    fn create_topic_spreads_evenly() {
        let mut s = with_brokers(&[1, 2, 3]);
        let out = s.apply(&create("t", 7, 12)).unwrap();
        let o = owners(&s, "t");
        assert_eq!(
            out,
            CommandOutput::TopicCreated {
                id: [7; 16],
                replicas: as_sets(&o)
            }
        );
        assert_eq!((count(&o, 1), count(&o, 2), count(&o, 3)), (4, 4, 4));
        // Round-robin: consecutive partitions go to consecutive brokers.
        for w in o.windows(2) {
            assert_ne!(w[0], w[1]);
        }
        let t = s.topic("t").unwrap();
        assert_eq!(t.id, [7; 16]);
        for p in &t.partitions {
            assert_eq!(p.replicas, vec![p.leader.unwrap()]);
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader_epoch, 0);
        }
        assert_eq!(s.topic_by_id(&[7; 16]).unwrap().name, "t");
    }

    #[test]
    fn create_topic_start_depends_on_topic_id() {
        let mut s = with_brokers(&[1, 2, 3]);
        // Ids whose big-endian value is 0, 1 and 2 mod 3 start on brokers 1, 2 and 3.
        let mut firsts = Vec::new();
        for (i, last) in [3u8, 4, 5].into_iter().enumerate() {
            let mut id = [0u8; 16];
            id[15] = last;
            let name = format!("t{i}");
            s.apply(&MetadataCommand::CreateTopic {
                name: name.clone(),
                id,
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
                assignment: vec![],
            })
            .unwrap();
            firsts.push(owners(&s, &name)[0]);
        }
        assert_eq!(firsts, vec![1, 2, 3]);
        // The same command on another replica gives the same answer.
        let mut a = with_brokers(&[1, 2, 3]);
        let mut b = with_brokers(&[1, 2, 3]);
        assert_eq!(a.apply(&create("x", 9, 7)), b.apply(&create("x", 9, 7)));
        assert_eq!(a, b);
    }

    #[test]
    fn create_topic_uses_only_live_brokers() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&MetadataCommand::BrokerHeartbeat {
            id: 1,
            at_ms: 60_000,
        })
        .unwrap();
        s.apply(&MetadataCommand::BrokerHeartbeat {
            id: 3,
            at_ms: 60_000,
        })
        .unwrap();
        s.apply(&create("t", 1, 6)).unwrap();
        let o = owners(&s, "t");
        assert_eq!((count(&o, 1), count(&o, 2), count(&o, 3)), (3, 0, 3));
    }

    #[test]
    fn explicit_assignments_are_checked_and_kept() {
        let mut s = with_brokers(&[1, 2]);
        let assigned = |partitions, assignment: Vec<u64>| MetadataCommand::CreateTopic {
            name: "a".into(),
            id: [9; 16],
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
            assignment: as_sets(&assignment),
        };
        assert_rejected(
            &mut s,
            assigned(2, vec![1]),
            codes::INVALID_REPLICA_ASSIGNMENT,
        );
        assert_rejected(
            &mut s,
            assigned(2, vec![1, 7]),
            codes::INVALID_REPLICA_ASSIGNMENT,
        );
        s.apply(&assigned(3, vec![2, 2, 1])).unwrap();
        assert_eq!(owners(&s, "a"), vec![2, 2, 1]);
        s.apply(&MetadataCommand::CreatePartitions {
            name: "a".into(),
            count: 4,
            assignment: vec![vec![2]],
        })
        .unwrap();
        assert_eq!(owners(&s, "a"), vec![2, 2, 1, 2]);
    }

    #[test]
    fn create_partitions_keeps_spread_even() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create("t", 1, 4)).unwrap();
        let out = s
            .apply(&MetadataCommand::CreatePartitions {
                name: "t".into(),
                count: 12,
                assignment: vec![],
            })
            .unwrap();
        let o = owners(&s, "t");
        assert_eq!(
            out,
            CommandOutput::PartitionsCreated {
                first: 4,
                replicas: as_sets(&o[4..])
            }
        );
        assert_eq!((count(&o, 1), count(&o, 2), count(&o, 3)), (4, 4, 4));

        // A new broker joins: growing the topic fills it up first.
        s.apply(&register(4)).unwrap();
        s.apply(&MetadataCommand::CreatePartitions {
            name: "t".into(),
            count: 15,
            assignment: vec![],
        })
        .unwrap();
        let o = owners(&s, "t");
        assert_eq!(count(&o, 4), 3);
    }

    #[test]
    fn replicas_are_spread_and_the_factor_is_checked() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create_rf("t", 1, 6, 3)).unwrap();
        let t = s.topic("t").unwrap();
        for p in &t.partitions {
            let mut sorted = p.replicas.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![1, 2, 3]);
            assert_eq!((p.leader, &p.isr), (Some(p.replicas[0]), &p.replicas));
        }
        let leaders = owners(&s, "t");
        assert_eq!((count(&leaders, 1), count(&leaders, 2)), (2, 2));
        assert_rejected(
            &mut s,
            create_rf("u", 2, 1, 4),
            codes::INVALID_REPLICATION_FACTOR,
        );
        assert_rejected(
            &mut s,
            create_rf("u", 2, 1, 0),
            codes::INVALID_REPLICATION_FACTOR,
        );
        // Growing keeps the factor.
        s.apply(&MetadataCommand::CreatePartitions {
            name: "t".into(),
            count: 7,
            assignment: vec![],
        })
        .unwrap();
        assert_eq!(s.partition("t", 6).unwrap().replicas.len(), 3);
    }

    #[test]
    fn racks_alternate() {
        let brokers = [
            (1, Some("a".to_string())),
            (2, Some("a".to_string())),
            (3, Some("b".to_string())),
            (4, Some("c".to_string())),
        ];
        assert_eq!(rack_alternated(&brokers), vec![1, 3, 4, 2]);
        assert_eq!(replica_set(&[1, 3, 4, 2], 3, 3), vec![2, 1, 3]);
        assert_eq!(replica_set(&[1, 2], 0, 3), vec![1, 2]);
    }
}
