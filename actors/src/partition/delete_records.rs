//! DeleteRecords on the leader: the log start offset moves up at once (reads below it answer
//! OFFSET_OUT_OF_RANGE), and the caller is answered once every in-sync follower's log starts
//! there too, which followers learn from their fetches (Kafka's DelayedDeleteRecords).

use actix::prelude::*;

use super::messages::DeleteRecords;
use super::{PartitionActor, Role};
use crate::PartitionError;

impl PartitionActor {
    /// Moves the log start to `offset` (-1: the high watermark); returns the target.
    fn delete_records(&mut self, offset: i64) -> Result<u64, PartitionError> {
        let log = self.log.as_mut().ok_or(PartitionError::Stopped)?;
        if !matches!(self.role, Role::Leader(_)) {
            return Err(PartitionError::NotLeader);
        }
        let hw = log.high_watermark();
        let target = match offset {
            -1 => hw,
            o => u64::try_from(o).map_err(|_| brook_storage::Error::OffsetOutOfRange {
                offset: 0,
                log_start: log.log_start_offset(),
                log_end: log.log_end_offset(),
            })?,
        };
        // Past the high watermark: OFFSET_OUT_OF_RANGE, as in Kafka.
        log.delete_records_before(target)?;
        Ok(target)
    }

    /// Answers the DeleteRecords calls whose offset every in-sync replica's log start reached.
    pub(super) fn complete_deletions(&mut self) {
        // Called on every follower fetch: nothing to compute while no call waits.
        if self.deletions.is_empty() {
            return;
        }
        let (Some(log), Role::Leader(leader)) = (self.log.as_ref(), &self.role) else {
            return;
        };
        let low = leader.low_watermark(log.log_start_offset());
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.deletions)
            .into_iter()
            .partition(|(target, _)| *target <= low);
        self.deletions = waiting;
        for (_, reply) in done {
            let _ = reply.send(Ok(low));
        }
    }
}

impl Handler<DeleteRecords> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: DeleteRecords, _ctx: &mut Self::Context) {
        match self.delete_records(msg.offset) {
            Ok(target) => {
                self.deletions.push((target, msg.reply));
                self.complete_deletions();
            }
            Err(e) => {
                let _ = msg.reply.send(Err(e));
            }
        }
    }
}
