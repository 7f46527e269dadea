//! The `rdkafka` crate over mutual TLS against a real node: certificates made here with rcgen
//! (a CA, the node's certificate for 127.0.0.1, client certificates), `ssl.client.auth=required`
//! and `ssl.principal.mapping.rules` with no DEFAULT, so only a certificate whose subject a rule
//! maps gets in. A client of the right CA produces and consumes; a certificate the rules do not
//! map, one from another CA, and no certificate at all are each refused before any metadata.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use brook_tests::*;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(&[(DnType::CommonName, name)]);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate and key (PEM) for `subject`, usable as a server for 127.0.0.1 and as a
    /// client.
    fn issue(&self, subject: &[(DnType, &str)]) -> (String, String) {
        let mut params = CertificateParams::default();
        params.distinguished_name = dn(subject);
        params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (kind, value) in parts {
        dn.push(kind.clone(), *value);
    }
    dn
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// librdkafka settings for TLS to `broker`, with a client certificate when given.
fn tls_config(broker: &Broker, ca: &Path, client: Option<(&Path, &Path)>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", broker.bootstrap())
        .set("broker.address.family", "v4")
        .set("security.protocol", "SSL")
        .set("ssl.ca.location", ca.to_str().unwrap())
        .set("socket.timeout.ms", "30000")
        .set("log_level", "0");
    if let Some((cert, key)) = client {
        config
            .set("ssl.certificate.location", cert.to_str().unwrap())
            .set("ssl.key.location", key.to_str().unwrap());
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_over_mutual_tls_with_a_principal_from_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("brook test CA");
    let (node_cert, node_key) = ca.issue(&[(DnType::CommonName, "brook node")]);
    let keystore = write(dir.path(), "node.pem", &format!("{node_key}{node_cert}"));
    let ca_file = write(dir.path(), "ca.pem", &ca.pem);
    let broker = Broker::start_with(|o| {
        o.set("listener.security.protocol.map", "PLAINTEXT:SSL")
            .set("ssl.keystore.location", keystore.display())
            .set("ssl.truststore.location", ca_file.display())
            .set("ssl.client.auth", "required")
            // Only subjects in O=clients map to a principal; anything else is refused.
            .set(
                "ssl.principal.mapping.rules",
                "RULE:^CN=([^,]*),O=clients$/$1/L",
            );
    });

    let (cert, key) = ca.issue(&[
        (DnType::OrganizationName, "clients"),
        (DnType::CommonName, "App"),
    ]);
    let cert = write(dir.path(), "app.pem", &cert);
    let key = write(dir.path(), "app.key", &key);
    let topic = unique_name("mtls");
    let producer: FutureProducer = tls_config(&broker, &ca_file, Some((&cert, &key)))
        .set("acks", "all")
        .create()
        .unwrap();
    for i in 0..20 {
        let value = format!("v{i}");
        producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload(&value),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let consumer: BaseConsumer = tls_config(&broker, &ca_file, Some((&cert, &key)))
        .set("group.id", "mtls")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got.len() < 20 && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    assert_eq!(got, (0..20).map(|i| format!("v{i}")).collect::<Vec<_>>());

    // Refused before any metadata: a subject no rule maps, another CA's certificate, none.
    let (stranger, stranger_key) = ca.issue(&[
        (DnType::OrganizationName, "elsewhere"),
        (DnType::CommonName, "app"),
    ]);
    let rogue = Ca::new("rogue CA");
    let (forged, forged_key) = rogue.issue(&[
        (DnType::OrganizationName, "clients"),
        (DnType::CommonName, "app"),
    ]);
    let cases = [
        ("unmapped subject", Some((stranger, stranger_key))),
        ("another CA", Some((forged, forged_key))),
        ("no certificate", None),
    ];
    for (i, (case, client)) in cases.into_iter().enumerate() {
        let files = client.map(|(c, k)| {
            (
                write(dir.path(), &format!("c{i}.pem"), &c),
                write(dir.path(), &format!("c{i}.key"), &k),
            )
        });
        let config = tls_config(
            &broker,
            &ca_file,
            files.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        );
        let probe: BaseConsumer = config.create().unwrap();
        let metadata = probe.fetch_metadata(Some(&topic), Duration::from_secs(5));
        assert!(
            metadata.is_err(),
            "{case}: got metadata {:?}",
            metadata.ok().map(|m| m.topics().len())
        );
    }
    let log = broker.log_tail(400);
    assert!(
        log.contains("no ssl.principal.mapping.rules rule applies"),
        "{log}"
    );
    assert!(log.contains("TLS handshake failed"), "{log}");
}
