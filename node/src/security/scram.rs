//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) on the server, as Kafka speaks them:
//! the client-first message, the server-first answer with a fresh nonce, salt and iterations,
//! then the client's proof, checked in constant time, and the server's signature.
//!
//! A user without a credential gets a made-up salt and fails at the proof like a wrong
//! password, so whether a user exists is not revealed. Channel binding and extensions (Kafka's
//! `tokenauth` for delegation tokens) are refused.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use brook_raft::{ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS, SCRAM_SHA_256, SCRAM_SHA_512};
use ring::{digest, hmac, pbkdf2};

/// A SCRAM mechanism: its Kafka name and number, and its hash.
#[derive(Clone, Copy)]
pub struct Mechanism {
    pub name: &'static str,
    pub id: u8,
    hmac: hmac::Algorithm,
    digest: &'static digest::Algorithm,
    pbkdf2: pbkdf2::Algorithm,
}

pub const SHA_256: Mechanism = Mechanism {
    name: "SCRAM-SHA-256",
    id: SCRAM_SHA_256,
    hmac: hmac::HMAC_SHA256,
    digest: &digest::SHA256,
    pbkdf2: pbkdf2::PBKDF2_HMAC_SHA256,
};

pub const SHA_512: Mechanism = Mechanism {
    name: "SCRAM-SHA-512",
    id: SCRAM_SHA_512,
    hmac: hmac::HMAC_SHA512,
    digest: &digest::SHA512,
    pbkdf2: pbkdf2::PBKDF2_HMAC_SHA512,
};

impl std::fmt::Debug for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Mechanism {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

/// Whether `a` and `b` are equal, in time that depends on their length only.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && std::hint::black_box(a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y))) == 0
}

/// The mechanism of a SaslHandshake name or a Kafka mechanism number.
pub fn by_name(name: &str) -> Option<Mechanism> {
    [SHA_256, SHA_512].into_iter().find(|m| m.name == name)
}

pub fn by_id(id: u8) -> Option<Mechanism> {
    [SHA_256, SHA_512].into_iter().find(|m| m.id == id)
}

impl Mechanism {
    pub(crate) fn hmac(&self, key: &[u8], data: &[u8]) -> Vec<u8> {
        hmac::sign(&hmac::Key::new(self.hmac, key), data)
            .as_ref()
            .to_vec()
    }

    /// RFC 5802's SaltedPassword.
    pub fn salted_password(&self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.digest.output_len()];
        let rounds =
            std::num::NonZeroU32::new(iterations.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        pbkdf2::derive(self.pbkdf2, rounds, salt, password, &mut out);
        out
    }

    /// The stored credential for a salted password (what AlterUserScramCredentials sends).
    pub fn credential(&self, salted: &[u8], salt: &[u8], iterations: u32) -> ScramCredential {
        let client_key = self.hmac(salted, b"Client Key");
        ScramCredential {
            salt: salt.to_vec(),
            iterations,
            stored_key: digest::digest(self.digest, &client_key).as_ref().to_vec(),
            server_key: self.hmac(salted, b"Server Key"),
        }
    }

    /// Whether `password` matches `credential` (for PLAIN), in constant time.
    pub fn password_matches(&self, password: &[u8], credential: &ScramCredential) -> bool {
        let salted = self.salted_password(password, &credential.salt, credential.iterations);
        let derived = self.credential(&salted, &credential.salt, credential.iterations);
        same(&derived.stored_key, &credential.stored_key)
    }
}

/// The server between the two rounds.
#[derive(Debug)]
pub struct Exchange {
    mechanism: Mechanism,
    user: String,
    /// `None` for an unknown user: the exchange runs on and fails at the proof.
    credential: Option<ScramCredential>,
    nonce: String,
    client_first_bare: String,
    server_first: String,
}

/// Round one: parse the client-first message and answer the server-first one. `lookup` finds
/// a user's credential for this mechanism.
pub fn server_first(
    mechanism: Mechanism,
    message: &[u8],
    lookup: impl FnOnce(&str) -> Option<ScramCredential>,
) -> Result<(Vec<u8>, Exchange), String> {
    let text = std::str::from_utf8(message).map_err(|_| "client-first is not UTF-8")?;
    let (authzid, bare) = super::gs2_header(text)?;
    let mut fields = bare.split(',');
    let user = fields
        .next()
        .and_then(|f| f.strip_prefix("n="))
        .ok_or("client-first has no user name")
        .and_then(|u| sasl_name(u).ok_or("malformed user name"))?;
    let client_nonce = fields
        .next()
        .and_then(|f| f.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or("client-first has no nonce")?;
    if fields.next().is_some() {
        return Err("SCRAM extensions (delegation tokens) are not supported".into());
    }
    if let Some(id) = authzid.strip_prefix("a=") {
        if sasl_name(id).as_deref() != Some(user.as_str()) {
            return Err("an authorization id other than the user is not allowed".into());
        }
    }
    let credential = lookup(&user);
    // An unknown user gets a salt that looks like any other, derived from its name so that
    // asking twice gives the same answer.
    let (salt, iterations) = match &credential {
        Some(c) => (c.salt.clone(), c.iterations),
        None => (
            mechanism.hmac(b"brook unknown user", user.as_bytes()),
            MIN_ITERATIONS,
        ),
    };
    // 192 random bits, as hex.
    let ours: [u8; 24] = brook_raft::random_bytes().map_err(|e| e.to_string())?;
    let ours: String = ours.iter().map(|b| format!("{b:02x}")).collect();
    let nonce = format!("{client_nonce}{ours}");
    let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(&salt));
    Ok((
        server_first.clone().into_bytes(),
        Exchange {
            mechanism,
            user,
            credential,
            nonce,
            client_first_bare: bare.to_owned(),
            server_first,
        },
    ))
}

