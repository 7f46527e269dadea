//! CreateAcls v1-3: adds ACL bindings through Raft, all valid ones of a request in one
//! command. Needs ALTER on the cluster; without an authorizer every creation gets
//! SECURITY_DISABLED, as in Kafka. A binding that exists already is created again without
//! error.

use std::sync::Arc;

use brook_raft::acl::AclOperation;
use brook_raft::MetadataCommand;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::ResponseError;

use super::acls::{binding, refused, text, WireBinding};
use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: CreateAclsRequest,
) -> CreateAclsResponse {
    let failed = |code: ResponseError, message: &str| {
        AclCreationResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(text(message)))
    };
    if let Some((code, message)) = refused(&broker, &call, AclOperation::Alter) {
        let results = request.creations.iter().map(|_| failed(code, message));
        return CreateAclsResponse::default().with_results(results.collect());
    }
    let parsed: Vec<Result<_, String>> = request
        .creations
        .iter()
        .map(|c| {
            binding(&WireBinding {
                resource_type: c.resource_type,
                name: &c.resource_name,
                pattern_type: c.resource_pattern_type,
                principal: &c.principal,
                host: &c.host,
                operation: c.operation,
                permission: c.permission_type,
            })
        })
        .collect();
    let bindings: Vec<_> = parsed
        .iter()
        .filter_map(|p| p.as_ref().ok())
        .cloned()
        .collect();
    let written = if bindings.is_empty() {
        Ok(())
    } else {
        broker
            .metadata
            .write(MetadataCommand::CreateAcls { bindings })
            .await
            .map(|_| ())
    };
    let results = parsed.into_iter().map(|p| match (p, &written) {
        (Err(why), _) => failed(ResponseError::InvalidRequest, &why),
        (Ok(_), Ok(())) => AclCreationResult::default(),
        (Ok(_), Err(e)) => failed(meta_error(e), &e.to_string()),
    });
    CreateAclsResponse::default().with_results(results.collect())
}
