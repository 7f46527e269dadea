//! Multi-node clusters for cross-process tests.
//!
//! [`Cluster`] runs N `brook node` processes, each a [`Broker`] with its own temporary directory
//! and log, on Kafka and Raft ports chosen once and kept for good: Raft membership records every
//! node's Raft address, so a restarted node must come back on the same one. The nodes get their
//! cluster settings by their Kafka names (`controller.quorum.voters`, `brook.raft.listener`,
//! `controller.quorum.bootstrap.servers`); `brook cluster up`, driven by [`ClusterUp`], passes
//! the equivalent flags (`--peers`, `--raft-listener`), so both ways in are exercised.
//!
//! Cluster state is read the way Kafka tools read it, with raw requests ([`RawConn`]):
//! DescribeQuorum for the Raft group, DescribeCluster for the controller, Metadata v12 for
//! brokers, topic ids, owners and leaders. Nodes configured with [`BrokerOptions::secure`] make
//! a SASL_SSL cluster; its raw connections then speak TLS and log in ([`Cluster::conn`]), and
//! its rdkafka clients take [`Cluster::security`].

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::anyhow::{anyhow, bail, ensure, Context as _, Result};
use bytes::Bytes;
use kafka_protocol::messages::{
    create_topics_request::{CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig},
    delete_topics_request::DeleteTopicState,
    describe_quorum_request,
    metadata_request::MetadataRequestTopic,
    produce_request::{PartitionProduceData, TopicProduceData},
    produce_response::PartitionProduceResponse,
    BrokerId, CreateTopicsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeQuorumRequest, MetadataRequest, MetadataResponse, ProduceRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::{
    brook_bin, client_config, free_port, topic_name, wait_for, Broker, BrokerOptions, RawConn,
    Received, Security, EVENTUALLY, READY_TIMEOUT, SHUTDOWN_TIMEOUT,
};

/// Kafka error codes of the cluster tests (the single-node ones are in [`crate::codes`]).
pub const LEADER_NOT_AVAILABLE: i16 = 5;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const NOT_ENOUGH_REPLICAS: i16 = 19;
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
pub const TOPIC_ALREADY_EXISTS: i16 = 36;

/// Versions of the raw cluster requests (all within what brook advertises).
pub const METADATA_VERSION: i16 = 12;
pub const DESCRIBE_QUORUM_VERSION: i16 = 2;
pub const DESCRIBE_CLUSTER_VERSION: i16 = 1;
pub const CREATE_TOPICS_VERSION: i16 = 7;
pub const DELETE_TOPICS_VERSION: i16 = 6;

/// KRaft's name for the metadata log, which DescribeQuorum asks about.
const METADATA_TOPIC: &str = "__cluster_metadata";

const HOST: &str = "127.0.0.1";

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

/// Ports handed out by this process, so two nodes never get the same one.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn bindable(port: u16) -> bool {
    TcpListener::bind((HOST, port)).is_ok()
}

/// `count` consecutive ports that are free now and were not handed out before. They are picked
/// below Linux's ephemeral range (32768 and up), so an outgoing connection cannot take one
/// while its node is down between a stop and a restart.
pub fn free_ports(count: u16) -> u16 {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    for _ in 0..10_000 {
        let base: u16 = rand::random_range(10_000..32_000 - count);
        let ports = base..base + count;
        if ports.clone().all(|p| !taken.contains(&p) && bindable(p)) {
            taken.extend(ports);
            return base;
        }
    }
    // Fall back to the kernel's choice (a single port).
    assert_eq!(count, 1, "no {count} consecutive free ports found");
    let port = free_port();
    taken.insert(port);
    port
}

// ---------------------------------------------------------------------------------------------
// Node options
// ---------------------------------------------------------------------------------------------

/// A fresh random cluster secret (64 hex digits).
pub fn cluster_secret() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

impl BrokerOptions {
    /// This node's Raft port on the loopback (`brook.raft.listener`, like `--raft-listener`).
    pub fn raft_port(&mut self, port: u16) -> &mut Self {
        self.set("brook.raft.listener", format!("{HOST}:{port}"))
    }

    /// The initial voters as `id@host:port,...` (`controller.quorum.voters`, like `--peers`).
    pub fn peers(&mut self, peers: &str) -> &mut Self {
        self.set("controller.quorum.voters", peers)
    }

    /// Join the running cluster through this Raft address
    /// (`controller.quorum.bootstrap.servers`, like `--join`).
    pub fn join(&mut self, raft_addr: &str) -> &mut Self {
        self.set("controller.quorum.bootstrap.servers", raft_addr)
    }
}

// ---------------------------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------------------------

struct Member {
    id: i32,
    raft_port: u16,
    broker: Broker,
}

/// N `brook node` processes forming one cluster; node ids count from 1.
pub struct Cluster {
    members: Vec<Member>,
    /// Settings every node gets (also nodes added later).
    common: BrokerOptions,
}

impl Cluster {
    /// Starts `n` nodes with default settings. Panics (with the logs) if they do not all print
    /// their ready line.
    pub fn start(n: usize) -> Cluster {
        Self::start_with(n, |_| {})
    }

