//! The records inside a batch: decoding their varint framing the way Kafka's log validator
//! does, and the (offset, timestamp) of each, which ListOffsets by timestamp needs.
//!
//! A record is: length (varint), attributes (byte), timestamp delta (varlong), offset delta
//! (varint), key length (varint, -1 for null) and key, value length and value, header count
//! (varint) and that many headers of key length (never null) and key, value length and value.

use super::compression::{decompress, MAX_DECOMPRESSED_BYTES};
use super::header::{check_crc, checked_header, BatchHeader, BATCH_OVERHEAD};
use crate::Error;

/// The smallest possible encoded record: length, attributes, timestamp delta, offset delta, key
/// length, value length and header count, one byte each. Bounds how many records a given number
/// of bytes can hold, so a lying record count cannot make us allocate.
pub(super) const MIN_RECORD_BYTES: usize = 7;

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

/// A rule broken inside a batch's records.
pub(super) fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidRecord {
        position: BATCH_OVERHEAD,
        reason: reason.into(),
    }
}

/// The header's record count, refused before anything is decompressed or allocated for it when
/// it is negative or more than `room` bytes of records could hold.
pub(super) fn claimed_count(header: &BatchHeader, room: usize) -> Result<usize, Error> {
    let count = usize::try_from(header.record_count)
        .map_err(|_| invalid(format!("negative record count {}", header.record_count)))?;
    if count > room / MIN_RECORD_BYTES {
        return Err(invalid(format!(
            "{count} records cannot fit in {room} bytes"
        )));
    }
    Ok(count)
}

/// The bytes a batch's records may take once decompressed: the records section itself when
/// uncompressed, the bound otherwise.
pub(super) fn room(header: &BatchHeader, section: &[u8], limit: usize) -> usize {
    if header.compression() == 0 {
        section.len()
    } else {
        limit
    }
}

/// What the broker reads of one record.
#[derive(Debug, Clone, Copy)]
pub(super) struct RecordFields {
    pub timestamp_delta: i64,
    pub offset_delta: i32,
}

/// Decodes the `count` records of a (decompressed) records section as Kafka's validator reads
/// them: every record's fields parse and fill exactly its length, the offset deltas run
/// 0, 1, ..., count - 1, and nothing follows the last record. Calls `each` with every record's
/// index and fields, in order.
pub(super) fn walk_records(
    records: &[u8],
    count: usize,
    mut each: impl FnMut(usize, RecordFields) -> Result<(), Error>,
) -> Result<(), Error> {
    if count > records.len() / MIN_RECORD_BYTES {
        return Err(invalid(format!(
            "{count} records cannot fit in {} bytes",
            records.len()
        )));
    }
    let mut pos = 0;
    for i in 0..count {
        let start = pos;
        let bad = |what: String| invalid(format!("record {i} at byte {start}: {what}"));
        let len = read_varint(records, &mut pos).ok_or_else(|| bad("bad length".into()))?;
        let len = usize::try_from(len).map_err(|_| bad(format!("negative length {len}")))?;
        let end = pos
            .checked_add(len)
            .filter(|&end| end <= records.len())
            .ok_or_else(|| bad(format!("length {len} runs past the records")))?;
        let fields = parse_record(records.get(pos..end).unwrap_or_default()).map_err(bad)?;
        if usize::try_from(fields.offset_delta).ok() != Some(i) {
            return Err(bad(format!("offset delta {}", fields.offset_delta)));
        }
        each(i, fields)?;
        pos = end;
    }
    if pos != records.len() {
        return Err(invalid(format!(
            "{} bytes after the last of {count} records",
            records.len() - pos
        )));
    }
    Ok(())
}

/// One record's fields after its length field, which must fill `body` exactly.
fn parse_record(body: &[u8]) -> Result<RecordFields, String> {
    let mut at = 1; // the attributes byte, unused in format v2
    if body.is_empty() {
        return Err("no attributes".into());
    }
    let timestamp_delta = read_varlong(body, &mut at).ok_or("bad timestamp delta")?;
    let offset_delta = read_varint(body, &mut at).ok_or("bad offset delta")?;
    skip_field(body, &mut at, true).map_err(|e| format!("key: {e}"))?;
    skip_field(body, &mut at, true).map_err(|e| format!("value: {e}"))?;
    let headers = read_varint(body, &mut at).ok_or("bad header count")?;
    if headers < 0 {
        return Err(format!("negative header count {headers}"));
    }
    // Every header takes at least two bytes, so a huge count runs out of record first.
    for h in 0..headers {
        skip_field(body, &mut at, false).map_err(|e| format!("header {h} key: {e}"))?;
        skip_field(body, &mut at, true).map_err(|e| format!("header {h} value: {e}"))?;
    }
    if at != body.len() {
        return Err(format!(
            "{} bytes after its fields (length {})",
            body.len() - at,
            body.len()
        ));
    }
    Ok(RecordFields {
        timestamp_delta,
        offset_delta,
    })
}

