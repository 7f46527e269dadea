//! `brook`: run a node, or administer one over the Kafka protocol. Argument parsing only: the
//! node is `brook_node::server`, the admin commands `brook_node::cli`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use brook_node::cli::{self, key_value};
use brook_node::config::BrokerConfig;
use brook_node::server::Node;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(name = "brook", version, about = "A Kafka-compatible streaming broker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (defaults: 127.0.0.1:9092, data under ./data).
    Node(NodeArgs),
    #[command(flatten)]
    Admin(cli::AdminCommand),
}

#[derive(Args)]
struct NodeArgs {
    /// This node's id (node.id).
    #[arg(long)]
    node_id: Option<i32>,
    /// Where to listen, e.g. PLAINTEXT://127.0.0.1:9092; port 0 picks a free port (listeners).
    #[arg(long)]
    listeners: Option<String>,
    /// The address clients are told to connect to (advertised.listeners).
    #[arg(long)]
    advertised_listeners: Option<String>,
    /// host:port of this node's Raft port (brook.raft.listener).
    #[arg(long)]
    raft_listener: Option<String>,
    /// The initial Raft members, id@host:port,... (controller.quorum.voters).
    #[arg(long)]
    peers: Option<String>,
    /// Join the running cluster with this Raft address (controller.quorum.bootstrap.servers).
    #[arg(long)]
    join: Option<String>,
    /// Data directory (log.dirs).
    #[arg(long)]
    log_dirs: Option<PathBuf>,
    /// A TOML file of settings by their Kafka names.
    #[arg(long, env = "BROOK_CONFIG")]
    config: Option<PathBuf>,
    /// Any setting by its Kafka name, e.g. -o num.partitions=3 (repeatable).
    #[arg(short = 'o', long = "override", value_name = "KEY=VALUE", value_parser = key_value)]
    overrides: Vec<(String, String)>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = std::env::var("BROOK_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("brook: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Node(args) => run_node(args).await,
            Command::Admin(command) => cli::run(command).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("brook: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let mut flags = Vec::new();
    let mut flag = |name: &str, value: Option<String>| {
        if let Some(v) = value {
            flags.push((name.to_string(), v));
        }
    };
    flag("node.id", args.node_id.map(|n| n.to_string()));
    flag("listeners", args.listeners);
    flag("advertised.listeners", args.advertised_listeners);
    flag("brook.raft.listener", args.raft_listener);
    flag("controller.quorum.voters", args.peers);
    flag("controller.quorum.bootstrap.servers", args.join);
    flag("log.dirs", args.log_dirs.map(|p| p.display().to_string()));
    flags.extend(args.overrides);
    let config = BrokerConfig::load(args.config.as_deref(), std::env::vars(), &flags)?;
    let node_id = config.node_id;
    let mut node = Node::start(config).await?;
    let (host, port) = node.advertised();
    // Scripts and tests wait for this line; it is the one thing brook prints on stdout.
    println!("brook node {node_id} ready on {host}:{port}");
    let _ = std::io::stdout().flush();
    tokio::select! {
        signal = wait_for_signal() => {
            signal?;
            tracing::info!("shutting down");
            node.shutdown().await
        }
        reason = node.failed() => {
            tracing::error!(%reason, "stopping: this node can no longer serve");
            if let Err(e) = node.shutdown().await {
                tracing::error!(error = %e, "shutdown after the failure did not complete");
            }
            anyhow::bail!("{reason}")
        }
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
