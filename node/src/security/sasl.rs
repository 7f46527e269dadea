//! A connection's SASL state (KIP-43, KIP-152): SaslHandshake names a mechanism, then
//! SaslAuthenticate requests carry its messages until the connection is authenticated or
//! refused. A refused connection is closed once told why.
//!
//! Mechanisms: SCRAM-SHA-256 and SCRAM-SHA-512 ([`super::scram`]) and PLAIN, checked against
//! the SCRAM credentials in the Raft state, when `sasl.enabled.mechanisms` lists them; and
//! `BROOK-NODE` ([`super::node_auth`]) for brook's own nodes, on every listener.

use brook_raft::{ClusterSecret, ScramCredential};
use bytes::Bytes;

use super::{node_auth, scram, Principal};

/// Kafka's error codes of the SASL APIs.
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const ILLEGAL_SASL_STATE: i16 = 34;
pub const SASL_AUTHENTICATION_FAILED: i16 = 58;
/// The largest SASL message accepted; every mechanism's messages are far smaller.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// Where a connection stands.
#[derive(Debug, Default)]
enum Stage {
    /// No handshake yet.
    #[default]
    Open,
    NodeChosen,
    NodeChallenged(node_auth::Exchange),
    ScramChosen(scram::Mechanism),
    ScramChallenged(Box<scram::Exchange>),
    PlainChosen,
    OAuthChosen,
    /// Authenticated: the principal is final for the connection's life.
    Done,
}

/// What a connection knows about its peer.
#[derive(Debug, Default)]
pub struct ConnectionAuth {
    pub principal: Principal,
    stage: Stage,
    /// After a SaslHandshake v0 the mechanism's messages come as bare length-prefixed
    /// frames, not in SaslAuthenticate requests, until the exchange ends.
    raw: bool,
}

/// What authenticating needs from the node.
pub struct Verifier<'a> {
    pub secret: &'a ClusterSecret,
    pub cluster_id: &'a str,
    /// A user's SCRAM credential for a mechanism (by Kafka's number).
    pub credential: &'a dyn Fn(&str, u8) -> Option<ScramCredential>,
    /// Checks OAUTHBEARER tokens (when the mechanism is enabled).
    pub jwt: Option<&'a super::oauthbearer::JwtValidator>,
}

/// A failed step: the Kafka error code and the message the client is sent.
#[derive(Debug)]
pub struct Refusal {
    pub code: i16,
    pub message: String,
}

fn failed(message: impl Into<String>) -> Refusal {
    Refusal {
        code: SASL_AUTHENTICATION_FAILED,
        message: message.into(),
    }
}

impl ConnectionAuth {
    /// A connection that has not used SASL, known so far as `principal` (from its TLS
    /// certificate, or anonymous).
    pub fn new(principal: Principal) -> Self {
        ConnectionAuth {
            principal,
            ..Self::default()
        }
    }

    /// Whether the connection has authenticated (with any mechanism).
    pub fn is_authenticated(&self) -> bool {
        matches!(self.stage, Stage::Done)
    }

    /// Whether the next frame is a bare SASL message (after a SaslHandshake v0).
    pub fn takes_raw_tokens(&self) -> bool {
        self.raw
    }

    /// SaslHandshake: choose `mechanism`; at `version` 0 the exchange continues in bare frames.
    pub fn handshake(
        &mut self,
        mechanism: &str,
        enabled: &[String],
        version: i16,
    ) -> Result<(), Refusal> {
        if !matches!(self.stage, Stage::Open) {
            return Err(Refusal {
                code: ILLEGAL_SASL_STATE,
                message: "a SASL handshake was already made on this connection".into(),
            });
        }
        let unsupported = || Refusal {
            code: UNSUPPORTED_SASL_MECHANISM,
            message: format!("SASL mechanism {mechanism} is not enabled on this listener"),
        };
        self.stage = if mechanism == node_auth::MECHANISM {
            Stage::NodeChosen
        } else if !enabled.iter().any(|m| m == mechanism) {
            return Err(unsupported());
        } else if mechanism == "PLAIN" {
            Stage::PlainChosen
        } else if mechanism == "OAUTHBEARER" {
            Stage::OAuthChosen
        } else {
            Stage::ScramChosen(scram::by_name(mechanism).ok_or_else(unsupported)?)
        };
        self.raw = version == 0;
        Ok(())
    }

