//! What a partition's leader tracks about its followers: how far each has fetched, when it was
//! last caught up, the in-sync set the metadata holds and the change the leader asked for. The
//! high watermark and in-sync set changes follow from these, with Kafka's rules. Plain data, so
//! it is tested without actors.

use std::collections::BTreeMap;

/// The partition's replication state as the metadata (Raft) records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// `min.insync.replicas` of the topic.
    pub min_insync: usize,
}

#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// The follower's log end: the offset it fetched from last (it has everything below,
    /// flushed). `None` until it fetches in this epoch.
    log_end: Option<u64>,
    /// When it was last caught up with the leader's log end.
    caught_up_ms: i64,
    /// The leader's log end when the follower's previous fetch was answered, and when.
    last_fetch: Option<(u64, i64)>,
    /// Where the follower's log starts, as it last reported.
    log_start: Option<u64>,
}

/// Only a follower that fetched this recently may join the in-sync set: one that caught up
/// and then died must not be added back.
const JOIN_FETCH_AGE_MS: i64 = 2_000;

/// How long a requested in-sync set change may stay unanswered before it is sent again.
const ISR_RETRY_MS: i64 = 5_000;

#[derive(Debug)]
pub struct LeaderState {
    me: i32,
    pub state: Leadership,
    /// Where this leader epoch began in the log.
    pub epoch_start: u64,
    followers: BTreeMap<i32, Progress>,
    /// An in-sync set sent to the controller and not seen in the metadata yet, with the time
    /// it was sent.
    pending: Option<(Vec<i32>, i64)>,
}

impl LeaderState {
    pub fn new(me: i32, state: Leadership, epoch_start: u64, now_ms: i64) -> Self {
        // Every follower starts as caught up now, so none is dropped before it could fetch.
        let followers = state
            .replicas
            .iter()
            .filter(|&&r| r != me)
            .map(|&r| {
                (
                    r,
                    Progress {
                        caught_up_ms: now_ms,
                        ..Progress::default()
                    },
                )
            })
            .collect();
        LeaderState {
            me,
            state,
            epoch_start,
            followers,
            pending: None,
        }
    }

    /// The metadata changed within the same leader epoch (a new in-sync set, usually the one
    /// this leader asked for). An older partition epoch than the one held is ignored, as
    /// Kafka's brokers ignore a stale LeaderAndIsr: its in-sync set may be smaller than the
    /// committed one, and the high watermark would then pass a follower still in sync.
    pub fn update(&mut self, state: Leadership, now_ms: i64) {
        if state.partition_epoch < self.state.partition_epoch {
            return;
        }
        if state.partition_epoch != self.state.partition_epoch {
            self.pending = None;
        }
        for &r in &state.replicas {
            if r != self.me {
                self.followers.entry(r).or_insert(Progress {
                    caught_up_ms: now_ms,
                    ..Progress::default()
                });
            }
        }
        self.followers.retain(|r, _| state.replicas.contains(r));
        self.state = state;
    }

    pub fn is_replica(&self, replica: i32) -> bool {
        self.followers.contains_key(&replica)
    }

    /// A follower fetched from `offset` while the leader's log ends at `log_end`.
    pub fn on_fetch(&mut self, replica: i32, offset: u64, log_end: u64, now_ms: i64) {
        let Some(p) = self.followers.get_mut(&replica) else {
            return;
        };
        // Never past this leader's own log end, whatever the follower said.
        let offset = offset.min(log_end);
        p.log_end = Some(offset);
        // Kafka's rule: caught up now if it reached the log end, or as of its previous fetch
        // if it reached what the log end was then.
        if offset >= log_end {
            p.caught_up_ms = now_ms;
        } else if let Some((previous_end, at)) = p.last_fetch {
            if offset >= previous_end {
                p.caught_up_ms = p.caught_up_ms.max(at);
            }
        }
        p.last_fetch = Some((log_end, now_ms));
    }

