//! Deleting from the front of the log: retention and DeleteRecords. Only whole non-active
//! segments are removed; the log start offset moves with them.

use crate::partition::PartitionLog;
use crate::Error;

impl PartitionLog {
    /// DeleteRecords: moves the log start offset up to `offset` (which must not pass the high
    /// watermark) and drops the segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: u64) -> Result<u64, Error> {
        if offset > self.high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start,
                log_end: self.log_end_offset(),
            });
        }
        if offset > self.log_start {
            self.advance_log_start(offset)?;
        }
        while self.segments.len() > 1 && self.segments[1].base_offset <= self.log_start {
            self.drop_segment(0)?;
        }
        Ok(self.log_start)
    }

    /// Drops whole non-active segments, oldest first, while the oldest is past `retention_ms`
    /// (by its max timestamp), the log is above `retention_bytes`, or it lies wholly below the
    /// log start offset. Never drops data at or above the high watermark. Returns how many
    /// segments were removed.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<usize, Error> {
        let config = self.config;
        let mut size = self.size_bytes();
        let mut removed = 0;
        while self.segments.len() > 1 {
            let oldest = &self.segments[0];
            let next_base = self.segments[1].base_offset;
            if next_base > self.high_watermark {
                break;
            }
            let seg_size = oldest.stats.size_bytes;
            let expired = config.retention_ms >= 0
                && now_ms.saturating_sub(oldest.stats.max_timestamp) > config.retention_ms;
            let over_size = u64::try_from(config.retention_bytes)
                .is_ok_and(|limit| size.saturating_sub(seg_size) >= limit);
            let below_start = next_base <= self.log_start;
            if !(expired || over_size || below_start) {
                break;
            }
            if next_base > self.log_start {
                self.advance_log_start(next_base)?;
            }
            self.drop_segment(0)?;
            size -= seg_size;
            removed += 1;
        }
        if removed > 0 {
            tracing::debug!(
                partition = self.partition,
                removed,
                log_start = self.log_start,
                "retention"
            );
        }
        Ok(removed)
    }

    /// Persisted before any segment goes, so recovery can tell leftover trees are dead.
    fn advance_log_start(&mut self, offset: u64) -> Result<(), Error> {
        self.log_start = offset;
        self.persist_log_start()?;
        if self.epochs.truncate_from_start(offset) {
            self.persist_epochs()?;
        }
        Ok(())
    }
}
