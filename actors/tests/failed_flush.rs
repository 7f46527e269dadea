//! A flush that fails: the producer hears of it, and the batches the flush was to make durable
//! are gone from the log before it does, so neither a consumer nor the producer's retry ever
//! finds them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use brook_actors::*;

mod common;
use common::*;

/// The log end the node sees, and what a follower's fetch from `offset` finds.
async fn log_end_and_records_from(r: &Replica, offset: u64) -> (u64, usize) {
    let read = fetch(r, 2, offset, 1, 1).await.unwrap();
    assert_eq!(read.log_end_offset, *r.handle.log_end.borrow());
    (read.log_end_offset, read.records.len())
}

fn failed<T: std::fmt::Debug>(answer: Result<T, PartitionError>) -> bool {
    matches!(answer, Err(PartitionError::Storage(_)))
}

#[tokio::test]
async fn a_failed_flush_takes_its_batches_back_out_of_the_log() {
    let leader = replica(1);
    lead(&leader, 1, 1, &[1], 1);
    let first = append(&leader, &["a"], Acks::Leader).await.unwrap();
    assert_eq!(first.base_offset, 0);
    let kept = read_all(&leader).await;

    leader.store.inject_flush_failure();
    // Two producers' batches in flight, waiting for the same failing flush.
    let (b, c) = tokio::join!(
        append(&leader, &["b", "c"], Acks::Leader),
        append(&leader, &["d"], Acks::Leader)
    );
    assert!(failed(b) && failed(c));
    assert_eq!(log_end_and_records_from(&leader, 1).await, (1, 0));
    assert_eq!(latest(&leader).await.unwrap().offset, 1);
    assert_eq!(read_all(&leader).await, kept);

    // acks=all hears of it too, instead of waiting for a high watermark that cannot come.
    let all = tokio::time::timeout(Duration::from_secs(5), append(&leader, &["e"], Acks::All))
        .await
        .expect("acks=all was left waiting");
    assert!(failed(all));

    // A retry is never stacked on top of the batch it retries: flushes keep failing (as
    // sled's do after an I/O error), and each failed append is taken back out again.
    for _ in 0..3 {
        assert!(failed(append(&leader, &["b", "c"], Acks::Leader).await));
    }
    assert_eq!(log_end_and_records_from(&leader, 0).await.0, 1);
    assert_eq!(read_all(&leader).await, kept);
}

#[tokio::test]
async fn a_follower_whose_flush_fails_reports_only_what_it_kept() {
    let leader = replica(1);
    let follower = replica(2);
    lead(&leader, 1, 1, &[1, 2], 1);
    follow(&follower, 1, 1);
    append(&leader, &["a"], Acks::Leader).await.unwrap();
    let read = fetch(&leader, 2, 0, -1, 1).await.unwrap();
    assert_eq!(copy(&follower, read.records, 1, 1).await.log_end, 1);

    append(&leader, &["b", "c"], Acks::Leader).await.unwrap();
    let read = fetch(&leader, 2, 1, 1, 1).await.unwrap();
    follower.store.inject_flush_failure();
    let copied = ask(&follower.handle.addr, |reply| AppendAsFollower {
        leader_epoch: 1,
        records: read.records,
        leader_high_watermark: 3,
        leader_log_start: 0,
        reply,
    })
    .await;
    assert!(failed(copied));
    assert_eq!(*follower.handle.log_end.borrow(), 1);
    assert_eq!(*follower.handle.high_watermark.borrow(), 1);
    let at = ask(&follower.handle.addr, |reply| TruncateFollower {
        divergence: None,
        reply,
    })
    .await
    .unwrap();
    assert_eq!(at.log_end, 1, "the follower fetches the lost batches again");
}
