//! ApiVersions: the versions of every API in the dispatch table.

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{Call, APIS};
use crate::broker::Broker;

pub(crate) async fn handle(
    _broker: Arc<Broker>,
    _call: Call,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    response(0)
}

/// The answer to an ApiVersions request at a version brook does not know (KIP-511): the error
/// plus the supported list, which the caller encodes at v0 with a v0 header.
pub fn unsupported_version() -> ApiVersionsResponse {
    response(ResponseError::UnsupportedVersion.code())
}

fn response(error_code: i16) -> ApiVersionsResponse {
    let api_keys = APIS
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.key as i16)
                .with_min_version(a.min)
                .with_max_version(a.max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
        .with_finalized_features_epoch(-1)
}
