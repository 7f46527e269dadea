//! Opening a partition log, which is also crash recovery.
//!
//! sled gives back a consistent prefix of the writes after a `kill -9`, and the log writes in
//! an order that keeps every prefix meaningful (epoch entry before its batch, segment header
//! before the segment's first batch, log start before the segments it frees, removals from
//! the end backwards and from the front forwards). Open still trusts nothing it cannot check
//! cheaply: the segments are the headers plus the first batch if it lies below them, a batch
//! marked as a segment's first starts a segment even if its header is gone, sealed stats are
//! checked against each segment's first and last key, the active segment is rescanned from
//! the last checkpoint, and a gap anywhere truncates the log there, so the log handed out
//! never has a hole.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::epoch_cache::EpochCache;
use crate::keys::{self, Trees};
use crate::open_set::OpenGuard;
use crate::partition::{Checkpoint, LogConfig, PartitionLog};
use crate::producer_state::ProducerState;
use crate::segment::{Segment, SegmentMeta, SegmentStats, Span};
use crate::Error;

impl PartitionLog {
    /// Opens (creating if needed) and recovers a partition's log.
    ///
    /// The high watermark is the stored one clamped to the recovered log: a replica may hold
    /// records its leader never committed, and those stay hidden until a leader's high
    /// watermark covers them.
    pub(crate) fn open(
        trees: Trees,
        id: u64,
        partition: i32,
        config: LogConfig,
        guard: OpenGuard,
    ) -> Result<PartitionLog, Error> {
        let now = wall_clock_ms();
        let mut log = PartitionLog {
            trees,
            id,
            partition,
            config,
            segments: Vec::new(),
            log_start: 0,
            high_watermark: 0,
            epochs: EpochCache::default(),
            producers: ProducerState::default(),
            unchecked_bytes: 0,
            _guard: guard,
        };
        let meta = log.trees.meta.clone();

        // The segments are the headers, plus the first batch if it lies below every header.
        let mut found: BTreeMap<u64, Option<SegmentMeta>> = BTreeMap::new();
        for item in meta.scan_prefix(keys::meta(id, keys::SEGMENT)) {
            let (k, v) = item?;
            found.insert(keys::parse_meta_at(&k)?, decode(&v));
        }
        if let Some(first) = log.all_batches().first_offset()? {
            if found
                .first_key_value()
                .is_none_or(|(&base, _)| first < base)
            {
                found.insert(first, None);
            }
        }
        let mut metas = Vec::with_capacity(found.len());
        for (base, segment_meta) in found {
            let created_ms = segment_meta.map_or(now, |m| m.created_ms);
            log.segments.push(Segment::new(base, created_ms));
            metas.push(segment_meta);
        }

        let persisted_start = read_u64(&meta, &keys::meta(id, keys::LOG_START))?;
        let checkpoint: Option<Checkpoint<'static>> = meta
            .get(keys::meta(id, keys::CHECKPOINT))?
            .and_then(|v| decode(&v));
        let epochs: Option<EpochCache> = meta
            .get(keys::meta(id, keys::EPOCHS))?
            .and_then(|v| decode(&v));
        if log.segments.is_empty() {
            let segment = log.create_segment(persisted_start.unwrap_or(0), now)?;
            log.segments.push(segment);
            metas.push(Some(SegmentMeta {
                created_ms: now,
                sealed: None,
            }));
        }
        let checkpoint = log.recover_segments(&mut metas, checkpoint)?;
        log.recover_state(persisted_start, checkpoint, epochs)?;
        Ok(log)
    }

