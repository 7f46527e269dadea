//! SaslAuthenticate v0-2: one message of the chosen SASL mechanism (or, after SaslHandshake
//! v0, a bare frame holding one). Answered by the connection
//! itself (the `@connection` APIs of the table); a refusal closes the connection after the answer,
//! as Kafka does. With `connections.max.reauth.ms` set, the answer that completes an exchange
//! carries the session lifetime (KIP-368).

use bytes::Bytes;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::security::sasl::{ConnectionAuth, Refusal, Verifier};

/// The answer, and whether the connection closes after it.
pub(crate) fn answer(
    auth: &mut ConnectionAuth,
    broker: &Broker,
    request: SaslAuthenticateRequest,
) -> (SaslAuthenticateResponse, bool) {
    match step(auth, broker, &request.auth_bytes) {
        Ok(bytes) => (
            SaslAuthenticateResponse::default()
                .with_auth_bytes(bytes)
                .with_session_lifetime_ms(auth.session_lifetime_ms(std::time::Instant::now())),
            false,
        ),
        Err(refusal) => {
            let response = SaslAuthenticateResponse::default()
                .with_error_code(refusal.code)
                .with_error_message(Some(StrBytes::from_string(refusal.message)))
                .with_auth_bytes(Bytes::new());
            (response, true)
        }
    }
}

/// One bare SASL message after a SaslHandshake v0: the bare answer, or `None` when the
/// exchange failed (v0 has no way to say why; the connection is closed).
pub(crate) fn raw(auth: &mut ConnectionAuth, broker: &Broker, message: &[u8]) -> Option<Bytes> {
    step(auth, broker, message).ok()
}

fn step(auth: &mut ConnectionAuth, broker: &Broker, message: &[u8]) -> Result<Bytes, Refusal> {
    let cluster_id = broker.metadata.cluster_id();
    let credential = |user: &str, mechanism: u8| broker.metadata.scram_credential(user, mechanism);
    let verifier = Verifier {
        secret: &broker.cluster_secret,
        cluster_id: &cluster_id,
        credential: &credential,
        jwt: broker.jwt.as_deref(),
        session_ms: broker.config.reauth_ms,
    };
    let result = auth.authenticate(&verifier, message);
    if let Err(refusal) = &result {
        tracing::warn!(reason = %refusal.message, "SASL authentication failed");
    }
    result
}
