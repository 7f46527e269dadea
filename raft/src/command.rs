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
    /// A broker registered with an epoch older than the one already known.
    pub const STALE_BROKER_EPOCH: i16 = 77;
    /// A heartbeat came from a broker id that never registered.
    pub const BROKER_ID_NOT_REGISTERED: i16 = 102;
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
    /// Create a topic. Each partition's owner is `assignment[p]`, or when `assignment` is
    /// empty, chosen deterministically among live brokers.
    CreateTopic {
        name: String,
        id: [u8; 16],
        partitions: u32,
        configs: BTreeMap<String, String>,
        assignment: Vec<u64>,
    },
    /// Delete a topic and all its partitions.
    DeleteTopic { name: String },
    /// Grow a topic to `count` partitions in total; owners as in `CreateTopic`.
    CreatePartitions {
        name: String,
        count: u32,
        assignment: Vec<u64>,
    },
    /// Reserve `count` consecutive producer ids; the output says where the block starts.
    AllocateProducerIds { count: u32 },
    /// Move the ownership (leadership) of one partition to another broker.
    ChangeOwner {
        topic: String,
        partition: u32,
        owner: u64,
    },
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

/// What a successfully applied entry produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutput {
    /// The command was applied and has nothing to report (also the answer to Raft's own blank
    /// and membership entries).
    Done,
    /// The topic exists now; `owners[p]` owns partition `p`.
    TopicCreated { id: [u8; 16], owners: Vec<u64> },
    /// The new partitions, numbered from `first`, are owned by `owners` in order.
    PartitionsCreated { first: u32, owners: Vec<u64> },
    /// Producer ids `start .. start + count` belong to the caller.
    ProducerIds { start: i64, count: u32 },
    /// The partition is owned by the new owner with this leader epoch.
    OwnerChanged { leader_epoch: i32 },
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
