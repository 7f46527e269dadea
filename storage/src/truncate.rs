//! Truncation from the end, for replication (a follower dropping a divergent suffix).

use crate::epoch_cache::EpochCache;
use crate::keys;
use crate::partition::PartitionLog;
use crate::producer_state::ProducerState;
use crate::recovery::wall_clock_ms;
use crate::segment::SegmentStats;
use crate::Error;

impl PartitionLog {
    /// Removes every batch with base offset >= `offset` (a batch that straddles `offset` stays,
    /// so the log may end a little after it). Below the log start, the whole log is dropped and
    /// restarts empty at `offset`, as Kafka does. Fixes the epoch cache, high watermark and
    /// producer state (rebuilt from the kept segment's snapshot, so this costs a scan of one
    /// segment).
    pub fn truncate_to(&mut self, offset: u64) -> Result<(), Error> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        // With no checkpoint, a crash part-way recovers from the segment snapshots, which stay
        // valid for whatever prefix of this truncation made it to disk.
        self.trees
            .meta
            .remove(keys::meta(self.id, keys::CHECKPOINT))?;
        if offset < self.log_start || offset <= self.segments[0].base_offset {
            return self.truncate_fully(offset);
        }
        let keep = self.segment_index(offset);
        self.drop_after(keep)?;
        let span = self.span(keep);
        span.remove_from(offset)?;
        let stats = span
            .scan(SegmentStats::empty(span.start), span.start)?
            .stats;
        self.segments[keep].stats = stats;
        self.write_segment_meta(keep, false)?;

        let log_end = stats.end_offset;
        let (producers, from) = self.latest_snapshot()?;
        self.producers = producers;
        self.replay(from, from)?;
        self.epochs.truncate_from_end(log_end);
        self.persist_epochs()?;
        if self.high_watermark > log_end {
            self.persist_high_watermark(log_end)?;
        }
        self.write_checkpoint(None)
    }

    /// Truncates so that the log ends at `offset` or, if a batch straddles it, at that batch's
    /// base: a replica never keeps part of a batch its leader may not have (Kafka's
    /// truncateTo). Returns the new log end.
    pub fn truncate_to_batch(&mut self, offset: u64) -> Result<u64, Error> {
        let mut cut = offset;
        if offset > self.log_start && offset < self.log_end_offset() {
            let index = self.segment_index(offset);
            if let Some(batch) = self.span(index).batch_containing(offset)? {
                cut = batch.base_offset.min(offset);
            }
        }
        self.truncate_to(cut)?;
        Ok(self.log_end_offset())
    }

    /// Kafka's truncate-fully-and-start-at: an empty log whose start and end are `offset`
    /// (a follower that fell behind its leader's log start starts over there).
    pub fn truncate_fully(&mut self, offset: u64) -> Result<(), Error> {
        // Log start first: a crash that keeps some old segments then still sees a valid log.
        self.log_start = offset;
        self.persist_log_start()?;
        while let Some(last) = self.segments.len().checked_sub(1) {
            self.drop_segment(last)?;
        }
        self.producers = ProducerState::default();
        self.epochs = EpochCache::default();
        self.persist_epochs()?;
        let segment = self.create_segment(offset, wall_clock_ms())?;
        self.segments.push(segment);
        self.persist_high_watermark(offset)?;
        self.write_checkpoint(None)
    }
}
