//! Opening a partition log, which is also crash recovery.
//!
//! sled gives back a consistent prefix of the writes after a `kill -9`, and the log writes in
//! an order that keeps every prefix meaningful (epoch entry before its batch, segment meta
//! before the segment's first batch, log start before the segments it frees, removals from the
//! end backwards). Open still trusts nothing it cannot check cheaply: the segment list is the
//! union of the meta entries and the trees that exist, sealed stats are checked against each
//! tree's first and last key, the active segment is rescanned from the last checkpoint, and a
//! gap anywhere truncates the log there, so the log handed out never has a hole.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;

use crate::epoch_cache::EpochCache;
use crate::keys::{self, TreeKind};
use crate::open_set::OpenGuard;
use crate::partition::{Checkpoint, LogConfig, PartitionLog};
use crate::producer_state::ProducerState;
use crate::segment::{Segment, SegmentMeta, SegmentStats};
use crate::Error;

impl PartitionLog {
    /// Opens (creating if needed) and recovers a partition's log.
    ///
    /// The high watermark is set to the recovered log end: on a single node everything sled
    /// recovered is on disk and consistent, and the actor only ever acknowledged offsets it had
    /// flushed, so nothing a consumer could see is later taken back. (The persisted high
    /// watermark is kept for when replication needs min(persisted, log end).)
    pub(crate) fn open(
        db: sled::Db,
        topic_id: [u8; 16],
        partition: i32,
        config: LogConfig,
        guard: OpenGuard,
    ) -> Result<PartitionLog, Error> {
        let meta = db.open_tree(keys::meta_tree(topic_id, partition))?;
        let now = wall_clock_ms();

        // The segments are whatever has a meta entry or a tree.
        let mut found: BTreeMap<u64, Option<SegmentMeta>> = BTreeMap::new();
        for name in db.tree_names() {
            if let Some((t, p, TreeKind::Segment(base))) = keys::parse_tree_name(&name) {
                if (t, p) == (topic_id, partition) {
                    found.insert(base, None);
                }
            }
        }
        for item in meta.scan_prefix(keys::SEGMENT_META) {
            let (k, v) = item?;
            if let Ok(base) = keys::parse_tagged(keys::SEGMENT_META, &k) {
                found.insert(base, decode(&v));
            }
        }
        let mut segments = Vec::with_capacity(found.len());
        let mut metas = Vec::with_capacity(found.len());
        for (base, segment_meta) in found {
            let tree = db.open_tree(keys::segment_tree(topic_id, partition, base))?;
            segments.push(Segment {
                base_offset: base,
                tree,
                created_ms: segment_meta.map_or(now, |m| m.created_ms),
                stats: SegmentStats::empty(base),
            });
            metas.push(segment_meta);
        }

        let persisted_start = read_u64(&meta, keys::LOG_START)?;
        let checkpoint: Option<Checkpoint<'static>> =
            meta.get(keys::CHECKPOINT)?.and_then(|v| decode(&v));
        let epochs: Option<EpochCache> = meta.get(keys::EPOCHS)?.and_then(|v| decode(&v));

        let mut log = PartitionLog {
            db,
            topic_id,
            partition,
            meta,
            config,
            segments,
            log_start: 0,
            high_watermark: 0,
            epochs: EpochCache::default(),
            producers: ProducerState::default(),
            unchecked_bytes: 0,
            _guard: guard,
        };
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
        while self.segments.len() > 1 && self.segments[0].tree.is_empty() {
            self.drop_segment(0)?;
            metas.remove(0);
        }
        let mut used_checkpoint = None;
        let mut checkpoint = checkpoint;
        let count = self.segments.len();
        for i in 0..count {
            let is_last = i + 1 == count;
            let sealed = metas[i].and_then(|m| m.sealed).filter(|_| !is_last);
            let trusted = match sealed {
                Some(stats) => self.segments[i].stats_match(&stats)?.then_some(stats),
                None => None,
            };
            let mut broken_at = None;
            match trusted {
                Some(stats) => self.segments[i].stats = stats,
                None => {
                    let segment = &self.segments[i];
                    let start = match checkpoint.take() {
                        Some(cp) if is_last && checkpoint_fits(segment, &cp)? => {
                            let start = (cp.stats, cp.offset);
                            used_checkpoint = Some(cp);
                            start
                        }
                        _ => (
                            SegmentStats::empty(segment.base_offset),
                            segment.base_offset,
                        ),
                    };
                    let outcome = segment.scan(start.0, start.1)?;
                    broken_at = outcome.broken_at;
                    self.segments[i].stats = outcome.stats;
                    // Stats are now known; write them so the next open need not scan.
                    metas[i] = None;
                }
            }
            if let Some(at) = broken_at {
                tracing::warn!(
                    partition = self.partition,
                    offset = at,
                    "truncating log at a gap"
                );
                self.segments[i].remove_from(at)?;
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
        let stored = read_u64(&self.meta, keys::HIGH_WATERMARK)?;
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
            let key = keys::tagged(keys::SNAPSHOT, segment.base_offset);
            if let Some(state) = self.meta.get(key)?.and_then(|v| decode(&v)) {
                return Ok((state, segment.base_offset));
            }
        }
        Ok((ProducerState::default(), self.segments[0].base_offset))
    }

    /// Replays batch prefixes from `from`: leader epochs for all of them, producer state for
    /// those at or after `producers_from`.
    pub(crate) fn replay(&mut self, from: u64, producers_from: u64) -> Result<(), Error> {
        let first = self.segment_index(from);
        for segment in &self.segments[first..] {
            for batch in segment.batches_from(from) {
                let batch = batch?;
                let meta = batch.prefix.meta;
                self.epochs.assign(meta.leader_epoch, batch.base_offset);
                if batch.base_offset >= producers_from {
                    self.producers
                        .record(batch.base_offset, &meta, batch.prefix.append_ms);
                }
            }
        }
        Ok(())
    }
}

/// The checkpoint describes this segment exactly up to its offset: same segment, and the batch
/// before the checkpoint offset ends right there.
fn checkpoint_fits(segment: &Segment, cp: &Checkpoint<'_>) -> Result<bool, Error> {
    if cp.segment_base != segment.base_offset
        || cp.stats.end_offset != cp.offset
        || cp.offset < segment.base_offset
    {
        return Ok(false);
    }
    if cp.offset == segment.base_offset {
        return Ok(cp.stats.batch_count == 0);
    }
    Ok(segment
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
mod tests {
    use super::*;
    use crate::partition::CHECKPOINT_BYTES;
    use crate::{BatchMeta, ProducerCheck, Store};

    const TOPIC: [u8; 16] = [7; 16];

    fn small() -> LogConfig {
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

    fn remove_prefix(tree: &sled::Tree, prefix: &[u8]) {
        for k in tree.scan_prefix(prefix).keys() {
            tree.remove(k.unwrap()).unwrap();
        }
    }

    #[test]
    fn rebuilds_everything_without_meta_hints() {
        let (disk, log) = filled(small(), 13, 40);
        let before = state(&log);
        assert!(before.2.len() > 3 && before.3.latest() == Some(4));
        let meta_tree = log.meta.clone();
        drop(log);
        for key in [keys::CHECKPOINT, keys::EPOCHS, keys::LOG_START] {
            meta_tree.remove(key).unwrap();
        }
        remove_prefix(&meta_tree, keys::SEGMENT_META);
        remove_prefix(&meta_tree, keys::SNAPSHOT);
        let log = disk.reopen();
        assert_eq!(state(&log), before);
        // And the rebuilt hints are written back.
        assert!(meta_tree.get(keys::CHECKPOINT).unwrap().is_some());
        assert_eq!(
            meta_tree.scan_prefix(keys::SEGMENT_META).count(),
            before.2.len()
        );
    }

    #[test]
    fn corrupt_meta_values_count_as_missing() {
        let (disk, log) = filled(small(), 7, 40);
        let before = state(&log);
        let meta_tree = log.meta.clone();
        drop(log);
        for key in [keys::CHECKPOINT, keys::EPOCHS, keys::LOG_START] {
            meta_tree.insert(key, b"junk".as_slice()).unwrap();
        }
        for k in meta_tree.scan_prefix(keys::SEGMENT_META).keys() {
            meta_tree.insert(k.unwrap(), b"\xff".as_slice()).unwrap();
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
        let meta_tree = log.meta.clone();
        drop(log);
        let cp: Checkpoint<'static> =
            decode(&meta_tree.get(keys::CHECKPOINT).unwrap().unwrap()).unwrap();
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
        let active = log.segments[0].tree.clone();
        drop(log);
        active.remove(keys::offset_key(6)).unwrap();
        let log = disk.reopen();
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(log.read(0, usize::MAX, 100).unwrap().len(), 30);
        assert!(active.get(keys::offset_key(8)).unwrap().is_none());
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
        let (db, meta_tree) = (log.db.clone(), log.meta.clone());
        drop(log);
        db.drop_tree(keys::segment_tree(TOPIC, 0, 8)).unwrap();
        meta_tree
            .remove(keys::tagged(keys::SEGMENT_META, 8))
            .unwrap();
        let log = disk.reopen();
        assert_eq!(log.log_end_offset(), 8);
        assert_eq!(log.segments().len(), 2);
        let names = db.tree_names();
        assert!(!names
            .iter()
            .any(|n| n == keys::segment_tree(TOPIC, 0, 12).as_bytes()));
        assert_eq!(log.latest_epoch(), Some(1));
        // Never committed by a leader: the recovered records stay hidden until one does.
        assert_eq!(log.high_watermark(), 0);
    }

    #[test]
    fn leftovers_below_the_log_start_are_dropped() {
        let (disk, log) = filled(small(), 10, 40);
        let meta_tree = log.meta.clone();
        drop(log);
        // As if retention persisted the new start and crashed before dropping the segments.
        meta_tree
            .insert(keys::LOG_START, &9u64.to_be_bytes())
            .unwrap();
        let log = disk.reopen();
        assert_eq!(log.log_start_offset(), 9);
        assert_eq!(log.segments()[0].base_offset, 8);
        assert_eq!(log.log_end_offset(), 20);
    }

    #[test]
    fn a_checkpoint_ahead_of_the_log_is_ignored() {
        let (disk, mut log) = filled(LogConfig::default(), 4, 10);
        log.write_checkpoint(None).unwrap();
        let active = log.segments[0].tree.clone();
        drop(log);
        active.remove(keys::offset_key(6)).unwrap();
        let log = disk.reopen();
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(log.segments()[0].batch_count, 3);
        assert_eq!(
            log.check_append(&meta(6, 1)).unwrap(),
            ProducerCheck::Append { base_offset: 6 }
        );
    }
}
