//! Batches for the tests of this module's parts: every codec, five records with timestamps out
//! of order, header edits that keep the CRC valid, and hand-made records and records sections.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::header::{
    ATTRIBUTES, BATCH_LENGTH, BATCH_OVERHEAD, CRC, LAST_OFFSET_DELTA, LOG_OVERHEAD, RECORD_COUNT,
};
use super::{validate_batches, BatchHeader};

pub const CODECS: [Compression; 5] = [
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
pub const TIMESTAMPS: [i64; 5] = [1_000, 1_500, 1_200, 2_000, 1_900];

pub fn batch(compression: Compression) -> BytesMut {
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

pub fn only_header(bytes: &[u8]) -> BatchHeader {
    let batches = validate_batches(bytes).unwrap();
    assert_eq!(batches.len(), 1);
    assert_eq!(batches[0].0, 0..bytes.len());
    batches[0].1
}

/// Rewrites header fields of a valid batch and fixes up the CRC, to reach the checks after it.
pub fn with_header(codec: Compression, edit: impl Fn(&mut [u8])) -> BytesMut {
    let mut bytes = batch(codec);
    edit(&mut bytes);
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES..]);
    bytes[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// Deterministic junk bytes (xorshift), so a failure reproduces.
pub fn junk(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A batch whose records section is `records` as given (already compressed if `codec` says
/// so) and that claims `count` records: a real batch's header with its length, count, last
/// offset delta and codec rewritten and its CRC fixed, so only the records can be wrong.
pub fn raw_batch(codec: u8, count: i32, records: &[u8]) -> Vec<u8> {
    let mut bytes = batch(Compression::None)[..BATCH_OVERHEAD].to_vec();
    bytes.extend_from_slice(records);
    let length = i32::try_from(bytes.len() - LOG_OVERHEAD).unwrap();
    bytes[BATCH_LENGTH..BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    bytes[RECORD_COUNT..RECORD_COUNT + 4].copy_from_slice(&count.to_be_bytes());
    let delta = count.wrapping_sub(1);
    bytes[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&delta.to_be_bytes());
    bytes[ATTRIBUTES + 1] = (bytes[ATTRIBUTES + 1] & !0x07) | codec;
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES..]);
    bytes[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// Appends `v` as a zigzag varint, the way record fields are written.
pub fn varint(v: i64, out: &mut Vec<u8>) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// A record's bytes after its length field: attributes, timestamp delta 0, `offset_delta`, a
/// key, a value and one header (`None` lengths are written as -1, null).
pub fn record_body(offset_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut out = vec![0];
    varint(0, &mut out);
    varint(offset_delta, &mut out);
    for field in [key, value] {
        match field {
            Some(b) => {
                varint(b.len() as i64, &mut out);
                out.extend_from_slice(b);
            }
            None => varint(-1, &mut out),
        }
    }
    varint(1, &mut out);
    varint(1, &mut out);
    out.push(b'h');
    varint(1, &mut out);
    out.push(b'x');
    out
}

/// A record: its length, then `body`.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(body.len() as i64, &mut out);
    out.extend_from_slice(body);
    out
}

/// `data` compressed with `codec`, framed the way Kafka producers frame it.
pub fn compress(codec: Compression, data: &[u8]) -> Vec<u8> {
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
    let mut out = BytesMut::new();
    let fill = |buf: &mut BytesMut| {
        buf.extend_from_slice(data);
        Ok(())
    };
    match codec {
        Compression::None => out.extend_from_slice(data),
        Compression::Gzip => Gzip::compress(&mut out, fill).unwrap(),
        Compression::Snappy => Snappy::compress(&mut out, fill).unwrap(),
        Compression::Lz4 => Lz4::compress(&mut out, fill).unwrap(),
        Compression::Zstd => Zstd::compress(&mut out, fill).unwrap(),
    }
    out.to_vec()
}
