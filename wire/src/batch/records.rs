//! The records inside a batch: their varint framing, and the (offset, timestamp) of each, which
//! ListOffsets by timestamp needs.

use super::compression::decompress;
use super::header::{check_crc, checked_header, corrupt, BATCH_OVERHEAD};
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
