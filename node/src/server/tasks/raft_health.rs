//! Watches this node's member of the metadata Raft group. If it stops (a storage error such as
//! a full disk makes openraft's core exit, and it does not come back), the node must not linger
//! half-alive, accepting connections it can no longer serve: it reports the failure, and the
//! process shuts down and exits with an error so a supervisor restarts it.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::broker::Broker;

pub(crate) async fn run(broker: Arc<Broker>, fatal: mpsc::Sender<String>) {
    let mut shutdown = broker.shutdown.clone();
    let mut metrics = broker.metadata.raft().raft().metrics();
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
            () = shutdown.recv() => return,
        }
    }
}
