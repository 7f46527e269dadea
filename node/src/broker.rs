//! The state every request handler shares: settings, metadata, the partition actors and the store.

use std::sync::Arc;

use brook_actors::{PartitionHandle, PartitionKey, PartitionRegistry};
use brook_storage::Store;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::metadata::{Metadata, MetadataImage, TopicMeta};
use crate::topic_config::TopicConfig;

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Metadata,
    pub partitions: PartitionRegistry,
    pub store: Store,
    /// The host and port clients are told to connect to.
    pub advertised: (String, i32),
    /// Flips to true when the node begins to shut down; long polls return early.
    pub shutdown: watch::Receiver<bool>,
}

impl Broker {
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
            })
        })
    }

    /// The actor of a partition this node owns.
    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<PartitionHandle> {
        self.partitions.get(key(topic_id, partition))
    }

    /// Makes the running actors match the metadata: starts one for every partition of every
    /// topic, and removes the data of partitions whose topic no longer exists.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let image = self.image();
        for topic in image.topics() {
            let config = self.topic_config(topic).partition_config();
            for p in 0..topic.partitions {
                self.partitions.open(key(topic.id, p), config)?;
            }
        }
        let live = |k: &PartitionKey| {
            image
                .topic_by_id(Uuid::from_bytes(k.topic_id))
                .is_some_and(|t| k.partition < t.partitions)
        };
        let mut stale: Vec<PartitionKey> = self.partitions.keys();
        for (topic_id, partition) in self.store.partitions()? {
            stale.push(PartitionKey {
                topic_id,
                partition,
            });
        }
        stale.sort();
        stale.dedup();
        for k in stale.into_iter().filter(|k| !live(k)) {
            tracing::info!(partition = %k, "removing data of a deleted partition");
            self.partitions.delete(k).await?;
        }
        Ok(())
    }
}

pub fn key(topic_id: Uuid, partition: i32) -> PartitionKey {
    PartitionKey {
        topic_id: topic_id.into_bytes(),
        partition,
    }
}

impl Broker {
    /// Creates a topic in the metadata and starts its partition actors.
    pub async fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: std::collections::BTreeMap<String, String>,
    ) -> Result<Arc<TopicMeta>, crate::metadata::MetaError> {
        let topic = self
            .metadata
            .create_topic(name, partitions, configs)
            .await?;
        self.start_partitions(&topic);
        Ok(topic)
    }

    /// Removes a topic from the metadata, then stops its actors and deletes its data.
    pub async fn delete_topic(
        &self,
        name: &str,
    ) -> Result<Arc<TopicMeta>, crate::metadata::MetaError> {
        let topic = self.metadata.delete_topic(name).await?;
        for p in 0..topic.partitions {
            if let Err(e) = self.partitions.delete(key(topic.id, p)).await {
                // The metadata no longer has the topic; the next reconcile removes what is left.
                tracing::error!(topic = %name, partition = p, error = %e, "removing partition data failed");
            }
        }
        Ok(topic)
    }

    pub async fn create_partitions(
        &self,
        name: &str,
        count: i32,
    ) -> Result<Arc<TopicMeta>, crate::metadata::MetaError> {
        let topic = self.metadata.create_partitions(name, count).await?;
        self.start_partitions(&topic);
        Ok(topic)
    }

    fn start_partitions(&self, topic: &TopicMeta) {
        let config = self.topic_config(topic).partition_config();
        for p in 0..topic.partitions {
            if let Err(e) = self.partitions.open(key(topic.id, p), config) {
                tracing::error!(topic = %topic.name, partition = p, error = %e, "cannot start partition");
            }
        }
    }
}

impl Broker {
    /// The leader epoch of a partition. A single owner that never changes keeps epoch 0; the
    /// Raft metadata bumps it when ownership moves.
    pub fn leader_epoch(&self, _topic: &TopicMeta, _partition: i32) -> i32 {
        0
    }
}
