//! The leader's appends: a producer's batch is validated, gets its offset and epoch, is
//! written, and is answered by `acks` — at once, after the flush, or once the high watermark
//! (every in-sync replica holding it durably) passes it.

use actix::prelude::*;
use brook_storage::{PartitionLog, ProducerCheck};
use brook_wire::batch;
use bytes::BytesMut;

use super::messages::{Acks, AppendBatch, Appended};
use super::{batch_meta, to_i64, PartitionActor, Role, Waiter};
use crate::clock::now_ms;
use crate::PartitionError;

impl PartitionActor {
    fn append(&mut self, batch: &mut BytesMut, acks: Acks) -> Result<Appended, PartitionError> {
        let leader = self.leader()?;
        let leader_epoch = leader.state.leader_epoch;
        let (isr, min) = (leader.isr_len(), leader.state.min_insync);
        if acks == Acks::All && isr < min {
            return Err(PartitionError::NotEnoughReplicas { isr, min });
        }
        // Kafka's log validator, here where every leader append passes, whatever the caller
        // checked: a batch whose records do not hold up never gets an offset, so it can
        // neither poison the log for consumers nor move the log end by a count it lied about.
        // The header used from here on is the one read from the validated bytes.
        let header = batch::validate_batch(batch)?;
        let log_append_time = self.config.log_append_time;
        let log = self.log.as_mut().ok_or(PartitionError::Stopped)?;
        let mut meta = batch_meta(&header, leader_epoch);
        let base_offset = match log.check_append(&meta)? {
            ProducerCheck::Duplicate { base_offset, .. } => {
                return Ok(Appended {
                    base_offset: to_i64(base_offset),
                    log_append_time: -1,
                    log_start_offset: to_i64(log.log_start_offset()),
                });
            }
            ProducerCheck::Append { base_offset } => base_offset,
        };
        batch::set_base_offset(batch, to_i64(base_offset))?;
        batch::set_partition_leader_epoch(batch, leader_epoch)?;
        let now = now_ms();
        let mut stamped = -1;
        if log_append_time {
            batch::set_log_append_time(batch, now)?;
            meta.max_timestamp = now;
            stamped = now;
        }
        log.append(base_offset, &meta, batch, now)?;
        Ok(Appended {
            base_offset: to_i64(base_offset),
            log_append_time: stamped,
            log_start_offset: to_i64(log.log_start_offset()),
        })
    }

    /// Moves the high watermark to what every in-sync replica holds (never down), wakes
    /// long polls and answers the acks=all producers it now covers.
    pub(super) fn update_high_watermark(&mut self) {
        let Some(log) = self.log.as_mut() else { return };
        let Role::Leader(leader) = &self.role else {
            return;
        };
        let current = log.high_watermark();
        let target = leader
            .high_watermark(self.durable_end, current)
            .min(log.log_end_offset());
        if target > current {
            if let Err(e) = log.set_high_watermark(target) {
                tracing::error!(partition = %self.key, error = %e, "cannot record high watermark");
                return;
            }
            self.watches.high_watermark.send_replace(target);
        }
        let (isr, min) = (leader.isr_len(), leader.state.min_insync);
        let hw = log.high_watermark();
        let (done, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.end <= hw);
        self.waiters = waiting;
        for w in done {
            let answer = if isr < min {
                Err(PartitionError::NotEnoughReplicasAfterAppend { isr, min })
            } else {
                Ok(w.appended)
            };
            let _ = w.reply.send(answer);
        }
    }

    /// Answers every waiting acks=all producer with `NotLeader` (leadership moved: the client
    /// retries at the new leader, which deduplicates idempotent batches).
    pub(super) fn fail_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            let _ = w.reply.send(Err(PartitionError::NotLeader));
        }
        for (_, reply) in self.deletions.drain(..) {
            let _ = reply.send(Err(PartitionError::NotLeader));
        }
    }
}

impl Handler<AppendBatch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: AppendBatch, ctx: &mut Self::Context) {
        let AppendBatch {
            mut batch,
            header: _,
            acks,
            reply,
        } = msg;
        let appended = match self.append(&mut batch, acks) {
            Ok(appended) => appended,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let end = self.log.as_ref().map_or(0, PartitionLog::log_end_offset);
        self.watches.log_end.send_replace(end);
        let reply = match acks {
            Acks::None => {
                let _ = reply.send(Ok(appended));
                None
            }
            Acks::Leader => Some(reply),
            Acks::All => {
                self.waiters.push(Waiter {
                    end,
                    appended,
                    reply,
                });
                None
            }
        };
        if self.config.ack_before_flush {
            if let Some(reply) = reply {
                let _ = reply.send(Ok(appended));
            }
            self.flushed(end);
            return;
        }
        // Even acks=0 writes wait for a flush before consumers may see them.
        self.flush_then(ctx, end, move |result| {
            if let Some(reply) = reply {
                let _ = reply.send(result.map(|()| appended));
            }
        });
    }
}
