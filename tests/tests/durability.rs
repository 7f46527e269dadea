//! What brook acknowledged survives `kill -9`; a restart keeps topics, their configs, offsets
//! and idempotent-producer state.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use brook_tests::*;
use bytes::Bytes;
use kafka_protocol::records::Compression;
use rdkafka::producer::FutureRecord;

const PARTITIONS: i32 = 3;

/// Message `i` of the load: deterministic, so it can be checked without keeping it.
fn load_key(i: usize) -> String {
    format!("k{i}")
}

fn load_value(i: usize) -> Vec<u8> {
    let mut v = format!("v{i}-").into_bytes();
    v.resize(v.len() + (i * 37) % 2000, b'a' + (i % 26) as u8);
    v
}

/// Produces continuously with `acks`, SIGKILLs the broker once at least 3,000 messages are
/// acknowledged (with more in flight), restarts it on the same data directory and checks that
/// every acknowledged message is there, at its offset, with its content, in a gap-free log;
/// then new writes continue after the old high watermark.
async fn acknowledged_writes_survive_kill9(acks: &str) -> Result<()> {
    const ACKED_BEFORE_KILL: usize = 3_000;
    const LIMIT: usize = 100_000;
    let mut broker = Broker::start();
    create_topic(&broker, "durable", PARTITIONS, &[]).await?;

    let producer = producer(
        &broker,
        &[
            ("acks", acks),
            ("linger.ms", "1"),
            ("message.timeout.ms", "15000"),
            ("batch.num.messages", "200"),
        ],
    );
    let acked_count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (acked_count, stop) = (acked_count.clone(), stop.clone());
        let producer = producer.clone();
        tokio::spawn(async move {
            let mut reports = Vec::new();
            let mut i = 0;
            while i < LIMIT && !stop.load(Ordering::Relaxed) {
                let (key, value) = (load_key(i), load_value(i));
                let record = FutureRecord::to("durable")
                    .key(&key)
                    .payload(&value)
                    .partition((i % 3) as i32);
                match producer.send_result(record) {
                    Ok(delivery) => {
                        let acked_count = acked_count.clone();
                        reports.push(tokio::spawn(async move {
                            let r = delivery.await;
                            if matches!(r, Ok(Ok(_))) {
                                acked_count.fetch_add(1, Ordering::Relaxed);
                            }
                            (
                                i,
                                r.ok().and_then(|r| r.ok()).map(|d| Delivered {
                                    partition: d.partition,
                                    offset: d.offset,
                                }),
                            )
                        }));
                        i += 1;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                }
                if i % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            let mut acked = Vec::new();
            for r in reports {
                if let Ok((i, Some(d))) = r.await {
                    acked.push((i, d));
                }
            }
            (i, acked)
        })
    };

    let deadline = Instant::now() + EVENTUALLY;
    while acked_count.load(Ordering::Relaxed) < ACKED_BEFORE_KILL {
        if Instant::now() > deadline {
            bail!(
                "only {} messages acknowledged in {EVENTUALLY:?}",
                acked_count.load(Ordering::Relaxed)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    broker.kill9();
    let acked_at_kill = acked_count.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let (enqueued, acked) = load.await?;
    assert!(
        acked.len() >= acked_at_kill,
        "acknowledgements went missing"
    );
    assert!(
        enqueued > acked.len(),
        "every enqueued message was acknowledged before the kill ({enqueued}); the test did not kill under load"
    );

    broker.restart();
    let received = consume_all(&broker, "durable")?;
    let at: HashMap<Delivered, &Received> = received
        .iter()
        .map(|r| {
            (
                Delivered {
                    partition: r.partition,
                    offset: r.offset,
                },
                r,
            )
        })
        .collect();
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &received {
        let expected_offset = ends.get(&r.partition).copied().unwrap_or(0);
        assert_eq!(
            r.offset, expected_offset,
            "partition {}: gap in the recovered log",
            r.partition
        );
        ends.insert(r.partition, r.offset + 1);
    }
    let mut lost = Vec::new();
    for (i, d) in &acked {
        match at.get(d) {
            None => lost.push((*i, *d)),
            Some(r) => {
                assert_eq!(
                    r.key.as_deref(),
                    Some(load_key(*i).as_bytes()),
                    "message {i} at {d:?}: key"
                );
                assert!(
                    r.value.as_deref() == Some(load_value(*i).as_slice()),
                    "message {i} at {d:?}: value differs"
                );
            }
        }
    }
    assert!(
        lost.is_empty(),
        "acks={acks}: {} of {} acknowledged messages are missing after kill -9 and restart, e.g. {:?}; recovered ends {ends:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );

    // The log continues where it was: new writes go after the recovered high watermark.
    let producer = brook_tests::producer(&broker, &[("acks", acks)]);
    let after: Vec<Msg> = (0..PARTITIONS)
        .map(|p| Msg::value(format!("after-{p}")).partition(p))
        .collect();
    let delivered = produce_all(&producer, "durable", &after).await?;
    for d in &delivered {
        assert_eq!(
            d.offset,
            ends.get(&d.partition).copied().unwrap_or(0),
            "first offset after restart in {}",
            d.partition
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_all_writes_survive_kill9() -> Result<()> {
    acknowledged_writes_survive_kill9("all").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_1_writes_survive_kill9() -> Result<()> {
    acknowledged_writes_survive_kill9("1").await
}

/// Topics (partition counts, configs), data, offsets survive a graceful restart (SIGTERM exits
/// with status 0) and then a kill -9 restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_topics_configs_and_offsets() -> Result<()> {
    let mut broker = Broker::start();
    let configs = [
        ("retention.ms", "3600000"),
        ("segment.bytes", "1048576"),
        ("max.message.bytes", "2097152"),
    ];
    create_topic(&broker, "kept", 3, &configs).await?;
    create_topic(&broker, "single", 1, &[]).await?;
    let producer = producer(&broker, &[]);
    let kept: Vec<Msg> = (0..300)
        .map(|i| {
            Msg::value(format!("kept-{i}"))
                .key(format!("k{i}"))
                .partition(i % 3)
        })
        .collect();
    produce_all(&producer, "kept", &kept).await?;
    let single: Vec<Msg> = (0..50).map(|i| Msg::value(format!("single-{i}"))).collect();
    produce_all(&producer, "single", &single).await?;
    drop(producer);
    let before_kept = consume_all(&broker, "kept")?;
    let before_single = consume_all(&broker, "single")?;
    assert_eq!(before_kept.len(), 300);

    for how in ["SIGTERM", "SIGKILL"] {
        if how == "SIGTERM" {
            let status = broker.terminate();
            assert!(status.success(), "brook exited with {status} after SIGTERM");
        } else {
            broker.kill9();
        }
        broker.restart();
        assert_eq!(
            partition_count(&broker, "kept")?,
            3,
            "after {how}: partitions of kept"
        );
        assert_eq!(
            partition_count(&broker, "single")?,
            1,
            "after {how}: partitions of single"
        );
        let described = describe_topic_configs(&broker, "kept").await?;
        for (k, v) in configs {
            assert_eq!(
                described.get(k).map(String::as_str),
                Some(v),
                "after {how}: config {k} of kept"
            );
        }
        for p in 0..3 {
            assert_eq!(
                watermarks(&broker, "kept", p)?,
                (0, 100),
                "after {how}: watermarks of kept/{p}"
            );
        }
        assert_eq!(
            consume_all(&broker, "kept")?,
            before_kept,
            "after {how}: contents of kept"
        );
        assert_eq!(
            consume_all(&broker, "single")?,
            before_single,
            "after {how}: contents of single"
        );
    }
    // Still writable, at the next offset.
    let producer = brook_tests::producer(&broker, &[]);
    let d = produce_all(&producer, "single", &[Msg::value("after restarts")]).await?;
    assert_eq!(d[0].offset, 50);
    Ok(())
}

fn batch(prefix: &str, n: usize, producer: ProducerIdentity, base_sequence: i32) -> Result<Bytes> {
    let values: Vec<Vec<u8>> = (0..n)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = values.iter().map(|v| v.as_slice()).collect();
    record_batch(
        &refs,
        2,
        producer,
        base_sequence,
        1_700_000_000_000,
        Compression::None,
    )
}

/// Produces one batch as a client does: a retriable error (the partition's leader is still
/// being elected, say) is retried for a while; any other answer is returned.
fn produce_one(conn: &mut RawConn, batch: &Bytes) -> Result<(i16, i64)> {
    // NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS.
    const RETRIABLE: [i16; 4] = [6, 5, 7, 19];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = produce_raw(conn, "pstate", &[(0, batch.clone())])?;
        let p = r
            .into_iter()
            .next()
            .ok_or_else(|| anyhow!("no partition response"))?;
        if !RETRIABLE.contains(&p.error_code) || std::time::Instant::now() >= deadline {
            return Ok((p.error_code, p.base_offset));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Idempotent-producer state is durable: after kill -9 (and again after a graceful restart)
/// re-sending an acknowledged batch is deduplicated, a gap is refused, the next sequence is
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_state_survives_restarts() -> Result<()> {
    let mut broker = Broker::start();
    create_topic(&broker, "pstate", 1, &[]).await?;
    let mut conn = RawConn::connect(broker.addr())?;
    let producer = init_producer_id(&mut conn)?;
    let b0 = batch("b0", 3, producer, 0)?;
    let b1 = batch("b1", 3, producer, 3)?;
    assert_eq!(produce_one(&mut conn, &b0)?, (codes::NONE, 0));
    assert_eq!(produce_one(&mut conn, &b1)?, (codes::NONE, 3));
    drop(conn);

    broker.kill9();
    broker.restart();
    let mut conn = RawConn::connect(broker.addr())?;
    assert_eq!(
        produce_one(&mut conn, &b1)?,
        (codes::NONE, 3),
        "after kill -9: re-send of the last batch (seq 3)"
    );
    assert_eq!(
        produce_one(&mut conn, &b0)?,
        (codes::NONE, 0),
        "after kill -9: re-send of batch seq 0"
    );
    let gap = batch("gap", 1, producer, 7)?;
    assert_eq!(
        produce_one(&mut conn, &gap)?.0,
        codes::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "after kill -9: seq 7 when 6 is expected"
    );
    let b2 = batch("b2", 2, producer, 6)?;
    assert_eq!(
        produce_one(&mut conn, &b2)?,
        (codes::NONE, 6),
        "after kill -9: next batch seq 6"
    );
    drop(conn);

    broker.restart();
    let mut conn = RawConn::connect(broker.addr())?;
    assert_eq!(
        produce_one(&mut conn, &b2)?,
        (codes::NONE, 6),
        "after SIGTERM: re-send of batch seq 6"
    );
    let (error, hw, _) = list_offset(&mut conn, "pstate", 0, -1)?;
    assert_eq!((error, hw), (codes::NONE, 8), "log end after all re-sends");
    let records = fetch_all_raw(&mut conn, "pstate", 0, 0)?;
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let want: Vec<String> = [
        "b0-0", "b0-1", "b0-2", "b1-0", "b1-1", "b1-2", "b2-0", "b2-1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    ensure!(values == want, "log contents {values:?}, want {want:?}");
    Ok(())
}
