//! The state every request handler shares: settings, metadata, the partition actors and the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use brook_actors::{PartitionHandle, PartitionKey, PartitionRegistry};
use brook_storage::Store;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::groups::Coordinator;
use crate::metadata::{MetaError, Metadata, MetadataImage, TopicMeta};
use crate::topic_config::TopicConfig;

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<Metadata>,
    pub partitions: PartitionRegistry,
    pub groups: Coordinator,
    pub store: Store,
    /// The host and port clients are told to connect to.
    pub advertised: (String, i32),
    /// Flips to true when the node begins to shut down; long polls return early.
    pub shutdown: watch::Receiver<bool>,
    /// Serialises [`Broker::reconcile`] runs.
    reconciling: tokio::sync::Mutex<()>,
}

impl Broker {
    pub fn new(
        config: BrokerConfig,
        metadata: Arc<Metadata>,
        partitions: PartitionRegistry,
        groups: Coordinator,
        store: Store,
        advertised: (String, i32),
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Broker {
            config,
            metadata,
            partitions,
            groups,
            store,
            advertised,
            shutdown,
            reconciling: tokio::sync::Mutex::new(()),
        }
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    /// The settings in force for a topic. Configs were validated when they were stored, so a
    /// failure here means the broker defaults changed; fall back to them and say so.
    pub fn topic_config(&self, topic: &TopicMeta) -> TopicConfig {
        TopicConfig::resolve(&self.config, &topic.configs).unwrap_or_else(|e| {
            tracing::warn!(topic = %topic.name, error = %e, "stored topic config no longer valid; using broker defaults");
            TopicConfig::resolve(&self.config, &Default::default()).unwrap_or(TopicConfig {
                log: Default::default(),
                log_append_time: false,
                max_message_bytes: 1_048_588,
                min_insync_replicas: 1,
                ack_before_flush: self.config.ack_before_flush,
            })
        })
    }

    /// The actor of a partition this node owns.
    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<PartitionHandle> {
        self.partitions.get(key(topic_id, partition))
    }

    /// The leader epoch of a partition: bumped by the metadata whenever its owner changes.
    pub fn leader_epoch(&self, topic: &TopicMeta, partition: i32) -> i32 {
        topic.owner(partition).map_or(0, |o| o.leader_epoch)
    }

    /// Makes the running actors match the metadata: starts one for every partition this node
    /// owns, and removes the data of partitions whose topic was deleted (a re-created topic
    /// has a new id, so its old data is never shown). Data of a topic id the metadata has not
    /// heard of is kept: this node's image may simply lag behind the log.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let _running = self.reconciling.lock().await;
        let image = self.image();
        let me = self.node_id();
        for topic in image.topics() {
            let config = self.topic_config(topic).partition_config();
            for (p, owner) in (0..topic.partitions).zip(&topic.owners) {
                if owner.node == me {
                    self.partitions.open(key(topic.id, p), config)?;
                }
            }
        }
        let deleted = |k: &PartitionKey| image.is_deleted(Uuid::from_bytes(k.topic_id));
        let mut stale: Vec<PartitionKey> = self.partitions.keys();
        for (topic_id, partition) in self.store.partitions()? {
            stale.push(PartitionKey {
                topic_id,
                partition,
            });
        }
        stale.sort();
        stale.dedup();
        for k in stale.into_iter().filter(deleted) {
            tracing::info!(partition = %k, "removing data of a deleted partition");
            self.partitions.delete(k).await?;
        }
        Ok(())
    }

    /// Reconcile, logging instead of failing: the next metadata change tries again.
    pub async fn reconcile_or_log(&self) {
        if let Err(e) = self.reconcile().await {
            tracing::error!(error = %e, "starting or removing partitions failed");
        }
    }

    /// Creates a topic through Raft and starts the partitions this node owns.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        assignment: Vec<u64>,
    ) -> Result<Arc<TopicMeta>, MetaError> {
        let topic = self
            .metadata
            .create_topic(name, partitions, configs, assignment)
            .await?;
        self.reconcile_or_log().await;
        Ok(topic)
    }

    /// Deletes a topic through Raft; every node then removes its partitions' data.
    pub async fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, MetaError> {
        let topic = self.metadata.delete_topic(name).await?;
        self.reconcile_or_log().await;
        Ok(topic)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignment: Vec<u64>,
    ) -> Result<Arc<TopicMeta>, MetaError> {
        let topic = self
            .metadata
            .create_partitions(name, count, assignment)
            .await?;
        self.reconcile_or_log().await;
        Ok(topic)
    }
}

pub fn key(topic_id: Uuid, partition: i32) -> PartitionKey {
    PartitionKey {
        topic_id: topic_id.into_bytes(),
        partition,
    }
}
