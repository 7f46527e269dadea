//! Drops whole segments past `retention.ms` / `retention.bytes` every
//! `log.retention.check.interval.ms`.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;

pub(crate) async fn run(broker: Arc<Broker>) {
    let mut shutdown = broker.shutdown.clone();
    let period = Duration::from_millis(broker.config.retention_check_interval_ms);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => broker.partitions.apply_retention(),
            () = shutdown.recv() => return,
        }
    }
}