    /// Starts `n` nodes, each with the settings `configure` makes, and waits until the cluster
    /// has settled: every node lists all of them as live brokers, so partitions of new topics
    /// spread over all nodes.
    ///
    /// Settling spans one broker heartbeat interval: brokers that register before any heartbeat
    /// is in the Raft log count as live only until the first heartbeat moves the log's clock,
    /// then as down until their own first heartbeat is applied (see
    /// `ready_nodes_are_live_brokers_at_once`). Each node heartbeats as soon as it registered,
    /// so one interval after the ready lines every broker's liveness rests on a real heartbeat.
    pub fn start_with(n: usize, configure: impl FnOnce(&mut BrokerOptions)) -> Cluster {
        let cluster = Self::launch_with(n, configure);
        let ids = cluster.ids();
        let all_listed = || {
            for &id in &ids {
                if let Err(e) = cluster.wait_for_brokers(id, &ids) {
                    panic!("the cluster did not settle: {e:#}");
                }
            }
        };
        all_listed();
        std::thread::sleep(cluster.heartbeat_interval());
        all_listed();
        cluster
    }

    /// `broker.heartbeat.interval.ms` of the nodes.
    pub fn heartbeat_interval(&self) -> Duration {
        let ms = self
            .common
            .settings
            .iter()
            .rev()
            .find(|(k, _)| k == "broker.heartbeat.interval.ms")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(2000);
        Duration::from_millis(ms)
    }

