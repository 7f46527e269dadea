//! Prometheus metrics, served on `brook.metrics.listener` (off the Kafka port) in the
//! OpenMetrics text format that `prometheus-client` encodes.
//!
//! Two kinds: counters and histograms the request path updates as it goes (requests, their
//! latency, bytes and records in and out per topic, connections), and gauges read from the
//! metadata image, the Raft member and `/proc` when a scrape arrives (partitions, replication
//! health, Raft progress, process memory and CPU), so nothing polls between scrapes.
//!
//! - [`http`]: the `/metrics` endpoint.
//! - [`process`]: the process's own memory and CPU, from `/proc`.

pub mod http;
mod process;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::metadata::MetadataImage;

/// Per-topic series stop at this many topics (the rest count under `topic="_other"`), so a
/// client creating and deleting topics cannot grow the scrape without bound.
pub const MAX_TOPIC_SERIES: usize = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ApiLabels {
    api: &'static str,
}

/// The topic label of the topics past [`MAX_TOPIC_SERIES`].
const OTHER: &str = "_other";

/// One topic's counters.
struct TopicSeries {
    bytes_in: Counter,
    messages_in: Counter,
    bytes_out: Counter,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

/// One API's request counter and latency histogram, made once so a request costs no lookup
/// by label.
struct ApiSeries {
    requests: Counter,
    errors: Counter,
    seconds: Histogram,
}

fn latency() -> Histogram {
    // 0.25 ms to about 16 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 17))
}

pub struct Metrics {
    registry: Registry,
    apis: HashMap<i16, ApiSeries>,
    bytes_in: Family<TopicLabels, Counter>,
    messages_in: Family<TopicLabels, Counter>,
    bytes_out: Family<TopicLabels, Counter>,
    /// Each topic's counters, shared with the families above: a produce or fetch finds them
    /// by name without building labels, and deleted topics' series are dropped from here.
    topics: Mutex<HashMap<String, TopicSeries>>,
    connections: Gauge,
    connections_opened: Counter,
    connections_closed_by_broker: Counter,
    scrape: Scrape,
}

/// The gauges set when a scrape arrives.
#[derive(Default)]
struct Scrape {
    partitions: Gauge,
    leader_partitions: Gauge,
    under_replicated: Gauge,
    under_min_isr: Gauge,
    offline: Gauge,
    live_brokers: Gauge,
    topics: Gauge,
    raft_term: Gauge,
    raft_last_log_index: Gauge,
    raft_applied_index: Gauge,
    raft_leader: Gauge,
    raft_voters: Gauge,
    raft_learners: Gauge,
    rss: Gauge,
    cpu: Gauge<f64, std::sync::atomic::AtomicU64>,
}

/// What a scrape reads besides the image: the Raft member's view.
pub struct RaftView {
    pub term: u64,
    pub last_log_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub leader: Option<u64>,
    pub voters: usize,
    pub learners: usize,
}

impl Metrics {
    /// The metrics of a node serving `apis`.
    pub fn new(apis: impl IntoIterator<Item = ApiKey>) -> Metrics {
        let mut registry = Registry::with_prefix("brook");
        let requests = Family::<ApiLabels, Counter>::default();
        let errors = Family::<ApiLabels, Counter>::default();
        let seconds =
            Family::<ApiLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let apis = apis
            .into_iter()
            .map(|key| {
                let labels = ApiLabels { api: api_name(key) };
                let series = ApiSeries {
                    requests: requests.get_or_create_owned(&labels),
                    errors: errors.get_or_create_owned(&labels),
                    seconds: seconds.get_or_create_owned(&labels),
                };
                (key as i16, series)
            })
            .collect();
        registry.register("requests", "Kafka requests answered, by API", requests);
        registry.register(
            "request_errors",
            "Requests that closed their connection instead of being answered (bad frames, refused authentication), by API",
            errors,
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer being ready, by API (a long-polling Fetch counts its wait)",
            Unit::Seconds,
            seconds,
        );
        let metrics = Metrics {
            apis,
            bytes_in: Family::default(),
            messages_in: Family::default(),
            bytes_out: Family::default(),
            topics: Mutex::new(HashMap::new()),
            connections: Gauge::default(),
            connections_opened: Counter::default(),
            connections_closed_by_broker: Counter::default(),
            scrape: Scrape::default(),
            registry,
        };
        metrics.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register_with_unit(
            "topic_in",
            "Record batch bytes appended by producers, by topic (leader side)",
            Unit::Bytes,
            self.bytes_in.clone(),
        );
        r.register(
            "topic_messages_in",
            "Records appended by producers, by topic (leader side)",
            self.messages_in.clone(),
        );
        r.register_with_unit(
            "topic_out",
            "Record bytes sent to consumers, by topic",
            Unit::Bytes,
            self.bytes_out.clone(),
        );
        r.register(
            "connections",
            "Open Kafka connections",
            self.connections.clone(),
        );
        r.register(
            "connections_opened",
            "Kafka connections accepted",
            self.connections_opened.clone(),
        );
        r.register(
            "connections_closed_by_broker",
            "Kafka connections the broker closed for a protocol, authentication or timeout reason",
            self.connections_closed_by_broker.clone(),
        );
        let s = &self.scrape;
        r.register(
            "partitions",
            "Partitions this node holds a replica of",
            s.partitions.clone(),
        );
        r.register(
            "leader_partitions",
            "Partitions this node leads",
            s.leader_partitions.clone(),
        );
        r.register(
            "under_replicated_partitions",
            "Partitions this node leads whose in-sync set is smaller than the replica set",
            s.under_replicated.clone(),
        );
        r.register(
            "under_min_isr_partitions",
            "Partitions this node leads with fewer in-sync replicas than min.insync.replicas",
            s.under_min_isr.clone(),
        );
        r.register(
            "offline_partitions",
            "Partitions of the cluster without a live leader, as this node sees the metadata",
            s.offline.clone(),
        );
        r.register(
            "live_brokers",
            "Brokers heartbeating within the session timeout",
            s.live_brokers.clone(),
        );
        r.register("topics", "Topics in the cluster", s.topics.clone());
        r.register(
            "raft_term",
            "The metadata Raft group's current term",
            s.raft_term.clone(),
        );
        r.register(
            "raft_last_log_index",
            "Index of the last entry in this node's metadata log",
            s.raft_last_log_index.clone(),
        );
        r.register(
            "raft_applied_index",
            "Index of the last metadata entry this node applied",
            s.raft_applied_index.clone(),
        );
        r.register(
            "raft_leader",
            "Node id of the metadata Raft leader (-1: none known)",
            s.raft_leader.clone(),
        );
        r.register(
            "raft_voters",
            "Voters of the metadata Raft group",
            s.raft_voters.clone(),
        );
        r.register(
            "raft_learners",
            "Learners (observers) of the metadata Raft group",
            s.raft_learners.clone(),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident set size of the brook process",
            Unit::Bytes,
            s.rss.clone(),
        );
        r.register_with_unit(
            "process_cpu",
            "User and system CPU time the brook process used",
            Unit::Seconds,
            s.cpu.clone(),
        );
        self
    }

