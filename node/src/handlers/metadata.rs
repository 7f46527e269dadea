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
        None => image
            .topics()
            .map(|t| describe(broker, version, t))
            .collect(),
        Some(list) => {
            let mut topics = Vec::with_capacity(list.len());
            for wanted in list {
                let entry = match wanted.name {
                    Some(name) => by_name(broker, version, &name, auto_create).await,
                    None => match image.topic_by_id(wanted.topic_id) {
                        Some(t) => describe(broker, version, t),
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
    let mut response = MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.node_id()))
            .with_host(StrBytes::from_string(host.clone()))
            .with_port(*port)])
        .with_topics(topics);
    // The controller exists from v1, the cluster id from v2.
    if version >= 1 {
        response = response.with_controller_id(BrokerId(broker.node_id()));
    }
    if version >= 2 {
        let id = broker.metadata.cluster_id().to_string();
        response = response.with_cluster_id(Some(StrBytes::from_string(id)));
    }
    response
}

async fn by_name(
    broker: &Arc<Broker>,
    version: i16,
    name: &TopicName,
    auto_create: bool,
) -> MetadataResponseTopic {
    if let Some(topic) = broker.image().topic(name) {
        return describe(broker, version, topic);
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
            describe(broker, version, &topic)
        }
        // Another request created it in the meantime.
        Err(MetaError::TopicExists(_)) => match broker.image().topic(name) {
            Some(topic) => describe(broker, version, topic),
            None => error(ResponseError::LeaderNotAvailable),
        },
        Err(e) => {
            tracing::error!(topic = %name.0, error = %e, "auto-creating topic failed");
            error(meta_error(&e))
        }
    }
}

fn describe(broker: &Broker, version: i16, topic: &TopicMeta) -> MetadataResponseTopic {
    let me = BrokerId(broker.node_id());
    let partitions = (0..topic.partitions)
        .map(|p| {
            let partition = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(me)
                .with_replica_nodes(vec![me])
                .with_isr_nodes(vec![me]);
            // Leader epochs exist from v7.
            if version >= 7 {
                partition.with_leader_epoch(broker.leader_epoch(topic, p))
            } else {
                partition
            }
        })
        .collect();
    let described = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED);
    // Topic ids exist from v10.
    if version >= 10 {
        described.with_topic_id(topic.id)
    } else {
        described
    }
}
