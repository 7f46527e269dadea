//! ListOffsets: earliest, latest, max timestamp and by timestamp across many small segments,
//! and after retention (by size and by time) deleted old segments. OffsetForLeaderEpoch: where
//! each leader epoch ends, across a restart that started a new epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, ensure, Result};
use brook_tests::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, OffsetForLeaderEpochRequest};
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};

const SEGMENT_BYTES: &str = "16384";
const PAYLOAD: usize = 200;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn payload(i: usize) -> Vec<u8> {
    let mut v = format!("m{i}-").into_bytes();
    v.resize(PAYLOAD, b'.');
    v
}

/// A producer that makes small batches (so 16 KiB segments hold several of them).
fn small_batch_producer(broker: &Broker) -> rdkafka::producer::FutureProducer {
    producer(broker, &[("linger.ms", "0"), ("batch.num.messages", "20")])
}

/// rdkafka's offsets_for_times for one partition.
fn offset_for_time(broker: &Broker, topic: &str, partition: i32, ts: i64) -> Result<Offset> {
    let consumer = consumer(broker, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(ts))?;
    let result = consumer.offsets_for_times(tpl, OP_TIMEOUT)?;
    let elem = result
        .find_partition(topic, partition)
        .ok_or_else(|| anyhow::anyhow!("no result"))?;
    if let Err(e) = elem.error() {
        anyhow::bail!("offsets_for_times {topic}/{partition} ts {ts}: {e}");
    }
    Ok(elem.offset())
}

/// 2,000 records with increasing timestamps in 16 KiB segments (partition 0), and 500 records
/// whose maximum timestamp is in the middle (partition 1): earliest, latest, max timestamp and
/// every timestamp lookup give the right offset, across segment boundaries, with the raw
/// protocol and with rdkafka's offsets_for_times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_offsets_across_segments() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "times", 2, &[("segment.bytes", SEGMENT_BYTES)]).await?;
    let base = now_ms() - 3_600_000;
    let ts = |i: usize| base + 10 * i as i64;
    const N: usize = 2_000;
    const M: usize = 500;
    const SPIKE: usize = 250;
    let spike_ts = base + 1_000_000;
    let mut messages: Vec<Msg> = (0..N)
        .map(|i| Msg::value(payload(i)).partition(0).timestamp(ts(i)))
        .collect();
    messages.extend((0..M).map(|i| {
        let t = if i == SPIKE { spike_ts } else { ts(i) };
        Msg::value(payload(i)).partition(1).timestamp(t)
    }));
    let delivered = produce_all(&small_batch_producer(&broker), "times", &messages).await?;
    assert_eq!(delivered[N - 1].offset, N as i64 - 1);

    let mut conn = RawConn::connect(broker.addr())?;
    assert_eq!(
        list_offset(&mut conn, "times", 0, -2)?.1,
        0,
        "earliest of p0"
    );
    assert_eq!(
        list_offset(&mut conn, "times", 0, -1)?.1,
        N as i64,
        "latest of p0"
    );
    let (error, offset, timestamp) = list_offset(&mut conn, "times", 0, -3)?;
    assert_eq!(
        (error, offset, timestamp),
        (0, N as i64 - 1, ts(N - 1)),
        "max timestamp of p0"
    );

    for i in 0..N {
        assert_eq!(
            list_offset(&mut conn, "times", 0, ts(i))?,
            (0, i as i64, ts(i)),
            "p0: exact timestamp of record {i}"
        );
        if i > 0 && i % 10 == 0 {
            assert_eq!(
                list_offset(&mut conn, "times", 0, ts(i) - 5)?,
                (0, i as i64, ts(i)),
                "p0: timestamp between records {} and {i}",
                i - 1
            );
        }
    }
    assert_eq!(
        list_offset(&mut conn, "times", 0, base - 60_000)?,
        (0, 0, ts(0)),
        "p0: timestamp before the first record"
    );
    let (error, offset, _) = list_offset(&mut conn, "times", 0, ts(N - 1) + 1)?;
    assert_eq!(
        (error, offset),
        (0, -1),
        "p0: timestamp after the last record has no offset"
    );

    assert_eq!(
        list_offset(&mut conn, "times", 1, -2)?.1,
        0,
        "earliest of p1"
    );
    assert_eq!(
        list_offset(&mut conn, "times", 1, -1)?.1,
        M as i64,
        "latest of p1"
    );
    let (error, offset, timestamp) = list_offset(&mut conn, "times", 1, -3)?;
    assert_eq!(
        (error, offset, timestamp),
        (0, SPIKE as i64, spike_ts),
        "max timestamp of p1 is in the middle"
    );
    assert_eq!(
        list_offset(&mut conn, "times", 1, ts(100))?.1,
        100,
        "p1: before the spike"
    );
    // The earliest offset whose timestamp is >= the target: the spike itself for targets
    // between its neighbours' timestamps and its own.
    assert_eq!(
        list_offset(&mut conn, "times", 1, ts(260))?.1,
        SPIKE as i64,
        "p1: first record with ts >= ts(260)"
    );
    assert_eq!(
        list_offset(&mut conn, "times", 1, spike_ts)?.1,
        SPIKE as i64,
        "p1: the spike's timestamp"
    );

    for i in (0..N).step_by(97).chain([N - 1]) {
        assert_eq!(
            offset_for_time(&broker, "times", 0, ts(i))?,
            Offset::Offset(i as i64),
            "rdkafka offsets_for_times p0 record {i}"
        );
    }
    assert_eq!(
        offset_for_time(&broker, "times", 1, ts(40))?,
        Offset::Offset(40)
    );
    Ok(())
}

