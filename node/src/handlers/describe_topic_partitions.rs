//! DescribeTopicPartitions (KIP-966): topics with their partitions' leaders, epochs, replicas
//! and in-sync sets, in pages. Admin clients of Kafka 3.8+ describe topics with it.
//!
//! Topics are answered in name order from the request's cursor on, with at most
//! `response_partition_limit` partitions in all; where that limit cut the answer short,
//! `next_cursor` names the topic and partition the next request starts from. An empty topic
//! list asks for every topic. brook has no eligible leader replicas (KIP-966's ELR), so both
//! ELR lists are empty, as Kafka answers with ELR off.
//!
//! Each topic needs DESCRIBE, and carries the caller's authorized operations on it (v0 has no
//! flag to leave them out).

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_request::TopicRequest;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::metadata::is_up;
use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;
use crate::metadata::{validate_topic_name, MetadataImage, TopicMeta};

/// Kafka's `max.request.partition.size.limit` default: the most partitions one answer holds,
/// whatever the request asks for.
const MAX_PARTITIONS: i32 = 2000;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = broker.image();
    let all = request.topics.is_empty();
    let cursor = request
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.as_str(), c.partition_index));
    let from = cursor.map_or("", |(topic, _)| topic);
    // In name order from the cursor's topic on; a topic named twice is answered once.
    let names: BTreeSet<&str> = if all {
        image
            .topics()
            .map(|t| t.name.as_str())
            .filter(|n| *n >= from)
            .collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.as_str())
            .filter(|n| *n >= from)
            .collect()
    };
    // Kafka refuses a cursor on a topic the list does not name, or on a negative partition.
    let bad_cursor =
        cursor.is_some_and(|(topic, partition)| partition < 0 || (!all && !names.contains(topic)));
    if bad_cursor {
        return refused(&request.topics, ResponseError::InvalidRequest);
    }

    let mut remaining = request.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names {
        // The limit is reached: the next answer starts at this topic.
        if remaining == 0 {
            next_cursor = Some(cursor_at(name, 0));
            break;
        }
        let operations = call.operations(&broker, true, ResourceType::Topic, name);
        // Topics the caller may not DESCRIBE are left out of a full listing, and reported as
        // such, whether or not they exist, when asked for by name.
        if !call.may(&broker, AclOperation::Describe, ResourceType::Topic, name) {
            if !all {
                topics.push(failed(
                    name,
                    ResponseError::TopicAuthorizationFailed,
                    operations,
                ));
            }
            continue;
        }
        let Some(topic) = image.topic(name) else {
            // Only topics asked for by name are reported missing.
            if !all {
                let error = match validate_topic_name(name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                topics.push(failed(name, error, operations));
            }
            continue;
        };
        let start = match cursor {
            Some((topic, partition)) if topic == name => partition,
            _ => 0,
        };
        let end = topic.partitions.min(start.saturating_add(remaining));
        topics.push(
            describe(&broker, &image, topic, start, end)
                .with_topic_authorized_operations(operations),
        );
        if end < topic.partitions {
            next_cursor = Some(cursor_at(name, end));
            break;
        }
        remaining -= (end - start).max(0);
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}

/// Partitions `start..end` of `topic`. A partition without a live leader has leader -1 and
/// no error, as in Kafka.
fn describe(
    broker: &Broker,
    image: &MetadataImage,
    topic: &TopicMeta,
    start: i32,
    end: i32,
) -> DescribeTopicPartitionsResponseTopic {
    let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let partitions = (start..end)
        .zip(
            topic
                .owners
                .iter()
                .skip(usize::try_from(start).unwrap_or(0)),
        )
        .map(|(index, meta)| {
            let offline: Vec<i32> = meta
                .replicas
                .iter()
                .copied()
                .filter(|&r| !is_up(broker, image, r))
                .collect();
            let leader = if meta.node >= 0 && is_up(broker, image, meta.node) {
                meta.node
            } else {
                -1
            };
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(leader))
                .with_leader_epoch(meta.leader_epoch)
                .with_replica_nodes(ids(&meta.replicas))
                .with_isr_nodes(ids(&meta.isr))
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
                .with_offline_replicas(ids(&offline))
        })
        .collect();
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}

/// A topic asked for by name that cannot be described: missing, invalid, or not authorized.
fn failed(
    name: &str,
    error: ResponseError,
    operations: i32,
) -> DescribeTopicPartitionsResponseTopic {
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(Some(topic_name(name)))
        .with_topic_id(Uuid::nil())
        .with_topic_authorized_operations(operations)
}

/// Kafka's answer to a request it refuses as a whole: each topic asked for, with the error.
fn refused(topics: &[TopicRequest], error: ResponseError) -> DescribeTopicPartitionsResponse {
    let topics = topics
        .iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(error.code())
                .with_name(Some(t.name.clone()))
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}

fn cursor_at(topic: &str, partition: i32) -> Cursor {
    Cursor::default()
        .with_topic_name(topic_name(topic))
        .with_partition_index(partition)
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
