//! Keeps this node's partition actors and replica fetchers in step with the metadata.

use std::sync::Arc;

use crate::broker::Broker;
use crate::metadata::MetadataImage;
use crate::partitions::reconcile_or_log;

/// Start and stop partition actors whenever the metadata changes.
pub(crate) async fn run(broker: Arc<Broker>) {
    let mut shutdown = broker.shutdown.clone();
    let mut applied = broker.metadata.raft().reader().subscribe();
    let mut reconciled: Option<Arc<MetadataImage>> = None;
    loop {
        // Heartbeats change the image several times a second; only topic changes matter here.
        let image = broker.image();
        if !reconciled.as_ref().is_some_and(|r| r.same_topics(&image)) {
            reconcile_or_log(&broker).await;
            reconciled = Some(image);
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            () = shutdown.recv() => return,
        }
    }
}
