//! The messages a partition actor serves and its answers (the follower's own are in
//! `follower`). Each carries a oneshot for its answer and goes out through [`ask`].

use actix::prelude::*;
use brook_wire::batch::BatchHeader;
use bytes::{Bytes, BytesMut};
use tokio::sync::oneshot;

use super::leader::Leadership;
use super::PartitionActor;
use crate::reply::send_asking;
use crate::{PartitionError, PartitionKey};

/// A change of the in-sync set the leader asks the controller for (Kafka's AlterPartition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsrRequest {
    pub key: PartitionKey,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, PartitionError>>;

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
    let reply = send_asking(addr, make);
    async move { reply.await.map_err(|_| PartitionError::Stopped)? }
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

/// Append one record batch from a producer. The actor validates it in full (records
/// included) before it gets an offset; a batch that fails is refused with
/// [`PartitionError::Wire`] and the log is left as it was.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppendBatch {
    pub batch: BytesMut,
    /// The header as the caller read it; the actor goes by what it reads from `batch` itself.
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
    /// Where the follower's log starts; -1 if it does not say.
    pub log_start: i64,
    pub max_bytes: usize,
    pub reply: Reply<ReplicaRead>,
}

/// DeleteRecords on the leader: move the log start offset to `offset` (-1: the high
/// watermark). Answered with the low watermark once every in-sync replica's log starts there
/// too (Kafka's DelayedDeleteRecords); the caller bounds the wait.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeleteRecords {
    pub offset: i64,
    pub reply: Reply<u64>,
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

/// OffsetForLeaderEpoch on the leader: the largest epoch <= `epoch` this log holds and the
/// offset where the next epoch starts (the log end for the current epoch); `None` when the log
/// cannot say (an epoch above every known one, or no epoch recorded yet).
#[derive(Message)]
#[rtype(result = "()")]
pub struct EpochEnd {
    pub epoch: i32,
    pub reply: Reply<Option<(i32, u64)>>,
}

/// Drop segments past retention; sent periodically by the node.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ApplyRetention;

/// Remove the partition's data and stop the actor (the topic was deleted).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeletePartition {
    pub reply: Reply<()>,
}