    /// Starts `n` nodes and returns once each printed its ready line, without waiting for
    /// anything else.
    pub fn launch_with(n: usize, configure: impl FnOnce(&mut BrokerOptions)) -> Cluster {
        let mut common = BrokerOptions::default();
        // The nodes authenticate each other on the Raft port with one secret.
        common.set("brook.cluster.secret", cluster_secret());
        configure(&mut common);
        let plan: Vec<(i32, u16, u16)> = (1..=n as i32)
            .map(|id| (id, free_ports(1), free_ports(1)))
            .collect();
        let peers = plan
            .iter()
            .map(|(id, _, raft)| format!("{id}@{HOST}:{raft}"))
            .collect::<Vec<_>>()
            .join(",");
        // Concurrently: a node is ready only once a quorum registered it.
        let started: Vec<Result<Broker>> = std::thread::scope(|s| {
            let handles: Vec<_> = plan
                .iter()
                .map(|&(id, port, raft)| {
                    let mut opts = common.clone();
                    opts.node_id(id)
                        .listen_port(port)
                        .raft_port(raft)
                        .peers(&peers);
                    s.spawn(move || Broker::try_start(opts))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("starting thread panicked")))
                })
                .collect()
        });
        let mut members = Vec::new();
        let mut errors = Vec::new();
        for ((id, _, raft_port), result) in plan.into_iter().zip(started) {
            match result {
                Ok(broker) => members.push(Member {
                    id,
                    raft_port,
                    broker,
                }),
                Err(e) => errors.push(format!("node {id}: {e:#}")),
            }
        }
        let cluster = Cluster { members, common };
        if !errors.is_empty() {
            panic!("could not start a {n}-node cluster:\n{}", errors.join("\n"));
        }
        cluster
    }

    fn member(&self, id: i32) -> &Member {
        self.members
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no node {id} in the cluster"))
    }

    fn member_mut(&mut self, id: i32) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no node {id} in the cluster"))
    }

    /// The node's broker (for the rdkafka helpers, which take a [`Broker`]).
    pub fn node(&self, id: i32) -> &Broker {
        &self.member(id).broker
    }

    /// Every node id, up or down.
    pub fn ids(&self) -> Vec<i32> {
        self.members.iter().map(|m| m.id).collect()
    }

    /// Whether the harness has the node running (not killed or stopped).
    pub fn is_up(&self, id: i32) -> bool {
        self.member(id).broker.child.is_some()
    }

    /// Whether the node's process is alive (it may have died on its own).
    pub fn is_running(&mut self, id: i32) -> bool {
        self.member_mut(id).broker.is_running()
    }

    /// Ids of the nodes the harness has running.
    pub fn up_ids(&self) -> Vec<i32> {
        self.members
            .iter()
            .filter(|m| m.broker.child.is_some())
            .map(|m| m.id)
            .collect()
    }

    /// The node's Kafka address (fixed for the cluster's life).
    pub fn addr(&self, id: i32) -> SocketAddr {
        self.member(id).broker.listen_addr()
    }

    pub fn bootstrap(&self, id: i32) -> String {
        self.addr(id).to_string()
    }

    /// The node's Raft address.
    pub fn raft_addr(&self, id: i32) -> String {
        format!("{HOST}:{}", self.member(id).raft_port)
    }

    /// SIGKILL one node.
    pub fn kill9(&mut self, id: i32) {
        self.member_mut(id).broker.kill9();
    }

    /// SIGTERM one node and wait for it to exit.
    pub fn terminate(&mut self, id: i32) -> ExitStatus {
        self.member_mut(id).broker.terminate()
    }

    /// Starts a node again on its ports and directory (stopping it gracefully first if it is
    /// running) and waits for its ready line.
    pub fn restart(&mut self, id: i32) {
        self.member_mut(id).broker.restart();
    }

    /// SIGTERM every running node at once and wait for all; returns their exit statuses.
    pub fn stop_all(&mut self) -> BTreeMap<i32, ExitStatus> {
        std::thread::scope(|s| {
            let handles: Vec<_> = self
                .members
                .iter_mut()
                .filter(|m| m.broker.child.is_some())
                .map(|m| (m.id, s.spawn(|| m.broker.terminate())))
                .collect();
            handles
                .into_iter()
                .map(|(id, h)| {
                    let status = h
                        .join()
                        .unwrap_or_else(|_| panic!("stopping node {id} panicked"));
                    (id, status)
                })
                .collect()
        })
    }

    /// Starts every stopped node at once (a lone node cannot become ready without a quorum)
    /// and waits for all ready lines.
    pub fn start_all(&mut self) {
        let errors: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = self
                .members
                .iter_mut()
                .filter(|m| m.broker.child.is_none())
                .map(|m| (m.id, s.spawn(|| m.broker.spawn())))
                .collect();
            handles
                .into_iter()
                .filter_map(|(id, h)| match h.join() {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("node {id}: {e:#}")),
                    Err(_) => Some(format!("node {id}: starting thread panicked")),
                })
                .collect()
        });
        if !errors.is_empty() {
            panic!("could not restart the cluster:\n{}", errors.join("\n"));
        }
    }

    /// Starts one more node that joins the running cluster through node `via`'s Raft port;
    /// returns its id once it is ready.
    pub fn add_node(&mut self, via: i32) -> i32 {
        let id = self.members.iter().map(|m| m.id).max().unwrap_or(0) + 1;
        let (port, raft_port) = (free_ports(1), free_ports(1));
        let mut opts = self.common.clone();
        opts.node_id(id)
            .listen_port(port)
            .raft_port(raft_port)
            .join(&self.raft_addr(via));
        match Broker::try_start(opts) {
            Ok(broker) => self.members.push(Member {
                id,
                raft_port,
                broker,
            }),
            Err(e) => panic!("node {id} could not join through node {via}: {e:#}"),
        }
        id
    }

    /// How clients reach the nodes (see [`BrokerOptions::secure`]).
    pub fn security(&self) -> &Security {
        self.common.security()
    }

    /// A raw Kafka connection to a node (authenticated, if the cluster is secure).
    pub fn conn(&self, id: i32) -> Result<RawConn> {
        self.security()
            .connect(self.addr(id))
            .with_context(|| format!("connecting to node {id}"))
    }

    /// The node's view of the metadata Raft group.
    pub fn describe_quorum(&self, id: i32) -> Result<Quorum> {
        describe_quorum(&mut self.conn(id)?)
    }

    /// DescribeCluster's controller id as the node reports it.
    pub fn controller(&self, id: i32) -> Result<i32> {
        let response = self.conn(id)?.call(
            DESCRIBE_CLUSTER_VERSION,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(false),
        )?;
        ensure!(
            response.error_code == 0,
            "DescribeCluster error {}",
            response.error_code
        );
        Ok(response.controller_id.0)
    }

    /// The Raft leader every running node agrees on (waits for an election to settle).
    pub fn raft_leader(&self) -> i32 {
        let up = self.up_ids();
        let found = wait_for(
            "every running node to name one Raft leader",
            EVENTUALLY,
            || {
                let mut seen = BTreeSet::new();
                for &id in &up {
                    seen.insert(self.describe_quorum(id)?.leader);
                }
                let agreed = seen.len() == 1 && seen.iter().all(|l| up.contains(l));
                if agreed {
                    return Ok(seen.into_iter().next());
                }
                bail!("leaders named by nodes {up:?}: {seen:?}")
            },
        );
        found.unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Metadata (v12) from node `id`, for `topics` or all of them; never auto-creates.
    pub fn metadata(&self, id: i32, topics: Option<&[&str]>) -> Result<ClusterView> {
        metadata(&mut self.conn(id)?, topics)
    }

    /// One topic as node `id` describes it; `None` if the node does not know it.
    pub fn topic(&self, id: i32, name: &str) -> Result<Option<TopicView>> {
        let view = self.metadata(id, Some(&[name]))?;
        Ok(view.topics.into_iter().next().filter(|t| t.error == 0))
    }

    /// Waits until node `id` lists exactly `brokers` as live brokers.
    pub fn wait_for_brokers(&self, id: i32, brokers: &[i32]) -> Result<()> {
        let want: BTreeSet<i32> = brokers.iter().copied().collect();
        wait_for(
            &format!("node {id} to list brokers {want:?}"),
            EVENTUALLY,
            || {
                let have: BTreeSet<i32> =
                    self.metadata(id, Some(&[]))?.brokers.into_keys().collect();
                if have == want {
                    return Ok(Some(()));
                }
                bail!("node {id} lists brokers {have:?}")
            },
        )
    }

    /// Creates a topic (replication factor 1) through node `via` and waits until every running
    /// node describes it with a leader for each partition; returns node `via`'s view.
    pub fn create_topic(&self, via: i32, name: &str, partitions: i32) -> Result<TopicView> {
        let results = create_topics(&mut self.conn(via)?, &[name], partitions, 30_000)?;
        for (topic, code, message) in results {
            ensure!(
                code == 0,
                "CreateTopics {topic} through node {via}: error {code} {message:?}"
            );
        }
        self.wait_for_topic(name, partitions)
    }

    /// Creates a topic with `replication_factor` replicas per partition and topic `configs`
    /// (e.g. `min.insync.replicas`) through node `via`, and waits until every running node
    /// describes it the same way: `partitions` partitions, each with a leader, that many
    /// replicas and every replica in sync. Returns node `via`'s view.
    pub fn create_replicated_topic(
        &self,
        via: i32,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: &[(&str, &str)],
    ) -> Result<TopicView> {
        let (code, message) = create_topic_with(
            &mut self.conn(via)?,
            name,
            partitions,
            replication_factor,
            configs,
        )?;
        ensure!(
            code == 0,
            "CreateTopics {name} (replication factor {replication_factor}) through node {via}: \
             error {code} {message:?}"
        );
        self.wait_until_in_sync(via, name, partitions, replication_factor as usize)
    }

    /// Creates a topic whose partition `p` has the replica set `replicas[p]` (the first one
    /// leads) and topic `configs` through node `via`, and waits as
    /// [`Cluster::create_replicated_topic`] does. Returns node `via`'s view.
    pub fn create_assigned_topic(
        &self,
        via: i32,
        name: &str,
        replicas: &[Vec<i32>],
        configs: &[(&str, &str)],
    ) -> Result<TopicView> {
        let (code, message) =
            create_topic_with_assignment(&mut self.conn(via)?, name, replicas, configs)?;
        ensure!(
            code == 0,
            "CreateTopics {name} (replicas {replicas:?}) through node {via}: error {code} \
             {message:?}"
        );
        let rf = replicas.first().map_or(0, Vec::len);
        self.wait_until_in_sync(via, name, replicas.len() as i32, rf)
    }

    /// Waits until every running node describes `name` the same way, with `partitions`
    /// partitions, each led and with `replication_factor` replicas all in sync; returns node
    /// `via`'s view.
    fn wait_until_in_sync(
        &self,
        via: i32,
        name: &str,
        partitions: i32,
        replication_factor: usize,
    ) -> Result<TopicView> {
        self.wait_for_topic(name, partitions)?;
        let up = self.up_ids();
        wait_for(
            &format!("{name} fully in sync on nodes {up:?}"),
            EVENTUALLY,
            || {
                let mut views = Vec::new();
                for &id in &up {
                    let Some(t) = self.topic(id, name)? else {
                        bail!("node {id} does not know {name}");
                    };
                    let complete = t
                        .partitions
                        .iter()
                        .all(|p| p.replicas.len() == replication_factor && p.fully_in_sync());
                    ensure!(complete, "node {id} describes {name} as {t:?}");
                    views.push((id, t));
                }
                let first = &views[0].1;
                for (id, t) in &views {
                    ensure!(
                        t.partitions == first.partitions,
                        "node {id} describes {name} as {t:?}, node {} as {first:?}",
                        views[0].0
                    );
                }
                Ok(views.into_iter().find(|(id, _)| *id == via).map(|(_, t)| t))
            },
        )
    }

    /// Partition `partition` of `topic` as node `id` describes it.
    pub fn partition(&self, id: i32, topic: &str, partition: i32) -> Result<PartitionView> {
        let t = self
            .topic(id, topic)?
            .ok_or_else(|| anyhow!("node {id} does not know {topic}"))?;
        t.partition(partition)
            .cloned()
            .ok_or_else(|| anyhow!("node {id} describes {topic} without partition {partition}"))
    }

    /// Waits until every running node describes `topic` so that `check` holds for each of its
    /// partitions (the check names what is wrong in its error); returns the lowest running
    /// node's view.
    pub fn wait_for_partitions(
        &self,
        what: &str,
        topic: &str,
        timeout: Duration,
        check: impl Fn(&PartitionView) -> Result<()>,
    ) -> Result<TopicView> {
        let up = self.up_ids();
        wait_for(what, timeout, || {
            let mut first = None;
            for &id in &up {
                let Some(t) = self.topic(id, topic)? else {
                    bail!("node {id} does not know {topic}");
                };
                for p in &t.partitions {
                    check(p).map_err(|e| anyhow!("node {id}, {topic}/{}: {e:#}", p.index))?;
                }
                first.get_or_insert(t);
            }
            Ok(first)
        })
    }

    /// Waits until every running node describes `name` with `partitions` led partitions and
    /// the same topic id; returns the lowest running node's view.
    pub fn wait_for_topic(&self, name: &str, partitions: i32) -> Result<TopicView> {
        let up = self.up_ids();
        wait_for(&format!("{name} on nodes {up:?}"), EVENTUALLY, || {
            let mut views = Vec::new();
            for &id in &up {
                let Some(t) = self.topic(id, name)? else {
                    bail!("node {id} does not know {name}");
                };
                let led = t.partitions.len() == partitions as usize
                    && t.partitions.iter().all(|p| p.leader >= 0 && p.error == 0);
                ensure!(led, "node {id} describes {name} as {t:?}");
                views.push(t);
            }
            let ids: BTreeSet<&str> = views.iter().map(|v| v.id.as_str()).collect();
            ensure!(
                ids.len() == 1,
                "nodes disagree on the id of {name}: {ids:?}"
            );
            Ok(views.into_iter().next())
        })
    }

    /// Deletes a topic through node `via` and waits until no running node knows it.
    pub fn delete_topic(&self, via: i32, name: &str) -> Result<()> {
        let request = DeleteTopicsRequest::default()
            .with_timeout_ms(30_000)
            .with_topics(vec![
                DeleteTopicState::default().with_name(Some(topic_name(name)))
            ]);
        let response = self.conn(via)?.call(DELETE_TOPICS_VERSION, &request)?;
        for r in &response.responses {
            ensure!(
                r.error_code == 0,
                "DeleteTopics {name} through node {via}: error {} {:?}",
                r.error_code,
                r.error_message
            );
        }
        let up = self.up_ids();
        wait_for(
            &format!("{name} gone from nodes {up:?}"),
            EVENTUALLY,
            || {
                for &id in &up {
                    if self.topic(id, name)?.is_some() {
                        bail!("node {id} still lists {name}");
                    }
                }
                Ok(Some(()))
            },
        )
    }

    /// ListOffsets (latest) of one partition asked of node `id`: `(error_code, offset)`.
    pub fn end_offset(&self, id: i32, topic: &str, partition: i32) -> Result<(i16, i64)> {
        let (code, offset, _) = crate::list_offset(&mut self.conn(id)?, topic, partition, -1)?;
        Ok((code, offset))
    }

    /// Every node's log directory and log file, for failure reports.
    fn describe_nodes(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "node {}: kafka {} raft {} log {}",
                    m.id,
                    m.broker.listen_addr(),
                    self.raft_addr(m.id),
                    m.broker.log_path().display()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Each broker prints its own log tail when it is dropped; this says which is which.
        eprintln!("---- cluster nodes ----\n{}", self.describe_nodes());
    }
}

