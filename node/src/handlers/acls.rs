//! What CreateAcls, DescribeAcls and DeleteAcls share: Kafka's wire codes to and from brook's
//! ACL types, and the checks every ACL request starts with.

use brook_raft::acl::{
    AccessEntry, AclBinding, AclFilter, AclOperation, PatternFilter, PatternType, Permission,
    ResourcePattern, ResourceType, ANY, MATCH,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

/// Why an ACL request is refused as a whole: no authorizer, or the caller may not do
/// `operation` on the cluster.
pub(super) fn refused(
    broker: &Broker,
    call: &Call,
    operation: AclOperation,
) -> Option<(ResponseError, &'static str)> {
    if !broker.authorizer().enabled() {
        Some((
            ResponseError::SecurityDisabled,
            "No Authorizer is configured.",
        ))
    } else if !call.may_on_cluster(broker, operation) {
        Some((
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.",
        ))
    } else {
        None
    }
}

/// The fields of a binding as the wire carries them.
pub(super) struct WireBinding<'a> {
    pub resource_type: i8,
    pub name: &'a str,
    pub pattern_type: i8,
    pub principal: &'a str,
    pub host: &'a str,
    pub operation: i8,
    pub permission: i8,
}

/// A binding to create, or why it cannot be.
pub(super) fn binding(w: &WireBinding<'_>) -> Result<AclBinding, String> {
    let concrete = |what: &str, code: i8, known: bool| {
        if known {
            Ok(())
        } else {
            Err(format!(
                "Invalid {what} {code}: an ACL needs a concrete value"
            ))
        }
    };
    let resource_type = ResourceType::from_code(w.resource_type);
    concrete("resource type", w.resource_type, resource_type.is_some())?;
    let pattern_type = PatternType::from_code(w.pattern_type);
    concrete("pattern type", w.pattern_type, pattern_type.is_some())?;
    let operation = AclOperation::from_code(w.operation);
    concrete("operation", w.operation, operation.is_some())?;
    let permission = Permission::from_code(w.permission);
    concrete("permission type", w.permission, permission.is_some())?;
    let (Some(resource_type), Some(pattern_type), Some(operation), Some(permission)) =
        (resource_type, pattern_type, operation, permission)
    else {
        return Err("an ACL needs concrete values".into());
    };
    let binding = AclBinding {
        pattern: ResourcePattern {
            resource_type,
            pattern_type,
            name: w.name.to_owned(),
        },
        entry: AccessEntry {
            principal: w.principal.to_owned(),
            host: w.host.to_owned(),
            operation,
            permission,
        },
    };
    match binding.invalid() {
        Some(why) => Err(why),
        None => Ok(binding),
    }
}

/// The fields of a filter as the wire carries them.
pub(super) struct WireFilter<'a> {
    pub resource_type: i8,
    pub name: Option<&'a str>,
    pub pattern_type: i8,
    pub principal: Option<&'a str>,
    pub host: Option<&'a str>,
    pub operation: i8,
    pub permission: i8,
}

/// A filter, or why it is not one: UNKNOWN (or an undefined code) anywhere is refused, as Kafka
/// does; ANY matches everything.
pub(super) fn filter(w: &WireFilter<'_>) -> Result<AclFilter, String> {
    fn any_or<T>(code: i8, what: &str, of: impl Fn(i8) -> Option<T>) -> Result<Option<T>, String> {
        if code == ANY {
            return Ok(None);
        }
        of(code)
            .map(Some)
            .ok_or_else(|| format!("The filter's {what} {code} is not valid"))
    }
    let pattern = match w.pattern_type {
        ANY => PatternFilter::Any,
        MATCH => PatternFilter::Match,
        code => PatternType::from_code(code)
            .map(PatternFilter::Exact)
            .ok_or_else(|| format!("The filter's pattern type {code} is not valid"))?,
    };
    Ok(AclFilter {
        resource_type: any_or(w.resource_type, "resource type", ResourceType::from_code)?,
        pattern,
        name: w.name.map(str::to_owned),
        principal: w.principal.map(str::to_owned),
        host: w.host.map(str::to_owned),
        operation: any_or(w.operation, "operation", AclOperation::from_code)?,
        permission: any_or(w.permission, "permission type", Permission::from_code)?,
    })
}

pub(super) fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}
