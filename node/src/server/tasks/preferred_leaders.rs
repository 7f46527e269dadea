//! Preferred-leader balancing (Kafka's `auto.leader.rebalance.enable`): the Raft leader
//! periodically moves each partition's leadership back to its first replica once that replica
//! is live and in sync again, so a node that returned after a failure leads its share again.

use std::sync::Arc;
use std::time::Duration;

use brook_raft::MetadataCommand;

use super::as_controller;
use crate::broker::Broker;

pub(crate) async fn run(broker: Arc<Broker>) {
    let interval = broker.config.leader_imbalance_check_interval_ms;
    if !broker.config.auto_leader_rebalance || interval == 0 {
        return;
    }
    let period = Duration::from_millis(interval);
    as_controller(broker, period, |broker| async move {
        elect_preferred(&broker).await;
    })
    .await;
}

/// One round: every partition whose preferred replica is live and in sync but does not lead.
async fn elect_preferred(broker: &Broker) {
    let image = broker.image();
    let partitions: Vec<(String, u32)> = image
        .topics()
        .flat_map(|t| {
            t.owners.iter().enumerate().filter_map(|(p, meta)| {
                let preferred = *meta.replicas.first()?;
                let eligible = meta.node != preferred
                    && image.is_live(preferred)
                    && meta.isr.contains(&preferred);
                eligible.then(|| (t.name.clone(), u32::try_from(p).unwrap_or(u32::MAX)))
            })
        })
        .collect();
    if partitions.is_empty() {
        return;
    }
    let count = partitions.len();
    match broker
        .metadata
        .write(MetadataCommand::ElectPreferredLeaders { partitions })
        .await
    {
        Ok(_) => tracing::info!(count, "moved leadership back to preferred replicas"),
        Err(e) => tracing::warn!(error = %e, "preferred leader election failed"),
    }
}
