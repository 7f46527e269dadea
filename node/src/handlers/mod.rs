//! One file per Kafka API, and the dispatch table that routes a decoded request to it.
//!
//! [`APIS`] is the single list of what brook implements: the connection refuses anything not in
//! it, and ApiVersions is answered from it, so brook never advertises an API it cannot serve.

use std::sync::Arc;

use futures::future::{self, BoxFuture, FutureExt};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::broker::Broker;

pub mod alter_partition_reassignments;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_quorum;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod produce;
pub mod sync_group;

/// Who sent a request: JoinGroup records it for DescribeGroups.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub client_id: String,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    pub client_host: String,
}

/// An API brook serves and the versions it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// Everything brook answers. Produce is advertised from v0 although only v3+ (message format v2)
/// is accepted: older librdkafka turns compression off when v0 is missing (KAFKA-18659).
pub const APIS: &[ApiRange] = &[
    api(ApiKey::Produce, 0, 12),
    api(ApiKey::Fetch, 4, 17),
    api(ApiKey::ListOffsets, 1, 8),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::InitProducerId, 0, 5),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::DescribeCluster, 0, 2),
    api(ApiKey::FindCoordinator, 0, 6),
    api(ApiKey::DescribeQuorum, 0, 2),
    api(ApiKey::AlterPartitionReassignments, 0, 1),
    api(ApiKey::ListPartitionReassignments, 0, 0),
    // The group APIs at the versions Kafka 4 accepts (KIP-896 dropped JoinGroup v0-1 and
    // OffsetCommit v0-1, OffsetFetch v0).
    api(ApiKey::JoinGroup, 2, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::DescribeGroups, 0, 6),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
];

pub fn supported(key: ApiKey) -> Option<ApiRange> {
    APIS.iter().copied().find(|a| a.key == key)
}

/// What a handler eventually answers; `None` means no response at all (Produce with acks=0).
pub type Reply = BoxFuture<'static, Option<ResponseKind>>;

/// Routes a request to its handler. Produce does its routing synchronously, before the returned
/// future is first polled, so a connection's produce requests reach each partition in order.
/// Returns None for an API missing from the table (the connection closes).
pub fn dispatch(
    broker: &Arc<Broker>,
    client: RequestContext,
    version: i16,
    body: RequestKind,
) -> Option<Reply> {
    let b = broker.clone();
    let reply = match body {
        RequestKind::Produce(r) => produce::handle(broker, version, r),
        RequestKind::ApiVersions(r) => future::ready(Some(ResponseKind::ApiVersions(
            api_versions::handle(version, &r),
        )))
        .boxed(),
        RequestKind::Fetch(r) => {
            async move { Some(ResponseKind::Fetch(fetch::handle(&b, version, r).await)) }.boxed()
        }
        RequestKind::ListOffsets(r) => async move {
            Some(ResponseKind::ListOffsets(
                list_offsets::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::Metadata(r) => async move {
            Some(ResponseKind::Metadata(
                metadata::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::CreateTopics(r) => async move {
            Some(ResponseKind::CreateTopics(
                create_topics::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::DeleteTopics(r) => async move {
            Some(ResponseKind::DeleteTopics(
                delete_topics::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::CreatePartitions(r) => async move {
            Some(ResponseKind::CreatePartitions(
                create_partitions::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::InitProducerId(r) => async move {
            Some(ResponseKind::InitProducerId(
                init_producer_id::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeConfigs(r) => future::ready(Some(ResponseKind::DescribeConfigs(
            describe_configs::handle(&b, version, r),
        )))
        .boxed(),
        RequestKind::FindCoordinator(r) => future::ready(Some(ResponseKind::FindCoordinator(
            find_coordinator::handle(&b, version, r),
        )))
        .boxed(),
        RequestKind::DescribeCluster(r) => future::ready(Some(ResponseKind::DescribeCluster(
            describe_cluster::handle(&b, version, r),
        )))
        .boxed(),
        RequestKind::DescribeQuorum(r) => future::ready(Some(ResponseKind::DescribeQuorum(
            describe_quorum::handle(&b, version, r),
        )))
        .boxed(),
        RequestKind::AlterPartitionReassignments(r) => async move {
            Some(ResponseKind::AlterPartitionReassignments(
                alter_partition_reassignments::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::ListPartitionReassignments(r) => {
            future::ready(Some(ResponseKind::ListPartitionReassignments(
                list_partition_reassignments::handle(&b, version, r),
            )))
            .boxed()
        }
        RequestKind::JoinGroup(r) => async move {
            Some(ResponseKind::JoinGroup(
                join_group::handle(&b, &client, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::SyncGroup(r) => async move {
            Some(ResponseKind::SyncGroup(
                sync_group::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::Heartbeat(r) => async move {
            Some(ResponseKind::Heartbeat(
                heartbeat::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::LeaveGroup(r) => async move {
            Some(ResponseKind::LeaveGroup(
                leave_group::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::OffsetCommit(r) => async move {
            Some(ResponseKind::OffsetCommit(
                offset_commit::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::OffsetFetch(r) => async move {
            Some(ResponseKind::OffsetFetch(
                offset_fetch::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::DescribeGroups(r) => async move {
            Some(ResponseKind::DescribeGroups(
                describe_groups::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::ListGroups(r) => async move {
            Some(ResponseKind::ListGroups(
                list_groups::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::DeleteGroups(r) => async move {
            Some(ResponseKind::DeleteGroups(
                delete_groups::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        RequestKind::OffsetDelete(r) => async move {
            Some(ResponseKind::OffsetDelete(
                offset_delete::handle(&b, version, r).await,
            ))
        }
        .boxed(),
        _ => return None,
    };
    Some(reply)
}