// ---------------------------------------------------------------------------------------------
// Raw cluster requests
// ---------------------------------------------------------------------------------------------

/// A node's view of the metadata Raft group (DescribeQuorum).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quorum {
    /// The Raft leader, -1 if the node knows none.
    pub leader: i32,
    /// The Raft term.
    pub epoch: i32,
    /// One past the last applied log index.
    pub high_watermark: i64,
    pub voters: BTreeSet<i32>,
    /// Learners.
    pub observers: BTreeSet<i32>,
}

pub fn describe_quorum(conn: &mut RawConn) -> Result<Quorum> {
    let request = DescribeQuorumRequest::default().with_topics(vec![
        describe_quorum_request::TopicData::default()
            .with_topic_name(topic_name(METADATA_TOPIC))
            .with_partitions(vec![
                describe_quorum_request::PartitionData::default().with_partition_index(0)
            ]),
    ]);
    let response = conn.call(DESCRIBE_QUORUM_VERSION, &request)?;
    ensure!(
        response.error_code == 0,
        "DescribeQuorum error {} {:?}",
        response.error_code,
        response.error_message
    );
    let p = response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .find(|p| p.partition_index == 0)
        .ok_or_else(|| anyhow!("DescribeQuorum answered without partition 0"))?;
    ensure!(
        p.error_code == 0,
        "DescribeQuorum partition error {}",
        p.error_code
    );
    Ok(Quorum {
        leader: p.leader_id.0,
        epoch: p.leader_epoch,
        high_watermark: p.high_watermark,
        voters: p.current_voters.iter().map(|r| r.replica_id.0).collect(),
        observers: p.observers.iter().map(|r| r.replica_id.0).collect(),
    })
}

