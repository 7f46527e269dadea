//! Validation of a records blob as a producer sends it: split into whole batches, each checked
//! before the broker gives it offsets.

use std::ops::Range;

use super::compression::MAX_CODEC;
use super::header::{
    check_crc, checked_total_len, corrupt, parse_header, read_i32, BatchHeader, BATCH_LENGTH,
    BATCH_OVERHEAD, LOG_OVERHEAD, MAGIC,
};
use super::records::MIN_RECORD_BYTES;
use crate::Error;

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

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::batch::fixtures::{batch, only_header, with_header, CODECS};
    use crate::batch::header::{ATTRIBUTES, CRC, LAST_OFFSET_DELTA, RECORD_COUNT};
    use crate::batch::{record_timestamps, set_log_append_time};

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
            assert_eq!(checked_total_len(h.batch_length, 0).unwrap(), bytes.len());
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
}
