//! SaslAuthenticate v0-2: one message of the chosen SASL mechanism. Answered by the connection
//! itself (see `handlers::CONNECTION_APIS`); a refusal closes the connection after the answer,
//! as Kafka does.

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::security::sasl::ConnectionAuth;

/// The answer, and whether the connection closes after it.
pub(crate) fn answer(
    auth: &mut ConnectionAuth,
    broker: &Broker,
    request: SaslAuthenticateRequest,
) -> (SaslAuthenticateResponse, bool) {
    let cluster_id = broker.metadata.cluster_id();
    match auth.authenticate(&broker.cluster_secret, &cluster_id, &request.auth_bytes) {
        Ok(bytes) => (
            SaslAuthenticateResponse::default().with_auth_bytes(bytes),
            false,
        ),
        Err(refusal) => {
            tracing::warn!(reason = %refusal.message, "SASL authentication failed");
            let response = SaslAuthenticateResponse::default()
                .with_error_code(refusal.code)
                .with_error_message(Some(StrBytes::from_string(refusal.message)))
                .with_auth_bytes(Bytes::new());
            (response, true)
        }
    }
}
