//! One file per Kafka API, and the one table that declares each API with its versions and its
//! handler: dispatch and the ApiVersions answer both come from it, so brook can never advertise
//! an API it does not serve, nor serve one it does not advertise.
//!
//! Every handler has the same shape, `handle(broker, call, request) -> response`; Produce does
//! its routing when called, before its future is polled, so a connection's produce requests
//! reach each partition in the order they were sent. [`routing`] finds the partition actor a
//! data request is for; [`fetch`] holds the consumer and replica paths and their long poll.

use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use brook_raft::acl::{AclOperation, ResourceType, CLUSTER_NAME};

use crate::broker::Broker;
use crate::security::authorizer::{Requester, OPERATIONS_NOT_REQUESTED};
use crate::security::Principal;

mod acls;
mod add_raft_voter;
mod alter_configs;
mod alter_partition_reassignments;
mod alter_user_scram_credentials;
pub(crate) mod api_versions;
mod config_change;
mod create_acls;
mod create_partitions;
mod create_topics;
mod delete_acls;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_acls;
mod describe_cluster;
mod describe_configs;
mod describe_groups;
mod describe_log_dirs;
mod describe_quorum;
mod describe_topic_partitions;
mod describe_user_scram_credentials;
mod elect_leaders;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod incremental_alter_configs;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_partition_reassignments;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod raft_voters;
mod remove_raft_voter;
mod routing;
pub(crate) mod sasl_authenticate;
pub(crate) mod sasl_handshake;
mod sync_group;

/// One request as its handler sees it: the version it was sent at and who sent it (JoinGroup
/// records the client for DescribeGroups).
#[derive(Debug, Clone, Default)]
pub(crate) struct Call {
    pub version: i16,
    pub client_id: String,
    /// The client's address as Kafka shows it (`/127.0.0.1`).
    pub client_host: String,
    /// Who the connection authenticated as.
    pub principal: Principal,
    /// The listener the connection came through: the addresses it is told are that one's.
    pub listener: std::sync::Arc<str>,
}

impl Call {
    fn requester(&self) -> Requester<'_> {
        Requester {
            principal: &self.principal,
            host: &self.client_host,
        }
    }

    /// Whether the caller may do `operation` on the resource (see [`Authorizer`]).
    ///
    /// [`Authorizer`]: crate::security::authorizer::Authorizer
    pub fn may(
        &self,
        broker: &Broker,
        operation: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        broker
            .authorizer()
            .allows(self.requester(), operation, resource_type, name)
    }

    /// Whether the caller may do `operation` on some resource of the type.
    pub fn may_on_some(
        &self,
        broker: &Broker,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        broker
            .authorizer()
            .allows_some(self.requester(), operation, resource_type)
    }

    /// Whether the caller may do `operation` on the cluster.
    pub fn may_on_cluster(&self, broker: &Broker, operation: AclOperation) -> bool {
        broker
            .authorizer()
            .allows_on_cluster(self.requester(), operation)
    }

    /// The authorized-operations bit set of a resource, when the request asks for it.
    pub fn operations(
        &self,
        broker: &Broker,
        asked: bool,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        if asked {
            broker
                .authorizer()
                .operations(self.requester(), resource_type, name)
        } else {
            OPERATIONS_NOT_REQUESTED
        }
    }

    /// The cluster's authorized operations when asked for: 0 for a caller that may not
    /// DESCRIBE the cluster, as Kafka answers.
    pub fn cluster_operations(&self, broker: &Broker, asked: bool) -> i32 {
        if asked && !self.may_on_cluster(broker, AclOperation::Describe) {
            0
        } else {
            self.operations(broker, asked, ResourceType::Cluster, CLUSTER_NAME)
        }
    }

    /// Whether the caller may read (DESCRIBE) or change (ALTER) SCRAM credentials.
    pub fn manages_credentials(&self, broker: &Broker, operation: AclOperation) -> bool {
        broker
            .authorizer()
            .manages_credentials(self.requester(), operation)
    }
}

/// An API brook serves and the versions it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// What a handler eventually answers.
pub(crate) type Reply = BoxFuture<'static, ResponseKind>;

