//! The partition actor: the single writer of one replica of a partition's log.
//!
//! As **leader** it appends producers' batches: each is validated in full (records included,
//! as Kafka's log validator does) and written to sled at once, then the actor asks the store
//! for a flush (group commit makes one flush serve every partition waiting at that moment).
//! acks=1 is answered once the flush resolves; if it fails, the appends it was to make
//! durable are truncated away before the producer hears of it. Followers fetch from the leader and report how
//! far they have durably copied; the high watermark is what every in-sync replica holds
//! (`leader`), consumers read only below it, and acks=all is answered once it covers the
//! batch. The leader asks the controller to change the in-sync set when followers
//! fall behind or catch up.
//!
//! As **follower** it appends the batches its fetcher copies from the leader, with the
//! leader's offsets and epochs, truncating first where its log diverged (`follower`).
//!
//! - `messages`: what the actor serves and answers, and [`ask`].
//! - `produce`: the leader's appends and the acks they wait for.
//! - `replicas`: the leader serving its followers and tending the in-sync set.
//! - `leader`: what a leader tracks about its followers, as plain data.
//! - `follower`: the follower's appends and truncation.
//! - `delete_records`: DeleteRecords on the leader and its wait for the followers.
//! - `describe_log`: a replica's log size and lag, for DescribeLogDirs.
//! - `reads`: consumers' Fetch and ListOffsets.
//! - `reconfigure`: a topic's settings changed at run time.
//!
//! This file holds the actor's state, its role changes, flushing, retention and deletion.

mod delete_records;
mod describe_log;
mod follower;
mod leader;
mod messages;
mod produce;
mod reads;
mod reconfigure;
mod replicas;

use std::time::Duration;

use actix::prelude::*;
use brook_storage::{BatchMeta, LogConfig, PartitionLog, Store};
use brook_wire::batch::BatchHeader;
use tokio::sync::{mpsc, watch};

pub use self::describe_log::{DescribeLog, LogDescription};
pub use self::follower::{AppendAsFollower, Divergence, FollowerPosition, TruncateFollower};
use self::leader::LeaderState;
pub use self::leader::Leadership;
use self::messages::Reply;
pub use self::messages::{
    ask, Acks, AppendBatch, Appended, BecomeFollower, BecomeLeader, DeleteRecords, EpochEnd,
    IsrRequest, ListOffset, OffsetAnswer, OffsetQuery, ReadRecords, RecordsRead, ReplicaFetch,
    ReplicaRead,
};
pub(crate) use self::messages::{ApplyRetention, DeletePartition};
pub use self::reconfigure::Reconfigure;
use crate::clock::now_ms;
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

/// An acks=all producer waiting for the high watermark to pass `end`.
struct Waiter {
    end: u64,
    appended: Appended,
    reply: Reply<Appended>,
}

enum Role {
    Leader(LeaderState),
    Follower {
        leader_epoch: i32,
        /// The leader's high watermark as its last copied answer gave it (DescribeLogDirs'
        /// offset lag); `None` until one came in this role.
        leader_high_watermark: Option<u64>,
    },
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
    /// DeleteRecords calls waiting for the followers' logs to start at their offset.
    deletions: Vec<(u64, Reply<u64>)>,
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
            role: Role::Follower {
                leader_epoch,
                leader_high_watermark: None,
            },
            durable_end,
            waiters: Vec::new(),
            deletions: Vec::new(),
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
            Role::Follower { leader_epoch, .. } => *leader_epoch,
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

    /// A flush covering the log up to `end` completed. (A truncation since may have left the
    /// log shorter than `end`; what is left of it is durable.)
    fn flushed(&mut self, end: u64) {
        let log_end = self.log.as_ref().map_or(end, PartitionLog::log_end_offset);
        self.durable_end = self.durable_end.max(end.min(log_end));
        self.update_high_watermark();
    }

    /// Asks the store for a flush; once it covers the log up to `end`, records that and calls
    /// `then` with the outcome. A failed flush first takes the unflushed appends back out of
    /// the log (see [`PartitionActor::discard_unflushed`]).
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
                    act.discard_unflushed(&e);
                    then(Err(e.into()));
                }
            }),
        );
    }

    /// A flush failed: every append past the last completed flush is truncated away before
    /// anyone is told. A producer that gets an error must not find its batch in the log
    /// afterwards: a consumer would read it once a later flush made it durable, and the
    /// producer's retry would be appended a second time (or, if idempotent, answered as a
    /// duplicate of data that may never reach the disk). Appends made after the failed one
    /// go too; their own flushes fail as well, since the store fails every flush after the
    /// first failure. If even the truncation fails, the log is closed: the partition answers
    /// `Stopped` from then on rather than serve a log in an unknown state.
    fn discard_unflushed(&mut self, cause: &brook_storage::Error) {
        let Some(log) = self.log.as_mut() else { return };
        let before = log.log_end_offset();
        if before <= self.durable_end {
            return;
        }
        match log.truncate_to(self.durable_end) {
            Ok(()) => {
                let end = log.log_end_offset();
                tracing::warn!(partition = %self.key, from = before, to = end, "removed appends whose flush failed");
                self.watches.log_end.send_replace(end);
                self.watches
                    .high_watermark
                    .send_replace(log.high_watermark());
            }
            Err(e) => {
                tracing::error!(partition = %self.key, error = %e, "cannot remove appends whose flush failed; closing the log");
                self.log = None;
            }
        }
        // acks=all producers waiting for batches that are gone get the flush's error.
        let end = self.log.as_ref().map_or(0, PartitionLog::log_end_offset);
        let (gone, kept): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.end > end);
        self.waiters = kept;
        for w in gone {
            let error = std::io::Error::other(format!("flush failed: {cause}"));
            let _ = w.reply.send(Err(brook_storage::Error::Io(error).into()));
        }
    }
}

impl Actor for PartitionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        tracing::debug!(partition = %self.key, "partition actor started");
        ctx.run_interval(ISR_CHECK_INTERVAL, |act, _ctx| act.check_isr());
    }
}

impl Handler<BecomeLeader> for PartitionActor {
    type Result = ();

    fn handle(&mut self, msg: BecomeLeader, _ctx: &mut Self::Context) {
        let state = msg.0;
        let now = now_ms();
        // A message about an epoch this replica already left behind.
        if state.leader_epoch < self.leader_epoch() {
            return;
        }
        if let Role::Leader(leader) = &mut self.role {
            if leader.state.leader_epoch == state.leader_epoch {
                leader.update(state, now);
                self.update_high_watermark();
                // A follower that left the in-sync set is no longer waited for.
                self.complete_deletions();
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
            leader_high_watermark: None,
        };
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

/// What the log keeps of a batch's header; `leader_epoch` is the epoch it was (or is being)
/// written in.
fn batch_meta(header: &BatchHeader, leader_epoch: i32) -> BatchMeta {
    BatchMeta {
        last_offset_delta: header.last_offset_delta,
        max_timestamp: header.max_timestamp,
        producer_id: header.producer_id,
        producer_epoch: header.producer_epoch,
        base_sequence: header.base_sequence,
        leader_epoch,
    }
}

/// Offsets are u64 in storage and i64 on the wire; a log never gets near 2^63.
fn to_i64(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}
