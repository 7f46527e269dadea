//! brook's metadata Raft group: one openraft group per cluster replicates the cluster metadata
//! (brokers, topics and their partition owners, producer id blocks, consumer groups and
//! committed offsets) to every node.
//!
//! - `typ`: the openraft type configuration (node ids are broker ids, nodes are Raft
//!   addresses) and short names for openraft's types.
//! - `command`: [`MetadataCommand`], the log's entries, and what applying one returns.
//! - [`codes`]: the Kafka error codes a rejected command (or a failed write) carries.
//! - `state`: [`MetadataState`], the deterministic image the commands are applied to, one
//!   file per concern (brokers, topics, placement, partitions, producer ids, groups), each
//!   with the apply function of its commands.
//! - [`consumer_groups`]: consumer groups' recorded generations and committed offsets (Kafka's
//!   `__consumer_offsets`), and which broker coordinates each group.
//! - `log_store`, `state_machine`, `store`: the Raft log in sled, and the state machine that
//!   keeps the image in memory, made durable by bincode snapshots in the same sled database
//!   and the log after them (applying an entry writes nothing).
//! - `rpc`, `network`, `server` (with `slots`, its connection limit): the node-to-node
//!   transport, length-prefixed bincode frames over TCP: openraft's client side, and
//!   [`serve_raft_with`] for the Raft port. `auth`: the handshake over the cluster secret that
//!   opens every connection, and the MAC on every frame after it; `bounds`: the range checks
//!   on terms, indexes and node ids a peer sends, before openraft sees them.
//! - `group`: [`MetadataRaft`], the handle a broker holds: start, initialize, write (with
//!   forwarding to the leader), join a running group, read the local image, shut down.
//! - `scram`: SCRAM credentials as the state keeps them (salted keys, never passwords).
//! - `membership`: adding a node to a running group (learner first, voters kept odd).
//!
//! - `snapshot_buffer`: a snapshot's bytes in memory, bounded against a peer's chunks.
//! - [`fuzzing`] (feature `fuzzing`, and in tests): the fuzz targets of what a peer can send.
//!
//! Only `typ`, `codes` and `consumer_groups` are public modules (and `fuzzing` for `fuzz/`);
//! everything else other crates use is re-exported here. Nothing here knows about Kafka's wire format or actix; rejections
//! carry Kafka error codes as plain numbers.

pub mod acl;
mod auth;
mod bounds;
mod clock;
pub mod codes;
mod command;
pub mod consumer_groups;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod group;
mod log_store;
mod membership;
mod network;
mod rpc;
mod scram;
mod server;
mod slots;
mod snapshot_buffer;
mod state;
mod state_machine;
mod store;
pub mod stream;
pub mod typ;

pub use auth::{random_bytes, ClusterSecret, Identity, MIN_SECRET_BYTES};
pub use command::{
    CommandOutput, CommandResult, Endpoint, MetadataCommand, Reassignment, Rejection,
};
pub use consumer_groups::{
    CommittedOffset, ConsumerGroups, GroupCommit, GroupRecord, GroupState, MemberRecord,
    OffsetCommit,
};
pub use error::{Error, Result};
pub use group::{GroupConfig, MetadataRaft, MAX_COMMAND_BYTES};
pub use log_store::LogStore;
pub use membership::JoinReply;
pub use network::TcpNetworkFactory;
pub use rpc::TransportConfig;
pub use scram::{
    digest_bytes, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS, SCRAM_SHA_256, SCRAM_SHA_512,
};
pub use server::serve_raft_with;
pub use snapshot_buffer::SnapshotBuffer;
pub use state::{BrokerState, MetadataState, PartitionState, TopicState, MAX_TOPIC_CONFIG_BYTES};
pub use state_machine::{MetadataReader, StateMachineStore};
pub use store::open_stores;
pub use typ::{Node, NodeId, Raft, TypeConfig};
