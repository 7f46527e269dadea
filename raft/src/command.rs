//! The commands the metadata log carries, and what applying one returns.
//!
//! A command is validated while it is applied (so every node reaches the same verdict from the
//! same log): it either changes the state completely and yields a [`CommandOutput`], or it is
//! rejected with a [`Rejection`] carrying a Kafka error code (one of [`crate::codes`]) and
//! leaves the state untouched.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::consumer_groups::{GroupCommit, GroupRecord};

/// Where clients reach a broker through one of its listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The listener's name (`PLAINTEXT`, `CLIENT`, ...), in upper case.
    pub listener: String,
    pub host: String,
    pub port: u16,
}

/// One change to the cluster metadata; the application data of every Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Name the cluster and fix its cluster-wide settings. Only the first one applies; later
    /// ones (another node racing to do the same, or a retry) change nothing.
    InitCluster {
        cluster_id: String,
        session_timeout_ms: u64,
    },
    /// A broker (re)joins the cluster. A higher `epoch` replaces an older registration; an equal
    /// epoch is an idempotent retry; a lower one is rejected as stale. It counts as a heartbeat
    /// at `at_ms`, so a registered broker is live at once.
    RegisterBroker {
        id: u64,
        /// Where other nodes reach it (its inter-broker listener).
        host: String,
        port: u16,
        /// Every listener's advertised address.
        endpoints: Vec<Endpoint>,
        rack: Option<String>,
        epoch: i64,
        at_ms: u64,
    },
    /// A broker is alive at `at_ms` (milliseconds since the epoch, stamped by the Raft leader
    /// that appends it: see [`MetadataCommand::stamped`]).
    BrokerHeartbeat { id: u64, at_ms: u64 },
    /// Create a topic. Each partition's replica set (leader first) is `assignment[p]`, or when
    /// `assignment` is empty, `replication_factor` live brokers placed deterministically.
    CreateTopic {
        name: String,
        id: [u8; 16],
        partitions: u32,
        replication_factor: u32,
        configs: BTreeMap<String, String>,
        assignment: Vec<Vec<u64>>,
    },
    /// Delete a topic and all its partitions.
    DeleteTopic { name: String },
    /// Grow a topic to `count` partitions in total, with the replication factor of its
    /// first partition; replicas as in `CreateTopic`.
    CreatePartitions {
        name: String,
        count: u32,
        assignment: Vec<Vec<u64>>,
    },
    /// Reserve `count` consecutive producer ids; the output says where the block starts.
    AllocateProducerIds { count: u32 },
    /// A partition's leader changes its in-sync set (Kafka's AlterPartition), naming its
    /// leader epoch and the partition epoch the change starts from.
    AlterPartition {
        topic_id: [u8; 16],
        partition: u32,
        leader: u64,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<u64>,
    },
    /// Move leadership of each partition to its preferred replica where that replica is live
    /// and in sync (Kafka's preferred ElectLeaders).
    ElectPreferredLeaders { partitions: Vec<(String, u32)> },
    /// Move partitions to new replica sets (leader first), or cancel a move in progress
    /// (`replicas: None`), as Kafka's AlterPartitionReassignments.
    ReassignPartitions { moves: Vec<Reassignment> },
    /// Written by a new Raft leader as soon as it leads: every broker that was live when the
    /// term began gets a fresh session from `at_ms` (the leader's clock). Until then those
    /// brokers count as live, since none could heartbeat while the group had no leader.
    RenewSessions { at_ms: u64 },
    /// Record a consumer group's completed generation. Like every group write, it names the
    /// `coordinator` that made it and the placement epoch `since` which that coordinator
    /// loaded the group at; it applies only if the coordinator held the group throughout.
    StoreGroup {
        coordinator: u64,
        since: u64,
        group: String,
        record: GroupRecord,
    },
    /// Store committed offsets of any number of groups at once; each group's commit is
    /// checked on its own (see `StoreGroup`). A commit without offsets changes nothing: it
    /// is a read barrier.
    CommitOffsets {
        coordinator: u64,
        at_ms: u64,
        commits: Vec<GroupCommit>,
    },
    /// Delete an empty group with its offsets.
    DeleteGroup {
        coordinator: u64,
        since: u64,
        group: String,
    },
    /// Forget some committed offsets of one group.
    DeleteOffsets {
        coordinator: u64,
        since: u64,
        group: String,
        partitions: Vec<(String, i32)>,
    },
    /// Expire committed offsets older than `retention_ms` at `at_ms` (KIP-211 rules).
    ExpireOffsets { at_ms: u64, retention_ms: u64 },
    /// Give each leaderless partition a leader from its live replicas even if none is in sync
    /// (Kafka's unclean ElectLeaders): an operator's choice to take availability over the
    /// writes only the lost in-sync replicas held. Appended last so older logs still decode.
    ElectUncleanLeaders { partitions: Vec<(String, u32)> },
    /// Change a topic's configs (Kafka's AlterConfigs and IncrementalAlterConfigs): start from
    /// its current configs, or from none when `replace`, remove `delete`, then set `set`. The
    /// node validated the values; applying checks only that the topic exists and the total
    /// size bound ([`crate::MAX_TOPIC_CONFIG_BYTES`]).
    /// Set and delete dynamic broker configs: the cluster-wide defaults (`broker` `None`,
    /// Kafka's resource name "") or one broker's own. Which names may change is the node's
    /// to check; the state bounds their size.
    AlterBrokerConfigs {
        broker: Option<u64>,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    AlterTopicConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
        replace: bool,
    },
    /// Set a user's SCRAM credential for one mechanism (AlterUserScramCredentials), replacing
    /// any it had. Appended last so older logs still decode.
    UpsertScramCredential {
        user: String,
        mechanism: u8,
        credential: crate::scram::ScramCredential,
    },
    /// Remove a user's SCRAM credential for one mechanism.
    DeleteScramCredential { user: String, mechanism: u8 },
    /// Add ACL bindings, all or none.
    CreateAcls {
        bindings: Vec<crate::acl::AclBinding>,
    },
    /// Remove the bindings each filter matches.
    DeleteAcls { filters: Vec<crate::acl::AclFilter> },
}

