//! How the admin CLI reaches a secured cluster: Kafka's `--command-config` properties file
//! (`security.protocol`, the `ssl.*` trust and key files in PEM, `sasl.mechanism` with
//! `sasl.jaas.config` as Java clients write it, or librdkafka's `sasl.username` and
//! `sasl.password`). Set once per process ([`set_admin`]), since one command talks to one cluster.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context};
use rustls::ClientConfig;

use super::login::Login;
use super::{tcp, Client};
use crate::security::tls;

/// TLS and SASL settings for the admin CLI's connections.
#[derive(Debug, Clone, Default)]
pub struct ClientSecurity {
    tls: Option<Arc<ClientConfig>>,
    login: Option<Login>,
}

static ADMIN: OnceLock<ClientSecurity> = OnceLock::new();

/// Sets this process's admin connection settings; the first call wins.
pub fn set_admin(security: ClientSecurity) {
    let _ = ADMIN.set(security);
}

/// This process's admin connection settings (plaintext, no SASL, unless [`set_admin`] said).
pub fn admin() -> &'static ClientSecurity {
    ADMIN.get_or_init(ClientSecurity::default)
}

impl ClientSecurity {
    /// Reads a properties file; relative file names in it are relative to the file's folder.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the command config {}", path.display()))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Self::from_properties(&text, folder)
            .with_context(|| format!("the command config {}", path.display()))
    }

    fn from_properties(text: &str, folder: &Path) -> anyhow::Result<Self> {
        let props = properties(text);
        let get = |name: &str| props.get(name).map(String::as_str).unwrap_or("");
        let file = |name: &str| {
            let value = get(name);
            (!value.is_empty()).then(|| folder.join(value))
        };
        let protocol = get("security.protocol").to_ascii_uppercase();
        let (use_tls, use_sasl) = match protocol.as_str() {
            "" | "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            other => bail!("security.protocol: unknown protocol {other}"),
        };
        let tls = if use_tls {
            let ca = file("ssl.truststore.location")
                .or_else(|| file("ssl.ca.location"))
                .context("TLS needs ssl.truststore.location (or ssl.ca.location): a PEM file of the cluster's CA")?;
            let roots = tls::root_store(
                &std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?,
                &ca.display().to_string(),
            )?;
            let builder = ClientConfig::builder_with_provider(tls::provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots);
            let keystore = match (
                file("ssl.keystore.location"),
                file("ssl.certificate.location"),
                file("ssl.key.location"),
            ) {
                (Some(both), _, _) => {
                    let pem = std::fs::read(&both)?;
                    Some((pem.clone(), pem, both))
                }
                (None, Some(cert), Some(key)) => {
                    Some((std::fs::read(&cert)?, std::fs::read(&key)?, cert))
                }
                _ => None,
            };
            let config = match keystore {
                Some((chain, key, what)) => {
                    let what = what.display().to_string();
                    builder.with_client_auth_cert(
                        tls::certificates(&chain, &what)?,
                        tls::private_key(&key, &what)?,
                    )?
                }
                None => builder.with_no_client_auth(),
            };
            Some(Arc::new(config))
        } else {
            None
        };
        let login = if use_sasl {
            let mechanism = match get("sasl.mechanism") {
                "" => get("sasl.mechanisms"),
                m => m,
            };
            let mechanism = if mechanism.is_empty() {
                "GSSAPI"
            } else {
                mechanism
            };
            let (user, password) = match (get("sasl.username"), get("sasl.password")) {
                ("", _) => jaas_credentials(get("sasl.jaas.config"))
                    .context("SASL needs sasl.jaas.config with username and password (or sasl.username and sasl.password)")?,
                (user, password) => (user.to_string(), password.to_string()),
            };
            Some(Login {
                mechanism: mechanism.to_ascii_uppercase(),
                user,
                password,
            })
        } else {
            None
        };
        Ok(ClientSecurity { tls, login })
    }

    /// Connects to `addr` and authenticates, as these settings say.
    pub async fn connect(&self, addr: &str, max_response: usize) -> anyhow::Result<Client> {
        let mut client = match &self.tls {
            Some(config) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                Client::connect_tls(
                    addr,
                    host.trim_matches(['[', ']']),
                    &connector,
                    max_response,
                )
                .await?
            }
            None => Client::over(Box::new(tcp(addr).await?), max_response),
        };
        if let Some(login) = &self.login {
            login
                .run(&mut client)
                .await
                .with_context(|| format!("logging in to {addr} as {}", login.user))?;
        }
        Ok(client)
    }
}

/// Java properties: `key=value` or `key: value` lines; `#` and `!` start comments.
fn properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let at = l.find(['=', ':'])?;
            Some((l[..at].trim().to_string(), l[at + 1..].trim().to_string()))
        })
        .collect()
}

/// `username="..."` and `password="..."` of a JAAS login module line, as Java clients give
/// SCRAM and PLAIN credentials.
fn jaas_credentials(jaas: &str) -> Option<(String, String)> {
    let option = |name: &str| {
        let start = jaas.find(&format!("{name}=\""))? + name.len() + 2;
        let end = jaas[start..].find('"')? + start;
        Some(jaas[start..end].to_string())
    };
    Some((option("username")?, option("password")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_and_librdkafka_credentials_are_read() {
        let java = "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n# a comment\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"s3=cret\";\n";
        let s = ClientSecurity::from_properties(java, Path::new(".")).unwrap();
        let login = s.login.unwrap();
        assert_eq!(
            (
                login.mechanism.as_str(),
                login.user.as_str(),
                login.password.as_str()
            ),
            ("SCRAM-SHA-512", "admin", "s3=cret")
        );
        assert!(s.tls.is_none());
        let rdkafka = "security.protocol: sasl_plaintext\nsasl.mechanisms: PLAIN\nsasl.username: u\nsasl.password: p\n";
        let login = ClientSecurity::from_properties(rdkafka, Path::new("."))
            .unwrap()
            .login
            .unwrap();
        assert_eq!(
            (login.mechanism.as_str(), login.user.as_str()),
            ("PLAIN", "u")
        );
        assert!(
            ClientSecurity::from_properties("security.protocol=SSL\n", Path::new(".")).is_err()
        );
        assert!(ClientSecurity::from_properties(
            "security.protocol=SASL_SSL\nssl.ca.location=/nonexistent\n",
            Path::new(".")
        )
        .is_err());
    }
}
