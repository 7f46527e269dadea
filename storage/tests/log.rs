//! Behaviour of a partition log: appends, reads, rolls, retention, truncation, producer state.
// Test helpers live outside #[test] fns, where clippy's allow-unwrap-in-tests does not reach.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use brook_storage::{Error, LogConfig, ProducerCheck, Store};
use common::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

#[test]
fn append_and_read_across_segment_rolls() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    let mut bases = Vec::new();
    for i in 0..20 {
        bases.push(push(&mut log, plain(3, i), 40, i));
    }
    assert_eq!(log.log_end_offset(), 60);
    // 40-byte batches in 100-byte segments: two per segment.
    let segs = log.segments();
    assert_eq!(segs.len(), 10);
    assert!(segs
        .iter()
        .all(|s| s.size_bytes == 80 && s.batch_count == 2));
    assert_eq!(segs[3].base_offset, 18);
    assert_eq!(log.size_bytes(), 800);

    let all = log.read(0, usize::MAX, 60).unwrap();
    let expected: Vec<u8> = bases.iter().flat_map(|&b| batch_bytes(b, 40)).collect();
    assert_eq!(&all[..], &expected[..]);
    for &b in &bases {
        let got = log.read(b, 1, 60).unwrap();
        assert_eq!(&got[..], &batch_bytes(b, 40)[..]);
    }
}

#[test]
fn read_inside_a_batch_returns_that_batch() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    for i in 0..6 {
        push(&mut log, plain(5, i), 40, 0);
    }
    // Offset 12 is the third record of the batch at 10 (which starts a segment's second half).
    let got = log.read(12, 40, 30).unwrap();
    assert_eq!(&got[..], &batch_bytes(10, 40)[..]);
    let got = log.read(14, 80, 30).unwrap();
    let expected = [batch_bytes(10, 40), batch_bytes(15, 40)].concat();
    assert_eq!(&got[..], &expected[..]);
}

#[test]
fn max_bytes_and_upto() {
    let (_dir, store) = store();
    let mut log = store
        .open_partition(TOPIC_A, 0, LogConfig::default())
        .unwrap();
    for i in 0..5 {
        push(&mut log, plain(2, i), 50, 0);
    }
    // Smaller than one batch: still one batch.
    assert_eq!(log.read(0, 10, 10).unwrap().len(), 50);
    assert_eq!(log.read(0, 0, 10).unwrap().len(), 50);
    // Exactly two batches, and not a byte for a third.
    assert_eq!(log.read(0, 100, 10).unwrap().len(), 100);
    assert_eq!(log.read(0, 149, 10).unwrap().len(), 100);
    // Only batches with base offset < upto.
    assert_eq!(log.read(0, usize::MAX, 4).unwrap().len(), 100);
    assert_eq!(log.read(0, usize::MAX, 5).unwrap().len(), 150);
    assert!(log.read(4, usize::MAX, 4).unwrap().is_empty());
    assert!(log.read(0, usize::MAX, 0).unwrap().is_empty());
}

#[test]
fn offset_out_of_range_edges() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    assert!(log.read(0, 100, 0).unwrap().is_empty());
    assert!(matches!(
        log.read(1, 100, 0),
        Err(Error::OffsetOutOfRange {
            offset: 1,
            log_start: 0,
            log_end: 0
        })
    ));
    for _ in 0..6 {
        push(&mut log, plain(2, 0), 40, 0);
    }
    log.set_high_watermark(12).unwrap();
    assert!(log.read(12, 100, 12).unwrap().is_empty());
    assert!(matches!(
        log.read(13, 100, 12),
        Err(Error::OffsetOutOfRange { offset: 13, .. })
    ));
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert!(matches!(
        log.read(4, 100, 12),
        Err(Error::OffsetOutOfRange {
            offset: 4,
            log_start: 5,
            log_end: 12
        })
    ));
    // The log start sits inside the batch at 4: that batch is returned.
    assert_eq!(&log.read(5, 1, 12).unwrap()[..], &batch_bytes(4, 40)[..]);
}