/// Round two: check the client-final message's nonce and proof. Returns the server-final
/// message and the authenticated user.
pub fn server_final(exchange: &Exchange, message: &[u8]) -> Result<(Vec<u8>, String), String> {
    let failed = || {
        format!("Authentication failed during authentication due to invalid credentials with SASL mechanism {}", exchange.mechanism.name)
    };
    let text = std::str::from_utf8(message).map_err(|_| "client-final is not UTF-8")?;
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or("client-final has no proof")?;
    let mut fields = without_proof.split(',');
    let binding = fields.next().and_then(|f| f.strip_prefix("c="));
    if !matches!(binding, Some("biws") | Some("eSws")) {
        return Err("channel binding data does not match the gs2 header".into());
    }
    // The nonce must end with this exchange's (fresh server bits last), so a client-final from
    // another exchange (a replay) fails here. Kafka (since 3.8.1) checks the end only, not
    // equality: librdkafka before 2.10 sends its client nonce again in front of the full nonce,
    // and the proof covers what it sent either way.
    let nonce = fields.next().and_then(|f| f.strip_prefix("r="));
    if !nonce.is_some_and(|n| n.ends_with(exchange.nonce.as_str())) {
        return Err("the nonce is not this exchange's".into());
    }
    if fields.next().is_some() {
        return Err("SCRAM extensions are not supported".into());
    }
    let proof = B64.decode(proof).map_err(|_| "the proof is not base64")?;
    let Some(credential) = &exchange.credential else {
        return Err(failed());
    };
    let m = exchange.mechanism;
    let auth_message = format!(
        "{},{},{without_proof}",
        exchange.client_first_bare, exchange.server_first
    );
    let signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return Err(failed());
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    let stored = digest::digest(m.digest, &client_key);
    if !same(stored.as_ref(), &credential.stored_key) {
        return Err(failed());
    }
    let server_signature = m.hmac(&credential.server_key, auth_message.as_bytes());
    let answer = format!("v={}", B64.encode(server_signature));
    Ok((answer.into_bytes(), exchange.user.clone()))
}

/// The client side of one exchange (brook's admin CLI logging in).
pub struct ClientExchange {
    mechanism: Mechanism,
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
    /// The server signature the server-final message must carry, once known.
    expected: Option<Vec<u8>>,
}

impl ClientExchange {
    /// The client-first message for `user`.
    pub fn start(
        mechanism: Mechanism,
        user: &str,
        password: &str,
    ) -> anyhow::Result<(Self, Vec<u8>)> {
        let nonce = B64.encode(brook_raft::random_bytes::<24>()?);
        let name = user.replace('=', "=3D").replace(',', "=2C");
        let client_first_bare = format!("n={name},r={nonce}");
        let first = format!("n,,{client_first_bare}").into_bytes();
        let exchange = ClientExchange {
            mechanism,
            password: password.as_bytes().to_vec(),
            nonce,
            client_first_bare,
            expected: None,
        };
        Ok((exchange, first))
    }

