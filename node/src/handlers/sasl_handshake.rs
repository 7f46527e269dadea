//! SaslHandshake v0-1: choose the SASL mechanism of this connection (after v0 its messages
//! follow as bare frames, after v1 in SaslAuthenticate requests). Answered by the connection
//! itself (the `@connection` APIs of the table), since it changes the connection's state.

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_protocol::protocol::StrBytes;

use crate::security::sasl::ConnectionAuth;

/// `enabled` is the listener's `sasl.enabled.mechanisms` (empty on a PLAINTEXT listener).
pub(crate) fn answer(
    auth: &mut ConnectionAuth,
    enabled: &[String],
    version: i16,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    // Every answer lists the mechanisms clients may use; brook's node mechanism is not one.
    let mechanisms = enabled
        .iter()
        .map(|m| StrBytes::from_string(m.clone()))
        .collect();
    let response = SaslHandshakeResponse::default().with_mechanisms(mechanisms);
    match auth.handshake(&request.mechanism, enabled, version) {
        Ok(()) => response,
        Err(refusal) => {
            tracing::info!(mechanism = %request.mechanism.as_str(), reason = %refusal.message, "SASL handshake refused");
            response.with_error_code(refusal.code)
        }
    }
}
