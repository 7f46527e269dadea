//! The follower side of replication: appending what the fetcher copied from the leader, and
//! truncating where this replica's log diverged from the leader's.

use actix::prelude::*;
use brook_storage::PartitionLog;
use brook_wire::batch::validate_batches;
use bytes::Bytes;

use super::messages::Reply;
use super::{batch_meta, PartitionActor, Role};
use crate::clock::now_ms;
use crate::PartitionError;

/// Where a follower's log stands: what it fetches from next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerPosition {
    pub log_end: u64,
    /// The epoch of the last batch; -1 for an empty log.
    pub last_epoch: i32,
    /// Where this replica's log starts, reported to the leader (DeleteRecords waits for it).
    pub log_start: u64,
}

/// Append batches fetched from the leader of `leader_epoch`, then flush; answers with the
/// new position once the batches are durable, so the next fetch reports only durable data.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppendAsFollower {
    pub leader_epoch: i32,
    pub records: Bytes,
    pub leader_high_watermark: u64,
    /// The leader's log start offset: records the leader deleted (DeleteRecords) go here too,
    /// up to this replica's high watermark.
    pub leader_log_start: u64,
    pub reply: Reply<FollowerPosition>,
}

/// Why a follower must cut its log before fetching again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// The leader's log holds `epoch` only up to `end_offset` (Fetch's diverging epoch).
    Epoch { epoch: i32, end_offset: u64 },
    /// The fetch offset is outside the leader's log.
    OutOfRange { log_start: u64, log_end: u64 },
    /// The leader's batches do not line up with this log: fall back to what is committed.
    Misaligned,
}

/// Truncate a follower's log; answers with its new position. With no divergence, it only
/// reports the position.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TruncateFollower {
    pub divergence: Option<Divergence>,
    pub reply: Reply<FollowerPosition>,
}

fn position(log: &PartitionLog) -> FollowerPosition {
    FollowerPosition {
        log_end: log.log_end_offset(),
        last_epoch: log.latest_epoch().unwrap_or(-1),
        log_start: log.log_start_offset(),
    }
}

impl PartitionActor {
    fn follower_log(
        &mut self,
        leader_epoch: Option<i32>,
    ) -> Result<&mut PartitionLog, PartitionError> {
        match self.role {
            Role::Follower {
                leader_epoch: mine, ..
            } if leader_epoch.is_none_or(|e| e == mine) => {}
            Role::Follower {
                leader_epoch: mine, ..
            } => {
                return Err(PartitionError::FencedLeaderEpoch(mine));
            }
            Role::Leader(_) => return Err(PartitionError::NotLeader),
        }
        self.log.as_mut().ok_or(PartitionError::Stopped)
    }

    fn append_copied(
        &mut self,
        msg: &AppendAsFollower,
    ) -> Result<FollowerPosition, PartitionError> {
        let log = self.follower_log(Some(msg.leader_epoch))?;
        let now = now_ms();
        for (range, header) in validate_batches(&msg.records)? {
            let base = u64::try_from(header.base_offset).unwrap_or(0);
            let last = base.saturating_add(u64::try_from(header.last_offset_delta).unwrap_or(0));
            if last < log.log_end_offset() {
                continue;
            }
            let meta = batch_meta(&header, header.partition_leader_epoch);
            log.append_as_follower(base, &meta, &msg.records[range], now)?;
        }
        let end = log.log_end_offset();
        log.set_high_watermark(msg.leader_high_watermark.min(end))?;
        let start = msg.leader_log_start.min(log.high_watermark());
        if start > log.log_start_offset() {
            log.delete_records_before(start)?;
        }
        let (hw, at) = (log.high_watermark(), position(log));
        if let Role::Follower {
            leader_high_watermark,
            ..
        } = &mut self.role
        {
            *leader_high_watermark = Some(msg.leader_high_watermark);
        }
        self.watches.log_end.send_replace(end);
        self.watches.high_watermark.send_replace(hw);
        Ok(at)
    }

    fn truncate(
        &mut self,
        divergence: Option<Divergence>,
    ) -> Result<FollowerPosition, PartitionError> {
        let key = self.key;
        let log = self.follower_log(None)?;
        let before = log.log_end_offset();
        match divergence {
            None => {}
            Some(Divergence::Epoch { epoch, end_offset }) => {
                let target = match log.end_offset_for_epoch(epoch) {
                    Some((_, mine)) if epoch >= 0 => mine.min(end_offset),
                    _ => end_offset,
                };
                log.truncate_to_batch(target)?;
            }
            Some(Divergence::OutOfRange { log_start, log_end }) => {
                if before < log_start {
                    log.truncate_fully(log_start)?;
                } else if before > log_end {
                    log.truncate_to_batch(log_end)?;
                }
            }
            Some(Divergence::Misaligned) => {
                let hw = log.high_watermark();
                log.truncate_to_batch(hw)?;
            }
        }
        let after = position(log);
        // What is left of the log was durable before, or is waiting for a flush below it.
        self.durable_end = self.durable_end.min(after.log_end);
        if after.log_end != before {
            tracing::info!(partition = %key, from = before, to = after.log_end, ?divergence, "truncated follower log");
        }
        self.watches.log_end.send_replace(after.log_end);
        Ok(after)
    }
}

impl Handler<AppendAsFollower> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: AppendAsFollower, ctx: &mut Self::Context) {
        match self.append_copied(&msg) {
            // With `brook.ack.before.flush` a follower, like Kafka's, reports what it copied
            // before it is on disk.
            Ok(at) if self.config.ack_before_flush => {
                self.flushed(at.log_end);
                let _ = msg.reply.send(Ok(at));
            }
            Ok(at) => {
                let reply = msg.reply;
                self.flush_then(ctx, at.log_end, move |result| {
                    let _ = reply.send(result.map(|()| at));
                });
            }
            Err(e) => {
                let _ = msg.reply.send(Err(e));
            }
        }
    }
}

impl Handler<TruncateFollower> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: TruncateFollower, _ctx: &mut Self::Context) {
        let _ = msg.reply.send(self.truncate(msg.divergence));
    }
}
