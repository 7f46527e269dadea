//! FindCoordinator: the node that coordinates a consumer group, chosen from the metadata among
//! live brokers (the same answer on every node). v4+ (KIP-699) asks for several groups at once.
//! Transaction coordinators do not exist in brook (no transactions), so transactional keys get
//! the same definite refusal InitProducerId gives them. A group key needs DESCRIBE on the group,
//! a transactional key DESCRIBE on the transactional id.
//!
//! librdkafka also reads this API's presence as "broker >= 0.8.2": without it, it never uses LZ4.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let broker = &broker;
    let version = call.version;
    if version >= 4 {
        // v4+ (KIP-699) batches keys; each gets its own answer.
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
                let answer = coordinator(broker, &call, request.key_type, &key);
                let c = Coordinator::default().with_key(key);
                match &answer {
                    Ok((id, host, port)) => c
                        .with_node_id(*id)
                        .with_host(host.clone())
                        .with_port(*port)
                        .with_error_message(None),
                    Err((e, why)) => c
                        .with_node_id(BrokerId(-1))
                        .with_port(-1)
                        .with_error_code(e.code())
                        .with_error_message(Some(StrBytes::from_static_str(why))),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let response = match coordinator(broker, &call, request.key_type, &request.key) {
        Ok((id, host, port)) => FindCoordinatorResponse::default()
            .with_node_id(id)
            .with_host(host)
            .with_port(port),
        Err((e, why)) => {
            let response = FindCoordinatorResponse::default()
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(e.code());
            // Error messages exist from v1.
            return if version >= 1 {
                response.with_error_message(Some(StrBytes::from_static_str(why)))
            } else {
                response
            };
        }
    };
    if version >= 1 {
        response.with_error_message(None)
    } else {
        response
    }
}

type Found = Result<(BrokerId, StrBytes, i32), (ResponseError, &'static str)>;

fn coordinator(broker: &Broker, call: &Call, key_type: i8, key: &str) -> Found {
    let may_describe = |t| call.may(broker, AclOperation::Describe, t, key);
    match key_type {
        GROUP if !may_describe(ResourceType::Group) => Err((
            ResponseError::GroupAuthorizationFailed,
            "Group authorization failed.",
        )),
        TRANSACTION if !may_describe(ResourceType::TransactionalId) => Err((
            ResponseError::TransactionalIdAuthorizationFailed,
            "Transactional Id authorization failed.",
        )),
        GROUP => {
            let image = broker.image();
            // Reached through the listener the client came in on (Kafka's rule).
            let found = image
                .group_coordinator(key)
                .and_then(|id| image.broker(id))
                .and_then(|b| {
                    let (host, port) = b.address(&call.listener)?;
                    Some((BrokerId(b.id), StrBytes::from_string(host.to_owned()), port))
                });
            found.ok_or((
                ResponseError::CoordinatorNotAvailable,
                "no live broker to coordinate the group",
            ))
        }
        TRANSACTION => Err((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not supported",
        )),
        _ => Err((
            ResponseError::InvalidRequest,
            "unknown coordinator key type",
        )),
    }
}
