//! This broker's membership: registering once at start (which names the cluster if no node did
//! yet), heartbeating through Raft, and, on the Raft leader, renewing every broker's session at
//! the start of a new term.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use brook_raft::{codes, MetadataCommand};
use uuid::Uuid;

use crate::broker::Broker;
use crate::clock::now_ms;
use crate::metadata::formation::own_id;
use crate::shutdown::Shutdown;

/// Pause between attempts to register while no quorum is reachable.
const RETRY: Duration = Duration::from_millis(250);

/// Name the cluster (if no node did yet) and register this broker, retrying until a quorum
/// answers. The broker epoch is the start time, or one past the epoch the log already holds
/// for this id if that is later (a node restarted with its clock stepped back), so a
/// restarted broker always replaces its old entry.
pub(crate) async fn register(broker: &Broker) -> anyhow::Result<()> {
    let mut shutdown = broker.shutdown.clone();
    let me = own_id(&broker.config)?;
    let (host, port) = broker
        .inter_broker()
        .map(|l| l.advertised.clone())
        .context("no inter-broker listener")?;
    let port = u16::try_from(port).context("advertised port")?;
    let started = i64::try_from(now_ms()).unwrap_or(i64::MAX);
    let reader = broker.metadata.raft().reader();
    let init = MetadataCommand::InitCluster {
        // Kafka's cluster ids are 16 random bytes in URL-safe base64; any unique text works
        // for clients, and a UUID's simple form is unambiguous.
        cluster_id: Uuid::new_v4().simple().to_string(),
        session_timeout_ms: broker.config.cluster.session_timeout_ms,
    };
    // Only the first InitCluster applies, so every node sending one at start is harmless.
    write_until_committed(broker, &mut shutdown, || init.clone()).await?;
    let mut epoch = started;
    write_until_committed(broker, &mut shutdown, || {
        let known = reader.read(|s| s.broker(me).map(|b| b.epoch));
        epoch = epoch.max(known.map_or(started, |e| e.saturating_add(1)));
        MetadataCommand::RegisterBroker {
            id: me,
            host: host.clone(),
            port,
            endpoints: broker.listeners.iter().map(|l| l.endpoint()).collect(),
            rack: broker.config.cluster.rack.clone(),
            epoch,
            at_ms: 0,
        }
    })
    .await?;
    tracing::info!(node = me, epoch, "registered as a broker");
    Ok(())
}

/// Writes the command `next` builds until it commits, retrying while no quorum answers. A
/// STALE_BROKER_EPOCH is retried too: this node's image was behind the log when `next` read
/// it, and catches up meanwhile.
async fn write_until_committed(
    broker: &Broker,
    shutdown: &mut Shutdown,
    mut next: impl FnMut() -> MetadataCommand,
) -> anyhow::Result<()> {
    loop {
        let cmd = next();
        let sent = Instant::now();
        match broker.metadata.write(cmd.clone()).await {
            Ok(_) => {
                if matches!(cmd, MetadataCommand::RegisterBroker { .. }) {
                    broker.renew_lease(sent);
                }
                return Ok(());
            }
            Err(brook_raft::Error::Rejected(r)) if r.code != codes::STALE_BROKER_EPOCH => {
                bail!("registration refused: {r}")
            }
            Err(e) => tracing::info!(error = %e, "not registered yet; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RETRY) => {}
            () = shutdown.recv() => bail!("stopped before joining the cluster"),
        }
    }
}

/// Heartbeat through Raft every `broker.heartbeat.interval.ms` until shutdown. A broker whose
/// heartbeats stop is marked down by every node once `broker.session.timeout.ms` passed.
pub(crate) async fn heartbeat(broker: Arc<Broker>) {
    let mut shutdown = broker.shutdown.clone();
    let Ok(id) = own_id(&broker.config) else {
        return;
    };
    let period = Duration::from_millis(broker.config.cluster.heartbeat_interval_ms);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.recv() => return,
        }
        let sent = Instant::now();
        // Stamped with the leader's liveness clock as it is appended.
        let cmd = MetadataCommand::BrokerHeartbeat { id, at_ms: 0 };
        match broker.metadata.write(cmd).await {
            Ok(_) => broker.renew_lease(sent),
            Err(e) => tracing::warn!(error = %e, "heartbeat not committed"),
        }
    }
}

/// On the Raft leader: once a new term's first entry is applied, renew every live broker's
/// session from this node's clock (see `MetadataCommand::RenewSessions`).
pub(crate) async fn renew_sessions(broker: Arc<Broker>) {
    let mut shutdown = broker.shutdown.clone();
    let mut applied = broker.metadata.raft().reader().subscribe();
    let reader = broker.metadata.raft().reader();
    loop {
        let pending = reader.read_applied(|_, state| state.sessions_need_renewal());
        if pending && broker.metadata.controller_id() == broker.node_id() {
            // Stamped with the leader's liveness clock as it is appended.
            let cmd = MetadataCommand::RenewSessions { at_ms: 0 };
            if let Err(e) = broker.metadata.write(cmd).await {
                tracing::warn!(error = %e, "renewing broker sessions failed");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = shutdown.recv() => return,
                }
            }
            continue;
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = shutdown.recv() => return,
        }
    }
}
