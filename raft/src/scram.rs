//! SCRAM credentials as the Raft state keeps them (KIP-554): the salt, the iteration count
//! and the keys derived from the salted password, never a password.

use serde::{Deserialize, Serialize};

pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// Kafka's numbering of the SCRAM mechanisms (AlterUserScramCredentials).
pub const SCRAM_SHA_256: u8 = 1;
pub const SCRAM_SHA_512: u8 = 2;

/// One user's credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

/// The digest size of a mechanism, `None` for one brook does not know.
pub fn digest_bytes(mechanism: u8) -> Option<usize> {
    match mechanism {
        SCRAM_SHA_256 => Some(32),
        SCRAM_SHA_512 => Some(64),
        _ => None,
    }
}
