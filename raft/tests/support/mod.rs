//! Helpers for in-process clusters: nodes on 127.0.0.1 ephemeral ports, each with its own
//! temporary sled directory, talking over the real TCP transport.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use brook_raft::{ClusterSecret, GroupConfig, Identity, MetadataRaft, MetadataState, Node, NodeId};
use tempfile::TempDir;
use tokio::net::TcpListener;

pub struct TestNode {
    pub id: NodeId,
    pub addr: String,
    pub raft: MetadataRaft,
    pub dir: TempDir,
}

/// The secret every test node shares.
pub fn secret() -> ClusterSecret {
    ClusterSecret::new(b"brook raft test cluster secret").unwrap()
}

/// How a test tool that holds the cluster secret introduces itself.
pub fn peer(node_id: NodeId) -> Identity {
    Identity::new(secret(), node_id)
}

/// Fast but not flaky on a loaded 2-core machine.
pub fn config(id: NodeId, dir: &TempDir) -> GroupConfig {
    config_at(id, dir.path())
}

/// [`config`] for a node whose data lives under `dir`.
pub fn config_at(id: NodeId, dir: &Path) -> GroupConfig {
    let mut config = GroupConfig::new(id, dir.join("raft"), secret());
    config.raft.heartbeat_interval = 100;
    config.raft.election_timeout_min = 400;
    config.raft.election_timeout_max = 800;
    config
}

/// Logs to the test output when `BROOK_LOG` is set (e.g. `BROOK_LOG=brook_raft=debug`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BROOK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

pub async fn start_node(id: NodeId, tweak: impl FnOnce(&mut GroupConfig)) -> TestNode {
    init_tracing();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let dir = TempDir::new().unwrap();
    let mut config = config(id, &dir);
    tweak(&mut config);
    let raft = MetadataRaft::start(config, listener).await.unwrap();
    TestNode {
        id,
        addr,
        raft,
        dir,
    }
}

/// Start `n` nodes (ids 1..=n) and initialize them as one cluster, once, from node 1.
pub async fn start_cluster(n: u64) -> Vec<TestNode> {
    let mut nodes = Vec::new();
    for id in 1..=n {
        nodes.push(start_node(id, |_| {}).await);
    }
    let members: BTreeMap<NodeId, Node> = nodes
        .iter()
        .map(|n| (n.id, Node::new(n.addr.clone())))
        .collect();
    nodes[0].raft.initialize(members).await.unwrap();
    nodes
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until every node agrees on one leader among them, and return its id.
pub async fn agreed_leader(nodes: &[TestNode]) -> NodeId {
    let mut leader = None;
    eventually(
        "a leader all nodes agree on",
        Duration::from_secs(15),
        || {
            let seen: Vec<Option<NodeId>> = nodes.iter().map(|n| n.raft.current_leader()).collect();
            leader = seen[0];
            leader.is_some_and(|l| nodes.iter().any(|n| n.id == l))
                && seen.iter().all(|s| *s == leader)
        },
    )
    .await;
    leader.unwrap()
}

/// Wait until every node's image satisfies `check`.
pub async fn converge(nodes: &[TestNode], what: &str, check: impl Fn(&MetadataState) -> bool) {
    eventually(what, Duration::from_secs(10), || {
        nodes.iter().all(|n| n.raft.reader().read(&check))
    })
    .await;
}

pub fn register(id: NodeId) -> brook_raft::MetadataCommand {
    brook_raft::MetadataCommand::RegisterBroker {
        id,
        host: "127.0.0.1".into(),
        port: 9000 + id as u16,
        endpoints: Vec::new(),
        rack: None,
        epoch: 1,
        at_ms: 0,
    }
}

pub fn create_topic(name: &str, id: u8, partitions: u32) -> brook_raft::MetadataCommand {
    brook_raft::MetadataCommand::CreateTopic {
        name: name.into(),
        id: [id; 16],
        partitions,
        replication_factor: 1,
        configs: BTreeMap::new(),
        assignment: vec![],
    }
}
