//! Finds the actor that owns a partition, and starts actors round-robin over the arbiters.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use brook_storage::Store;
use tokio::sync::{mpsc, watch};

use crate::partition::{
    ask, ApplyRetention, DeletePartition, IsrRequest, PartitionActor, PartitionConfig, Watches,
};
use crate::PartitionError;

/// A partition by stable topic id, so a re-created topic never reaches the old one's actor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub topic_id: [u8; 16],
    pub partition: i32,
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.topic_id[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…-{}", self.partition)
    }
}

/// How the node reaches a partition: its actor, and its high watermark and log end for long
/// polls (consumers wait on the first, followers on the second).
#[derive(Clone)]
pub struct PartitionHandle {
    pub addr: Addr<PartitionActor>,
    pub high_watermark: watch::Receiver<u64>,
    pub log_end: watch::Receiver<u64>,
}

pub struct PartitionRegistry {
    store: Store,
    /// This broker's id.
    me: i32,
    /// Where leaders send their in-sync set changes.
    isr_requests: mpsc::UnboundedSender<IsrRequest>,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
    partitions: RwLock<HashMap<PartitionKey, PartitionHandle>>,
}

impl PartitionRegistry {
    pub fn new(
        store: Store,
        me: i32,
        isr_requests: mpsc::UnboundedSender<IsrRequest>,
        arbiters: Vec<ArbiterHandle>,
    ) -> Self {
        PartitionRegistry {
            store,
            me,
            isr_requests,
            arbiters,
            next: AtomicUsize::new(0),
            partitions: RwLock::new(HashMap::new()),
        }
    }

    pub fn get(&self, key: PartitionKey) -> Option<PartitionHandle> {
        self.read_map().get(&key).cloned()
    }

    pub fn keys(&self) -> Vec<PartitionKey> {
        self.read_map().keys().copied().collect()
    }

    /// Returns the running actor for `key`, opening the log and starting one if needed.
    pub fn open(
        &self,
        key: PartitionKey,
        config: PartitionConfig,
    ) -> Result<PartitionHandle, PartitionError> {
        let mut map = self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(handle) = map.get(&key) {
            return Ok(handle.clone());
        }
        let arbiter = self
            .arbiters
            .get(self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len().max(1))
            .ok_or_else(|| PartitionError::System("no arbiters".into()))?;
        let log = self
            .store
            .open_partition(key.topic_id, key.partition, config.log)?;
        let (hw_tx, hw_rx) = watch::channel(log.high_watermark());
        let (end_tx, end_rx) = watch::channel(log.log_end_offset());
        let store = self.store.clone();
        let (me, isr_requests) = (self.me, self.isr_requests.clone());
        let addr = PartitionActor::start_in_arbiter(arbiter, move |_ctx| {
            let watches = Watches {
                high_watermark: hw_tx,
                log_end: end_tx,
            };
            PartitionActor::new(key, me, log, store, config, watches, isr_requests)
        });
        let handle = PartitionHandle {
            addr,
            high_watermark: hw_rx,
            log_end: end_rx,
        };
        map.insert(key, handle.clone());
        Ok(handle)
    }

    /// Stops the partition's actor and removes its data from disk.
    pub async fn delete(&self, key: PartitionKey) -> Result<(), PartitionError> {
        let handle = self
            .partitions
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key);
        match handle {
            Some(handle) => ask(&handle.addr, |reply| DeletePartition { reply }).await,
            None => Ok(self.store.remove_partition(key.topic_id, key.partition)?),
        }
    }

    /// Asks every partition to apply its retention settings.
    pub fn apply_retention(&self) {
        for handle in self.read_map().values() {
            handle.addr.do_send(ApplyRetention);
        }
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PartitionKey, PartitionHandle>> {
        self.partitions
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
