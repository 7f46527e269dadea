//! Which partitions have a live [`PartitionLog`](crate::PartitionLog) in this process.
//!
//! Two owners writing the same trees would interleave appends and corrupt the log, so
//! [`Store::open_partition`](crate::Store::open_partition) claims a partition here and the log
//! holds the claim until it is dropped. The claim lives in its own module because both sides
//! need it: the store takes it, the log carries it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use crate::Error;

/// A partition by topic id and index.
type Key = ([u8; 16], i32);

/// The partitions claimed by a live log.
#[derive(Default)]
pub(crate) struct OpenSet(Mutex<HashSet<Key>>);

impl OpenSet {
    /// Claims `key`, or fails with `AlreadyOpen` while another log holds it.
    pub fn claim(self: &Arc<Self>, key: Key) -> Result<OpenGuard, Error> {
        if !self.lock().insert(key) {
            return Err(Error::AlreadyOpen);
        }
        Ok(OpenGuard {
            set: Arc::clone(self),
            key,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Key>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A claim on one partition; released when the log that carries it is dropped.
pub(crate) struct OpenGuard {
    set: Arc<OpenSet>,
    key: Key,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.set.lock().remove(&self.key);
    }
}
