//! The node's view of the cluster metadata, which lives in the Raft group (`brook-raft`).
//!
//! Readers take an immutable [`MetadataImage`], rebuilt from the local copy of the Raft state
//! machine whenever a new entry was applied. Writers go through [`Metadata`], which proposes a
//! command to the Raft group (forwarded to the leader from a follower) and returns once this
//! node's image shows the result.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use brook_raft::{MetadataCommand, MetadataRaft, MetadataReader, MetadataState};
use uuid::Uuid;

pub use brook_raft::Error as MetaError;

/// A topic as the metadata knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    pub name: String,
    /// Stable id: a re-created topic gets a new one, so it never sees the old data.
    pub id: Uuid,
    pub partitions: i32,
    /// Only the configs set on the topic; the rest come from broker defaults.
    pub configs: BTreeMap<String, String>,
    /// Per partition: leader, replicas and in-sync set.
    pub owners: Vec<PartitionMeta>,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    /// The leader; -1 while the partition has none.
    pub node: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The replica set, preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// A move in progress: replicas joining and leaving (both are in `replicas` meanwhile).
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl TopicMeta {
    pub fn owner(&self, partition: i32) -> Option<&PartitionMeta> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.owners.get(p))
    }

    /// The replication factor (of the first partition; they all share it unless assigned by
    /// hand).
    pub fn replication_factor(&self) -> usize {
        self.owners.first().map_or(1, |p| p.replicas.len())
    }
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMeta {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
    /// Heartbeating within the session timeout.
    pub live: bool,
}

/// A read-only snapshot of the metadata.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    topics: BTreeMap<String, Arc<TopicMeta>>,
    brokers: BTreeMap<i32, BrokerMeta>,
    cluster_id: Option<String>,
    /// Ids of deleted topics, whose data every node removes.
    deleted: BTreeSet<Uuid>,
}

impl MetadataImage {
    fn from_state(state: &MetadataState) -> Self {
        let topics = state
            .topics()
            .values()
            .map(|t| {
                let owners = t
                    .partitions
                    .iter()
                    .map(|p| PartitionMeta {
                        node: p.leader.map_or(-1, node_id),
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        replicas: p.replicas.iter().copied().map(node_id).collect(),
                        isr: p.isr.iter().copied().map(node_id).collect(),
                        adding: p.adding.iter().copied().map(node_id).collect(),
                        removing: p.removing.iter().copied().map(node_id).collect(),
                    })
                    .collect::<Vec<_>>();
                let meta = TopicMeta {
                    name: t.name.clone(),
                    id: Uuid::from_bytes(t.id),
                    partitions: i32::try_from(owners.len()).unwrap_or(i32::MAX),
                    configs: t.configs.clone(),
                    owners,
                };
                (t.name.clone(), Arc::new(meta))
            })
            .collect();
        let brokers = state
            .brokers()
            .values()
            .map(|b| {
                let broker = BrokerMeta {
                    id: node_id(b.id),
                    host: b.host.clone(),
                    port: i32::from(b.port),
                    rack: b.rack.clone(),
                    live: state.is_live(b.id),
                };
                (broker.id, broker)
            })
            .collect();
        MetadataImage {
            topics,
            brokers,
            cluster_id: state.cluster_id().map(str::to_owned),
            deleted: state
                .deleted_topics()
                .iter()
                .copied()
                .map(Uuid::from_bytes)
                .collect(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.topics.values().find(|t| t.id == id)
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicMeta>> {
        self.topics.values()
    }

    /// Every registered broker, live or not, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerMeta> {
        self.brokers.values()
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerMeta> {
        self.brokers.get(&id)
    }

    pub fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| b.live)
    }

    /// The cluster id, once the cluster was initialized.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Whether the topic with this id was deleted (its data may be removed everywhere).
    pub fn is_deleted(&self, id: Uuid) -> bool {
        self.deleted.contains(&id)
    }

    /// Whether both images hold the same topics (partition owners included) and deletions,
    /// i.e. whether partition actors need reconciling between them.
    pub fn same_topics(&self, other: &MetadataImage) -> bool {
        self.topics == other.topics && self.deleted == other.deleted
    }
}

/// Raft node ids are broker ids, which Kafka puts on the wire as `i32`.
fn node_id(id: u64) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}

/// Producer ids are reserved from the Raft group in blocks, so most InitProducerId requests
/// need no Raft write; an unused rest of a block is skipped after a restart, never reused.
const PRODUCER_ID_BLOCK: u32 = 1000;

#[derive(Default)]
struct ProducerIds {
    next: i64,
    end: i64,
}

pub struct Metadata {
    raft: MetadataRaft,
    reader: MetadataReader,
    /// The image and the log index it was built at.
    image: RwLock<(Option<u64>, Arc<MetadataImage>)>,
    producer_ids: tokio::sync::Mutex<ProducerIds>,
}

impl Metadata {
    pub fn new(raft: MetadataRaft) -> Self {
        let reader = raft.reader();
        Metadata {
            raft,
            reader,
            image: RwLock::new((None, Arc::new(MetadataImage::default()))),
            producer_ids: tokio::sync::Mutex::new(ProducerIds::default()),
        }
    }

    pub fn raft(&self) -> &MetadataRaft {
        &self.raft
    }

