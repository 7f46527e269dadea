//! TLS for the Kafka listener (SSL and SASL_SSL) and for this node's replica fetchers, with
//! rustls on the ring provider: TLS 1.2 and 1.3 only, PEM key material, client certificates
//! checked against the truststore (`ssl.client.auth`), and key material re-read from disk
//! when it changes, without a restart.
//!
//! - [`principal`]: a client certificate's subject as a Kafka principal.
//! - [`raft`]: mutual TLS on the Raft port.

pub mod principal;
pub mod raft;

use std::sync::{Arc, Mutex, RwLock};

use anyhow::{anyhow, bail, Context};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::tls::{ClientAuth, Keystore, PemSource, TlsSettings};
use principal::PrincipalMapper;

/// The largest PEM file read: a key and a long chain, or a bundle of a few hundred CAs.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// A TLS listener's live configuration; [`Tls::reload_if_changed`] swaps in new key material.
pub struct Tls {
    settings: TlsSettings,
    mapper: PrincipalMapper,
    current: RwLock<Loaded>,
    /// Serialises reloads (the timer and a test may race).
    reloading: Mutex<()>,
}

#[derive(Clone)]
struct Loaded {
    /// A digest of every input, to tell whether anything changed.
    digest: Vec<u8>,
    server: Arc<ServerConfig>,
    /// For the replica fetchers; `None` without a truststore (they cannot check a leader).
    client: Option<Arc<ClientConfig>>,
}

impl Tls {
    /// Loads the key material; any problem fails the start with what to fix.
    pub fn load(settings: TlsSettings) -> anyhow::Result<Self> {
        let mapper = PrincipalMapper::parse(&settings.principal_rules)?;
        let loaded = build(&settings)?;
        Ok(Tls {
            settings,
            mapper,
            current: RwLock::new(loaded),
            reloading: Mutex::new(()),
        })
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The acceptor new connections use.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.loaded().server)
    }

    /// A connector for this node's own connections to other nodes (trusting the truststore,
    /// presenting this node's certificate), or why there is none.
    pub fn connector(&self) -> anyhow::Result<tokio_rustls::TlsConnector> {
        self.loaded()
            .client
            .map(tokio_rustls::TlsConnector::from)
            .ok_or_else(|| {
                anyhow!(
                    "no ssl.truststore.location: this node cannot verify other nodes' certificates"
                )
            })
    }

    /// The principal name for a client certificate (DER), by `ssl.principal.mapping.rules`.
    pub fn principal_name(&self, certificate: &[u8]) -> anyhow::Result<String> {
        let dn = principal::subject_dn(certificate)?;
        self.mapper
            .map(&dn)
            .ok_or_else(|| anyhow!("no ssl.principal.mapping.rules rule applies to `{dn}`"))
    }

    /// Re-reads the key material; swaps it in if it changed and is valid. Returns whether it
    /// changed. A bad file leaves the configuration in force as it was.
    pub fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let _one = self
            .reloading
            .lock()
            .map_err(|_| anyhow!("reload lock poisoned"))?;
        let digest = digest(&self.settings)?;
        if digest == self.loaded().digest {
            return Ok(false);
        }
        let loaded = build(&self.settings)?;
        *self
            .current
            .write()
            .map_err(|_| anyhow!("TLS configuration lock poisoned"))? = loaded;
        Ok(true)
    }

    fn loaded(&self) -> Loaded {
        // A poisoned lock still holds a complete configuration (it is swapped whole).
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The server name a leader's certificate must carry: its advertised host.
pub fn server_name(host: &str) -> anyhow::Result<ServerName<'static>> {
    ServerName::try_from(host.to_string()).map_err(|e| anyhow!("`{host}` as a TLS name: {e}"))
}

/// The bytes of every input, in order.
fn sources(settings: &TlsSettings) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = match &settings.keystore {
        Keystore::File(path) => vec![read(&PemSource::File(path.clone()))?],
        Keystore::Inline { chain, key } => {
            vec![chain.clone().into_bytes(), key.clone().into_bytes()]
        }
    };
    if let Some(trust) = &settings.truststore {
        out.push(read(trust)?);
    }
    Ok(out)
}

fn digest(settings: &TlsSettings) -> anyhow::Result<Vec<u8>> {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for source in sources(settings)? {
        context.update(&(source.len() as u64).to_be_bytes());
        context.update(&source);
    }
    Ok(context.finish().as_ref().to_vec())
}

fn read(source: &PemSource) -> anyhow::Result<Vec<u8>> {
    match source {
        PemSource::Inline(text) => Ok(text.clone().into_bytes()),
        PemSource::File(path) => crate::security::read_bounded(path, MAX_PEM_BYTES),
    }
}

fn build(settings: &TlsSettings) -> anyhow::Result<Loaded> {
    let digest = digest(settings)?;
    let (chain, key) = match &settings.keystore {
        Keystore::File(path) => {
            let pem = read(&PemSource::File(path.clone()))?;
            let what = path.display().to_string();
            (certificates(&pem, &what)?, private_key(&pem, &what)?)
        }
        Keystore::Inline { chain, key } => (
            certificates(chain.as_bytes(), "ssl.keystore.certificate.chain")?,
            private_key(key.as_bytes(), "ssl.keystore.key")?,
        ),
    };
    let roots = match &settings.truststore {
        Some(source) => {
            let what = match source {
                PemSource::File(path) => path.display().to_string(),
                PemSource::Inline(_) => "ssl.truststore.certificates".to_string(),
            };
            Some(Arc::new(root_store(&read(source)?, &what)?))
        }
        None => None,
    };
    let provider = provider();
    let versions = versions(settings);
    let verifier = match (settings.client_auth, &roots) {
        (ClientAuth::None, _) => WebPkiClientVerifier::no_client_auth(),
        (auth, Some(roots)) => {
            let builder =
                WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
            let builder = if auth == ClientAuth::Requested {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().context("the client certificate verifier")?
        }
        (_, None) => bail!("ssl.client.auth needs a truststore"),
    };
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain.clone(), key.clone_key())
        .context("the keystore's certificate and key")?;
    let client = match roots {
        Some(roots) => Some(Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&versions)
                .context("TLS versions")?
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)
                .context("the keystore's certificate and key, as a client")?,
        )),
        None => None,
    };
    Ok(Loaded {
        digest,
        server: Arc::new(server),
        client,
    })
}

/// rustls's ring provider: X25519 and the NIST curves, no post-quantum key exchange (rustls
/// 0.23.48 deprecates it for that reason and suggests aws-lc-rs, which needs a C and assembler
/// toolchain and a second crypto library beside the ring brook already uses).
#[allow(deprecated)]
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn versions(settings: &TlsSettings) -> Vec<&'static SupportedProtocolVersion> {
    let mut versions = Vec::new();
    if settings.tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if settings.tls12 {
        versions.push(&rustls::version::TLS12);
    }
    versions
}

pub(crate) fn certificates(pem: &[u8], what: &str) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{what}: {e}"))?;
    if certs.is_empty() {
        bail!("{what} holds no PEM certificate");
    }
    Ok(certs)
}

/// The CA certificates of a PEM file, as trust roots.
pub(crate) fn root_store(pem: &[u8], what: &str) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in certificates(pem, what)? {
        store
            .add(cert)
            .with_context(|| format!("a CA certificate in {what}"))?;
    }
    Ok(store)
}

pub(crate) fn private_key(pem: &[u8], what: &str) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| {
        anyhow!("{what}: no unencrypted private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}")
    })
}
