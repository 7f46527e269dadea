//! The client side of SCRAM (RFC 5802, RFC 7677) over SaslHandshake v1 and SaslAuthenticate v2,
//! spoken by hand on a [`RawConn`]: [`login`] for a connection that just needs to be
//! authenticated, and the single steps ([`handshake`], [`step`], [`start`], [`client_final`])
//! for tests that want to send something else at some point of the exchange.

use ::anyhow::{ensure, Context as _, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use kafka_protocol::messages::{
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
};
use kafka_protocol::protocol::StrBytes;
use ring::{digest, hmac, pbkdf2};

use crate::RawConn;

/// SaslHandshake v1: the SASL exchange then runs in SaslAuthenticate requests.
pub const HANDSHAKE_VERSION: i16 = 1;
/// SaslAuthenticate v2 (with the session lifetime of KIP-368).
pub const AUTHENTICATE_VERSION: i16 = 2;

/// A SCRAM mechanism: which hash it runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Sha256,
    Sha512,
}

impl Mechanism {
    /// The name SaslHandshake carries.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Sha256 => "SCRAM-SHA-256",
            Mechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Mechanism::Sha256 => hmac::HMAC_SHA256,
            Mechanism::Sha512 => hmac::HMAC_SHA512,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            Mechanism::Sha256 => &digest::SHA256,
            Mechanism::Sha512 => &digest::SHA512,
        }
    }

    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            Mechanism::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
            Mechanism::Sha512 => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    fn sign(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac(), key), data)
            .as_ref()
            .to_vec()
    }
}

/// SaslHandshake (v1) naming `mechanism`; returns the error code.
pub fn handshake(conn: &mut RawConn, mechanism: &str) -> Result<i16> {
    let request =
        SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.into()));
    Ok(conn.call(HANDSHAKE_VERSION, &request)?.error_code)
}

/// One SaslAuthenticate (v2) round carrying `bytes`.
pub fn step(conn: &mut RawConn, bytes: Vec<u8>) -> Result<SaslAuthenticateResponse> {
    conn.call(
        AUTHENTICATE_VERSION,
        &SaslAuthenticateRequest::default().with_auth_bytes(bytes.into()),
    )
}

/// A user name as SCRAM carries it (`=` and `,` escaped).
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// The client side after the server-first message: the client-final message for `password`,
/// and the server signature to expect in the server-final one.
pub fn client_final(
    mechanism: Mechanism,
    password: &str,
    client_first_bare: &str,
    server_first: &str,
) -> Result<(String, Vec<u8>)> {
    let attr = |name: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(name))
            .with_context(|| format!("server-first message without {name}: {server_first}"))
    };
    let nonce = attr("r=")?;
    let salt = B64.decode(attr("s=")?)?;
    let iterations: u32 = attr("i=")?.parse()?;
    let mut salted = vec![0u8; mechanism.digest().output_len()];
    pbkdf2::derive(
        mechanism.pbkdf2(),
        iterations.try_into()?,
        &salt,
        password.as_bytes(),
        &mut salted,
    );
    let client_key = mechanism.sign(&salted, b"Client Key");
    let stored_key = digest::digest(mechanism.digest(), &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let signature = mechanism.sign(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let server_key = mechanism.sign(&salted, b"Server Key");
    let server_signature = mechanism.sign(&server_key, auth_message.as_bytes());
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        server_signature,
    ))
}

/// The exchange up to the client-final message, which is returned unsent (with the server
/// signature to expect).
pub fn start(
    conn: &mut RawConn,
    mechanism: Mechanism,
    user: &str,
    client_nonce: &str,
    password: &str,
) -> Result<(String, Vec<u8>)> {
    let code = handshake(conn, mechanism.name())?;
    ensure!(
        code == 0,
        "SaslHandshake {}: error {code}",
        mechanism.name()
    );
    let bare = format!("n={},r={client_nonce}", saslname(user));
    let first = step(conn, format!("n,,{bare}").into_bytes())?;
    ensure!(first.error_code == 0, "client-first refused: {first:?}");
    let server_first = String::from_utf8(first.auth_bytes.to_vec())?;
    ensure!(
        server_first.starts_with(&format!("r={client_nonce}")),
        "the server nonce does not extend the client's: {server_first}"
    );
    client_final(mechanism, password, &bare, &server_first)
}

/// A whole exchange as `user`, with a fresh client nonce. Fails unless the server accepts the
/// proof and proves with its signature that it holds the credential.
pub fn login(conn: &mut RawConn, mechanism: Mechanism, user: &str, password: &str) -> Result<()> {
    let nonce = B64.encode(rand::random::<[u8; 18]>());
    let (fin, server_signature) = start(conn, mechanism, user, &nonce, password)?;
    let answer = step(conn, fin.into_bytes())?;
    ensure!(
        answer.error_code == 0,
        "{} login as {user} refused: {answer:?}",
        mechanism.name()
    );
    ensure!(
        answer.auth_bytes.as_ref() == format!("v={}", B64.encode(&server_signature)).as_bytes(),
        "the server's signature is wrong: it does not hold {user}'s credential"
    );
    Ok(())
}
