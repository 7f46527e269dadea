//! SCRAM credentials (KIP-554): for each user and mechanism, the salt, the iteration count and
//! the keys derived from the salted password (RFC 5802's StoredKey and ServerKey). A password is
//! never stored, nor anything a client could log in with.
//!
//! Bounds on what a client can put here: [`MAX_USERS`] users, names up to
//! [`MAX_USER_NAME_BYTES`], salts up to [`MAX_SALT_BYTES`], keys of exactly the mechanism's
//! digest size, iterations within Kafka's [4096, 16384].

use super::{reject, MetadataState};
use crate::codes;
use crate::command::{CommandOutput, CommandResult};
use crate::scram::{digest_bytes, ScramCredential, MAX_ITERATIONS, MIN_ITERATIONS};

pub const MAX_USERS: usize = 10_000;
pub const MAX_USER_NAME_BYTES: usize = 256;
pub const MAX_SALT_BYTES: usize = 128;

impl MetadataState {
    /// A user's credential for `mechanism`.
    pub fn scram_credential(&self, user: &str, mechanism: u8) -> Option<&ScramCredential> {
        self.users.get(user)?.get(&mechanism)
    }

    /// Every user with the mechanisms and iterations of their credentials.
    pub fn scram_users(&self) -> impl Iterator<Item = (&str, Vec<(u8, u32)>)> {
        self.users.iter().map(|(user, creds)| {
            let mechanisms = creds.iter().map(|(m, c)| (*m, c.iterations)).collect();
            (user.as_str(), mechanisms)
        })
    }

    pub(super) fn apply_upsert_scram(
        &mut self,
        user: &str,
        mechanism: u8,
        credential: &ScramCredential,
    ) -> CommandResult {
        let Some(digest) = digest_bytes(mechanism) else {
            return reject(
                codes::UNSUPPORTED_SASL_MECHANISM,
                format!("unknown SCRAM mechanism {mechanism}"),
            );
        };
        if user.is_empty() || user.len() > MAX_USER_NAME_BYTES {
            return reject(
                codes::UNACCEPTABLE_CREDENTIAL,
                format!("a user name must have 1 to {MAX_USER_NAME_BYTES} bytes"),
            );
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&credential.iterations) {
            return reject(
                codes::UNACCEPTABLE_CREDENTIAL,
                format!(
                    "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {}",
                    credential.iterations
                ),
            );
        }
        if credential.salt.is_empty() || credential.salt.len() > MAX_SALT_BYTES {
            return reject(
                codes::UNACCEPTABLE_CREDENTIAL,
                format!("a salt must have 1 to {MAX_SALT_BYTES} bytes"),
            );
        }
        if credential.stored_key.len() != digest || credential.server_key.len() != digest {
            return reject(
                codes::UNACCEPTABLE_CREDENTIAL,
                format!("keys of this mechanism have {digest} bytes"),
            );
        }
        if !self.users.contains_key(user) && self.users.len() >= MAX_USERS {
            return reject(
                codes::UNACCEPTABLE_CREDENTIAL,
                format!("the cluster holds credentials of {MAX_USERS} users already"),
            );
        }
        self.users
            .entry(user.to_owned())
            .or_default()
            .insert(mechanism, credential.clone());
        Ok(CommandOutput::Done)
    }

    pub(super) fn apply_delete_scram(&mut self, user: &str, mechanism: u8) -> CommandResult {
        let Some(creds) = self.users.get_mut(user) else {
            return reject(
                codes::RESOURCE_NOT_FOUND,
                format!("no credentials for {user}"),
            );
        };
        if creds.remove(&mechanism).is_none() {
            return reject(
                codes::RESOURCE_NOT_FOUND,
                format!("{user} has no credential for mechanism {mechanism}"),
            );
        }
        if creds.is_empty() {
            self.users.remove(user);
        }
        Ok(CommandOutput::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::MetadataCommand;
    use crate::scram::{SCRAM_SHA_256, SCRAM_SHA_512};

    fn credential(iterations: u32, key: usize) -> ScramCredential {
        ScramCredential {
            salt: vec![1; 16],
            iterations,
            stored_key: vec![2; key],
            server_key: vec![3; key],
        }
    }

    fn upsert(user: &str, mechanism: u8, credential: ScramCredential) -> MetadataCommand {
        MetadataCommand::UpsertScramCredential {
            user: user.into(),
            mechanism,
            credential,
        }
    }

    #[test]
    fn credentials_are_bounded_and_replaced() {
        let mut s = MetadataState::default();
        s.apply(&upsert("alice", SCRAM_SHA_256, credential(4096, 32)))
            .unwrap();
        s.apply(&upsert("alice", SCRAM_SHA_256, credential(8192, 32)))
            .unwrap();
        assert_eq!(
            s.scram_credential("alice", SCRAM_SHA_256)
                .unwrap()
                .iterations,
            8192
        );
        let code = |r: CommandResult| r.unwrap_err().code;
        assert_eq!(
            code(s.apply(&upsert("bob", SCRAM_SHA_256, credential(100, 32)))),
            codes::UNACCEPTABLE_CREDENTIAL
        );
        assert_eq!(
            code(s.apply(&upsert("bob", SCRAM_SHA_512, credential(4096, 32)))),
            codes::UNACCEPTABLE_CREDENTIAL
        );
        assert_eq!(
            code(s.apply(&upsert("bob", 9, credential(4096, 32)))),
            codes::UNSUPPORTED_SASL_MECHANISM
        );
        let long = "x".repeat(MAX_USER_NAME_BYTES + 1);
        assert_eq!(
            code(s.apply(&upsert(&long, SCRAM_SHA_256, credential(4096, 32)))),
            codes::UNACCEPTABLE_CREDENTIAL
        );
        let delete = |user: &str| MetadataCommand::DeleteScramCredential {
            user: user.into(),
            mechanism: SCRAM_SHA_256,
        };
        s.apply(&delete("alice")).unwrap();
        assert!(s.scram_credential("alice", SCRAM_SHA_256).is_none());
        assert_eq!(code(s.apply(&delete("alice"))), codes::RESOURCE_NOT_FOUND);
    }
}
