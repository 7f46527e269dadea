//! DescribeGroups: state, protocol and members of groups this node coordinates. Each group
//! needs DESCRIBE (GROUP_AUTHORIZATION_FAILED), and carries the caller's authorized operations
//! on it when asked (v3+).

use std::sync::Arc;

use brook_actors::group::messages::{DescribeGroup, GroupDescription};
use brook_actors::group::{ask, codes};
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let broker = &broker;
    let version = call.version;
    let mut groups = Vec::with_capacity(r.groups.len());
    for id in r.groups {
        let described = if call.may(broker, AclOperation::Describe, ResourceType::Group, &id) {
            describe(broker, &id).await
        } else {
            GroupDescription {
                error: ResponseError::GroupAuthorizationFailed.code(),
                state: "",
                ..Default::default()
            }
        };
        let asked = r.include_authorized_operations && version >= 3;
        let operations = call.operations(broker, asked, ResourceType::Group, &id);
        groups.push(response(version, id, described, operations));
    }
    DescribeGroupsResponse::default().with_groups(groups)
}

/// What the group's coordinator says about it (or an error).
pub async fn describe(broker: &Broker, group: &str) -> GroupDescription {
    let failed = |error| GroupDescription {
        error,
        state: "",
        ..Default::default()
    };
    match broker.groups.existing(group) {
        Ok(Some(addr)) => ask(&addr, |reply| DescribeGroup { reply })
            .await
            .unwrap_or_else(|| failed(codes::COORDINATOR_NOT_AVAILABLE)),
        Ok(None) => GroupDescription {
            error: codes::NONE,
            state: "Dead",
            exists: false,
            ..Default::default()
        },
        Err(error) => failed(error),
    }
}

fn response(version: i16, id: GroupId, d: GroupDescription, operations: i32) -> DescribedGroup {
    let text = StrBytes::from_string;
    let mut group = DescribedGroup::default()
        .with_group_id(id.clone())
        .with_error_code(d.error);
    if version >= 3 {
        group = group.with_authorized_operations(operations);
    }
    if d.error != codes::NONE {
        return group;
    }
    if !d.exists {
        group = group.with_group_state(StrBytes::from_static_str("Dead"));
        // v6 (KIP-1043) says so with an error; older versions only with the Dead state.
        if version >= 6 {
            group = group
                .with_error_code(codes::GROUP_ID_NOT_FOUND)
                .with_error_message(Some(text(format!("Group {} not found.", id.as_str()))));
        }
        return group;
    }
    // Like Kafka, the protocol and the members' metadata and assignments only while Stable.
    let stable = d.state == "Stable";
    let members = d
        .members
        .into_iter()
        .map(|m| {
            let member = DescribedGroupMember::default()
                .with_member_id(text(m.member_id))
                .with_client_id(text(m.client_id))
                .with_client_host(text(m.client_host));
            let member = if version >= 4 {
                member.with_group_instance_id(m.instance_id.map(text))
            } else {
                member
            };
            if stable {
                member
                    .with_member_metadata(m.metadata)
                    .with_member_assignment(m.assignment)
            } else {
                member
            }
        })
        .collect();
    group
        .with_group_state(StrBytes::from_static_str(d.state))
        .with_protocol_type(text(d.protocol_type))
        .with_protocol_data(if stable {
            text(d.protocol)
        } else {
            StrBytes::default()
        })
        .with_members(members)
}