    /// SaslAuthenticate: the next message of the chosen mechanism; returns the answer to send.
    pub fn authenticate(&mut self, v: &Verifier<'_>, bytes: &[u8]) -> Result<Bytes, Refusal> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            self.stage = Stage::Open;
            return Err(failed(format!(
                "a {}-byte SASL message exceeds {MAX_MESSAGE_BYTES} bytes",
                bytes.len()
            )));
        }
        match std::mem::take(&mut self.stage) {
            Stage::NodeChosen => {
                let (answer, exchange) =
                    node_auth::server_first(v.secret, v.cluster_id, bytes).map_err(failed)?;
                self.stage = Stage::NodeChallenged(exchange);
                Ok(answer)
            }
            Stage::NodeChallenged(exchange) => {
                let id = node_auth::server_final(v.secret, &exchange, bytes).map_err(failed)?;
                Ok(self.done(Principal::Node(id), Bytes::new()))
            }
            Stage::ScramChosen(m) => {
                let lookup = |user: &str| (v.credential)(user, m.id);
                let (answer, exchange) = scram::server_first(m, bytes, lookup).map_err(failed)?;
                self.stage = Stage::ScramChallenged(Box::new(exchange));
                Ok(Bytes::from(answer))
            }
            Stage::ScramChallenged(exchange) => {
                let (answer, user) = scram::server_final(&exchange, bytes).map_err(failed)?;
                Ok(self.done(Principal::User(user), Bytes::from(answer)))
            }
            Stage::PlainChosen => {
                let user = plain(v, bytes)?;
                Ok(self.done(Principal::User(user), Bytes::new()))
            }
            Stage::OAuthChosen => {
                let jwt = v
                    .jwt
                    .ok_or_else(|| failed("OAUTHBEARER is not configured"))?;
                let token = super::oauthbearer::JwtValidator::token(bytes).map_err(failed)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let user = jwt
                    .validate(token, now)
                    .map_err(|why| failed(format!("invalid OAUTHBEARER token: {why}")))?;
                Ok(self.done(Principal::User(user), Bytes::new()))
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

    fn done(&mut self, principal: Principal, answer: Bytes) -> Bytes {
        self.principal = principal;
        self.stage = Stage::Done;
        self.raw = false;
        answer
    }
}

/// PLAIN (RFC 4616): `authzid NUL user NUL password`, checked against the user's SCRAM
/// credential (SHA-512 if it has one, else SHA-256).
fn plain(v: &Verifier<'_>, bytes: &[u8]) -> Result<String, Refusal> {
    let mut parts = bytes.split(|&b| b == 0);
    let (Some(authzid), Some(user), Some(password), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(failed("a PLAIN message is authzid NUL user NUL password"));
    };
    let user = std::str::from_utf8(user).map_err(|_| failed("the user name is not UTF-8"))?;
    if !authzid.is_empty() && authzid != user.as_bytes() {
        return Err(failed(
            "an authorization id other than the user is not allowed",
        ));
    }
    let wrong = || failed("Authentication failed: Invalid username or password");
    let (mechanism, credential) = [scram::SHA_512, scram::SHA_256]
        .into_iter()
        .find_map(|m| (v.credential)(user, m.id).map(|c| (m, c)))
        .ok_or_else(wrong)?;
    if mechanism.password_matches(password, &credential) {
        Ok(user.to_owned())
    } else {
        Err(wrong())
    }
}
