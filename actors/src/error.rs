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
    /// The actor system could not be started.
    #[error("actor system: {0}")]
    System(String),
}