/// Brokers, controller and topics as one node's Metadata describes them.
#[derive(Clone, Debug)]
pub struct ClusterView {
    pub controller: i32,
    /// Live brokers: id -> host:port.
    pub brokers: BTreeMap<i32, String>,
    pub topics: Vec<TopicView>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicView {
    pub name: String,
    /// The topic id (UUID text).
    pub id: String,
    pub error: i16,
    pub partitions: Vec<PartitionView>,
}

impl TopicView {
    /// Each partition's owner (its only replica), by partition index.
    pub fn owners(&self) -> Vec<i32> {
        self.partitions.iter().map(|p| p.owner).collect()
    }

    /// Partitions per owner.
    pub fn owner_counts(&self) -> BTreeMap<i32, usize> {
        let mut counts = BTreeMap::new();
        for p in &self.partitions {
            *counts.entry(p.owner).or_default() += 1;
        }
        counts
    }

    /// The partitions `owner` owns.
    pub fn owned_by(&self, owner: i32) -> Vec<i32> {
        self.partitions
            .iter()
            .filter(|p| p.owner == owner)
            .map(|p| p.index)
            .collect()
    }

    /// Each partition's leader (-1 for none), by partition index.
    pub fn leaders(&self) -> Vec<i32> {
        self.partitions.iter().map(|p| p.leader).collect()
    }

    /// The partitions `leader` leads.
    pub fn led_by(&self, leader: i32) -> Vec<i32> {
        self.partitions
            .iter()
            .filter(|p| p.leader == leader)
            .map(|p| p.index)
            .collect()
    }

