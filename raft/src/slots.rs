//! The Raft port's connection limit. When every slot is taken, a new connection is admitted
//! and the connection idle the longest is closed, so idle or hostile connections can never
//! lock the group's own members out (a leader election needs fresh connections at once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

/// The open connections of one server.
pub(crate) struct Slots {
    max: usize,
    start: Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Slot>>>,
}

/// One connection's place: when it last did something, and the signal to close it.
pub(crate) struct Slot {
    last_active_ms: AtomicU64,
    evicted: Notify,
}

/// Holds a slot while its connection runs; dropping it frees the slot.
pub(crate) struct SlotGuard {
    slots: Arc<Slots>,
    id: u64,
    slot: Arc<Slot>,
}

impl Slots {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots {
            max: max.max(1),
            start: Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Take a slot for a new connection, closing the longest-idle one if all are taken.
    pub(crate) fn admit(self: &Arc<Self>) -> SlotGuard {
        let mut open = self.lock();
        if open.len() >= self.max {
            let idlest = open
                .iter()
                .min_by_key(|(_, s)| s.last_active_ms.load(Ordering::Relaxed))
                .map(|(id, _)| *id);
            if let Some(slot) = idlest.and_then(|id| open.remove(&id)) {
                tracing::warn!(
                    limit = self.max,
                    "raft port at its connection limit; closing the longest-idle connection"
                );
                // A stored permit: the connection sees it even if it is not waiting yet.
                slot.evicted.notify_one();
            }
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            last_active_ms: AtomicU64::new(self.now_ms()),
            evicted: Notify::new(),
        });
        open.insert(id, slot.clone());
        SlotGuard {
            slots: self.clone(),
            id,
            slot,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

impl SlotGuard {
    /// Record activity (a request was read), so this connection is not the next one closed.
    pub(crate) fn touch(&self) {
        self.slot
            .last_active_ms
            .store(self.slots.now_ms(), Ordering::Relaxed);
    }

    /// Completes when the connection must close to make room.
    pub(crate) async fn evicted(&self) {
        self.slot.evicted.notified().await
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_server_closes_the_longest_idle_connection() {
        let slots = Slots::new(2);
        let first = slots.admit();
        tokio::time::sleep(Duration::from_millis(10)).await;
        let second = slots.admit();
        tokio::time::sleep(Duration::from_millis(10)).await;
        // The first connection was busy since; the second is now the idlest.
        first.touch();
        let third = slots.admit();
        assert_eq!(slots.len(), 2);
        tokio::time::timeout(Duration::from_millis(1), second.evicted())
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(1), first.evicted())
                .await
                .is_err(),
            "the active connection was closed"
        );
        drop(third);
        drop(second);
        assert_eq!(slots.len(), 1);
    }
}
