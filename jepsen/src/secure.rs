//! `--secure`: nodes set up the way `brook cluster up --secure` sets them up, so they speak only
//! SASL_SSL, with ACLs and an `admin` super user, and clients that log in as admin.
//!
//! [`prepare`] makes, under the run directory's `tls/`: a CA (`ca.pem`), one key and
//! certificate every node presents (`node.pem`, naming every address the nodes listen on), a
//! random admin password, and the client settings as `brook cluster up --secure` writes them
//! (`client.properties` for brook's admin commands, `librdkafka.config` for `kcat -F`). Files
//! with keys or the password are readable by their owner only. It returns the node settings and
//! the [`Security`] every client and checker of the run uses.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::client::Security;

/// The super user, as `brook cluster up --secure` names it.
pub const ADMIN: &str = "admin";
/// The mechanism the clients log in with.
pub const MECHANISM: &str = "SCRAM-SHA-512";

/// Makes the key material in `dir` for nodes listening on `hosts` (IP addresses); returns the
/// `key=value` settings every node gets and the clients' security.
pub fn prepare(dir: &Path, hosts: &[String]) -> Result<(Vec<String>, Security)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (ca, keystore) = (dir.join("ca.pem"), dir.join("node.pem"));
    make_certificates(&ca, &keystore, hosts)?;
    let password: String = (0..24)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let properties = dir.join("client.properties");
    private(
        &properties,
        &format!(
            "security.protocol=SASL_SSL\n\
             sasl.mechanism={MECHANISM}\n\
             sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{ADMIN}\" password=\"{password}\";\n\
             ssl.truststore.type=PEM\n\
             ssl.truststore.location={}\n",
            ca.display()
        ),
    )?;
    let client = [
        ("security.protocol", "SASL_SSL".to_string()),
        ("sasl.mechanisms", MECHANISM.to_string()),
        ("sasl.username", ADMIN.to_string()),
        ("sasl.password", password.clone()),
        ("ssl.ca.location", ca.display().to_string()),
    ];
    let rdkafka: String = client.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    private(&dir.join("librdkafka.config"), &rdkafka)?;
    let settings = vec![
        "listener.security.protocol.map=PLAINTEXT:SASL_SSL".to_string(),
        format!("ssl.keystore.location={}", keystore.display()),
        format!("ssl.truststore.location={}", ca.display()),
        "sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256".to_string(),
        format!("super.users=User:{ADMIN}"),
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".to_string(),
        "brook.raft.security.protocol=SSL".to_string(),
        format!("brook.sasl.bootstrap.user={ADMIN}"),
        format!("brook.sasl.bootstrap.password={password}"),
    ];
    let security = Security::sasl_ssl(client.map(|(k, v)| (k.to_string(), v)).to_vec(), properties);
    Ok((settings, security))
}

fn make_certificates(ca_path: &Path, keystore: &Path, hosts: &[String]) -> Result<()> {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = common_name("brook-jepsen CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut node = CertificateParams::default();
    node.distinguished_name = common_name("brook node");
    node.subject_alt_names = hosts
        .iter()
        .map(|h| {
            h.parse()
                .map(SanType::IpAddress)
                .with_context(|| format!("node address {h} is not an IP address"))
        })
        .collect::<Result<_>>()?;
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // Also a client certificate: replica fetchers present it to their leaders.
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let node_key = KeyPair::generate()?;
    let node_cert = node.signed_by(&node_key, &Issuer::new(ca, ca_key))?;
    private(
        keystore,
        &format!("{}{}", node_key.serialize_pem(), node_cert.pem()),
    )?;
    std::fs::write(ca_path, ca_cert.pem()).context("writing the CA certificate")
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// Writes a file only its owner can read.
fn private(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
