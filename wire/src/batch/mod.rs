//! Record batches (message format v2, magic 2): inspection, validation and in-place patches.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this field),
//! partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17, attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43,
//! producerEpoch i16 @51, baseSequence i32 @53, recordCount i32 @57, records @61.
//! The CRC is CRC32C over bytes 21.. (attributes to the end), so offset and epoch can be patched
//! without recomputing it.
//!
//! - `header`: the fixed header, its field offsets, and the magic, length and CRC checks.
//! - `validate`: [`validate_batches`], the cheap check of a records blob's batches (framing,
//!   magic, CRC, header), and [`validate_batch`], everything Kafka's log validator checks of a
//!   batch before it gets offsets, its records included.
//! - `records`: the records inside a batch, decoded as Kafka's validator reads them;
//!   [`fold_timestamps`] for ListOffsets.
//! - `compression`: decompressing the records section within [`MAX_DECOMPRESSED_BYTES`].
//! - `patch`: the leader's in-place edits (offset, leader epoch, LogAppendTime).

mod compression;
mod header;
mod patch;
mod records;
mod validate;

#[cfg(test)]
pub(crate) mod fixtures;

pub use compression::{decompress_records, MAX_DECOMPRESSED_BYTES};
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use header::resign;
pub use header::BatchHeader;
pub use patch::{set_base_offset, set_log_append_time, set_partition_leader_epoch};
pub use records::fold_timestamps;
#[cfg(test)]
pub(crate) use records::record_timestamps;
pub use validate::{validate_batch, validate_batches};
