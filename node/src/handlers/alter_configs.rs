//! AlterConfigs (the legacy form): a topic's configs become exactly the ones sent; those left
//! out return to their defaults.

use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::config_change::{alter, duplicate_refusal, duplicates, Op};
use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    _call: Call,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let dupes = duplicates(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.as_str())),
    );
    let mut responses = Vec::new();
    for resource in request.resources {
        let (kind, name) = (resource.resource_type, resource.resource_name.to_string());
        let ops: Option<Vec<(String, Op)>> = resource
            .configs
            .into_iter()
            .map(|c| Some((c.name.to_string(), Op::Set(c.value?.to_string()))))
            .collect();
        let outcome = match ops {
            _ if dupes.contains(&(kind, name.clone())) => Err(duplicate_refusal()),
            None => Err((
                ResponseError::InvalidRequest,
                "null config values are not supported".to_string(),
            )),
            Some(ops) => alter(&broker, kind, &name, ops, true, request.validate_only).await,
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
    AlterConfigsResponse::default().with_responses(responses)
}
