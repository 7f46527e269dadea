//! DeleteAcls v1-3: removes the ACL bindings each filter matches, through Raft in one command,
//! and lists what each filter removed. Needs ALTER on the cluster; without an authorizer every
//! filter gets SECURITY_DISABLED, and one filter with an UNKNOWN value fails the whole request
//! with INVALID_REQUEST, as in Kafka.

use std::sync::Arc;

use brook_raft::acl::{AclBinding, AclOperation};
use brook_raft::{CommandOutput, MetadataCommand};
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::ResponseError;

use super::acls::{filter, refused, text, WireFilter};
use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let count = request.filters.len();
    let all_failed = |code: ResponseError, message: &str| {
        let result = DeleteAclsFilterResult::default()
            .with_error_code(code.code())
            .with_error_message(Some(text(message)));
        DeleteAclsResponse::default().with_filter_results(vec![result; count])
    };
    if let Some((code, message)) = refused(&broker, &call, AclOperation::Alter) {
        return all_failed(code, message);
    }
    let filters = request.filters.iter().map(|f| {
        filter(&WireFilter {
            resource_type: f.resource_type_filter,
            name: f.resource_name_filter.as_deref(),
            pattern_type: f.pattern_type_filter,
            principal: f.principal_filter.as_deref(),
            host: f.host_filter.as_deref(),
            operation: f.operation,
            permission: f.permission_type,
        })
    });
    let filters = match filters.collect::<Result<Vec<_>, _>>() {
        Ok(filters) => filters,
        Err(why) => return all_failed(ResponseError::InvalidRequest, &why),
    };
    if filters.is_empty() {
        return DeleteAclsResponse::default();
    }
    let removed = match broker
        .metadata
        .write(MetadataCommand::DeleteAcls { filters })
        .await
    {
        Ok(CommandOutput::AclsDeleted { removed }) => removed,
        Ok(other) => {
            tracing::error!(?other, "DeleteAcls applied with an unexpected output");
            return all_failed(ResponseError::UnknownServerError, "unexpected result");
        }
        Err(e) => return all_failed(meta_error(&e), &e.to_string()),
    };
    let results = removed.into_iter().map(|bindings| {
        DeleteAclsFilterResult::default()
            .with_matching_acls(bindings.iter().map(matching).collect())
    });
    DeleteAclsResponse::default().with_filter_results(results.collect())
}

fn matching(b: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(b.pattern.resource_type.code())
        .with_resource_name(text(&b.pattern.name))
        .with_pattern_type(b.pattern.pattern_type.code())
        .with_principal(text(&b.entry.principal))
        .with_host(text(&b.entry.host))
        .with_operation(b.entry.operation.code())
        .with_permission_type(b.entry.permission.code())
}
