//! DescribeQuorum (KIP-595, KIP-853): the metadata Raft group as Kafka's tools see KRaft's
//! `__cluster_metadata` quorum: leader, term, committed index, voters and observers (learners).
//!
//! Kafka answers this on the quorum leader only; brook answers on every node from its own view,
//! so `brook cluster status` works against any node. Only the leader knows how far each peer's
//! log reaches; elsewhere a peer's log end offset is -1 (unknown). Needs DESCRIBE on the
//! cluster.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;
use crate::metadata::node_id;

/// The name KRaft gives its metadata log; the request must ask for its partition 0.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let broker = &broker;
    let version = call.version;
    if !call.may_on_cluster(broker, AclOperation::Describe) {
        return DescribeQuorumResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let metrics = broker.metadata.raft().metrics();
    let membership = metrics.membership_config.membership().clone();
    let me = metrics.id;
    let log_end = |id: u64| -> i64 {
        if id == me {
            return metrics.last_log_index.map_or(-1, to_offset);
        }
        metrics
            .replication
            .as_ref()
            .and_then(|r| r.get(&id).copied().flatten())
            .map_or(-1, |log_id| to_offset(log_id.index))
    };
    let replica = |id: u64| {
        let state = ReplicaState::default()
            .with_replica_id(BrokerId(node_id(id)))
            .with_log_end_offset(log_end(id));
        // Fetch and catch-up times exist from v1; brook does not track them (-1 = unknown).
        if version >= 1 {
            state
                .with_last_fetch_timestamp(-1)
                .with_last_caught_up_timestamp(-1)
        } else {
            state
        }
    };
    let voters: Vec<ReplicaState> = membership.voter_ids().map(replica).collect();
    let observers: Vec<ReplicaState> = membership.learner_ids().map(replica).collect();
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let known = topic.topic_name.as_str() == METADATA_TOPIC;
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    if !known || p.partition_index != 0 {
                        return PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    PartitionData::default()
                        .with_partition_index(0)
                        .with_leader_id(BrokerId(metrics.current_leader.map_or(-1, node_id)))
                        .with_leader_epoch(i32::try_from(metrics.current_term).unwrap_or(i32::MAX))
                        .with_high_watermark(
                            metrics.last_applied.map_or(-1, |l| to_offset(l.index)),
                        )
                        .with_current_voters(voters.clone())
                        .with_observers(observers.clone())
                })
                .collect();
            TopicData::default()
                .with_topic_name(topic.topic_name)
                .with_partitions(partitions)
        })
        .collect();
    let response = DescribeQuorumResponse::default().with_topics(topics);
    // v2 lists every member's endpoint: its Raft address, as KRaft lists controller listeners.
    if version < 2 {
        return response;
    }
    let nodes = membership
        .nodes()
        .map(|(id, node)| {
            let (host, port) = node.addr.rsplit_once(':').unwrap_or((&node.addr, "0"));
            Node::default()
                .with_node_id(BrokerId(node_id(*id)))
                .with_listeners(vec![Listener::default()
                    .with_name(StrBytes::from_static_str("RAFT"))
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(port.parse().unwrap_or(0))])
        })
        .collect();
    response.with_nodes(nodes)
}

/// Raft log indexes count from 0 for the first entry; a log end offset is one past the last.
fn to_offset(index: u64) -> i64 {
    i64::try_from(index).map_or(i64::MAX, |i| i + 1)
}
