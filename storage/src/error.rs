//! The crate's single error type.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The batch's first sequence does not follow the producer's last one.
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    /// The batch comes from an older epoch of the producer (a fenced zombie).
    #[error("producer {producer_id} epoch {got} is older than the current epoch {current}")]
    InvalidProducerEpoch {
        producer_id: i64,
        current: i16,
        got: i16,
    },
    /// `append` was handed a batch that `check_append` would have answered as a duplicate.
    #[error("duplicate batch from producer {producer_id} (sequence {base_sequence})")]
    DuplicateSequence {
        producer_id: i64,
        base_sequence: i32,
    },
    /// The requested offset is outside `[log_start, log_end]`.
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: u64,
        log_start: u64,
        log_end: u64,
    },
    /// An append whose base offset is not the log end offset.
    #[error("append at offset {got} but the log ends at {expected}")]
    NotAtLogEnd { expected: u64, got: u64 },
    /// The caller passed a batch the log cannot store (empty, negative offset delta, ...).
    #[error("invalid batch: {0}")]
    InvalidBatch(String),
    /// The partition already has a live `PartitionLog` in this process.
    #[error("partition is already open")]
    AlreadyOpen,
    /// The data directory was written in a layout this version does not read.
    #[error("the data directory holds {0}, which this version does not read; move it aside")]
    UnsupportedFormat(String),
    /// A tree name reserved for partition data was asked for through `Store::open_tree`.
    #[error("tree name {0:?} is reserved for partition data")]
    ReservedName(String),
    #[error(transparent)]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Stored data could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The store is shut down (the group-commit thread is gone).
    #[error("store is closed")]
    Closed,
}
