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

/// The most bytes of group state (group ids, recorded generations, committed offsets with
/// their metadata, as counted by [`group_bytes`]) the cluster keeps: every node holds it in
/// memory and in each snapshot. Writes that would grow it further are refused; writes that
/// shrink it (deletes, expiry, smaller generations) always apply. A fixed constant rather than
/// a setting, since every node must refuse the same entries.
pub const GROUP_STATE_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// What one group costs besides its strings and offsets (map entry, fixed fields).
const GROUP_OVERHEAD: u64 = 128;
/// What one member or committed offset costs besides its strings and bytes.
const ENTRY_OVERHEAD: u64 = 64;

fn len(s: &Option<String>) -> u64 {
    s.as_ref().map_or(0, |s| s.len() as u64)
}

fn record_bytes(r: &GroupRecord) -> u64 {
    let members: u64 = r
        .members
        .iter()
        .map(|m| {
            ENTRY_OVERHEAD
                + m.member_id.len() as u64
                + len(&m.instance_id)
                + m.client_id.len() as u64
                + m.client_host.len() as u64
                + m.subscription.len() as u64
                + m.assignment.len() as u64
        })
        .sum();
    len(&r.protocol_type) + len(&r.protocol) + len(&r.leader) + members
}

fn offset_bytes(topic: &str, metadata: &str) -> u64 {
    ENTRY_OVERHEAD + topic.len() as u64 + metadata.len() as u64
}

/// The bytes one group counts for in [`GROUP_STATE_MAX_BYTES`].
pub fn group_bytes(group: &str, state: &GroupState) -> u64 {
    let offsets: u64 = state
        .offsets
        .iter()
        .map(|((topic, _), o)| offset_bytes(topic, &o.metadata))
        .sum();
    GROUP_OVERHEAD + group.len() as u64 + record_bytes(&state.record) + offsets
}

/// All consumer groups, by group id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredGroups")]
pub struct ConsumerGroups {
    groups: BTreeMap<String, GroupState>,
    /// Σ [`group_bytes`]; derived, so not part of the snapshot.
    #[serde(skip_serializing)]
    bytes: u64,
    /// [`GROUP_STATE_MAX_BYTES`] (smaller in tests).
    #[serde(skip_serializing)]
    limit: u64,
}

impl Default for ConsumerGroups {
    fn default() -> Self {
        ConsumerGroups {
            groups: BTreeMap::new(),
            bytes: 0,
            limit: GROUP_STATE_MAX_BYTES,
        }
    }
}

/// The serialized form of [`ConsumerGroups`] (what snapshots hold).
#[derive(Deserialize)]
struct StoredGroups {
    groups: BTreeMap<String, GroupState>,
}

impl From<StoredGroups> for ConsumerGroups {
    fn from(stored: StoredGroups) -> Self {
        let bytes = stored.groups.iter().map(|(g, s)| group_bytes(g, s)).sum();
        ConsumerGroups {
            groups: stored.groups,
            bytes,
            limit: GROUP_STATE_MAX_BYTES,
        }
    }
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

    /// The group state's size as [`GROUP_STATE_MAX_BYTES`] counts it.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Whether growing the state by `more` bytes stays within [`GROUP_STATE_MAX_BYTES`].
    fn fits(&self, more: u64) -> bool {
        self.bytes.saturating_add(more) <= self.limit
    }

    /// Applies `change` to one group (created if missing) and
    /// keeps [`Self::bytes`] in step.
    fn update<R>(&mut self, group: &str, change: impl FnOnce(&mut GroupState) -> R) -> R {
        let before = self.groups.get(group).map_or(0, |g| group_bytes(group, g));
        let entry = self.groups.entry(group.to_owned()).or_default();
        let result = change(entry);
        let after = group_bytes(group, entry);
        self.bytes = (self.bytes + after).saturating_sub(before);
        result
    }

