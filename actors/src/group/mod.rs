//! The group coordinator: Kafka's classic consumer-group protocol, one actor per group on the
//! node that coordinates it.
//!
//! - [`actor`]: [`GroupActor`], the group's state machine with its timers.
//! - [`member`]: a member in memory, and the protocol choice across members.
//! - [`messages`]: the requests the actor serves (JoinGroup, SyncGroup, ...) and its answers.
//! - [`store`]: [`GroupStore`], the replicated home of generations and committed offsets that
//!   the node implements on top of Raft.
//! - [`registry`]: starts group actors on demand and unloads them when coordination moves.
//! - [`codes`]: the Kafka error codes the coordinator answers with.

pub mod actor;
pub mod codes;
pub(crate) mod member;
pub mod messages;
pub mod registry;
pub mod store;

pub use actor::{CoordinatorConfig, GroupActor, GroupState};
pub use registry::{ask, GroupRegistry};
pub use store::{GroupStore, LoadedGroup, OffsetToCommit, StoreResult, StoredGroup, StoredMember};

#[cfg(test)]
mod tests;
