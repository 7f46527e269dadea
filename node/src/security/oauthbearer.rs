//! OAUTHBEARER (KIP-255, RFC 7628): the client sends a JWT, which must be signed by a key of
//! the configured JWKS (`sasl.oauthbearer.jwks.endpoint.url`, a file or an HTTPS endpoint,
//! read again every `sasl.oauthbearer.jwks.endpoint.refresh.ms`), within its validity
//! (`exp`, `nbf`, with `sasl.oauthbearer.clock.skew.seconds`), for the expected issuer and
//! audience when they are set. The principal is the `sasl.oauthbearer.sub.claim.name` claim.
//!
//! Only asymmetric signatures are accepted (RS256/384/512, PS256/384/512, ES256/384): an
//! unsigned token (`alg: none`), an HMAC token (whose key a client could guess from a public
//! JWKS) and a token whose key is not in the JWKS are refused, as are keys whose `alg` differs
//! from the token's.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use anyhow::{bail, Context};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::Value;

/// The most keys a token without a `kid` is tried against: each try is a signature check, and
/// a client should not make the node check against a whole large key set.
const MAX_KEYS_WITHOUT_KID: usize = 4;

/// What a token is checked against.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub jwks: super::jwks::JwksSource,
    /// How often the key set is read again (`sasl.oauthbearer.jwks.endpoint.refresh.ms`).
    pub refresh_ms: u64,
    pub issuer: Option<String>,
    pub audience: Vec<String>,
    pub clock_skew_s: u64,
    pub principal_claim: String,
}

/// One verification key of the JWKS.
#[derive(Debug, PartialEq, Eq)]
struct Key {
    kid: Option<String>,
    alg: Option<String>,
    material: Material,
}

#[derive(Debug, PartialEq, Eq)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point (0x04, x, y) on the named curve.
    Ec {
        curve: String,
        point: Vec<u8>,
    },
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<BTreeMap<String, Value>>,
}

/// Validates bearer tokens against the latest good JWKS.
#[derive(Debug)]
pub struct JwtValidator {
    settings: OAuthSettings,
    keys: RwLock<Arc<Vec<Key>>>,
}

