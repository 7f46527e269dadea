//! Validation of what a producer sends, as Kafka's log validator does it, before the broker
//! gives a batch offsets. [`validate_batches`] is the cheap part every caller can afford:
//! framing, magic, CRC and the header's own consistency. [`validate_batch`] adds the records:
//! decompressed within a bound, each one decoded, counted and checked against the header.

use std::ops::Range;

use super::compression::{decompress, MAX_CODEC, MAX_DECOMPRESSED_BYTES};
use super::header::{
    check_crc, checked_total_len, corrupt, parse_header, read_i32, BatchHeader, BATCH_LENGTH,
    BATCH_OVERHEAD, LOG_OVERHEAD, MAGIC,
};
use super::records::{claimed_count, invalid, room, walk_records};
use crate::Error;

/// Splits a records blob (as sent in Produce, or copied from a leader) into batches and checks
/// each one's framing and header: whole batches only, magic 2, CRC32C, a known compression
/// codec (else `CorruptBatch`), `record_count >= 1`, `last_offset_delta == record_count - 1`,
/// and a count the records could hold: the bytes present when uncompressed,
/// [`MAX_DECOMPRESSED_BYTES`] when compressed (else `InvalidRecord`). The records themselves
/// are not read; see [`validate_batch`]. Returns each batch's byte range and header.
pub fn validate_batches(records: &[u8]) -> Result<Vec<(Range<usize>, BatchHeader)>, Error> {
    split_batches(records, MAX_DECOMPRESSED_BYTES)
}

/// Everything Kafka's log validator checks of one whole batch before it gets offsets: what
/// [`validate_batches`] checks, then every record, decompressed within
/// [`MAX_DECOMPRESSED_BYTES`]: each record's fields parse and fill its length, there are as
/// many records as the header counts, their offset deltas run 0 to the last offset delta in
/// order, and nothing follows them. Returns the batch's header. Reads only: a valid batch is
/// stored exactly as sent.
pub fn validate_batch(batch: &[u8]) -> Result<BatchHeader, Error> {
    validate_batch_within(batch, MAX_DECOMPRESSED_BYTES)
}

/// [`validate_batch`] with the records decompressing to at most `limit` bytes.
pub(super) fn validate_batch_within(batch: &[u8], limit: usize) -> Result<BatchHeader, Error> {
    let header = match split_batches(batch, limit)?.as_slice() {
        [(_, header)] => *header,
        more => {
            return Err(corrupt(
                0,
                format!("expected one batch, got {}", more.len()),
            ));
        }
    };
    let section = batch.get(BATCH_OVERHEAD..).unwrap_or_default();
    let count = claimed_count(&header, room(&header, section, limit))?;
    let records = decompress(header.compression(), section, limit)?;
    walk_records(&records, count, |_, _| Ok(()))?;
    Ok(header)
}

fn split_batches(records: &[u8], limit: usize) -> Result<Vec<(Range<usize>, BatchHeader)>, Error> {
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
        check_header(&header, batch, limit).map_err(|e| at(e, pos))?;
        batches.push((pos..pos + total, header));
        pos += total;
    }
    Ok(batches)
}

/// The header's own consistency, as Kafka checks it before reading records.
fn check_header(header: &BatchHeader, batch: &[u8], limit: usize) -> Result<(), Error> {
    let codec = header.compression();
    if codec > MAX_CODEC {
        return Err(corrupt(0, format!("unknown compression codec {codec}")));
    }
    if header.record_count < 1 {
        return Err(invalid(format!(
            "record count {} (must be at least 1)",
            header.record_count
        )));
    }
    if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
        return Err(invalid(format!(
            "last offset delta {} does not match record count {}",
            header.last_offset_delta, header.record_count
        )));
    }
    let section = batch.get(BATCH_OVERHEAD..).unwrap_or_default();
    claimed_count(header, room(header, section, limit)).map(drop)
}

