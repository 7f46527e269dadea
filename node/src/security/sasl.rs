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
    /// The mechanism of the first handshake; a re-authentication (KIP-368) must use it.
    mechanism: Option<String>,
    /// Whether the connection has authenticated once (it stays so while it re-authenticates).
    authenticated: bool,
    /// When the session ends unless the client re-authenticates (`connections.max.reauth.ms`).
    expires: Option<std::time::Instant>,
}

/// What authenticating needs from the node.
pub struct Verifier<'a> {
    pub secret: &'a ClusterSecret,
    pub cluster_id: &'a str,
    /// A user's SCRAM credential for a mechanism (by Kafka's number).
    pub credential: &'a dyn Fn(&str, u8) -> Option<ScramCredential>,
    /// `connections.max.reauth.ms`: how long a session lasts (0: for the connection's life).
    pub session_ms: u64,
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
        self.authenticated
    }

    /// Whether the session outlived `connections.max.reauth.ms` without a re-authentication:
    /// the connection then answers nothing but SASL and is closed (KIP-368).
    pub fn is_expired(&self, now: std::time::Instant) -> bool {
        self.expires.is_some_and(|at| now >= at)
    }

    /// The session lifetime to announce in a SaslAuthenticate answer: set once an exchange
    /// completed and sessions are bounded, else 0 (unbounded).
    pub fn session_lifetime_ms(&self, now: std::time::Instant) -> i64 {
        match (&self.stage, self.expires) {
            (Stage::Done, Some(at)) => {
                i64::try_from(at.saturating_duration_since(now).as_millis()).unwrap_or(i64::MAX)
            }
            _ => 0,
        }
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
        let again = matches!(self.stage, Stage::Done);
        if !matches!(self.stage, Stage::Open) && !again {
            return Err(Refusal {
                code: ILLEGAL_SASL_STATE,
                message: "a SASL exchange is already in progress on this connection".into(),
            });
        }
        // KIP-368: an authenticated connection may authenticate again, with SaslHandshake v1+
        // and the mechanism it used first.
        if again && (version == 0 || self.mechanism.as_deref() != Some(mechanism)) {
            return Err(Refusal {
                code: ILLEGAL_SASL_STATE,
                message: format!(
                    "re-authentication must use SaslHandshake v1 and {}",
                    self.mechanism.as_deref().unwrap_or("the first mechanism")
                ),
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
        self.mechanism = Some(mechanism.to_string());
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
                // brook's own nodes do not re-authenticate: their sessions are not bounded.
                self.done(Principal::Node(id), Bytes::new(), 0)
            }
            Stage::ScramChosen(m) => {
                let lookup = |user: &str| (v.credential)(user, m.id);
                let (answer, exchange) = scram::server_first(m, bytes, lookup).map_err(failed)?;
                self.stage = Stage::ScramChallenged(Box::new(exchange));
                Ok(Bytes::from(answer))
            }
            Stage::ScramChallenged(exchange) => {
                let (answer, user) = scram::server_final(&exchange, bytes).map_err(failed)?;
                self.done(Principal::User(user), Bytes::from(answer), v.session_ms)
            }
            Stage::PlainChosen => {
                let user = plain(v, bytes)?;
                self.done(Principal::User(user), Bytes::new(), v.session_ms)
            }
            Stage::OAuthChosen => {
                let jwt = v
                    .jwt
                    .ok_or_else(|| failed("OAUTHBEARER is not configured"))?;
                let token = super::oauthbearer::JwtValidator::token(bytes).map_err(failed)?;
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let (user, exp) = jwt
                    .validate(token, now)
                    .map_err(|why| failed(format!("invalid OAUTHBEARER token: {why}")))?;
                // With re-authentication on, a session ends when its token does (KIP-368);
                // at least 1 ms, since 0 would mean no end.
                let left_ms = exp.saturating_sub(now).saturating_mul(1000).max(1);
                let session_ms = match v.session_ms {
                    0 => 0,
                    max => max.min(left_ms),
                };
                self.done(Principal::User(user), Bytes::new(), session_ms)
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

    /// Completes an exchange: the connection is now `principal` until `session_ms` passes.
    fn done(
        &mut self,
        principal: Principal,
        answer: Bytes,
        session_ms: u64,
    ) -> Result<Bytes, Refusal> {
        if self.authenticated && principal != self.principal {
            return Err(failed(format!(
                "re-authentication may not change the principal ({} to {principal})",
                self.principal
            )));
        }
        self.principal = principal;
        self.stage = Stage::Done;
        self.raw = false;
        self.authenticated = true;
        self.expires = (session_ms > 0)
            .then(|| std::time::Instant::now() + std::time::Duration::from_millis(session_ms));
        Ok(answer)
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
