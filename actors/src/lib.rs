//! brook-actors: the actix side of a brook node.
//!
//! - `system` runs the actix System on its own thread with a pool of arbiters, so the tokio
//!   runtime that owns the sockets never shares a thread with partition work.
//! - `partition` is the partition-owner actor ([`PartitionActor`]): the only writer of one
//!   replica of a partition's log. As leader it assigns offsets, asks the store for a
//!   group-committed flush, and moves the high watermark once every in-sync replica holds the
//!   data, which wakes long-polling fetches through a `watch` channel; as follower it appends
//!   what its fetcher copied and truncates where its log diverged.
//! - `registry` starts partition actors round-robin over the arbiters and finds them again.
//! - [`group`] is the group coordinator: one actor per consumer group this node coordinates,
//!   running Kafka's classic group protocol, with its durable state behind a trait the node
//!   implements on Raft. Its [`group::codes`] are the Kafka error codes the actors answer with.
//! - `reply` is how every message is sent: it carries a oneshot reply sender and goes out with
//!   `do_send`, which enqueues immediately, so requests from one connection reach a partition
//!   in the order they were sent (the idempotent producer depends on it).
//! - `clock`: wall-clock milliseconds; `error`: [`PartitionError`].

mod clock;
mod error;
pub mod group;
mod partition;
mod registry;
mod reply;
mod system;

pub use error::PartitionError;
pub use partition::{
    ask, Acks, AppendAsFollower, AppendBatch, Appended, BecomeFollower, BecomeLeader,
    DeleteRecords, DescribeLog, Divergence, EpochEnd, FollowerPosition, IsrRequest, Leadership,
    ListOffset, LogDescription, OffsetAnswer, OffsetQuery, PartitionActor, PartitionConfig,
    ReadRecords, Reconfigure, RecordsRead, ReplicaFetch, ReplicaRead, TruncateFollower,
};
pub use registry::{PartitionHandle, PartitionKey, PartitionRegistry};
pub use system::ActorSystem;
