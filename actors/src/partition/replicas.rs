//! The leader's side of replication: serving a follower's fetch (which also reports how far
//! it has copied, so it may move the high watermark), and asking the controller to change the
//! in-sync set when followers fall behind or catch up.

use actix::prelude::*;
use bytes::Bytes;

use super::messages::{IsrRequest, ReplicaFetch, ReplicaRead};
use super::{PartitionActor, Role};
use crate::clock::now_ms;
use crate::PartitionError;

impl PartitionActor {
    /// Asks the controller for a new in-sync set if followers fell behind or caught up.
    pub(super) fn check_isr(&mut self) {
        let Some(log) = self.log.as_ref() else { return };
        let hw = log.high_watermark();
        let lag_max = self.config.replica_lag_max_ms;
        let Role::Leader(leader) = &mut self.role else {
            return;
        };
        if let Some(isr) = leader.isr_change(hw, lag_max, now_ms()) {
            tracing::info!(partition = %self.key, from = ?leader.state.isr, to = ?isr, "asking to change the in-sync set");
            let _ = self.isr_requests.send(IsrRequest {
                key: self.key,
                leader_epoch: leader.state.leader_epoch,
                partition_epoch: leader.state.partition_epoch,
                isr,
            });
        }
    }

    /// A follower's fetch: notes its progress (which may move the high watermark, so the
    /// answer carries the newest one), then reads from its offset, or reports where its log
    /// diverged from this one.
    fn replica_fetch(&mut self, msg: &ReplicaFetch) -> Result<ReplicaRead, PartitionError> {
        self.check_epoch(msg.current_leader_epoch)?;
        let log = self.log.as_ref().ok_or(PartitionError::Stopped)?;
        let Role::Leader(leader) = &mut self.role else {
            return Err(PartitionError::NotLeader);
        };
        if !leader.is_replica(msg.replica) {
            return Err(PartitionError::NotLeader);
        }
        let log_end = log.log_end_offset();
        // KIP-320/595: a follower whose last epoch ends earlier here (or is unknown here)
        // must truncate before it may fetch.
        let diverging = match msg.last_fetched_epoch {
            e if e < 0 => None,
            e => match log.end_offset_for_epoch(e) {
                Some((epoch, end)) if epoch < e || end < msg.offset => Some((epoch, end)),
                Some(_) => None,
                None => Some((-1, log.log_start_offset())),
            },
        };
        // A follower cannot hold more than this leader wrote: claiming so (a confused or
        // forged fetch) would move the high watermark over records no follower has. Kafka
        // answers OFFSET_OUT_OF_RANGE, and so does brook, before anything is noted.
        if diverging.is_none() && msg.offset > log_end {
            return Err(brook_storage::Error::OffsetOutOfRange {
                offset: msg.offset,
                log_start: log.log_start_offset(),
                log_end,
            }
            .into());
        }
        if diverging.is_none() {
            leader.on_fetch(msg.replica, msg.offset, log_end, now_ms());
            if let Ok(start) = u64::try_from(msg.log_start) {
                leader.on_log_start(msg.replica, start);
            }
            self.update_high_watermark();
            self.complete_deletions();
        }
        let log = self.log.as_ref().ok_or(PartitionError::Stopped)?;
        let records = match diverging {
            Some(_) => Bytes::new(),
            None => log.read(msg.offset, msg.max_bytes, u64::MAX)?,
        };
        Ok(ReplicaRead {
            records,
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            log_end_offset: log_end,
            diverging,
        })
    }
}

impl Handler<ReplicaFetch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: ReplicaFetch, _ctx: &mut Self::Context) {
        let result = self.replica_fetch(&msg);
        let _ = msg.reply.send(result);
    }
}