    /// Rebuilds every segment's stats, cutting the log at the first gap. Returns the
    /// checkpoint if it was used for the active segment (so its producer state is valid).
    fn recover_segments(
        &mut self,
        metas: &mut Vec<Option<SegmentMeta>>,
        checkpoint: Option<Checkpoint<'static>>,
    ) -> Result<Option<Checkpoint<'static>>, Error> {
        // Empty segments at the front (a crash during retention) hold nothing: drop them.
        while self.segments.len() > 1 && self.span(0).is_empty()? {
            self.drop_segment(0)?;
            metas.remove(0);
        }
        let mut used_checkpoint = None;
        let mut checkpoint = checkpoint;
        let mut i = 0;
        while i < self.segments.len() {
            let is_last = i + 1 == self.segments.len();
            let sealed = metas[i].and_then(|m| m.sealed).filter(|_| !is_last);
            let trusted = match sealed {
                Some(stats) => self.span(i).stats_match(&stats)?.then_some(stats),
                None => None,
            };
            let mut broken_at = None;
            match trusted {
                Some(stats) => self.segments[i].stats = stats,
                None => {
                    let base = self.segments[i].base_offset;
                    let mut start = (SegmentStats::empty(base), base);
                    if is_last {
                        if let Some(cp) = checkpoint.take() {
                            if checkpoint_fits(self, &cp)? {
                                start = (cp.stats, cp.offset);
                                used_checkpoint = Some(cp);
                            }
                        }
                    }
                    let outcome = self.span(i).scan(start.0, start.1)?;
                    broken_at = outcome.broken_at;
                    self.segments[i].stats = outcome.stats;
                    // Stats are now known; write them so the next open need not scan.
                    metas[i] = None;
                    if let Some((base, created_ms)) = outcome.next_segment {
                        // A segment whose header was lost; it is scanned next.
                        self.segments.insert(i + 1, Segment::new(base, created_ms));
                        metas.insert(i + 1, None);
                    }
                }
            }
            if let Some(at) = broken_at {
                tracing::warn!(
                    partition = self.partition,
                    offset = at,
                    "truncating log at a gap"
                );
                self.span(i).remove_from(at)?;
                self.drop_after(i)?;
                metas.truncate(i + 1);
                break;
            }
            if let Some(next) = self.segments.get(i + 1) {
                let end = self.segments[i].stats.end_offset;
                if end != next.base_offset {
                    tracing::warn!(
                        partition = self.partition,
                        end,
                        next = next.base_offset,
                        "gap between segments; truncating the log"
                    );
                    self.drop_after(i)?;
                    metas.truncate(i + 1);
                    break;
                }
            }
            i += 1;
        }
        let last = self.active_index();
        for (i, m) in metas.iter().enumerate() {
            let sealed = i != last;
            if m.is_none() || m.is_some_and(|m| m.sealed.is_some() != sealed) {
                self.write_segment_meta(i, sealed)?;
            }
        }
        Ok(used_checkpoint)
    }

    /// Log start, high watermark, leader epochs and producer state, once the segments are known.
    fn recover_state(
        &mut self,
        persisted_start: Option<u64>,
        checkpoint: Option<Checkpoint<'static>>,
        epochs: Option<EpochCache>,
    ) -> Result<(), Error> {
        let log_end = self.log_end_offset();
        let first_base = self.segments[0].base_offset;
        self.log_start = persisted_start.unwrap_or(0).max(first_base).min(log_end);
        // Segments a crash left behind below the log start.
        while self.segments.len() > 1 && self.segments[1].base_offset <= self.log_start {
            self.drop_segment(0)?;
        }
        self.persist_log_start()?;

        let (producers, producers_from) = match checkpoint {
            Some(cp) => (cp.producers.into_owned(), cp.offset),
            None => self.latest_snapshot()?,
        };
        self.producers = producers;
        let epochs_from = match epochs {
            Some(mut epochs) => {
                epochs.truncate_from_end(log_end);
                self.epochs = epochs;
                producers_from
            }
            None => self.segments[0].base_offset,
        };
        self.replay(epochs_from.min(producers_from), producers_from)?;
        self.epochs.truncate_from_start(self.log_start);
        self.persist_epochs()?;

        // A replica may hold records past the high watermark that its leader never committed:
        // they stay hidden until a leader's high watermark covers them. A log without a stored
        // high watermark (from before replication) shows everything it recovered.
        let stored = read_u64(&self.trees.meta, &keys::meta(self.id, keys::HIGH_WATERMARK))?;
        let hw = stored.map_or(log_end, |hw| hw.clamp(self.log_start, log_end));
        self.persist_high_watermark(hw)?;
        self.write_checkpoint(None)?;
        Ok(())
    }

    /// Drops every segment after `index`, newest first.
    pub(crate) fn drop_after(&mut self, index: usize) -> Result<(), Error> {
        while self.segments.len() > index + 1 {
            self.drop_segment(self.segments.len() - 1)?;
        }
        Ok(())
    }

    /// The newest readable producer snapshot among the segments, and the offset it is as of;
    /// empty state from the first segment if there is none.
    pub(crate) fn latest_snapshot(&self) -> Result<(ProducerState, u64), Error> {
        for segment in self.segments.iter().rev() {
            let key = keys::meta_at(self.id, keys::SNAPSHOT, segment.base_offset);
            if let Some(state) = self.trees.meta.get(key)?.and_then(|v| decode(&v)) {
                return Ok((state, segment.base_offset));
            }
        }
        Ok((ProducerState::default(), self.segments[0].base_offset))
    }

    /// Replays batch prefixes from `from`: leader epochs for all of them, producer state for
    /// those at or after `producers_from`.
    pub(crate) fn replay(&mut self, from: u64, producers_from: u64) -> Result<(), Error> {
        let start = self.segments[self.segment_index(from)].base_offset;
        let upto = self.log_end_offset();
        // Built from the fields, not `all_batches`, so the loop can update the other fields.
        let span = Span {
            tree: &self.trees.batches,
            id: self.id,
            start: 0,
            end: u64::MAX,
        };
        for batch in span.batches_from(from.max(start)) {
            let batch = batch?;
            if batch.base_offset >= upto {
                break;
            }
            let meta = batch.prefix.meta;
            self.epochs.assign(meta.leader_epoch, batch.base_offset);
            if batch.base_offset >= producers_from {
                self.producers
                    .record(batch.base_offset, &meta, batch.prefix.append_ms);
            }
        }
        Ok(())
    }
}

