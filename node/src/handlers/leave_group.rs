//! LeaveGroup: members leave at once instead of waiting for their session to expire, which
//! starts a rebalance for the rest. v3+ names several members (and static members by
//! `group.instance.id`). Needs READ on the group.

use std::sync::Arc;

use brook_actors::group::messages::{LeaveGroup, LeaveResult, LeavingMember};
use brook_actors::group::{ask, codes};
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let broker = &broker;
    let version = call.version;
    let members: Vec<LeavingMember> = if version >= 3 {
        r.members
            .iter()
            .map(|m| LeavingMember {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: r.member_id.to_string(),
            instance_id: None,
        }]
    };
    let result = if call.may(broker, AclOperation::Read, ResourceType::Group, &r.group_id) {
        leave(broker, &r.group_id, members.clone()).await
    } else {
        LeaveResult {
            error: ResponseError::GroupAuthorizationFailed.code(),
            members: Vec::new(),
        }
    };
    if version < 3 {
        // One member: its own error is the answer.
        let error = match result.error {
            codes::NONE => result.members.first().copied().unwrap_or(codes::NONE),
            error => error,
        };
        return LeaveGroupResponse::default().with_error_code(error);
    }
    if result.error != codes::NONE {
        return LeaveGroupResponse::default().with_error_code(result.error);
    }
    let answers = members
        .into_iter()
        .zip(result.members)
        .map(|(m, error)| {
            MemberResponse::default()
                .with_member_id(StrBytes::from_string(m.member_id))
                .with_group_instance_id(m.instance_id.map(StrBytes::from_string))
                .with_error_code(error)
        })
        .collect();
    LeaveGroupResponse::default().with_members(answers)
}

async fn leave(broker: &Broker, group: &str, members: Vec<LeavingMember>) -> LeaveResult {
    let failed = |error| LeaveResult {
        error,
        members: Vec::new(),
    };
    if group.is_empty() {
        return failed(codes::INVALID_GROUP_ID);
    }
    match broker.groups.existing(group) {
        Ok(Some(addr)) => ask(&addr, |reply| LeaveGroup { members, reply })
            .await
            .unwrap_or_else(|| failed(codes::COORDINATOR_NOT_AVAILABLE)),
        // No such group: none of the members is in it.
        Ok(None) => LeaveResult {
            error: codes::NONE,
            members: vec![codes::UNKNOWN_MEMBER_ID; members.len()],
        },
        Err(error) => failed(error),
    }
}
