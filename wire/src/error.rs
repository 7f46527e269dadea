//! The crate's error type.

use kafka_protocol::messages::ApiKey;

/// Everything that can go wrong while framing, decoding, encoding or inspecting bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { size: usize, max: usize },
    #[error("negative frame length {0}")]
    NegativeFrameLength(i32),
    #[error("truncated input: need {needed} bytes, have {have}")]
    Truncated { needed: usize, have: usize },
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("{api_key:?} v{version} is not supported")]
    UnsupportedVersion { api_key: ApiKey, version: i16 },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("cannot encode message: {0}")]
    Encode(String),
    #[error("unsupported record batch magic {0} (only v2 is supported)")]
    UnsupportedMagic(i8),
    #[error("corrupt record batch at byte {position}: {reason}")]
    CorruptBatch { position: usize, reason: String },
    #[error("record batch CRC mismatch: stored {expected:#010x}, computed {computed:#010x}")]
    CrcMismatch { expected: u32, computed: u32 },
    /// A well-formed batch (CRC intact) whose records break Kafka's rules: counts and offset
    /// deltas that disagree with the records present, records whose fields do not parse, bytes
    /// after the last record, or records that decompress past the broker's bound. Kafka answers
    /// these with INVALID_RECORD, which clients do not retry; CORRUPT_MESSAGE (the other
    /// variants) is for bytes that are not a batch at all.
    #[error("invalid record in batch at byte {position}: {reason}")]
    InvalidRecord { position: usize, reason: String },
}