    /// Record a completed generation. A record older than the stored one is refused, so a
    /// delayed write can never roll a group back.
    /// A record that would take the group state past [`GROUP_STATE_MAX_BYTES`] is refused
    /// with UNKNOWN_SERVER_ERROR, as Kafka answers a group record its offsets topic cannot take.
    pub fn store(&mut self, group: &str, record: &GroupRecord) -> Result<(), i16> {
        let (current, generation) = match self.groups.get(group) {
            Some(g) => (record_bytes(&g.record), g.record.generation),
            None => (0, 0),
        };
        if record.generation < generation {
            return Err(codes::ILLEGAL_GENERATION);
        }
        let new_group = if self.groups.contains_key(group) {
            0
        } else {
            GROUP_OVERHEAD + group.len() as u64
        };
        let more = (new_group + record_bytes(record)).saturating_sub(current);
        if more > 0 && !self.fits(more) {
            return Err(codes::UNKNOWN_SERVER_ERROR);
        }
        self.update(group, |g| g.record = record.clone());
        Ok(())
    }

    /// Store the offsets of one commit, creating the group (Empty, generation 0) for a
    /// standalone commit. A commit that would take the group state past
    /// [`GROUP_STATE_MAX_BYTES`] is refused whole with INVALID_COMMIT_OFFSET_SIZE, Kafka's
    /// answer to a commit its offsets topic cannot take.
    pub fn commit(&mut self, commit: &GroupCommit, at_ms: u64) -> i16 {
        if commit.offsets.is_empty() {
            return codes::NONE;
        }
        let existing = self.groups.get(&commit.group);
        let mut more = match existing {
            Some(_) => 0,
            None => GROUP_OVERHEAD + commit.group.len() as u64,
        };
        let mut less = 0;
        for o in &commit.offsets {
            more += offset_bytes(&o.topic, &o.metadata);
            let key = (o.topic.clone(), o.partition);
            if let Some(old) = existing.and_then(|g| g.offsets.get(&key)) {
                less += offset_bytes(&o.topic, &old.metadata);
            }
        }
        if more > less && !self.fits(more - less) {
            return codes::INVALID_COMMIT_OFFSET_SIZE;
        }
        self.update(&commit.group, |g| {
            for o in &commit.offsets {
                g.offsets.insert(
                    (o.topic.clone(), o.partition),
                    CommittedOffset {
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_ms: at_ms,
                    },
                );
            }
        });
        codes::NONE
    }

    /// Delete a group and its offsets: GROUP_ID_NOT_FOUND or NON_EMPTY_GROUP otherwise.
    pub fn delete(&mut self, group: &str) -> i16 {
        match self.groups.get(group) {
            None => codes::GROUP_ID_NOT_FOUND,
            Some(g) if !g.is_empty() => codes::NON_EMPTY_GROUP,
            Some(_) => {
                if let Some(g) = self.groups.remove(group) {
                    self.bytes = self.bytes.saturating_sub(group_bytes(group, &g));
                }
                codes::NONE
            }
        }
    }

    /// Forget the committed offsets of some partitions.
    pub fn delete_offsets(&mut self, group: &str, partitions: &[(String, i32)]) -> i16 {
        if !self.groups.contains_key(group) {
            return codes::GROUP_ID_NOT_FOUND;
        }
        self.update(group, |g| {
            for p in partitions {
                g.offsets.remove(p);
            }
        });
        codes::NONE
    }

