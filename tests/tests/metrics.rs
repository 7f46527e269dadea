//! The Prometheus endpoint (`brook.metrics.listener`) of a three-node cluster, scraped over
//! HTTP as Prometheus does: produce counters move by exactly the batches and records sent,
//! consumers' bytes out follow, the request counters and latency histograms count each
//! request, the Raft gauges agree across nodes, and a killed follower shows up as an
//! under-replicated partition on the leader and one live broker less.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, ensure, Context, Result};
use brook_tests::cluster::{consume_to_ends, produce_with_acks, Cluster};
use brook_tests::*;
use kafka_protocol::records::Compression;

const TOPIC: &str = "metered";

/// One scrape: every sample by its series (`name{labels}`).
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        self.0.get(series).copied().unwrap_or(0.0)
    }
}

/// Where node `id` serves `/metrics` (it binds port 0 and logs the address).
fn metrics_addr(c: &Cluster, id: i32) -> Result<String> {
    let log = c.node(id).log_tail(5_000);
    let line = log
        .lines()
        .find(|l| l.contains("serving /metrics"))
        .ok_or_else(|| anyhow!("node {id} logged no metrics address"))?;
    let addr = line
        .split("addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or_else(|| anyhow!("no addr= in `{line}`"))?;
    Ok(addr.to_string())
}

/// GET `path` over plain HTTP: the status line and the body.
fn get(addr: &str, path: &str) -> Result<(String, String)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no header end in {response:?}"))?;
    let status = head.lines().next().unwrap_or_default().to_string();
    Ok((status, body.to_string()))
}

fn scrape(c: &Cluster, id: i32) -> Result<Scrape> {
    let (status, body) = get(&metrics_addr(c, id)?, "/metrics")?;
    ensure!(status.contains("200"), "scrape of node {id}: {status}");
    let mut samples = HashMap::new();
    for line in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line
            .rsplit_once(' ')
            .ok_or_else(|| anyhow!("bad sample line `{line}`"))?;
        let value: f64 = value.parse().with_context(|| format!("`{line}`"))?;
        samples.insert(series.to_string(), value);
    }
    Ok(Scrape(samples))
}

/// The `brook_*` metric names a dashboard or rule file mentions.
fn queried_metrics(text: &str) -> std::collections::BTreeSet<String> {
    text.match_indices("brook_")
        .map(|(at, _)| {
            text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect()
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[test]
fn metrics_follow_the_data_path_raft_and_a_dead_follower() -> Result<()> {
    let mut c = Cluster::start_with(3, |o| {
        o.set("brook.metrics.listener", "127.0.0.1:0")
            .set("broker.heartbeat.interval.ms", 500)
            .set("broker.session.timeout.ms", 3000);
    });
    let view = c.create_replicated_topic(1, TOPIC, 1, 3, &[])?;
    let leader = view.leaders()[0];
    wait_for("the partition fully in sync", EVENTUALLY, || {
        Ok(c.partition(leader, TOPIC, 0)?.fully_in_sync().then_some(()))
    })?;

    // Produce: five batches of three records, acks=all, straight to the leader.
    let topic = format!("{{topic=\"{TOPIC}\"}}");
    let before = scrape(&c, leader)?;
    let mut conn = c.conn(leader)?;
    let mut sent = 0usize;
    for i in 0..5 {
        let values = [format!("a{i}"), format!("b{i}"), format!("c{i}")];
        let values: Vec<&[u8]> = values.iter().map(|v| v.as_bytes()).collect();
        let batch = record_batch(&values, 2, NO_PRODUCER, -1, now_ms(), Compression::None)?;
        sent += batch.len();
        let answer = produce_with_acks(&mut conn, TOPIC, -1, 30_000, &[(0, batch)])?;
        ensure!(answer[0].error_code == 0, "produce: {answer:?}");
    }
    let after = scrape(&c, leader)?;
    let delta = |series: &str| after.get(series) - before.get(series);
    assert_eq!(
        delta(&format!("brook_topic_in_bytes_total{topic}")),
        sent as f64
    );
    assert_eq!(
        delta(&format!("brook_topic_messages_in_total{topic}")),
        15.0
    );
    assert_eq!(delta("brook_requests_total{api=\"produce\"}"), 5.0);
    assert_eq!(
        delta("brook_request_duration_seconds_count{api=\"produce\"}"),
        5.0
    );
    assert!(after.get("brook_connections") >= 1.0);

    // Consume it all: the leader sends at least those bytes.
    let ends = BTreeMap::from([(0, 15)]);
    let read = consume_to_ends(&c.bootstrap(leader), TOPIC, &ends)?;
    assert_eq!(read[&0].len(), 15);
    let consumed = scrape(&c, leader)?;
    assert!(
        consumed.get(&format!("brook_topic_out_bytes_total{topic}")) >= sent as f64,
        "bytes out below what was produced"
    );

    // Every metric the shipped dashboard and alert rules query has data in a live scrape.
    let names: std::collections::BTreeSet<&str> = consumed
        .0
        .keys()
        .map(|series| series.split('{').next().unwrap_or(series))
        .collect();
    for file in ["grafana/brook-dashboard.json", "prometheus/alerts.yml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(file);
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        let queried = queried_metrics(&text);
        ensure!(!queried.is_empty(), "{file} queries no brook metric");
        for name in queried {
            ensure!(
                names.contains(name.as_str()),
                "{file} queries {name}, which a scrape lacks"
            );
        }
    }

    // Raft and the cluster, as every node sees them.
    let raft_leader = after.get("brook_raft_leader");
    for id in c.ids() {
        let s = scrape(&c, id)?;
        assert_eq!(s.get("brook_raft_leader"), raft_leader, "node {id}");
        assert_eq!(s.get("brook_raft_voters"), 3.0, "node {id}");
        assert!(s.get("brook_raft_term") >= 1.0, "node {id}");
        assert!(s.get("brook_raft_applied_index") >= 1.0, "node {id}");
        assert_eq!(s.get("brook_live_brokers"), 3.0, "node {id}");
        assert_eq!(s.get("brook_partitions"), 1.0, "node {id}");
        assert!(
            s.get("brook_process_resident_memory_bytes") > 1e6,
            "node {id}"
        );
    }
    assert_eq!(after.get("brook_leader_partitions"), 1.0);
    assert_eq!(after.get("brook_under_replicated_partitions"), 0.0);
    assert!(raft_leader >= 1.0);

    // A killed follower: under-replicated on the leader, one live broker less.
    let follower = view.partitions[0]
        .replicas
        .iter()
        .copied()
        .find(|&r| r != leader)
        .ok_or_else(|| anyhow!("no follower"))?;
    c.kill9(follower);
    wait_for(
        "the leader to report the partition under-replicated",
        EVENTUALLY,
        || {
            let s = scrape(&c, leader)?;
            Ok((s.get("brook_under_replicated_partitions") == 1.0
                && s.get("brook_live_brokers") == 2.0)
                .then_some(()))
        },
    )?;

    // Anything but /metrics is not found.
    let (status, _) = get(&metrics_addr(&c, leader)?, "/elsewhere")?;
    assert!(status.contains("404"), "{status}");
    Ok(())
}
