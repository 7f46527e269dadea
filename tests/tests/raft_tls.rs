//! Mutual TLS on the Raft port (`brook.raft.security.protocol=SSL`, which `brook cluster up
//! --secure` sets): a three-node cluster forms and commits over it, while a client in the clear
//! and a TLS client without a certificate of the cluster's CA are refused before the
//! cluster-secret handshake, each refusal is logged, and the nodes keep serving.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Result};
use brook_tests::cluster::Cluster;
use brook_tests::secure::plaintext_is_refused;
use brook_tests::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

fn client_config(ca: &Path, keystore: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca)? {
        roots.add(cert?)?;
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    Ok(Arc::new(match keystore {
        Some(pem) => {
            let chain = CertificateDer::pem_file_iter(pem)?.collect::<Result<Vec<_>, _>>()?;
            builder.with_client_auth_cert(chain, PrivateKeyDer::from_pem_file(pem)?)?
        }
        None => builder.with_no_client_auth(),
    }))
}

fn tls_session(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = ServerName::IpAddress(addr.ip().into());
    let session = rustls::ClientConnection::new(config, name)?;
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    Ok(rustls::StreamOwned::new(session, tcp))
}

/// With a node's certificate the handshake completes and the node proves itself with a
/// certificate of the cluster's CA: the port speaks TLS.
fn with_a_node_certificate_tls_is_spoken(
    addr: SocketAddr,
    ca: &Path,
    keystore: &Path,
) -> Result<()> {
    let mut tls = tls_session(addr, client_config(ca, Some(keystore))?)?;
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    ensure!(
        tls.conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        "{addr} completed a TLS handshake without a certificate"
    );
    Ok(())
}

/// A TLS client that trusts the cluster's CA but has no certificate of its own: the node must
/// fail the handshake (or close the session) without a byte of Raft data.
fn without_certificate_is_refused(addr: SocketAddr, ca: &Path) -> Result<()> {
    let mut tls = tls_session(addr, client_config(ca, None)?)?;
    // With TLS 1.3 the client finishes its side first; the node's verdict follows.
    let _ = tls.write_all(&[0, 0, 0, 4, 1, 2, 3, 4]);
    let mut buf = [0u8; 64];
    match tls.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(n) => bail!("{addr} sent {n} bytes of data to a client without a certificate"),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            bail!("{addr} kept a session without a client certificate open")
        }
        Err(_) => Ok(()),
    }
}

#[test]
fn the_raft_port_speaks_only_mutual_tls() -> Result<()> {
    let security = Security::sasl_ssl();
    let c = Cluster::start_with(3, |o| {
        o.secure(&security);
    });
    // The group formed over TLS: three voters, and the controller answers.
    let quorum = c.describe_quorum(1)?;
    assert_eq!(
        quorum.voters.iter().copied().collect::<BTreeSet<_>>(),
        BTreeSet::from([1, 2, 3])
    );
    let ca = security.ca_path().ok_or_else(|| anyhow!("no CA"))?;
    let keystore = security
        .node_settings()
        .into_iter()
        .find(|(k, _)| *k == "ssl.keystore.location")
        .map(|(_, v)| PathBuf::from(v))
        .ok_or_else(|| anyhow!("no keystore"))?;
    for id in c.ids() {
        let raft: SocketAddr = c.raft_addr(id).parse()?;
        with_a_node_certificate_tls_is_spoken(raft, ca, &keystore)?;
        plaintext_is_refused(raft)?;
        without_certificate_is_refused(raft, ca)?;
    }
    for id in c.ids() {
        wait_for("the refusals in the node's log", EVENTUALLY, || {
            let refusals = c
                .node(id)
                .log_tail(400)
                .matches("refused a raft peer: TLS handshake failed")
                .count();
            Ok((refusals >= 2).then_some(()))
        })?;
    }
    // Every node still takes part: a metadata write through each commits.
    for id in c.ids() {
        c.create_topic(id, &format!("after-raft-refusals-{id}"), 1)?;
    }
    Ok(())
}
