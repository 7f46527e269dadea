//! Watches what this node cannot serve without: its member of the metadata Raft group and its
//! store. If the Raft core stops (a storage error such as a full disk makes openraft's core
//! exit, and it does not come back), or the store can no longer flush (after one failed flush
//! sled refuses every later one, so no write could be acknowledged again), the node must not
//! linger half-alive, accepting connections it can no longer serve: it reports the failure, and
//! the process shuts down and exits with an error so a supervisor restarts it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::broker::Broker;

/// How often the store is asked for a flush when nothing else flushed it.
const STORE_CHECK: Duration = Duration::from_secs(5);

pub(crate) async fn run(broker: Arc<Broker>, fatal: mpsc::Sender<String>) {
    let mut shutdown = broker.shutdown.clone();
    let mut metrics = broker.metadata.raft().raft().metrics();
    let mut checks = tokio::time::interval(STORE_CHECK);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let failure = match &metrics.borrow_and_update().running_state {
            Ok(()) => None,
            Err(e) => Some(format!("the metadata Raft member failed: {e}")),
        };
        if let Some(reason) = failure {
            let _ = fatal.send(reason).await;
            return;
        }
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() {
                if !shutdown.is_shutdown() {
                    let _ = fatal.send("the metadata Raft member stopped".to_string()).await;
                }
                return;
            },
            _ = checks.tick() => {
                // An empty flush is cheap; a failed one is final (see the module comment).
                if let Err(e) = broker.store.flush().await {
                    let _ = fatal.send(format!("the store can no longer flush: {e}")).await;
                    return;
                }
            }
            () = shutdown.recv() => return,
        }
    }
}
