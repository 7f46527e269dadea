//! SASL on the wire, against a real node with a SASL_PLAINTEXT listener, spoken by hand so
//! the attacks a client library would never make can be made: a replayed SCRAM client-final,
//! a forged proof, requests before authentication, an unknown mechanism, an oversized message.
//! Each is refused with Kafka's error and the connection closed; a real SCRAM exchange before
//! and after works, and its server signature proves the node holds the credential.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use anyhow::{ensure, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use brook_tests::scram::{self, handshake, step, Mechanism};
use brook_tests::*;
use kafka_protocol::messages::{MetadataRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

const USER: &str = "admin";
const PASSWORD: &str = "admin-secret";
const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

fn sasl_broker() -> Broker {
    Broker::start_with(|o| {
        o.set("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT")
            .set("sasl.enabled.mechanisms", "SCRAM-SHA-256")
            .set("brook.sasl.bootstrap.user", USER)
            .set("brook.sasl.bootstrap.password", PASSWORD)
            .set("connection.failed.authentication.delay.ms", 20);
    })
}

/// SCRAM-SHA-256 up to the client-final message, which is returned unsent.
fn start_scram(
    conn: &mut RawConn,
    client_nonce: &str,
    password: &str,
) -> Result<(String, Vec<u8>)> {
    scram::start(conn, Mechanism::Sha256, USER, client_nonce, password)
}

fn refused(conn: &mut RawConn, bytes: Vec<u8>, what: &str) -> Result<()> {
    let answer = step(conn, bytes)?;
    ensure!(
        answer.error_code == SASL_AUTHENTICATION_FAILED,
        "{what} was answered {answer:?}"
    );
    conn.expect_closed(Duration::from_secs(5))
}

#[test]
fn scram_refuses_replays_forgeries_and_early_requests() -> Result<()> {
    let broker = sasl_broker();
    let connect = || RawConn::connect(broker.addr());

    // A real exchange authenticates; the server's signature proves it holds the credential.
    let mut good = connect()?;
    let (fin, server_signature) = start_scram(&mut good, "fixed-client-nonce", PASSWORD)?;
    let answer = step(&mut good, fin.clone().into_bytes())?;
    ensure!(answer.error_code == 0, "{answer:?}");
    ensure!(
        answer.auth_bytes.as_ref() == format!("v={}", B64.encode(&server_signature)).as_bytes(),
        "wrong server signature"
    );
    good.call(12, &MetadataRequest::default())?;

    // The same client-final again, on a new exchange with the same client nonce: refused.
    let mut replay = connect()?;
    start_scram(&mut replay, "fixed-client-nonce", PASSWORD)?;
    refused(&mut replay, fin.into_bytes(), "a replayed client-final")?;

    // A proof made with the wrong password.
    let mut forged = connect()?;
    let (fin, _) = start_scram(&mut forged, "another-nonce", "guess")?;
    refused(&mut forged, fin.into_bytes(), "a forged proof")?;

    // A request other than ApiVersions or SASL before authentication closes the connection.
    let mut early = connect()?;
    early.send_request(12, &MetadataRequest::default())?;
    early.expect_closed(Duration::from_secs(5))?;

    // An unknown mechanism is refused with the list; an oversized message fails.
    let mut other = connect()?;
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI"));
    let answer = other.call(1, &request)?;
    ensure!(
        answer.error_code == UNSUPPORTED_SASL_MECHANISM,
        "{answer:?}"
    );
    ensure!(
        answer
            .mechanisms
            .iter()
            .map(|m| m.as_str())
            .eq(["SCRAM-SHA-256"]),
        "{answer:?}"
    );
    let mut huge = connect()?;
    ensure!(handshake(&mut huge, "SCRAM-SHA-256")? == 0);
    refused(&mut huge, vec![b'n'; 64 * 1024], "a 64 KiB SASL message")?;

    // The node is fine, and the real client still authenticates.
    let mut again = connect()?;
    let (fin, _) = start_scram(&mut again, "third-nonce", PASSWORD)?;
    ensure!(step(&mut again, fin.into_bytes())?.error_code == 0);
    Ok(())
}

#[test]
fn a_session_ends_unless_the_client_re_authenticates() -> Result<()> {
    const LIFETIME_MS: i64 = 1500;
    let broker = Broker::start_with(|o| {
        o.set("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT")
            .set("sasl.enabled.mechanisms", "SCRAM-SHA-256")
            .set("brook.sasl.bootstrap.user", USER)
            .set("brook.sasl.bootstrap.password", PASSWORD)
            .set("connections.max.reauth.ms", LIFETIME_MS);
    });
    let login = |conn: &mut RawConn, nonce: &str| -> Result<i64> {
        let (fin, _) = start_scram(conn, nonce, PASSWORD)?;
        let answer = step(conn, fin.into_bytes())?;
        ensure!(answer.error_code == 0, "{answer:?}");
        Ok(answer.session_lifetime_ms)
    };
    // The exchange's last answer names the lifetime.
    let mut renewing = RawConn::connect(broker.addr())?;
    let lifetime = login(&mut renewing, "first")?;
    ensure!(
        lifetime > 0 && lifetime <= LIFETIME_MS,
        "session lifetime {lifetime}"
    );
    let mut lapsing = RawConn::connect(broker.addr())?;
    login(&mut lapsing, "other")?;

    // Halfway, one connection re-authenticates on the same connection; its session restarts.
    std::thread::sleep(Duration::from_millis(LIFETIME_MS as u64 / 2));
    ensure!(login(&mut renewing, "second")? > LIFETIME_MS / 2);
    // Past the first lifetime: the renewed session still answers, the other is closed.
    std::thread::sleep(Duration::from_millis(LIFETIME_MS as u64 / 2 + 300));
    renewing.call(12, &MetadataRequest::default())?;
    lapsing.send_request(12, &MetadataRequest::default())?;
    lapsing.expect_closed(Duration::from_secs(5))?;

    // A re-authentication must use the first mechanism, through SaslHandshake v1.
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
    ensure!(
        renewing.call(1, &request)?.error_code == 34,
        "ILLEGAL_SASL_STATE expected"
    );
    Ok(())
}