/// Checks shared by both retention tests once old segments are gone.
async fn check_after_retention(
    broker: &Broker,
    topic: &str,
    earliest: i64,
    end: i64,
    old_ts: i64,
    kept_ts: i64,
    kept: i64,
) -> Result<()> {
    let mut conn = RawConn::connect(broker.addr())?;
    assert_eq!(
        list_offset(&mut conn, topic, 0, -1)?.1,
        end,
        "latest must not change when old segments are deleted"
    );
    assert_eq!(
        list_offset(&mut conn, topic, 0, -2)?.1,
        earliest,
        "earliest is stable"
    );
    let (error, offset, _) = list_offset(&mut conn, topic, 0, old_ts)?;
    assert_eq!(
        (error, offset),
        (0, earliest),
        "a timestamp of a deleted record gives the new earliest offset"
    );
    assert_eq!(
        list_offset(&mut conn, topic, 0, kept_ts)?.1,
        kept,
        "a retained record's timestamp"
    );
    assert_eq!(
        offset_for_time(broker, topic, 0, old_ts)?,
        Offset::Offset(earliest),
        "rdkafka offsets_for_times of a deleted record"
    );
    assert_eq!(watermarks(broker, topic, 0)?, (earliest, end), "watermarks");
    let data = fetch_raw(&mut conn, topic, 0, 0, 0)?;
    assert_eq!(
        data.error_code,
        codes::OFFSET_OUT_OF_RANGE,
        "fetching deleted offset 0"
    );
    let records = fetch_all_raw(&mut conn, topic, 0, earliest)?;
    assert_eq!(
        records.first().map(|r| r.offset),
        Some(earliest),
        "first readable record"
    );
    assert_eq!(
        records.len() as i64,
        end - earliest,
        "records between earliest and latest"
    );
    for r in &records {
        assert_eq!(
            r.value.as_deref(),
            Some(payload(r.offset as usize).as_slice()),
            "record {}",
            r.offset
        );
    }
    Ok(())
}

