//! IncrementalAlterConfigs: set, delete, append to or subtract from single topic configs,
//! leaving the others as they are (what `kafka-configs --alter` sends).

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::config_change::{alter, duplicate_refusal, duplicates, Op, Refusal};
use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    _call: Call,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let dupes = duplicates(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::new();
    for resource in request.resources {
        let (kind, name) = (resource.resource_type, resource.resource_name.to_string());
        let outcome = if dupes.contains(&(kind, name.clone())) {
            Err(duplicate_refusal())
        } else {
            match ops(resource.configs) {
                Ok(ops) => alter(&broker, kind, &name, ops, false, request.validate_only).await,
                Err(refusal) => Err(refusal),
            }
        };
        let (code, message) = match outcome {
            Ok(()) => (0, None),
            Err((e, why)) => (e.code(), Some(StrBytes::from_string(why))),
        };
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(kind)
                .with_resource_name(resource.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// The operations as brook applies them; Kafka's codes are 0 SET, 1 DELETE, 2 APPEND,
/// 3 SUBTRACT, and every one but DELETE needs a value.
fn ops(
    configs: Vec<kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig>,
) -> Result<Vec<(String, Op)>, Refusal> {
    configs
        .into_iter()
        .map(|c| {
            let name = c.name.to_string();
            let value = c.value.map(|v| v.to_string());
            let op = match (c.config_operation, value) {
                (1, _) => Op::Delete,
                (0, Some(v)) => Op::Set(v),
                (2, Some(v)) => Op::Append(v),
                (3, Some(v)) => Op::Subtract(v),
                (0..=3, None) => {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("null value not supported for `{name}`"),
                    ))
                }
                (other, _) => {
                    return Err((
                        ResponseError::InvalidRequest,
                        format!("unknown config operation {other} for `{name}`"),
                    ))
                }
            };
            Ok((name, op))
        })
        .collect()
}
