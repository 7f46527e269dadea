//! One partition's log: a run of segments (key ranges of the shared batch tree) plus the
//! partition's keys in the shared meta tree (log start, high watermark, leader epochs,
//! producer snapshots, segment headers). Appends and the bookkeeping around them live here;
//! reads, retention, truncation and recovery in their own modules.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::batch::{BatchMeta, Prefix};
use crate::epoch_cache::EpochCache;
use crate::keys::{self, Trees};
use crate::open_set::OpenGuard;
use crate::producer_state::{ProducerCheck, ProducerState};
use crate::segment::{Segment, SegmentInfo, SegmentMeta, SegmentStats, Span};
use crate::Error;

/// Roll and retention settings, with Kafka's names and meaning (-1 = unlimited).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
}

impl Default for LogConfig {
    /// Kafka's defaults: 1 GiB segments, 7-day roll, 7-day retention, no size limit.
    fn default() -> Self {
        const WEEK_MS: i64 = 7 * 24 * 60 * 60 * 1000;
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: WEEK_MS,
            retention_ms: WEEK_MS,
            retention_bytes: -1,
        }
    }
}

/// A checkpoint is written after this many appended bytes (and at every roll), bounding what
/// `open` must replay to rebuild the active segment's stats and the producer state.
pub(crate) const CHECKPOINT_BYTES: u64 = 4 << 20;

/// State of the log as of `offset` (its log end when written): the active segment's stats and
/// the producer state. Recovery replays only the batches after it.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Checkpoint<'a> {
    pub offset: u64,
    pub segment_base: u64,
    pub created_ms: i64,
    pub stats: SegmentStats,
    pub producers: Cow<'a, ProducerState>,
}

/// One partition's log. Owned by exactly one partition actor; every method blocks on sled
/// (reads and buffered writes, never an fsync: durability comes from `Store::flush`).
///
/// Idle, it holds no buffers or caches of its own: the tree handles (shared with every other
/// partition), a few dozen bytes per segment, the leader-epoch list, and the producer state
/// (at most five batch records per producer seen in the last day). Batch data lives only in
/// sled, whose page cache is one for the whole store.
pub struct PartitionLog {
    pub(crate) trees: Trees,
    /// The partition's id in the store's directory: the prefix of all its keys.
    pub(crate) id: u64,
    /// For log lines.
    pub(crate) partition: i32,
    pub(crate) config: LogConfig,
    /// Sorted by base offset, never empty; the last one is active.
    pub(crate) segments: Vec<Segment>,
    pub(crate) log_start: u64,
    pub(crate) high_watermark: u64,
    pub(crate) epochs: EpochCache,
    pub(crate) producers: ProducerState,
    /// Bytes appended since the last checkpoint.
    pub(crate) unchecked_bytes: u64,
    pub(crate) _guard: OpenGuard,
}

impl PartitionLog {
    /// Checks a batch against the producer state; see [`ProducerCheck`].
    pub fn check_append(&self, meta: &BatchMeta) -> Result<ProducerCheck, Error> {
        self.producers.check(meta, self.log_end_offset())
    }

    /// Appends one batch whose bytes already carry `base_offset`. Errors with `NotAtLogEnd`
    /// unless `base_offset` is the log end offset, and re-runs the producer checks (a duplicate
    /// is refused with `DuplicateSequence`; call `check_append` first to answer it). Rolls the
    /// active segment first if it is full or too old. Returns (base offset, last offset).
    pub fn append(
        &mut self,
        base_offset: u64,
        meta: &BatchMeta,
        batch: &[u8],
        now_ms: i64,
    ) -> Result<(u64, u64), Error> {
        self.check_position(base_offset, meta, batch)?;
        if let ProducerCheck::Duplicate { .. } = self.producers.check(meta, base_offset)? {
            return Err(Error::DuplicateSequence {
                producer_id: meta.producer_id,
                base_sequence: meta.base_sequence,
            });
        }
        self.write_batch(base_offset, meta, batch, now_ms)
    }

    /// Appends a batch copied from the partition's leader, at the offset and with the leader
    /// epoch the leader gave it. The leader already validated the producer sequences, so they
    /// are recorded, not checked (Kafka's append as follower).
    pub fn append_as_follower(
        &mut self,
        base_offset: u64,
        meta: &BatchMeta,
        batch: &[u8],
        now_ms: i64,
    ) -> Result<(u64, u64), Error> {
        self.check_position(base_offset, meta, batch)?;
        self.write_batch(base_offset, meta, batch, now_ms)
    }