/// retention.bytes=64 KiB on 16 KiB segments: the broker (retention check every 500 ms)
/// deletes the oldest segments; earliest moves up to within a few segments of the retained
/// size, latest stays, an old timestamp maps to the new earliest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_size_moves_earliest_offset() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.set("log.retention.check.interval.ms", 500);
    });
    const RETENTION: i64 = 65_536;
    create_topic(
        &broker,
        "by-size",
        1,
        &[
            ("segment.bytes", SEGMENT_BYTES),
            ("retention.bytes", "65536"),
        ],
    )
    .await?;
    const N: usize = 2_000;
    let base = now_ms() - 3_600_000;
    let messages: Vec<Msg> = (0..N)
        .map(|i| Msg::value(payload(i)).timestamp(base + 10 * i as i64))
        .collect();
    produce_all(&small_batch_producer(&broker), "by-size", &messages).await?;

    // At most retention.bytes plus the active segment plus one batch of slack can remain, and
    // every record takes at least its payload on disk.
    let most_kept = (RETENTION + 3 * 16_384) / PAYLOAD as i64;
    // retention.bytes is kept: a segment is deleted only while the rest still exceeds it;
    // records take well under 400 B each.
    let least_kept = RETENTION / 400;
    let mut conn = RawConn::connect(broker.addr())?;
    let earliest = wait_for("retention.bytes to delete old segments", EVENTUALLY, || {
        let (error, earliest, _) = list_offset(&mut conn, "by-size", 0, -2)?;
        anyhow::ensure!(error == 0, "ListOffsets earliest error {error}");
        Ok((earliest >= N as i64 - most_kept).then_some(earliest))
    })?;
    // Not synchronization: let a few more retention passes (every 500 ms) run, then check they
    // did not delete more than the limit allows.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, settled, _) = list_offset(&mut conn, "by-size", 0, -2)?;
    assert!(
        settled <= N as i64 - least_kept,
        "retention deleted too much: earliest {settled}, so fewer than {least_kept} records (~{RETENTION} B) remain"
    );
    assert!(settled >= earliest);
    check_after_retention(
        &broker,
        "by-size",
        settled,
        N as i64,
        base,
        base + 10 * (N as i64 - 1),
        N as i64 - 1,
    )
    .await
}

/// retention.ms=10 min: 1,000 records stamped two hours ago, then 1,000 stamped a minute ago.
/// Segments holding only old records go; the segment with the first recent record stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_time_moves_earliest_offset() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.set("log.retention.check.interval.ms", 500);
    });
    create_topic(
        &broker,
        "by-time",
        1,
        &[("segment.bytes", SEGMENT_BYTES), ("retention.ms", "600000")],
    )
    .await?;
    const OLD: usize = 1_000;
    const NEW: usize = 1_000;
    let now = now_ms();
    let old_ts = |i: usize| now - 7_200_000 + 10 * i as i64;
    let new_ts = |i: usize| now - 60_000 + 10 * (i - OLD) as i64;
    let producer = small_batch_producer(&broker);
    let old: Vec<Msg> = (0..OLD)
        .map(|i| Msg::value(payload(i)).timestamp(old_ts(i)))
        .collect();
    produce_all(&producer, "by-time", &old).await?;
    let new: Vec<Msg> = (OLD..OLD + NEW)
        .map(|i| Msg::value(payload(i)).timestamp(new_ts(i)))
        .collect();
    produce_all(&producer, "by-time", &new).await?;

    // A 16 KiB segment holds fewer than 16384 / 200 records.
    let per_segment = 16_384 / PAYLOAD as i64;
    let mut conn = RawConn::connect(broker.addr())?;
    let earliest = wait_for("retention.ms to delete old segments", EVENTUALLY, || {
        let (error, earliest, _) = list_offset(&mut conn, "by-time", 0, -2)?;
        anyhow::ensure!(error == 0, "ListOffsets earliest error {error}");
        Ok((earliest > OLD as i64 - per_segment - 1).then_some(earliest))
    })?;
    assert!(
        earliest <= OLD as i64,
        "retention.ms deleted recent records: earliest {earliest} > first recent offset {OLD}"
    );
    // Not synchronization: a few more retention passes must not delete recent records.
    std::thread::sleep(Duration::from_millis(1500));
    let (_, settled, _) = list_offset(&mut conn, "by-time", 0, -2)?;
    assert!(
        settled <= OLD as i64,
        "retention.ms deleted recent records: earliest {settled}"
    );
    let end = (OLD + NEW) as i64;
    check_after_retention(
        &broker,
        "by-time",
        settled,
        end,
        old_ts(0),
        new_ts(OLD + 10),
        OLD as i64 + 10,
    )
    .await
}

