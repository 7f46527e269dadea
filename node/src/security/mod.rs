//! Who is on the other end of a Kafka connection, and how a connection proves it.
//!
//! - [`Principal`]: the identity requests are checked against.
//! - [`authorizer`]: Kafka's ACL authorizer.
//! - [`sasl`]: a connection's SASL state, driven by SaslHandshake and SaslAuthenticate.
//! - [`node_auth`]: `BROOK-NODE`, the mechanism brook's own nodes authenticate with (over the
//!   cluster secret), so that only broker N may fetch as replica N.
//! - [`oauthbearer`]: signed JWTs checked against a JWKS ([`jwks`]: read from a file or
//!   fetched over HTTPS).
//! - [`scram`]: SCRAM-SHA-256/512 (and the key derivation PLAIN is checked with).
//! - [`tls`]: TLS listeners, and the principal of a client certificate.

pub(crate) mod authorizer;
pub mod jwks;
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

/// A GS2 header (RFC 5801), as SCRAM and OAUTHBEARER open their first message with: no
/// channel binding (`n`) or "supported but not used" (`y`), an optional authorization id. Returns
/// the authorization id and the rest of the message.
pub(crate) fn gs2_header(text: &str) -> Result<(&str, &str), &'static str> {
    text.strip_prefix("n,")
        .or_else(|| text.strip_prefix("y,"))
        .ok_or("channel binding is not supported")?
        .split_once(',')
        .ok_or("malformed gs2 header")
}

/// Reads a file of at most `max` bytes (key material, a JWKS), saying which when it fails.
pub(crate) fn read_bounded(path: &std::path::Path, max: u64) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > max {
        anyhow::bail!("{} is {len} bytes; at most {max} are read", path.display());
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}
