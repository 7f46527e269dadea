//! Consumer-group figures on a real 3-node brook cluster: offset commits through Raft, and how
//! long a rebalance takes when a member joins.
//!
//! ```sh
//! cargo run --release -p brook-tests --example group_bench -- [seconds]
//! ```
//! Starts three `brook` nodes (`BROOK_BIN`, default target/release/brook), then:
//! - 1 and 10 committers, each its own group, each committing 12 partitions in a loop
//!   (OffsetCommit, generation -1) to its group's coordinator for `seconds` (default 5):
//!   commits/s and latency percentiles;
//! - librdkafka consumers: two in a group, then a third joins; the time from the third
//!   subscribing until every member holds its new assignment, at librdkafka's default heartbeat
//!   interval (3 s) and at 500 ms.
//!
//! Figures only: nothing here asserts a speed.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use brook_tests::cluster::Cluster;
use brook_tests::{percentile, unique_name, RawConn};
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::ClientContext;

const PARTITIONS: i32 = 12;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// One committer: its own group, commits to the coordinator until `until`; returns latencies.
fn committer(
    cluster_addr: String,
    group: String,
    topic: String,
    until: Instant,
) -> Result<Vec<Duration>> {
    let mut bootstrap = RawConn::connect(&cluster_addr)?;
    let found = bootstrap.call(3, &FindCoordinatorRequest::default().with_key(text(&group)))?;
    ensure!(found.error_code == 0, "FindCoordinator: {found:?}");
    let mut conn = RawConn::connect((found.host.as_str(), found.port as u16))?;
    let mut latencies = Vec::new();
    let mut offset = 0i64;
    while Instant::now() < until {
        offset += 1;
        let partitions = (0..PARTITIONS)
            .map(|p| {
                OffsetCommitRequestPartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset)
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(text(&group)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(text(&topic)))
                .with_partitions(partitions)]);
        let sent = Instant::now();
        let response = conn.call(8, &request)?;
        latencies.push(sent.elapsed());
        let failed = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.error_code != 0);
        ensure!(failed.is_none(), "commit failed: {failed:?}");
    }
    Ok(latencies)
}

fn commit_bench(cluster: &Cluster, topic: &str, committers: usize, seconds: u64) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let handles: Vec<_> = (0..committers)
        .map(|i| {
            let addr = cluster.bootstrap(1);
            let group = unique_name(&format!("bench-{committers}-{i}"));
            let topic = topic.to_owned();
            thread::spawn(move || committer(addr, group, topic, until))
        })
        .collect();
    let mut latencies = Vec::new();
    for h in handles {
        latencies.extend(
            h.join()
                .map_err(|_| anyhow::anyhow!("committer panicked"))??,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    println!(
        "offset commits, {committers:>2} committers x {PARTITIONS} partitions: {:>7.0} commits/s ({:>7.0} partition offsets/s)  p50 {:>5.1} ms  p99 {:>5.1} ms  max {:>5.1} ms",
        latencies.len() as f64 / elapsed,
        (latencies.len() * PARTITIONS as usize) as f64 / elapsed,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}

/// Reports every completed assignment: (member index, partitions now held).
struct Rebalances {
    member: usize,
    events: mpsc::Sender<(usize, usize)>,
}

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let _ = self.events.send((self.member, list.count()));
        }
    }
}

/// A consumer polling on its own thread until `stop` closes.
fn member(
    bootstrap: &str,
    group: &str,
    topic: &str,
    heartbeat_ms: u64,
    index: usize,
    events: mpsc::Sender<(usize, usize)>,
    stop: mpsc::Receiver<()>,
) -> Result<thread::JoinHandle<()>> {
    let consumer: BaseConsumer<Rebalances> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", heartbeat_ms.to_string())
        .set("enable.auto.commit", "false")
        .create_with_context(Rebalances {
            member: index,
            events,
        })?;
    consumer.subscribe(&[topic])?;
    Ok(thread::spawn(move || {
        while stop.try_recv() == Err(mpsc::TryRecvError::Empty) {
            let _ = consumer.poll(Duration::from_millis(50));
        }
    }))
}

/// Two members settle, a third joins: time until the three hold 12 partitions together.
fn rebalance_bench(cluster: &Cluster, topic: &str, heartbeat_ms: u64) -> Result<()> {
    let group = unique_name("bench-rebalance");
    let bootstrap = cluster.bootstrap(1);
    let (events, assignments) = mpsc::channel();
    let mut stops = Vec::new();
    let mut threads = Vec::new();
    let mut held = [0usize; 3];
    let wait_until = |held: &mut [usize; 3], members: usize, deadline: Duration| -> Result<()> {
        let start = Instant::now();
        while !(held.iter().sum::<usize>() == PARTITIONS as usize
            && held[..members].iter().all(|&n| n > 0))
        {
            let left = deadline.saturating_sub(start.elapsed());
            ensure!(!left.is_zero(), "no settled assignment: {held:?}");
            if let Ok((m, n)) = assignments.recv_timeout(left) {
                held[m] = n;
            }
        }
        Ok(())
    };
    let mut joined = Instant::now();
    for i in 0..3 {
        if i == 2 {
            wait_until(&mut held, 2, Duration::from_secs(60))?;
            joined = Instant::now();
        }
        let (stop, stopped) = mpsc::channel();
        stops.push(stop);
        let events = events.clone();
        threads.push(member(
            &bootstrap,
            &group,
            topic,
            heartbeat_ms,
            i,
            events,
            stopped,
        )?);
    }
    wait_until(&mut held, 3, Duration::from_secs(60))?;
    println!(
        "rebalance when a 3rd member joins (librdkafka, eager range, heartbeat.interval.ms={heartbeat_ms}): {:>6.0} ms, partitions per member {held:?}",
        joined.elapsed().as_secs_f64() * 1e3
    );
    drop(stops);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn main() -> Result<()> {
    let seconds = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5u64);
    let cluster = Cluster::start_with(3, |o| {
        o.set("group.initial.rebalance.delay.ms", 0);
    });
    let topic = unique_name("bench-groups");
    cluster.create_topic(1, &topic, PARTITIONS)?;
    for committers in [1, 10] {
        commit_bench(&cluster, &topic, committers, seconds)?;
    }
    for heartbeat_ms in [3000, 500] {
        rebalance_bench(&cluster, &topic, heartbeat_ms)?;
    }
    Ok(())
}
