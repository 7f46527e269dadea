//! Record batches (message format v2, magic 2): header parsing, validation, in-place patches.
//!
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this field),
//! partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17, attributes i16 @21,
//! lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35, producerId i64 @43,
//! producerEpoch i16 @51, baseSequence i32 @53, recordCount i32 @57, records @61.
//! The CRC is CRC32C over bytes 21.. (attributes to the end), so offset and epoch can be patched
//! without recomputing it.

use std::ops::Range;

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use crate::Error;

/// Bytes of a v2 batch header, up to the first record.
pub const BATCH_OVERHEAD: usize = 61;

const BASE_OFFSET: usize = 0;
const BATCH_LENGTH: usize = 8;
const LEADER_EPOCH: usize = 12;
const MAGIC: usize = 16;
const CRC: usize = 17;
const ATTRIBUTES: usize = 21;
const LAST_OFFSET_DELTA: usize = 23;
const BASE_TIMESTAMP: usize = 27;
const MAX_TIMESTAMP: usize = 35;
const PRODUCER_ID: usize = 43;
const PRODUCER_EPOCH: usize = 51;
const BASE_SEQUENCE: usize = 53;
const RECORD_COUNT: usize = 57;
/// baseOffset and batchLength: the part of the header that `batch_length` does not count.
const LOG_OVERHEAD: usize = 12;

const COMPRESSION_MASK: i16 = 0x7;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
const DELETE_HORIZON_BIT: i16 = 1 << 6;
const MAX_CODEC: u8 = 4;

/// The smallest possible encoded record: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each. Bounds how many records a given number
/// of bytes can hold, so a lying record count cannot make us allocate.
const MIN_RECORD_BYTES: usize = 7;

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

    /// Size of the whole batch, length fields included. A negative `batch_length` (only possible
    /// in an unvalidated header) counts as 0.
    pub fn total_len(&self) -> usize {
        usize::try_from(self.batch_length)
            .unwrap_or(0)
            .saturating_add(LOG_OVERHEAD)
    }

    /// Offset of the last record (saturating, so a hostile header cannot overflow).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
}

fn truncated(needed: usize, have: usize) -> Error {
    Error::Truncated { needed, have }
}

fn corrupt(position: usize, reason: impl Into<String>) -> Error {
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

fn write(bytes: &mut [u8], at: usize, value: &[u8]) -> Result<(), Error> {
    let have = bytes.len();
    at.checked_add(value.len())
        .and_then(|end| bytes.get_mut(at..end))
        .ok_or_else(|| truncated(at.saturating_add(value.len()), have))?
        .copy_from_slice(value);
    Ok(())
}

fn read_i16(b: &[u8], at: usize) -> Result<i16, Error> {
    read(b, at).map(i16::from_be_bytes)
}
fn read_i32(b: &[u8], at: usize) -> Result<i32, Error> {
    read(b, at).map(i32::from_be_bytes)
}
fn read_i64(b: &[u8], at: usize) -> Result<i64, Error> {
    read(b, at).map(i64::from_be_bytes)
}

/// Parses the header of the batch at the start of `bytes` (no CRC or magic check).
pub fn parse_header(bytes: &[u8]) -> Result<BatchHeader, Error> {
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
fn checked_total_len(batch_length: i32, position: usize) -> Result<usize, Error> {
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
fn checked_header(batch: &[u8]) -> Result<(BatchHeader, usize), Error> {
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

fn check_crc(batch: &[u8], stored: u32) -> Result<(), Error> {
    let computed = crc32c::crc32c(batch.get(ATTRIBUTES..).unwrap_or_default());
    if computed != stored {
        return Err(Error::CrcMismatch {
            expected: stored,
            computed,
        });
    }
    Ok(())
}

/// Splits a records blob (as sent in Produce) into batches and validates each one: whole batches
/// only, magic 2, CRC32C, `record_count >= 1`, `last_offset_delta == record_count - 1`, a known
/// compression codec, and (when uncompressed) enough bytes for `record_count` records.
/// Returns each batch's byte range within `records` and its header.
pub fn validate_batches(records: &[u8]) -> Result<Vec<(Range<usize>, BatchHeader)>, Error> {
    let mut batches = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = records.get(pos..).unwrap_or_default();
        if rest.len() < LOG_OVERHEAD {
            return Err(corrupt(
                pos,
                format!("{} trailing bytes are not a batch", rest.len()),
            ));
        }
        let batch_length = read_i32(rest, BATCH_LENGTH)?;
        let total = usize::try_from(batch_length)
            .map_err(|_| corrupt(pos, format!("negative batch length {batch_length}")))?
            .saturating_add(LOG_OVERHEAD);
        if total > rest.len() {
            return Err(corrupt(
                pos,
                format!(
                    "batch of {total} bytes is truncated to {} bytes",
                    rest.len()
                ),
            ));
        }
        // Magic sits at the same place in every message format, so an old-format message set is
        // reported as such rather than as a short or corrupt v2 batch.
        if let Some(&magic) = rest.get(MAGIC).filter(|_| total > MAGIC) {
            if magic != 2 {
                return Err(Error::UnsupportedMagic(i8::from_be_bytes([magic])));
            }
        }
        checked_total_len(batch_length, pos)?;
        let batch = rest.get(..total).unwrap_or_default();
        let header = parse_header(batch)?;
        check_crc(batch, header.crc)?;
        if header.record_count < 1 {
            return Err(corrupt(
                pos,
                format!("record count {} (must be at least 1)", header.record_count),
            ));
        }
        if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
            return Err(corrupt(
                pos,
                format!(
                    "last offset delta {} does not match record count {}",
                    header.last_offset_delta, header.record_count
                ),
            ));
        }
        let codec = header.compression();
        if codec > MAX_CODEC {
            return Err(corrupt(pos, format!("unknown compression codec {codec}")));
        }
        let room = (total - BATCH_OVERHEAD) / MIN_RECORD_BYTES;
        if codec == 0 && usize::try_from(header.record_count).unwrap_or(usize::MAX) > room {
            return Err(corrupt(
                pos,
                format!(
                    "{} records cannot fit in {} bytes",
                    header.record_count,
                    total - BATCH_OVERHEAD
                ),
            ));
        }
        batches.push((pos..pos + total, header));
        pos += total;
    }
    Ok(batches)
}

/// Sets the base offset in place (outside the CRC, so no recomputation).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), Error> {
    checked_header(batch)?;
    write(batch, BASE_OFFSET, &base_offset.to_be_bytes())
}

/// Sets the partition leader epoch in place (outside the CRC, so no recomputation).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), Error> {
    checked_header(batch)?;
    write(batch, LEADER_EPOCH, &epoch.to_be_bytes())
}

