//! The clock the Raft leader stamps broker liveness with (see
//! [`crate::MetadataCommand::stamped`]).
//!
//! It reads the wall clock once, then advances with the monotonic clock only, so stepping a
//! node's wall clock (an operator, NTP, a clock nemesis) moves no broker's liveness: a leader
//! whose wall clock jumps minutes ahead would otherwise age every other broker's last heartbeat
//! past the session timeout at once, and the cluster would replace partition leaders whose
//! leases still hold. Nodes' stamp clocks differ by however far their wall clocks differed when
//! they started. A leader whose stamp clock is behind the log's clock continues from the log's
//! clock (liveness would otherwise stand still until it caught up); one that is ahead is
//! absorbed by the grace period of its new term.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 before it).
fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) struct StampClock {
    /// The stamp at `.1`.
    base: Mutex<(u64, Instant)>,
}

impl StampClock {
    pub fn new() -> Self {
        StampClock {
            base: Mutex::new((wall_ms(), Instant::now())),
        }
    }

    /// The stamp for now, at least `floor_ms` (the log's clock as this node applied it).
    pub fn now_ms(&self, floor_ms: u64) -> u64 {
        let mut base = self.base.lock().unwrap_or_else(|e| e.into_inner());
        let elapsed = u64::try_from(base.1.elapsed().as_millis()).unwrap_or(u64::MAX);
        let now = base.0.saturating_add(elapsed);
        if now >= floor_ms {
            return now;
        }
        *base = (floor_ms, Instant::now());
        floor_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_advance_with_the_monotonic_clock_and_never_fall_behind_the_floor() {
        let clock = StampClock::new();
        let first = clock.now_ms(0);
        let wall = wall_ms();
        assert!(
            first.abs_diff(wall) < 60_000,
            "starts at the wall clock: {first} vs {wall}"
        );
        // A floor ahead of the clock: continue from it, and advance from there.
        let ahead = first + 3_600_000;
        assert_eq!(clock.now_ms(ahead), ahead);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let later = clock.now_ms(0);
        assert!(
            later >= ahead + 20 && later < ahead + 60_000,
            "{later} vs {ahead}"
        );
    }
}
