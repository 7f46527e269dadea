//! brook-actors: the actix side of a brook node.
//!
//! - [`system`] runs the actix System on its own thread with a pool of arbiters, so the tokio
//!   runtime that owns the sockets never shares a thread with partition work.
//! - [`partition`] is the partition-owner actor: the only writer of one partition's log. It
//!   assigns offsets, asks the store for a group-committed flush, and moves the high watermark once
//!   the data is durable, which wakes long-polling fetches through a `watch` channel.
//! - [`registry`] starts partition actors round-robin over the arbiters and finds them again.
//! - [`group`] is the group coordinator: one actor per consumer group this node coordinates,
//!   running Kafka's classic group protocol, with its durable state behind a trait the node
//!   implements on Raft.
//!
//! Callers talk to actors with messages that carry a oneshot reply sender and are delivered with
//! `do_send`: it enqueues immediately, so requests from one connection reach a partition in the
//! order they were sent (the idempotent producer depends on it).

pub mod error;
pub mod group;
pub mod partition;
pub mod registry;
pub mod system;

pub use error::PartitionError;
pub use partition::follower::Divergence;
pub use partition::leader::Leadership;
pub use partition::{
    ask, Acks, AppendAsFollower, AppendBatch, Appended, BecomeFollower, BecomeLeader,
    DeletePartition, FollowerPosition, IsrRequest, ListOffset, OffsetAnswer, OffsetQuery,
    PartitionActor, PartitionConfig, ReadRecords, RecordsRead, ReplicaFetch, ReplicaRead,
    TruncateFollower, UpdateConfig,
};
pub use registry::{PartitionHandle, PartitionKey, PartitionRegistry};
pub use system::ActorSystem;