#[test]
fn not_at_log_end_and_invalid_batches_are_refused() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    push(&mut log, plain(2, 0), 10, 0);
    assert!(matches!(
        log.append(5, &plain(1, 0), b"x", 0),
        Err(Error::NotAtLogEnd {
            expected: 2,
            got: 5
        })
    ));
    assert!(matches!(
        log.append(2, &plain(0, 0), b"x", 0),
        Err(Error::InvalidBatch(_))
    ));
    assert!(matches!(
        log.append(2, &plain(1, 0), b"", 0),
        Err(Error::InvalidBatch(_))
    ));
    assert_eq!(log.log_end_offset(), 2);
}

#[test]
fn find_by_timestamp_across_segments_and_after_retention() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    // Timestamps 100, 200, ... with one out-of-order batch (offset 8, ts 950).
    let mut bases = Vec::new();
    for i in 0..10i64 {
        let ts = if i == 4 { 950 } else { (i + 1) * 100 };
        bases.push(push(&mut log, plain(2, ts), 40, 0));
    }
    let find = |log: &brook_storage::PartitionLog, ts| log.find_by_timestamp(ts).unwrap();
    assert_eq!(find(&log, 0).unwrap().0, 0);
    assert_eq!(find(&log, 250).unwrap().0, 4);
    assert_eq!(find(&log, 301).unwrap().0, 6);
    let (off, bytes) = find(&log, 900).unwrap();
    assert_eq!((off, &bytes[..]), (8, &batch_bytes(8, 40)[..]));
    assert_eq!(find(&log, 960).unwrap().0, 18);
    assert_eq!(find(&log, 1000).unwrap().0, 18);
    assert!(find(&log, 1001).is_none());
    assert_eq!(log.max_timestamp_batch().unwrap().unwrap().0, 18);

    // Retention drops the first two segments (offsets 0..8): lookups start at the new start.
    log.set_high_watermark(u64::MAX).unwrap();
    log.set_config(LogConfig {
        retention_bytes: 6 * 40,
        ..tiny_segments()
    });
    assert_eq!(log.apply_retention(0).unwrap(), 2);
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(find(&log, 0).unwrap().0, 8);
    assert_eq!(find(&log, 960).unwrap().0, 18);
}

#[test]
fn max_timestamp_prefers_the_earliest_batch_and_respects_log_start() {
    let (_dir, store) = store();
    let mut log = store
        .open_partition(TOPIC_A, 0, LogConfig::default())
        .unwrap();
    for ts in [5, 9, 3, 9, 1] {
        push(&mut log, plain(1, ts), 10, 0);
    }
    let (off, bytes) = log.max_timestamp_batch().unwrap().unwrap();
    assert_eq!((off, &bytes[..]), (1, &batch_bytes(1, 10)[..]));
    // The log start passes offset 1 (same segment): the other batch with ts 9 answers.
    log.set_high_watermark(5).unwrap();
    log.delete_records_before(2).unwrap();
    assert_eq!(log.max_timestamp_batch().unwrap().unwrap().0, 3);
}

#[test]
fn retention_by_bytes() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    for i in 0..9 {
        push(&mut log, plain(1, i), 40, 0);
    }
    // Segments of 80, 80, 80, 80 bytes and an active one of 40: 360 bytes.
    assert_eq!(log.size_bytes(), 360);
    log.set_config(LogConfig {
        retention_bytes: 200,
        ..tiny_segments()
    });
    // Nothing goes above the high watermark.
    assert_eq!(log.apply_retention(0).unwrap(), 0);
    log.set_high_watermark(9).unwrap();
    // 360 -> 280 -> 200 (still >= 200 after the second drop), stop at 120 + active 40.
    assert_eq!(log.apply_retention(0).unwrap(), 2);
    assert_eq!(log.size_bytes(), 200);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.segments()[0].base_offset, 4);
    assert_eq!(log.apply_retention(0).unwrap(), 0);
}

#[test]
fn retention_by_time_keeps_the_active_segment() {
    let (_dir, store) = store();
    let config = LogConfig {
        retention_ms: 1_000,
        ..tiny_segments()
    };
    let mut log = store.open_partition(TOPIC_A, 0, config).unwrap();
    for ts in [100, 200, 300, 5_000, 6_000, 7_000, 8_000] {
        push(&mut log, plain(1, ts), 40, 0);
    }
    log.set_high_watermark(7).unwrap();
    // Segment max timestamps: 200, 5000, 7000, active 8000.
    assert_eq!(log.apply_retention(2_000).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 2);
    assert_eq!(log.apply_retention(6_001).unwrap(), 1);
    assert_eq!(log.log_start_offset(), 4);
    assert_eq!(log.apply_retention(1_000_000).unwrap(), 1);
    assert_eq!(log.segments().len(), 1);
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(&log.read(6, 1000, 7).unwrap()[..], &batch_bytes(6, 40)[..]);
}

