//! The partition actor: the single writer of one replica of a partition's log.
//!
//! As **leader** it appends producers' batches: each is written to sled at once, then the actor
//! asks the store for a flush (group commit makes one flush serve every partition waiting at
//! that moment). acks=1 is answered once the flush resolves. Followers fetch from the leader
//! and report how far they have durably copied; the high watermark is what every in-sync
//! replica holds ([`leader`]), consumers read only below it, and acks=all is answered once it
//! covers the batch. The leader asks the controller to change the in-sync set when followers
//! fall behind or catch up.
//!
//! As **follower** it appends the batches its fetcher copies from the leader, with the
//! leader's offsets and epochs, truncating first where its log diverged ([`follower`]).

pub mod follower;
pub mod leader;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use brook_storage::{BatchMeta, LogConfig, PartitionLog, ProducerCheck, Store};
use brook_wire::batch::{self, BatchHeader};
use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot, watch};

pub use self::follower::{AppendAsFollower, FollowerPosition, TruncateFollower};
use self::leader::{LeaderState, Leadership};
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
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the in-sync set.
    pub replica_lag_max_ms: i64,
}

/// A change of the in-sync set the leader asks the controller for (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrRequest {
    pub key: PartitionKey,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
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

/// How much of the replica set must hold a batch before the producer is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// acks=0: answered at once.
    None,
    /// acks=1: once the leader flushed it.
    Leader,
    /// acks=all: once every in-sync replica holds it durably.
    All,
}

/// Append one validated record batch (magic 2, CRC checked by the caller).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppendBatch {
    pub batch: BytesMut,
    pub header: BatchHeader,
    pub acks: Acks,
    pub reply: Reply<Appended>,
}

/// Take the partition's lead at `state.leader_epoch`, or take in a new in-sync set in the
/// current epoch.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BecomeLeader(pub Leadership);

/// Follow `leader` (or nobody, while the partition has no leader) in `leader_epoch`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BecomeFollower {
    pub leader: Option<i32>,
    pub leader_epoch: i32,
}

