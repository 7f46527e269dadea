//! ListPartitionReassignments: the moves in progress, with the replicas being added and removed.
//! Needs DESCRIBE on the cluster.

use std::sync::Arc;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use brook_raft::acl::AclOperation;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let broker = &broker;
    if !call.may_on_cluster(broker, AclOperation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let image = broker.image();
    let ids = |v: &[i32]| v.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(list) => list
            .iter()
            .any(|t| t.name.as_str() == topic && t.partition_indexes.contains(&partition)),
    };
    let topics = image
        .topics()
        .filter_map(|t| {
            let partitions: Vec<_> = (0..t.partitions)
                .zip(&t.owners)
                .filter(|(p, meta)| {
                    (!meta.adding.is_empty() || !meta.removing.is_empty()) && wanted(&t.name, *p)
                })
                .map(|(p, meta)| {
                    OngoingPartitionReassignment::default()
                        .with_partition_index(p)
                        .with_replicas(ids(&meta.replicas))
                        .with_adding_replicas(ids(&meta.adding))
                        .with_removing_replicas(ids(&meta.removing))
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                OngoingTopicReassignment::default()
                    .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                    .with_partitions(partitions)
            })
        })
        .collect();
    ListPartitionReassignmentsResponse::default().with_topics(topics)
}
