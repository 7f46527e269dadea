//! Unloads the groups whose coordinator moved to another node whenever the set of live brokers
//! changes: their members get NOT_COORDINATOR and find the new coordinator.

use std::sync::Arc;

use crate::broker::Broker;

pub(crate) async fn run(broker: Arc<Broker>) {
    let mut shutdown = broker.shutdown.clone();
    let mut applied = broker.metadata.raft().reader().subscribe();
    let mut live: Vec<i32> = Vec::new();
    loop {
        let image = broker.image();
        let now: Vec<i32> = image.brokers().filter(|b| b.live).map(|b| b.id).collect();
        if now != live {
            let me = broker.node_id();
            broker
                .groups
                .registry
                .unload_unless(|g| image.group_coordinator(g) == Some(me));
            live = now;
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            () = shutdown.recv() => return,
        }
    }
}
