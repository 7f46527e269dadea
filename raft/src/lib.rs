//! brook's metadata Raft group: one openraft group per cluster replicates the cluster metadata
//! (brokers, topics and their partition owners, producer id blocks, consumer groups and
//! committed offsets) to every node.
//!
//! - [`typ`]: the openraft type configuration (node ids are broker ids, nodes are Raft
//!   addresses) and short names for openraft's types.
//! - [`command`]: [`MetadataCommand`], the log's entries, and what applying one returns.
//! - [`state`]: [`MetadataState`], the deterministic image the commands are applied to.
//! - [`consumer_groups`]: consumer groups' recorded generations and committed offsets (Kafka's
//!   `__consumer_offsets`), and which broker coordinates each group.
//! - [`log_store`], [`state_machine`], [`store`]: the sled-backed Raft log and state machine
//!   (with bincode snapshots), both in one sled database per node.
//! - [`rpc`], [`network`], [`server`]: the node-to-node transport, length-prefixed bincode
//!   frames over TCP: openraft's client side, and [`serve_raft`] for the Raft port.
//! - [`group`]: [`MetadataRaft`], the handle a broker holds: start, initialize, write (with
//!   forwarding to the leader), join a running group, read the local image, shut down.
//! - [`membership`]: adding a node to a running group (learner first, voters kept odd).
//!
//! Nothing here knows about Kafka's wire format or actix; rejections carry Kafka error codes as
//! plain numbers.

pub mod command;
pub mod consumer_groups;
pub mod error;
pub mod group;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod replicas;
pub mod rpc;
pub mod server;
mod slots;
pub mod state;
pub mod state_machine;
pub mod store;
pub mod typ;

pub use command::{codes, CommandOutput, CommandResult, MetadataCommand, Reassignment, Rejection};
pub use consumer_groups::{
    CommittedOffset, ConsumerGroups, GroupCommit, GroupRecord, GroupState, MemberRecord,
    OffsetCommit,
};
pub use error::{Error, Result};
pub use group::{GroupConfig, MetadataRaft, MAX_COMMAND_BYTES};
pub use log_store::LogStore;
pub use membership::JoinReply;
pub use network::TcpNetworkFactory;
pub use replicas::PartitionState;
pub use rpc::TransportConfig;
pub use server::{serve_raft, serve_raft_with};
pub use state::{BrokerState, MetadataState, TopicState};
pub use state_machine::{MetadataReader, StateMachineStore};
pub use store::open_stores;
pub use typ::{Node, NodeId, Raft, TypeConfig};