    /// The offset every in-sync replica holds durably: this leader's `durable_end` and each
    /// in-sync follower's log end. Followers being added count already (the larger set is
    /// the safe one); a follower that has not fetched in this epoch holds it at `current`.
    pub fn high_watermark(&self, durable_end: u64, current: u64) -> u64 {
        let adding = self.pending.as_ref().map(|(isr, _)| isr.as_slice());
        self.state
            .isr
            .iter()
            .chain(adding.into_iter().flatten())
            .filter(|&&r| r != self.me)
            .map(|r| {
                self.followers
                    .get(r)
                    .and_then(|p| p.log_end)
                    .unwrap_or(current)
            })
            .fold(durable_end, u64::min)
            .max(current)
    }

    /// A follower reported where its log starts.
    pub fn on_log_start(&mut self, replica: i32, log_start: u64) {
        if let Some(p) = self.followers.get_mut(&replica) {
            p.log_start = Some(log_start);
        }
    }

    /// Where every in-sync replica's log starts at the latest (Kafka's low watermark); a
    /// follower that has not said counts as starting at 0.
    pub fn low_watermark(&self, leader_log_start: u64) -> u64 {
        self.state
            .isr
            .iter()
            .filter(|&&r| r != self.me)
            .map(|r| self.followers.get(r).and_then(|p| p.log_start).unwrap_or(0))
            .fold(leader_log_start, u64::min)
    }

    pub fn isr_len(&self) -> usize {
        self.state.isr.len()
    }