#[test]
fn segment_ms_rolls_by_age() {
    let (_dir, store) = store();
    let config = LogConfig {
        segment_ms: 1_000,
        ..LogConfig::default()
    };
    let mut log = store.open_partition(TOPIC_A, 0, config).unwrap();
    push(&mut log, plain(1, 0), 10, 10_000);
    push(&mut log, plain(1, 0), 10, 11_000);
    assert_eq!(log.segments().len(), 1);
    push(&mut log, plain(1, 0), 10, 11_001);
    let segs = log.segments();
    assert_eq!(segs.len(), 2);
    assert_eq!((segs[1].base_offset, segs[1].created_ms), (2, 11_001));
}

#[test]
fn delete_records_before() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    for _ in 0..8 {
        push(&mut log, plain(2, 0), 40, 0);
    }
    log.set_high_watermark(10).unwrap();
    assert!(matches!(
        log.delete_records_before(11),
        Err(Error::OffsetOutOfRange { offset: 11, .. })
    ));
    assert_eq!(log.segments().len(), 4);
    // 5 is inside the second segment (4..8): only the first goes.
    assert_eq!(log.delete_records_before(5).unwrap(), 5);
    assert_eq!(log.segments()[0].base_offset, 4);
    // Never moves backwards.
    assert_eq!(log.delete_records_before(2).unwrap(), 5);
    assert_eq!(log.delete_records_before(8).unwrap(), 8);
    assert_eq!(log.segments()[0].base_offset, 8);
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(log.log_end_offset(), 16);
    drop(log);
    let log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    assert_eq!(log.log_start_offset(), 8);
    assert_eq!(log.segments()[0].base_offset, 8);
}

#[test]
fn truncate_to_fixes_epochs_watermark_and_producers() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    let mut seq = 0;
    for epoch in 0..4 {
        for _ in 0..2 {
            let mut meta = idem(7, 0, seq, 2);
            meta.leader_epoch = epoch;
            push(&mut log, meta, 40, 0);
            seq += 2;
        }
    }
    assert_eq!(log.log_end_offset(), 16);
    assert_eq!(log.latest_epoch(), Some(3));
    log.set_high_watermark(16).unwrap();

    // Cut inside the second epoch-2 batch: it stays (base 10 < 11), 12.. goes.
    log.truncate_to(11).unwrap();
    assert_eq!(log.log_end_offset(), 12);
    assert_eq!(log.high_watermark(), 12);
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(2), Some((2, 12)));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 8)));
    assert_eq!(log.end_offset_for_epoch(3), None);
    assert!(matches!(
        log.read(13, 100, 16),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert_eq!(log.read(0, usize::MAX, 16).unwrap().len(), 6 * 40);
    // Producer state is back at sequence 12: the truncated batch is no duplicate any more.
    assert_eq!(
        log.check_append(&idem(7, 0, 12, 2)).unwrap(),
        ProducerCheck::Append { base_offset: 12 }
    );
    assert_eq!(
        log.check_append(&idem(7, 0, 10, 2)).unwrap(),
        ProducerCheck::Duplicate {
            base_offset: 10,
            last_offset: 11
        }
    );
    push(&mut log, idem(7, 0, 12, 2), 40, 0);

    // At a segment boundary, and then the state survives a reopen.
    log.truncate_to(8).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    drop(log);
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    assert_eq!(log.log_end_offset(), 8);
    assert_eq!(log.latest_epoch(), Some(1));
    assert_eq!(
        log.check_append(&idem(7, 0, 8, 2)).unwrap(),
        ProducerCheck::Append { base_offset: 8 }
    );

    // Below the start: the log restarts empty at that offset.
    log.set_high_watermark(8).unwrap();
    log.delete_records_before(4).unwrap();
    log.truncate_to(2).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (2, 2));
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(log.segments().len(), 1);
    push(&mut log, plain(1, 0), 10, 0);
    assert_eq!(&log.read(2, 100, 3).unwrap()[..], &batch_bytes(2, 10)[..]);
}

