//! Consumer groups in the metadata log: what Kafka keeps in `__consumer_offsets`.
//!
//! A group's coordinator runs the join/sync protocol in memory and writes here only what must
//! survive it: the membership of each completed generation ([`GroupRecord`]) and committed
//! offsets. Every such write names the coordinator that made it, and is applied only if that
//! broker is still the group's coordinator at that point of the log ([`coordinator_of`]), so a
//! coordinator that lost its groups to another node can never overwrite the new one's state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::codes;

/// The membership a coordinator recorded for the group's current generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    /// `consumer` for Kafka consumers; `None` for a group that only ever had standalone
    /// commits.
    pub protocol_type: Option<String>,
    pub generation: i32,
    /// The protocol (assignor) chosen for this generation.
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// Empty when the group is Empty.
    pub members: Vec<MemberRecord>,
    /// When the group entered its current state (the coordinator's clock); offsets of an empty
    /// group expire relative to it.
    pub state_since_ms: u64,
}

/// One member of a recorded generation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: String,
    /// `group.instance.id` of a static member.
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// The member's metadata for the chosen protocol.
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A committed offset, as OffsetFetch returns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    /// -1 when the client did not say.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_ms: u64,
}

/// One partition's commit inside a [`GroupCommit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
}

/// The commits of one OffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupCommit {
    pub group: String,
    /// The placement epoch at which the committing coordinator loaded the group.
    pub since: u64,
    pub offsets: Vec<OffsetCommit>,
}

/// A group as the metadata log knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    pub record: GroupRecord,
    /// By (topic, partition).
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
}

impl GroupState {
    /// Empty in Kafka's sense: no member in the recorded generation.
    pub fn is_empty(&self) -> bool {
        self.record.members.is_empty()
    }
}

/// The coordinator of `group` among `live` brokers: rendezvous hashing, so when a broker goes
/// down only its own groups move, each to the live broker that scores highest for it.
pub fn coordinator_of(group: &str, live: impl IntoIterator<Item = u64>) -> Option<u64> {
    live.into_iter()
        .map(|id| (score(group, id), id))
        .max()
        .map(|(_, id)| id)
}

