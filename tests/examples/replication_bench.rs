//! What replication costs a producer, on real `brook` processes with librdkafka.
//!
//! ```sh
//! cargo run --release -p brook-tests --example replication_bench -- [messages] [size] [partitions]
//! ```
//! Starts brook nodes (`BROOK_BIN`, default target/release/brook) and, for each of
//! - 1 node, replication factor 1, acks=all (the baseline),
//! - 3 nodes, replication factor 3, acks=1,
//! - 3 nodes, replication factor 3, acks=all (`min.insync.replicas` at its default, 2),
//!
//! produces `messages` records (default 200,000) of `size` bytes (default 100) round-robin to
//! `partitions` partitions (default 3) of a fresh topic, through a client that knows every
//! node, and prints messages/s, MB/s and the send-to-acknowledgement latency percentiles (all
//! messages are handed to the client at once, so these include the wait in its queue); then
//! sends 1,000 more one at a time, each after the previous one was acknowledged, and prints
//! the percentiles of that round trip. Figures only: nothing here asserts a speed.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use brook_tests::cluster::Cluster;
use brook_tests::{percentile, unique_name};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Messages of the one-at-a-time latency run.
const SEQUENTIAL: usize = 1000;

struct Scenario {
    nodes: usize,
    replication_factor: i16,
    acks: &'static str,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario {
        nodes: 1,
        replication_factor: 1,
        acks: "all",
    },
    Scenario {
        nodes: 3,
        replication_factor: 3,
        acks: "1",
    },
    Scenario {
        nodes: 3,
        replication_factor: 3,
        acks: "all",
    },
];

async fn produce(
    bootstrap: &str,
    topic: &str,
    acks: &str,
    partitions: i32,
    messages: usize,
    size: usize,
) -> Result<(f64, Vec<Duration>)> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", acks)
        .set("linger.ms", "5")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "120000")
        .set("topic.metadata.refresh.interval.ms", "-1")
        .create()?;
    let payload = vec![b'x'; size];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(messages);
    for i in 0..messages {
        let partition = (i as i32) % partitions;
        let sent = Instant::now();
        let delivery = loop {
            let record = FutureRecord::<(), _>::to(topic)
                .payload(&payload)
                .partition(partition);
            match producer.send_result(record) {
                Ok(delivery) => break delivery,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Err((e, _)) => bail!("enqueueing: {e}"),
            }
        };
        pending.push(async move {
            let result = delivery.await;
            (result, sent.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(messages);
    for (result, latency) in futures::future::join_all(pending).await {
        match result {
            Ok(Ok(_)) => latencies.push(latency),
            Ok(Err((e, _))) => bail!("delivery failed: {e}"),
            Err(_) => bail!("delivery cancelled"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Ok((elapsed, latencies))
}

/// One message at a time, each sent when the previous one is acknowledged (linger.ms 0):
/// the round trip of a single acknowledged write, without queueing behind others.
async fn one_at_a_time(
    bootstrap: &str,
    topic: &str,
    acks: &str,
    partitions: i32,
    messages: usize,
    size: usize,
) -> Result<Vec<Duration>> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("broker.address.family", "v4")
        .set("acks", acks)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "60000")
        .create()?;
    let payload = vec![b'y'; size];
    let mut latencies = Vec::with_capacity(messages);
    for i in 0..messages {
        let record = FutureRecord::<(), _>::to(topic)
            .payload(&payload)
            .partition((i as i32) % partitions);
        let sent = Instant::now();
        match producer.send(record, Duration::from_secs(10)).await {
            Ok(_) => latencies.push(sent.elapsed()),
            Err((e, _)) => bail!("delivery failed: {e}"),
        }
    }
    latencies.sort();
    Ok(latencies)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let messages: usize = args.get(1).map_or(Ok(200_000), |s| s.parse())?;
    let size: usize = args.get(2).map_or(Ok(100), |s| s.parse())?;
    let partitions: i32 = args.get(3).map_or(Ok(3), |s| s.parse())?;
    println!("{messages} messages of {size} bytes, {partitions} partitions");
    for s in &SCENARIOS {
        let cluster = Cluster::start_with(s.nodes, |o| {
            o.env("BROOK_LOG", "warn");
        });
        let topic = unique_name("bench-replication");
        let view =
            cluster.create_replicated_topic(1, &topic, partitions, s.replication_factor, &[])?;
        let bootstrap = cluster
            .ids()
            .iter()
            .map(|&id| cluster.bootstrap(id))
            .collect::<Vec<_>>()
            .join(",");
        let (elapsed, latencies) =
            produce(&bootstrap, &topic, s.acks, partitions, messages, size).await?;
        println!(
            "produce nodes={} rf={} acks={:<3} (leaders {:?}): {:>9.0} msg/s {:>7.1} MB/s  p50 {:>7.1} ms  p99 {:>7.1} ms",
            s.nodes,
            s.replication_factor,
            s.acks,
            view.leaders(),
            messages as f64 / elapsed,
            (messages * size) as f64 / elapsed / 1e6,
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
        let latencies =
            one_at_a_time(&bootstrap, &topic, s.acks, partitions, SEQUENTIAL, size).await?;
        println!(
            "  one at a time ({SEQUENTIAL} messages):{:>36}p50 {:>7.2} ms  p99 {:>7.2} ms",
            "",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        );
    }
    Ok(())
}
