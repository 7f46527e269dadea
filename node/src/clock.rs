//! The wall clock, and the leader lease that depends on it.
//!
//! Broker heartbeats are stamped with wall-clock milliseconds because every node compares them
//! (the Raft state machine decides liveness from them), so this is the one place brook's node
//! reads the time of day.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 before it, saturating far after it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long this node may act as the leader the metadata says it is.
///
/// Other brokers take this node's partitions over only once the Raft log shows no heartbeat from
/// it for the session timeout, so until then (less a margin for clock skew) it is still their
/// only leader. Past that, a node cut off from the Raft majority stops serving them (Metadata,
/// Produce, Fetch and ListOffsets send clients elsewhere), so no client reads stale data from a
/// deposed leader that does not know it yet.
#[derive(Debug, Default)]
pub(crate) struct Lease {
    until_ms: AtomicU64,
}

impl Lease {
    /// A heartbeat sent at `sent_ms` was committed.
    pub(crate) fn renew(&self, sent_ms: u64, session_timeout_ms: u64, heartbeat_interval_ms: u64) {
        let margin = (session_timeout_ms / 3).max(heartbeat_interval_ms);
        let until = sent_ms.saturating_add(session_timeout_ms.saturating_sub(margin));
        self.until_ms.fetch_max(until, Ordering::Relaxed);
    }

    pub(crate) fn holds(&self) -> bool {
        now_ms() < self.until_ms.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lasts_the_session_less_a_third() {
        let lease = Lease::default();
        assert!(!lease.holds(), "no heartbeat yet");
        let now = now_ms();
        lease.renew(now, 9_000, 1_000);
        assert!(lease.holds());
        assert_eq!(lease.until_ms.load(Ordering::Relaxed), now + 6_000);
        // An older heartbeat committed late never shortens it.
        lease.renew(now - 5_000, 9_000, 1_000);
        assert_eq!(lease.until_ms.load(Ordering::Relaxed), now + 6_000);
        let expired = Lease::default();
        expired.renew(now - 7_000, 9_000, 1_000);
        assert!(!expired.holds());
    }
}
