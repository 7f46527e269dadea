//! A connection's SASL state (KIP-43, KIP-152): SaslHandshake names a mechanism, then
//! SaslAuthenticate requests carry its messages until the connection is authenticated or
//! refused. A refused connection is closed once told why.

use brook_raft::ClusterSecret;
use bytes::Bytes;

use super::node_auth::{self, Exchange};
use super::Principal;

/// Kafka's error codes of the SASL APIs.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const ILLEGAL_SASL_STATE: i16 = 34;
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// Where a connection stands.
#[derive(Debug, Default)]
enum Stage {
    /// No handshake yet.
    #[default]
    Open,
    /// `BROOK-NODE` chosen; its first message comes next.
    NodeChosen,
    /// `BROOK-NODE`'s challenge sent; the proof comes next.
    NodeChallenged(Exchange),
    /// Authenticated: the principal is final for the connection's life.
    Done,
}

/// What a connection knows about its peer.
#[derive(Debug, Default)]
pub struct ConnectionAuth {
    pub principal: Principal,
    stage: Stage,
}

/// A failed step: the Kafka error code and the message the client is sent.
#[derive(Debug)]
pub struct Refusal {
    pub code: i16,
    pub message: String,
}

impl ConnectionAuth {
    /// SaslHandshake: choose `mechanism`. The mechanisms a client may choose (none on a
    /// PLAINTEXT listener) are listed in the refusal.
    pub fn handshake(&mut self, mechanism: &str) -> Result<(), Refusal> {
        if !matches!(self.stage, Stage::Open) {
            return Err(Refusal {
                code: ILLEGAL_SASL_STATE,
                message: "a SASL handshake was already made on this connection".into(),
            });
        }
        if mechanism != node_auth::MECHANISM {
            return Err(Refusal {
                code: UNSUPPORTED_SASL_MECHANISM,
                message: format!("SASL mechanism {mechanism} is not enabled on this listener"),
            });
        }
        self.stage = Stage::NodeChosen;
        Ok(())
    }

    /// SaslAuthenticate: the next message of the chosen mechanism; returns the answer to send.
    pub fn authenticate(
        &mut self,
        secret: &ClusterSecret,
        cluster_id: &str,
        bytes: &[u8],
    ) -> Result<Bytes, Refusal> {
        let failed = |message: String| Refusal {
            code: SASL_AUTHENTICATION_FAILED,
            message,
        };
        match std::mem::take(&mut self.stage) {
            Stage::NodeChosen => {
                let (answer, exchange) =
                    node_auth::server_first(secret, cluster_id, bytes).map_err(failed)?;
                self.stage = Stage::NodeChallenged(exchange);
                Ok(answer)
            }
            Stage::NodeChallenged(exchange) => {
                let id = node_auth::server_final(secret, &exchange, bytes).map_err(failed)?;
                self.principal = Principal::Node(id);
                self.stage = Stage::Done;
                Ok(Bytes::new())
            }
            stage @ (Stage::Open | Stage::Done) => {
                self.stage = stage;
                Err(Refusal {
                    code: ILLEGAL_SASL_STATE,
                    message: "SaslAuthenticate without a SASL handshake in progress".into(),
                })
            }
        }
    }
}
