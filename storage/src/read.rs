//! Reads: fetches by offset and the ListOffsets lookups by timestamp.

use bytes::{Bytes, BytesMut};

use crate::partition::PartitionLog;
use crate::segment::StoredBatch;
use crate::Error;

impl PartitionLog {
    /// Whole batches starting with the one that contains `offset`, stopping before `max_bytes`
    /// would be exceeded but always at least one batch, and only batches with base offset <
    /// `upto` (the caller passes the high watermark). `OffsetOutOfRange` if `offset` is below
    /// the log start or above the log end. Returns the raw batch bytes, concatenated (a copy:
    /// sled's buffers cannot be handed out); empty if nothing is below `upto`.
    pub fn read(&self, offset: u64, max_bytes: usize, upto: u64) -> Result<Bytes, Error> {
        let log_end = self.log_end_offset();
        if offset < self.log_start || offset > log_end {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start,
                log_end,
            });
        }
        let mut out = BytesMut::new();
        if offset == log_end {
            return Ok(out.freeze());
        }
        let start = match self
            .span(self.segment_index(offset))
            .batch_containing(offset)?
        {
            Some(batch) => batch.base_offset,
            None => offset,
        };
        // Segments tile the partition's key range, so one range read crosses them.
        for batch in self.all_batches().batches_from(start) {
            let batch = batch?;
            if batch.base_offset >= upto {
                break;
            }
            let raw = batch.raw();
            if !out.is_empty() && out.len() + raw.len() > max_bytes {
                break;
            }
            out.extend_from_slice(raw);
        }
        Ok(out.freeze())
    }

    /// First batch (from the log start) whose max_timestamp >= `ts`, with its raw bytes.
    /// Segments whose max timestamp is below `ts` are skipped unread; within a segment this is
    /// a scan (there is no time index).
    pub fn find_by_timestamp(&self, ts: i64) -> Result<Option<(u64, Bytes)>, Error> {
        for (index, segment) in self.segments.iter().enumerate() {
            if segment.stats.batch_count == 0 || segment.stats.max_timestamp < ts {
                continue;
            }
            for batch in self.live_batches(index) {
                let batch = batch?;
                if batch.prefix.meta.max_timestamp >= ts {
                    return Ok(Some(into_pair(&batch)));
                }
            }
        }
        Ok(None)
    }

    /// The batch holding the largest max_timestamp (the earliest such batch on ties), from the
    /// per-segment stats plus one point read.
    pub fn max_timestamp_batch(&self) -> Result<Option<(u64, Bytes)>, Error> {
        let mut best: Option<(i64, usize, u64)> = None;
        for (index, segment) in self.segments.iter().enumerate() {
            if segment.stats.batch_count == 0 || segment.stats.end_offset <= self.log_start {
                continue;
            }
            let mut candidate = (
                segment.stats.max_timestamp,
                segment.stats.max_timestamp_offset,
            );
            if segment.base_offset < self.log_start {
                // The stats may point below the log start: look at the live part only.
                match self.max_in(index)? {
                    Some(found) => candidate = found,
                    None => continue,
                }
            }
            if best.is_none_or(|(ts, _, _)| candidate.0 > ts) {
                best = Some((candidate.0, index, candidate.1));
            }
        }
        let Some((_, index, offset)) = best else {
            return Ok(None);
        };
        let batch = self
            .span(index)
            .get(offset)?
            .ok_or_else(|| Error::Corrupt(format!("max timestamp batch at {offset} is missing")))?;
        Ok(Some(into_pair(&batch)))
    }

    /// (max timestamp, its batch) among a segment's batches that reach the log start.
    fn max_in(&self, index: usize) -> Result<Option<(i64, u64)>, Error> {
        let mut best: Option<(i64, u64)> = None;
        for batch in self.live_batches(index) {
            let batch = batch?;
            let ts = batch.prefix.meta.max_timestamp;
            if best.is_none_or(|(best_ts, _)| ts > best_ts) {
                best = Some((ts, batch.base_offset));
            }
        }
        Ok(best)
    }

    /// A segment's batches that reach the log start (those wholly below it are deleted
    /// records that still share the segment with live ones).
    fn live_batches(&self, index: usize) -> impl Iterator<Item = Result<StoredBatch, Error>> {
        let log_start = self.log_start;
        let span = self.span(index);
        span.batches_from(span.start)
            .filter(move |b| b.as_ref().map_or(true, |b| b.last_offset() >= log_start))
    }
}

fn into_pair(batch: &StoredBatch) -> (u64, Bytes) {
    (batch.base_offset, Bytes::copy_from_slice(batch.raw()))
}