    /// A new leader epoch begins at the log end (the replica became leader), so that
    /// OffsetForLeaderEpoch answers for the old epoch end here even before the first append.
    pub fn begin_epoch(&mut self, epoch: i32) -> Result<(), Error> {
        if self.epochs.assign(epoch, self.log_end_offset()) {
            self.persist_epochs()?;
        }
        Ok(())
    }

    fn check_position(
        &self,
        base_offset: u64,
        meta: &BatchMeta,
        batch: &[u8],
    ) -> Result<(), Error> {
        let log_end = self.log_end_offset();
        if base_offset != log_end {
            return Err(Error::NotAtLogEnd {
                expected: log_end,
                got: base_offset,
            });
        }
        if meta.last_offset_delta < 0 || batch.is_empty() {
            return Err(Error::InvalidBatch(format!(
                "{} bytes with last offset delta {}",
                batch.len(),
                meta.last_offset_delta
            )));
        }
        Ok(())
    }

    fn write_batch(
        &mut self,
        base_offset: u64,
        meta: &BatchMeta,
        batch: &[u8],
        now_ms: i64,
    ) -> Result<(u64, u64), Error> {
        let last_offset = meta.last_offset(base_offset);
        self.maybe_roll(batch.len(), now_ms)?;
        // Epoch before data: a recovered batch then always has its epoch entry.
        if self.epochs.assign(meta.leader_epoch, base_offset) {
            self.persist_epochs()?;
        }
        let active = self.active_index();
        let first = self.segments[active].stats.batch_count == 0;
        if first {
            // A segment's age counts from its first batch, not from when it was opened empty.
            self.segments[active].created_ms = now_ms;
            self.write_segment_meta(active, false)?;
        }
        let prefix = Prefix {
            meta: *meta,
            append_ms: now_ms,
            segment_start: first,
        };
        self.trees
            .batches
            .insert(keys::batch(self.id, base_offset), prefix.encode(batch))?;
        self.segments[active]
            .stats
            .add(base_offset, &prefix, batch.len());
        self.producers.record(base_offset, meta, now_ms);
        self.unchecked_bytes += batch.len() as u64;
        if self.unchecked_bytes >= CHECKPOINT_BYTES {
            self.write_checkpoint(Some(now_ms))?;
        }
        Ok((base_offset, last_offset))
    }

    pub fn log_start_offset(&self) -> u64 {
        self.log_start
    }

    pub fn log_end_offset(&self) -> u64 {
        self.active().stats.end_offset
    }

    /// On open, the stored high watermark clamped to the recovered log (see recovery).
    pub fn high_watermark(&self) -> u64 {
        self.high_watermark
    }

    /// Clamped to [log start, log end]. Written to sled without a flush: the next group commit
    /// makes it durable, and recovery does not depend on it (see `PartitionLog::open`).
    pub fn set_high_watermark(&mut self, hw: u64) -> Result<(), Error> {
        let hw = hw.clamp(self.log_start, self.log_end_offset());
        if hw != self.high_watermark {
            self.persist_high_watermark(hw)?;
        }
        Ok(())
    }

