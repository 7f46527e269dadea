//! The wall clock, and the leader lease that depends on it.
//!
//! Wall-clock milliseconds stamp what the Raft log records (commit times, group state times);
//! the leader lease runs on the monotonic clock, so clock steps cannot stretch it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 before it, saturating far after it).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How long this node may act as the leader the metadata says it is.
///
/// Other brokers take this node's partitions over only once the Raft leader's clock shows no
/// heartbeat from it for the session timeout, and the leader stamps a heartbeat no earlier than
/// it was sent. So until the session timeout (less a margin) after a committed heartbeat was
/// *sent*, this node is still their only leader. The lease is measured on the monotonic clock
/// from that send time: stepping or skewing this node's wall clock cannot extend it. Past it, a
/// node cut off from the Raft majority stops serving its partitions (Metadata, Produce, Fetch
/// and ListOffsets send clients elsewhere), so no client reads stale data from a deposed leader
/// that does not know it yet.
#[derive(Debug)]
pub(crate) struct Lease {
    /// When the lease ends, as nanoseconds after `origin`.
    until_nanos: AtomicU64,
    origin: Instant,
}

impl Default for Lease {
    fn default() -> Self {
        Lease {
            until_nanos: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }
}

impl Lease {
    /// A heartbeat sent at `sent` was committed.
    pub(crate) fn renew(&self, sent: Instant, session_timeout_ms: u64, heartbeat_interval_ms: u64) {
        let margin = (session_timeout_ms / 3).max(heartbeat_interval_ms);
        let lasts = Duration::from_millis(session_timeout_ms.saturating_sub(margin));
        let until = sent.saturating_duration_since(self.origin) + lasts;
        let nanos = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.until_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    pub(crate) fn holds(&self) -> bool {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        now < self.until_nanos.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lasts_the_session_less_a_third() {
        let lease = Lease::default();
        assert!(!lease.holds(), "no heartbeat yet");
        let now = Instant::now();
        lease.renew(now, 9_000, 1_000);
        assert!(lease.holds());
        let until = lease.until_nanos.load(Ordering::Relaxed);
        let expected = now.duration_since(lease.origin) + Duration::from_millis(6_000);
        assert_eq!(u128::from(until), expected.as_nanos());
        // An older heartbeat committed late never shortens it.
        lease.renew(
            now - Duration::from_millis(5_000).min(now.duration_since(lease.origin)),
            9_000,
            1_000,
        );
        assert_eq!(lease.until_nanos.load(Ordering::Relaxed), until);
        // A heartbeat sent longer ago than the lease lasts gives none.
        let expired = Lease::default();
        std::thread::sleep(Duration::from_millis(20));
        expired.renew(expired.origin, 30, 0);
        assert!(!expired.holds());
    }
}
