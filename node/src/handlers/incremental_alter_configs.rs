//! IncrementalAlterConfigs: set, delete, append to or subtract from single topic configs,
//! leaving the others as they are (what `kafka-configs --alter` sends).

use std::sync::Arc;

use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use kafka_protocol::ResponseError;

use super::config_change::{alter_all, resource_answer, Op, Refusal, Resource};
use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources: Vec<Resource> = request
        .resources
        .into_iter()
        .map(|r| (r.resource_type, r.resource_name, ops(r.configs)))
        .collect();
    let answer = resource_answer!(AlterConfigsResourceResponse);
    let responses = alter_all(
        &broker,
        &call,
        resources,
        false,
        request.validate_only,
        answer,
    )
    .await;
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
