//! `brook cluster up --secure`: a cluster whose Kafka listeners speak only SASL_SSL and whose
//! Raft ports speak only mutual TLS. Made once per cluster
//! folder and kept there:
//!
//! - `tls/ca.pem` and `tls/ca.key`: a CA for this cluster (the key stays, so an operator can
//!   issue client certificates);
//! - `tls/node.pem`: every node's key and certificate (all nodes listen on 127.0.0.1);
//! - `client.properties`: what a Java client, Kafka's tools and `brook ... --command-config`
//!   need (SASL_SSL, SCRAM-SHA-512 as the admin user, the CA as the truststore);
//! - `librdkafka.config`: the same for librdkafka clients (`kcat -F`, confluent-kafka).
//!
//! The files holding keys or the password are readable by their owner only. The certificates
//! use rcgen's default validity (to the year 4096): a local cluster must not expire on its own.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// The super user `--secure` creates.
pub const ADMIN: &str = "admin";
pub const CLIENT_PROPERTIES: &str = "client.properties";
pub const LIBRDKAFKA_CONFIG: &str = "librdkafka.config";

/// The settings that make every node SASL_SSL, with the key material made first if missing.
pub fn prepare(dir: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let tls = dir.join("tls");
    std::fs::create_dir_all(&tls).with_context(|| format!("creating {}", tls.display()))?;
    let (ca, keystore) = (tls.join("ca.pem"), tls.join("node.pem"));
    if !ca.exists() || !keystore.exists() {
        make_certificates(&tls)?;
    }
    let password = match admin_password(dir) {
        Some(password) => password,
        None => {
            let password = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(brook_raft::random_bytes::<18>()?);
            write_client_configs(dir, &password)?;
            password
        }
    };
    let path = |p: &PathBuf| p.display().to_string();
    Ok(BTreeMap::from([
        (
            "listener.security.protocol.map".into(),
            "PLAINTEXT:SASL_SSL".into(),
        ),
        ("ssl.keystore.location".into(), path(&keystore)),
        ("ssl.truststore.location".into(), path(&ca)),
        (
            "sasl.enabled.mechanisms".into(),
            "SCRAM-SHA-512,SCRAM-SHA-256".into(),
        ),
        ("super.users".into(), format!("User:{ADMIN}")),
        (
            "authorizer.class.name".into(),
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
        ),
        // The Raft port too: mutual TLS with this cluster's CA, the cluster secret inside.
        ("brook.raft.security.protocol".into(), "SSL".into()),
        ("brook.sasl.bootstrap.user".into(), ADMIN.into()),
        ("brook.sasl.bootstrap.password".into(), password),
    ]))
}

/// Whether a cluster's settings make it SASL_SSL (then `up` probes it with `client.properties`).
pub fn is_secure(overrides: &BTreeMap<String, String>) -> bool {
    overrides
        .get("listener.security.protocol.map")
        .is_some_and(|m| m.contains("SASL_SSL"))
}

fn make_certificates(tls: &Path) -> anyhow::Result<()> {
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("brook local cluster CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let mut node = CertificateParams::default();
    node.distinguished_name = name("brook node");
    node.subject_alt_names = vec![
        SanType::IpAddress([127, 0, 0, 1].into()),
        SanType::DnsName("localhost".try_into()?),
    ];
    node.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    node.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let node_key = KeyPair::generate()?;
    let issuer = Issuer::new(ca, ca_key);
    let node_cert = node.signed_by(&node_key, &issuer)?;
    private(&tls.join("ca.key"), &issuer.key().serialize_pem())?;
    private(
        &tls.join("node.pem"),
        &format!("{}{}", node_key.serialize_pem(), node_cert.pem()),
    )?;
    std::fs::write(tls.join("ca.pem"), ca_cert.pem()).context("writing the CA certificate")?;
    Ok(())
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn write_client_configs(dir: &Path, password: &str) -> anyhow::Result<()> {
    let ca = dir.join("tls").join("ca.pem");
    let java = format!(
        "# Settings for Java clients, Kafka's tools and `brook ... --command-config` (made by `brook cluster up --secure`).\n\
         security.protocol=SASL_SSL\n\
         sasl.mechanism=SCRAM-SHA-512\n\
         sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{ADMIN}\" password=\"{password}\";\n\
         ssl.truststore.type=PEM\n\
         ssl.truststore.location={}\n",
        ca.display()
    );
    let rdkafka = format!(
        "# Settings for librdkafka clients (kcat -F, confluent-kafka), made by `brook cluster up --secure`.\n\
         security.protocol=SASL_SSL\n\
         sasl.mechanisms=SCRAM-SHA-512\n\
         sasl.username={ADMIN}\n\
         sasl.password={password}\n\
         ssl.ca.location={}\n",
        ca.display()
    );
    private(&dir.join(CLIENT_PROPERTIES), &java)?;
    private(&dir.join(LIBRDKAFKA_CONFIG), &rdkafka)
}

/// The admin password in an existing `client.properties`.
fn admin_password(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(LIBRDKAFKA_CONFIG)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("sasl.password="))
        .map(str::to_string)
}

/// Writes a file only its owner can read.
fn private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}
