//! SaslHandshake v1: choose the SASL mechanism of this connection. Answered by the connection
//! itself (see `handlers::CONNECTION_APIS`), since it changes the connection's state.

use kafka_protocol::messages::{SaslHandshakeRequest, SaslHandshakeResponse};

use crate::security::sasl::ConnectionAuth;

pub(crate) fn answer(
    auth: &mut ConnectionAuth,
    request: SaslHandshakeRequest,
) -> SaslHandshakeResponse {
    match auth.handshake(&request.mechanism) {
        Ok(()) => SaslHandshakeResponse::default(),
        Err(refusal) => {
            tracing::info!(mechanism = %request.mechanism.as_str(), reason = %refusal.message, "SASL handshake refused");
            // The mechanisms clients may use; brook's node mechanism is not one of them.
            SaslHandshakeResponse::default().with_error_code(refusal.code)
        }
    }
}
