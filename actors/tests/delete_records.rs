//! DeleteRecords: the leader's log start moves at once; the call is answered once the in-sync
//! follower's log starts there too, which it learns from its fetches and reports in the next.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use brook_actors::*;

mod common;
use common::*;

/// A follower's fetch that reports where its log starts.
async fn fetch_reporting(
    leader: &Replica,
    offset: u64,
    log_start: i64,
) -> Result<ReplicaRead, PartitionError> {
    ask(&leader.handle.addr, |reply| ReplicaFetch {
        replica: 2,
        offset,
        last_fetched_epoch: 1,
        current_leader_epoch: 1,
        log_start,
        max_bytes: 1 << 20,
        reply,
    })
    .await
}

#[tokio::test]
async fn delete_records_waits_for_the_in_sync_follower() {
    let leader = replica(1);
    let follower = replica(2);
    lead(&leader, 1, 1, &[1, 2], 1);
    follow(&follower, 1, 1);
    for values in [&["a", "b"][..], &["c"], &["d", "e"]] {
        append(&leader, values, Acks::Leader).await.unwrap();
    }
    let read = fetch(&leader, 2, 0, -1, 1).await.unwrap();
    let at = copy(&follower, read.records, 0, 1).await;
    assert_eq!((at.log_end, at.log_start), (5, 0));
    let read = fetch_reporting(&leader, 5, 0).await.unwrap();
    assert_eq!(read.high_watermark, 5);

    // Past the high watermark: refused, nothing moves.
    let past = ask(&leader.handle.addr, |reply| DeleteRecords {
        offset: 6,
        reply,
    })
    .await;
    assert!(
        matches!(
            past,
            Err(PartitionError::Storage(
                brook_storage::Error::OffsetOutOfRange { .. }
            ))
        ),
        "{past:?}"
    );

    let pending = tokio::spawn(ask(&leader.handle.addr, |reply| DeleteRecords {
        offset: 3,
        reply,
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !pending.is_finished(),
        "answered before the follower deleted"
    );
    assert_eq!(
        list_offset(&leader, OffsetQuery::Earliest)
            .await
            .unwrap()
            .offset,
        3
    );

    // The follower learns the leader's log start from a fetch answer, deletes up to it and
    // reports it in its next fetch, which completes the call.
    let read = fetch_reporting(&leader, 5, 0).await.unwrap();
    assert_eq!(read.log_start_offset, 3);
    let at = ask(&follower.handle.addr, |reply| AppendAsFollower {
        leader_epoch: 1,
        records: read.records,
        leader_high_watermark: read.high_watermark,
        leader_log_start: read.log_start_offset,
        reply,
    })
    .await
    .unwrap();
    assert_eq!(at.log_start, 3);
    fetch_reporting(&leader, 5, 3).await.unwrap();
    let low = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("DeleteRecords answered")
        .unwrap()
        .unwrap();
    assert_eq!(low, 3);

    // -1 deletes up to the high watermark.
    let pending = tokio::spawn(ask(&leader.handle.addr, |reply| DeleteRecords {
        offset: -1,
        reply,
    }));
    fetch_reporting(&leader, 5, 5).await.unwrap();
    let low = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("DeleteRecords answered")
        .unwrap()
        .unwrap();
    assert_eq!(low, 5);
}
