//! `brook cluster ...`: run a local cluster of `brook node` processes, and report the state of
//! any cluster over the Kafka protocol.
//!
//! - [`layout`]: the nodes' ids, ports and directories, saved in `DIR/cluster.toml`.
//! - [`up`]: `brook cluster up`, the supervisor of the child processes.
//! - [`logs`]: the nodes' log files under DIR/logs, and `brook cluster logs`, which shows them.
//! - [`status`]: `brook cluster status`, DescribeQuorum and Metadata as a table.
//! - [`secure`]: `cluster up --secure`, a SASL_SSL cluster with its CA and admin user.
//! - [`rebalance`]: `brook cluster rebalance`, moving replicas onto new and off leaving nodes.
//! - [`promote`]: `brook cluster promote` and `demote`, an operator's consent for a new
//!   metadata voter, and taking a vote away.

pub mod layout;
pub mod logs;
pub mod promote;
pub mod rebalance;
pub mod secure;
pub mod status;
pub mod up;

use std::path::PathBuf;

use clap::Subcommand;

use super::{key_value, Bootstrap};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a local cluster of N nodes as child processes and supervise it until Ctrl-C.
    ///
    /// Node i listens on 127.0.0.1:(base-port + i - 1) for Kafka clients and on
    /// 127.0.0.1:(raft-base-port + i - 1) for Raft, with its data under DIR/node-i and its log in
    /// DIR/logs/node-i.log (the terminal shows only warnings and errors; see `brook cluster
    /// logs`). The layout is saved in DIR/cluster.toml; later runs on the same DIR bring the
    /// same cluster back.
    Up {
        /// Number of nodes (default 3; a saved layout keeps its own).
        #[arg(long)]
        nodes: Option<u16>,
        /// The cluster's directory: its layout and one data directory per node.
        #[arg(long, default_value = "./brook-cluster")]
        dir: PathBuf,
        /// Kafka port of node 1 (default 9092).
        #[arg(long)]
        base_port: Option<u16>,
        /// Raft port of node 1 (default 19092).
        #[arg(long)]
        raft_base_port: Option<u16>,
        /// A setting for every node by its Kafka name, e.g. -o num.partitions=3 (repeatable).
        #[arg(short = 'o', long = "override", value_name = "KEY=VALUE", value_parser = key_value)]
        overrides: Vec<(String, String)>,
        /// A new cluster speaks only SASL_SSL: a CA, node certificates and an admin user are
        /// made in DIR, with DIR/client.properties for clients (`--command-config`).
        #[arg(long)]
        secure: bool,
    },
    /// Show the last lines of the node logs of a `brook cluster up` cluster, and follow them.
    Logs {
        /// The cluster's directory, as given to `brook cluster up --dir`.
        #[arg(long, default_value = "./brook-cluster")]
        dir: PathBuf,
        /// Only this node's log (default: every node's, each line prefixed with its node).
        #[arg(long)]
        node: Option<i32>,
        /// Keep printing new lines until Ctrl-C.
        #[arg(short = 'f', long)]
        follow: bool,
        /// How many of the last lines of each log to print first.
        #[arg(short = 'n', long, default_value_t = 50)]
        lines: usize,
    },
    /// Spread the replicas evenly over the live brokers (a new node gets its share), moving
    /// them off `--decommission`ed ones; a dry run unless --execute.
    Rebalance {
        #[command(flatten)]
        bootstrap: Bootstrap,
        /// Brokers to move every replica off, e.g. --decommission 3 (repeatable).
        #[arg(long)]
        decommission: Vec<i32>,
        /// Start the moves and wait until they complete.
        #[arg(long)]
        execute: bool,
        /// How long to wait for the moves, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Make a node that joined the metadata quorum as an observer (learner) a voter: a node
    /// holding the cluster secret may join, but votes only with an operator's consent.
    Promote {
        #[command(flatten)]
        bootstrap: Bootstrap,
        /// The node id to promote.
        #[arg(long)]
        node: i32,
        /// How long to wait for the promotion, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Take a node's vote in the metadata quorum away again: it stays an observer (learner)
    /// and keeps serving as a broker.
    Demote {
        #[command(flatten)]
        bootstrap: Bootstrap,
        /// The node id to demote.
        #[arg(long)]
        node: i32,
    },
    /// Show the Raft quorum and the brokers of a running cluster.
    Status {
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
}

pub async fn run(command: ClusterCommand) -> anyhow::Result<()> {
    match command {
        ClusterCommand::Up {
            nodes,
            dir,
            base_port,
            raft_base_port,
            overrides,
            secure,
        } => {
            up::up(up::UpArgs {
                dir,
                secure,
                requested: layout::Requested {
                    nodes,
                    base_port,
                    raft_base_port,
                    overrides,
                },
            })
            .await
        }
        ClusterCommand::Logs {
            dir,
            node,
            follow,
            lines,
        } => {
            logs::logs(logs::LogsArgs {
                dir,
                node,
                follow,
                lines,
            })
            .await
        }
        ClusterCommand::Status { bootstrap } => status::status(bootstrap.apply()?).await,
        ClusterCommand::Promote {
            bootstrap,
            node,
            timeout,
        } => {
            let timeout = std::time::Duration::from_secs(timeout);
            promote::promote(bootstrap.apply()?, node, timeout).await
        }
        ClusterCommand::Demote { bootstrap, node } => {
            promote::demote(bootstrap.apply()?, node).await
        }
        ClusterCommand::Rebalance {
            bootstrap,
            decommission,
            execute,
            timeout,
        } => {
            rebalance::rebalance(
                bootstrap.apply()?,
                &decommission,
                execute,
                std::time::Duration::from_secs(timeout),
            )
            .await
        }
    }
}