    /// A request of `api` was answered after `elapsed`.
    pub fn answered(&self, api: ApiKey, elapsed: Duration) {
        if let Some(series) = self.apis.get(&(api as i16)) {
            series.requests.inc();
            series.seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// A request of `api` closed its connection instead of being answered.
    pub fn failed(&self, api: ApiKey) {
        if let Some(series) = self.apis.get(&(api as i16)) {
            series.errors.inc();
        }
    }

    /// A producer's batch of `records` records in `bytes` bytes was appended to `topic`.
    pub fn produced(&self, topic: &str, bytes: usize, records: u64) {
        self.with_topic(topic, |t| {
            t.bytes_in.inc_by(bytes as u64);
            t.messages_in.inc_by(records);
        });
    }

    /// `bytes` bytes of `topic` went to a consumer.
    pub fn consumed(&self, topic: &str, bytes: usize) {
        if bytes > 0 {
            self.with_topic(topic, |t| {
                t.bytes_out.inc_by(bytes as u64);
            });
        }
    }

    pub fn connection_opened(&self) {
        self.connections_opened.inc();
        self.connections.inc();
    }

    pub fn connection_closed(&self, by_broker: bool) {
        self.connections.dec();
        if by_broker {
            self.connections_closed_by_broker.inc();
        }
    }

    /// Runs `f` on `topic`'s counters, made on first use; past [`MAX_TOPIC_SERIES`] topics
    /// the new ones share `_other`'s.
    fn with_topic(&self, topic: &str, f: impl FnOnce(&TopicSeries)) {
        let mut topics = match self.topics.lock() {
            Ok(topics) => topics,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(series) = topics.get(topic) {
            return f(series);
        }
        let name = if topics.len() < MAX_TOPIC_SERIES {
            topic
        } else {
            OTHER
        };
        let labels = TopicLabels {
            topic: name.to_string(),
        };
        let series = topics
            .entry(name.to_string())
            .or_insert_with(|| TopicSeries {
                bytes_in: self.bytes_in.get_or_create_owned(&labels),
                messages_in: self.messages_in.get_or_create_owned(&labels),
                bytes_out: self.bytes_out.get_or_create_owned(&labels),
            });
        f(series)
    }

    /// Sets the scrape-time gauges and encodes every metric.
    pub fn encode(&self, me: i32, image: &MetadataImage, raft: &RaftView) -> String {
        self.refresh(me, image, raft);
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %e, "encoding the metrics failed");
        }
        text
    }

    fn refresh(&self, me: i32, image: &MetadataImage, raft: &RaftView) {
        let s = &self.scrape;
        let (mut held, mut led, mut under, mut under_min, mut offline) = (0, 0, 0, 0, 0);
        for topic in image.topics() {
            let min_isr = usize::try_from(topic.config.min_insync_replicas).unwrap_or(1);
            for owner in &topic.owners {
                if owner.node < 0 || !image.is_live(owner.node) {
                    offline += 1;
                }
                if owner.replicas.contains(&me) {
                    held += 1;
                }
                if owner.node == me {
                    led += 1;
                    under += i64::from(owner.isr.len() < owner.replicas.len());
                    under_min += i64::from(owner.isr.len() < min_isr);
                }
            }
        }
        s.partitions.set(held);
        s.leader_partitions.set(led);
        s.under_replicated.set(under);
        s.under_min_isr.set(under_min);
        s.offline.set(offline);
        s.live_brokers
            .set(count(image.brokers().filter(|b| b.live).count()));
        s.topics.set(count(image.topics().count()));
        s.raft_term.set(index(Some(raft.term)));
        s.raft_last_log_index.set(index(raft.last_log_index));
        s.raft_applied_index.set(index(raft.applied_index));
        s.raft_leader.set(index(raft.leader));
        s.raft_voters.set(count(raft.voters));
        s.raft_learners.set(count(raft.learners));
        let (rss, cpu) = process::usage();
        s.rss
            .set(rss.map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX)));
        s.cpu.set(cpu.unwrap_or(-1.0));
        self.drop_deleted_topics(image);
    }

