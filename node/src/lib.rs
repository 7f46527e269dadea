//! brook-node: the `brook` binary's library.
//!
//! - [`config`] reads settings (defaults, TOML file, `BROOK_*` variables, flags) by Kafka's names;
//!   [`topic_config`] resolves a topic's settings from its own configs and the broker defaults.
//! - [`runtime`] starts a node: store, actors, metadata, listener; and stops it gracefully.
//! - [`formation`] makes the node part of a cluster: its Raft member, forming or joining the
//!   cluster, registration and heartbeats, and partition actors that follow the metadata.
//! - [`server`] accepts connections; [`connection`] reads frames, dispatches them and writes
//!   responses in order.
//! - [`handlers`] has one file per Kafka API and the dispatch table that ApiVersions is derived
//!   from; [`routing`] finds the partition actor a data request is for.
//! - [`broker`] is the state handlers share; [`metadata`] the node's view of the Raft-replicated
//!   metadata (brokers, topics, owners) and writes through Raft.
//! - [`groups`] is the node's side of the group coordinator: placement, the group actors it
//!   runs, and their state and committed offsets on Raft (batched commits).
//! - [`errors`] turns domain failures into Kafka error codes.
//! - [`admin`] is a small Kafka-protocol client for the `brook topic ...` commands;
//!   [`group_admin`] runs `brook group ...` (list, describe, delete, reset-offsets) with it.
//! - [`cluster`] runs a local cluster as child processes (`brook cluster up`) and reports a
//!   cluster's Raft quorum and brokers (`brook cluster status`).

pub mod admin;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod errors;
pub mod formation;
pub mod group_admin;
pub mod groups;
pub mod handlers;
pub mod metadata;
pub mod replication;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod topic_config;