/// For topics with `message.timestamp.type=LogAppendTime`: sets the timestamp-type bit,
/// max_timestamp and base_timestamp to `now_ms`, then recomputes the CRC over the batch.
///
/// Readers take every record's timestamp from max_timestamp in such batches; base_timestamp is
/// also set, as Kafka does when it rebuilds a batch, so naive readers (base + delta) are close.
/// It is left alone when the delete-horizon bit is set, because it then holds the horizon.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) -> Result<(), Error> {
    let (header, total) = checked_header(batch)?;
    let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
    write(batch, ATTRIBUTES, &attributes.to_be_bytes())?;
    write(batch, MAX_TIMESTAMP, &now_ms.to_be_bytes())?;
    if header.attributes & DELETE_HORIZON_BIT == 0 {
        write(batch, BASE_TIMESTAMP, &now_ms.to_be_bytes())?;
    }
    let crc = crc32c::crc32c(batch.get(ATTRIBUTES..total).unwrap_or_default());
    write(batch, CRC, &crc.to_be_bytes())
}

/// The records section of a batch, decompressed.
fn decompress(codec: u8, records: &[u8]) -> Result<Bytes, Error> {
    let mut input = Bytes::copy_from_slice(records);
    let take = |b: &mut Bytes| Ok(std::mem::take(b));
    let out = match codec {
        0 => return Ok(input),
        1 => Gzip::decompress(&mut input, take),
        2 => Snappy::decompress(&mut input, take),
        3 => Lz4::decompress(&mut input, take),
        4 => Zstd::decompress(&mut input, take),
        other => return Err(corrupt(0, format!("unknown compression codec {other}"))),
    };
    out.map_err(|e| corrupt(BATCH_OVERHEAD, format!("cannot decompress records: {e:#}")))
}

