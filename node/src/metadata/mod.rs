//! The node's view of the cluster metadata, which lives in the Raft group (`brook-raft`).
//!
//! - [`image`]: readers take an immutable [`MetadataImage`], rebuilt from the local copy of the
//!   Raft state machine whenever a new entry was applied.
//! - [`formation`]: starting this node's Raft member and forming or joining the cluster.
//! - [`secret`]: the cluster secret the Raft port authenticates peers with.
//!
//! Writers go through [`Metadata`], which proposes a command to the Raft group (forwarded to the
//! leader from a follower) and returns once this node's image shows the result.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use brook_raft::{MetadataCommand, MetadataRaft, MetadataReader, ScramCredential};
use uuid::Uuid;

pub mod formation;
mod image;
pub mod secret;

pub use brook_raft::Error as MetaError;
pub(crate) use image::{node_id, MetadataImage, TopicMeta};

use crate::config::Values;

/// A topic to create.
pub(crate) struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: u32,
    /// Only the configs the request sets.
    pub configs: BTreeMap<String, String>,
    /// Replicas per partition, or empty for brook's placement.
    pub assignment: Vec<Vec<u64>>,
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
    /// The static broker settings (dynamic ones from the Raft state go over them).
    defaults: Arc<Values>,
}

impl Metadata {
    pub fn new(raft: MetadataRaft, defaults: Values) -> Self {
        let reader = raft.reader();
        Metadata {
            defaults: Arc::new(defaults),
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
                Arc::new(MetadataImage::from_state(
                    state,
                    &self.defaults,
                    self.raft.node_id(),
                )),
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

    /// A user's SCRAM credential for a mechanism (Kafka's number), from the local image.
    pub fn scram_credential(&self, user: &str, mechanism: u8) -> Option<ScramCredential> {
        self.reader
            .read(|s| s.scram_credential(user, mechanism).cloned())
    }

    /// Every SCRAM user, with each credential's mechanism and iterations.
    pub fn scram_users(&self) -> Vec<(String, Vec<(u8, u32)>)> {
        self.reader.read(|s| {
            s.scram_users()
                .map(|(user, mechanisms)| (user.to_owned(), mechanisms))
                .collect()
        })
    }

    /// Reads the ACL bindings of the local image.
    pub fn acls<R>(&self, f: impl FnOnce(&brook_raft::acl::Acls) -> R) -> R {
        self.reader.read(|s| f(s.acls()))
    }

    /// The Raft leader, which answers as Kafka's controller; -1 while none is known.
    pub fn controller_id(&self) -> i32 {
        self.raft.current_leader().map_or(-1, node_id)
    }

    /// Like [`Metadata::write`], also returning the log index the command was applied at.
    pub async fn write_indexed(
        &self,
        cmd: MetadataCommand,
    ) -> Result<(brook_raft::CommandOutput, u64), MetaError> {
        self.raft.write_indexed(cmd).await
    }

    pub async fn write(
        &self,
        cmd: MetadataCommand,
    ) -> Result<brook_raft::CommandOutput, MetaError> {
        self.raft.write(cmd).await
    }

    /// Creates a topic; returns its id. Once the write is committed the topic was created, even
    /// if a delete that raced it has already removed it again from this node's image.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<Uuid, MetaError> {
        let id = Uuid::new_v4();
        self.write(MetadataCommand::CreateTopic {
            name: topic.name,
            id: id.into_bytes(),
            partitions: partition_count(topic.partitions)?,
            replication_factor: topic.replication_factor,
            configs: topic.configs,
            assignment: topic.assignment,
        })
        .await?;
        Ok(id)
    }

    /// Deletes a topic; returns it as this node last saw it (`None` if its image did not show
    /// it yet: the Raft log, not this node's image, decides whether the topic exists).
    pub async fn delete_topic(&self, name: &str) -> Result<Option<Arc<TopicMeta>>, MetaError> {
        let before = self.image().topic(name).cloned();
        self.write(MetadataCommand::DeleteTopic {
            name: name.to_owned(),
        })
        .await?;
        Ok(before)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Vec<Vec<u64>>,
    ) -> Result<(), MetaError> {
        self.write(MetadataCommand::CreatePartitions {
            name: name.to_owned(),
            count: partition_count(count)?,
            assignment,
        })
        .await?;
        Ok(())
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
}
