//! Topics on the image: creating and deleting them and adding partitions, plus reads by name
//! and by id. A topic keeps its id (a UUID) for life and a deleted topic's id is remembered, so
//! a re-created topic is never confused with the old one.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::replicas::{Election, PartitionState};
use super::{reject, MetadataState};
use crate::codes;
use crate::command::{CommandOutput, CommandResult, Rejection};

/// Largest partition count of one topic.
pub const MAX_PARTITIONS: u32 = 100_000;
/// Bound on the bytes of one topic's configs (names and values): they live in the Raft state
/// and a client sets them.
pub const MAX_TOPIC_CONFIG_BYTES: usize = 64 * 1024;
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub name: String,
    /// Stable id (a UUID): a re-created topic gets a new one.
    pub id: [u8; 16],
    pub configs: BTreeMap<String, String>,
    /// Indexed by partition number.
    pub partitions: Vec<PartitionState>,
}

impl TopicState {
    /// `unclean.leader.election.enable` set on the topic (the broker default is false).
    pub fn unclean_election(&self) -> bool {
        self.configs
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v == "true")
    }
}

impl MetadataState {
    /// All topics, by name.
    pub fn topics(&self) -> &BTreeMap<String, TopicState> {
        &self.topics
    }

    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.topics.get(name)
    }

    /// Ids of every deleted topic.
    pub fn deleted_topics(&self) -> &BTreeSet<[u8; 16]> {
        &self.deleted_topics
    }

    /// Whether the topic with this id existed and was deleted.
    pub fn is_deleted(&self, id: &[u8; 16]) -> bool {
        self.deleted_topics.contains(id)
    }

    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<&TopicState> {
        self.topics.values().find(|t| &t.id == id)
    }

    pub fn partition(&self, topic: &str, partition: u32) -> Option<&PartitionState> {
        self.topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
    }

    /// `CreateTopic`: a legal, unused name and id, and replicas for every partition.
    pub(super) fn apply_create_topic(
        &mut self,
        name: &str,
        id: [u8; 16],
        partitions: u32,
        replication_factor: u32,
        configs: &BTreeMap<String, String>,
        assignment: &[Vec<u64>],
    ) -> CommandResult {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return reject(
                codes::TOPIC_ALREADY_EXISTS,
                format!("topic {name} already exists"),
            );
        }
        if id == [0; 16] {
            return reject(codes::INVALID_REQUEST, "topic id must not be zero");
        }
        if self.topic_by_id(&id).is_some() || self.deleted_topics.contains(&id) {
            return reject(
                codes::TOPIC_ALREADY_EXISTS,
                format!("topic id of {name} is already in use"),
            );
        }
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return reject(
                codes::INVALID_PARTITIONS,
                format!("partition count {partitions} must be in 1..={MAX_PARTITIONS}"),
            );
        }
        check_config_size(configs)?;
        let replicas = self.replica_sets(&id, &[], partitions, replication_factor, assignment)?;
        self.topics.insert(
            name.to_owned(),
            TopicState {
                name: name.to_owned(),
                id,
                configs: configs.clone(),
                partitions: replicas.iter().cloned().map(PartitionState::new).collect(),
            },
        );
        Ok(CommandOutput::TopicCreated { id, replicas })
    }

    /// `AlterTopicConfigs`: the topic's new configs. Turning unclean leader election on elects
    /// leaders for its leaderless partitions at once, as Kafka's controller does.
    pub(super) fn apply_alter_topic_configs(
        &mut self,
        name: &str,
        set: &BTreeMap<String, String>,
        delete: &[String],
        replace: bool,
    ) -> CommandResult {
        let live = self.live_ids();
        let Some(topic) = self.topics.get_mut(name) else {
            return unknown_topic(name);
        };
        let mut configs = if replace {
            BTreeMap::new()
        } else {
            topic.configs.clone()
        };
        for k in delete {
            configs.remove(k);
        }
        configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        check_config_size(&configs)?;
        topic.configs = configs;
        if topic.unclean_election() {
            let election = Election::Liveness { unclean: true };
            for p in &mut topic.partitions {
                p.elect(election, &|id| live.contains(&id));
            }
        }
        Ok(CommandOutput::Done)
    }

    /// `AlterBrokerConfigs`: a registered broker's own configs or the cluster-wide defaults,
    /// within the size bound of a topic's configs.
    pub(super) fn apply_alter_broker_configs(
        &mut self,
        broker: Option<u64>,
        set: &BTreeMap<String, String>,
        delete: &[String],
    ) -> CommandResult {
        if let Some(id) = broker.filter(|id| !self.brokers.contains_key(id)) {
            return reject(
                codes::INVALID_REQUEST,
                format!("broker {id} is not registered"),
            );
        }
        let mut configs = self
            .broker_configs
            .get(&broker)
            .cloned()
            .unwrap_or_default();
        for k in delete {
            configs.remove(k);
        }
        configs.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
        check_config_size(&configs)?;
        if configs.is_empty() {
            self.broker_configs.remove(&broker);
        } else {
            self.broker_configs.insert(broker, configs);
        }
        Ok(CommandOutput::Done)
    }

    /// The dynamic broker configs: cluster-wide defaults under `None`, a broker's under its id.
    pub fn broker_configs(&self) -> &BTreeMap<Option<u64>, BTreeMap<String, String>> {
        &self.broker_configs
    }

    /// `DeleteTopic`: the topic goes, its id is remembered as deleted.
    pub(super) fn apply_delete_topic(&mut self, name: &str) -> CommandResult {
        match self.topics.remove(name) {
            Some(topic) => {
                self.deleted_topics.insert(topic.id);
                Ok(CommandOutput::Done)
            }
            None => unknown_topic(name),
        }
    }

    /// `CreatePartitions`: grow a topic, keeping the replication factor of its first partition.
    pub(super) fn apply_create_partitions(
        &mut self,
        name: &str,
        count: u32,
        assignment: &[Vec<u64>],
    ) -> CommandResult {
        let Some(topic) = self.topics.get(name) else {
            return unknown_topic(name);
        };
        let current = topic.partitions.len() as u32;
        if count <= current || count > MAX_PARTITIONS {
            return reject(
                codes::INVALID_PARTITIONS,
                format!(
                    "topic {name} has {current} partitions; the new count {count} must be larger \
                     and at most {MAX_PARTITIONS}"
                ),
            );
        }
        let leaders: Vec<u64> = topic.partitions.iter().map(|p| p.replicas[0]).collect();
        let rf = topic.partitions.first().map_or(1, |p| p.replicas.len()) as u32;
        let replicas = self.replica_sets(&topic.id, &leaders, count - current, rf, assignment)?;
        if let Some(topic) = self.topics.get_mut(name) {
            topic
                .partitions
                .extend(replicas.iter().cloned().map(PartitionState::new));
        }
        Ok(CommandOutput::PartitionsCreated {
            first: current,
            replicas,
        })
    }
}

