//! Batches for the tests of this module's parts: every codec, five records with timestamps out
//! of order, and header edits that keep the CRC valid.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::header::{ATTRIBUTES, CRC};
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
