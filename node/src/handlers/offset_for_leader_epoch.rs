//! OffsetForLeaderEpoch (KIP-101, KIP-320): where a leader epoch ends in the leader's log. A
//! consumer asks after a leader change to learn whether its position is still on the log (the
//! new leader may have truncated what the old one showed) before it fetches again.
//! Each topic needs DESCRIBE; a follower's request (a replica id) needs CLUSTER_ACTION.

use std::sync::Arc;

use brook_actors::{ask, EpochEnd};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use brook_raft::acl::AclOperation;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;
use crate::errors::partition_error;
use crate::handlers::routing;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let broker = &broker;
    let image = broker.image();
    let mut topics = Vec::with_capacity(request.topics.len());
    // A follower names its broker id and needs CLUSTER_ACTION; a consumer needs DESCRIBE.
    let follower_refused =
        request.replica_id.0 >= 0 && !call.may_on_cluster(broker, AclOperation::ClusterAction);
    for topic in request.topics {
        let found = if follower_refused {
            Err(ResponseError::ClusterAuthorizationFailed)
        } else {
            routing::find_authorized(broker, &call, &image, &topic.topic, AclOperation::Describe)
        };
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let answer = async {
                let meta = found.clone()?;
                routing::check_leader_epoch(
                    p.current_leader_epoch,
                    meta.owner(p.partition).map_or(0, |o| o.leader_epoch),
                )?;
                let handle = routing::partition(broker, &meta, p.partition)?;
                ask(&handle.addr, |reply| EpochEnd {
                    epoch: p.leader_epoch,
                    reply,
                })
                .await
                .map_err(|e| partition_error(&e))
            };
            let response = EpochEndOffset::default().with_partition(p.partition);
            partitions.push(match answer.await {
                // Kafka's sentinels (-1, -1) when the log cannot place the epoch.
                Ok(None) => response,
                Ok(Some((epoch, end))) => response
                    .with_leader_epoch(epoch)
                    .with_end_offset(i64::try_from(end).unwrap_or(i64::MAX)),
                Err(e) => response.with_error_code(e.code()),
            });
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
