//! Every background loop of a node, started together and drained together on shutdown.
//!
//! - [`membership`]: registration, heartbeats, session renewal after a Raft election.
//! - [`partitions`]: partition actors and replica fetchers follow the metadata.
//! - [`coordination`]: groups move when the live brokers change.
//! - [`isr`]: the leaders' in-sync set changes, written through Raft.
//! - [`preferred_leaders`], [`offset_expiry`]: periodic work of the Raft leader (Kafka's
//!   controller), run by [`as_controller`].
//! - [`retention`]: old segments are dropped.
//! - [`tls_reload`]: changed TLS key material is loaded without a restart.
//! - [`jwks_refresh`]: OAUTHBEARER's key set is read again, so rotated keys are used.
//! - [`health`]: a stopped Raft member or a store that can no longer flush stops the node.
//!
//! Each loop holds the node's [`crate::shutdown::Shutdown`] and returns when it fires, so
//! shutdown waits for them instead of aborting them mid-write.

mod coordination;
mod health;
mod isr;
mod jwks_refresh;
pub(crate) mod membership;
mod offset_expiry;
mod partitions;
mod preferred_leaders;
mod retention;
mod tls_reload;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use brook_actors::IsrRequest;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::broker::Broker;

/// The running background loops.
#[derive(Default)]
pub(crate) struct Tasks {
    running: Vec<(&'static str, JoinHandle<()>)>,
}

impl Tasks {
    /// Starts every loop that runs before this node is registered as a broker.
    pub fn start(
        broker: &Arc<Broker>,
        isr_requests: mpsc::UnboundedReceiver<IsrRequest>,
        fatal: mpsc::Sender<String>,
    ) -> Self {
        let mut tasks = Tasks::default();
        tasks.spawn("health", health::run(broker.clone(), fatal));
        tasks.spawn("retention", retention::run(broker.clone()));
        tasks.spawn("partitions", partitions::run(broker.clone()));
        tasks.spawn("renew sessions", membership::renew_sessions(broker.clone()));
        tasks.spawn("coordination", coordination::run(broker.clone()));
        tasks.spawn("offset expiry", offset_expiry::run(broker.clone()));
        tasks.spawn("in-sync sets", isr::run(broker.clone(), isr_requests));
        tasks.spawn("preferred leaders", preferred_leaders::run(broker.clone()));
        let listeners = broker.listeners.iter().filter_map(|l| l.tls.clone());
        for tls in listeners.chain(broker.raft_tls.clone()) {
            tasks.spawn("tls reload", tls_reload::run(broker.clone(), tls));
        }
        if let Some(jwt) = &broker.jwt {
            tasks.spawn(
                "jwks refresh",
                jwks_refresh::run(broker.clone(), jwt.clone()),
            );
        }
        tasks
    }

    /// Starts the heartbeat, once this node is registered.
    pub fn start_heartbeat(&mut self, broker: &Arc<Broker>) {
        self.spawn("heartbeat", membership::heartbeat(broker.clone()));
    }

    fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        self.running.push((name, tokio::spawn(task)));
    }

    /// Waits for every loop to see the shutdown signal (which the caller sent) and return;
    /// a loop still busy after `grace` (a Raft write without a quorum) is aborted.
    pub async fn drain(self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut task) in self.running {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                tracing::warn!(
                    task = name,
                    "background task still busy at shutdown; aborting it"
                );
                task.abort();
            }
        }
    }
}

/// Runs `task` every `period` (the first time one period from now) while this node is the Raft
/// leader, which answers as Kafka's controller, until the node shuts down.
pub(crate) async fn as_controller<F, Fut>(broker: Arc<Broker>, period: Duration, mut task: F)
where
    F: FnMut(Arc<Broker>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut shutdown = broker.shutdown.clone();
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = shutdown.recv() => return,
        }
        if broker.metadata.controller_id() == broker.node_id() {
            task(broker.clone()).await;
        }
    }
}