    /// Takes effect at the next append (rolls) or retention run.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }

    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest()
    }

    /// Kafka's OffsetForLeaderEpoch: (epoch, end offset) for the largest epoch <= `epoch`.
    /// An epoch below every known one answers (`epoch`, first known epoch's start offset), as
    /// Kafka does; `None` for a negative epoch, one above the latest, or an empty cache.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, u64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    pub fn segments(&self) -> Vec<SegmentInfo> {
        self.segments.iter().map(Segment::info).collect()
    }

    /// Raw batch bytes in all segments (including batches below the log start offset that
    /// share a segment with live ones).
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.stats.size_bytes).sum()
    }

    /// The batches of segment `index`: from its base offset to the next segment's.
    pub(crate) fn span(&self, index: usize) -> Span<'_> {
        Span {
            tree: &self.trees.batches,
            id: self.id,
            start: self.segments.get(index).map_or(0, |s| s.base_offset),
            end: self
                .segments
                .get(index + 1)
                .map_or(u64::MAX, |s| s.base_offset),
        }
    }

    /// Every batch of the partition.
    pub(crate) fn all_batches(&self) -> Span<'_> {
        Span {
            tree: &self.trees.batches,
            id: self.id,
            start: 0,
            end: u64::MAX,
        }
    }

    pub(crate) fn active(&self) -> &Segment {
        &self.segments[self.active_index()]
    }

    pub(crate) fn active_index(&self) -> usize {
        self.segments.len().saturating_sub(1)
    }

    fn maybe_roll(&mut self, incoming: usize, now_ms: i64) -> Result<(), Error> {
        let active = self.active();
        if active.stats.batch_count == 0 {
            return Ok(());
        }
        let full =
            active.stats.size_bytes.saturating_add(incoming as u64) > self.config.segment_bytes;
        let old = self.config.segment_ms >= 0
            && now_ms.saturating_sub(active.created_ms) > self.config.segment_ms;
        if full || old {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Seals the active segment (its stats go to its header so recovery skips it) and starts
    /// a new one at the log end.
    fn roll(&mut self, now_ms: i64) -> Result<(), Error> {
        let sealed = self.active_index();
        self.write_segment_meta(sealed, true)?;
        self.producers.expire(now_ms);
        let base = self.log_end_offset();
        let segment = self.create_segment(base, now_ms)?;
        self.segments.push(segment);
        self.write_checkpoint(None)?;
        tracing::debug!(partition = self.partition, base, "rolled segment");
        Ok(())
    }

    /// Creates an empty segment at `base` with a producer snapshot as of `base`, so truncation
    /// and recovery can rebuild producer state from the segment alone.
    pub(crate) fn create_segment(&self, base: u64, now_ms: i64) -> Result<Segment, Error> {
        let snapshot = encode(&self.producers)?;
        self.trees
            .meta
            .insert(keys::meta_at(self.id, keys::SNAPSHOT, base), snapshot)?;
        let segment_meta = SegmentMeta {
            created_ms: now_ms,
            sealed: None,
        };
        self.trees.meta.insert(
            keys::meta_at(self.id, keys::SEGMENT, base),
            encode(&segment_meta)?,
        )?;
        Ok(Segment::new(base, now_ms))
    }

    /// Removes a segment: its header first, then its batches, from the end of the log newest
    /// first and from the front oldest first. A crash part-way thus leaves either batches the
    /// segment before re-adopts (they continue it), or, at the front, the newest batches of
    /// the segment, which recovery adopts and drops again (they lie below the log start).
    pub(crate) fn drop_segment(&mut self, index: usize) -> Result<(), Error> {
        let span = self.span(index);
        let base = span.start;
        self.trees
            .meta
            .remove(keys::meta_at(self.id, keys::SEGMENT, base))?;
        self.trees
            .meta
            .remove(keys::meta_at(self.id, keys::SNAPSHOT, base))?;
        if index == 0 && self.segments.len() > 1 {
            span.remove_oldest_first()?;
        } else {
            span.remove_from(base)?;
        }
        self.segments.remove(index);
        Ok(())
    }

    pub(crate) fn write_segment_meta(&self, index: usize, sealed: bool) -> Result<(), Error> {
        let segment = &self.segments[index];
        let value = SegmentMeta {
            created_ms: segment.created_ms,
            sealed: sealed.then_some(segment.stats),
        };
        self.trees.meta.insert(
            keys::meta_at(self.id, keys::SEGMENT, segment.base_offset),
            encode(&value)?,
        )?;
        Ok(())
    }

    /// Records the active segment's stats and the producer state as of the log end; expires
    /// idle producers first when given the current time.
    pub(crate) fn write_checkpoint(&mut self, now_ms: Option<i64>) -> Result<(), Error> {
        if let Some(now) = now_ms {
            self.producers.expire(now);
        }
        let active = self.active();
        let checkpoint = Checkpoint {
            offset: active.stats.end_offset,
            segment_base: active.base_offset,
            created_ms: active.created_ms,
            stats: active.stats,
            producers: Cow::Borrowed(&self.producers),
        };
        self.trees
            .meta
            .insert(keys::meta(self.id, keys::CHECKPOINT), encode(&checkpoint)?)?;
        self.unchecked_bytes = 0;
        Ok(())
    }

    pub(crate) fn persist_epochs(&self) -> Result<(), Error> {
        self.trees
            .meta
            .insert(keys::meta(self.id, keys::EPOCHS), encode(&self.epochs)?)?;
        Ok(())
    }

    /// Sets the high watermark without clamping; the caller knows it lies within the log.
    pub(crate) fn persist_high_watermark(&mut self, hw: u64) -> Result<(), Error> {
        self.high_watermark = hw;
        self.trees
            .meta
            .insert(keys::meta(self.id, keys::HIGH_WATERMARK), &hw.to_be_bytes())?;
        Ok(())
    }

    pub(crate) fn persist_log_start(&self) -> Result<(), Error> {
        self.trees.meta.insert(
            keys::meta(self.id, keys::LOG_START),
            &self.log_start.to_be_bytes(),
        )?;
        Ok(())
    }

    /// Index of the segment that holds `offset` (the last one starting at or before it).
    pub(crate) fn segment_index(&self, offset: u64) -> usize {
        self.segments
            .partition_point(|s| s.base_offset <= offset)
            .saturating_sub(1)
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    bincode::serialize(value).map_err(|e| Error::Corrupt(format!("encoding meta: {e}")))
}
