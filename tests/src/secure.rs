//! Nodes that speak only SASL_SSL, set up the way `brook cluster up --secure` sets up its
//! nodes, and clients that reach them.
//!
//! [`Security::sasl_ssl`] makes the key material at run time in a temporary directory (a CA and
//! one node certificate for 127.0.0.1, both with rcgen; nothing is checked in) and a random
//! password for the `admin` super user. [`crate::BrokerOptions::secure`] gives a node the
//! settings; the node's [`crate::Broker`] (and a [`crate::cluster::Cluster`] of such nodes)
//! then carries the [`Security`], and every client the harness makes for it follows: rdkafka
//! clients get SASL_SSL with SCRAM-SHA-512 as admin, [`RawConn`]s a TLS stream and a
//! SCRAM-SHA-512 login, kcat the same settings. The security travels with the broker rather
//! than in a process-wide switch, since the tests of one binary run on threads of one process.

use std::fmt;
use std::io::{ErrorKind, Read as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::anyhow::{anyhow, ensure, Context as _, Result};
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rdkafka::config::ClientConfig;
use rustls::pki_types::ServerName;

use crate::scram::{self, Mechanism};
use crate::{RawConn, OP_TIMEOUT};

/// The super user, as `brook cluster up --secure` names it.
pub const ADMIN: &str = "admin";
/// The mechanism every client of a secure node logs in with.
pub const MECHANISM: Mechanism = Mechanism::Sha512;

/// How clients reach a node: in the clear, or SASL_SSL as the admin user. Cheap to clone; the
/// key material lives as long as its last clone.
#[derive(Clone, Default)]
pub struct Security(Option<Arc<Material>>);

struct Material {
    /// Holds the files below; removed with the last clone.
    _dir: tempfile::TempDir,
    /// The CA certificate (the nodes' truststore, the clients' CA).
    ca: PathBuf,
    /// The node's key and certificate in one PEM file (the nodes' keystore).
    keystore: PathBuf,
    password: String,
    tls: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            None => f.write_str("Security::Plaintext"),
            Some(m) => write!(f, "Security::SaslSsl(CA {})", m.ca.display()),
        }
    }
}

impl Security {
    /// No TLS, no SASL: the harness's default.
    pub fn plaintext() -> Security {
        Security(None)
    }

    /// Fresh key material for a SASL_SSL cluster: a CA, a certificate for 127.0.0.1 that every
    /// node presents, and a random admin password. Panics if they cannot be made.
    pub fn sasl_ssl() -> Security {
        match Material::make() {
            Ok(m) => Security(Some(Arc::new(m))),
            Err(e) => panic!("could not make the TLS material: {e:#}"),
        }
    }

    pub fn is_secure(&self) -> bool {
        self.0.is_some()
    }

