//! OffsetCommit: store a group's consumed positions. Partitions of unknown topics and
//! oversized metadata are refused one by one; the rest are checked against the group's
//! generation by its coordinator and written through Raft before the answer.
//!
//! The group needs READ (every partition gets GROUP_AUTHORIZATION_FAILED otherwise), and each
//! topic READ (TOPIC_AUTHORIZATION_FAILED, whether or not it exists).

use std::sync::Arc;

use brook_actors::group::messages::CommitOffsets;
use brook_actors::group::{ask, codes, OffsetToCommit};
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use brook_raft::acl::{AclOperation, ResourceType};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    r: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let broker = &broker;
    let version = call.version;
    let image = broker.image();
    let max_metadata = broker.groups.config.offset_metadata_max_bytes;
    // Each partition's own verdict; None means "for the coordinator to decide".
    let mut verdicts: Vec<Vec<Option<i16>>> = Vec::with_capacity(r.topics.len());
    let mut offsets = Vec::new();
    let group_readable = call.may(broker, AclOperation::Read, ResourceType::Group, &r.group_id);
    for t in &r.topics {
        let topic = image.topic(&t.name);
        let readable = call.may(broker, AclOperation::Read, ResourceType::Topic, &t.name);
        let topic_verdicts = t
            .partitions
            .iter()
            .map(|p| {
                let metadata = p.committed_metadata.as_deref().unwrap_or_default();
                if !group_readable {
                    Some(ResponseError::GroupAuthorizationFailed.code())
                } else if !readable {
                    Some(ResponseError::TopicAuthorizationFailed.code())
                } else if !topic.is_some_and(|tm| (0..tm.partitions).contains(&p.partition_index)) {
                    Some(codes::UNKNOWN_TOPIC_OR_PARTITION)
                } else if metadata.len() > max_metadata {
                    Some(codes::OFFSET_METADATA_TOO_LARGE)
                } else {
                    offsets.push(OffsetToCommit {
                        topic: t.name.to_string(),
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: metadata.to_owned(),
                    });
                    None
                }
            })
            .collect();
        verdicts.push(topic_verdicts);
    }
    let group_verdict = if offsets.is_empty() {
        codes::NONE
    } else {
        let count = offsets.len();
        let verdict = commit(broker, &r, offsets).await;
        tracing::debug!(group = %r.group_id.as_str(), partitions = count, error = verdict, "offset commit");
        verdict
    };
    let topics = r
        .topics
        .iter()
        .zip(verdicts)
        .map(|(t, topic_verdicts)| {
            let partitions = t
                .partitions
                .iter()
                .zip(topic_verdicts)
                .map(|(p, verdict)| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(verdict.unwrap_or(group_verdict))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

async fn commit(broker: &Broker, r: &OffsetCommitRequest, offsets: Vec<OffsetToCommit>) -> i16 {
    let addr = match broker.groups.actor(&r.group_id) {
        Ok(addr) => addr,
        Err(error) => return error,
    };
    let commit = |reply| CommitOffsets {
        member_id: r.member_id.to_string(),
        instance_id: r.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: r.generation_id_or_member_epoch,
        offsets,
        reply,
    };
    ask(&addr, commit)
        .await
        .unwrap_or(codes::COORDINATOR_NOT_AVAILABLE)
}