    /// The client-final message answering `server_first`.
    pub fn answer(&mut self, server_first: &[u8]) -> anyhow::Result<Vec<u8>> {
        let text = std::str::from_utf8(server_first)?;
        let mut fields = text.split(',');
        let (nonce, salt, iterations) = match (fields.next(), fields.next(), fields.next()) {
            (Some(r), Some(s), Some(i)) => (
                r.strip_prefix("r=").unwrap_or_default(),
                B64.decode(s.strip_prefix("s=").unwrap_or_default())?,
                i.strip_prefix("i=").unwrap_or_default().parse::<u32>()?,
            ),
            _ => anyhow::bail!("a malformed server-first message"),
        };
        if !nonce.starts_with(&self.nonce) || nonce.len() <= self.nonce.len() {
            anyhow::bail!("the server's nonce does not extend ours");
        }
        // A hostile server could ask for any work factor; Kafka's range is the bound.
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            anyhow::bail!("{iterations} iterations is outside {MIN_ITERATIONS}..={MAX_ITERATIONS}");
        }
        let m = self.mechanism;
        let salted = m.salted_password(&self.password, &salt, iterations);
        let credential = m.credential(&salted, &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
        let client_key = m.hmac(&salted, b"Client Key");
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        self.expected = Some(m.hmac(&credential.server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message: the server proves it holds the credential too.
    pub fn verify(&self, server_final: &[u8]) -> anyhow::Result<()> {
        let text = std::str::from_utf8(server_final)?;
        let signature = text
            .strip_prefix("v=")
            .map(|v| B64.decode(v))
            .transpose()?
            .ok_or_else(|| anyhow::anyhow!("the server-final message has no signature: {text}"))?;
        match &self.expected {
            Some(expected) if same(expected, &signature) => Ok(()),
            _ => anyhow::bail!("the server's signature is wrong: it does not hold the credential"),
        }
    }
}

/// RFC 5802's saslname: `=2C` is a comma, `=3D` an equals sign; any other `=` is malformed.
fn sasl_name(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let escape = rest.get(i..i + 3)?;
        out.push(match escape {
            "=2C" => ',',
            "=3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's example exchange for SCRAM-SHA-256 (user "user", password "pencil").
    #[test]
    fn rfc_7677_test_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = SHA_256.salted_password(b"pencil", &salt, 4096);
        let credential = SHA_256.credential(&salted, &salt, 4096);
        let client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let exchange = Exchange {
            mechanism: SHA_256,
            user: "user".into(),
            credential: Some(credential),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
            client_first_bare: client_first_bare.into(),
            server_first: server_first.into(),
        };
        let client_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let (answer, user) = server_final(&exchange, client_final.as_bytes()).unwrap();
        assert_eq!(user, "user");
        assert_eq!(answer, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
        // One bit off in the proof fails.
        let forged = client_final.replace("p=dHzb", "p=dHzc");
        assert!(server_final(&exchange, forged.as_bytes()).is_err());
        assert!(SHA_256.password_matches(b"pencil", exchange.credential.as_ref().unwrap()));
        assert!(!SHA_256.password_matches(b"pencil!", exchange.credential.as_ref().unwrap()));
    }

    #[test]
    fn first_messages_are_checked() {
        let none = |_: &str| None;
        assert!(server_first(SHA_512, b"p=tls-unique,,n=u,r=abc", none).is_err());
        assert!(server_first(SHA_512, b"n,,n=u", none).is_err());
        assert!(server_first(SHA_512, b"n,,n=u,r=abc,tokenauth=true", none).is_err());
        assert!(server_first(SHA_512, b"n,,n=bad=2Xname,r=abc", none).is_err());
        assert!(server_first(SHA_512, b"n,a=other,n=u,r=abc", none).is_err());
        let (first, exchange) = server_first(SHA_512, b"n,,n=a=2Cb,r=abc", none).unwrap();
        assert_eq!(exchange.user, "a,b");
        let first = String::from_utf8(first).unwrap();
        assert!(
            first.starts_with("r=abc") && first.ends_with(",i=4096"),
            "{first}"
        );
        // An unknown user fails at the proof, like a wrong password.
        let nonce = first.split(',').next().unwrap();
        let fin = format!("c=biws,{nonce},p={}", B64.encode([0u8; 64]));
        assert!(server_final(&exchange, fin.as_bytes())
            .unwrap_err()
            .contains("invalid credentials"));
    }

    #[test]
    fn sasl_names_unescape() {
        assert_eq!(sasl_name("a=3Db=2Cc").as_deref(), Some("a=b,c"));
        assert_eq!(sasl_name("a=").as_deref(), None);
        assert_eq!(sasl_name("").as_deref(), None);
    }
    #[test]
    fn the_client_side_logs_in_to_the_server_side() {
        let m = SHA_512;
        let salt = b"0123456789abcdef";
        let credential = m.credential(&m.salted_password(b"pw", salt, 4096), salt, 4096);
        let lookup = |_: &str| Some(credential.clone());
        for (password, accepted) in [("pw", true), ("not-pw", false)] {
            let (mut client, first) = ClientExchange::start(m, "a=b,c", password).unwrap();
            let (server_first, exchange) = server_first(m, &first, lookup).unwrap();
            let last = client.answer(&server_first).unwrap();
            match server_final(&exchange, &last) {
                Ok((answer, user)) => {
                    assert!(accepted);
                    assert_eq!(user, "a=b,c");
                    client.verify(&answer).unwrap();
                    assert!(client.verify(b"v=AAAA").is_err());
                }
                Err(_) => assert!(!accepted),
            }
        }
    }
}
