//! The admin CLI: `brook topic|group|acl|user|cluster ...`, which talk the Kafka protocol to
//! any node through [`crate::client`], as Kafka's own tools do. The broker server never imports
//! it.
//!
//! - [`topic`]: create, list, describe and delete topics.
//! - [`group`]: list, describe and delete consumer groups, and reset their offsets.
//! - [`cluster`]: run a local cluster (`up`), show a cluster's state (`status`), move replicas
//!   (`rebalance`).
//! - [`acl`]: add, list and remove ACLs (CreateAcls, DescribeAcls, DeleteAcls).
//! - [`config`]: describe and change topic and broker configs, like `kafka-configs.sh`.
//! - [`user`]: create, list and delete SCRAM users and change their passwords.
//! - [`produce`] and [`consume`]: records from standard input to a topic and back, like
//!   Kafka's console producer and consumer.
//! - [`output`]: Kafka's error names and tables, one style for every command.

pub mod acl;
pub mod cluster;
pub mod config;
pub mod consume;
pub mod group;
pub(crate) mod output;
pub mod produce;
pub mod topic;
pub mod user;

use clap::{Args, Subcommand};

/// Where an admin command connects: any node of the cluster.
#[derive(Debug, Args)]
pub struct Bootstrap {
    /// Nodes of the cluster, comma-separated; the first that answers is used.
    #[arg(
        long,
        global = true,
        default_value = "127.0.0.1:9092",
        env = "BROOK_BOOTSTRAP_SERVER"
    )]
    pub bootstrap_server: String,
    /// A client properties file for a secured cluster, as Kafka's tools take it:
    /// security.protocol, ssl.truststore.location (PEM), sasl.mechanism and sasl.jaas.config.
    #[arg(long, global = true, env = "BROOK_COMMAND_CONFIG")]
    pub command_config: Option<std::path::PathBuf>,
}

impl Bootstrap {
    /// Applies `--command-config` to this process's admin connections; returns the servers.
    pub fn apply(&self) -> anyhow::Result<&str> {
        if let Some(path) = &self.command_config {
            crate::client::security::set_admin(crate::client::security::ClientSecurity::load(
                path,
            )?);
        }
        Ok(&self.bootstrap_server)
    }
}

/// The admin commands, as `brook` exposes them.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create, list, describe or delete topics on a running node.
    Topic {
        #[command(subcommand)]
        command: topic::TopicCommand,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// List, describe or delete consumer groups, or reset their offsets.
    Group {
        #[command(subcommand)]
        command: group::GroupCommand,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Add, list or remove ACLs (the cluster needs an authorizer).
    Acl {
        #[command(subcommand)]
        command: acl::AclCommand,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Create, list or delete SCRAM users, or change their passwords.
    User {
        #[command(subcommand)]
        command: user::UserCommand,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Describe or change topic configs, a broker's or the cluster-wide broker defaults.
    Config {
        #[command(subcommand)]
        command: config::ConfigCommand,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Write records, one per line of standard input (or --file), to a topic.
    Produce {
        #[command(flatten)]
        args: produce::ProduceArgs,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Print a topic's records as they arrive.
    Consume {
        #[command(flatten)]
        args: consume::ConsumeArgs,
        #[command(flatten)]
        bootstrap: Bootstrap,
    },
    /// Start a local cluster (`up`), or show the state of a running one (`status`).
    Cluster {
        #[command(subcommand)]
        command: cluster::ClusterCommand,
    },
}

pub async fn run(command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Topic { command, bootstrap } => topic::run(command, bootstrap.apply()?).await,
        AdminCommand::Group { command, bootstrap } => group::run(command, bootstrap.apply()?).await,
        AdminCommand::Acl { command, bootstrap } => acl::run(command, bootstrap.apply()?).await,
        AdminCommand::User { command, bootstrap } => user::run(command, bootstrap.apply()?).await,
        AdminCommand::Config { command, bootstrap } => {
            config::run(command, bootstrap.apply()?).await
        }
        AdminCommand::Produce { args, bootstrap } => produce::run(args, bootstrap.apply()?).await,
        AdminCommand::Consume { args, bootstrap } => consume::run(args, bootstrap.apply()?).await,
        AdminCommand::Cluster { command } => cluster::run(command).await,
    }
}

/// Parses a `KEY=VALUE` argument.
pub fn key_value(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("expected KEY=VALUE, got `{text}`"))
}