    /// The in-sync set to ask the controller for, if it should change: followers that were
    /// not caught up for `lag_max_ms` leave, and followers that reached the high watermark
    /// (and this epoch's start) join. Nothing while an earlier request is unanswered.
    pub fn isr_change(&mut self, hw: u64, lag_max_ms: i64, now_ms: i64) -> Option<Vec<i32>> {
        if let Some((_, sent)) = &self.pending {
            if now_ms - sent < ISR_RETRY_MS {
                return None;
            }
        }
        let keep = |r: &i32| {
            *r == self.me
                || self
                    .followers
                    .get(r)
                    .is_some_and(|p| now_ms - p.caught_up_ms <= lag_max_ms)
        };
        let join = |r: &i32| {
            self.followers.get(r).is_some_and(|p| {
                let recent = p
                    .last_fetch
                    .is_some_and(|(_, at)| now_ms - at <= JOIN_FETCH_AGE_MS);
                recent
                    && p.log_end
                        .is_some_and(|end| end >= hw && end >= self.epoch_start)
            })
        };
        let isr: Vec<i32> = self
            .state
            .replicas
            .iter()
            .copied()
            .filter(|r| {
                if self.state.isr.contains(r) {
                    keep(r)
                } else {
                    join(r)
                }
            })
            .collect();
        let mut current = self.state.isr.clone();
        current.sort_unstable();
        let mut wanted = isr.clone();
        wanted.sort_unstable();
        if wanted == current {
            self.pending = None;
            return None;
        }
        self.pending = Some((isr.clone(), now_ms));
        Some(isr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leadership(isr: &[i32]) -> Leadership {
        Leadership {
            leader_epoch: 3,
            partition_epoch: 7,
            replicas: vec![1, 2, 3],
            isr: isr.to_vec(),
            min_insync: 2,
        }
    }

    #[test]
    fn the_low_watermark_waits_for_every_in_sync_follower() {
        let mut l = LeaderState::new(1, leadership(&[1, 2]), 0, 0);
        assert_eq!(l.low_watermark(50), 0, "follower 2 has not said");
        l.on_log_start(2, 30);
        l.on_log_start(3, 10); // not in sync: not waited for
        assert_eq!(l.low_watermark(50), 30);
        l.on_log_start(2, 50);
        assert_eq!(l.low_watermark(50), 50);
    }

    #[test]
    fn a_stale_in_sync_set_is_ignored() {
        let mut l = LeaderState::new(1, leadership(&[1, 2, 3]), 0, 0);
        let mut newer = leadership(&[1, 2, 3]);
        newer.partition_epoch = 8;
        l.update(newer, 0);
        // The epoch the leader started with, arriving late.
        l.update(leadership(&[1, 3]), 0);
        assert_eq!(l.state.isr, vec![1, 2, 3]);
        l.on_fetch(2, 5, 10, 1);
        l.on_fetch(3, 10, 10, 1);
        assert_eq!(l.high_watermark(10, 0), 5, "follower 2 still holds it back");
    }

    #[test]
    fn high_watermark_is_the_slowest_in_sync_replica() {
        let mut l = LeaderState::new(1, leadership(&[1, 2, 3]), 10, 0);
        // Nobody fetched yet: it stays where it was.
        assert_eq!(l.high_watermark(50, 10), 10);
        l.on_fetch(2, 40, 50, 1);
        assert_eq!(l.high_watermark(50, 10), 10, "3 has not fetched");
        l.on_fetch(3, 30, 50, 1);
        assert_eq!(l.high_watermark(50, 10), 30);
        // The leader's own durable end bounds it too.
        l.on_fetch(3, 50, 50, 2);
        assert_eq!(l.high_watermark(45, 30), 40);
        // Never backwards.
        assert_eq!(l.high_watermark(20, 30), 30);
        // Out of the in-sync set, 3 no longer holds it back.
        l.update(leadership(&[1, 2]), 3);
        l.on_fetch(3, 0, 50, 3);
        assert_eq!(l.high_watermark(50, 30), 40);
    }

    #[test]
    fn a_follower_claiming_more_than_the_log_counts_as_at_its_end() {
        let mut l = LeaderState::new(1, leadership(&[1, 2, 3]), 0, 0);
        l.on_fetch(2, 1_000, 50, 1);
        l.on_fetch(3, u64::MAX, 50, 1);
        // Even with a durable end reported past the log end, the claims count as 50.
        assert_eq!(l.high_watermark(100, 0), 50);
    }

    #[test]
    fn laggards_leave_and_caught_up_followers_join() {
        let mut l = LeaderState::new(1, leadership(&[1, 2, 3]), 0, 0);
        l.on_fetch(2, 100, 100, 1_000);
        l.on_fetch(3, 10, 100, 1_000);
        assert_eq!(l.isr_change(10, 30_000, 20_000), None);
        let change = l.isr_change(10, 30_000, 31_000);
        assert_eq!(change, Some(vec![1, 2]));
        // Asked once; not again until the answer or the retry time.
        assert_eq!(l.isr_change(10, 30_000, 32_000), None);
        l.on_fetch(2, 100, 100, 35_000);
        assert_eq!(l.isr_change(10, 30_000, 36_000), Some(vec![1, 2]));
        let mut shrunk = leadership(&[1, 2]);
        shrunk.partition_epoch = 8;
        l.update(shrunk, 40_000);
        // 3 catches up to the high watermark: it joins again, but only while it fetches.
        l.on_fetch(3, 100, 100, 41_000);
        l.on_fetch(2, 100, 100, 41_000);
        assert_eq!(l.isr_change(100, 30_000, 44_000), None);
        assert_eq!(l.isr_change(100, 30_000, 41_500), Some(vec![1, 2, 3]));
    }

    #[test]
    fn a_follower_below_the_epoch_start_does_not_join() {
        let mut l = LeaderState::new(1, leadership(&[1, 2]), 50, 0);
        l.on_fetch(2, 60, 60, 1);
        l.on_fetch(3, 40, 60, 1);
        assert_eq!(l.isr_change(40, 30_000, 2), None);
    }

    #[test]
    fn caught_up_as_of_the_previous_fetch() {
        let mut l = LeaderState::new(1, leadership(&[1, 2, 3]), 0, 0);
        l.on_fetch(2, 0, 100, 10_000);
        // It reached what the log end was at its previous fetch: caught up as of then.
        l.on_fetch(2, 100, 200, 35_000);
        l.on_fetch(3, 200, 200, 35_000);
        assert_eq!(l.isr_change(100, 30_000, 39_000), None);
        assert_eq!(l.isr_change(100, 30_000, 41_000), Some(vec![1, 3]));
    }
}
