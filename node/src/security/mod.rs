//! Who is on the other end of a Kafka connection, and how a connection proves it.
//!
//! - [`Principal`]: the identity requests are checked against.
//! - [`sasl`]: a connection's SASL state, driven by SaslHandshake and SaslAuthenticate.
//! - [`node_auth`]: `BROOK-NODE`, the mechanism brook's own nodes authenticate with (over the
//!   cluster secret), so that only broker N may fetch as replica N.
//! - [`oauthbearer`]: signed JWTs checked against a JWKS.
//! - [`scram`]: SCRAM-SHA-256/512 (and the key derivation PLAIN is checked with).
//! - [`tls`]: TLS listeners, and the principal of a client certificate.

pub mod node_auth;
pub mod oauthbearer;
pub mod sasl;
pub mod scram;
pub mod tls;

/// The identity a connection authenticated as.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Principal {
    /// No authentication (a PLAINTEXT listener): Kafka's `User:ANONYMOUS`.
    #[default]
    Anonymous,
    /// Broker `id` of this cluster, proven with the cluster secret.
    Node(i32),
    /// A SASL user (SCRAM or PLAIN): Kafka's `User:<name>`.
    User(String),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Anonymous => f.write_str("User:ANONYMOUS"),
            Principal::Node(id) => write!(f, "Node:{id}"),
            Principal::User(name) => write!(f, "User:{name}"),
        }
    }
}
