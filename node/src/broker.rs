//! The state every request handler shares: settings, metadata, the partition actors and the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use brook_actors::{
    BecomeFollower, BecomeLeader, Leadership, PartitionHandle, PartitionKey, PartitionRegistry,
};
use brook_storage::Store;
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::groups::Coordinator;
use crate::metadata::{MetaError, Metadata, MetadataImage, TopicMeta};
use crate::replication::{Followed, Followers};
use crate::topic_config::TopicConfig;

pub struct Broker {
    pub config: BrokerConfig,
    pub metadata: Arc<Metadata>,
    pub partitions: PartitionRegistry,
    pub groups: Coordinator,
    /// The replica fetchers of the partitions this node follows.
    pub followers: Followers,
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
            followers: Followers::default(),
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
                min_insync_is_default: true,
                ack_before_flush: self.config.ack_before_flush,
                replica_lag_max_ms: self.config.replica_lag_max_ms,
            })
        })
    }

    /// The actor of a partition this node owns.
    pub fn partition(&self, topic_id: Uuid, partition: i32) -> Option<PartitionHandle> {
        self.partitions.get(key(topic_id, partition))
    }

    /// The replication factor a topic gets when the request does not name one:
    /// `default.replication.factor`, capped at the live brokers.
    pub fn default_replication_factor(&self) -> u32 {
        let live = self.image().brokers().filter(|b| b.live).count().max(1);
        let configured = usize::try_from(self.config.default_replication_factor).unwrap_or(1);
        u32::try_from(configured.clamp(1, live)).unwrap_or(1)
    }

    /// The leader epoch of a partition: bumped by the metadata whenever its leader changes.
    pub fn leader_epoch(&self, topic: &TopicMeta, partition: i32) -> i32 {
        topic.owner(partition).map_or(0, |o| o.leader_epoch)
    }

    /// Makes the running actors match the metadata: starts one for every partition this node
    /// holds a replica of, tells each whether it leads or follows (and the fetchers what to
    /// follow), and removes the data of partitions whose topic was deleted (a re-created topic
    /// has a new id, so its old data is never shown). Data of a topic id the metadata has not
    /// heard of is kept: this node's image may simply lag behind the log.
    pub async fn reconcile(self: &Arc<Self>) -> anyhow::Result<()> {
        let _running = self.reconciling.lock().await;
        let image = self.image();
        let me = self.node_id();
        let mut follow: BTreeMap<i32, BTreeMap<PartitionKey, Followed>> = BTreeMap::new();
        for topic in image.topics() {
            let topic_config = self.topic_config(topic);
            let config = topic_config.partition_config();
            for (p, meta) in (0..topic.partitions).zip(&topic.owners) {
                if !meta.replicas.contains(&me) {
                    continue;
                }
                let handle = self.partitions.open(key(topic.id, p), config)?;
                if meta.node == me {
                    handle.addr.do_send(BecomeLeader(Leadership {
                        leader_epoch: meta.leader_epoch,
                        partition_epoch: meta.partition_epoch,
                        replicas: meta.replicas.clone(),
                        isr: meta.isr.clone(),
                        min_insync: topic_config.min_insync(meta.replicas.len()),
                    }));
                    continue;
                }
                handle.addr.do_send(BecomeFollower {
                    leader: (meta.node >= 0).then_some(meta.node),
                    leader_epoch: meta.leader_epoch,
                });
                if meta.node >= 0 {
                    follow.entry(meta.node).or_default().insert(
                        key(topic.id, p),
                        Followed {
                            topic: topic.name.clone(),
                            partition: p,
                            leader_epoch: meta.leader_epoch,
                            handle,
                        },
                    );
                }
            }
        }
        self.followers.set(self, follow);
        // A partition's data goes when its topic was deleted, or when this node no longer
        // holds a replica of it (it was moved away).
        let deleted = |k: &PartitionKey| {
            let id = Uuid::from_bytes(k.topic_id);
            image.is_deleted(id)
                || image.topic_by_id(id).is_some_and(|t| {
                    t.owner(k.partition)
                        .is_some_and(|p| !p.replicas.contains(&me))
                })
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
        for k in stale.into_iter().filter(deleted) {
            tracing::info!(partition = %k, "removing data of a deleted partition");
            self.partitions.delete(k).await?;
        }
        Ok(())
    }

    /// Reconcile, logging instead of failing: the next metadata change tries again.
    pub async fn reconcile_or_log(self: &Arc<Self>) {
        if let Err(e) = self.reconcile().await {
            tracing::error!(error = %e, "starting or removing partitions failed");
        }
    }

    /// Creates a topic through Raft and starts the partitions this node owns.
    pub async fn create_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
        replication_factor: u32,
        configs: BTreeMap<String, String>,
        assignment: Vec<Vec<u64>>,
    ) -> Result<Arc<TopicMeta>, MetaError> {
        let topic = self
            .metadata
            .create_topic(name, partitions, replication_factor, configs, assignment)
            .await?;
        self.reconcile_or_log().await;
        Ok(topic)
    }

    /// Deletes a topic through Raft; every node then removes its partitions' data.
    pub async fn delete_topic(self: &Arc<Self>, name: &str) -> Result<Arc<TopicMeta>, MetaError> {
        let topic = self.metadata.delete_topic(name).await?;
        self.reconcile_or_log().await;
        Ok(topic)
    }

    pub async fn create_partitions(
        self: &Arc<Self>,
        name: &str,
        count: i32,
        assignment: Vec<Vec<u64>>,
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