    /// Stop this node's part of the Raft group.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        self.raft.shutdown().await
    }

    /// The current image; rebuilt only when an entry was applied since the last call.
    pub fn image(&self) -> Arc<MetadataImage> {
        let applied = self.reader.last_applied().map(|l| l.index);
        {
            let cached = self
                .image
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cached.0 == applied && applied.is_some() {
                return cached.1.clone();
            }
        }
        let (applied, image) = self.reader.read_applied(|applied, state| {
            (
                applied.map(|l| l.index),
                Arc::new(MetadataImage::from_state(state)),
            )
        });
        let mut cached = self
            .image
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if cached.0 <= applied {
            *cached = (applied, image.clone());
        }
        image
    }

    pub fn cluster_id(&self) -> String {
        self.image().cluster_id().unwrap_or_default().to_owned()
    }

    /// The Raft leader, which answers as Kafka's controller; -1 while none is known.
    pub fn controller_id(&self) -> i32 {
        self.raft.current_leader().map_or(-1, node_id)
    }

    pub async fn write(
        &self,
        cmd: MetadataCommand,
    ) -> Result<brook_raft::CommandOutput, MetaError> {
        self.raft.write(cmd).await
    }

    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: u32,
        configs: BTreeMap<String, String>,
        assignment: Vec<Vec<u64>>,
    ) -> Result<Arc<TopicMeta>, MetaError> {
        self.write(MetadataCommand::CreateTopic {
            name: name.to_owned(),
            id: Uuid::new_v4().into_bytes(),
            partitions: partition_count(partitions)?,
            replication_factor,
            configs,
            assignment,
        })
        .await?;
        self.created(name)
    }

    /// Deletes a topic; returns it as it was.
    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, MetaError> {
        let before = self.image().topic(name).cloned();
        self.write(MetadataCommand::DeleteTopic {
            name: name.to_owned(),
        })
        .await?;
        before.ok_or_else(|| unknown_topic(name))
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Vec<Vec<u64>>,
    ) -> Result<Arc<TopicMeta>, MetaError> {
        self.write(MetadataCommand::CreatePartitions {
            name: name.to_owned(),
            count: partition_count(count)?,
            assignment,
        })
        .await?;
        self.created(name)
    }

    /// The topic after a write that created or grew it. It can only be missing if a delete
    /// raced the write, which the caller reports like a delete that came first.
    fn created(&self, name: &str) -> Result<Arc<TopicMeta>, MetaError> {
        self.image()
            .topic(name)
            .cloned()
            .ok_or_else(|| unknown_topic(name))
    }

    /// A producer id never handed out before on this cluster.
    pub async fn allocate_producer_id(&self) -> Result<i64, MetaError> {
        let mut ids = self.producer_ids.lock().await;
        if ids.next >= ids.end {
            let out = self
                .write(MetadataCommand::AllocateProducerIds {
                    count: PRODUCER_ID_BLOCK,
                })
                .await?;
            let brook_raft::CommandOutput::ProducerIds { start, count } = out else {
                return Err(MetaError::Write(format!(
                    "unexpected answer to a producer id allocation: {out:?}"
                )));
            };
            ids.next = start;
            ids.end = start + i64::from(count);
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }
}

/// A partition count from a request; the state machine checks the upper bound.
fn partition_count(count: i32) -> Result<u32, MetaError> {
    u32::try_from(count).map_err(|_| {
        MetaError::Rejected(brook_raft::Rejection::new(
            brook_raft::codes::INVALID_PARTITIONS,
            format!("partition count {count} must be positive"),
        ))
    })
}

fn unknown_topic(name: &str) -> MetaError {
    MetaError::Rejected(brook_raft::Rejection::new(
        brook_raft::codes::UNKNOWN_TOPIC_OR_PARTITION,
        format!("topic {name} does not exist"),
    ))
}

/// Kafka's rules for topic names: 1-249 characters from [a-zA-Z0-9._-], not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name `{name}` is not allowed"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters; the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name `{name}` has the illegal character `{c}`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_eu-2").is_ok());
        for bad in ["", ".", "..", "a b", "x/y", &"a".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_reports_owners_epochs_and_liveness() {
        let mut state = MetadataState::default();
        let init = MetadataCommand::InitCluster {
            cluster_id: "c1".into(),
            session_timeout_ms: 1_000,
        };
        state.apply(&init).unwrap();
        for id in [1, 2] {
            let cmd = MetadataCommand::RegisterBroker {
                id,
                host: "127.0.0.1".into(),
                port: 9000 + id as u16,
                rack: None,
                epoch: 1,
                at_ms: 0,
            };
            state.apply(&cmd).unwrap();
        }
        state
            .apply(&MetadataCommand::BrokerHeartbeat {
                id: 1,
                at_ms: 5_000,
            })
            .unwrap();
        state
            .apply(&MetadataCommand::CreateTopic {
                name: "t".into(),
                id: [7; 16],
                partitions: 3,
                replication_factor: 1,
                configs: BTreeMap::new(),
                assignment: vec![],
            })
            .unwrap();
        let image = MetadataImage::from_state(&state);
        assert_eq!(image.cluster_id(), Some("c1"));
        assert!(image.is_live(1));
        assert!(!image.is_live(2), "broker 2 missed its heartbeats");
        let t = image.topic("t").unwrap();
        assert_eq!((t.partitions, t.id), (3, Uuid::from_bytes([7; 16])));
        // Only broker 1 is live, so it owns every partition.
        assert!((0..3).all(|p| t.owner(p).map(|o| o.node) == Some(1)));
        assert_eq!(t.owner(3), None);
        assert_eq!(t.owner(-1), None);
    }
}