/// Skips a length-prefixed field; -1 is null where `nullable`.
fn skip_field(body: &[u8], at: &mut usize, nullable: bool) -> Result<(), String> {
    let len = read_varint(body, at).ok_or("bad length")?;
    if len == -1 && nullable {
        return Ok(());
    }
    let len = usize::try_from(len).map_err(|_| format!("length {len}"))?;
    *at = at
        .checked_add(len)
        .filter(|&end| end <= body.len())
        .ok_or_else(|| format!("length {len} runs past the record"))?;
    Ok(())
}

/// Folds `f` over every record's (absolute offset, timestamp) in the batch at the start of
/// `batch`, in order, decompressing within [`MAX_DECOMPRESSED_BYTES`]. Offsets use the base
/// offset stored in the bytes. In LogAppendTime batches every record's timestamp is the batch's
/// max_timestamp, as Kafka reads them. The CRC is verified and the records are checked as they
/// are read; nothing is kept per record, so a batch costs its decompressed size at most.
///
/// This walks the records itself rather than through kafka-protocol's `RecordBatchDecoder`,
/// which pre-allocates from the (attacker-chosen) record count and adds deltas unchecked.
pub fn fold_timestamps<B>(
    batch: &[u8],
    init: B,
    f: impl FnMut(B, i64, i64) -> B,
) -> Result<B, Error> {
    fold_timestamps_within(batch, MAX_DECOMPRESSED_BYTES, init, f)
}

/// [`fold_timestamps`] with the records decompressing to at most `limit` bytes.
pub(super) fn fold_timestamps_within<B>(
    batch: &[u8],
    limit: usize,
    init: B,
    mut f: impl FnMut(B, i64, i64) -> B,
) -> Result<B, Error> {
    let (header, total) = checked_header(batch)?;
    let batch = batch.get(..total).unwrap_or_default();
    check_crc(batch, header.crc)?;
    let section = batch.get(BATCH_OVERHEAD..).unwrap_or_default();
    let count = claimed_count(&header, room(&header, section, limit))?;
    let records = decompress(header.compression(), section, limit)?;
    let mut acc = Some(init);
    walk_records(&records, count, |i, fields| {
        let overflow = |what: &str| invalid(format!("record {i}: {what} overflows"));
        let offset = header
            .base_offset
            .checked_add(i64::from(fields.offset_delta))
            .ok_or_else(|| overflow("offset"))?;
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header
                .base_timestamp
                .checked_add(fields.timestamp_delta)
                .ok_or_else(|| overflow("timestamp"))?
        };
        acc = acc.take().map(|b| f(b, offset, timestamp));
        Ok(())
    })?;
    // The accumulator is only out of its slot while `f` runs.
    acc.ok_or_else(|| invalid("lost the fold's accumulator"))
}

/// Every record's (absolute offset, timestamp), for tests.
#[cfg(test)]
pub(crate) fn record_timestamps(batch: &[u8]) -> Result<Vec<(i64, i64)>, Error> {
    record_timestamps_within(batch, MAX_DECOMPRESSED_BYTES)
}

#[cfg(test)]
pub(super) fn record_timestamps_within(
    batch: &[u8],
    limit: usize,
) -> Result<Vec<(i64, i64)>, Error> {
    fold_timestamps_within(batch, limit, Vec::new(), |mut all, o, t| {
        all.push((o, t));
        all
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::batch::fixtures::{batch, with_header, CODECS, TIMESTAMPS};
    use crate::batch::header::{BASE_TIMESTAMP, RECORD_COUNT};
    use crate::batch::set_base_offset;

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
                Err(Error::InvalidRecord { .. })
            ));
        }
        // More records claimed than present (but plausible for the size).
        let bytes = with_header(Compression::Zstd, |b| {
            b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&6i32.to_be_bytes())
        });
        assert!(matches!(
            record_timestamps(&bytes),
            Err(Error::InvalidRecord { .. })
        ));
        // Timestamps that would overflow are an error, not a panic.
        let bytes = with_header(Compression::None, |b| {
            b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&i64::MAX.to_be_bytes())
        });
        assert!(matches!(
            record_timestamps(&bytes),
            Err(Error::InvalidRecord { .. })
        ));
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