/// The leader epoch of partition 0 of `topic` in the metadata, once it has a leader.
fn leader_epoch(conn: &mut RawConn, topic: &str) -> Result<Option<i32>> {
    let request = MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic))),
    ]));
    let response = conn.call(9, &request)?;
    Ok(response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == 0 && p.error_code == 0 && p.leader_id.0 >= 0)
        .map(|p| p.leader_epoch))
}

/// OffsetForLeaderEpoch v4 for one partition: `(error_code, leader_epoch, end_offset)`.
fn epoch_end(
    conn: &mut RawConn,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> Result<(i16, i32, i64)> {
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(current_leader_epoch)
                .with_leader_epoch(leader_epoch)])]);
    let response = conn.call(4, &request)?;
    let p = response
        .topics
        .into_iter()
        .find(|t| t.topic.0.as_str() == topic)
        .and_then(|t| t.partitions.into_iter().find(|p| p.partition == partition))
        .ok_or_else(|| anyhow!("no OffsetForLeaderEpoch answer for {topic}/{partition}"))?;
    Ok((p.error_code, p.leader_epoch, p.end_offset))
}

/// 10 records in one epoch, a restart (the partition is led again in a newer epoch), 5 more:
/// OffsetForLeaderEpoch says the old epoch ends at 10 and the current one at the log end, an
/// epoch above the current one is unknown (-1, -1), and a stale or future current epoch, an
/// unknown topic or partition get Kafka's errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_for_leader_epoch_across_a_restart() -> Result<()> {
    const FENCED_LEADER_EPOCH: i16 = 74;
    const UNKNOWN_LEADER_EPOCH: i16 = 75;
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    let mut broker = Broker::start();
    create_topic(&broker, "epochs", 1, &[]).await?;
    let first: Vec<Msg> = (0..10)
        .map(|i| Msg::value(payload(i)).partition(0))
        .collect();
    produce_all(&producer(&broker, &[]), "epochs", &first).await?;
    let mut conn = RawConn::connect(broker.addr())?;
    let old = leader_epoch(&mut conn, "epochs")?.ok_or_else(|| anyhow!("no leader"))?;
    ensure!(
        epoch_end(&mut conn, "epochs", 0, old, old)? == (0, old, 10),
        "the current epoch ends at the log end"
    );

    broker.restart();
    let mut conn = RawConn::connect(broker.addr())?;
    let new = wait_for("the partition led in a newer epoch", OP_TIMEOUT, || {
        Ok(leader_epoch(&mut conn, "epochs")?.filter(|&e| e > old))
    })?;
    let second: Vec<Msg> = (10..15)
        .map(|i| Msg::value(payload(i)).partition(0))
        .collect();
    produce_all(&producer(&broker, &[]), "epochs", &second).await?;

    let asked =
        |conn: &mut RawConn, current: i32, epoch: i32| epoch_end(conn, "epochs", 0, current, epoch);
    assert_eq!(
        asked(&mut conn, new, old)?,
        (0, old, 10),
        "epoch {old} ends where {new} began"
    );
    assert_eq!(
        asked(&mut conn, -1, old)?,
        (0, old, 10),
        "no current epoch given"
    );
    assert_eq!(
        asked(&mut conn, new, new)?,
        (0, new, 15),
        "the current epoch ends at the log end"
    );
    if new > old + 1 {
        // An epoch between the two that this log never saw belongs to the older one.
        assert_eq!(asked(&mut conn, new, old + 1)?, (0, old, 10));
    }
    assert_eq!(
        asked(&mut conn, new, new + 1)?,
        (0, -1, -1),
        "an epoch not reached yet"
    );
    assert_eq!(
        asked(&mut conn, old, old)?.0,
        FENCED_LEADER_EPOCH,
        "a stale current epoch"
    );
    assert_eq!(
        asked(&mut conn, new + 1, new)?.0,
        UNKNOWN_LEADER_EPOCH,
        "a future current epoch"
    );
    assert_eq!(
        epoch_end(&mut conn, "epochs", 7, -1, new)?.0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    assert_eq!(
        epoch_end(&mut conn, "no-such-topic", 0, -1, new)?.0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    Ok(())
}
