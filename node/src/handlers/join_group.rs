//! JoinGroup: a member enters the group's join barrier; answered when the barrier completes
//! (the leader also gets every member's metadata to compute the assignment). Needs READ on the
//! group.

use std::sync::Arc;

use brook_actors::group::messages::{JoinGroup, JoinResult, Protocol};
use brook_actors::group::{ask, codes};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let broker = &broker;
    let version = call.version;
    let client = &call;
    let member_id = request.member_id.to_string();
    let result = join(broker, client, version, request).await;
    tracing::debug!(member = %member_id, error = result.error, generation = result.generation, "join group");
    response(version, result)
}

async fn join(broker: &Broker, client: &Call, version: i16, r: JoinGroupRequest) -> JoinResult {
    let member_id = r.member_id.to_string();
    if !client.may(broker, AclOperation::Read, ResourceType::Group, &r.group_id) {
        let denied = ResponseError::GroupAuthorizationFailed.code();
        return JoinResult::error(denied, &member_id);
    }
    if r.group_id.is_empty() {
        return JoinResult::error(codes::INVALID_GROUP_ID, &member_id);
    }
    let addr = match broker.groups.actor(&r.group_id) {
        Ok(addr) => addr,
        Err(error) => return JoinResult::error(error, &member_id),
    };
    // v0 had no rebalance timeout: it was the session timeout.
    let rebalance_timeout_ms = if version >= 1 {
        r.rebalance_timeout_ms
    } else {
        r.session_timeout_ms
    };
    let join = |reply| JoinGroup {
        member_id: member_id.clone(),
        instance_id: r.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: client.client_id.clone(),
        client_host: client.client_host.clone(),
        session_timeout_ms: r.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: r.protocol_type.to_string(),
        protocols: r
            .protocols
            .iter()
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata.clone(),
            })
            .collect(),
        require_known_member_id: version >= 4,
        reply,
    };
    ask(&addr, join)
        .await
        .unwrap_or_else(|| JoinResult::error(codes::COORDINATOR_NOT_AVAILABLE, &member_id))
}

fn response(version: i16, r: JoinResult) -> JoinGroupResponse {
    let text = |s: Option<String>| s.map(StrBytes::from_string);
    let members = if r.skip_assignment && version < 9 {
        // Before KIP-814 a leader that must not assign is simply given no members.
        Vec::new()
    } else {
        r.members
            .into_iter()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(m.member_id))
                    .with_group_instance_id(text(m.instance_id).filter(|_| version >= 5))
                    .with_metadata(m.metadata)
            })
            .collect()
    };
    let protocol = text(r.protocol).or_else(|| (version < 7).then(StrBytes::default));
    let mut response = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_protocol_name(protocol)
        .with_leader(StrBytes::from_string(r.leader))
        .with_member_id(StrBytes::from_string(r.member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(text(r.protocol_type));
    }
    if version >= 9 {
        response = response.with_skip_assignment(r.skip_assignment);
    }
    response
}