impl MetadataCommand {
    /// The command as the Raft leader appends it: broker liveness is judged by one clock, the
    /// leader's, so a broker whose wall clock runs ahead cannot age every other broker's
    /// heartbeats (and one whose clock runs behind cannot age its own). A new leader renews
    /// every session from its own clock when its term starts (`RenewSessions`).
    pub fn stamped(self, leader_now_ms: u64) -> Self {
        match self {
            MetadataCommand::BrokerHeartbeat { id, .. } => MetadataCommand::BrokerHeartbeat {
                id,
                at_ms: leader_now_ms,
            },
            MetadataCommand::RegisterBroker {
                id,
                host,
                port,
                endpoints,
                rack,
                epoch,
                ..
            } => MetadataCommand::RegisterBroker {
                id,
                host,
                port,
                endpoints,
                rack,
                epoch,
                at_ms: leader_now_ms,
            },
            MetadataCommand::RenewSessions { .. } => MetadataCommand::RenewSessions {
                at_ms: leader_now_ms,
            },
            other => other,
        }
    }
}

/// One partition's move in [`MetadataCommand::ReassignPartitions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reassignment {
    pub topic: String,
    pub partition: u32,
    /// The new replica set; `None` cancels the move in progress.
    pub replicas: Option<Vec<u64>>,
}

/// What a successfully applied entry produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    /// The command was applied and has nothing to report (also the answer to Raft's own blank
    /// and membership entries).
    Done,
    /// The topic exists now; `replicas[p]` is partition `p`'s replica set, leader first.
    TopicCreated {
        id: [u8; 16],
        replicas: Vec<Vec<u64>>,
    },
    /// The new partitions, numbered from `first`, have these replica sets in order.
    PartitionsCreated { first: u32, replicas: Vec<Vec<u64>> },
    /// Producer ids `start .. start + count` belong to the caller.
    ProducerIds { start: i64, count: u32 },
    /// The in-sync set changed; the partition is now at this partition epoch.
    PartitionAltered { partition_epoch: i32 },
    /// One Kafka error code per partition of an election or reassignment, in order.
    PartitionResults { codes: Vec<i16> },
    /// One Kafka error code per commit or group of the command, in order.
    GroupResults { codes: Vec<i16> },
    /// Per DeleteAcls filter, the bindings it removed.
    AclsDeleted {
        removed: Vec<Vec<crate::acl::AclBinding>>,
    },
}

/// Why a command was not applied: a Kafka error code plus a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// A Kafka error code, one of [`crate::codes`].
    pub code: i16,
    pub message: String,
}

impl Rejection {
    pub fn new(code: i16, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rejected (kafka error {}): {}", self.code, self.message)
    }
}

/// The response of one applied log entry: Raft's `R` type.
pub type CommandResult = Result<CommandOutput, Rejection>;
