//! Reads the OAUTHBEARER key set again every `sasl.oauthbearer.jwks.endpoint.refresh.ms`
//! (every [`RETRY`] while none was read yet), so an identity provider's rotated keys are used
//! without a restart. A fetch that fails, or a key set without a usable key, is logged and the
//! previous keys are kept.

use std::sync::Arc;
use std::time::Duration;

use crate::broker::Broker;
use crate::security::oauthbearer::JwtValidator;

/// How soon a node that has no key set yet tries again.
const RETRY: Duration = Duration::from_secs(5);

pub(crate) async fn run(broker: Arc<Broker>, jwt: Arc<JwtValidator>) {
    let mut shutdown = broker.shutdown.clone();
    let period = Duration::from_millis(jwt.settings().refresh_ms);
    loop {
        let wait = if jwt.has_keys() {
            period
        } else {
            RETRY.min(period)
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => match jwt.refresh().await {
                Ok(true) => tracing::info!(jwks = %jwt.settings().jwks, "the JWKS changed; tokens are checked against the new keys"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %format!("{e:#}"), "reading the JWKS failed; keeping the previous keys"),
            },
            () = shutdown.recv() => return,
        }
    }
}
