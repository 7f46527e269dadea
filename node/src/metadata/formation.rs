//! This node's place in the cluster: start its member of the metadata Raft group, and form the
//! cluster or join a running one. Registering as a broker and heartbeating are background tasks
//! (`server/tasks/membership.rs`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use brook_raft::stream::{Layer, StreamLayer};
use brook_raft::{ClusterSecret, GroupConfig, MetadataRaft, Node};
use tokio::net::TcpListener;

use crate::config::BrokerConfig;
use crate::security::tls::raft::RaftTls;
use crate::security::tls::Tls;

/// How long a joining node keeps asking the cluster to add it.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Bind the Raft port and start this node's member of the group (not yet part of a cluster).
/// Returns it with the Raft address peers reach it at.
pub async fn start_raft(
    config: &BrokerConfig,
    secret: ClusterSecret,
    tls: Option<Arc<Tls>>,
) -> anyhow::Result<(MetadataRaft, String)> {
    let cluster = &config.cluster;
    let me = own_id(config)?;
    let bind = cluster
        .raft_listener
        .clone()
        .or_else(|| cluster.voters.get(&me).cloned())
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let listener = TcpListener::bind(&bind)
        .await
        .with_context(|| format!("binding the Raft port {bind}"))?;
    let local = listener.local_addr()?;
    let addr = match cluster.voters.get(&me) {
        Some(addr) => addr.clone(),
        None => reachable(local),
    };
    let mut group = GroupConfig::new(me, config.log_dirs.join("raft"), secret);
    group.raft.heartbeat_interval = cluster.raft_heartbeat_ms;
    group.raft.election_timeout_min = cluster.election_timeout_ms;
    group.raft.election_timeout_max = cluster.election_timeout_ms * 2;
    group.raft.snapshot_policy =
        openraft::SnapshotPolicy::LogsSinceLast(cluster.snapshot_interval_entries);
    // Keep some entries behind a snapshot so a briefly lagging follower catches up from the
    // log rather than by a snapshot transfer.
    group.raft.max_in_snapshot_log_to_keep = cluster.snapshot_interval_entries.min(1000);
    group.max_voters = cluster.max_voters;
    group.transport.layer = Layer(tls.map(|tls| Arc::new(RaftTls(tls)) as Arc<dyn StreamLayer>));
    let raft = MetadataRaft::start(group, listener)
        .await
        .context("starting the metadata Raft group")?;
    tracing::info!(node = me, raft = %addr, "raft member started");
    Ok((raft, addr))
}

/// Make this node part of a cluster, once: a node that already belongs to one (it has Raft
/// state) just rejoins it. A fresh node joins a running cluster if told to, else forms the
/// cluster of `controller.quorum.voters`; of those the lowest id initializes it, the others
/// wait for it. A node without either forms a cluster of its own.
pub async fn form(raft: &MetadataRaft, config: &BrokerConfig, addr: &str) -> anyhow::Result<()> {
    let cluster = &config.cluster;
    let me = own_id(config)?;
    if raft.is_initialized().await? {
        tracing::info!(node = me, "rejoining the metadata group");
        return Ok(());
    }
    if !cluster.join.is_empty() {
        tracing::info!(node = me, seeds = ?cluster.join, "asking the running cluster to add this node");
        let voter = raft
            .join(&cluster.join, addr, JOIN_TIMEOUT)
            .await
            .context("joining the cluster")?;
        tracing::info!(
            node = me,
            role = if voter { "voter" } else { "learner" },
            "joined the metadata group"
        );
        return Ok(());
    }
    let members: BTreeMap<u64, Node> = if cluster.voters.is_empty() {
        BTreeMap::from([(me, Node::new(addr))])
    } else {
        cluster
            .voters
            .iter()
            .map(|(id, addr)| (*id, Node::new(addr.clone())))
            .collect()
    };
    if !members.contains_key(&me) {
        bail!(
            "node.id {me} is not in controller.quorum.voters; a node outside the initial voters \
             joins with controller.quorum.bootstrap.servers (--join)"
        );
    }
    match members.keys().next() {
        Some(&first) if first == me => {
            tracing::info!(node = me, voters = ?members.keys().collect::<Vec<_>>(), "forming the cluster");
            raft.initialize(members).await?;
        }
        first => {
            tracing::info!(node = me, initializer = ?first, "waiting to be contacted by the cluster")
        }
    }
    Ok(())
}

pub(crate) fn own_id(config: &BrokerConfig) -> anyhow::Result<u64> {
    u64::try_from(config.node_id).with_context(|| {
        format!(
            "node.id must not be negative in a cluster, got {}",
            config.node_id
        )
    })
}

/// A bound address as peers can reach it: a wildcard bind is reached at the loopback.
fn reachable(local: SocketAddr) -> String {
    if local.ip().is_unspecified() {
        format!("127.0.0.1:{}", local.port())
    } else {
        local.to_string()
    }
}
