//! A leader and its followers as partition actors, each over its own store, driven the way the
//! node drives them: acks=all waits for the follower's next fetch, the high watermark follows
//! the slowest in-sync replica, a follower that diverged truncates where the leader says, and a
//! new leader refuses ListOffsets until its high watermark reaches its epoch's start.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use brook_actors::*;

mod common;
use common::*;

#[tokio::test]
async fn acks_all_waits_for_the_follower_and_the_high_watermark_follows_it() {
    let leader = replica(1);
    let follower = replica(2);
    lead(&leader, 1, 1, &[1, 2], 2);
    follow(&follower, 1, 1);
    let (batch_a, header_a) = batch(&["a", "b", "c"]);
    let pending = tokio::spawn(ask(&leader.handle.addr, |reply| AppendBatch {
        batch: batch_a,
        header: header_a,
        acks: Acks::All,
        reply,
    }));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !pending.is_finished(),
        "acks=all answered before the follower had the batch"
    );
    assert_eq!(
        latest(&leader).await.unwrap().offset,
        0,
        "nothing committed yet"
    );

    // The follower copies the batch; its next fetch (from offset 3) commits it.
    let read = fetch(&leader, 2, 0, -1, 1).await.unwrap();
    assert!(read.diverging.is_none());
    let at = copy(&follower, read.records, read.high_watermark, 1).await;
    assert_eq!((at.log_end, at.last_epoch), (3, 1));
    let read = fetch(&leader, 2, 3, 1, 1).await.unwrap();
    assert_eq!(read.high_watermark, 3, "{read:?}");
    let appended = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(appended.base_offset, 0);
    assert_eq!(latest(&leader).await.unwrap().offset, 3);

    // A follower naming a newer epoch is told this leader is stale; a replica that is not in
    // the replica set gets nothing.
    let newer = fetch(&leader, 2, 3, 1, 2).await;
    assert!(matches!(newer, Err(PartitionError::UnknownLeaderEpoch(2))));
    let stranger = fetch(&leader, 9, 0, -1, 1).await;
    assert!(matches!(stranger, Err(PartitionError::NotLeader)));
    // A follower refuses client writes.
    assert!(matches!(
        append(&follower, &["x"], Acks::Leader).await,
        Err(PartitionError::NotLeader)
    ));
}

#[tokio::test]
async fn too_few_in_sync_replicas_refuse_acks_all_but_not_acks_1() {
    let leader = replica(1);
    lead(&leader, 1, 1, &[1], 2);
    let refused = append(&leader, &["x"], Acks::All).await;
    assert!(matches!(
        refused,
        Err(PartitionError::NotEnoughReplicas { isr: 1, min: 2 })
    ));
    let written = append(&leader, &["x"], Acks::Leader).await.unwrap();
    assert_eq!(written.base_offset, 0);
}

#[tokio::test]
async fn a_diverged_follower_truncates_where_the_leader_says() {
    // Replica 2 leads epoch 1 alone and writes 5 records replica 1 never sees.
    let old = replica(2);
    lead(&old, 2, 1, &[2], 1);
    append(&old, &["o1", "o2"], Acks::Leader).await.unwrap();
    append(&old, &["o3", "o4", "o5"], Acks::Leader)
        .await
        .unwrap();
    // Replica 1 leads epoch 2 with other records.
    let new = replica(1);
    lead(&new, 1, 2, &[1], 1);
    append(&new, &["n1", "n2", "n3"], Acks::Leader)
        .await
        .unwrap();

    // The old leader now follows and fetches from its log end with its last epoch, 1, which
    // the new leader never had: everything from 0 diverged.
    follow(&old, 1, 2);
    let read = fetch(&new, 2, 5, 1, 2).await.unwrap();
    assert!(read.records.is_empty());
    let (epoch, end_offset) = read.diverging.expect("the leader reports the divergence");
    let at = ask(&old.handle.addr, |reply| TruncateFollower {
        divergence: Some(Divergence::Epoch { epoch, end_offset }),
        reply,
    })
    .await
    .unwrap();
    assert_eq!(at.log_end, 0, "diverging at ({epoch}, {end_offset})");
    let read = fetch(&new, 2, 0, -1, 2).await.unwrap();
    let at = copy(&old, read.records, read.high_watermark, 2).await;
    assert_eq!((at.log_end, at.last_epoch), (3, 2));
}

#[tokio::test]
async fn a_new_leader_answers_list_offsets_once_its_high_watermark_reaches_its_epoch() {
    let leader = replica(1);
    lead(&leader, 1, 1, &[1], 1);
    append(&leader, &["a", "b", "c"], Acks::Leader)
        .await
        .unwrap();
    // Replica 2 copies the records but has not yet learned that they are committed.
    let next = replica(2);
    follow(&next, 1, 1);
    let read = fetch(&leader, 2, 0, -1, 1).await.unwrap();
    copy(&next, read.records, 0, 1).await;
    // It takes over in epoch 2 with replica 1 in sync, which has not fetched from it yet.
    lead(&next, 2, 2, &[2, 1], 1);
    assert!(matches!(
        latest(&next).await,
        Err(PartitionError::OffsetNotAvailable)
    ));
    // Replica 1 fetches from offset 3: the high watermark reaches the epoch's start.
    fetch(&next, 1, 3, 1, 2).await.unwrap();
    assert_eq!(latest(&next).await.unwrap().offset, 3);
}