/// The checkpoint describes the active segment exactly up to its offset: same segment, and the
/// batch before the checkpoint offset ends right there.
fn checkpoint_fits(log: &PartitionLog, cp: &Checkpoint<'_>) -> Result<bool, Error> {
    let segment = log.active();
    if cp.segment_base != segment.base_offset
        || cp.stats.end_offset != cp.offset
        || cp.offset < segment.base_offset
    {
        return Ok(false);
    }
    if cp.offset == segment.base_offset {
        return Ok(cp.stats.batch_count == 0);
    }
    Ok(log
        .span(log.active_index())
        .batch_containing(cp.offset - 1)
        .ok()
        .flatten()
        .is_some_and(|b| b.end_offset() == cp.offset))
}

/// A meta value that fails to decode counts as missing: recovery rebuilds it from the log.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    bincode::deserialize(bytes).ok()
}

fn read_u64(tree: &sled::Tree, key: &[u8]) -> Result<Option<u64>, Error> {
    Ok(tree
        .get(key)?
        .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        .map(u64::from_be_bytes))
}

pub(crate) fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::partition::CHECKPOINT_BYTES;
    use crate::{BatchMeta, ProducerCheck, Store};

    const TOPIC: [u8; 16] = [7; 16];

    /// 100-byte segments, no age limit, no retention.
    pub(crate) fn small() -> LogConfig {
        LogConfig {
            segment_bytes: 100,
            segment_ms: -1,
            retention_ms: -1,
            retention_bytes: -1,
        }
    }

    fn meta(seq: i32, epoch: i32) -> BatchMeta {
        BatchMeta {
            last_offset_delta: 1,
            max_timestamp: 10 + i64::from(seq),
            producer_id: 3,
            producer_epoch: 0,
            base_sequence: seq,
            leader_epoch: epoch,
        }
    }

    /// Appends `n` two-record batches of `len` bytes from producer 3; epochs go up every 3.
    fn fill(log: &mut PartitionLog, n: i32, len: usize) {
        for _ in 0..n {
            let end = log.log_end_offset();
            let seq = i32::try_from(end).unwrap();
            let m = meta(seq, seq / 6);
            log.append(end, &m, &vec![b'x'; len], 0).unwrap();
        }
    }

    /// A store in a temporary directory, and the config the test partition is opened with.
    struct Disk {
        _dir: tempfile::TempDir,
        store: Store,
        config: LogConfig,
    }

    impl Disk {
        fn reopen(&self) -> PartitionLog {
            self.store.open_partition(TOPIC, 0, self.config).unwrap()
        }
    }

    /// The test partition in a fresh store, filled with `n` batches of `len` bytes.
    fn filled(config: LogConfig, n: i32, len: usize) -> (Disk, PartitionLog) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let disk = Disk {
            _dir: dir,
            store,
            config,
        };
        let mut log = disk.reopen();
        fill(&mut log, n, len);
        (disk, log)
    }

    /// Everything recovery must get back, except segment creation times.
    #[allow(clippy::type_complexity)]
    fn state(
        log: &PartitionLog,
    ) -> (
        u64,
        u64,
        Vec<(u64, u64, u64, u64, i64)>,
        EpochCache,
        ProducerState,
    ) {
        let segs = log
            .segments()
            .iter()
            .map(|s| {
                (
                    s.base_offset,
                    s.end_offset,
                    s.size_bytes,
                    s.batch_count,
                    s.max_timestamp,
                )
            })
            .collect();
        (
            log.log_start_offset(),
            log.log_end_offset(),
            segs,
            log.epochs.clone(),
            log.producers.clone(),
        )
    }

    /// The partition's keys, to damage them behind the log's back.
    struct Raw {
        id: u64,
        trees: Trees,
    }

    impl Raw {
        fn of(log: &PartitionLog) -> Raw {
            Raw {
                id: log.id,
                trees: log.trees.clone(),
            }
        }

        fn meta(&self, tag: u8) -> [u8; 9] {
            keys::meta(self.id, tag)
        }

        /// The meta keys of every segment header or snapshot.
        fn each_segment(&self, tag: u8) -> Vec<sled::IVec> {
            let keys = self.trees.meta.scan_prefix(self.meta(tag)).keys();
            keys.map(Result::unwrap).collect()
        }

        fn remove_each_segment(&self, tag: u8) {
            for k in self.each_segment(tag) {
                self.trees.meta.remove(k).unwrap();
            }
        }

        fn remove_header(&self, base: u64) {
            let key = keys::meta_at(self.id, keys::SEGMENT, base);
            self.trees.meta.remove(key).unwrap().unwrap();
        }

        fn set_log_start(&self, offset: u64) {
            let key = self.meta(keys::LOG_START);
            self.trees.meta.insert(key, &offset.to_be_bytes()).unwrap();
        }

        fn remove_batch(&self, offset: u64) {
            let key = keys::batch(self.id, offset);
            self.trees.batches.remove(key).unwrap().unwrap();
        }

        fn has_batch(&self, offset: u64) -> bool {
            let key = keys::batch(self.id, offset);
            self.trees.batches.contains_key(key).unwrap()
        }
    }

    #[test]
    fn rebuilds_everything_without_meta_hints() {
        let (disk, log) = filled(small(), 13, 40);
        let before = state(&log);
        assert!(before.2.len() > 3 && before.3.latest() == Some(4));
        let raw = Raw::of(&log);
        drop(log);
        for tag in [keys::CHECKPOINT, keys::EPOCHS, keys::LOG_START] {
            raw.trees.meta.remove(raw.meta(tag)).unwrap().unwrap();
        }
        raw.remove_each_segment(keys::SEGMENT);
        raw.remove_each_segment(keys::SNAPSHOT);
        let log = disk.reopen();
        assert_eq!(state(&log), before);
        // And the rebuilt hints are written back.
        let meta_tree = &raw.trees.meta;
        assert!(meta_tree.get(raw.meta(keys::CHECKPOINT)).unwrap().is_some());
        assert_eq!(raw.each_segment(keys::SEGMENT).len(), before.2.len());
    }

    #[test]
    fn corrupt_meta_values_count_as_missing() {
        let (disk, log) = filled(small(), 7, 40);
        let before = state(&log);
        let raw = Raw::of(&log);
        drop(log);
        for tag in [keys::CHECKPOINT, keys::EPOCHS, keys::LOG_START] {
            let junk = b"junk".as_slice();
            raw.trees.meta.insert(raw.meta(tag), junk).unwrap();
        }
        for k in raw.each_segment(keys::SEGMENT) {
            raw.trees.meta.insert(k, b"\xff".as_slice()).unwrap();
        }
        let log = disk.reopen();
        assert_eq!(state(&log), before);
    }

    #[test]
    fn resumes_from_a_mid_segment_checkpoint() {
        let big = usize::try_from(CHECKPOINT_BYTES / 2).unwrap();
        let (disk, mut log) = filled(LogConfig::default(), 3, big);
        fill(&mut log, 2, 10);
        let before = state(&log);
        let raw = Raw::of(&log);
        drop(log);
        let stored = raw.trees.meta.get(raw.meta(keys::CHECKPOINT)).unwrap();
        let cp: Checkpoint<'static> = decode(&stored.unwrap()).unwrap();
        // Written after the second big batch, inside the only segment.
        assert_eq!(
            (cp.segment_base, cp.offset, cp.stats.batch_count),
            (0, 4, 2)
        );
        let log = disk.reopen();
        assert_eq!(state(&log), before);
        assert_eq!(log.segments().len(), 1);
    }

    #[test]
    fn a_gap_in_the_active_segment_truncates_there() {
        let (disk, log) = filled(LogConfig::default(), 6, 10);
        let raw = Raw::of(&log);
        drop(log);
        raw.remove_batch(6);
        let log = disk.reopen();
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(log.read(0, usize::MAX, 100).unwrap().len(), 30);
        assert!(!raw.has_batch(8));
        // The producer state ends with the last batch still in the log.
        assert_eq!(
            log.check_append(&meta(4, 0)).unwrap(),
            ProducerCheck::Duplicate {
                base_offset: 4,
                last_offset: 5
            }
        );
        assert_eq!(
            log.check_append(&meta(6, 1)).unwrap(),
            ProducerCheck::Append { base_offset: 6 }
        );
    }

    #[test]
    fn a_missing_segment_truncates_the_log_before_it() {
        let (disk, log) = filled(small(), 10, 40);
        let bases: Vec<u64> = log.segments().iter().map(|s| s.base_offset).collect();
        assert_eq!(bases, vec![0, 4, 8, 12, 16]);
        let raw = Raw::of(&log);
        drop(log);
        // Segment 8 goes entirely: its header and both its batches.
        raw.remove_header(8);
        raw.remove_batch(8);
        raw.remove_batch(10);
        let log = disk.reopen();
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(log.segments().len(), 2);
        assert!(!raw.has_batch(12) && !raw.has_batch(18));
        assert_eq!(log.latest_epoch(), Some(1));
        // Never committed by a leader: the recovered records stay hidden until one does.
        assert_eq!(log.high_watermark(), 0);
    }

    #[test]
    fn leftovers_below_the_log_start_are_dropped() {
        let (disk, log) = filled(small(), 10, 40);
        let raw = Raw::of(&log);
        drop(log);
        // As if retention persisted the new start and crashed before dropping the segments.
        raw.set_log_start(9);
        let log = disk.reopen();
        assert_eq!(log.log_start_offset(), 9);
        assert_eq!(log.segments()[0].base_offset, 8);
        assert_eq!(log.log_end_offset(), 20);
        assert!(!raw.has_batch(6));
    }

    #[test]
    fn a_checkpoint_ahead_of_the_log_is_ignored() {
        let (disk, mut log) = filled(LogConfig::default(), 4, 10);
        log.write_checkpoint(None).unwrap();
        let raw = Raw::of(&log);
        drop(log);
        raw.remove_batch(6);
        let log = disk.reopen();
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(log.segments()[0].batch_count, 3);
        assert_eq!(
            log.check_append(&meta(6, 1)).unwrap(),
            ProducerCheck::Append { base_offset: 6 }
        );
    }

    #[test]
    fn a_retention_cut_short_leaves_no_trace() {
        let (disk, mut log) = filled(small(), 10, 40);
        let raw = Raw::of(&log);
        log.set_high_watermark(20).unwrap();
        log.delete_records_before(9).unwrap();
        assert_eq!(log.segments()[0].base_offset, 8);
        drop(log);
        // As if DeleteRecords(13) crashed while dropping segment 8: the new start and the
        // header removal made it, and its oldest batch went, but not the one at 10.
        raw.set_log_start(13);
        raw.remove_header(8);
        raw.remove_batch(8);
        let log = disk.reopen();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (13, 20));
        assert_eq!(log.segments()[0].base_offset, 12);
        assert!(!raw.has_batch(10));
        assert_eq!(log.read(13, usize::MAX, 20).unwrap().len(), 4 * 40);
    }
}
