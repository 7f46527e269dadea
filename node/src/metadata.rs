//! The node's cluster metadata: topics (with stable ids), partition counts, topic configs, the
//! cluster id and producer-id allocation.
//!
//! Readers take an immutable [`MetadataImage`] snapshot; writers go through [`Metadata`], which
//! persists each change durably before publishing a new image. On a single node the state lives
//! in a sled tree; the Raft group replaces this store behind the same methods.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use brook_storage::Store;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A topic as the metadata knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    /// Stable id: a re-created topic gets a new one, so it never sees the old data.
    pub id: Uuid,
    pub partitions: i32,
    /// Only the configs set on the topic; the rest come from broker defaults.
    pub configs: BTreeMap<String, String>,
}

/// A read-only snapshot of the metadata.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    topics: BTreeMap<String, Arc<TopicMeta>>,
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.topics.values().find(|t| t.id == id)
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicMeta>> {
        self.topics.values()
    }
}

/// Why a metadata change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetaError {
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("metadata storage: {0}")]
    Storage(String),
}

impl From<brook_storage::Error> for MetaError {
    fn from(e: brook_storage::Error) -> Self {
        MetaError::Storage(e.to_string())
    }
}

impl From<sled::Error> for MetaError {
    fn from(e: sled::Error) -> Self {
        MetaError::Storage(e.to_string())
    }
}

/// Producer ids are handed out from blocks; only the end of the current block is persisted,
/// so a restart skips what was left of a block instead of reusing an id.
const PRODUCER_ID_BLOCK: i64 = 1000;
const TOPIC_PREFIX: &str = "topic/";
const CLUSTER_ID_KEY: &str = "cluster.id";
const PRODUCER_ID_KEY: &str = "producer.id.block.end";

#[derive(Default)]
struct ProducerIds {
    next: i64,
    end: i64,
}

pub struct Metadata {
    tree: sled::Tree,
    store: Store,
    image: RwLock<Arc<MetadataImage>>,
    /// Serialises writers so each change is computed against the latest state.
    writes: tokio::sync::Mutex<ProducerIds>,
    cluster_id: String,
}

impl Metadata {
    pub fn open(store: &Store) -> Result<Self, MetaError> {
        let tree = store.open_tree("brook.metadata")?;
        let mut topics = BTreeMap::new();
        for entry in tree.scan_prefix(TOPIC_PREFIX) {
            let (_, value) = entry?;
            let topic: TopicMeta = bincode::deserialize(&value)
                .map_err(|e| MetaError::Storage(format!("corrupt topic record: {e}")))?;
            topics.insert(topic.name.clone(), Arc::new(topic));
        }
        let cluster_id = match tree.get(CLUSTER_ID_KEY)? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => {
                let id = Uuid::new_v4().simple().to_string();
                tree.insert(CLUSTER_ID_KEY, id.as_bytes())?;
                id
            }
        };
        let block_end = match tree.get(PRODUCER_ID_KEY)? {
            Some(bytes) => i64::from_be_bytes(
                bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| MetaError::Storage("corrupt producer id block".into()))?,
            ),
            None => 0,
        };
        Ok(Metadata {
            tree,
            store: store.clone(),
            image: RwLock::new(Arc::new(MetadataImage { topics })),
            writes: tokio::sync::Mutex::new(ProducerIds {
                next: block_end,
                end: block_end,
            }),
            cluster_id,
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<TopicMeta>, MetaError> {
        let _guard = self.writes.lock().await;
        if self.image().topic(name).is_some() {
            return Err(MetaError::TopicExists(name.to_string()));
        }
        let topic = TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions,
            configs,
        };
        self.persist(&topic).await?;
        Ok(self.publish(|image| {
            let topic = Arc::new(topic);
            image.topics.insert(name.to_string(), topic.clone());
            topic
        }))
    }

    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, MetaError> {
        let _guard = self.writes.lock().await;
        let topic = self
            .image()
            .topic(name)
            .cloned()
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string()))?;
        self.tree.remove(topic_key(name))?;
        self.store.flush().await?;
        self.publish(|image| image.topics.remove(name));
        Ok(topic)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
    ) -> Result<Arc<TopicMeta>, MetaError> {
        let _guard = self.writes.lock().await;
        let current = self
            .image()
            .topic(name)
            .cloned()
            .ok_or_else(|| MetaError::UnknownTopic(name.to_string()))?;
        if count <= current.partitions {
            return Err(MetaError::InvalidPartitions(format!(
                "topic `{name}` has {} partitions; the new count must be larger, got {count}",
                current.partitions
            )));
        }
        let topic = TopicMeta {
            partitions: count,
            ..(*current).clone()
        };
        self.persist(&topic).await?;
        Ok(self.publish(|image| {
            let topic = Arc::new(topic);
            image.topics.insert(name.to_string(), topic.clone());
            topic
        }))
    }

    /// A producer id never handed out before on this cluster.
    pub async fn allocate_producer_id(&self) -> Result<i64, MetaError> {
        let mut ids = self.writes.lock().await;
        if ids.next >= ids.end {
            let end = ids.end + PRODUCER_ID_BLOCK;
            self.tree.insert(PRODUCER_ID_KEY, &end.to_be_bytes())?;
            self.store.flush().await?;
            ids.end = end;
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }

    async fn persist(&self, topic: &TopicMeta) -> Result<(), MetaError> {
        let bytes = bincode::serialize(topic).map_err(|e| MetaError::Storage(e.to_string()))?;
        self.tree.insert(topic_key(&topic.name), bytes)?;
        self.store.flush().await?;
        Ok(())
    }

    fn publish<T>(&self, change: impl FnOnce(&mut MetadataImage) -> T) -> T {
        let mut guard = self
            .image
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = (**guard).clone();
        let out = change(&mut next);
        *guard = Arc::new(next);
        out
    }
}

fn topic_key(name: &str) -> String {
    format!("{TOPIC_PREFIX}{name}")
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

    #[tokio::test]
    async fn topics_ids_and_producer_ids_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (id, cluster, pid) = {
            let store = Store::open(dir.path()).unwrap();
            let meta = Metadata::open(&store).unwrap();
            let t = meta.create_topic("a", 2, BTreeMap::new()).await.unwrap();
            assert_eq!(
                meta.create_topic("a", 1, BTreeMap::new()).await,
                Err(MetaError::TopicExists("a".into()))
            );
            meta.create_partitions("a", 3).await.unwrap();
            assert!(meta.create_partitions("a", 3).await.is_err());
            let pid = meta.allocate_producer_id().await.unwrap();
            assert_eq!(meta.allocate_producer_id().await.unwrap(), pid + 1);
            (t.id, meta.cluster_id().to_string(), pid)
        };
        let store = Store::open(dir.path()).unwrap();
        let meta = Metadata::open(&store).unwrap();
        let t = meta.image().topic("a").cloned().unwrap();
        assert_eq!((t.id, t.partitions), (id, 3));
        assert_eq!(meta.cluster_id(), cluster);
        assert!(meta.allocate_producer_id().await.unwrap() > pid + 1);
        meta.delete_topic("a").await.unwrap();
        let again = meta.create_topic("a", 1, BTreeMap::new()).await.unwrap();
        assert_ne!(again.id, id);
    }
}
