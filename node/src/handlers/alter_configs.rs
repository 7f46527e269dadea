//! AlterConfigs (the legacy form): a topic's configs become exactly the ones sent; those left
//! out return to their defaults.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::ResponseError;

use super::config_change::{alter_all, resource_answer, Op, Resource};
use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let resources: Vec<Resource> = request
        .resources
        .into_iter()
        .map(|r| {
            let ops: Option<Vec<(String, Op)>> = r
                .configs
                .into_iter()
                .map(|c| Some((c.name.to_string(), Op::Set(c.value?.to_string()))))
                .collect();
            let ops = ops.ok_or_else(|| {
                (
                    ResponseError::InvalidRequest,
                    "null config values are not supported".to_string(),
                )
            });
            (r.resource_type, r.resource_name, ops)
        })
        .collect();
    let answer = resource_answer!(AlterConfigsResourceResponse);
    let responses = alter_all(
        &broker,
        &call,
        resources,
        true,
        request.validate_only,
        answer,
    )
    .await;
    AlterConfigsResponse::default().with_responses(responses)
}
