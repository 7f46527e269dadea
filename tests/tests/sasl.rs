//! SASL on the wire, against a real node with a SASL_PLAINTEXT listener, spoken by hand so
//! the attacks a client library would never make can be made: a replayed SCRAM client-final,
//! a forged proof, requests before authentication, an unknown mechanism, an oversized message.
//! Each is refused with Kafka's error and the connection closed; a real SCRAM exchange before
//! and after works, and its server signature proves the node holds the credential.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use brook_tests::*;
use kafka_protocol::messages::{
    MetadataRequest, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use ring::{digest, hmac, pbkdf2};

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

fn handshake(conn: &mut RawConn, mechanism: &'static str) -> Result<i16> {
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mechanism));
    Ok(conn.call(1, &request)?.error_code)
}

fn step(conn: &mut RawConn, bytes: Vec<u8>) -> Result<SaslAuthenticateResponse> {
    conn.call(
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(bytes.into()),
    )
}

fn hmac256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

/// The client side of SCRAM-SHA-256 after the server-first message: the client-final message
/// for `password`, and the server signature to expect.
fn client_final(
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>)> {
    let attr = |name: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(name))
            .context("server-first attribute missing")
    };
    let nonce = attr("r=")?;
    let salt = B64.decode(attr("s=")?)?;
    let iterations: u32 = attr("i=")?.parse()?;
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations.try_into()?,
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    let client_key = hmac256(&salted, b"Client Key");
    let stored_key = digest::digest(&digest::SHA256, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = hmac256(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_signature = hmac256(&hmac256(&salted, b"Server Key"), auth_message.as_bytes());
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        server_signature,
    ))
}

/// SCRAM-SHA-256 up to the client-final message, which is returned unsent.
fn start_scram(
    conn: &mut RawConn,
    client_nonce: &str,
    password: &str,
) -> Result<(String, Vec<u8>)> {
    ensure!(handshake(conn, "SCRAM-SHA-256")? == 0, "handshake refused");
    let bare = format!("n={USER},r={client_nonce}");
    let first = step(conn, format!("n,,{bare}").into_bytes())?;
    ensure!(first.error_code == 0, "{first:?}");
    let server_first = String::from_utf8(first.auth_bytes.to_vec())?;
    ensure!(
        server_first.starts_with(&format!("r={client_nonce}")),
        "{server_first}"
    );
    client_final(password, &bare, &server_first)
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
