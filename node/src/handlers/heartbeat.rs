//! Heartbeat: keeps a member's session alive, and tells it when to rejoin
//! (REBALANCE_IN_PROGRESS). Needs READ on the group.

use std::sync::Arc;

use brook_actors::group::messages::Heartbeat;
use brook_actors::group::{ask, codes};
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: HeartbeatRequest,
) -> HeartbeatResponse {
    let broker = &broker;
    let error = if !call.may(broker, AclOperation::Read, ResourceType::Group, &r.group_id) {
        ResponseError::GroupAuthorizationFailed.code()
    } else if r.group_id.is_empty() {
        codes::INVALID_GROUP_ID
    } else {
        match broker.groups.existing(&r.group_id) {
            Ok(None) => codes::UNKNOWN_MEMBER_ID,
            Ok(Some(addr)) => {
                let heartbeat = |reply| Heartbeat {
                    member_id: r.member_id.to_string(),
                    instance_id: r.group_instance_id.as_ref().map(|s| s.to_string()),
                    generation: r.generation_id,
                    reply,
                };
                ask(&addr, heartbeat)
                    .await
                    .unwrap_or(codes::COORDINATOR_NOT_AVAILABLE)
            }
            Err(error) => error,
        }
    };
    HeartbeatResponse::default().with_error_code(error)
}
