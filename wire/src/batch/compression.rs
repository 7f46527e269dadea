//! Decompressing the records section of a batch, with the codecs kafka-protocol ships.

use bytes::Bytes;
use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};

use super::header::{corrupt, BATCH_OVERHEAD};
use crate::Error;

/// Codec ids above this one are unknown.
pub(super) const MAX_CODEC: u8 = 4;

/// The records section of a batch, decompressed.
pub(super) fn decompress(codec: u8, records: &[u8]) -> Result<Bytes, Error> {
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
