//! CreatePartitions: raise a topic's partition count (never lower it). Each topic needs ALTER
//! (TOPIC_AUTHORIZATION_FAILED otherwise, whether or not it exists).

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;
use crate::partitions;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let broker = &broker;
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let outcome = if call.may(
            broker,
            AclOperation::Alter,
            ResourceType::Topic,
            &topic.name,
        ) {
            check(
                broker,
                &topic.name,
                topic.count,
                topic.assignments.as_deref(),
            )
        } else {
            let why = "Authorization failed.".to_string();
            Err((ResponseError::TopicAuthorizationFailed, why))
        };
        let outcome = match outcome {
            Ok(_) if request.validate_only => Ok(()),
            Ok(assignment) => partitions::create_partitions(
                broker,
                &topic.name,
                topic.count,
                assignment,
            )
            .await
            .map(|()| tracing::info!(topic = %topic.name.as_str(), partitions = topic.count, "added partitions"))
            .map_err(|e| (meta_error(&e), e.to_string())),
            Err(e) => Err(e),
        };
        results.push(match outcome {
            Ok(()) => result,
            Err((e, why)) => result
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(why))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

fn check(
    broker: &Broker,
    name: &str,
    count: i32,
    assignments: Option<
        &[kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment],
    >,
) -> Result<Vec<Vec<u64>>, (ResponseError, String)> {
    let image = broker.image();
    let topic = image.topic(name).ok_or_else(|| {
        (
            ResponseError::UnknownTopicOrPartition,
            format!("topic `{name}` does not exist"),
        )
    })?;
    if count <= topic.partitions {
        let why = format!(
            "topic `{name}` has {} partitions; the new count must be larger, got {count}",
            topic.partitions
        );
        return Err((ResponseError::InvalidPartitions, why));
    }
    let Some(assignments) = assignments else {
        return Ok(Vec::new());
    };
    // Each new partition names its replicas (leader first), as many as the topic has.
    let added = usize::try_from(count - topic.partitions).unwrap_or(0);
    let rf = topic.replication_factor();
    let sets: Option<Vec<Vec<u64>>> = assignments
        .iter()
        .map(|a| {
            let ids: Option<Vec<u64>> = a
                .broker_ids
                .iter()
                .map(|b| image.broker(b.0).and_then(|_| u64::try_from(b.0).ok()))
                .collect();
            ids.filter(|ids| ids.len() == rf)
        })
        .collect();
    match sets {
        Some(sets) if sets.len() == added => Ok(sets),
        _ => {
            let why = format!(
                "assignments must name {added} new partitions, each on {rf} existing brokers"
            );
            Err((ResponseError::InvalidReplicaAssignment, why))
        }
    }
}
