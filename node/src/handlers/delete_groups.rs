//! DeleteGroups: remove empty groups and their committed offsets. Each group needs DELETE.

use std::sync::Arc;

use brook_actors::group::messages::DeleteGroup;
use brook_actors::group::{ask, codes};
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let broker = &broker;
    let mut results = Vec::with_capacity(r.groups_names.len());
    for id in r.groups_names {
        let deletable = call.may(broker, AclOperation::Delete, ResourceType::Group, &id);
        let error = match broker.groups.existing(&id) {
            _ if !deletable => ResponseError::GroupAuthorizationFailed.code(),
            Ok(Some(addr)) => ask(&addr, |reply| DeleteGroup { reply })
                .await
                .unwrap_or(codes::COORDINATOR_NOT_AVAILABLE),
            Ok(None) => codes::GROUP_ID_NOT_FOUND,
            Err(error) => error,
        };
        tracing::info!(group = %id.as_str(), error, "delete group");
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(error),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
