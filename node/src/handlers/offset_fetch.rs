//! OffsetFetch: a group's committed offsets (v8+ asks for several groups at once).
//!
//! Every answer follows a read barrier through the Raft log (an empty commit), so it holds
//! every commit acknowledged before the request, even on a node that was paused or cut off
//! and still believes it coordinates the group. Any node answers this way (Kafka answers only
//! on the coordinator); a node cut off from the Raft majority answers
//! COORDINATOR_NOT_AVAILABLE rather than something stale.
//!
//! The group needs DESCRIBE (GROUP_AUTHORIZATION_FAILED). Asked for all offsets, a group shows
//! only topics the caller may DESCRIBE; a topic asked for by name that it may not gets
//! TOPIC_AUTHORIZATION_FAILED on each partition.

use std::sync::Arc;

use brook_actors::group::codes;
use brook_raft::CommittedOffset;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

/// One partition's answer.
struct Fetched {
    partition: i32,
    offset: Option<CommittedOffset>,
    error: i16,
}

/// Committed offsets by topic, in the order asked (or sorted, for "all").
type ByTopic = Vec<(String, Vec<Fetched>)>;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let broker = &broker;
    let version = call.version;
    if version >= 8 {
        let mut groups = Vec::with_capacity(r.groups.len());
        for g in &r.groups {
            let wanted = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
                    .collect()
            });
            let (error, topics) = fetch(broker, &call, &g.group_id, wanted).await;
            let topics = topics
                .into_iter()
                .map(|(name, ps)| {
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(StrBytes::from_string(name)))
                        .with_partitions(ps.into_iter().map(partitions_v8).collect())
                })
                .collect();
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id.clone())
                    .with_error_code(error)
                    .with_topics(topics),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = r.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.to_string(), t.partition_indexes.clone()))
            .collect()
    });
    let (error, mut topics) = fetch(broker, &call, &r.group_id, wanted.clone()).await;
    if version < 2 && error != codes::NONE {
        // v1 has no group-level error: every partition asked for carries it.
        topics = wanted
            .unwrap_or_default()
            .into_iter()
            .map(|(name, ps)| {
                let fetched = ps
                    .into_iter()
                    .map(|partition| Fetched {
                        partition,
                        offset: None,
                        error,
                    })
                    .collect();
                (name, fetched)
            })
            .collect();
    }
    let topics = topics
        .into_iter()
        .map(|(name, ps)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(ps.into_iter().map(|f| partitions_v0(f, version)).collect())
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(error)
    } else {
        response
    }
}

async fn fetch(
    broker: &Broker,
    call: &Call,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> (i16, ByTopic) {
    if !call.may(broker, AclOperation::Describe, ResourceType::Group, group) {
        return (ResponseError::GroupAuthorizationFailed.code(), Vec::new());
    }
    let describable =
        |topic: &str| call.may(broker, AclOperation::Describe, ResourceType::Topic, topic);
    if let Err(error) = broker.groups.offsets_barrier(group).await {
        return (error, Vec::new());
    }
    let Some(wanted) = wanted else {
        let mut all = by_topic(broker.groups.committed_offsets(group, None));
        all.retain(|(topic, _)| describable(topic));
        return (codes::NONE, all);
    };
    let keys: Vec<(String, i32)> = wanted
        .iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
        .collect();
    let found = broker.groups.committed_offsets(group, Some(&keys));
    let mut found = found.into_iter();
    let topics = wanted
        .into_iter()
        .map(|(topic, ps)| {
            let allowed = describable(&topic);
            let fetched = ps
                .iter()
                .map(|&partition| {
                    let offset = found.next().and_then(|(_, o)| o);
                    match allowed {
                        true => Fetched {
                            partition,
                            offset,
                            error: codes::NONE,
                        },
                        false => Fetched {
                            partition,
                            offset: None,
                            error: ResponseError::TopicAuthorizationFailed.code(),
                        },
                    }
                })
                .collect();
            (topic, fetched)
        })
        .collect();
    (codes::NONE, topics)
}

fn by_topic(all: Vec<((String, i32), Option<CommittedOffset>)>) -> ByTopic {
    let mut topics: ByTopic = Vec::new();
    for ((topic, partition), offset) in all {
        let fetched = Fetched {
            partition,
            offset,
            error: codes::NONE,
        };
        match topics.last_mut() {
            Some((name, list)) if *name == topic => list.push(fetched),
            _ => topics.push((topic, vec![fetched])),
        }
    }
    topics
}

/// Kafka's "no committed offset": offset -1, empty metadata.
fn parts(f: &Fetched) -> (i64, i32, StrBytes) {
    match &f.offset {
        Some(o) => (
            o.offset,
            o.leader_epoch,
            StrBytes::from_string(o.metadata.clone()),
        ),
        None => (-1, -1, StrBytes::default()),
    }
}

fn partitions_v0(f: Fetched, version: i16) -> OffsetFetchResponsePartition {
    let (offset, epoch, metadata) = parts(&f);
    // Leader epochs exist from v5.
    let epoch = if version >= 5 { epoch } else { -1 };
    OffsetFetchResponsePartition::default()
        .with_partition_index(f.partition)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(Some(metadata))
        .with_error_code(f.error)
}

fn partitions_v8(f: Fetched) -> OffsetFetchResponsePartitions {
    let (offset, epoch, metadata) = parts(&f);
    OffsetFetchResponsePartitions::default()
        .with_partition_index(f.partition)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(epoch)
        .with_metadata(Some(metadata))
        .with_error_code(f.error)
}
