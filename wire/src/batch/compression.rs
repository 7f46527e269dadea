//! Decompressing the records section of a batch, with a hard bound on the output.
//!
//! A compressed batch is small on the wire and may be huge inside: a 128 KB zstd batch of zeros
//! inflates to gigabytes. Every decompressor here writes into a buffer that stops at the bound
//! and refuses the batch when the data would go past it, and the snappy decoder checks each
//! block's claimed length against the bound before allocating for it. kafka-protocol's codecs
//! inflate everything (and its snappy path pre-sizes from the claim), so the codec crates are
//! used directly.

use std::borrow::Cow;
use std::io::Read;

use super::header::{corrupt, BATCH_OVERHEAD};
use crate::Error;

/// The most the records of one batch may decompress to: 64 MiB. Kafka's `max.message.bytes`
/// defaults to 1 MiB and real data rarely compresses better than 10:1, so a valid batch stays
/// far below this; a bomb is stopped here, which bounds what one batch can cost a partition
/// actor in memory (and, since decompressing is linear in its output, in time).
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// How xerial's snappy framing (snappy-java, which Java producers use) starts: this magic, a
/// version and a compatible version (4 bytes each), then blocks of a 4-byte length and a raw
/// snappy block.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const XERIAL_HEADER: usize = 16;

/// Codec ids above this one are unknown.
pub(super) const MAX_CODEC: u8 = 4;

/// How much a decompressor is asked for at a time.
const CHUNK: usize = 32 << 10;

fn undecodable(codec: u8, why: impl std::fmt::Display) -> Error {
    corrupt(
        BATCH_OVERHEAD,
        format!("cannot decompress {} records: {why}", codec_name(codec)),
    )
}

fn over_the_bound(limit: usize) -> Error {
    Error::InvalidRecord {
        position: BATCH_OVERHEAD,
        reason: format!("records decompress to more than {limit} bytes"),
    }
}

fn codec_name(codec: u8) -> &'static str {
    match codec {
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "uncompressed",
    }
}

/// The records section of a batch compressed with `codec`, decompressed within
/// [`MAX_DECOMPRESSED_BYTES`]: for clients that decode what they fetch (`brook consume`).
pub fn decompress_records(codec: u8, records: &[u8]) -> Result<Vec<u8>, Error> {
    decompress(codec, records, MAX_DECOMPRESSED_BYTES).map(Cow::into_owned)
}

/// The records section of a batch, decompressed into at most `limit` bytes (uncompressed
/// records are borrowed, not copied). Data that does not decode is `CorruptBatch`; data that
/// would decode past `limit` is `InvalidRecord`, found without holding more than `limit`.
pub(super) fn decompress(codec: u8, records: &[u8], limit: usize) -> Result<Cow<'_, [u8]>, Error> {
    if codec == 0 {
        return Ok(Cow::Borrowed(records));
    }
    if codec > MAX_CODEC {
        return Err(corrupt(0, format!("unknown compression codec {codec}")));
    }
    if records.is_empty() {
        return Err(undecodable(codec, "no compressed data"));
    }
    let out = match codec {
        1 => read_bounded(codec, flate2::read::MultiGzDecoder::new(records), limit)?,
        2 => snappy(records, limit)?,
        3 => lz4(records, limit)?,
        // zstd's default window limit (2^27) is the one Kafka's decoder has too; the window is
        // only written as far as the output goes, which the bound stops.
        _ => {
            let decoder =
                zstd::stream::read::Decoder::with_buffer(records).map_err(|e| undecodable(4, e))?;
            read_bounded(codec, decoder, limit)?
        }
    };
    Ok(Cow::Owned(out))
}

/// Appends `bytes` to `out` unless that would pass `limit`, growing `out` at most to `limit`
/// (a plain `extend` could double it past the bound).
fn push_bounded(out: &mut Vec<u8>, bytes: &[u8], limit: usize) -> Result<(), Error> {
    let needed = out.len().saturating_add(bytes.len());
    if needed > limit {
        return Err(over_the_bound(limit));
    }
    if needed > out.capacity() {
        let target = needed.max(out.capacity().saturating_mul(2)).min(limit);
        out.reserve_exact(target - out.len());
    }
    out.extend_from_slice(bytes);
    Ok(())
}

/// Reads a decompressor to its end, refusing to hold more than `limit` bytes.
fn read_bounded(codec: u8, mut reader: impl Read, limit: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => push_bounded(&mut out, chunk.get(..n).unwrap_or_default(), limit)?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(undecodable(codec, e)),
        }
    }
}

/// One LZ4 frame (Kafka's framing since message format v1), read to its end mark; a
/// truncated frame or bytes after it are corrupt.
fn lz4(records: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut decoder = lz4::Decoder::new(records).map_err(|e| undecodable(3, e))?;
    let out = read_bounded(3, &mut decoder, limit)?;
    let (rest, finished) = decoder.finish();
    finished.map_err(|e| undecodable(3, e))?;
    if !rest.is_empty() {
        return Err(undecodable(
            3,
            format!("{} bytes after the frame", rest.len()),
        ));
    }
    Ok(out)
}

