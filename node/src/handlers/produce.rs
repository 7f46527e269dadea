//! Produce: validate each partition's record batch, hand it to the partition's actor, and answer
//! once every append is durable to the degree `acks` asks (nothing at all for acks=0).
//!
//! Validation and the sends to actors happen before the returned future is polled, so batches of
//! pipelined requests from one producer reach each partition in the order they were sent. With
//! acks=0 the connection writes no response (Kafka's rule); the handler does not need to know.
//! Each topic needs WRITE (TOPIC_AUTHORIZATION_FAILED otherwise, whether or not it exists).

use std::sync::Arc;

use std::time::Duration;

use brook_actors::{ask, Acks, AppendBatch, Appended, PartitionError};
use brook_raft::acl::{AclOperation, ResourceType};
use brook_wire::batch::validate_batches;
use bytes::{Bytes, BytesMut};
use futures::future::{join_all, BoxFuture, FutureExt};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use std::future::Future;

use super::Call;
use crate::broker::Broker;
use crate::errors::{partition_error, wire_error};
use crate::handlers::routing::{self, TopicRef};
use crate::metadata::MetadataImage;

type Pending = BoxFuture<'static, Result<Appended, PartitionError>>;

/// One partition's outcome: known now (an error) or once its actor answers.
enum Outcome {
    Failed(ResponseError, Option<String>),
    /// Sent to the actor: the batch's bytes and records, counted once it is appended.
    Sent(Pending, usize, u64),
}

pub(crate) fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: ProduceRequest,
) -> impl Future<Output = ProduceResponse> + Send + 'static {
    // Owned, for counting what the actors appended once they answer.
    let counted = Arc::clone(&broker);
    let broker = &broker;
    let version = call.version;
    let acks = request.acks;
    // How long acks=all may wait for the in-sync replicas (Kafka's REQUEST_TIMED_OUT after).
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0).max(1));
    let wanted = match acks {
        0 => Acks::None,
        1 => Acks::Leader,
        _ => Acks::All,
    };
    let refuse_all = if !matches!(acks, -1..=1) {
        Some((
            ResponseError::InvalidRequiredAcks,
            "acks must be -1, 0 or 1".to_string(),
        ))
    } else if request.transactional_id.is_some() {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not supported".to_string(),
        ))
    } else {
        None
    };
    let image = broker.image();
    let topics: Vec<_> = request
        .topic_data
        .into_iter()
        .map(|topic| {
            let writable = call.may(
                broker,
                AclOperation::Write,
                ResourceType::Topic,
                &topic.name,
            );
            let partitions: Vec<_> = topic
                .partition_data
                .into_iter()
                .map(|p| {
                    let outcome = match &refuse_all {
                        Some((e, why)) => Outcome::Failed(*e, Some(why.clone())),
                        None if !writable => {
                            Outcome::Failed(ResponseError::TopicAuthorizationFailed, None)
                        }
                        None => append(broker, &image, &topic.name, p.index, p.records, wanted),
                    };
                    (p.index, outcome)
                })
                .collect();
            (topic.name, partitions)
        })
        .collect();
    async move {
        let mut responses = Vec::with_capacity(topics.len());
        for (name, partitions) in topics {
            let topic = name.0.to_string();
            let answers = join_all(partitions.into_iter().map(|(index, outcome)| {
                let topic = topic.clone();
                let counted = counted.clone();
                async move {
                let response = PartitionProduceResponse::default().with_index(index);
                match outcome {
                    Outcome::Failed(e, message) => failure(response, version, e, message),
                    Outcome::Sent(pending, bytes, records) => match tokio::time::timeout(timeout, pending).await {
                        Err(_) => {
                            let why = format!("not replicated to the in-sync replicas within {timeout:?}");
                            failure(response, version, ResponseError::RequestTimedOut, Some(why))
                        }
                        Ok(Ok(a)) => {
                            counted.metrics.produced(&topic, bytes, records);
                            let response = response
                                .with_base_offset(a.base_offset)
                                .with_log_append_time_ms(a.log_append_time);
                            if version >= 5 {
                                response.with_log_start_offset(a.log_start_offset)
                            } else {
                                response
                            }
                        }
                        Ok(Err(e)) => {
                            let code = partition_error(&e);
                            tracing::debug!(%topic, partition = index, error = %e, "produce refused");
                            failure(response, version, code, Some(e.to_string()))
                        }
                    },
                }
            }}))
            .await;
            responses.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(answers),
            );
        }
        ProduceResponse::default().with_responses(responses)
    }
}

fn failure(
    response: PartitionProduceResponse,
    version: i16,
    error: ResponseError,
    message: Option<String>,
) -> PartitionProduceResponse {
    let response = response
        .with_error_code(error.code())
        .with_base_offset(-1)
        .with_log_append_time_ms(-1);
    // Error messages exist from v8.
    if version >= 8 {
        response.with_error_message(message.map(StrBytes::from_string))
    } else {
        response
    }
}

/// Checks one partition's records and sends them to its actor.
fn append(
    broker: &Broker,
    image: &MetadataImage,
    topic: &str,
    partition: i32,
    records: Option<Bytes>,
    acks: Acks,
) -> Outcome {
    let found = TopicRef::Name(topic)
        .find(image)
        .and_then(|t| routing::partition(broker, &t, partition).map(|h| (t, h)));
    let (meta, handle) = match found {
        Ok(found) => found,
        Err(e) => return Outcome::Failed(e, None),
    };
    let Some(records) = records.filter(|r| !r.is_empty()) else {
        return Outcome::Failed(ResponseError::InvalidRecord, Some("no records".into()));
    };
    let max = meta.config.max_message_bytes;
    if records.len() > max {
        let why = format!(
            "batch of {} bytes exceeds max.message.bytes {max}",
            records.len()
        );
        return Outcome::Failed(ResponseError::MessageTooLarge, Some(why));
    }
    let header = match validate_batches(&records) {
        Ok(batches) => match batches.as_slice() {
            // Produce v3+ carries exactly one batch per partition, as Kafka requires.
            [(_, header)] => *header,
            _ => {
                let why = format!("expected one record batch, got {}", batches.len());
                return Outcome::Failed(ResponseError::InvalidRecord, Some(why));
            }
        },
        Err(e) => {
            tracing::warn!(topic, partition, error = %e, "refusing a bad record batch");
            return Outcome::Failed(wire_error(&e), Some(e.to_string()));
        }
    };
    if header.is_transactional() || header.is_control() {
        let why = "transactional batches are not supported".to_string();
        return Outcome::Failed(ResponseError::InvalidRecord, Some(why));
    }
    let (bytes, count) = (
        records.len(),
        u64::try_from(header.record_count).unwrap_or(0),
    );
    let batch = BytesMut::from(&records[..]);
    let pending = ask(&handle.addr, |reply| AppendBatch {
        batch,
        header,
        acks,
        reply,
    });
    Outcome::Sent(pending.boxed(), bytes, count)
}
