//! SyncGroup: the leader hands in the assignment; every member gets its own share once it is
//! recorded through Raft. Needs READ on the group.

use std::sync::Arc;

use brook_actors::group::messages::{SyncGroup, SyncResult};
use brook_actors::group::{ask, codes};
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let broker = &broker;
    let version = call.version;
    let result = if call.may(
        broker,
        AclOperation::Read,
        ResourceType::Group,
        &request.group_id,
    ) {
        sync(broker, request).await
    } else {
        SyncResult::error(ResponseError::GroupAuthorizationFailed.code())
    };
    let mut response = SyncGroupResponse::default()
        .with_error_code(result.error)
        .with_assignment(result.assignment);
    if version >= 5 {
        response = response
            .with_protocol_type(result.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(result.protocol.map(StrBytes::from_string));
    }
    response
}

async fn sync(broker: &Broker, r: SyncGroupRequest) -> SyncResult {
    if r.group_id.is_empty() {
        return SyncResult::error(codes::INVALID_GROUP_ID);
    }
    let addr = match broker.groups.existing(&r.group_id) {
        Ok(Some(addr)) => addr,
        Ok(None) => return SyncResult::error(codes::UNKNOWN_MEMBER_ID),
        Err(error) => return SyncResult::error(error),
    };
    let sync = |reply| SyncGroup {
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: r.generation_id,
        protocol_type: r.protocol_type.as_ref().map(|s| s.to_string()),
        protocol: r.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: r
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
        reply,
    };
    ask(&addr, sync)
        .await
        .unwrap_or_else(|| SyncResult::error(codes::COORDINATOR_NOT_AVAILABLE))
}