/// Snappy in xerial framing, or a single raw block when the magic is absent (as snappy-java
/// reads it). Each block's claimed length is checked against what is left of the bound before
/// any memory is set aside for it.
fn snappy(records: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    if !records.starts_with(&XERIAL_MAGIC) {
        snappy_block(records, &mut out, limit)?;
        return Ok(out);
    }
    let mut rest = records
        .get(XERIAL_HEADER..)
        .ok_or_else(|| undecodable(2, "short xerial header"))?;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| undecodable(2, "short block length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail
            .get(..len)
            .ok_or_else(|| undecodable(2, format!("block of {len} bytes is cut short")))?;
        snappy_block(block, &mut out, limit)?;
        rest = tail.get(len..).unwrap_or_default();
    }
    Ok(out)
}

fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
    let claimed = snap::raw::decompress_len(block).map_err(|e| undecodable(2, e))?;
    let start = out.len();
    if claimed > limit.saturating_sub(start) {
        return Err(over_the_bound(limit));
    }
    out.resize(start + claimed, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, out.get_mut(start..).unwrap_or_default())
        .map_err(|e| undecodable(2, e))?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::Compression;

    use super::*;
    use crate::batch::fixtures::{compress, junk};

    /// What every bounded refusal looks like.
    fn over_the_bound(result: Result<Cow<'_, [u8]>, Error>) -> bool {
        matches!(result, Err(Error::InvalidRecord { reason, .. }) if reason.contains("decompress"))
    }

    const COMPRESSED: [Compression; 4] = [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Each codec's bomb (a few MiB of zeros, which compress to almost nothing) stops at the
    /// bound instead of inflating; below the bound the same data comes back whole.
    #[test]
    fn bombs_stop_at_the_bound() {
        const BOUND: usize = 1 << 20;
        let zeros = vec![0u8; 4 * BOUND];
        for codec in COMPRESSED {
            let bomb = compress(codec, &zeros);
            assert!(bomb.len() < BOUND / 4, "{codec:?}: {} bytes", bomb.len());
            assert!(
                over_the_bound(decompress(codec as u8, &bomb, BOUND)),
                "{codec:?}"
            );
            let whole = decompress(codec as u8, &bomb, 4 * BOUND).unwrap();
            assert_eq!(whole.len(), 4 * BOUND, "{codec:?}");
            assert!(
                over_the_bound(decompress(codec as u8, &bomb, 4 * BOUND - 1)),
                "{codec:?}: one byte over"
            );
        }
    }

    /// A snappy block says up front how long it decompresses to; a block claiming 3 GB is
    /// refused from that claim, before anything is allocated for it, raw or in xerial framing.
    #[test]
    fn snappy_claiming_gigabytes_is_refused_before_allocating() {
        let mut block = vec![0x80, 0xbc, 0xc1, 0x96, 0x0b]; // 3_000_000_000 as a varint
        block.extend_from_slice(&junk(21, 3));
        assert_eq!(block.len(), 26);
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        framed.extend_from_slice(&(block.len() as u32).to_be_bytes());
        framed.extend_from_slice(&block);
        for records in [&block, &framed] {
            assert!(over_the_bound(decompress(
                Compression::Snappy as u8,
                records,
                MAX_DECOMPRESSED_BYTES
            )));
        }
        // The claims of several blocks add up.
        let half = compress(Compression::Snappy, &[7u8; 600]);
        let mut twice = half.clone();
        twice.extend_from_slice(&half[16..]);
        assert_eq!(decompress(2, &twice, 1200).unwrap().len(), 1200);
        assert!(over_the_bound(decompress(2, &twice, 1199)));
    }

    /// Garbage under any codec is corrupt, not a panic; truncated streams too.
    #[test]
    fn undecodable_input_is_corrupt() {
        for codec in COMPRESSED {
            for input in [junk(40, 9), Vec::new()] {
                assert!(
                    matches!(
                        decompress(codec as u8, &input, MAX_DECOMPRESSED_BYTES),
                        Err(Error::CorruptBatch { .. })
                    ),
                    "{codec:?}"
                );
            }
            let good = compress(codec, &junk(5_000, 1));
            for cut in [1, good.len() / 2, good.len() - 1] {
                assert!(
                    decompress(codec as u8, &good[..cut], MAX_DECOMPRESSED_BYTES).is_err(),
                    "{codec:?} cut to {cut} of {}",
                    good.len()
                );
            }
        }
        assert!(matches!(
            decompress(5, b"x", MAX_DECOMPRESSED_BYTES),
            Err(Error::CorruptBatch { .. })
        ));
    }
}
