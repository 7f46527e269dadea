//! brook-node: the `brook` binary's library: the broker server and the admin CLI.
//!
//! Where things live:
//! - [`server`]: start-up and shutdown of a node ([`server::Node`]), the listener, the
//!   connection loop, and `server/tasks/`, every background loop (membership and heartbeats,
//!   partitions following the metadata, group coordination, in-sync sets, preferred leaders,
//!   offset expiry, retention).
//! - [`handlers`]: one file per Kafka API, declared with its versions in one table that drives
//!   both dispatch and ApiVersions; `handlers/fetch/` holds the consumer and replica paths.
//! - `broker`: only the state handlers share. `partitions`: the partition actors made to match
//!   the metadata. `metadata`: the image of the Raft state, writes through Raft, and cluster
//!   formation. `groups`: this node's group coordinator on Raft. `replication`: the follower's
//!   replica fetchers.
//! - [`config`]: settings by Kafka's names; topic settings resolved from them.
//! - `security`: who a connection is ([`security::Principal`]) and how it proves it (SASL,
//!   and `BROOK-NODE` for brook's own nodes).
//! - `metrics`: the Prometheus metrics and their `/metrics` endpoint.
//! - `clock`: wall-clock time and the leader lease. `errors`: domain failures as Kafka error
//!   codes. `shutdown`: the signal every task holds.
//! - [`client`]: the one Kafka client brook uses to talk to itself (replica fetchers, the CLI).
//! - [`cli`]: `brook topic|group|cluster ...`, built on [`client`]. The server never imports it.
//!
//! The path of a Produce request, socket to sled and back, in eight files:
//! 1. `node/src/server/connection.rs` reads a frame, decodes the header and body
//!    (`brook-wire`), and dispatches it; responses go back in request order.
//! 2. `node/src/handlers/mod.rs` routes by API key through the table of APIs.
//! 3. `node/src/handlers/produce.rs` checks each partition's batch and sends it to the
//!    partition's leader actor, which
//! 4. `node/src/handlers/routing.rs` finds on this node (or answers NOT_LEADER_OR_FOLLOWER).
//! 5. `actors/src/partition/produce.rs`, in the partition actor, validates the batch's records
//!    with
//! 6. `wire/src/batch/validate.rs`, assigns offsets and appends through
//! 7. `storage/src/partition.rs` to sled; the actor answers once the flush of
//! 8. `storage/src/group_commit.rs` made the batch durable and `acks` is satisfied (for
//!    acks=all, once the in-sync replicas' fetches moved the high watermark past it).

pub mod cli;
pub mod client;
pub mod config;
pub mod handlers;
pub mod server;

mod broker;
mod clock;
mod errors;
mod groups;
mod metadata;
mod metrics;
mod partitions;
mod replication;
mod security;
mod shutdown;