#[test]
fn producer_dedup_window() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    push(&mut log, plain(3, 0), 10, 0);
    let mut offsets = Vec::new();
    for i in 0..7 {
        let meta = idem(42, 0, i * 2, 2);
        assert_eq!(
            log.check_append(&meta).unwrap(),
            ProducerCheck::Append {
                base_offset: log.log_end_offset()
            }
        );
        offsets.push(push(&mut log, meta, 30, 0));
    }
    // The last five batches are duplicates answered with their original offsets.
    for i in 2..7 {
        let meta = idem(42, 0, i * 2, 2);
        let base = offsets[i as usize];
        assert_eq!(
            log.check_append(&meta).unwrap(),
            ProducerCheck::Duplicate {
                base_offset: base,
                last_offset: base + 1
            }
        );
        assert!(matches!(
            log.append(log.log_end_offset(), &meta, b"dup", 0),
            Err(Error::DuplicateSequence { .. })
        ));
    }
    // Older ones fell out of the window: out of order now.
    assert!(matches!(
        log.check_append(&idem(42, 0, 0, 2)),
        Err(Error::OutOfOrderSequence {
            expected: 14,
            got: 0,
            ..
        })
    ));
    // Same first sequence but a different size is not a duplicate.
    assert!(matches!(
        log.check_append(&idem(42, 0, 12, 3)),
        Err(Error::OutOfOrderSequence { .. })
    ));
    assert_eq!(log.log_end_offset(), 17);
}

#[test]
fn producer_sequence_and_epoch_rules() {
    let (_dir, store) = store();
    let mut log = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    // Unknown producer: any sequence.
    assert!(log.check_append(&idem(1, 3, 100, 1)).is_ok());
    push(&mut log, idem(1, 3, 100, 1), 10, 0);
    // Gap.
    assert!(matches!(
        log.check_append(&idem(1, 3, 102, 1)),
        Err(Error::OutOfOrderSequence {
            producer_id: 1,
            expected: 101,
            got: 102
        })
    ));
    assert!(matches!(
        log.append(1, &idem(1, 3, 102, 1), b"x", 0),
        Err(Error::OutOfOrderSequence { .. })
    ));
    // Fenced epoch.
    assert!(matches!(
        log.check_append(&idem(1, 2, 101, 1)),
        Err(Error::InvalidProducerEpoch {
            producer_id: 1,
            current: 3,
            got: 2
        })
    ));
    // A bump must restart at 0 and then resets the state.
    assert!(matches!(
        log.check_append(&idem(1, 4, 101, 1)),
        Err(Error::OutOfOrderSequence {
            expected: 0,
            got: 101,
            ..
        })
    ));
    push(&mut log, idem(1, 4, 0, 1), 10, 0);
    assert!(matches!(
        log.check_append(&idem(1, 3, 101, 1)),
        Err(Error::InvalidProducerEpoch { current: 4, .. })
    ));
    assert_eq!(
        log.check_append(&idem(1, 4, 1, 1)).unwrap(),
        ProducerCheck::Append { base_offset: 2 }
    );
    // Non-idempotent batches are never checked.
    assert_eq!(
        log.check_append(&plain(1, 0)).unwrap(),
        ProducerCheck::Append { base_offset: 2 }
    );
    // Wrap-around: after i32::MAX comes 0.
    push(&mut log, idem(2, 0, i32::MAX - 1, 2), 10, 0);
    assert!(log.check_append(&idem(2, 0, 0, 1)).is_ok());
}

