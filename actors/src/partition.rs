//! The partition-owner actor: the single writer of one partition's log.
//!
//! An append is written to sled at once, then the actor asks the store for a flush (group commit
//! makes one flush serve every partition waiting at that moment). When the flush resolves, the
//! high watermark moves to what was durable and producers waiting for acks are answered. Consumers
//! therefore never read a record that a crash could take back.

use std::time::{SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use brook_storage::{BatchMeta, LogConfig, PartitionLog, ProducerCheck, Store};
use brook_wire::batch::{self, BatchHeader};
use bytes::{Bytes, BytesMut};
use tokio::sync::{oneshot, watch};

use crate::{PartitionError, PartitionKey};

/// Per-partition settings the actor applies itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionConfig {
    pub log: LogConfig,
    /// `message.timestamp.type=LogAppendTime`: the broker stamps batches with its clock.
    pub log_append_time: bool,
    /// `brook.ack.before.flush`: acknowledge and expose appends before they are flushed, as
    /// Kafka does by default; sled's own periodic flush makes them durable later.
    pub ack_before_flush: bool,
}

type Reply<T> = oneshot::Sender<Result<T, PartitionError>>;

/// Sends a message to a partition actor now and returns a future of its reply. The send happens
/// before the future is polled, so messages sent one after another arrive in that order.
pub fn ask<M, T>(
    addr: &Addr<PartitionActor>,
    make: impl FnOnce(Reply<T>) -> M,
) -> impl std::future::Future<Output = Result<T, PartitionError>> + Send + 'static
where
    M: Message<Result = ()> + Send + 'static,
    PartitionActor: Handler<M>,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    addr.do_send(make(tx));
    async move { rx.await.map_err(|_| PartitionError::Stopped)? }
}

/// Append one validated record batch (magic 2, CRC checked by the caller).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppendBatch {
    pub batch: BytesMut,
    pub header: BatchHeader,
    /// acks=1/all: answer only once the batch is durable. acks=0 is answered at once.
    pub wait_durable: bool,
    pub reply: Reply<Appended>,
}

/// Where an appended (or deduplicated) batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    /// The broker's timestamp for LogAppendTime topics, -1 otherwise (Kafka's sentinel).
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// Read whole batches from `offset` up to the high watermark.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadRecords {
    pub offset: u64,
    pub max_bytes: usize,
    pub reply: Reply<RecordsRead>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsRead {
    pub records: Bytes,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
}

/// The offsets ListOffsets asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetQuery {
    Earliest,
    Latest,
    MaxTimestamp,
    /// First record whose timestamp is >= this one.
    Timestamp(i64),
}

/// An answer to [`ListOffset`]; offset and timestamp are -1 when nothing matches (Kafka's sentinel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetAnswer {
    pub offset: i64,
    pub timestamp: i64,
    pub leader_epoch: i32,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct ListOffset {
    pub query: OffsetQuery,
    pub reply: Reply<OffsetAnswer>,
}

/// Drop segments past retention; sent periodically by the node.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyRetention;

/// New topic configuration (AlterConfigs, later).
#[derive(Message)]
#[rtype(result = "()")]
pub struct UpdateConfig(pub PartitionConfig);

/// Remove the partition's data and stop the actor (the topic was deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeletePartition {
    pub reply: Reply<()>,
}

pub struct PartitionActor {
    key: PartitionKey,
    /// None once the partition was deleted; every later message gets `Stopped`.
    log: Option<PartitionLog>,
    store: Store,
    high_watermark: watch::Sender<u64>,
    leader_epoch: i32,
    config: PartitionConfig,
}

impl PartitionActor {
    pub fn new(
        key: PartitionKey,
        log: PartitionLog,
        store: Store,
        config: PartitionConfig,
        high_watermark: watch::Sender<u64>,
    ) -> Self {
        let leader_epoch = log.latest_epoch().unwrap_or(0).max(0);
        PartitionActor {
            key,
            log: Some(log),
            store,
            high_watermark,
            leader_epoch,
            config,
        }
    }

    fn log(&self) -> Result<&PartitionLog, PartitionError> {
        self.log.as_ref().ok_or(PartitionError::Stopped)
    }

