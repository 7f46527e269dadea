//! DescribeAcls v1-3: the ACL bindings a filter matches, grouped by resource pattern. Needs
//! DESCRIBE on the cluster; without an authorizer the answer is SECURITY_DISABLED, as in Kafka.

use std::sync::Arc;

use brook_raft::acl::{AclBinding, AclOperation};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::ResponseError;

use super::acls::{filter, refused, text, WireFilter};
use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let failed = |code: ResponseError, message: &str| {
        DescribeAclsResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(text(message)))
    };
    if let Some((code, message)) = refused(&broker, &call, AclOperation::Describe) {
        return failed(code, message);
    }
    let wanted = filter(&WireFilter {
        resource_type: request.resource_type_filter,
        name: request.resource_name_filter.as_deref(),
        pattern_type: request.pattern_type_filter,
        principal: request.principal_filter.as_deref(),
        host: request.host_filter.as_deref(),
        operation: request.operation,
        permission: request.permission_type,
    });
    let wanted = match wanted {
        Ok(f) => f,
        Err(why) => return failed(ResponseError::InvalidRequest, &why),
    };
    let matching: Vec<AclBinding> = broker
        .metadata
        .acls(|acls| acls.iter().filter(|b| wanted.matches(b)).collect());
    // Bindings come in pattern order, so each resource's entries are adjacent.
    let mut resources: Vec<DescribeAclsResource> = Vec::new();
    let mut last = None;
    for b in matching {
        let entry = AclDescription::default()
            .with_principal(text(&b.entry.principal))
            .with_host(text(&b.entry.host))
            .with_operation(b.entry.operation.code())
            .with_permission_type(b.entry.permission.code());
        match resources.last_mut() {
            Some(r) if last.as_ref() == Some(&b.pattern) => r.acls.push(entry),
            _ => {
                resources.push(
                    DescribeAclsResource::default()
                        .with_resource_type(b.pattern.resource_type.code())
                        .with_resource_name(text(&b.pattern.name))
                        .with_pattern_type(b.pattern.pattern_type.code())
                        .with_acls(vec![entry]),
                );
                last = Some(b.pattern);
            }
        }
    }
    DescribeAclsResponse::default().with_resources(resources)
}
