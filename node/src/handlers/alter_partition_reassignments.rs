//! AlterPartitionReassignments: move partitions to new replica sets, or cancel a move (null
//! replicas). The move is recorded through Raft; the new replicas start following at once and
//! the move completes, old replicas dropping their copy, once all new ones are in sync.
//! Needs ALTER on the cluster.

use std::sync::Arc;

use brook_raft::{CommandOutput, MetadataCommand, Reassignment};
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let broker = &broker;
    let version = call.version;
    // From v1 a request may forbid changing the replication factor.
    let allow_rf_change = version < 1 || request.allow_replication_factor_change;
    if !call.may_on_cluster(broker, AclOperation::Alter) {
        return refused(&request, ResponseError::ClusterAuthorizationFailed);
    }
    let image = broker.image();
    // Per partition: the code decided here, or a move to send (its index in `moves`).
    let mut outcomes: Vec<(usize, i32, Result<usize, ResponseError>)> = Vec::new();
    let mut moves = Vec::new();
    for (t, topic) in request.topics.iter().enumerate() {
        let meta = image.topic(&topic.name);
        for p in &topic.partitions {
            let current = meta.and_then(|m| m.owner(p.partition_index));
            let outcome = match (current, u32::try_from(p.partition_index)) {
                (Some(current), Ok(partition)) => {
                    let target: Option<Vec<u64>> = p.replicas.as_ref().map(|ids| {
                        ids.iter()
                            .map(|b| u64::try_from(b.0).unwrap_or(u64::MAX))
                            .collect()
                    });
                    let original = current.replicas.len() - current.adding.len();
                    match &target {
                        Some(t) if !allow_rf_change && t.len() != original => {
                            Err(ResponseError::InvalidReplicationFactor)
                        }
                        _ => {
                            moves.push(Reassignment {
                                topic: topic.name.to_string(),
                                partition,
                                replicas: target,
                            });
                            Ok(moves.len() - 1)
                        }
                    }
                }
                _ => Err(ResponseError::UnknownTopicOrPartition),
            };
            outcomes.push((t, p.partition_index, outcome));
        }
    }
    let codes = if moves.is_empty() {
        Ok(Vec::new())
    } else {
        match broker
            .metadata
            .write(MetadataCommand::ReassignPartitions { moves })
            .await
        {
            Ok(CommandOutput::PartitionResults { codes }) => Ok(codes),
            Ok(other) => {
                tracing::error!(?other, "unexpected answer to a reassignment");
                Err(ResponseError::UnknownServerError)
            }
            Err(e) => Err(meta_error(&e)),
        }
    };
    let mut responses: Vec<ReassignableTopicResponse> = request
        .topics
        .iter()
        .map(|t| ReassignableTopicResponse::default().with_name(t.name.clone()))
        .collect();
    for (t, partition, outcome) in outcomes {
        let code = match (outcome, &codes) {
            (Err(e), _) => e.code(),
            (Ok(_), Err(e)) => e.code(),
            (Ok(i), Ok(codes)) => codes.get(i).copied().unwrap_or(0),
        };
        let mut answer = ReassignablePartitionResponse::default()
            .with_partition_index(partition)
            .with_error_code(code);
        if code != 0 {
            let name = ResponseError::try_from_code(code).map(|e| format!("{e:?}"));
            answer = answer.with_error_message(name.map(StrBytes::from_string));
            tracing::info!(partition, code, "reassignment refused");
        }
        if let Some(topic) = responses.get_mut(t) {
            topic.partitions.push(answer);
        }
    }
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(allow_rf_change && version >= 1)
        .with_responses(responses)
}

/// Kafka's answer to a request refused as a whole: the error at the top and on every partition.
fn refused(
    request: &AlterPartitionReassignmentsRequest,
    error: ResponseError,
) -> AlterPartitionReassignmentsResponse {
    let message = || Some(StrBytes::from_string(format!("{error:?}")));
    let topics = request.topics.iter().map(|t| {
        let partitions = t.partitions.iter().map(|p| {
            ReassignablePartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_error_code(error.code())
                .with_error_message(message())
        });
        ReassignableTopicResponse::default()
            .with_name(t.name.clone())
            .with_partitions(partitions.collect())
    });
    AlterPartitionReassignmentsResponse::default()
        .with_error_code(error.code())
        .with_error_message(message())
        .with_responses(topics.collect())
}