fn unknown_topic(name: &str) -> CommandResult {
    reject(
        codes::UNKNOWN_TOPIC_OR_PARTITION,
        format!("topic {name} does not exist"),
    )
}

/// Configs of at most [`MAX_TOPIC_CONFIG_BYTES`] in names and values (a topic's, or a
/// broker's dynamic ones).
fn check_config_size(configs: &BTreeMap<String, String>) -> Result<(), Rejection> {
    let bytes: usize = configs.iter().map(|(k, v)| k.len() + v.len()).sum();
    if bytes > MAX_TOPIC_CONFIG_BYTES {
        return Err(Rejection::new(
            codes::INVALID_CONFIG,
            format!(
                "topic configs of {bytes} bytes exceed the {MAX_TOPIC_CONFIG_BYTES}-byte bound"
            ),
        ));
    }
    Ok(())
}

/// Kafka's rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn validate_topic_name(name: &str) -> Result<(), Rejection> {
    let legal = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-');
    if legal {
        Ok(())
    } else {
        Err(Rejection::new(
            codes::INVALID_TOPIC_EXCEPTION,
            format!("illegal topic name {name:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;
    use crate::state::testkit::*;

    #[test]
    fn create_topic_keeps_configs() {
        let mut s = with_brokers(&[1]);
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        s.apply(&MetadataCommand::CreateTopic {
            name: "t".into(),
            id: [1; 16],
            partitions: 1,
            replication_factor: 1,
            configs: configs.clone(),
            assignment: vec![],
        })
        .unwrap();
        assert_eq!(s.topic("t").unwrap().configs, configs);
    }

    #[test]
    fn alter_topic_configs_merges_or_replaces_within_the_bound() {
        let mut s = with_brokers(&[1]);
        s.apply(&create("t", 1, 1)).unwrap();
        let alter =
            |set: &[(&str, &str)], delete: &[&str], replace| MetadataCommand::AlterTopicConfigs {
                name: "t".into(),
                set: set
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                delete: delete.iter().map(|k| k.to_string()).collect(),
                replace,
            };
        let configs = |s: &MetadataState| s.topic("t").unwrap().configs.clone();
        s.apply(&alter(
            &[("retention.ms", "5"), ("segment.ms", "9")],
            &[],
            false,
        ))
        .unwrap();
        s.apply(&alter(&[("retention.bytes", "7")], &["segment.ms"], false))
            .unwrap();
        assert_eq!(
            configs(&s),
            BTreeMap::from([
                ("retention.bytes".to_string(), "7".to_string()),
                ("retention.ms".to_string(), "5".to_string())
            ])
        );
        s.apply(&alter(&[("segment.ms", "1")], &[], true)).unwrap();
        assert_eq!(
            configs(&s),
            BTreeMap::from([("segment.ms".to_string(), "1".to_string())])
        );
        let huge = "x".repeat(MAX_TOPIC_CONFIG_BYTES);
        assert_rejected(
            &mut s,
            alter(&[("k", &huge)], &[], false),
            codes::INVALID_CONFIG,
        );
        assert_eq!(configs(&s).len(), 1, "a rejected change changes nothing");
        let mut gone = alter(&[], &[], false);
        if let MetadataCommand::AlterTopicConfigs { name, .. } = &mut gone {
            *name = "nope".into();
        }
        assert_rejected(&mut s, gone, codes::UNKNOWN_TOPIC_OR_PARTITION);
    }

    #[test]
    fn create_topic_rejections() {
        let mut empty = MetadataState::default();
        assert_rejected(
            &mut empty,
            create("t", 1, 3),
            codes::INVALID_REPLICATION_FACTOR,
        );

        let mut s = with_brokers(&[1, 2]);
        s.apply(&create("t", 1, 3)).unwrap();
        assert_rejected(&mut s, create("t", 2, 3), codes::TOPIC_ALREADY_EXISTS);
        assert_rejected(&mut s, create("u", 1, 3), codes::TOPIC_ALREADY_EXISTS);
        assert_rejected(&mut s, create("u", 0, 3), codes::INVALID_REQUEST);
        assert_rejected(&mut s, create("u", 2, 0), codes::INVALID_PARTITIONS);
        assert_rejected(
            &mut s,
            create("u", 2, MAX_PARTITIONS + 1),
            codes::INVALID_PARTITIONS,
        );
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert_rejected(&mut s, create(bad, 2, 1), codes::INVALID_TOPIC_EXCEPTION);
        }
        s.apply(&create("a._-Z9", 2, 1)).unwrap();
    }

    #[test]
    fn delete_topic_and_recreate_with_new_id() {
        let mut s = with_brokers(&[1]);
        s.apply(&create("t", 1, 2)).unwrap();
        assert_eq!(
            s.apply(&MetadataCommand::DeleteTopic { name: "t".into() }),
            Ok(CommandOutput::Done)
        );
        assert!(s.topic("t").is_none());
        assert!(s.topic_by_id(&[1; 16]).is_none());
        assert!(s.is_deleted(&[1; 16]) && !s.is_deleted(&[2; 16]));
        assert_rejected(
            &mut s,
            MetadataCommand::DeleteTopic { name: "t".into() },
            codes::UNKNOWN_TOPIC_OR_PARTITION,
        );
        // A deleted topic's id is never reused.
        assert_rejected(&mut s, create("t", 1, 1), codes::TOPIC_ALREADY_EXISTS);
        s.apply(&create("t", 2, 1)).unwrap();
        assert_eq!(s.topic("t").unwrap().id, [2; 16]);
    }

    #[test]
    fn create_partitions_rejections() {
        let mut s = with_brokers(&[1]);
        s.apply(&create("t", 1, 3)).unwrap();
        let grow = |name: &str, count| MetadataCommand::CreatePartitions {
            name: name.into(),
            count,
            assignment: vec![],
        };
        assert_rejected(&mut s, grow("t", 3), codes::INVALID_PARTITIONS);
        assert_rejected(&mut s, grow("t", 2), codes::INVALID_PARTITIONS);
        assert_rejected(
            &mut s,
            grow("t", MAX_PARTITIONS + 1),
            codes::INVALID_PARTITIONS,
        );
        assert_rejected(&mut s, grow("nope", 5), codes::UNKNOWN_TOPIC_OR_PARTITION);
        // Nobody live to own new partitions.
        s.apply(&register(2)).unwrap();
        s.apply(&MetadataCommand::BrokerHeartbeat { id: 2, at_ms: 1 })
            .unwrap();
        let mut dead = s.clone();
        dead.clock_ms = 1_000_000;
        assert_rejected(&mut dead, grow("t", 5), codes::INVALID_REPLICATION_FACTOR);
    }

    #[test]
    fn dynamic_broker_configs_are_bounded_and_deleted() {
        let mut s = with_brokers(&[1]);
        let alter =
            |broker, set: &[(&str, &str)], delete: &[&str]| MetadataCommand::AlterBrokerConfigs {
                broker,
                set: set
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                delete: delete.iter().map(|k| k.to_string()).collect(),
            };
        s.apply(&alter(None, &[("log.retention.ms", "1000")], &[]))
            .unwrap();
        s.apply(&alter(Some(1), &[("log.segment.bytes", "2000")], &[]))
            .unwrap();
        assert_eq!(s.broker_configs()[&None]["log.retention.ms"], "1000");
        assert_eq!(s.broker_configs()[&Some(1)]["log.segment.bytes"], "2000");
        assert_rejected(
            &mut s,
            alter(Some(9), &[("a", "b")], &[]),
            codes::INVALID_REQUEST,
        );
        let huge = "x".repeat(MAX_TOPIC_CONFIG_BYTES);
        assert_rejected(
            &mut s,
            alter(None, &[("k", &huge)], &[]),
            codes::INVALID_CONFIG,
        );
        s.apply(&alter(None, &[], &["log.retention.ms"])).unwrap();
        assert!(!s.broker_configs().contains_key(&None));
    }
}
