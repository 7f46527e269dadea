//! The partition actors this node runs, made to match the metadata: one for every partition it
//! holds a replica of, each told whether it leads or follows (and the replica fetchers what to
//! follow); the data of partitions that left this node is removed.

use std::collections::BTreeMap;
use std::sync::Arc;

use brook_actors::{
    BecomeFollower, BecomeLeader, Leadership, PartitionConfig, PartitionKey, Reconfigure,
};
use uuid::Uuid;

use crate::broker::{key, Broker};
use crate::metadata::{MetaError, NewTopic, TopicMeta};
use crate::replication::Followed;

/// Starts, re-roles and removes partition actors after a metadata change. A re-created topic has
/// a new id, so its old data is never shown. Data of a topic id the metadata has not heard of
/// is kept: this node's image may simply lag behind the log.
pub(crate) async fn reconcile(broker: &Broker) -> anyhow::Result<()> {
    let _running = broker.reconciling.lock().await;
    let image = broker.image();
    let me = broker.node_id();
    let mut follow: BTreeMap<i32, BTreeMap<PartitionKey, Followed>> = BTreeMap::new();
    for topic in image.topics() {
        let settings = &topic.config;
        let config = PartitionConfig {
            log: settings.log,
            log_append_time: settings.log_append_time,
            ack_before_flush: broker.config.ack_before_flush,
            replica_lag_max_ms: broker.config.replica_lag_max_ms,
        };
        for (p, meta) in (0..topic.partitions).zip(&topic.owners) {
            if !meta.replicas.contains(&me) {
                continue;
            }
            let handle = broker.partitions.open(key(topic.id, p), config)?;
            // An actor opened before a config change learns it here.
            handle.addr.do_send(Reconfigure(config));
            if meta.node == me {
                handle.addr.do_send(BecomeLeader(Leadership {
                    leader_epoch: meta.leader_epoch,
                    partition_epoch: meta.partition_epoch,
                    replicas: meta.replicas.clone(),
                    isr: meta.isr.clone(),
                    min_insync: settings.min_insync(meta.replicas.len()),
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
    broker.followers.set(follow);
    // A partition's data goes when its topic was deleted, or when this node no longer holds a
    // replica of it (it was moved away).
    let gone = |k: &PartitionKey| {
        let id = Uuid::from_bytes(k.topic_id);
        image.is_deleted(id)
            || image.topic_by_id(id).is_some_and(|t| {
                t.owner(k.partition)
                    .is_some_and(|p| !p.replicas.contains(&me))
            })
    };
    let mut stale: Vec<PartitionKey> = broker.partitions.keys();
    for (topic_id, partition) in broker.store.partitions()? {
        stale.push(PartitionKey {
            topic_id,
            partition,
        });
    }
    stale.sort();
    stale.dedup();
    for k in stale.into_iter().filter(gone) {
        tracing::info!(partition = %k, "removing data of a deleted partition");
        broker.partitions.delete(k).await?;
    }
    Ok(())
}

/// [`reconcile`], logging instead of failing: the next metadata change tries again.
pub(crate) async fn reconcile_or_log(broker: &Broker) {
    if let Err(e) = reconcile(broker).await {
        tracing::error!(error = %e, "starting or removing partitions failed");
    }
}

/// Creates a topic through Raft and starts the partitions this node holds.
pub(crate) async fn create_topic(broker: &Broker, topic: NewTopic) -> Result<Uuid, MetaError> {
    let id = broker.metadata.create_topic(topic).await?;
    reconcile_or_log(broker).await;
    Ok(id)
}

/// Deletes a topic through Raft; every node then removes its partitions' data.
pub(crate) async fn delete_topic(
    broker: &Broker,
    name: &str,
) -> Result<Option<Arc<TopicMeta>>, MetaError> {
    let topic = broker.metadata.delete_topic(name).await?;
    reconcile_or_log(broker).await;
    Ok(topic)
}

/// Adds partitions to a topic through Raft and starts those this node holds.
pub(crate) async fn create_partitions(
    broker: &Broker,
    name: &str,
    count: i32,
    assignment: Vec<Vec<u64>>,
) -> Result<(), MetaError> {
    broker
        .metadata
        .create_partitions(name, count, assignment)
        .await?;
    reconcile_or_log(broker).await;
    Ok(())
}
