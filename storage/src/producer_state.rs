//! Idempotent-producer state: per producer id, its epoch and the last five batches it wrote,
//! which is Kafka's deduplication window.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::batch::{add_sequence, BatchMeta};
use crate::Error;

/// How many recent batches per producer are remembered for deduplication (Kafka's value; a
/// client keeps at most five requests in flight).
pub(crate) const DEDUP_WINDOW: usize = 5;

/// A producer whose last append is this old is forgotten (Kafka's `producer.id.expiration.ms`
/// default), so the state does not grow forever. Its next batch is accepted at any sequence.
pub(crate) const PRODUCER_EXPIRY_MS: i64 = 24 * 60 * 60 * 1000;

/// Outcome of checking a batch against the producer state before appending it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    /// Append it at this base offset (== log end offset).
    Append { base_offset: u64 },
    /// The same producer batch (pid, epoch, base_sequence, last sequence) is one of the last 5
    /// this producer appended: answer with the original offsets, write nothing.
    Duplicate { base_offset: u64, last_offset: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct BatchRecord {
    first_seq: i32,
    last_seq: i32,
    base_offset: u64,
    last_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchRecord>,
    last_append_ms: i64,
}

/// Every known producer of one partition. A BTreeMap so snapshots serialize deterministically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ProducerState {
    producers: BTreeMap<i64, ProducerEntry>,
}

impl ProducerState {
    /// Kafka's rules for a batch about to be appended at `log_end`.
    pub fn check(&self, meta: &BatchMeta, log_end: u64) -> Result<ProducerCheck, Error> {
        let append = Ok(ProducerCheck::Append {
            base_offset: log_end,
        });
        if meta.producer_id < 0 {
            return append;
        }
        // Unknown (new or expired) producer: any sequence is accepted.
        let Some(entry) = self.producers.get(&meta.producer_id) else {
            return append;
        };
        if meta.producer_epoch < entry.epoch {
            return Err(Error::InvalidProducerEpoch {
                producer_id: meta.producer_id,
                current: entry.epoch,
                got: meta.producer_epoch,
            });
        }
        if meta.base_sequence < 0 {
            return append;
        }
        if meta.producer_epoch > entry.epoch {
            // A bumped epoch restarts the sequence.
            if meta.base_sequence != 0 {
                return Err(Error::OutOfOrderSequence {
                    producer_id: meta.producer_id,
                    expected: 0,
                    got: meta.base_sequence,
                });
            }
            return append;
        }
        let last_seq = meta.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == meta.base_sequence && b.last_seq == last_seq)
        {
            return Ok(ProducerCheck::Duplicate {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
            });
        }
        if let Some(last) = entry.batches.back() {
            let expected = add_sequence(last.last_seq, 1);
            if meta.base_sequence != expected {
                return Err(Error::OutOfOrderSequence {
                    producer_id: meta.producer_id,
                    expected,
                    got: meta.base_sequence,
                });
            }
        }
        append
    }

    /// Records an appended batch without validating it: used after `check` on the append path
    /// and to replay the log on recovery.
    pub fn record(&mut self, base_offset: u64, meta: &BatchMeta, append_ms: i64) {
        if meta.producer_id < 0 {
            return;
        }
        let entry = self
            .producers
            .entry(meta.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: meta.producer_epoch,
                batches: VecDeque::new(),
                last_append_ms: append_ms,
            });
        if entry.epoch != meta.producer_epoch {
            entry.epoch = meta.producer_epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = entry.last_append_ms.max(append_ms);
        if meta.base_sequence >= 0 {
            if entry.batches.len() == DEDUP_WINDOW {
                entry.batches.pop_front();
            }
            entry.batches.push_back(BatchRecord {
                first_seq: meta.base_sequence,
                last_seq: meta.last_sequence(),
                base_offset,
                last_offset: meta.last_offset(base_offset),
            });
        }
    }

    /// Forgets producers idle for longer than [`PRODUCER_EXPIRY_MS`].
    pub fn expire(&mut self, now_ms: i64) {
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_append_ms) < PRODUCER_EXPIRY_MS);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchMeta {
        BatchMeta {
            last_offset_delta: records - 1,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            leader_epoch: 0,
        }
    }

    #[test]
    fn window_keeps_the_last_five() {
        let mut s = ProducerState::default();
        for i in 0..7 {
            s.record(i * 2, &meta(1, 0, (i * 2) as i32, 2), 0);
        }
        // Batches 0 and 1 fell out of the window; 2..=6 are still duplicates.
        assert!(matches!(
            s.check(&meta(1, 0, 2, 2), 14),
            Err(Error::OutOfOrderSequence { expected: 14, .. })
        ));
        assert_eq!(
            s.check(&meta(1, 0, 4, 2), 14).unwrap(),
            ProducerCheck::Duplicate {
                base_offset: 4,
                last_offset: 5
            }
        );
    }

    #[test]
    fn sequence_wraps_to_zero() {
        let mut s = ProducerState::default();
        s.record(0, &meta(1, 0, i32::MAX - 1, 2), 0);
        assert_eq!(
            s.check(&meta(1, 0, 0, 1), 2).unwrap(),
            ProducerCheck::Append { base_offset: 2 }
        );
    }

    #[test]
    fn idle_producers_expire() {
        let mut s = ProducerState::default();
        s.record(0, &meta(1, 0, 0, 1), 0);
        s.record(1, &meta(2, 0, 0, 1), PRODUCER_EXPIRY_MS);
        s.expire(PRODUCER_EXPIRY_MS + 1);
        assert_eq!(s.len(), 1);
        // Producer 1 is unknown again: any sequence goes.
        assert!(s.check(&meta(1, 0, 40, 1), 2).is_ok());
    }
}