/// FNV-1a over the group id and the broker id, finished with splitmix64 so the scores of
/// neighbouring broker ids are unrelated. Fixed forever: every node must compute the same.
fn score(group: &str, broker: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in group.bytes().chain(broker.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// All consumer groups, by group id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroups {
    groups: BTreeMap<String, GroupState>,
}

impl ConsumerGroups {
    pub fn get(&self, group: &str) -> Option<&GroupState> {
        self.groups.get(group)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &GroupState)> {
        self.groups.iter()
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Record a completed generation. A record older than the stored one is refused, so a
    /// delayed write can never roll a group back.
    pub fn store(&mut self, group: &str, record: &GroupRecord) -> Result<(), i16> {
        let entry = self.groups.entry(group.to_owned()).or_default();
        if record.generation < entry.record.generation {
            return Err(codes::ILLEGAL_GENERATION);
        }
        entry.record = record.clone();
        Ok(())
    }

    /// Store the offsets of one commit, creating the group (Empty, generation 0) for a
    /// standalone commit.
    pub fn commit(&mut self, commit: &GroupCommit, at_ms: u64) {
        if commit.offsets.is_empty() {
            return;
        }
        let entry = self.groups.entry(commit.group.clone()).or_default();
        for o in &commit.offsets {
            entry.offsets.insert(
                (o.topic.clone(), o.partition),
                CommittedOffset {
                    offset: o.offset,
                    leader_epoch: o.leader_epoch,
                    metadata: o.metadata.clone(),
                    commit_ms: at_ms,
                },
            );
        }
    }

    /// Delete a group and its offsets: GROUP_ID_NOT_FOUND or NON_EMPTY_GROUP otherwise.
    pub fn delete(&mut self, group: &str) -> i16 {
        match self.groups.get(group) {
            None => codes::GROUP_ID_NOT_FOUND,
            Some(g) if !g.is_empty() => codes::NON_EMPTY_GROUP,
            Some(_) => {
                self.groups.remove(group);
                codes::NONE
            }
        }
    }

    /// Forget the committed offsets of some partitions.
    pub fn delete_offsets(&mut self, group: &str, partitions: &[(String, i32)]) -> i16 {
        let Some(g) = self.groups.get_mut(group) else {
            return codes::GROUP_ID_NOT_FOUND;
        };
        for p in partitions {
            g.offsets.remove(p);
        }
        codes::NONE
    }

    /// Drop offsets older than `retention_ms` at `at_ms`, Kafka's rules (KIP-211): the offsets
    /// of a consumer group expire only while the group is Empty, counted from when it became
    /// empty (or from the commit, if later); a group that never had members (standalone
    /// commits) expires each offset from its own commit. Empty groups left with no offsets
    /// are removed. Returns how many offsets expired.
    pub fn expire(&mut self, at_ms: u64, retention_ms: u64) -> usize {
        let mut expired = 0;
        for g in self.groups.values_mut() {
            if !g.is_empty() {
                continue;
            }
            let base = g
                .record
                .protocol_type
                .as_ref()
                .map(|_| g.record.state_since_ms);
            let before = g.offsets.len();
            g.offsets.retain(|_, o| {
                let since = base.map_or(o.commit_ms, |b| b.max(o.commit_ms));
                since.saturating_add(retention_ms) > at_ms
            });
            expired += before - g.offsets.len();
        }
        self.groups
            .retain(|_, g| !(g.is_empty() && g.offsets.is_empty()));
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(group: &str, topic: &str, partition: i32, offset: i64) -> GroupCommit {
        GroupCommit {
            group: group.into(),
            since: 0,
            offsets: vec![OffsetCommit {
                topic: topic.into(),
                partition,
                offset,
                leader_epoch: -1,
                metadata: String::new(),
            }],
        }
    }

    fn member(id: &str) -> MemberRecord {
        MemberRecord {
            member_id: id.into(),
            ..Default::default()
        }
    }

    #[test]
    fn coordinator_moves_only_the_dead_brokers_groups() {
        let names: Vec<String> = (0..300).map(|i| format!("group-{i}")).collect();
        let before: Vec<u64> = names
            .iter()
            .map(|g| coordinator_of(g, [1, 2, 3]).unwrap())
            .collect();
        for id in [1, 2, 3] {
            let n = before.iter().filter(|&&c| c == id).count();
            assert!(
                (60..=140).contains(&n),
                "broker {id} coordinates {n} of 300"
            );
        }
        for (g, &was) in names.iter().zip(&before) {
            let now = coordinator_of(g, [1, 3]).unwrap();
            if was == 2 {
                assert_ne!(now, 2);
            } else {
                assert_eq!(now, was, "{g} moved although its coordinator is live");
            }
        }
        assert_eq!(coordinator_of("g", []), None);
    }

    #[test]
    fn store_refuses_an_older_generation() {
        let mut groups = ConsumerGroups::default();
        let record = |generation| GroupRecord {
            generation,
            members: vec![member("m")],
            ..Default::default()
        };
        assert_eq!(groups.store("g", &record(3)), Ok(()));
        assert_eq!(
            groups.store("g", &record(2)),
            Err(codes::ILLEGAL_GENERATION)
        );
        assert_eq!(groups.store("g", &record(3)), Ok(()));
        assert_eq!(groups.get("g").unwrap().record.generation, 3);
    }

    #[test]
    fn delete_needs_an_empty_group() {
        let mut groups = ConsumerGroups::default();
        assert_eq!(groups.delete("g"), codes::GROUP_ID_NOT_FOUND);
        groups.commit(&commit("g", "t", 0, 5), 1);
        let busy = GroupRecord {
            protocol_type: Some("consumer".into()),
            generation: 1,
            members: vec![member("m")],
            ..Default::default()
        };
        groups.store("g", &busy).unwrap();
        assert_eq!(groups.delete("g"), codes::NON_EMPTY_GROUP);
        let empty = GroupRecord {
            generation: 2,
            members: vec![],
            ..busy
        };
        groups.store("g", &empty).unwrap();
        assert_eq!(groups.delete("g"), codes::NONE);
        assert!(groups.get("g").is_none());
    }

    #[test]
    fn offsets_expire_only_once_the_group_is_empty() {
        let mut groups = ConsumerGroups::default();
        // A standalone group: each offset expires from its own commit.
        groups.commit(&commit("solo", "t", 0, 1), 100);
        groups.commit(&commit("solo", "t", 1, 1), 500);
        // A consumer group with members keeps its offsets however old.
        groups.commit(&commit("busy", "t", 0, 1), 100);
        let stable = GroupRecord {
            protocol_type: Some("consumer".into()),
            generation: 1,
            members: vec![member("m")],
            state_since_ms: 100,
            ..Default::default()
        };
        groups.store("busy", &stable).unwrap();
        // An empty consumer group: counted from when it became empty.
        groups.commit(&commit("idle", "t", 0, 1), 100);
        let idle = GroupRecord {
            protocol_type: Some("consumer".into()),
            generation: 2,
            state_since_ms: 900,
            ..Default::default()
        };
        groups.store("idle", &idle).unwrap();

        assert_eq!(groups.expire(1_050, 1_000), 0);
        assert_eq!(groups.expire(1_200, 1_000), 1);
        assert_eq!(groups.get("solo").unwrap().offsets.len(), 1);
        assert_eq!(groups.expire(1_899, 1_000), 1);
        assert!(
            groups.get("solo").is_none(),
            "an empty group without offsets is removed"
        );
        assert_eq!(groups.get("idle").unwrap().offsets.len(), 1);
        assert_eq!(groups.expire(1_900, 1_000), 1);
        assert!(groups.get("idle").is_none());
        assert_eq!(groups.expire(1_000_000, 1_000), 0);
        assert_eq!(groups.get("busy").unwrap().offsets.len(), 1);
    }
}