    /// Drop offsets older than `retention_ms` at `at_ms`, Kafka's rules (KIP-211): the offsets
    /// of a consumer group expire only while the group is Empty, counted from when it became
    /// empty (or from the commit, if later); a group that never had members (standalone
    /// commits) expires each offset from its own commit. Empty groups left with no offsets
    /// are removed. Returns how many offsets expired.
    pub fn expire(&mut self, at_ms: u64, retention_ms: u64) -> usize {
        let mut expired = 0;
        for (name, g) in self.groups.iter_mut() {
            if !g.is_empty() {
                continue;
            }
            let before = group_bytes(name, g);
            let base = g
                .record
                .protocol_type
                .as_ref()
                .map(|_| g.record.state_since_ms);
            let before_len = g.offsets.len();
            g.offsets.retain(|_, o| {
                let since = base.map_or(o.commit_ms, |b| b.max(o.commit_ms));
                since.saturating_add(retention_ms) > at_ms
            });
            expired += before_len - g.offsets.len();
            self.bytes = (self.bytes + group_bytes(name, g)).saturating_sub(before);
        }
        let bytes = &mut self.bytes;
        self.groups.retain(|name, g| {
            let keep = !(g.is_empty() && g.offsets.is_empty());
            if !keep {
                *bytes = bytes.saturating_sub(group_bytes(name, g));
            }
            keep
        });
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

    /// [`ConsumerGroups::bytes`] recomputed from scratch.
    fn counted(groups: &ConsumerGroups) -> u64 {
        groups.iter().map(|(g, s)| group_bytes(g, s)).sum()
    }

    type Step = fn(&mut ConsumerGroups);

    #[test]
    fn the_byte_count_follows_every_change_and_survives_a_snapshot() {
        let mut groups = ConsumerGroups::default();
        let steps: [(&str, Step); 9] = [
            ("commit", |g| {
                assert_eq!(g.commit(&commit("a", "t", 0, 1), 1), 0)
            }),
            ("second partition", |g| {
                g.commit(&commit("a", "topic-two", 1, 1), 2);
            }),
            ("bigger metadata", |g| {
                let mut c = commit("a", "t", 0, 2);
                c.offsets[0].metadata = "x".repeat(300);
                g.commit(&c, 3);
            }),
            ("record", |g| {
                let record = GroupRecord {
                    protocol_type: Some("consumer".into()),
                    generation: 1,
                    members: vec![member("m-1"), member("m-2")],
                    ..Default::default()
                };
                assert_eq!(g.store("b", &record), Ok(()));
            }),
            ("smaller record", |g| {
                let record = GroupRecord {
                    protocol_type: Some("consumer".into()),
                    generation: 2,
                    state_since_ms: 10,
                    ..Default::default()
                };
                assert_eq!(g.store("b", &record), Ok(()));
            }),
            ("commit to b", |g| {
                g.commit(&commit("b", "t", 0, 1), 10);
            }),
            ("delete offsets", |g| {
                assert_eq!(g.delete_offsets("a", &[("t".into(), 0)]), 0);
            }),
            ("expire", |g| {
                assert_eq!(g.expire(1_000_000, 1_000), 2);
            }),
            ("delete", |g| {
                g.commit(&commit("c", "t", 0, 1), 2_000_000);
                assert_eq!(g.delete("c"), 0);
            }),
        ];
        for (what, step) in steps {
            step(&mut groups);
            assert_eq!(groups.bytes(), counted(&groups), "after {what}");
            let back: ConsumerGroups =
                bincode::deserialize(&bincode::serialize(&groups).unwrap()).unwrap();
            assert_eq!(back, groups, "after {what}, through a snapshot");
        }
        assert!(groups.is_empty());
        assert_eq!(groups.bytes(), 0);
    }

    #[test]
    fn writes_that_would_pass_the_limit_are_refused_and_shrinking_ones_apply() {
        let mut groups = ConsumerGroups {
            limit: 4_096,
            ..Default::default()
        };
        let mut n = 0;
        let code = loop {
            let code = groups.commit(&commit("g", &format!("topic-{n}"), 0, 1), 1);
            if code != codes::NONE {
                break code;
            }
            n += 1;
        };
        assert_eq!(code, codes::INVALID_COMMIT_OFFSET_SIZE);
        assert!(n > 10, "only {n} commits fit in 4 KiB");
        assert!(groups.bytes() <= 4_096);
        let full = groups.clone();
        // Refused whole: nothing of the commit is kept.
        assert_eq!(groups.get("g").unwrap().offsets.len(), n);
        // Moving an offset that is already there costs nothing more.
        assert_eq!(
            groups.commit(&commit("g", "topic-0", 0, 99), 2),
            codes::NONE
        );
        assert_eq!(groups.bytes(), full.bytes());
        // A new group and a larger record are refused too.
        assert_eq!(
            groups.commit(&commit("other", "t", 0, 1), 2),
            codes::INVALID_COMMIT_OFFSET_SIZE
        );
        let big = GroupRecord {
            generation: 1,
            members: vec![member(&"m".repeat(200))],
            ..Default::default()
        };
        assert_eq!(groups.store("g", &big), Err(codes::UNKNOWN_SERVER_ERROR));
        assert!(groups.get("other").is_none());
        // Room comes back when offsets go.
        let some: Vec<(String, i32)> = (0..4).map(|i| (format!("topic-{i}"), 0)).collect();
        assert_eq!(groups.delete_offsets("g", &some), codes::NONE);
        assert_eq!(groups.commit(&commit("other", "t", 0, 1), 3), codes::NONE);
        assert_eq!(groups.bytes(), counted(&groups));
    }
}
