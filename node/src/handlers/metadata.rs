//! Metadata: brokers, and each topic's partitions with this node as their leader. Unknown topics
//! are created when `auto.create.topics.enable` and the request allow it.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;
use crate::errors::meta_error;
use crate::metadata::{validate_topic_name, MetaError, TopicMeta};

/// Reported when the client did not ask for authorized operations (Kafka's sentinel).
const OPERATIONS_NOT_REQUESTED: i32 = i32::MIN;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: MetadataRequest,
) -> MetadataResponse {
    // v0 has no null list: an empty list means every topic.
    let requested = match request.topics {
        Some(list) if version == 0 && list.is_empty() => None,
        other => other,
    };
    let auto_create =
        broker.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let image = broker.image();
    let topics = match requested {
        None => image.topics().map(|t| describe(broker, t)).collect(),
        Some(list) => {
            let mut topics = Vec::with_capacity(list.len());
            for wanted in list {
                let entry = match wanted.name {
                    Some(name) => by_name(broker, &name, auto_create).await,
                    None => match image.topic_by_id(wanted.topic_id) {
                        Some(t) => describe(broker, t),
                        None => MetadataResponseTopic::default()
                            .with_error_code(ResponseError::UnknownTopicId.code())
                            .with_topic_id(wanted.topic_id)
                            .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED),
                    },
                };
                topics.push(entry);
            }
            topics
        }
    };
    let (host, port) = &broker.advertised;
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.node_id()))
            .with_host(StrBytes::from_string(host.clone()))
            .with_port(*port)])
        .with_cluster_id(Some(StrBytes::from_string(
            broker.metadata.cluster_id().to_string(),
        )))
        .with_controller_id(BrokerId(broker.node_id()))
        .with_cluster_authorized_operations(OPERATIONS_NOT_REQUESTED)
        .with_topics(topics)
}

async fn by_name(
    broker: &Arc<Broker>,
    name: &TopicName,
    auto_create: bool,
) -> MetadataResponseTopic {
    if let Some(topic) = broker.image().topic(name) {
        return describe(broker, topic);
    }
    let error = |e: ResponseError| {
        MetadataResponseTopic::default()
            .with_error_code(e.code())
            .with_name(Some(name.clone()))
            .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
    };
    if let Err(reason) = validate_topic_name(name) {
        tracing::debug!(%reason, "metadata for an invalid topic name");
        return error(ResponseError::InvalidTopicException);
    }
    if !auto_create {
        return error(ResponseError::UnknownTopicOrPartition);
    }
    let partitions = broker.config.num_partitions;
    match broker
        .create_topic(name, partitions, Default::default())
        .await
    {
        Ok(topic) => {
            tracing::info!(topic = %name.0, partitions, "auto-created topic");
            describe(broker, &topic)
        }
        // Another request created it in the meantime.
        Err(MetaError::TopicExists(_)) => match broker.image().topic(name) {
            Some(topic) => describe(broker, topic),
            None => error(ResponseError::LeaderNotAvailable),
        },
        Err(e) => {
            tracing::error!(topic = %name.0, error = %e, "auto-creating topic failed");
            error(meta_error(&e))
        }
    }
}

fn describe(broker: &Broker, topic: &TopicMeta) -> MetadataResponseTopic {
    let me = BrokerId(broker.node_id());
    let partitions = (0..topic.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(me)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![me])
                .with_isr_nodes(vec![me])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}
