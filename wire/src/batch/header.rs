//! The fixed 61-byte header of a v2 record batch: where each field sits, parsing it, and the
//! checks every reader of a whole batch makes first (magic, a length that fits, the CRC).

use crate::Error;

/// Bytes of a v2 batch header, up to the first record.
pub(crate) const BATCH_OVERHEAD: usize = 61;

pub(super) const BASE_OFFSET: usize = 0;
pub(super) const BATCH_LENGTH: usize = 8;
pub(super) const LEADER_EPOCH: usize = 12;
pub(super) const MAGIC: usize = 16;
pub(super) const CRC: usize = 17;
pub(super) const ATTRIBUTES: usize = 21;
pub(super) const LAST_OFFSET_DELTA: usize = 23;
pub(super) const BASE_TIMESTAMP: usize = 27;
pub(super) const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
pub(super) const RECORD_COUNT: usize = 57;
/// baseOffset and batchLength: the part of the header that `batch_length` does not count.
pub(super) const LOG_OVERHEAD: usize = 12;

const COMPRESSION_MASK: i16 = 0x7;
pub(super) const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
pub(super) const DELETE_HORIZON_BIT: i16 = 1 << 6;

/// The fixed header of a v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Compression codec: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// Whether timestamps are the broker's append time rather than the producer's create time.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Offset of the last record (saturating, so a hostile header cannot overflow).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

pub(super) fn truncated(needed: usize, have: usize) -> Error {
    Error::Truncated { needed, have }
}

pub(super) fn corrupt(position: usize, reason: impl Into<String>) -> Error {
    Error::CorruptBatch {
        position,
        reason: reason.into(),
    }
}

fn read<const N: usize>(bytes: &[u8], at: usize) -> Result<[u8; N], Error> {
    at.checked_add(N)
        .and_then(|end| bytes.get(at..end))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or_else(|| truncated(at.saturating_add(N), bytes.len()))
}

fn read_i16(b: &[u8], at: usize) -> Result<i16, Error> {
    read(b, at).map(i16::from_be_bytes)
}
pub(super) fn read_i32(b: &[u8], at: usize) -> Result<i32, Error> {
    read(b, at).map(i32::from_be_bytes)
}
fn read_i64(b: &[u8], at: usize) -> Result<i64, Error> {
    read(b, at).map(i64::from_be_bytes)
}

/// Parses the header of the batch at the start of `bytes` (no CRC or magic check).
pub(crate) fn parse_header(bytes: &[u8]) -> Result<BatchHeader, Error> {
    if bytes.len() < BATCH_OVERHEAD {
        return Err(truncated(BATCH_OVERHEAD, bytes.len()));
    }
    Ok(BatchHeader {
        base_offset: read_i64(bytes, BASE_OFFSET)?,
        batch_length: read_i32(bytes, BATCH_LENGTH)?,
        partition_leader_epoch: read_i32(bytes, LEADER_EPOCH)?,
        magic: i8::from_be_bytes(read(bytes, MAGIC)?),
        crc: u32::from_be_bytes(read(bytes, CRC)?),
        attributes: read_i16(bytes, ATTRIBUTES)?,
        last_offset_delta: read_i32(bytes, LAST_OFFSET_DELTA)?,
        base_timestamp: read_i64(bytes, BASE_TIMESTAMP)?,
        max_timestamp: read_i64(bytes, MAX_TIMESTAMP)?,
        producer_id: read_i64(bytes, PRODUCER_ID)?,
        producer_epoch: read_i16(bytes, PRODUCER_EPOCH)?,
        base_sequence: read_i32(bytes, BASE_SEQUENCE)?,
        record_count: read_i32(bytes, RECORD_COUNT)?,
    })
}

/// The batch length as a checked byte count, refusing negative values and batches too short to
/// hold a v2 header.
pub(super) fn checked_total_len(batch_length: i32, position: usize) -> Result<usize, Error> {
    let total = usize::try_from(batch_length)
        .map_err(|_| corrupt(position, format!("negative batch length {batch_length}")))?
        .saturating_add(LOG_OVERHEAD);
    if total < BATCH_OVERHEAD {
        return Err(corrupt(
            position,
            format!("batch length {batch_length} is shorter than a v2 batch header"),
        ));
    }
    Ok(total)
}

/// Parses and checks the header of one whole batch at the start of `batch`: magic 2 and a length
/// that fits. Returns the header and the batch's total length.
pub(super) fn checked_header(batch: &[u8]) -> Result<(BatchHeader, usize), Error> {
    let header = parse_header(batch)?;
    if header.magic != 2 {
        return Err(Error::UnsupportedMagic(header.magic));
    }
    let total = checked_total_len(header.batch_length, 0)?;
    if total > batch.len() {
        return Err(truncated(total, batch.len()));
    }
    Ok((header, total))
}

/// CRC32C over attributes to the end of the batch, against the stored one.
pub(super) fn check_crc(batch: &[u8], stored: u32) -> Result<(), Error> {
    let computed = crc32c::crc32c(batch.get(ATTRIBUTES..).unwrap_or_default());
    if computed != stored {
        return Err(Error::CrcMismatch {
            expected: stored,
            computed,
        });
    }
    Ok(())
}

/// Rewrites the CRC of every batch in `blob` that the batch lengths lead to (the last one over
/// what is left of it), so that fuzzed and mutated batches reach the checks behind the CRC.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn resign(blob: &mut [u8]) {
    let mut pos = 0;
    while let Some(rest) = blob.get_mut(pos..) {
        let Some(len) = read_i32(rest, BATCH_LENGTH)
            .ok()
            .and_then(|len| usize::try_from(len).ok())
        else {
            return;
        };
        let end = len.saturating_add(LOG_OVERHEAD).min(rest.len());
        let Some(covered) = rest.get(ATTRIBUTES..end) else {
            return;
        };
        let crc = crc32c::crc32c(covered).to_be_bytes();
        rest[CRC..ATTRIBUTES].copy_from_slice(&crc);
        pos += end;
    }
}