    /// The node settings `brook cluster up --secure` gives every node (none in the clear).
    pub fn node_settings(&self) -> Vec<(&'static str, String)> {
        let Some(m) = &self.0 else {
            return Vec::new();
        };
        vec![
            (
                "listener.security.protocol.map",
                "PLAINTEXT:SASL_SSL".into(),
            ),
            ("ssl.keystore.location", m.keystore.display().to_string()),
            ("ssl.truststore.location", m.ca.display().to_string()),
            (
                "sasl.enabled.mechanisms",
                "SCRAM-SHA-512,SCRAM-SHA-256".into(),
            ),
            ("super.users", format!("User:{ADMIN}")),
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            ),
            ("brook.raft.security.protocol", "SSL".into()),
            ("brook.sasl.bootstrap.user", ADMIN.into()),
            ("brook.sasl.bootstrap.password", m.password.clone()),
        ]
    }

    /// The librdkafka settings of a client (none in the clear), as `librdkafka.config` of
    /// `brook cluster up --secure` has them.
    pub fn client_settings(&self) -> Vec<(&'static str, String)> {
        let Some(m) = &self.0 else {
            return Vec::new();
        };
        vec![
            ("security.protocol", "SASL_SSL".into()),
            ("sasl.mechanisms", MECHANISM.name().into()),
            ("sasl.username", ADMIN.into()),
            ("sasl.password", m.password.clone()),
            ("ssl.ca.location", m.ca.display().to_string()),
        ]
    }

    /// Adds [`Security::client_settings`] to an rdkafka client's configuration.
    pub fn apply(&self, config: &mut ClientConfig) {
        for (k, v) in self.client_settings() {
            config.set(k, v);
        }
    }

    /// `-X key=value` arguments for kcat.
    pub fn kcat_args(&self) -> Vec<String> {
        self.client_settings()
            .into_iter()
            .flat_map(|(k, v)| ["-X".to_string(), format!("{k}={v}")])
            .collect()
    }

    /// The CA certificate's file, if there is one.
    pub fn ca_path(&self) -> Option<&Path> {
        self.0.as_ref().map(|m| m.ca.as_path())
    }

    /// A raw Kafka connection to `addr`: plain TCP in the clear; else TLS, checked against the
    /// CA for the address, then a SCRAM-SHA-512 login as admin.
    pub fn connect(&self, addr: SocketAddr) -> Result<RawConn> {
        let Some(m) = &self.0 else {
            return RawConn::connect(addr);
        };
        let tcp = TcpStream::connect_timeout(&addr, OP_TIMEOUT)?;
        let server = ServerName::IpAddress(addr.ip().into());
        let tls = rustls::ClientConnection::new(m.tls.clone(), server)?;
        let mut conn = RawConn::over_tls(tcp, tls)?;
        scram::login(&mut conn, MECHANISM, ADMIN, &m.password)
            .with_context(|| format!("logging in to {addr} as {ADMIN}"))?;
        Ok(conn)
    }
}

/// Fails unless the node at `addr` refuses a Kafka request sent in the clear: it must answer
/// with a TLS alert or close the connection, never with a Kafka response.
pub fn plaintext_is_refused(addr: SocketAddr) -> Result<()> {
    let mut conn = RawConn::connect(addr)?;
    conn.send_request(0, &kafka_protocol::messages::ApiVersionsRequest::default())?;
    let mut answer = Vec::new();
    // Up to the close; a node that keeps the connection open fails on the timeout below.
    conn.stream()
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
    if let Err(e) = conn.stream().read_to_end(&mut answer) {
        ensure!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{addr} kept a connection that spoke in the clear open"
        );
    }
    // A TLS record of content type 21 (alert), or nothing at all.
    ensure!(
        answer.is_empty() || answer[0] == 21,
        "{addr} answered a request in the clear with {:02x?}",
        &answer[..answer.len().min(32)]
    );
    Ok(())
}

impl Material {
    fn make() -> Result<Material> {
        let dir = tempfile::Builder::new()
            .prefix("brook-test-tls-")
            .tempdir()?;
        let mut ca = CertificateParams::default();
        ca.distinguished_name = common_name("brook test cluster CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let mut node = CertificateParams::default();
        node.distinguished_name = common_name("brook node");
        node.subject_alt_names = vec![
            SanType::IpAddress([127, 0, 0, 1].into()),
            SanType::DnsName("localhost".try_into()?),
        ];
        node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Also a client certificate: replica fetchers present it to their leaders.
        node.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let node_key = KeyPair::generate()?;
        let node_cert = node.signed_by(&node_key, &Issuer::new(ca, ca_key))?;
        let ca_path = dir.path().join("ca.pem");
        let keystore = dir.path().join("node.pem");
        std::fs::write(&ca_path, ca_cert.pem())?;
        std::fs::write(
            &keystore,
            format!("{}{}", node_key.serialize_pem(), node_cert.pem()),
        )?;

        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone())?;
        let tls = rustls::ClientConfig::builder_with_provider(ring_provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow!("TLS versions: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let password =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>());
        Ok(Material {
            _dir: dir,
            ca: ca_path,
            keystore,
            password,
            tls: Arc::new(tls),
        })
    }
}

/// rustls on ring, as brook's own TLS (ring is the only provider in the build; rustls 0.23.48
/// deprecated its default set for lacking post-quantum key exchange).
#[allow(deprecated)]
fn ring_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}
