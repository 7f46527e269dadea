//! Errors a partition actor reports; the node turns them into Kafka error codes.

/// Why a partition operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// The log refused the operation (sequence, epoch, range, or an I/O failure).
    #[error(transparent)]
    Storage(#[from] brook_storage::Error),
    /// A record batch could not be inspected.
    #[error(transparent)]
    Wire(#[from] brook_wire::Error),
    /// The actor is gone (partition deleted or node shutting down) before it answered.
    #[error("partition actor stopped")]
    Stopped,
    /// This replica does not lead the partition (or not at the epoch the caller named).
    #[error("not the leader of the partition")]
    NotLeader,
    /// The caller knows a newer leader epoch than this replica.
    #[error("leader epoch {0} is newer than this replica's")]
    UnknownLeaderEpoch(i32),
    /// The caller's leader epoch is older than this replica's.
    #[error("leader epoch {0} is fenced")]
    FencedLeaderEpoch(i32),
    /// acks=all with fewer in-sync replicas than `min.insync.replicas`: nothing was written.
    #[error("{isr} in-sync replicas, {min} required")]
    NotEnoughReplicas { isr: usize, min: usize },
    /// The write was replicated but the in-sync set shrank below `min.insync.replicas`.
    #[error("written, but only {isr} in-sync replicas remain, {min} required")]
    NotEnoughReplicasAfterAppend { isr: usize, min: usize },
    /// The actor system could not be started.
    #[error("actor system: {0}")]
    System(String),
}
