//! ListGroups: the groups this node coordinates (as in Kafka, a client asks every broker and
//! merges the answers), optionally filtered by state (v4+) and type (v5+). A caller that may
//! not DESCRIBE the cluster sees only the groups it may DESCRIBE.

use std::sync::Arc;

use brook_actors::group::ask;
use brook_actors::group::messages::DescribeGroup;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;

/// brook runs Kafka's classic group protocol only.
const GROUP_TYPE: &str = "classic";

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: ListGroupsRequest,
) -> ListGroupsResponse {
    let broker = &broker;
    let version = call.version;
    let me = broker.node_id();
    let image = broker.image();
    // Groups recorded in the metadata that this node coordinates, with their recorded state.
    let mut groups: Vec<(String, String, String)> = broker.metadata.raft().reader().read(|s| {
        s.groups()
            .iter()
            .filter(|(id, _)| image.group_coordinator(id) == Some(me))
            .map(|(id, g)| {
                let state = if g.is_empty() { "Empty" } else { "Stable" };
                let protocol_type = g.record.protocol_type.clone().unwrap_or_default();
                (id.clone(), state.to_owned(), protocol_type)
            })
            .collect()
    });
    // Running groups know their current state better.
    for id in broker.groups.registry.running() {
        let Some(addr) = broker.groups.registry.get(&id) else {
            continue;
        };
        let Some(d) = ask(&addr, |reply| DescribeGroup { reply }).await else {
            continue;
        };
        groups.retain(|(g, _, _)| *g != id);
        if d.exists {
            groups.push((id, d.state.to_owned(), d.protocol_type));
        }
    }
    groups.sort();
    if !call.may_on_cluster(broker, AclOperation::Describe) {
        groups
            .retain(|(id, _, _)| call.may(broker, AclOperation::Describe, ResourceType::Group, id));
    }
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let listed = groups
        .into_iter()
        .filter(|(_, state, _)| version < 4 || wanted(&r.states_filter, state))
        .filter(|_| version < 5 || wanted(&r.types_filter, GROUP_TYPE))
        .map(|(id, state, protocol_type)| {
            let mut g = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(id)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            if version >= 4 {
                g = g.with_group_state(StrBytes::from_string(state));
            }
            if version >= 5 {
                g = g.with_group_type(StrBytes::from_static_str(GROUP_TYPE));
            }
            g
        })
        .collect();
    ListGroupsResponse::default().with_groups(listed)
}
