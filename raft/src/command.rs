//! The commands the metadata log carries, and what applying one returns.
//!
//! A command is validated while it is applied (so every node reaches the same verdict from the
//! same log): it either changes the state completely and yields a [`CommandOutput`], or it is
//! rejected with a [`Rejection`] carrying a Kafka error code and leaves the state untouched.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::consumer_groups::{GroupCommit, GroupRecord};

/// Kafka error codes a rejected command can carry (the `ErrorCode` numbers of the Kafka
/// protocol, so `node` can put them straight into a response).
pub mod codes {
    /// No error.
    pub const NONE: i16 = 0;
    /// The topic (or partition) does not exist.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// The broker does not lead the partition.
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    /// The command is too large for one log entry.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// A broker the command refers to is not live.
    pub const BROKER_NOT_AVAILABLE: i16 = 8;
    /// The broker that wrote a group change is no longer the group's coordinator.
    pub const NOT_COORDINATOR: i16 = 16;
    /// The topic name is not a legal Kafka topic name.
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    /// A topic with that name (or that topic id) already exists.
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// The partition count is not valid (zero, too large, or not larger than today's).
    pub const INVALID_PARTITIONS: i16 = 37;
    /// Not enough live brokers to place the replicas.
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    /// The replica assignment names a broker that is not registered.
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    /// A group record older than the one already stored.
    pub const ILLEGAL_GENERATION: i16 = 22;
    /// The request is malformed in a way no other code describes.
    pub const INVALID_REQUEST: i16 = 42;
    /// The group still has members.
    pub const NON_EMPTY_GROUP: i16 = 68;
    /// The group does not exist.
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    /// A leader epoch older than the partition's current one.
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    /// The preferred replica is not live or not in sync.
    pub const PREFERRED_LEADER_NOT_AVAILABLE: i16 = 80;
    /// The preferred replica already leads.
    pub const ELECTION_NOT_NEEDED: i16 = 84;
    /// A reassignment was cancelled where none is in progress.
    pub const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
    /// A broker registered with an epoch older than the one already known.
    pub const STALE_BROKER_EPOCH: i16 = 77;
    /// A heartbeat came from a broker id that never registered.
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
    /// An in-sync set that names a replica which may not be in it.
    pub const INELIGIBLE_REPLICA: i16 = 107;
    /// An in-sync set change made from an outdated partition epoch.
    pub const INVALID_UPDATE_VERSION: i16 = 108;
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
        host: String,
        port: u16,
        rack: Option<String>,
        epoch: i64,
        at_ms: u64,
    },
    /// A broker is alive at `at_ms` (its wall clock, milliseconds since the epoch).
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
}

/// Why a command was not applied: a Kafka error code plus a message for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// A Kafka error code, one of [`codes`].
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