impl JwtValidator {
    /// Reads the JWKS. A file with no usable key fails the start; an endpoint that cannot be
    /// reached yet is logged, every token is refused until [`JwtValidator::refresh`] gets a
    /// key set, so a node can start while its identity provider is down.
    pub async fn load(settings: OAuthSettings) -> anyhow::Result<Self> {
        let validator = JwtValidator {
            settings,
            keys: RwLock::new(Arc::new(Vec::new())),
        };
        match validator.refresh().await {
            Ok(_) => {}
            Err(e) if matches!(validator.settings.jwks, super::jwks::JwksSource::Https(_)) => {
                tracing::error!(error = %format!("{e:#}"), "no JWKS yet: OAUTHBEARER tokens are refused until it is fetched");
            }
            Err(e) => return Err(e),
        }
        Ok(validator)
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Whether a key set was read.
    pub fn has_keys(&self) -> bool {
        !self.keys().is_empty()
    }

    /// Reads the JWKS again and uses it if it holds a signing key; returns whether the keys
    /// changed. A bad or empty key set keeps the previous one.
    pub async fn refresh(&self) -> anyhow::Result<bool> {
        let source = &self.settings.jwks;
        let bytes = source.read().await?;
        let jwks: Jwks = serde_json::from_slice(&bytes)
            .with_context(|| format!("the JWKS {source} is not a JSON key set"))?;
        let keys: Vec<Key> = jwks.keys.iter().filter_map(key).collect();
        if keys.is_empty() {
            bail!("the JWKS {source} has no RSA or EC signing key");
        }
        let mut current = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let changed = **current != keys;
        *current = Arc::new(keys);
        Ok(changed)
    }

    fn keys(&self) -> Arc<Vec<Key>> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The token in an OAUTHBEARER client-first message (`n,,\x01auth=Bearer <token>\x01\x01`).
    pub fn token(message: &[u8]) -> Result<&str, String> {
        let text = std::str::from_utf8(message).map_err(|_| "the message is not UTF-8")?;
        let (_, pairs) = super::gs2_header(text)?;
        pairs
            .split('\x01')
            .find_map(|kv| kv.strip_prefix("auth=Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| "no `auth=Bearer <token>` in the message".to_string())
    }

    /// The principal name of a valid token at `now` (seconds since the epoch), or why not.
    pub fn validate(&self, token: &str, now: u64) -> Result<(String, u64), String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("the token is not a signed JWT (header.payload.signature)".into());
        };
        let decode = |part: &str, what: &str| {
            B64URL
                .decode(part.trim_end_matches('='))
                .map_err(|_| format!("the token's {what} is not base64url"))
        };
        let head: BTreeMap<String, Value> = serde_json::from_slice(&decode(header, "header")?)
            .map_err(|_| "the token's header is not a JSON object")?;
        let alg = head.get("alg").and_then(Value::as_str).unwrap_or("none");
        if !matches!(
            alg,
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384"
        ) {
            return Err(format!(
                "alg {alg} is not accepted: tokens must carry an RS, PS or ES signature"
            ));
        }
        let kid = head.get("kid").and_then(Value::as_str);
        let keys = self.keys();
        let candidates: Vec<&Key> = keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .filter(|k| k.alg.as_deref().is_none_or(|a| a == alg))
            .collect();
        if candidates.is_empty() {
            return Err(format!("no key in the JWKS for kid {kid:?} and alg {alg}"));
        }
        if kid.is_none() && candidates.len() > MAX_KEYS_WITHOUT_KID {
            return Err(format!(
                "the token names no kid and {} keys could sign it",
                candidates.len()
            ));
        }
        let signed = &token.as_bytes()[..header.len() + 1 + payload.len()];
        let signature = decode(signature, "signature")?;
        if !candidates
            .iter()
            .any(|k| verify(alg, &k.material, signed, &signature))
        {
            return Err(format!("the token's {alg} signature does not verify"));
        }
        let claims: BTreeMap<String, Value> = serde_json::from_slice(&decode(payload, "payload")?)
            .map_err(|_| "the token's payload is not a JSON object")?;
        self.check_claims(&claims, now)
    }

    /// The principal and the token's expiry (seconds since the epoch), or why it is refused.
    fn check_claims(
        &self,
        claims: &BTreeMap<String, Value>,
        now: u64,
    ) -> Result<(String, u64), String> {
        let s = &self.settings;
        let time = |name: &str| claims.get(name).and_then(Value::as_f64).map(|t| t as u64);
        let exp = time("exp").ok_or("the token has no exp claim")?;
        if now > exp.saturating_add(s.clock_skew_s) {
            return Err(format!("the token expired at {exp}"));
        }
        if let Some(nbf) = time("nbf") {
            if now.saturating_add(s.clock_skew_s) < nbf {
                return Err(format!("the token is not valid before {nbf}"));
            }
        }
        if let Some(issuer) = &s.issuer {
            if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
                return Err(format!("the token's issuer is not {issuer}"));
            }
        }
        if !s.audience.is_empty() {
            let audiences: Vec<&str> = match claims.get("aud") {
                Some(Value::String(one)) => vec![one.as_str()],
                Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !audiences.iter().any(|a| s.audience.iter().any(|e| e == a)) {
                return Err(format!("the token is not for audience {:?}", s.audience));
            }
        }
        claims
            .get(&s.principal_claim)
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
            .map(|p| (p.to_string(), exp))
            .ok_or_else(|| format!("the token has no {} claim", s.principal_claim))
    }
}

/// A JWKS entry brook can verify with; others (HMAC `oct` keys, encryption keys) are skipped.
fn key(entry: &BTreeMap<String, Value>) -> Option<Key> {
    let text = |name: &str| entry.get(name).and_then(Value::as_str);
    if text("use").is_some_and(|u| u != "sig") {
        return None;
    }
    let bytes = |name: &str| text(name).and_then(|v| B64URL.decode(v.trim_end_matches('=')).ok());
    let material = match text("kty")? {
        "RSA" => Material::Rsa {
            n: bytes("n")?,
            e: bytes("e")?,
        },
        "EC" => {
            let mut point = vec![4u8];
            point.extend(bytes("x")?);
            point.extend(bytes("y")?);
            Material::Ec {
                curve: text("crv")?.to_string(),
                point,
            }
        }
        _ => return None,
    };
    Some(Key {
        kid: text("kid").map(str::to_string),
        alg: text("alg").map(str::to_string),
        material,
    })
}

fn verify(alg: &str, material: &Material, signed: &[u8], signature: &[u8]) -> bool {
    match material {
        Material::Rsa { n, e } => {
            let params: &signature::RsaParameters = match alg {
                "RS256" => &signature::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &signature::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &signature::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &signature::RSA_PSS_2048_8192_SHA256,
                "PS384" => &signature::RSA_PSS_2048_8192_SHA384,
                "PS512" => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            RsaPublicKeyComponents { n, e }
                .verify(params, signed, signature)
                .is_ok()
        }
        Material::Ec { curve, point } => {
            let params: &'static dyn signature::VerificationAlgorithm = match (alg, curve.as_str())
            {
                ("ES256", "P-256") => &signature::ECDSA_P256_SHA256_FIXED,
                ("ES384", "P-384") => &signature::ECDSA_P384_SHA384_FIXED,
                _ => return false,
            };
            UnparsedPublicKey::new(params, point)
                .verify(signed, signature)
                .is_ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn validator() -> JwtValidator {
        JwtValidator {
            settings: OAuthSettings {
                jwks: crate::security::jwks::JwksSource::File(std::path::PathBuf::new()),
                refresh_ms: 1000,
                issuer: None,
                audience: Vec::new(),
                clock_skew_s: 30,
                principal_claim: "sub".into(),
            },
            keys: RwLock::new(Arc::new(vec![Key {
                kid: None,
                alg: None,
                material: Material::Rsa {
                    n: vec![1; 256],
                    e: vec![1, 0, 1],
                },
            }])),
        }
    }

    #[test]
    fn the_token_is_taken_from_the_client_first_message() {
        let message = b"n,,\x01host=h\x01auth=Bearer a.b.c\x01\x01";
        assert_eq!(JwtValidator::token(message), Ok("a.b.c"));
        assert!(JwtValidator::token(b"n,,\x01\x01").is_err());
        assert!(JwtValidator::token(b"auth=Bearer a.b.c").is_err());
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused_before_any_key_is_tried() {
        let v = validator();
        for alg in ["none", "HS256", "RS1"] {
            let header = B64URL.encode(format!("{{\"alg\":\"{alg}\"}}"));
            let token = format!(
                "{header}.{}.",
                B64URL.encode("{\"sub\":\"x\",\"exp\":9999999999}")
            );
            let refused = v.validate(&token, 0).unwrap_err();
            assert!(refused.contains("is not accepted"), "{alg}: {refused}");
        }
        assert!(v.validate("only.two", 0).is_err());
    }

    #[test]
    fn claims_are_checked_with_the_clock_skew() {
        let mut v = validator();
        v.settings.issuer = Some("iss".into());
        v.settings.audience = vec!["a".into()];
        let claims = |json: &str| serde_json::from_str::<BTreeMap<String, Value>>(json).unwrap();
        let good = claims(r#"{"sub":"u","exp":100,"nbf":50,"iss":"iss","aud":["x","a"]}"#);
        assert_eq!(v.check_claims(&good, 129), Ok(("u".to_string(), 100)));
        assert!(v.check_claims(&good, 131).is_err(), "expired past the skew");
        assert!(v.check_claims(&good, 19).is_err(), "not yet valid");
        for bad in [
            r#"{"sub":"u","exp":100,"iss":"other","aud":"a"}"#,
            r#"{"sub":"u","exp":100,"iss":"iss","aud":"b"}"#,
            r#"{"sub":"u","iss":"iss","aud":"a"}"#,
            r#"{"exp":100,"iss":"iss","aud":"a"}"#,
        ] {
            assert!(v.check_claims(&claims(bad), 60).is_err(), "{bad}");
        }
    }
}
