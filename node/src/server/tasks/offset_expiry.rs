//! On the Raft leader, drops expired committed offsets every
//! `offsets.retention.check.interval.ms` (Kafka's `offsets.retention.minutes` rules are applied
//! by the state machine).

use std::sync::Arc;
use std::time::Duration;

use brook_raft::MetadataCommand;

use super::as_controller;
use crate::broker::Broker;
use crate::clock::now_ms;

pub(crate) async fn run(broker: Arc<Broker>) {
    let config = broker.groups.config;
    let period = Duration::from_millis(config.retention_check_interval_ms);
    as_controller(broker, period, |broker| async move {
        let cmd = MetadataCommand::ExpireOffsets {
            at_ms: now_ms(),
            retention_ms: config.offsets_retention_ms,
        };
        if let Err(e) = broker.metadata.write(cmd).await {
            tracing::warn!(error = %e, "expiring committed offsets failed");
        }
    })
    .await;
}
