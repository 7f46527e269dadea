//! The `ssl.*` settings of a TLS listener (SSL or SASL_SSL), by Kafka's names, checked at start
//! so a TLS listener never comes up half-configured (and never falls back to plaintext).

use std::path::PathBuf;

use anyhow::bail;

/// Where PEM text comes from: a file (re-read when it changes) or the setting itself.
#[derive(Clone, PartialEq, Eq)]
pub enum PemSource {
    File(PathBuf),
    Inline(String),
}

impl std::fmt::Debug for PemSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PemSource::File(path) => write!(f, "File({})", path.display()),
            PemSource::Inline(_) => f.write_str("Inline(..)"),
        }
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    /// A certificate is asked for and checked when given; a client without one is anonymous.
    Requested,
    /// Mutual TLS: a client without a valid certificate fails the handshake.
    Required,
}

/// A TLS listener's settings.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// The certificate chain and key: one file holding both, or the two inline settings.
    pub keystore: Keystore,
    /// CA certificates for client certificates and for the leaders replica fetchers reach.
    pub truststore: Option<PemSource>,
    pub client_auth: ClientAuth,
    pub tls12: bool,
    pub tls13: bool,
    /// `ssl.principal.mapping.rules`, as written (parsed by the principal mapper at start).
    pub principal_rules: String,
    pub reload_interval_ms: u64,
}

#[derive(Debug, Clone)]
pub enum Keystore {
    /// `ssl.keystore.location`: a PEM file with the key and the chain.
    File(PathBuf),
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key`.
    Inline { chain: String, key: String },
}

impl TlsSettings {
    /// The settings in `get`, for a listener that speaks TLS.
    pub fn from_values<'a>(get: &impl Fn(&str) -> &'a str) -> anyhow::Result<Self> {
        for name in ["ssl.keystore.type", "ssl.truststore.type"] {
            if !get(name).trim().eq_ignore_ascii_case("PEM") {
                bail!(
                    "{name}={}: brook reads PEM files only (convert with `openssl pkcs12 -nodes`)",
                    get(name)
                );
            }
        }
        if !get("ssl.key.password").is_empty() {
            bail!("ssl.key.password: encrypted private keys are not supported; give an unencrypted key in a file only brook can read");
        }
        let keystore = match (
            get("ssl.keystore.location").trim(),
            get("ssl.keystore.certificate.chain").trim(),
            get("ssl.keystore.key").trim(),
        ) {
            ("", "", "") => bail!("a TLS listener needs ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key)"),
            (path, "", "") => Keystore::File(PathBuf::from(path)),
            ("", chain, key) if !chain.is_empty() && !key.is_empty() => Keystore::Inline {
                chain: chain.to_string(),
                key: key.to_string(),
            },
            _ => bail!("give either ssl.keystore.location or both ssl.keystore.certificate.chain and ssl.keystore.key"),
        };
        let truststore = match (
            get("ssl.truststore.location").trim(),
            get("ssl.truststore.certificates").trim(),
        ) {
            ("", "") => None,
            (path, "") => Some(PemSource::File(PathBuf::from(path))),
            ("", pem) => Some(PemSource::Inline(pem.to_string())),
            _ => bail!("give either ssl.truststore.location or ssl.truststore.certificates"),
        };
        let client_auth = match get("ssl.client.auth").trim().to_ascii_lowercase().as_str() {
            "none" | "" => ClientAuth::None,
            "requested" => ClientAuth::Requested,
            "required" => ClientAuth::Required,
            other => bail!("ssl.client.auth: `{other}` is not none, requested or required"),
        };
        if client_auth != ClientAuth::None && truststore.is_none() {
            bail!("ssl.client.auth={} needs ssl.truststore.location (the CAs client certificates are checked against)", get("ssl.client.auth"));
        }
        let (mut tls12, mut tls13) = (false, false);
        for version in get("ssl.enabled.protocols")
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            match version {
                "TLSv1.2" => tls12 = true,
                "TLSv1.3" => tls13 = true,
                other => bail!("ssl.enabled.protocols: {other} is not allowed (TLSv1.2, TLSv1.3)"),
            }
        }
        if !tls12 && !tls13 {
            bail!("ssl.enabled.protocols names no TLS version");
        }
        Ok(TlsSettings {
            keystore,
            truststore,
            client_auth,
            tls12,
            tls13,
            principal_rules: get("ssl.principal.mapping.rules").to_string(),
            reload_interval_ms: super::positive(
                get("brook.ssl.reload.interval.ms"),
                "brook.ssl.reload.interval.ms",
            )?,
        })
    }

    /// Whether any `ssl.*` key material is set (a warning when no listener uses TLS).
    pub fn any_set<'a>(get: &impl Fn(&str) -> &'a str) -> bool {
        [
            "ssl.keystore.location",
            "ssl.keystore.certificate.chain",
            "ssl.truststore.location",
            "ssl.truststore.certificates",
        ]
        .iter()
        .any(|name| !get(name).is_empty())
    }
}
