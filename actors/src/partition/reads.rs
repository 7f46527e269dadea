//! Consumers' reads: Fetch (whole batches below the high watermark) and ListOffsets (earliest,
//! latest, by timestamp, and the max timestamp).

use actix::prelude::*;
use brook_wire::batch;

use super::messages::{EpochEnd, ListOffset, OffsetAnswer, OffsetQuery, ReadRecords, RecordsRead};
use super::{to_i64, PartitionActor};
use crate::PartitionError;

impl PartitionActor {
    fn list_offset(&self, query: OffsetQuery) -> Result<OffsetAnswer, PartitionError> {
        let leader = self.leader()?;
        let epoch = leader.state.leader_epoch;
        let log = self.log()?;
        // Until the high watermark reaches where this epoch began, some offsets the previous
        // leader showed may not be visible here yet: answering now could go back in time.
        if log.high_watermark() < leader.epoch_start {
            return Err(PartitionError::OffsetNotAvailable);
        }
        let hw = log.high_watermark();
        let found = |offset: u64, timestamp: i64| OffsetAnswer {
            offset: to_i64(offset),
            timestamp,
            leader_epoch: epoch,
        };
        let none = OffsetAnswer {
            offset: -1,
            timestamp: -1,
            leader_epoch: -1,
        };
        let record = match query {
            OffsetQuery::Earliest => return Ok(found(log.log_start_offset(), -1)),
            OffsetQuery::Latest => return Ok(found(hw, -1)),
            OffsetQuery::Timestamp(ts) => match log.find_by_timestamp(ts)? {
                // The first record at or after `ts`.
                Some((_, bytes)) => batch::fold_timestamps(&bytes, None, |found, o, t| {
                    found.or((t >= ts).then_some((o, t)))
                })?,
                None => None,
            },
            OffsetQuery::MaxTimestamp => match log.max_timestamp_batch()? {
                // The first record holding the batch's largest timestamp.
                Some((_, bytes)) => batch::fold_timestamps(
                    &bytes,
                    None,
                    |best: Option<(i64, i64)>, o, t| match best {
                        Some((_, bt)) if bt >= t => best,
                        _ => Some((o, t)),
                    },
                )?,
                None => None,
            },
        };
        // Consumers only see what is below the high watermark.
        Ok(match record {
            Some((offset, timestamp)) if offset >= 0 && (offset as u64) < hw => {
                found(offset as u64, timestamp)
            }
            _ => none,
        })
    }
}

impl Handler<ReadRecords> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: ReadRecords, _ctx: &mut Self::Context) {
        let result = self.leader().and_then(|_| self.log()).and_then(|log| {
            let hw = log.high_watermark();
            Ok(RecordsRead {
                records: log.read(msg.offset, msg.max_bytes, hw)?,
                high_watermark: hw,
                log_start_offset: log.log_start_offset(),
                log_end_offset: log.log_end_offset(),
            })
        });
        let _ = msg.reply.send(result);
    }
}

impl Handler<ListOffset> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: ListOffset, _ctx: &mut Self::Context) {
        let _ = msg.reply.send(self.list_offset(msg.query));
    }
}

impl Handler<EpochEnd> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: EpochEnd, _ctx: &mut Self::Context) {
        let result = self
            .leader()
            .and_then(|_| self.log())
            .map(|log| log.end_offset_for_epoch(msg.epoch));
        let _ = msg.reply.send(result);
    }
}