/// Reads an unsigned LEB128 varint of at most `max_bytes` bytes.
fn read_uvarint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..max_bytes {
        let byte = *buf.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Zigzag-decoded signed varint of at most `max_bytes` bytes.
fn read_zigzag(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Option<i64> {
    let raw = read_uvarint(buf, pos, max_bytes)?;
    Some((raw >> 1) as i64 ^ -((raw & 1) as i64))
}

fn read_varlong(buf: &[u8], pos: &mut usize) -> Option<i64> {
    read_zigzag(buf, pos, 10)
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Option<i32> {
    i32::try_from(read_zigzag(buf, pos, 5)?).ok()
}

/// Every record's (absolute offset, timestamp) in the batch at the start of `batch`, decompressing
/// if needed. Offsets use the base offset stored in the bytes. In LogAppendTime batches every
/// record's timestamp is the batch's max_timestamp, as Kafka reads them. The CRC is verified.
///
/// Only the length, timestamp delta and offset delta of each record are read. This walks the
/// records itself rather than through kafka-protocol's `RecordBatchDecoder`, which pre-allocates
/// from the (attacker-chosen) record count and adds deltas unchecked; the codecs are still
/// kafka-protocol's.
pub fn record_timestamps(batch: &[u8]) -> Result<Vec<(i64, i64)>, Error> {
    let (header, total) = checked_header(batch)?;
    let batch = batch.get(..total).unwrap_or_default();
    check_crc(batch, header.crc)?;
    let records = decompress(
        header.compression(),
        batch.get(BATCH_OVERHEAD..).unwrap_or_default(),
    )?;
    let count = usize::try_from(header.record_count)
        .map_err(|_| corrupt(0, format!("negative record count {}", header.record_count)))?;
    if count > records.len() / MIN_RECORD_BYTES {
        return Err(corrupt(
            BATCH_OVERHEAD,
            format!("{count} records cannot fit in {} bytes", records.len()),
        ));
    }
    let bad = |what: &str, i: usize| corrupt(BATCH_OVERHEAD, format!("record {i}: {what}"));
    let mut out = Vec::with_capacity(count);
    let mut pos = 0;
    for i in 0..count {
        let len = read_varint(&records, &mut pos).ok_or_else(|| bad("bad length", i))?;
        let len = usize::try_from(len).map_err(|_| bad("negative length", i))?;
        let end = pos
            .checked_add(len)
            .filter(|&end| end <= records.len())
            .ok_or_else(|| bad("runs past the end of the batch", i))?;
        let body = records.get(pos..end).unwrap_or_default();
        let mut at = 1; // skip the record attributes byte
        let ts_delta = read_varlong(body, &mut at).ok_or_else(|| bad("bad timestamp delta", i))?;
        let offset_delta = read_varint(body, &mut at).ok_or_else(|| bad("bad offset delta", i))?;
        let offset = header
            .base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or_else(|| bad("offset overflows", i))?;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header
                .base_timestamp
                .checked_add(ts_delta)
                .ok_or_else(|| bad("timestamp overflows", i))?
        };
        out.push((offset, timestamp));
        pos = end;
    }
    Ok(out)
}

/// Iterates the batches in a blob of whole batches (as read back from storage) without
/// validation, yielding each one's byte range and header. Stops at the first incomplete batch.
pub fn iter_batches(bytes: &[u8]) -> impl Iterator<Item = (Range<usize>, BatchHeader)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = parse_header(bytes.get(pos..)?).ok()?;
        let total = checked_total_len(header.batch_length, pos).ok()?;
        let end = pos.checked_add(total).filter(|&end| end <= bytes.len())?;
        let range = pos..end;
        pos = end;
        Some((range, header))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    const CODECS: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn record(offset: i64, timestamp: i64) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: 4242,
            producer_epoch: 3,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp,
            key: Some(Bytes::from(format!("key-{offset}"))),
            value: Some(Bytes::from(vec![b'v'; 100 + offset as usize])),
            headers: Default::default(),
        }
    }

    /// Timestamps deliberately out of order: max_timestamp is not the last record's.
    const TIMESTAMPS: [i64; 5] = [1_000, 1_500, 1_200, 2_000, 1_900];

    fn batch(compression: Compression) -> BytesMut {
        let records: Vec<Record> = TIMESTAMPS
            .iter()
            .enumerate()
            .map(|(i, &t)| record(i as i64, t))
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf
    }

    fn only_header(bytes: &[u8]) -> BatchHeader {
        let batches = validate_batches(bytes).unwrap();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].0, 0..bytes.len());
        batches[0].1
    }

    #[test]
    fn validates_batches_of_every_codec() {
        for codec in CODECS {
            let bytes = batch(codec);
            let h = only_header(&bytes);
            assert_eq!(h.compression(), codec as u8, "{codec:?}");
            assert_eq!(h.magic, 2);
            assert_eq!(h.record_count, 5);
            assert_eq!(h.last_offset_delta, 4);
            assert_eq!((h.base_offset, h.last_offset()), (0, 4));
            assert_eq!((h.base_timestamp, h.max_timestamp), (1_000, 2_000));
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (4242, 3, 0)
            );
            assert_eq!(h.total_len(), bytes.len());
            assert!(!h.is_log_append_time() && !h.is_transactional() && !h.is_control());
            assert_eq!(parse_header(&bytes).unwrap(), h);
        }
    }

    #[test]
    fn several_batches_in_one_blob() {
        let mut blob = batch(Compression::None);
        let first = blob.len();
        blob.extend_from_slice(&batch(Compression::Zstd));
        let batches = validate_batches(&blob).unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].0, 0..first);
        assert_eq!(batches[1].0, first..blob.len());
        assert_eq!(batches[1].1.compression(), 4);
        assert_eq!(validate_batches(&[]).unwrap(), vec![]);
    }

    #[test]
    fn flipped_byte_is_a_crc_mismatch() {
        for codec in CODECS {
            let clean = batch(codec);
            // Every byte the CRC covers: attributes through the last record.
            for at in ATTRIBUTES..clean.len() {
                let mut bytes = clean.clone();
                bytes[at] ^= 0x01;
                match validate_batches(&bytes) {
                    Err(Error::CrcMismatch { expected, computed }) => {
                        assert_eq!(expected, parse_header(&clean).unwrap().crc);
                        assert_ne!(expected, computed);
                    }
                    other => panic!("{codec:?} byte {at}: {other:?}"),
                }
            }
            let mut bytes = clean.clone();
            bytes[CRC] ^= 0x80;
            assert!(matches!(
                validate_batches(&bytes),
                Err(Error::CrcMismatch { .. })
            ));
        }
    }

    #[test]
    fn old_magic_is_unsupported() {
        for magic in [0u8, 1, 3] {
            let mut bytes = batch(Compression::None);
            bytes[MAGIC] = magic;
            assert_eq!(
                validate_batches(&bytes),
                Err(Error::UnsupportedMagic(magic as i8))
            );
            assert_eq!(
                record_timestamps(&bytes),
                Err(Error::UnsupportedMagic(magic as i8))
            );
            assert_eq!(
                set_log_append_time(&mut bytes, 1),
                Err(Error::UnsupportedMagic(magic as i8))
            );
        }
        // A short v1 message (smaller than a v2 header) is still reported by its magic.
        let mut v1 = vec![0u8; 34];
        v1[8..12].copy_from_slice(&22i32.to_be_bytes());
        v1[MAGIC] = 1;
        assert_eq!(validate_batches(&v1), Err(Error::UnsupportedMagic(1)));
    }

    #[test]
    fn truncation_is_an_error() {
        for codec in CODECS {
            let mut blob = batch(codec);
            let one = blob.len();
            blob.extend_from_slice(&batch(codec));
            for len in (1..blob.len()).filter(|&l| l != one) {
                assert!(
                    validate_batches(&blob[..len]).is_err(),
                    "{codec:?} cut to {len} of {}",
                    blob.len()
                );
            }
            // Lying about the length is caught even when the bytes are all there.
            let mut longer = batch(codec);
            let len = longer.len() as i32 - LOG_OVERHEAD as i32;
            longer[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&(len + 1).to_be_bytes());
            assert!(matches!(
                validate_batches(&longer),
                Err(Error::CorruptBatch { .. })
            ));
            longer[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&(len - 1).to_be_bytes());
            assert!(validate_batches(&longer).is_err());
        }
    }

    /// Rewrites header fields of a valid batch and fixes up the CRC, to reach the checks after it.
    fn with_header(codec: Compression, edit: impl Fn(&mut [u8])) -> BytesMut {
        let mut bytes = batch(codec);
        edit(&mut bytes);
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES..]);
        bytes[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn inconsistent_counts_and_codecs_are_corrupt() {
        fn put(b: &mut [u8], at: usize, v: i32) {
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        type Edit = fn(&mut [u8]);
        let cases: [(&str, Edit); 5] = [
            ("zero records", |b| put(b, RECORD_COUNT, 0)),
            ("negative records", |b| put(b, RECORD_COUNT, -3)),
            ("delta mismatch", |b| put(b, LAST_OFFSET_DELTA, 9)),
            ("codec 5", |b| b[ATTRIBUTES + 1] |= 5),
            ("records cannot fit", |b| {
                put(b, RECORD_COUNT, i32::MAX);
                put(b, LAST_OFFSET_DELTA, i32::MAX - 1);
            }),
        ];
        for (what, edit) in cases {
            let bytes = with_header(Compression::None, edit);
            assert!(
                matches!(validate_batches(&bytes), Err(Error::CorruptBatch { .. })),
                "{what}: {:?}",
                validate_batches(&bytes)
            );
        }
    }

    #[test]
    fn patching_offset_and_epoch_keeps_the_crc_valid() {
        for codec in CODECS {
            let mut bytes = batch(codec);
            let crc = parse_header(&bytes).unwrap().crc;
            set_base_offset(&mut bytes, 1_234_567).unwrap();
            set_partition_leader_epoch(&mut bytes, 17).unwrap();
            let h = only_header(&bytes);
            assert_eq!(h.base_offset, 1_234_567);
            assert_eq!(h.partition_leader_epoch, 17);
            assert_eq!(h.last_offset(), 1_234_571);
            assert_eq!(h.crc, crc);
        }
        let mut short = vec![0u8; BATCH_OVERHEAD - 1];
        assert!(matches!(
            set_base_offset(&mut short, 1),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn log_append_time_keeps_the_crc_valid() {
        for codec in CODECS {
            let mut bytes = batch(codec);
            set_base_offset(&mut bytes, 50).unwrap();
            set_log_append_time(&mut bytes, 99_999).unwrap();
            let h = only_header(&bytes);
            assert!(h.is_log_append_time());
            assert_eq!(h.compression(), codec as u8);
            assert_eq!((h.base_timestamp, h.max_timestamp), (99_999, 99_999));
            let expected: Vec<(i64, i64)> = (50..55).map(|o| (o, 99_999)).collect();
            assert_eq!(record_timestamps(&bytes).unwrap(), expected, "{codec:?}");
        }
    }

    #[test]
    fn record_timestamps_of_every_codec() {
        for codec in CODECS {
            let mut bytes = batch(codec);
            set_base_offset(&mut bytes, 1_000).unwrap();
            let expected: Vec<(i64, i64)> = TIMESTAMPS
                .iter()
                .enumerate()
                .map(|(i, &t)| (1_000 + i as i64, t))
                .collect();
            assert_eq!(record_timestamps(&bytes).unwrap(), expected, "{codec:?}");
            // The first record at or after 1_800 ms is offset 1_003.
            let found = expected.iter().find(|&&(_, t)| t >= 1_800);
            assert_eq!(found, Some(&(1_003, 2_000)));
        }
    }

    #[test]
    fn record_timestamps_checks_crc_and_counts() {
        let mut bytes = batch(Compression::Gzip);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert!(matches!(
            record_timestamps(&bytes),
            Err(Error::CrcMismatch { .. })
        ));
        // A count the records cannot back is refused before anything is allocated for it.
        for codec in CODECS {
            let bytes = with_header(codec, |b| {
                b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&i32::MAX.to_be_bytes())
            });
            assert!(matches!(
                record_timestamps(&bytes),
                Err(Error::CorruptBatch { .. })
            ));
        }
        // More records claimed than present (but plausible for the size).
        let bytes = with_header(Compression::Zstd, |b| {
            b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&6i32.to_be_bytes())
        });
        assert!(matches!(
            record_timestamps(&bytes),
            Err(Error::CorruptBatch { .. })
        ));
        // Timestamps that would overflow are an error, not a panic.
        let bytes = with_header(Compression::None, |b| {
            b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&i64::MAX.to_be_bytes())
        });
        assert!(matches!(
            record_timestamps(&bytes),
            Err(Error::CorruptBatch { .. })
        ));
    }

    #[test]
    fn iter_batches_stops_at_an_incomplete_batch() {
        let mut blob = batch(Compression::None);
        let first = blob.len();
        blob.extend_from_slice(&batch(Compression::Lz4));
        let whole = blob.len();
        blob.extend_from_slice(&batch(Compression::None)[..70]);
        let got: Vec<_> = iter_batches(&blob).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, 0..first);
        assert_eq!(got[1].0, first..whole);
        assert_eq!(got[1].1.compression(), 3);
        assert_eq!(iter_batches(&blob[..first - 1]).count(), 0);
    }

    #[test]
    fn varints() {
        let mut pos = 0;
        assert_eq!(read_varint(&[0x01], &mut pos), Some(-1));
        pos = 0;
        assert_eq!(read_varint(&[0xac, 0x02], &mut pos), Some(150));
        assert_eq!(pos, 2);
        pos = 0;
        assert_eq!(
            read_varlong(
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
                &mut pos
            ),
            Some(i64::MIN)
        );
        pos = 0;
        // Too long for an i32, and an unterminated varint.
        assert_eq!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos), None);
        pos = 0;
        assert_eq!(read_varlong(&[0x80; 11], &mut pos), None);
    }
}