    /// Partition `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&PartitionView> {
        self.partitions.iter().find(|p| p.index == index)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionView {
    pub index: i32,
    /// -1 while no replica leads.
    pub leader: i32,
    /// The first replica (the preferred leader).
    pub owner: i32,
    pub error: i16,
    /// The replica set, in the order Metadata lists it.
    pub replicas: Vec<i32>,
    /// The in-sync replicas.
    pub isr: Vec<i32>,
    /// Replicas on brokers that are not live (`offline_replicas`).
    pub offline: Vec<i32>,
    /// The leader epoch (-1 if the broker reports none).
    pub leader_epoch: i32,
}

impl PartitionView {
    /// Whether `id` is one of the in-sync replicas.
    pub fn in_sync(&self, id: i32) -> bool {
        self.isr.contains(&id)
    }

    /// Whether every replica is in sync (and there are replicas).
    pub fn fully_in_sync(&self) -> bool {
        let mut replicas = self.replicas.clone();
        let mut isr = self.isr.clone();
        replicas.sort_unstable();
        isr.sort_unstable();
        !replicas.is_empty() && replicas == isr
    }
}

/// Metadata v12 for `topics` (`None`: all topics, `Some(&[])`: none), without auto-creation.
pub fn metadata(conn: &mut RawConn, topics: Option<&[&str]>) -> Result<ClusterView> {
    let request = MetadataRequest::default()
        .with_topics(topics.map(|names| {
            names
                .iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                .collect()
        }))
        .with_allow_auto_topic_creation(false);
    let response: MetadataResponse = conn.call(METADATA_VERSION, &request)?;
    Ok(ClusterView {
        controller: response.controller_id.0,
        brokers: response
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect(),
        topics: response
            .topics
            .iter()
            .map(|t| {
                let mut partitions: Vec<PartitionView> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionView {
                        index: p.partition_index,
                        leader: p.leader_id.0,
                        owner: p.replica_nodes.first().map_or(-1, |b| b.0),
                        error: p.error_code,
                        replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                        isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                        offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                        leader_epoch: p.leader_epoch,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.index);
                TopicView {
                    name: t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default(),
                    id: t.topic_id.to_string(),
                    error: t.error_code,
                    partitions,
                }
            })
            .collect(),
    })
}

/// CreateTopics of `names` with `partitions` partitions each (replication factor 1); returns
/// `(name, error_code, error_message)` per topic.
pub fn create_topics(
    conn: &mut RawConn,
    names: &[&str],
    partitions: i32,
    timeout_ms: i32,
) -> Result<Vec<(String, i16, Option<String>)>> {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_validate_only(false)
        .with_topics(
            names
                .iter()
                .map(|n| {
                    CreatableTopic::default()
                        .with_name(topic_name(n))
                        .with_num_partitions(partitions)
                        .with_replication_factor(1)
                })
                .collect(),
        );
    let response = conn.call(CREATE_TOPICS_VERSION, &request)?;
    Ok(response
        .topics
        .into_iter()
        .map(|t| {
            (
                t.name.0.to_string(),
                t.error_code,
                t.error_message.map(|m| m.to_string()),
            )
        })
        .collect())
}

/// CreateTopics of one topic with a manual assignment: partition `i` owned by `owners[i]`.
/// Returns `(error_code, error_message)`.
pub fn create_topic_with_owners(
    conn: &mut RawConn,
    name: &str,
    owners: &[i32],
) -> Result<(i16, Option<String>)> {
    let assignments = owners
        .iter()
        .enumerate()
        .map(|(p, &owner)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(p as i32)
                .with_broker_ids(vec![BrokerId(owner)])
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(assignments)]);
    let response = conn.call(CREATE_TOPICS_VERSION, &request)?;
    let t = response
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("CreateTopics answered without a topic"))?;
    Ok((t.error_code, t.error_message.map(|m| m.to_string())))
}

/// CreateTopics of one topic with `partitions` partitions, `replication_factor` replicas each
/// (-1: the broker's `default.replication.factor`) and topic `configs`. Returns
/// `(error_code, error_message)`.
pub fn create_topic_with(
    conn: &mut RawConn,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[(&str, &str)],
) -> Result<(i16, Option<String>)> {
    let topic = CreatableTopic::default()
        .with_num_partitions(partitions)
        .with_replication_factor(replication_factor);
    create_one(conn, name, topic, configs)
}

/// CreateTopics of one topic with a manual assignment: partition `p` has the replica set
/// `replicas[p]`, the first of which leads; plus topic `configs`. Returns
/// `(error_code, error_message)`.
pub fn create_topic_with_assignment(
    conn: &mut RawConn,
    name: &str,
    replicas: &[Vec<i32>],
    configs: &[(&str, &str)],
) -> Result<(i16, Option<String>)> {
    let assignments = replicas
        .iter()
        .enumerate()
        .map(|(p, ids)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(p as i32)
                .with_broker_ids(ids.iter().map(|&id| BrokerId(id)).collect())
        })
        .collect();
    let topic = CreatableTopic::default()
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(assignments);
    create_one(conn, name, topic, configs)
}

