//! Finding the local actor for a topic-partition named in a data request.

use std::sync::Arc;

use brook_actors::PartitionHandle;
use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::broker::Broker;
use crate::handlers::Call;
use crate::metadata::{MetadataImage, TopicMeta};

/// How a data request names its topic: by name, or by id (Fetch v13+).
#[derive(Debug, Clone, Copy)]
pub enum TopicRef<'a> {
    Name(&'a str),
    Id(Uuid),
}

impl TopicRef<'_> {
    pub fn find(self, image: &MetadataImage) -> Result<Arc<TopicMeta>, ResponseError> {
        match self {
            TopicRef::Name(name) => image
                .topic(name)
                .cloned()
                .ok_or(ResponseError::UnknownTopicOrPartition),
            TopicRef::Id(id) => image
                .topic_by_id(id)
                .cloned()
                .ok_or(ResponseError::UnknownTopicId),
        }
    }
}

/// A topic a request names and needs `operation` on: TOPIC_AUTHORIZATION_FAILED when the
/// caller may not, whether or not the topic exists (Kafka reveals nothing more), else the
/// lookup.
pub fn find_authorized(
    broker: &Broker,
    call: &Call,
    image: &MetadataImage,
    name: &str,
    operation: AclOperation,
) -> Result<Arc<TopicMeta>, ResponseError> {
    if !call.may(broker, operation, ResourceType::Topic, name) {
        return Err(ResponseError::TopicAuthorizationFailed);
    }
    TopicRef::Name(name).find(image)
}

/// The actor of `partition` of `topic`, or the error a client should see.
pub fn partition(
    broker: &Broker,
    topic: &TopicMeta,
    partition: i32,
) -> Result<PartitionHandle, ResponseError> {
    let owner = topic
        .owner(partition)
        .ok_or(ResponseError::UnknownTopicOrPartition)?;
    // Another node leads it (or this one lost touch with the cluster and may have been
    // replaced): the client refreshes its metadata and goes to the leader.
    if owner.node != broker.node_id() || !broker.lease.holds() {
        return Err(ResponseError::NotLeaderOrFollower);
    }
    // Owned but not running yet (the metadata change is still being applied): retriable too.
    broker
        .partition(topic.id, partition)
        .ok_or(ResponseError::NotLeaderOrFollower)
}

/// Kafka's leader-epoch check for requests that carry the epoch the client knows (-1 = none).
pub fn check_leader_epoch(client_epoch: i32, leader_epoch: i32) -> Result<(), ResponseError> {
    match client_epoch {
        e if e < 0 || e == leader_epoch => Ok(()),
        e if e < leader_epoch => Err(ResponseError::FencedLeaderEpoch),
        _ => Err(ResponseError::UnknownLeaderEpoch),
    }
}
