//! Re-reads a TLS listener's key material every `brook.ssl.reload.interval.ms`; a changed
//! certificate, key or truststore takes effect for new connections without a restart.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::security::tls::Tls;

pub(crate) async fn run(broker: Arc<Broker>, tls: Arc<Tls>) {
    let mut shutdown = broker.shutdown.clone();
    let period = Duration::from_millis(tls.settings().reload_interval_ms);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let tls = tls.clone();
                match tokio::task::spawn_blocking(move || tls.reload_if_changed()).await {
                    Ok(Ok(true)) => tracing::info!("TLS key material changed on disk; new connections use it"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "TLS key material changed but cannot be used; keeping the previous"),
                    Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
                }
            }
            () = shutdown.recv() => return,
        }
    }
}
