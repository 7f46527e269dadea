//! This node's place in the cluster: start its member of the metadata Raft group, form the
//! cluster or join a running one, register as a broker, and keep heartbeating.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use brook_raft::{GroupConfig, MetadataCommand, MetadataRaft, Node};
use tokio::net::TcpListener;
use tokio::sync::watch;
use uuid::Uuid;

use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::metadata::MetadataImage;

/// How long a joining node keeps asking the cluster to add it.
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between attempts to register while no quorum is reachable.
const RETRY: Duration = Duration::from_millis(250);

/// Bind the Raft port and start this node's member of the group (not yet part of a cluster).
/// Returns it with the Raft address peers reach it at.
pub async fn start_raft(config: &BrokerConfig) -> anyhow::Result<(MetadataRaft, String)> {
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
    let mut group = GroupConfig::new(me, config.log_dirs.join("raft"));
    group.raft.heartbeat_interval = cluster.raft_heartbeat_ms;
    group.raft.election_timeout_min = cluster.election_timeout_ms;
    group.raft.election_timeout_max = cluster.election_timeout_ms * 2;
    group.raft.snapshot_policy =
        openraft::SnapshotPolicy::LogsSinceLast(cluster.snapshot_interval_entries);
    // Keep some entries behind a snapshot so a briefly lagging follower catches up from the
    // log rather than by a snapshot transfer.
    group.raft.max_in_snapshot_log_to_keep = cluster.snapshot_interval_entries.min(1000);
    group.max_voters = cluster.max_voters;
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

/// Name the cluster (if no node did yet) and register this broker, retrying until a quorum
/// answers. The broker epoch is the start time, so a restarted broker replaces its old entry.
pub async fn register(broker: &Broker, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let me = own_id(&broker.config)?;
    let (host, port) = &broker.advertised;
    let port = u16::try_from(*port).context("advertised port")?;
    let epoch = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let init = MetadataCommand::InitCluster {
        // Kafka's cluster ids are 16 random bytes in URL-safe base64; any unique text works
        // for clients, and a UUID's simple form is unambiguous.
        cluster_id: Uuid::new_v4().simple().to_string(),
        session_timeout_ms: broker.config.cluster.session_timeout_ms,
    };
    let register = MetadataCommand::RegisterBroker {
        id: me,
        host: host.clone(),
        port,
        rack: broker.config.cluster.rack.clone(),
        epoch,
        at_ms: now_ms(),
    };
    // Only the first InitCluster applies, so every node sending one at start is harmless.
    for cmd in [init, register] {
        loop {
            match broker.metadata.write(cmd.clone()).await {
                Ok(_) => {
                    if let MetadataCommand::RegisterBroker { at_ms, .. } = &cmd {
                        broker.renew_lease(*at_ms);
                    }
                    break;
                }
                Err(brook_raft::Error::Rejected(r)) => bail!("registration refused: {r}"),
                Err(e) => tracing::info!(error = %e, "no metadata quorum yet; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RETRY) => {}
                _ = shutdown.changed() => bail!("stopped before joining the cluster"),
            }
        }
    }
    tracing::info!(node = me, epoch, "registered as a broker");
    Ok(())
}

/// Heartbeat through Raft every `broker.heartbeat.interval.ms` until shutdown. A broker whose
/// heartbeats stop is marked down by every node once `broker.session.timeout.ms` passed.
pub async fn heartbeat_loop(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let Ok(id) = own_id(&broker.config) else {
        return;
    };
    let period = Duration::from_millis(broker.config.cluster.heartbeat_interval_ms);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        let at_ms = now_ms();
        let cmd = MetadataCommand::BrokerHeartbeat { id, at_ms };
        match broker.metadata.write(cmd).await {
            Ok(_) => broker.renew_lease(at_ms),
            Err(e) => tracing::warn!(error = %e, "heartbeat not committed"),
        }
    }
}

/// On the Raft leader: once a new term's first entry is applied, renew every live broker's
/// session from this node's clock (see `MetadataCommand::RenewSessions`).
pub async fn renew_sessions_loop(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut applied = broker.metadata.raft().reader().subscribe();
    let reader = broker.metadata.raft().reader();
    loop {
        let pending = reader.read_applied(|_, state| state.sessions_need_renewal());
        if pending && broker.metadata.controller_id() == broker.node_id() {
            let cmd = MetadataCommand::RenewSessions { at_ms: now_ms() };
            if let Err(e) = broker.metadata.write(cmd).await {
                tracing::warn!(error = %e, "renewing broker sessions failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            continue;
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Start and stop partition actors whenever the metadata changes.
pub async fn follow_metadata(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut applied = broker.metadata.raft().reader().subscribe();
    let mut reconciled: Option<Arc<MetadataImage>> = None;
    loop {
        // Heartbeats change the image several times a second; only topic changes matter here.
        let image = broker.image();
        if !reconciled.as_ref().is_some_and(|r| r.same_topics(&image)) {
            broker.reconcile_or_log().await;
            reconciled = Some(image);
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

fn own_id(config: &BrokerConfig) -> anyhow::Result<u64> {
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

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
