//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::panic)]

use brook_storage::{BatchMeta, LogConfig, PartitionLog};

pub const TOPIC_A: [u8; 16] = [0xa; 16];
pub const TOPIC_B: [u8; 16] = [0xb; 16];

/// Deterministic fake batch bytes for a batch at `base` (the log never parses them).
pub fn batch_bytes(base: u64, len: usize) -> Vec<u8> {
    let mut v = format!("batch@{base};").into_bytes();
    while v.len() < len {
        v.push(b'a' + (v.len() as u64 * 31 + base) as u8 % 26);
    }
    v.truncate(len.max(1));
    v
}

pub fn plain(records: i32, ts: i64) -> BatchMeta {
    BatchMeta {
        last_offset_delta: records - 1,
        max_timestamp: ts,
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        leader_epoch: 0,
    }
}

pub fn idem(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchMeta {
    BatchMeta {
        last_offset_delta: records - 1,
        max_timestamp: 1_000,
        producer_id: pid,
        producer_epoch: epoch,
        base_sequence: seq,
        leader_epoch: 0,
    }
}

pub fn tiny_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 100,
        segment_ms: -1,
        retention_ms: -1,
        retention_bytes: -1,
    }
}

/// Appends at the log end; returns the batch's base offset.
pub fn push(log: &mut PartitionLog, meta: BatchMeta, len: usize, now: i64) -> u64 {
    let base = log.log_end_offset();
    let (b, last) = log
        .append(base, &meta, &batch_bytes(base, len), now)
        .unwrap();
    assert_eq!((b, last), (base, base + meta.last_offset_delta as u64));
    base
}