    /// Deleted topics lose their series.
    fn drop_deleted_topics(&self, image: &MetadataImage) {
        let mut topics = match self.topics.lock() {
            Ok(topics) => topics,
            Err(poisoned) => poisoned.into_inner(),
        };
        topics.retain(|name, _| {
            let exists = name == OTHER || image.topic(name).is_some();
            if !exists {
                let labels = TopicLabels {
                    topic: name.clone(),
                };
                self.bytes_in.remove(&labels);
                self.messages_in.remove(&labels);
                self.bytes_out.remove(&labels);
            }
            exists
        });
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A Raft index or id as a gauge; -1 when there is none.
fn index(value: Option<u64>) -> i64 {
    value.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// The API's name in snake case, as Prometheus labels are usually written (`produce`,
/// `fetch`, `offset_commit`).
fn api_name(key: ApiKey) -> &'static str {
    let debug = format!("{key:?}");
    let mut snake = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    // Made once per API at start: leaking a few dozen short names keeps labels allocation-free.
    Box::leak(snake.into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_are_snake_case() {
        assert_eq!(api_name(ApiKey::Produce), "produce");
        assert_eq!(api_name(ApiKey::OffsetCommit), "offset_commit");
        assert_eq!(
            api_name(ApiKey::DescribeUserScramCredentials),
            "describe_user_scram_credentials"
        );
    }

    #[test]
    fn requests_and_topics_are_counted_and_encoded() {
        let m = Metrics::new([ApiKey::Produce, ApiKey::Fetch]);
        m.answered(ApiKey::Produce, Duration::from_millis(3));
        m.answered(ApiKey::Produce, Duration::from_millis(5));
        m.failed(ApiKey::Fetch);
        m.produced("orders", 1000, 10);
        m.consumed("orders", 400);
        m.connection_opened();
        let raft = RaftView {
            term: 3,
            last_log_index: Some(10),
            applied_index: Some(9),
            leader: Some(1),
            voters: 3,
            learners: 0,
        };
        let text = m.encode(1, &MetadataImage::default(), &raft);
        for line in [
            "brook_requests_total{api=\"produce\"} 2",
            "brook_request_errors_total{api=\"fetch\"} 1",
            "brook_request_duration_seconds_count{api=\"produce\"} 2",
            "brook_raft_term 3",
            "brook_raft_applied_index 9",
            "brook_connections 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
        }
        // The image has no topic `orders`: its series went with the scrape.
        assert!(!text.contains("orders"), "{text}");
        m.produced("orders", 1000, 10);
        let text = m.encode(1, &MetadataImage::default(), &raft);
        assert!(!text.contains("orders"), "{text}");
    }
}
