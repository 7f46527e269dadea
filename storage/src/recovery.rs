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
use crate::partition::{Checkpoint, LogConfig, PartitionLog};
use crate::producer_state::ProducerState;
use crate::segment::{Segment, SegmentMeta, SegmentStats};
use crate::store::OpenGuard;
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

        self.high_watermark = log_end;
        self.meta
            .insert(keys::HIGH_WATERMARK, &log_end.to_be_bytes())?;
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