#[test]
fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_segments();
    {
        let store = Store::open(dir.path()).unwrap();
        let mut log = store.open_partition(TOPIC_A, 0, config).unwrap();
        for i in 0..9 {
            let mut meta = idem(5, 1, i * 3, 3);
            meta.leader_epoch = i / 4;
            meta.max_timestamp = 100 + i64::from(i);
            push(&mut log, meta, 40, 0);
        }
        log.set_high_watermark(27).unwrap();
        log.delete_records_before(6).unwrap();
        futures::executor::block_on(store.flush()).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let mut log = store.open_partition(TOPIC_A, 0, config).unwrap();
    assert_eq!(log.log_end_offset(), 27);
    assert_eq!(log.log_start_offset(), 6);
    assert_eq!(log.high_watermark(), 27);
    assert_eq!(log.segments().len(), 4);
    assert_eq!(log.latest_epoch(), Some(2));
    assert_eq!(log.end_offset_for_epoch(1), Some((1, 24)));
    assert_eq!(log.find_by_timestamp(105).unwrap().unwrap().0, 15);
    assert_eq!(
        log.check_append(&idem(5, 1, 24, 3)).unwrap(),
        ProducerCheck::Duplicate {
            base_offset: 24,
            last_offset: 26
        }
    );
    assert!(matches!(
        log.check_append(&idem(5, 1, 28, 3)),
        Err(Error::OutOfOrderSequence { expected: 27, .. })
    ));
    assert!(matches!(
        log.check_append(&idem(5, 0, 27, 3)),
        Err(Error::InvalidProducerEpoch { .. })
    ));
    push(&mut log, idem(5, 1, 27, 3), 40, 0);
    assert_eq!(
        log.read(6, usize::MAX, 30).unwrap().len(),
        8 * 40 // batches 3..=9 plus the new one, from the one holding offset 6
    );
}

#[test]
fn partitions_are_isolated_by_topic_id() {
    let (_dir, store) = store();
    let mut a = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    let mut b = store.open_partition(TOPIC_B, 0, tiny_segments()).unwrap();
    let mut a1 = store.open_partition(TOPIC_A, 1, tiny_segments()).unwrap();
    for seq in 0..5 {
        push(&mut a, idem(1, 0, seq, 1), 40, 0);
    }
    push(&mut b, idem(1, 0, 0, 1), 40, 0);
    push(&mut a1, plain(1, 0), 40, 0);
    assert_eq!(b.log_end_offset(), 1);
    assert_eq!(&b.read(0, 1000, 1).unwrap()[..], &batch_bytes(0, 40)[..]);
    assert_eq!(a.log_end_offset(), 5);
    assert!(matches!(
        store.open_partition(TOPIC_A, 0, tiny_segments()),
        Err(Error::AlreadyOpen)
    ));
    let mut parts = store.partitions().unwrap();
    parts.sort();
    assert_eq!(parts, vec![(TOPIC_A, 0), (TOPIC_A, 1), (TOPIC_B, 0)]);

    // Removing topic A's partition 0 leaves the others alone; re-opening it starts empty.
    drop(a);
    store.remove_partition(TOPIC_A, 0).unwrap();
    assert_eq!(store.partitions().unwrap().len(), 2);
    let a = store.open_partition(TOPIC_A, 0, tiny_segments()).unwrap();
    assert_eq!((a.log_start_offset(), a.log_end_offset()), (0, 0));
    assert_eq!(
        a.check_append(&idem(1, 0, 99, 1)).unwrap(),
        ProducerCheck::Append { base_offset: 0 }
    );
    drop(a);
    store.remove_partition(TOPIC_A, 0).unwrap();
    assert_eq!(b.log_end_offset(), 1);
    assert_eq!(a1.log_end_offset(), 1);
    assert!(matches!(
        store.open_tree("brook/p/x"),
        Err(Error::ReservedName(_))
    ));
    store.open_tree("brook.metadata").unwrap();
    assert_eq!(store.partitions().unwrap().len(), 2);
}

#[test]
fn group_commit_serves_many_callers_with_fewer_flushes() {
    let (_dir, store) = store();
    let tree = store.open_tree("scratch").unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            let tree = tree.clone();
            std::thread::spawn(move || {
                let mut pending = Vec::new();
                for i in 0..50u32 {
                    tree.insert(format!("{t}-{i}"), &i.to_be_bytes()).unwrap();
                    pending.push(store.flush());
                }
                futures::executor::block_on(futures::future::join_all(pending))
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (flushes, served) = store.flush_stats();
    assert_eq!(served, 400);
    assert!(flushes < served, "{flushes} flushes for {served} requests");
    assert!(flushes >= 1);
}

#[test]
fn flush_future_is_send_and_static() {
    fn assert_send_static<T: Send + 'static>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
    assert_send_sync::<brook_storage::PartitionLog>();
    let (_dir, store) = store();
    let f = store.flush();
    assert_send_static(&f);
    drop(store);
    // The request was queued before the store went away, so it is still served.
    futures::executor::block_on(f).unwrap();
}