    fn append(
        &mut self,
        batch: &mut BytesMut,
        header: &BatchHeader,
    ) -> Result<Appended, PartitionError> {
        let leader_epoch = self.leader_epoch;
        let log_append_time = self.config.log_append_time;
        let log = self.log.as_mut().ok_or(PartitionError::Stopped)?;
        let mut meta = BatchMeta {
            last_offset_delta: header.last_offset_delta,
            max_timestamp: header.max_timestamp,
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            base_sequence: header.base_sequence,
            leader_epoch,
        };
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

    /// Moves the high watermark up to `durable` (never down) and wakes fetch waiters.
    fn advance_high_watermark(&mut self, durable: u64) {
        let Some(log) = self.log.as_mut() else { return };
        let target = durable.min(log.log_end_offset());
        if target <= log.high_watermark() {
            return;
        }
        if let Err(e) = log.set_high_watermark(target) {
            tracing::error!(partition = %self.key, error = %e, "cannot record high watermark");
            return;
        }
        self.high_watermark.send_replace(target);
    }

    fn list_offset(&self, query: OffsetQuery) -> Result<OffsetAnswer, PartitionError> {
        let log = self.log()?;
        let epoch = self.leader_epoch;
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
                Some((_, bytes)) => batch::record_timestamps(&bytes)?
                    .into_iter()
                    .find(|&(_, t)| t >= ts),
                None => None,
            },
            OffsetQuery::MaxTimestamp => match log.max_timestamp_batch()? {
                // The first record holding the batch's largest timestamp.
                Some((_, bytes)) => batch::record_timestamps(&bytes)?.into_iter().fold(
                    None,
                    |best: Option<(i64, i64)>, (o, t)| match best {
                        Some((_, bt)) if bt >= t => best,
                        _ => Some((o, t)),
                    },
                ),
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

impl Actor for PartitionActor {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Self::Context) {
        tracing::debug!(partition = %self.key, "partition actor started");
    }
}

impl Handler<AppendBatch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: AppendBatch, ctx: &mut Self::Context) {
        let AppendBatch {
            mut batch,
            header,
            wait_durable,
            reply,
        } = msg;
        let appended = match self.append(&mut batch, &header) {
            Ok(appended) => appended,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let durable = self.log.as_ref().map_or(0, PartitionLog::log_end_offset);
        if self.config.ack_before_flush {
            self.advance_high_watermark(durable);
            let _ = reply.send(Ok(appended));
            return;
        }
        let reply = if wait_durable {
            Some(reply)
        } else {
            let _ = reply.send(Ok(appended));
            None
        };
        // Even acks=0 writes wait for a flush before consumers may see them.
        let flush = self.store.flush();
        ctx.spawn(
            fut::wrap_future::<_, Self>(flush).map(move |result, act, _ctx| match result {
                Ok(()) => {
                    act.advance_high_watermark(durable);
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(appended));
                    }
                }
                Err(e) => {
                    tracing::error!(partition = %act.key, error = %e, "flush failed");
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }),
        );
    }
}

impl Handler<ReadRecords> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: ReadRecords, _ctx: &mut Self::Context) {
        let result = self.log().and_then(|log| {
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

impl Handler<ApplyRetention> for PartitionActor {
    type Result = ();

    fn handle(&mut self, _msg: ApplyRetention, _ctx: &mut Self::Context) {
        let Some(log) = self.log.as_mut() else { return };
        match log.apply_retention(now_ms()) {
            Ok(0) => {}
            Ok(removed) => tracing::info!(
                partition = %self.key,
                removed,
                log_start_offset = log.log_start_offset(),
                "retention removed segments"
            ),
            Err(e) => tracing::error!(partition = %self.key, error = %e, "retention failed"),
        }
    }
}

impl Handler<UpdateConfig> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: UpdateConfig, _ctx: &mut Self::Context) {
        self.config = msg.0;
        if let Some(log) = self.log.as_mut() {
            log.set_config(msg.0.log);
        }
    }
}

impl Handler<DeletePartition> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: DeletePartition, ctx: &mut Self::Context) {
        // Drop our handle on the trees before removing them.
        self.log = None;
        let result = self
            .store
            .remove_partition(self.key.topic_id, self.key.partition)
            .map_err(PartitionError::from);
        let _ = msg.reply.send(result);
        ctx.stop();
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Offsets are u64 in storage and i64 on the wire; a log never gets near 2^63.
fn to_i64(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}
