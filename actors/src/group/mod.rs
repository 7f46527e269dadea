//! The group coordinator: Kafka's classic consumer-group protocol, one actor per group on the
//! node that coordinates it.
//!
//! - `actor`: [`GroupActor`], the group's state, its loading and unloading, session timers.
//! - The classic join protocol, in three steps:
//!   - `join`: JoinGroup, and how new, known and static members enter the barrier;
//!   - `rebalance`: the join barrier itself, its timers, and each new generation;
//!   - `sync`: SyncGroup, and recording the leader's assignment before anyone gets theirs.
//! - `presence`: Heartbeat and LeaveGroup.
//! - `offsets`: OffsetCommit and OffsetDelete.
//! - `admin`: DescribeGroups and DeleteGroups.
//! - `member`: a member in memory, and the protocol choice across members.
//! - [`messages`]: the requests the actor serves and its answers.
//! - `store`: [`GroupStore`], the replicated home of generations and committed offsets that the
//!   node implements on top of Raft.
//! - `registry`: [`GroupRegistry`] starts group actors on demand and unloads them when
//!   coordination moves.
//! - [`codes`]: the Kafka error codes brook's actors answer with.

mod actor;
mod admin;
pub mod codes;
mod join;
mod member;
pub mod messages;
mod offsets;
mod presence;
mod rebalance;
mod registry;
mod store;
mod sync;

pub use actor::{CoordinatorConfig, GroupActor};
pub use registry::{ask, GroupRegistry};
pub use store::{GroupStore, LoadedGroup, OffsetToCommit, StoreResult, StoredGroup, StoredMember};

#[cfg(test)]
mod tests;
