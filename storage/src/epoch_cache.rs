//! Leader-epoch cache: the start offset of every leader epoch seen in the log, which
//! OffsetForLeaderEpoch (and later follower truncation) is answered from.

use serde::{Deserialize, Serialize};

/// `(epoch, start offset)` pairs, strictly increasing in both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct EpochCache {
    entries: Vec<(i32, u64)>,
}

impl EpochCache {
    /// Records that `epoch` starts at `start_offset` if it is newer than every known epoch.
    /// Older or negative epochs (pre-v2 batches, a fenced leader's leftovers) are ignored, as
    /// Kafka does. Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: u64) -> bool {
        if epoch < 0 {
            return false;
        }
        if let Some(&(latest, start)) = self.entries.last() {
            if epoch <= latest || start_offset < start {
                return false;
            }
        }
        self.entries.push((epoch, start_offset));
        true
    }

    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// Forgets epochs that start at or after `end` (the log was truncated there).
    pub fn truncate_from_end(&mut self, end: u64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < end);
        before != self.entries.len()
    }

    /// The log now starts at `start`: entries wholly before it go, and the epoch that covers
    /// `start` is moved up to it.
    pub fn truncate_from_start(&mut self, start: u64) -> bool {
        let covering = self.entries.partition_point(|&(_, s)| s <= start);
        if covering == 0 {
            return false;
        }
        let keep_from = covering - 1;
        let changed = keep_from > 0 || self.entries[keep_from].1 != start;
        self.entries.drain(..keep_from);
        self.entries[0].1 = start;
        changed
    }

    /// Kafka's `endOffsetFor`: the largest epoch <= `epoch` and the offset where the next epoch
    /// starts (the log end for the latest epoch). An epoch below every known one answers with
    /// itself and the first known start offset. `None` when nothing can be said (unknown
    /// epoch above the latest, negative epoch, empty cache).
    pub fn end_offset_for(&self, epoch: i32, log_end: u64) -> Option<(i32, u64)> {
        if epoch < 0 {
            return None;
        }
        let (latest, _) = *self.entries.last()?;
        if epoch == latest {
            return Some((epoch, log_end));
        }
        let higher = self.entries.partition_point(|&(e, _)| e <= epoch);
        let &(_, next_start) = self.entries.get(higher)?;
        match higher.checked_sub(1) {
            Some(floor) => Some((self.entries[floor].0, next_start)),
            None => Some((epoch, next_start)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, u64)]) -> EpochCache {
        EpochCache {
            entries: entries.to_vec(),
        }
    }

    #[test]
    fn assign_is_monotonic() {
        let mut c = EpochCache::default();
        assert!(c.assign(1, 0));
        assert!(!c.assign(1, 5));
        assert!(!c.assign(0, 6));
        assert!(!c.assign(-1, 7));
        assert!(c.assign(3, 10));
        assert_eq!(c, cache(&[(1, 0), (3, 10)]));
        assert_eq!(c.latest(), Some(3));
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(2, 5), (4, 20), (7, 30)]);
        assert_eq!(c.end_offset_for(7, 42), Some((7, 42)));
        assert_eq!(c.end_offset_for(4, 42), Some((4, 30)));
        assert_eq!(c.end_offset_for(5, 42), Some((4, 30)));
        assert_eq!(c.end_offset_for(1, 42), Some((1, 5)));
        assert_eq!(c.end_offset_for(8, 42), None);
        assert_eq!(c.end_offset_for(-1, 42), None);
        assert_eq!(EpochCache::default().end_offset_for(0, 0), None);
    }

    #[test]
    fn truncation_from_both_ends() {
        let mut c = cache(&[(2, 5), (4, 20), (7, 30)]);
        assert!(c.truncate_from_end(30));
        assert_eq!(c, cache(&[(2, 5), (4, 20)]));
        assert!(c.truncate_from_start(25));
        assert_eq!(c, cache(&[(4, 25)]));
        assert!(!c.truncate_from_start(25));
        assert!(!c.truncate_from_start(3));
    }
}
