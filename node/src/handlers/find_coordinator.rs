//! FindCoordinator: the node that coordinates a consumer group. On a single node that is this
//! node. Transaction coordinators do not exist in brook (no transactions), so transactional keys
//! get the same definite refusal InitProducerId gives them.
//!
//! librdkafka also reads this API's presence as "broker >= 0.8.2": without it, it never uses LZ4.

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::broker::Broker;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let answer = coordinator(broker, request.key_type);
    if version >= 4 {
        // v4+ (KIP-699) batches keys; each gets its own answer.
        let coordinators = request
            .coordinator_keys
            .into_iter()
            .map(|key| {
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
    let response = match answer {
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

fn coordinator(broker: &Broker, key_type: i8) -> Found {
    match key_type {
        GROUP => {
            let (host, port) = &broker.advertised;
            Ok((
                BrokerId(broker.node_id()),
                StrBytes::from_string(host.clone()),
                *port,
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