/// Sends CreateTopics for `topic` named `name` with topic `configs`; returns
/// `(error_code, error_message)`.
fn create_one(
    conn: &mut RawConn,
    name: &str,
    topic: CreatableTopic,
    configs: &[(&str, &str)],
) -> Result<(i16, Option<String>)> {
    let configs = configs
        .iter()
        .map(|(k, v)| {
            CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(k.to_string()))
                .with_value(Some(StrBytes::from_string(v.to_string())))
        })
        .collect();
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![topic
            .with_name(topic_name(name))
            .with_configs(configs)]);
    let response = conn.call(CREATE_TOPICS_VERSION, &request)?;
    let t = response
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("CreateTopics answered without a topic"))?;
    Ok((t.error_code, t.error_message.map(|m| m.to_string())))
}

/// Produce (v9) of one batch per listed partition of one topic with the given `acks` (-1, 0
/// or 1) and request timeout; returns the partition responses in request order. With acks=0
/// the broker sends no response, and neither does this: it returns an empty list.
pub fn produce_with_acks(
    conn: &mut RawConn,
    topic: &str,
    acks: i16,
    timeout_ms: i32,
    batches: &[(i32, Bytes)],
) -> Result<Vec<PartitionProduceResponse>> {
    let request = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(
                batches
                    .iter()
                    .map(|(p, b)| {
                        PartitionProduceData::default()
                            .with_index(*p)
                            .with_records(Some(b.clone()))
                    })
                    .collect(),
            )]);
    if acks == 0 {
        conn.send_request(crate::PRODUCE_VERSION, &request)?;
        return Ok(Vec::new());
    }
    let response = conn.call(crate::PRODUCE_VERSION, &request)?;
    let topic_response = response
        .responses
        .into_iter()
        .find(|t| t.name.0.as_str() == topic)
        .ok_or_else(|| anyhow!("no response for topic {topic}"))?;
    batches
        .iter()
        .map(|(p, _)| {
            topic_response
                .partition_responses
                .iter()
                .find(|r| r.index == *p)
                .cloned()
                .ok_or_else(|| anyhow!("no response for partition {p}"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Consuming by bootstrap address
// ---------------------------------------------------------------------------------------------

/// A consumer for any bootstrap list that is only ever `assign`ed (no group protocol, no
/// commits).
pub fn assign_consumer(bootstrap: &str) -> BaseConsumer {
    secure_assign_consumer(bootstrap, &Security::plaintext())
}

/// [`assign_consumer`] for brokers that speak what `security` says.
pub fn secure_assign_consumer(bootstrap: &str, security: &Security) -> BaseConsumer {
    let mut config = client_config(bootstrap, security);
    config
        .set("group.id", "brook-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "error")
        .set("fetch.wait.max.ms", "100");
    config.create().expect("create rdkafka consumer")
}

/// Reads partitions of `topic` from their beginning up to the given end offsets, through a
/// consumer bootstrapped from `bootstrap` only; returns the messages by partition, in offset
/// order.
pub fn consume_to_ends(
    bootstrap: &str,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> Result<BTreeMap<i32, Vec<Received>>> {
    secure_consume_to_ends(bootstrap, &Security::plaintext(), topic, ends)
}

/// [`consume_to_ends`] from brokers that speak what `security` says.
pub fn secure_consume_to_ends(
    bootstrap: &str,
    security: &Security,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> Result<BTreeMap<i32, Vec<Received>>> {
    let consumer = secure_assign_consumer(bootstrap, security);
    let mut tpl = TopicPartitionList::new();
    for (&p, &end) in ends {
        if end > 0 {
            tpl.add_partition_offset(topic, p, Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    let mut out: BTreeMap<i32, Vec<Received>> = ends.keys().map(|&p| (p, Vec::new())).collect();
    let done = |out: &BTreeMap<i32, Vec<Received>>| {
        ends.iter()
            .all(|(p, end)| *end == 0 || out[p].last().is_some_and(|r| r.offset + 1 >= *end))
    };
    let mut last_progress = Instant::now();
    while !done(&out) {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                last_progress = Instant::now();
                let r = Received::from_message(&m);
                let list = out
                    .get_mut(&r.partition)
                    .ok_or_else(|| anyhow!("message from unassigned partition {}", r.partition))?;
                if r.offset < ends[&r.partition] {
                    list.push(r);
                }
            }
            Some(Err(e)) => bail!("consuming {topic}: {e}"),
            None => {}
        }
        if last_progress.elapsed() > EVENTUALLY {
            let progress: Vec<String> = ends
                .iter()
                .map(|(p, end)| {
                    let got = out[p].last().map(|r| r.offset);
                    format!("p{p}: last offset {got:?} of end {end}")
                })
                .collect();
            bail!(
                "consuming {topic}: no progress for {EVENTUALLY:?}; {}",
                progress.join(", ")
            );
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// `brook cluster up`
// ---------------------------------------------------------------------------------------------

/// `brook cluster up` as a child process, in a temporary directory, on free ports. Its terminal
/// output (stdout and stderr: progress, the status report, the nodes' warnings and errors
/// prefixed `[node-i]`) goes to `cluster-up.log` there; the nodes' own logs are the cluster's
/// `logs/node-i.log`.
pub struct ClusterUp {
    child: Option<Child>,
    dir: Option<tempfile::TempDir>,
    pub nodes: u16,
    pub base_port: u16,
    pub raft_base_port: u16,
    /// The `bootstrap servers:` line's list.
    pub bootstrap_servers: String,
}

impl ClusterUp {
    /// Runs `brook cluster up --nodes N` and waits for its `bootstrap servers:` line.
    pub fn start(nodes: u16, overrides: &[(&str, &str)]) -> ClusterUp {
        let dir = tempfile::Builder::new()
            .prefix("brook-cluster-up-")
            .tempdir()
            .expect("temporary directory");
        let mut up = ClusterUp {
            child: None,
            dir: Some(dir),
            nodes,
            base_port: free_ports(nodes),
            raft_base_port: free_ports(nodes),
            bootstrap_servers: String::new(),
        };
        if let Err(e) = up.spawn(overrides) {
            panic!("brook cluster up failed: {e:#}");
        }
        up
    }

    fn dir(&self) -> PathBuf {
        self.dir
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default()
    }

    /// The cluster's folder (`cluster up --dir`).
    pub fn cluster_dir(&self) -> PathBuf {
        self.dir().join("cluster")
    }

    /// Node `id`'s log file, written by `cluster up`.
    pub fn node_log_path(&self, id: u16) -> PathBuf {
        self.cluster_dir()
            .join("logs")
            .join(format!("node-{id}.log"))
    }

    /// Node `id`'s whole log.
    pub fn node_log(&self, id: u16) -> String {
        std::fs::read(self.node_log_path(id))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    /// The last lines of the terminal output and of every node's log.
    pub fn all_tails(&self, lines: usize) -> String {
        let mut out = format!(
            "---- cluster up's terminal ({}) ----\n{}\n",
            self.log_path().display(),
            self.log_tail(lines)
        );
        for id in 1..=self.nodes {
            let text = self.node_log(id);
            let all: Vec<&str> = text.lines().collect();
            out.push_str(&format!(
                "---- node {id} ({}) ----\n{}\n",
                self.node_log_path(id).display(),
                all[all.len().saturating_sub(lines)..].join("\n")
            ));
        }
        out
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir().join("cluster-up.log")
    }

    /// Node `id`'s Kafka address.
    pub fn addr(&self, id: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.base_port + id - 1))
    }

    fn spawn(&mut self, overrides: &[(&str, &str)]) -> Result<()> {
        let bin = brook_bin();
        ensure!(bin.is_file(), "brook binary not found at {}", bin.display());
        let log_path = self.log_path();
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut cmd = Command::new(&bin);
        cmd.args(["cluster", "up", "--nodes", &self.nodes.to_string()])
            .arg("--dir")
            .arg(self.cluster_dir())
            .args(["--base-port", &self.base_port.to_string()])
            .args(["--raft-base-port", &self.raft_base_port.to_string()]);
        for (k, v) in overrides {
            cmd.arg("-o").arg(format!("{k}={v}"));
        }
        cmd.env_remove("BROOK_BIN").env("NO_COLOR", "1");
        let (mut child, stdout) = crate::spawn_logged(&mut cmd, &log)?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "[stdout] {line}");
                if let Some(list) = line.trim().strip_prefix("bootstrap servers:") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(list.trim().to_string());
                    }
                }
            }
        });
        // Nodes first print their ready lines, then the supervisor waits for a healthy cluster.
        match rx.recv_timeout(READY_TIMEOUT * 2) {
            Ok(list) => {
                self.bootstrap_servers = list;
                self.child = Some(child);
                Ok(())
            }
            Err(_) => {
                let status = child.try_wait().ok().flatten();
                self.child = Some(child);
                bail!(
                    "no `bootstrap servers:` line (exit status {status:?}); log tails:\n{}",
                    self.all_tails(80)
                )
            }
        }
    }

    /// SIGTERM the supervisor and wait (bounded) for it to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        self.stop()
            .unwrap_or_else(|e| panic!("{e:#}; log tails:\n{}", self.all_tails(80)))
    }

    fn stop(&mut self) -> Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("cluster up is not running"))?;
        let pid = child.id().to_string();
        let sent = Command::new("sh")
            .args(["-c", "kill -TERM \"$0\"", &pid])
            .status();
        if !matches!(sent, Ok(s) if s.success()) {
            let _ = child.kill();
            let _ = child.wait();
            bail!("could not send SIGTERM to {pid}: {sent:?}");
        }
        // The supervisor gives its nodes their own shutdown time before it exits.
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT * 2;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("brook cluster up did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The whole terminal output (stdout and stderr of `cluster up`).
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_else(|e| format!("(no log: {e})"))
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ClusterUp {
    fn drop(&mut self) {
        if self.child.is_some() {
            // SIGTERM rather than SIGKILL: the nodes run in their own process groups, and only
            // the supervisor stops them.
            if let Err(e) = self.stop() {
                eprintln!("stopping brook cluster up: {e:#}");
            }
        }
        eprintln!("{}---- end of logs ----", self.all_tails(120));
        if std::thread::panicking() || std::env::var_os("BROOK_KEEP_TEST_DATA").is_some() {
            if let Some(dir) = self.dir.take() {
                eprintln!("kept the cluster's directory: {}", dir.keep().display());
            }
        }
    }
}