/// `error` with its position moved to where its batch starts in the blob.
fn at(error: Error, batch_start: usize) -> Error {
    match error {
        Error::CorruptBatch { position, reason } => Error::CorruptBatch {
            position: position + batch_start,
            reason,
        },
        Error::InvalidRecord { position, reason } => Error::InvalidRecord {
            position: position + batch_start,
            reason,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::batch::fixtures::{
        batch, compress, framed, junk, only_header, raw_batch, record_body, varint, with_header,
        CODECS,
    };
    use crate::batch::header::{ATTRIBUTES, CRC, LAST_OFFSET_DELTA, RECORD_COUNT};
    use crate::batch::records::record_timestamps_within;
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
    fn inconsistent_counts_are_invalid_and_unknown_codecs_corrupt() {
        fn put(b: &mut [u8], at: usize, v: i32) {
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        type Edit = fn(&mut [u8]);
        let cases: [(&str, Edit); 4] = [
            ("zero records", |b| put(b, RECORD_COUNT, 0)),
            ("negative records", |b| put(b, RECORD_COUNT, -3)),
            ("delta mismatch", |b| put(b, LAST_OFFSET_DELTA, 9)),
            ("records cannot fit", |b| {
                put(b, RECORD_COUNT, i32::MAX);
                put(b, LAST_OFFSET_DELTA, i32::MAX - 1);
            }),
        ];
        for (what, edit) in cases {
            let bytes = with_header(Compression::None, edit);
            assert!(
                matches!(validate_batches(&bytes), Err(Error::InvalidRecord { .. })),
                "{what}: {:?}",
                validate_batches(&bytes)
            );
        }
        let bytes = with_header(Compression::None, |b| b[ATTRIBUTES + 1] |= 5);
        assert!(matches!(
            validate_batches(&bytes),
            Err(Error::CorruptBatch { .. })
        ));
    }

    /// Kafka's log validator reads every record; these are the inputs the hardening issue saw
    /// accepted and stored.
    fn refused_as_invalid(batch: &[u8]) -> bool {
        matches!(validate_batch(batch), Err(Error::InvalidRecord { .. }))
    }

    /// "A Produce whose batch says zstd but carries 40 random bytes is accepted and stored."
    #[test]
    fn zstd_attributes_over_random_bytes_are_refused() {
        let bad = raw_batch(Compression::Zstd as u8, 1, &junk(40, 7));
        assert!(validate_batches(&bad).is_ok(), "the header alone is fine");
        assert!(
            matches!(validate_batch(&bad), Err(Error::CorruptBatch { .. })),
            "{:?}",
            validate_batch(&bad)
        );
    }

    /// "An uncompressed batch claiming 10 records with 70 bytes of 0xFF is accepted."
    #[test]
    fn ten_records_of_0xff_are_refused() {
        let bad = raw_batch(0, 10, &[0xff; 70]);
        assert!(validate_batches(&bad).is_ok(), "the header alone is fine");
        assert!(refused_as_invalid(&bad), "{:?}", validate_batch(&bad));
    }

    /// "A compressed batch claiming 2^31-1 records is accepted and the next batch gets base
    /// offset 2147483647." The claim alone is refused, before anything is decompressed.
    #[test]
    fn compressed_batch_claiming_i32_max_records_is_refused() {
        for codec in CODECS {
            let bad = with_header(codec, |b| {
                b[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&i32::MAX.to_be_bytes());
                b[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4]
                    .copy_from_slice(&(i32::MAX - 1).to_be_bytes());
            });
            assert!(
                matches!(validate_batches(&bad), Err(Error::InvalidRecord { .. })),
                "{codec:?}: {:?}",
                validate_batches(&bad)
            );
            assert!(refused_as_invalid(&bad), "{codec:?}");
        }
    }

    /// A batch whose records inflate past the bound is refused when the output reaches it, by
    /// the produce check and by ListOffsets reading a stored batch; under a bound it fits, the
    /// same records are only checked (they are zeros here, so they are not valid records).
    #[test]
    fn decompression_bombs_are_refused_at_the_bound() {
        const BOUND: usize = 1 << 20;
        let zeros = vec![0u8; 4 * BOUND];
        for codec in &CODECS[1..] {
            let bomb = raw_batch(*codec as u8, 1, &compress(*codec, &zeros));
            let over = |r: Result<(), Error>| matches!(r, Err(Error::InvalidRecord { reason, .. }) if reason.contains("decompress"));
            assert!(
                over(validate_batch_within(&bomb, BOUND).map(drop)),
                "{codec:?}: {:?}",
                validate_batch_within(&bomb, BOUND)
            );
            assert!(
                over(record_timestamps_within(&bomb, BOUND).map(drop)),
                "{codec:?}"
            );
            let within = validate_batch_within(&bomb, 8 * BOUND);
            assert!(
                matches!(&within, Err(Error::InvalidRecord { reason, .. }) if !reason.contains("decompress")),
                "{codec:?}: {within:?}"
            );
        }
    }

    /// Valid batches of every codec pass the records check and come back with their header;
    /// the check only reads, so the bytes stored are the bytes sent.
    #[test]
    fn valid_batches_pass_the_records_check() {
        for codec in CODECS {
            let bytes = batch(codec);
            let before = bytes.clone();
            assert_eq!(validate_batch(&bytes), Ok(only_header(&bytes)), "{codec:?}");
            assert_eq!(bytes, before);
        }
        let mut two = batch(Compression::None);
        two.extend_from_slice(&batch(Compression::None));
        assert!(matches!(
            validate_batch(&two),
            Err(Error::CorruptBatch { .. })
        ));
    }

    /// Every rule Kafka's validator applies to the records, broken one at a time in an
    /// otherwise valid batch of three, uncompressed and under each codec.
    #[test]
    fn each_record_rule_is_checked() {
        let rec = |delta: i64| framed(&record_body(delta, Some(b"k"), Some(b"v")));
        let good = [rec(0), rec(1), rec(2)].concat();
        for codec in CODECS {
            let ok = raw_batch(codec as u8, 3, &compress(codec, &good));
            assert_eq!(
                validate_batch(&ok).map(|h| h.record_count),
                Ok(3),
                "{codec:?}"
            );
        }
        let mut nulls = framed(&record_body(0, None, None));
        nulls.extend_from_slice(&framed(&record_body(1, None, Some(b""))));
        assert!(validate_batch(&raw_batch(0, 2, &nulls)).is_ok());

        let with_fields = |fields: &[i64]| {
            let mut body = vec![0];
            for &f in fields {
                varint(f, &mut body);
            }
            framed(&body)
        };
        let mut long = record_body(0, Some(b"k"), None);
        long.push(0);
        let short = record_body(0, Some(b"k"), None);
        let mut short_framed = Vec::new();
        varint(short.len() as i64 - 1, &mut short_framed);
        short_framed.extend_from_slice(&short);
        let cases: Vec<(&str, i32, Vec<u8>)> = vec![
            (
                "offset deltas out of order",
                3,
                [rec(0), rec(2), rec(1)].concat(),
            ),
            (
                "offset delta repeated",
                3,
                [rec(0), rec(1), rec(1)].concat(),
            ),
            (
                "offset deltas not from 0",
                3,
                [rec(1), rec(2), rec(3)].concat(),
            ),
            ("fewer records than counted", 4, good.clone()),
            ("more records than counted", 2, good.clone()),
            (
                "bytes after the last record",
                3,
                [good.clone(), vec![0]].concat(),
            ),
            ("record longer than its fields", 1, framed(&long)),
            ("record shorter than its fields", 1, short_framed),
            ("negative record length", 1, vec![0x01; 8]),
            ("key length below -1", 1, with_fields(&[0, 0, -2, -1, 0])),
            (
                "value runs past the record",
                1,
                with_fields(&[0, 0, -1, 40, 0]),
            ),
            ("negative header count", 1, with_fields(&[0, 0, -1, -1, -1])),
            (
                "null header key",
                1,
                with_fields(&[0, 0, -1, -1, 1, -1, -1]),
            ),
            ("unterminated varint", 1, framed(&[0, 0x80, 0x80, 0x80])),
        ];
        for (what, count, records) in cases {
            for codec in CODECS {
                let bad = raw_batch(codec as u8, count, &compress(codec, &records));
                assert!(
                    refused_as_invalid(&bad),
                    "{what} ({codec:?}): {:?}",
                    validate_batch(&bad)
                );
            }
        }
    }
}