/// A follower's fetch (Kafka's Fetch with a replica id): batches from `offset` up to the log
/// end, or where the follower's log diverged from this leader's.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReplicaFetch {
    pub replica: i32,
    pub offset: u64,
    /// The epoch of the last batch in the follower's log; -1 if it has none.
    pub last_fetched_epoch: i32,
    /// The leader epoch the follower believes in; -1 if it does not say.
    pub current_leader_epoch: i32,
    pub max_bytes: usize,
    pub reply: Reply<ReplicaRead>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaRead {
    pub records: Bytes,
    pub high_watermark: u64,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
    /// Where the follower's log diverged: (epoch, end offset) of the largest epoch both have;
    /// the follower truncates there before fetching again.
    pub diverging: Option<(i32, u64)>,
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

/// An acks=all producer waiting for the high watermark to pass `end`.
struct Waiter {
    end: u64,
    appended: Appended,
    reply: Reply<Appended>,
}

enum Role {
    Leader(LeaderState),
    Follower { leader_epoch: i32 },
}

/// Watches the node reads: the high watermark (consumers' long polls) and the log end
/// (followers' long polls).
pub struct Watches {
    pub high_watermark: watch::Sender<u64>,
    pub log_end: watch::Sender<u64>,
}

pub struct PartitionActor {
    key: PartitionKey,
    /// This broker's id.
    me: i32,
    /// None once the partition was deleted; every later message gets `Stopped`.
    log: Option<PartitionLog>,
    store: Store,
    watches: Watches,
    role: Role,
    /// The log end as of the last completed flush.
    durable_end: u64,
    waiters: Vec<Waiter>,
    isr_requests: mpsc::UnboundedSender<IsrRequest>,
    config: PartitionConfig,
}

/// How often the leader checks its followers' lag.
const ISR_CHECK_INTERVAL: Duration = Duration::from_millis(500);

impl PartitionActor {
    pub fn new(
        key: PartitionKey,
        me: i32,
        log: PartitionLog,
        store: Store,
        config: PartitionConfig,
        watches: Watches,
        isr_requests: mpsc::UnboundedSender<IsrRequest>,
    ) -> Self {
        let leader_epoch = log.latest_epoch().unwrap_or(0).max(0);
        let durable_end = log.log_end_offset();
        PartitionActor {
            key,
            me,
            log: Some(log),
            store,
            watches,
            role: Role::Follower { leader_epoch },
            durable_end,
            waiters: Vec::new(),
            isr_requests,
            config,
        }
    }

    fn log(&self) -> Result<&PartitionLog, PartitionError> {
        self.log.as_ref().ok_or(PartitionError::Stopped)
    }

    fn leader(&self) -> Result<&LeaderState, PartitionError> {
        match &self.role {
            Role::Leader(l) => Ok(l),
            Role::Follower { .. } => Err(PartitionError::NotLeader),
        }
    }

    fn leader_epoch(&self) -> i32 {
        match &self.role {
            Role::Leader(l) => l.state.leader_epoch,
            Role::Follower { leader_epoch } => *leader_epoch,
        }
    }

    /// Kafka's check of the epoch a client or follower names (-1: none named).
    fn check_epoch(&self, named: i32) -> Result<(), PartitionError> {
        let current = self.leader_epoch();
        match named {
            e if e < 0 || e == current => Ok(()),
            e if e < current => Err(PartitionError::FencedLeaderEpoch(e)),
            e => Err(PartitionError::UnknownLeaderEpoch(e)),
        }
    }

    fn append(
        &mut self,
        batch: &mut BytesMut,
        header: &BatchHeader,
        acks: Acks,
    ) -> Result<Appended, PartitionError> {
        let leader = self.leader()?;
        let leader_epoch = leader.state.leader_epoch;
        let (isr, min) = (leader.isr_len(), leader.state.min_insync);
        if acks == Acks::All && isr < min {
            return Err(PartitionError::NotEnoughReplicas { isr, min });
        }
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

    /// A flush covering the log up to `end` completed.
    fn flushed(&mut self, end: u64) {
        self.durable_end = self.durable_end.max(end);
        self.update_high_watermark();
    }

    /// Moves the high watermark to what every in-sync replica holds (never down), wakes
    /// long polls and answers the acks=all producers it now covers.
    fn update_high_watermark(&mut self) {
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
    fn fail_waiters(&mut self) {
        for w in self.waiters.drain(..) {
            let _ = w.reply.send(Err(PartitionError::NotLeader));
        }
    }

    /// Asks the controller for a new in-sync set if followers fell behind or caught up.
    fn check_isr(&mut self) {
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
        let answer = |records: Bytes, diverging| ReplicaRead {
            records,
            high_watermark: log.high_watermark(),
            log_start_offset: log.log_start_offset(),
            log_end_offset: log_end,
            diverging,
        };
        // KIP-320/595: a follower whose last epoch ends earlier here (or is unknown here)
        // must truncate before it may fetch.
        if msg.last_fetched_epoch >= 0 {
            let diverging = match log.end_offset_for_epoch(msg.last_fetched_epoch) {
                Some((epoch, end)) if epoch < msg.last_fetched_epoch || end < msg.offset => {
                    Some((epoch, end))
                }
                Some(_) => None,
                None => Some((-1, log.log_start_offset())),
            };
            if diverging.is_some() {
                return Ok(answer(Bytes::new(), diverging));
            }
        }
        let records = log.read(msg.offset, msg.max_bytes, u64::MAX)?;
        let read = answer(records, None);
        leader.on_fetch(msg.replica, msg.offset, log_end, now_ms());
        Ok(read)
    }

    fn list_offset(&self, query: OffsetQuery) -> Result<OffsetAnswer, PartitionError> {
        let epoch = self.leader()?.state.leader_epoch;
        let log = self.log()?;
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

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::debug!(partition = %self.key, "partition actor started");
        ctx.run_interval(ISR_CHECK_INTERVAL, |act, _ctx| act.check_isr());
    }
}

impl Handler<AppendBatch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: AppendBatch, ctx: &mut Self::Context) {
        let AppendBatch {
            mut batch,
            header,
            acks,
            reply,
        } = msg;
        let appended = match self.append(&mut batch, &header, acks) {
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

impl PartitionActor {
    /// Asks the store for a flush; once it covers the log up to `end`, records that and calls
    /// `then` with the outcome.
    fn flush_then(
        &mut self,
        ctx: &mut Context<Self>,
        end: u64,
        then: impl FnOnce(Result<(), PartitionError>) + 'static,
    ) {
        let flush = self.store.flush();
        ctx.spawn(
            fut::wrap_future::<_, Self>(flush).map(move |result, act, _ctx| match result {
                Ok(()) => {
                    act.flushed(end);
                    then(Ok(()));
                }
                Err(e) => {
                    tracing::error!(partition = %act.key, error = %e, "flush failed");
                    then(Err(e.into()));
                }
            }),
        );
    }
}

impl Handler<BecomeLeader> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: BecomeLeader, _ctx: &mut Self::Context) {
        let state = msg.0;
        let now = now_ms();
        if let Role::Leader(leader) = &mut self.role {
            if leader.state.leader_epoch == state.leader_epoch {
                leader.update(state, now);
                self.update_high_watermark();
                return;
            }
        }
        let Some(log) = self.log.as_mut() else { return };
        if let Err(e) = log.begin_epoch(state.leader_epoch) {
            tracing::error!(partition = %self.key, error = %e, "cannot record the new leader epoch");
            return;
        }
        let start = log.log_end_offset();
        tracing::info!(partition = %self.key, epoch = state.leader_epoch, isr = ?state.isr, log_end = start, "leading");
        self.fail_waiters();
        self.role = Role::Leader(LeaderState::new(self.me, state, start, now));
        self.update_high_watermark();
    }
}

impl Handler<BecomeFollower> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: BecomeFollower, _ctx: &mut Self::Context) {
        if let Role::Leader(_) = self.role {
            tracing::info!(partition = %self.key, epoch = msg.leader_epoch, leader = ?msg.leader, "following");
        }
        self.fail_waiters();
        self.role = Role::Follower {
            leader_epoch: msg.leader_epoch,
        };
    }
}

impl Handler<ReplicaFetch> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: ReplicaFetch, _ctx: &mut Self::Context) {
        let result = self.replica_fetch(&msg);
        // A follower's progress may move the high watermark.
        self.update_high_watermark();
        let _ = msg.reply.send(result);
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
        self.fail_waiters();
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