/// Declares every API once: its name (the `ApiKey`, `RequestKind` and `ResponseKind` variant),
/// its versions and the module whose `handle` serves it. Doc comments on an entry say why its
/// versions are what they are.
/// The APIs under `@connection` change the state of the connection they arrive on (SASL), so
/// the connection answers them itself, in order, before it reads the next request.
macro_rules! apis {
    (
        $($(#[$doc:meta])* $api:ident $min:literal ..= $max:literal => $module:ident,)*
        @connection {
            $($(#[$cdoc:meta])* $capi:ident $cmin:literal ..= $cmax:literal,)*
        }
    ) => {
        /// Everything brook answers, with the versions it accepts.
        pub const APIS: &[ApiRange] = &[
            $(ApiRange { key: ApiKey::$api, min: $min, max: $max },)*
            $(ApiRange { key: ApiKey::$capi, min: $cmin, max: $cmax },)*
        ];

        /// Whether the connection answers `key` itself.
        pub(crate) fn is_connection_api(key: ApiKey) -> bool {
            matches!(key, $(ApiKey::$capi)|*)
        }

        /// Starts the handler of a decoded request; `None` for an API missing from the table.
        pub(crate) fn dispatch(broker: &Arc<Broker>, call: Call, body: RequestKind) -> Option<Reply> {
            match body {
                $(RequestKind::$api(r) => {
                    Some($module::handle(broker.clone(), call, r).map(ResponseKind::$api).boxed())
                })*
                _ => None,
            }
        }
    };
}

apis! {
    /// Advertised from v0 although only v3+ (message format v2) is accepted: older librdkafka
    /// turns compression off when v0 is missing (KAFKA-18659).
    Produce 0..=12 => produce,
    Fetch 4..=17 => fetch,
    ListOffsets 1..=8 => list_offsets,
    /// v2-4, as Kafka 4 (KIP-896 dropped v0-1).
    OffsetForLeaderEpoch 2..=4 => offset_for_leader_epoch,
    DeleteRecords 0..=2 => delete_records,
    Metadata 0..=12 => metadata,
    ApiVersions 0..=4 => api_versions,
    CreateTopics 2..=7 => create_topics,
    DeleteTopics 1..=6 => delete_topics,
    InitProducerId 0..=5 => init_producer_id,
    DescribeConfigs 1..=4 => describe_configs,
    AlterConfigs 0..=2 => alter_configs,
    IncrementalAlterConfigs 0..=1 => incremental_alter_configs,
    CreatePartitions 0..=3 => create_partitions,
    DescribeCluster 0..=2 => describe_cluster,
    FindCoordinator 0..=6 => find_coordinator,
    DescribeQuorum 0..=2 => describe_quorum,
    /// v1-4, as Kafka 4 (KIP-896 dropped v0).
    DescribeLogDirs 1..=4 => describe_log_dirs,
    DescribeTopicPartitions 0..=0 => describe_topic_partitions,
    AlterPartitionReassignments 0..=1 => alter_partition_reassignments,
    ListPartitionReassignments 0..=0 => list_partition_reassignments,
    ElectLeaders 0..=2 => elect_leaders,
    // The group APIs at the versions Kafka 4 accepts (KIP-896 dropped JoinGroup v0-1 and
    // OffsetCommit v0-1, OffsetFetch v0).
    JoinGroup 2..=9 => join_group,
    SyncGroup 0..=5 => sync_group,
    Heartbeat 0..=4 => heartbeat,
    LeaveGroup 0..=5 => leave_group,
    OffsetCommit 2..=9 => offset_commit,
    OffsetFetch 1..=9 => offset_fetch,
    DescribeGroups 0..=6 => describe_groups,
    ListGroups 0..=5 => list_groups,
    DeleteGroups 0..=2 => delete_groups,
    OffsetDelete 0..=0 => offset_delete,
    DescribeUserScramCredentials 0..=0 => describe_user_scram_credentials,
    AlterUserScramCredentials 0..=0 => alter_user_scram_credentials,
    /// v1-3, as Kafka 4 (KIP-896 dropped v0).
    DescribeAcls 1..=3 => describe_acls,
    CreateAcls 1..=3 => create_acls,
    DeleteAcls 1..=3 => delete_acls,
    AddRaftVoter 0..=0 => add_raft_voter,
    RemoveRaftVoter 0..=0 => remove_raft_voter,
    @connection {
        /// After v0 the mechanism's messages come as bare frames, after v1 in SaslAuthenticate.
        SaslHandshake 0..=1,
        SaslAuthenticate 0..=2,
    }
}

pub(crate) fn supported(key: ApiKey) -> Option<ApiRange> {
    APIS.iter().copied().find(|a| a.key == key)
}
