//! OffsetDelete: forget a group's committed offsets for some partitions. A group with members
//! keeps the offsets of topics its members subscribe to (GROUP_SUBSCRIBED_TO_TOPIC). The group
//! needs DELETE (GROUP_AUTHORIZATION_FAILED), each topic READ (TOPIC_AUTHORIZATION_FAILED).

use std::collections::HashSet;
use std::sync::Arc;

use brook_actors::group::messages::DeleteOffsets;
use brook_actors::group::{ask, codes};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;
use crate::handlers::describe_groups::describe;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let broker = &broker;
    let failed = |error| OffsetDeleteResponse::default().with_error_code(error);
    if !call.may(
        broker,
        AclOperation::Delete,
        ResourceType::Group,
        &r.group_id,
    ) {
        return failed(ResponseError::GroupAuthorizationFailed.code());
    }
    let addr = match broker.groups.existing(&r.group_id) {
        Ok(Some(addr)) => addr,
        Ok(None) => return failed(codes::GROUP_ID_NOT_FOUND),
        Err(error) => return failed(error),
    };
    let group = describe(broker, &r.group_id).await;
    if group.error != codes::NONE {
        return failed(group.error);
    }
    if !group.exists {
        return failed(codes::GROUP_ID_NOT_FOUND);
    }
    let subscribed: HashSet<String> = if group.state == "Empty" {
        HashSet::new()
    } else if group.protocol_type == "consumer" {
        group
            .members
            .iter()
            .flat_map(|m| brook_wire::consumer_protocol::subscribed_topics(&m.metadata))
            .collect()
    } else {
        return failed(codes::NON_EMPTY_GROUP);
    };
    let image = broker.image();
    let mut verdicts: Vec<Vec<Option<i16>>> = Vec::new();
    let mut deletable = Vec::new();
    for t in &r.topics {
        let topic = image.topic(&t.name);
        let readable = call.may(broker, AclOperation::Read, ResourceType::Topic, &t.name);
        verdicts.push(
            t.partitions
                .iter()
                .map(|p| {
                    if !readable {
                        Some(ResponseError::TopicAuthorizationFailed.code())
                    } else if !topic
                        .is_some_and(|tm| (0..tm.partitions).contains(&p.partition_index))
                    {
                        Some(codes::UNKNOWN_TOPIC_OR_PARTITION)
                    } else if subscribed.contains(t.name.as_str()) {
                        Some(codes::GROUP_SUBSCRIBED_TO_TOPIC)
                    } else {
                        deletable.push((t.name.to_string(), p.partition_index));
                        None
                    }
                })
                .collect(),
        );
    }
    let mut error = codes::NONE;
    let mut partition_error = codes::NONE;
    if !deletable.is_empty() {
        let answer = ask(&addr, |reply| DeleteOffsets {
            partitions: deletable,
            reply,
        })
        .await;
        match answer {
            Some((codes::NONE, _)) => {}
            Some((codes::GROUP_ID_NOT_FOUND, _)) => return failed(codes::GROUP_ID_NOT_FOUND),
            Some((e, _)) => partition_error = e,
            None => error = codes::COORDINATOR_NOT_AVAILABLE,
        }
    }
    if error != codes::NONE {
        return failed(error);
    }
    let topics = r
        .topics
        .iter()
        .zip(verdicts)
        .map(|(t, vs)| {
            let partitions = t
                .partitions
                .iter()
                .zip(vs)
                .map(|(p, v)| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(v.unwrap_or(partition_error))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
