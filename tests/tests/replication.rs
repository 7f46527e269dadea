//! Replicated partitions on a real 3-node cluster: an idempotent acks=all producer keeps
//! exactly-once, in-order delivery across the SIGKILL of a partition leader (on a cluster that
//! speaks only SASL_SSL, and in the clear when it is also the Raft leader); the killed node returns to every in-sync set; Metadata describes replicas,
//! in-sync replicas, offline replicas and leader epochs while a node is down, and live nodes
//! keep their leadership and in-sync membership; acks=all is refused with NOT_ENOUGH_REPLICAS
//! below `min.insync.replicas`, waits for every in-sync replica, and goes on without a
//! follower that lags longer than `replica.lag.time.max.ms`.
//!
//! Measured figures (failover time seen by the producer, time for a returning node to be in
//! sync again) are printed with `eprintln!`; run with `--nocapture` to see them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, ensure, Result};
use brook_tests::cluster::*;
use brook_tests::*;
use kafka_protocol::messages::BrokerId;
use kafka_protocol::records::Compression;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message};

/// Fast failure detection: a broker is down 3 s after its last heartbeat rather than 9 s.
fn fast_failure_detection(opts: &mut BrokerOptions) {
    opts.set("broker.heartbeat.interval.ms", 500)
        .set("broker.session.timeout.ms", 3000);
}

/// How long the cluster may take to notice a dead node and move its partitions: the 3 s
/// session timeout plus elections, with room for slow machines.
const FAILOVER_BOUND: Duration = Duration::from_secs(30);
/// How long a returning node may take to be in sync again.
const REJOIN_BOUND: Duration = Duration::from_secs(60);

fn bootstrap_of(c: &Cluster, ids: &[i32]) -> String {
    ids.iter()
        .map(|&id| c.bootstrap(id))
        .collect::<Vec<_>>()
        .join(",")
}

fn sorted(ids: &[i32]) -> Vec<i32> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One record (no producer id) with `value`, as a raw Produce batch.
fn one_record(value: &str) -> Result<bytes::Bytes> {
    record_batch(
        &[value.as_bytes()],
        2,
        NO_PRODUCER,
        -1,
        now_ms(),
        Compression::None,
    )
}

// ---------------------------------------------------------------------------------------------
// A producer that timestamps every delivery report
// ---------------------------------------------------------------------------------------------

/// What librdkafka reported for one message.
#[derive(Clone, Debug)]
struct Report {
    partition: i32,
    offset: i64,
    at: Instant,
    error: Option<String>,
}

/// Records every delivery report (by message id, the delivery opaque) as it arrives on the
/// producer's polling thread, and the client-level errors librdkafka reports.
struct Recorder {
    reports: Mutex<Vec<Option<Report>>>,
    acked: AtomicUsize,
    client_errors: Mutex<Vec<String>>,
}

impl Recorder {
    fn new(messages: usize) -> Recorder {
        Recorder {
            reports: Mutex::new(vec![None; messages]),
            acked: AtomicUsize::new(0),
            client_errors: Mutex::new(Vec::new()),
        }
    }
}

impl ClientContext for Recorder {
    fn error(&self, error: KafkaError, reason: &str) {
        let mut errors = self.client_errors.lock().unwrap();
        if errors.len() < 1000 {
            errors.push(format!("{error}: {reason}"));
        }
    }
}

impl ProducerContext for Recorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        let at = Instant::now();
        let report = match result {
            Ok(m) => {
                self.acked.fetch_add(1, Ordering::SeqCst);
                Report {
                    partition: m.partition(),
                    offset: m.offset(),
                    at,
                    error: None,
                }
            }
            Err((e, m)) => Report {
                partition: m.partition(),
                offset: m.offset(),
                at,
                error: Some(format!("{e}")),
            },
        };
        let mut reports = self.reports.lock().unwrap();
        if let Some(slot) = reports.get_mut(id) {
            *slot = Some(report);
        }
    }
}

fn payload(id: usize) -> String {
    format!("m-{id:06}")
}

fn parse_payload(value: Option<&[u8]>) -> Option<usize> {
    std::str::from_utf8(value?)
        .ok()?
        .strip_prefix("m-")?
        .parse()
        .ok()
}

/// The high watermark of every partition, from ListOffsets (latest) asked of its leader as
/// node `via` describes the topic. Retriable answers are retried, as clients do: a leader that
/// just took over answers OFFSET_NOT_AVAILABLE until its high watermark covers the previous
/// leader's (KIP-207).
fn ends_from_leaders(c: &Cluster, via: i32, topic: &str) -> Result<BTreeMap<i32, i64>> {
    const RETRIABLE: [i16; 3] = [5, 6, 78];
    wait_for(&format!("high watermarks of {topic}"), EVENTUALLY, || {
        let t = c
            .topic(via, topic)?
            .ok_or_else(|| anyhow!("node {via} does not know {topic}"))?;
        let mut ends = BTreeMap::new();
        for p in &t.partitions {
            if p.leader < 0 {
                return Ok(None);
            }
            let (code, end) = c.end_offset(p.leader, topic, p.index)?;
            if RETRIABLE.contains(&code) {
                return Ok(None);
            }
            ensure!(
                code == 0,
                "ListOffsets {topic}/{} on its leader {}: error {code}",
                p.index,
                p.leader
            );
            ends.insert(p.index, end);
        }
        Ok(Some(ends))
    })
}

/// Every acknowledged message was read back exactly once, at the offset its acknowledgement
/// named, in its partition, and each partition holds its messages in the order they were
/// produced (message `i` went to partition `i % partitions`). Nothing else is in the log.
fn check_exactly_once(
    reports: &[Option<Report>],
    partitions: i32,
    read: &BTreeMap<i32, Vec<Received>>,
) -> Result<()> {
    let mut problems = Vec::new();
    let mut seen: BTreeMap<usize, (i32, i64)> = BTreeMap::new();
    for (&p, records) in read {
        let mut previous: Option<usize> = None;
        for r in records {
            let Some(id) = parse_payload(r.value.as_deref()) else {
                problems.push(format!(
                    "{p}@{}: a record that was never produced: {:?}",
                    r.offset,
                    r.value.as_deref().map(String::from_utf8_lossy)
                ));
                continue;
            };
            if id % partitions as usize != p as usize {
                problems.push(format!(
                    "{p}@{}: message {id} in the wrong partition",
                    r.offset
                ));
            }
            if let Some((q, o)) = seen.insert(id, (p, r.offset)) {
                problems.push(format!(
                    "message {id} appears twice: at {q}@{o} and at {p}@{}",
                    r.offset
                ));
            }
            if let Some(prev) = previous {
                if id <= prev {
                    problems.push(format!(
                        "{p}@{}: message {id} after message {prev}: out of order",
                        r.offset
                    ));
                }
            }
            previous = Some(id);
        }
    }
    let mut missing = 0;
    for (id, report) in reports.iter().enumerate() {
        let Some(report) = report else { continue };
        if report.error.is_some() {
            continue;
        }
        match seen.get(&id) {
            None => {
                missing += 1;
                if missing <= 10 {
                    problems.push(format!(
                        "message {id}, acknowledged at {}@{}, was not read back",
                        report.partition, report.offset
                    ));
                }
            }
            Some(&(p, o)) if (p, o) != (report.partition, report.offset) => {
                problems.push(format!(
                    "message {id} was acknowledged at {}@{} but read at {p}@{o}",
                    report.partition, report.offset
                ));
            }
            Some(_) => {}
        }
    }
    if !problems.is_empty() {
        let total = problems.len();
        problems.truncate(30);
        bail!(
            "{total} problems ({missing} acknowledged messages missing), first ones:\n{}",
            problems.join("\n")
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Failover under an idempotent producer
// ---------------------------------------------------------------------------------------------

/// 100,000 small messages through an idempotent acks=all producer to a 3-partition topic with
/// replication factor 3 and `min.insync.replicas` 2; a third of the way in (by acknowledged
/// messages), the leader of partition 0 is SIGKILLed. Every delivery must succeed (librdkafka
/// retries internally), and reading every partition back through the survivors must show each
/// message exactly once, at its acknowledged offset, in produced order. The killed node then
/// restarts and must return to the in-sync set of every partition, after which a read through
/// any node still shows exactly the acknowledged messages.
///
/// Partition 0's leader is a node other than the Raft leader here, and the cluster is set up
/// as `brook cluster up --secure` sets it up: it speaks only SASL_SSL, with ACLs, so every
/// client (the producer, the consumers, the harness's own requests) logs in as the admin user
/// over TLS, and the followers fetch from their leaders over TLS.
#[test]
fn idempotent_producer_keeps_exactly_once_across_leader_kill_on_a_secure_cluster() -> Result<()> {
    failover(false, Security::sasl_ssl())
}

/// As above, with partition 0 led by the Raft leader (the controller), so both fail at once;
/// in the clear.
#[test]
fn idempotent_producer_keeps_exactly_once_across_leader_and_raft_leader_kill() -> Result<()> {
    failover(true, Security::plaintext())
}

fn failover(kill_raft_leader: bool, security: Security) -> Result<()> {
    const TOPIC: &str = "failover";
    const PARTITIONS: i32 = 3;
    const MESSAGES: usize = 100_000;
    const KILL_AFTER_ACKED: usize = MESSAGES / 3;
    let mut c = Cluster::start_with(3, |o| {
        fast_failure_detection(o);
        o.secure(&security);
    });
    if security.is_secure() {
        for id in c.ids() {
            brook_tests::secure::plaintext_is_refused(c.addr(id))?;
        }
    }
    let raft_leader = c.raft_leader();
    let victim = if kill_raft_leader {
        raft_leader
    } else {
        c.ids().into_iter().find(|&i| i != raft_leader).unwrap()
    };
    // Partition p is led by the p-th node counting from the victim; every node holds a replica.
    let ids = c.ids();
    let at = ids.iter().position(|&i| i == victim).unwrap();
    let replicas: Vec<Vec<i32>> = (0..PARTITIONS as usize)
        .map(|p| {
            (0..ids.len())
                .map(|k| ids[(at + p + k) % ids.len()])
                .collect()
        })
        .collect();
    let before = c.create_assigned_topic(1, TOPIC, &replicas, &[("min.insync.replicas", "2")])?;
    assert_eq!(
        before.partition(0).unwrap().leader,
        victim,
        "the first replica leads: {before:?}"
    );
    let survivors: Vec<i32> = c.ids().into_iter().filter(|&i| i != victim).collect();
    eprintln!(
        "leaders before the kill: {:?}; killing node {victim} (leader of partition 0); Raft \
         leader {raft_leader}",
        before.leaders(),
    );

    let recorder = Recorder::new(MESSAGES);
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap_of(&c, &c.ids()))
        .set("broker.address.family", "v4")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "120000")
        .set("request.timeout.ms", "10000")
        .set("queue.buffering.max.messages", "200000")
        .set("reconnect.backoff.ms", "20")
        .set("reconnect.backoff.max.ms", "500")
        .set("topic.metadata.refresh.interval.ms", "5000");
    c.security().apply(&mut config);
    let producer: ThreadedProducer<Recorder> = config.create_with_context(recorder)?;

    let killed_at = std::thread::scope(|s| -> Result<Instant> {
        let producer = &producer;
        let enqueue = s.spawn(move || -> Result<()> {
            for id in 0..MESSAGES {
                let value = payload(id);
                loop {
                    let record = BaseRecord::<(), str, usize>::with_opaque_to(TOPIC, id)
                        .payload(value.as_str())
                        .partition((id % PARTITIONS as usize) as i32);
                    match producer.send(record) {
                        Ok(()) => break,
                        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err((e, _)) => bail!("enqueueing message {id}: {e}"),
                    }
                }
            }
            Ok(())
        });
        let deadline = Instant::now() + EVENTUALLY;
        while producer.context().acked.load(Ordering::SeqCst) < KILL_AFTER_ACKED {
            ensure!(
                Instant::now() < deadline,
                "only {} messages acknowledged in {EVENTUALLY:?}",
                producer.context().acked.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        c.kill9(victim);
        let killed_at = Instant::now();
        eprintln!(
            "killed node {victim} with {} of {MESSAGES} messages acknowledged",
            producer.context().acked.load(Ordering::SeqCst)
        );
        enqueue.join().unwrap()?;
        Ok(killed_at)
    })?;
    producer.flush(Duration::from_secs(300))?;
    let reports = producer.context().reports.lock().unwrap().clone();
    let client_errors = producer.context().client_errors.lock().unwrap().clone();
    drop(producer);
    if !client_errors.is_empty() {
        eprintln!(
            "librdkafka reported {} client errors (connection losses are expected), first: {:?}",
            client_errors.len(),
            &client_errors[..client_errors.len().min(5)]
        );
    }

    // Every delivery succeeded.
    let unreported = reports.iter().filter(|r| r.is_none()).count();
    let failed: Vec<(usize, &Report)> = reports
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().filter(|r| r.error.is_some()).map(|r| (i, r)))
        .collect();
    let acked_after_kill = reports
        .iter()
        .flatten()
        .filter(|r| r.error.is_none() && r.at > killed_at)
        .count();
    eprintln!("{acked_after_kill} messages were acknowledged after the kill");

    // The failover as the producer saw it, on partition 0.
    let mut p0: Vec<Instant> = reports
        .iter()
        .flatten()
        .filter(|r| r.partition == 0 && r.error.is_none())
        .map(|r| r.at)
        .collect();
    p0.sort_unstable();
    if let Some(first) = p0.iter().find(|&&t| t > killed_at) {
        eprintln!(
            "MEASURED kill -9 of partition 0's leader -> first partition-0 acknowledgement \
             after the kill: {:?}",
            *first - killed_at
        );
    }
    // The end of the longest pause in partition 0's acknowledgements around the kill: the
    // first acknowledgement that came from the new leader.
    let last_before = p0.iter().rev().find(|&&t| t <= killed_at).copied();
    let around: Vec<Instant> = p0
        .iter()
        .copied()
        .filter(|&t| last_before.is_none_or(|b| t >= b))
        .collect();
    if let Some((from, to)) = around
        .windows(2)
        .map(|w| (w[0], w[1]))
        .max_by_key(|(a, b)| *b - *a)
    {
        eprintln!(
            "MEASURED partition 0 acknowledgements paused from {} before/after the kill \
             (negative = before) to {:?} after it: failover as the producer saw it {:?}",
            signed_ms(from, killed_at),
            to.saturating_duration_since(killed_at),
            to.saturating_duration_since(killed_at)
        );
    }
    assert!(
        unreported == 0 && failed.is_empty(),
        "{unreported} messages got no delivery report and {} deliveries failed, first ones: \
         {:?}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
    assert!(
        acked_after_kill > 0,
        "every message was acknowledged before the kill: the test did not kill under load"
    );

    // The partitions moved: none is led by the dead node.
    let during = c.wait_for_partitions(
        "survivors to lead every partition",
        TOPIC,
        FAILOVER_BOUND,
        |p| {
            ensure!(
                p.leader >= 0 && p.leader != victim && !p.in_sync(victim),
                "{p:?}"
            );
            Ok(())
        },
    )?;
    eprintln!("leaders after the kill: {:?}", during.leaders());

    // Read back through the survivors only.
    let ends = ends_from_leaders(&c, survivors[0], TOPIC)?;
    let read = secure_consume_to_ends(&bootstrap_of(&c, &survivors), c.security(), TOPIC, &ends)?;
    check_exactly_once(&reports, PARTITIONS, &read)?;
    assert_eq!(
        read.values().map(Vec::len).sum::<usize>(),
        MESSAGES,
        "the survivors hold exactly the {MESSAGES} messages (ends {ends:?})"
    );

    // The killed node returns and catches up into every in-sync set.
    let restarted_at = Instant::now();
    c.restart(victim);
    let after = c.wait_for_partitions(
        &format!("node {victim} back in every in-sync set"),
        TOPIC,
        REJOIN_BOUND,
        |p| {
            ensure!(
                p.leader >= 0 && p.fully_in_sync() && p.in_sync(victim) && p.offline.is_empty(),
                "{p:?}"
            );
            Ok(())
        },
    )?;
    eprintln!(
        "MEASURED restart of node {victim} -> in the in-sync set of all {PARTITIONS} \
         partitions on every node: {:?}; leaders {:?}",
        restarted_at.elapsed(),
        after.leaders()
    );
    for (p, q) in before.partitions.iter().zip(&after.partitions) {
        assert_eq!(
            sorted(&p.replicas),
            sorted(&q.replicas),
            "replica sets stay"
        );
        assert!(
            q.leader_epoch >= p.leader_epoch,
            "leader epochs never go back: before {p:?}, after {q:?}"
        );
    }
    assert!(
        after.partition(0).unwrap().leader_epoch > before.partition(0).unwrap().leader_epoch,
        "partition 0 changed leader, so its epoch went up: before {before:?}, after {after:?}"
    );

    // Everything is still there, read through every node.
    let ends = ends_from_leaders(&c, victim, TOPIC)?;
    let read = secure_consume_to_ends(&bootstrap_of(&c, &c.ids()), c.security(), TOPIC, &ends)?;
    check_exactly_once(&reports, PARTITIONS, &read)?;
    assert_eq!(read.values().map(Vec::len).sum::<usize>(), MESSAGES);
    Ok(())
}

fn signed_ms(t: Instant, origin: Instant) -> String {
    if t >= origin {
        format!("+{:?}", t - origin)
    } else {
        format!("-{:?}", origin - t)
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata while a node is down
// ---------------------------------------------------------------------------------------------

/// While a node is down, Metadata from every survivor lists all three replicas of every
/// partition, names the dead node in `offline_replicas` and no longer in the in-sync set,
/// never names it leader, and a partition it led has a new leader with a higher leader epoch
/// (the others keep their leader and epoch). A live in-sync replica never leaves the in-sync
/// set meanwhile (every description the survivors give from the kill on is checked). A
/// partition whose only replica is on the dead node has no leader (LEADER_NOT_AVAILABLE).
/// When the node returns, it is in sync everywhere again and nothing is offline.
///
/// The dead node is a partition leader but not the Raft leader.
#[test]
fn metadata_describes_replicas_isr_and_offline_replicas_while_a_node_is_down() -> Result<()> {
    metadata_while_a_node_is_down(false)
}

/// As above, with the Raft leader (the controller) as the dead node: the survivors elect a
/// new Raft leader first, which then moves the partitions.
#[test]
fn metadata_describes_replicas_isr_and_offline_replicas_while_the_raft_leader_is_down() -> Result<()>
{
    metadata_while_a_node_is_down(true)
}

/// Every distinct description of `topic` that the `ids` give, polled until `stop` is set.
fn watch_topic(
    c: &Cluster,
    ids: &[i32],
    topic: &str,
    origin: Instant,
    stop: &AtomicBool,
) -> Vec<(Duration, i32, Vec<PartitionView>)> {
    let mut last: BTreeMap<i32, Vec<PartitionView>> = BTreeMap::new();
    let mut seen = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        for &id in ids {
            if let Ok(Some(t)) = c.topic(id, topic) {
                if last.get(&id) != Some(&t.partitions) {
                    seen.push((origin.elapsed(), id, t.partitions.clone()));
                    last.insert(id, t.partitions);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

const DESCRIBED: &str = "described";
const LONELY: &str = "lonely";

/// Sets the flag when dropped, also when unwinding, so a watcher thread always stops.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn metadata_while_a_node_is_down(kill_raft_leader: bool) -> Result<()> {
    const TOPIC: &str = DESCRIBED;
    const PARTITIONS: i32 = 3;
    let mut c = Cluster::start_with(3, fast_failure_detection);
    let before =
        c.create_replicated_topic(1, TOPIC, PARTITIONS, 3, &[("min.insync.replicas", "2")])?;
    for p in &before.partitions {
        assert_eq!(sorted(&p.replicas), [1, 2, 3], "{p:?}");
        assert!(p.fully_in_sync() && p.offline.is_empty(), "{p:?}");
        assert!(p.replicas.contains(&p.leader), "{p:?}");
        assert!(
            p.leader_epoch >= 0,
            "Metadata v12 reports leader epochs: {p:?}"
        );
    }
    let raft_leader = c.raft_leader();
    let victim = if kill_raft_leader {
        raft_leader
    } else {
        before
            .leaders()
            .into_iter()
            .find(|&l| l != raft_leader)
            .ok_or_else(|| anyhow!("the Raft leader leads every partition: {before:?}"))?
    };
    ensure!(
        !before.led_by(victim).is_empty(),
        "node {victim} leads no partition of {before:?}"
    );
    eprintln!(
        "killing node {victim} (Raft leader {raft_leader}); leaders {:?}",
        before.leaders()
    );
    let survivors: Vec<i32> = c.ids().into_iter().filter(|&i| i != victim).collect();
    let (code, message) = create_topic_with_owners(&mut c.conn(1)?, LONELY, &[victim])?;
    assert_eq!(code, 0, "creating {LONELY} on node {victim}: {message:?}");
    c.wait_for_topic(LONELY, 1)?;

    let killed_at = Instant::now();
    c.kill9(victim);
    let stop = AtomicBool::new(false);
    let (seen, during) = std::thread::scope(|s| {
        let watcher = s.spawn(|| watch_topic(&c, &survivors, TOPIC, killed_at, &stop));
        let stopper = SetOnDrop(&stop);
        let during = describe_down(&c, &before, victim, &survivors, killed_at);
        // A little longer: a description that is still changing shows up.
        std::thread::sleep(Duration::from_secs(2));
        drop(stopper);
        (watcher.join().unwrap(), during)
    });
    eprintln!("{TOPIC} as the survivors described it from the kill on:");
    for (at, id, partitions) in &seen {
        let brief: Vec<String> = partitions
            .iter()
            .map(|p| {
                format!(
                    "p{} leader {} epoch {} isr {:?} offline {:?}",
                    p.index, p.leader, p.leader_epoch, p.isr, p.offline
                )
            })
            .collect();
        eprintln!("  +{at:?} node {id}: {}", brief.join("; "));
    }
    let during = during?;
    // Partitions led by a survivor keep their leader and epoch.
    let mut dropped = Vec::new();
    for p in &during.partitions {
        let old = before.partition(p.index).unwrap();
        if old.leader != victim && (p.leader, p.leader_epoch) != (old.leader, old.leader_epoch) {
            dropped.push(format!(
                "{TOPIC}/{}: led by live node {} at epoch {} before, now by {} at epoch {}",
                p.index, old.leader, old.leader_epoch, p.leader, p.leader_epoch
            ));
        }
    }
    for (at, id, partitions) in &seen {
        for p in partitions {
            let old = before.partition(p.index).unwrap();
            let live_left: Vec<i32> = old
                .isr
                .iter()
                .copied()
                .filter(|&r| r != victim && !p.isr.contains(&r))
                .collect();
            if !live_left.is_empty() {
                dropped.push(format!(
                    "+{at:?} node {id}: {TOPIC}/{} in-sync set {:?} (leader {} epoch {}) lacks \
                     live replica(s) {live_left:?}",
                    p.index, p.isr, p.leader, p.leader_epoch
                ));
            }
            if p.offline.contains(&victim) {
                assert_ne!(p.leader, victim, "+{at:?} node {id}: {p:?}");
            }
        }
    }
    assert!(
        dropped.is_empty(),
        "live nodes lost leadership or left the in-sync set when node {victim} died (it was \
         the Raft leader: {kill_raft_leader}):\n{}",
        dropped.join("\n")
    );
    restart_and_check(&mut c, victim, &during)
}

/// Waits until the survivors describe `victim` as down: see
/// [`metadata_describes_replicas_isr_and_offline_replicas_while_a_node_is_down`].
fn describe_down(
    c: &Cluster,
    before: &TopicView,
    victim: i32,
    survivors: &[i32],
    killed_at: Instant,
) -> Result<TopicView> {
    const TOPIC: &str = DESCRIBED;
    for &id in survivors {
        c.wait_for_brokers(id, survivors)?;
    }
    eprintln!(
        "MEASURED kill -9 of node {victim} -> both survivors stop listing it: {:?}",
        killed_at.elapsed()
    );
    let during = c.wait_for_partitions(
        &format!("survivors to describe node {victim} as down"),
        TOPIC,
        FAILOVER_BOUND,
        |p| {
            let old = before.partition(p.index).unwrap();
            ensure!(p.error == 0, "error {}: {p:?}", p.error);
            ensure!(
                p.replicas == old.replicas,
                "replicas changed: {p:?}, was {old:?}"
            );
            let want_isr: Vec<i32> = sorted(&old.isr)
                .into_iter()
                .filter(|&r| r != victim)
                .collect();
            ensure!(
                sorted(&p.isr) == want_isr,
                "isr {:?}, want {want_isr:?}",
                p.isr
            );
            ensure!(
                p.offline == [victim],
                "offline {:?}, want [{victim}]",
                p.offline
            );
            ensure!(
                p.leader >= 0 && p.leader != victim && p.isr.contains(&p.leader),
                "leader {}: {p:?}",
                p.leader
            );
            if old.leader == victim {
                ensure!(
                    p.leader_epoch > old.leader_epoch,
                    "new leader, same epoch: {p:?}, was {old:?}"
                );
            }
            Ok(())
        },
    )?;
    eprintln!(
        "MEASURED kill -9 of node {victim} -> every survivor describes it as down in {TOPIC}: \
         {:?}",
        killed_at.elapsed()
    );
    // Once the survivors describe the node as down, the description stays put (no leader
    // flips back to the dead node): every survivor, polled for two seconds.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        for &id in survivors {
            let t = c
                .topic(id, TOPIC)?
                .ok_or_else(|| anyhow!("node {id} forgot {TOPIC}"))?;
            ensure!(
                t.partitions == during.partitions,
                "node {id} changed its description while nothing happened: {t:?}, was {during:?}"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    c.wait_for_partitions(
        &format!("{LONELY}, whose only replica is on dead node {victim}, to have no leader"),
        LONELY,
        FAILOVER_BOUND,
        |p| {
            ensure!(
                (p.leader, p.error) == (-1, LEADER_NOT_AVAILABLE),
                "leader {} error {}: {p:?}",
                p.leader,
                p.error
            );
            ensure!(p.replicas == [victim] && p.offline == [victim], "{p:?}");
            Ok(())
        },
    )?;

    Ok(during)
}

/// Restarts `victim` and waits until it is in sync everywhere again and leads [`LONELY`] again.
fn restart_and_check(c: &mut Cluster, victim: i32, during: &TopicView) -> Result<()> {
    const TOPIC: &str = DESCRIBED;
    c.restart(victim);
    let after = c.wait_for_partitions(
        &format!("node {victim} in sync again"),
        TOPIC,
        REJOIN_BOUND,
        |p| {
            ensure!(p.error == 0 && p.leader >= 0, "{p:?}");
            ensure!(p.fully_in_sync() && p.offline.is_empty(), "{p:?}");
            Ok(())
        },
    )?;
    for (p, q) in during.partitions.iter().zip(&after.partitions) {
        assert_eq!(p.replicas, q.replicas);
        assert!(q.leader_epoch >= p.leader_epoch, "{q:?} after {p:?}");
    }
    c.wait_for_partitions(
        &format!("{LONELY} led by node {victim} again"),
        LONELY,
        REJOIN_BOUND,
        |p| {
            ensure!(
                p.leader == victim && p.error == 0 && p.offline.is_empty(),
                "{p:?}"
            );
            Ok(())
        },
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// min.insync.replicas
// ---------------------------------------------------------------------------------------------

/// With `min.insync.replicas` 3 and one of three replicas down (and out of the in-sync set),
/// an acks=all Produce is refused with NOT_ENOUGH_REPLICAS and appends nothing, while acks=1
/// is accepted; a topic with `min.insync.replicas` 2 still takes acks=all. librdkafka's
/// acks=all delivery fails too (it retries the retriable error until its timeout). Once the
/// node is back in sync, acks=all is accepted again, and the log holds exactly the accepted
/// records.
#[test]
fn acks_all_is_refused_below_min_insync_replicas() -> Result<()> {
    const STRICT: &str = "strict";
    const LENIENT: &str = "lenient";
    let mut c = Cluster::start_with(3, fast_failure_detection);
    // Both topics are led by the Raft leader, and the node that goes down is a follower of
    // both: neither the controller nor any partition leader moves, so this is about the
    // in-sync count alone.
    let leader = c.raft_leader();
    let victim = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let third = c
        .ids()
        .into_iter()
        .find(|&i| i != leader && i != victim)
        .unwrap();
    let strict = c.create_assigned_topic(
        1,
        STRICT,
        &[vec![leader, victim, third]],
        &[("min.insync.replicas", "3")],
    )?;
    let lenient = c.create_assigned_topic(
        1,
        LENIENT,
        &[vec![leader, third, victim]],
        &[("min.insync.replicas", "2")],
    )?;
    for t in [&strict, &lenient] {
        assert_eq!(t.partition(0).unwrap().leader, leader, "{t:?}");
    }
    let mut conn = c.conn(leader)?;
    let accepted = produce_with_acks(&mut conn, STRICT, -1, 30_000, &[(0, one_record("all-up")?)])?;
    assert_eq!(
        (accepted[0].error_code, accepted[0].base_offset),
        (0, 0),
        "acks=all with every replica in sync: {:?}",
        accepted[0]
    );

    c.kill9(victim);
    for (topic, view) in [(STRICT, &strict), (LENIENT, &lenient)] {
        let old = view.partition(0).unwrap().clone();
        c.wait_for_partitions(
            &format!("node {victim} out of the in-sync set of {topic}"),
            topic,
            FAILOVER_BOUND,
            |p| {
                ensure!(!p.in_sync(victim) && p.isr.len() == 2, "{p:?}");
                ensure!(p.leader == old.leader, "leader moved: {p:?}, was {old:?}");
                Ok(())
            },
        )?;
    }

    let mut conn = c.conn(leader)?;
    let refused = produce_with_acks(
        &mut conn,
        STRICT,
        -1,
        30_000,
        &[(0, one_record("refused")?)],
    )?;
    assert_eq!(
        refused[0].error_code, NOT_ENOUGH_REPLICAS,
        "acks=all with 2 of 3 replicas in sync and min.insync.replicas=3: {:?}",
        refused[0]
    );
    let leader_ack =
        produce_with_acks(&mut conn, STRICT, 1, 30_000, &[(0, one_record("acks-1")?)])?;
    assert_eq!(
        (leader_ack[0].error_code, leader_ack[0].base_offset),
        (0, 1),
        "acks=1 is accepted, right after the record acks=all had (the refused one took no \
         offset): {:?}",
        leader_ack[0]
    );
    let lenient_leader = c.partition(leader, LENIENT, 0)?.leader;
    let lenient_ack = produce_with_acks(
        &mut c.conn(lenient_leader)?,
        LENIENT,
        -1,
        30_000,
        &[(0, one_record("lenient")?)],
    )?;
    assert_eq!(
        lenient_ack[0].error_code, 0,
        "acks=all with 2 of 3 in sync and min.insync.replicas=2: {:?}",
        lenient_ack[0]
    );

    // Through librdkafka: the retriable error is retried until the message times out.
    let producer = producer_for(
        &bootstrap_of(&c, &c.up_ids()),
        &[
            ("acks", "all"),
            ("message.timeout.ms", "5000"),
            ("request.timeout.ms", "4000"),
        ],
    );
    let outcome = tokio::runtime::Runtime::new()?.block_on(produce_all(
        &producer,
        STRICT,
        &[Msg::value("rdkafka-refused").partition(0)],
    ));
    eprintln!("librdkafka acks=all below min.insync.replicas: {outcome:?}");
    assert!(
        outcome.is_err(),
        "librdkafka delivered an acks=all message below min.insync.replicas: {outcome:?}"
    );
    drop(producer);

    // Back in sync: acks=all is accepted again.
    c.restart(victim);
    c.wait_for_partitions(
        &format!("node {victim} back in the in-sync set of {STRICT}"),
        STRICT,
        REJOIN_BOUND,
        |p| {
            ensure!(p.fully_in_sync() && p.leader == leader, "{p:?}");
            Ok(())
        },
    )?;
    let mut conn = c.conn(leader)?;
    let again = wait_for("acks=all accepted again", FAILOVER_BOUND, || {
        let r = produce_with_acks(&mut conn, STRICT, -1, 30_000, &[(0, one_record("again")?)])?;
        match r[0].error_code {
            0 => Ok(Some(r[0].base_offset)),
            NOT_ENOUGH_REPLICAS => bail!("still NOT_ENOUGH_REPLICAS"),
            code => Err(anyhow!("error {code}: {:?}", r[0])),
        }
    })?;
    assert_eq!(again, 2, "the log continues after the acks=1 record");

    let records = fetch_all_raw(&mut conn, STRICT, 0, 0)?;
    let values: Vec<String> = records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(
        values,
        ["all-up", "acks-1", "again"],
        "exactly the accepted records, in order"
    );
    let offsets: BTreeSet<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, BTreeSet::from([0, 1, 2]));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// acks=all waits for every in-sync replica
// ---------------------------------------------------------------------------------------------

/// Sends `signal` (STOP, CONT) to a process.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "kill -{signal} {pid}: {status:?}"
    );
}

/// Resumes a stopped node when dropped, so that a failing test leaves no stopped process.
struct Resume(u32);

const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// Runs `BROOK-NODE` against `node` as broker `claimed` with a made-up proof: refused with
/// SASL_AUTHENTICATION_FAILED, and the connection closed.
fn forge_node_authentication(c: &Cluster, node: i32, claimed: i32) -> Result<()> {
    use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
    let mut conn = c.conn(node)?;
    let mechanism = kafka_protocol::protocol::StrBytes::from_static_str("BROOK-NODE");
    let handshake = conn.call(
        1,
        &SaslHandshakeRequest::default().with_mechanism(mechanism),
    )?;
    ensure!(handshake.error_code == 0, "{handshake:?}");
    let mut first = claimed.to_be_bytes().to_vec();
    first.extend([9u8; 32]);
    let step = |bytes: Vec<u8>| SaslAuthenticateRequest::default().with_auth_bytes(bytes.into());
    let challenge = conn.call(2, &step(first))?;
    ensure!(
        challenge.error_code == 0 && challenge.auth_bytes.len() == 64,
        "{challenge:?}"
    );
    let forged = conn.call(2, &step(vec![0u8; 32]))?;
    ensure!(
        forged.error_code == SASL_AUTHENTICATION_FAILED,
        "a forged proof was answered {forged:?}"
    );
    conn.expect_closed(Duration::from_secs(5))
}

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-CONT", &self.0.to_string()])
            .status();
    }
}

/// An acks=all write is answered only once every in-sync replica has it, not just
/// `min.insync.replicas` of them: with one follower frozen (SIGSTOP) while it is still in the
/// in-sync set (session timeout and `replica.lag.time.max.ms` are long here), the leader does
/// not answer for several seconds, while acks=1 is answered at once; when the follower
/// resumes, the write is acknowledged, and it is in the log once. Meanwhile a client that
/// claims to be the frozen follower (a replica Fetch with its id, or `BROOK-NODE` without the
/// cluster secret) is refused and cannot move the high watermark.
#[test]
fn acks_all_waits_for_every_in_sync_replica() -> Result<()> {
    const TOPIC: &str = "waits";
    const FROZEN_FOR: Duration = Duration::from_secs(4);
    let c = Cluster::start_with(3, |o| {
        o.set("broker.heartbeat.interval.ms", 500)
            .set("broker.session.timeout.ms", 30_000)
            .set("replica.lag.time.max.ms", 30_000);
    });
    // Led by the Raft leader; the frozen follower is neither.
    let leader = c.raft_leader();
    let frozen = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let third = c
        .ids()
        .into_iter()
        .find(|&i| i != leader && i != frozen)
        .unwrap();
    let view = c.create_assigned_topic(
        1,
        TOPIC,
        &[vec![leader, frozen, third]],
        &[("min.insync.replicas", "2")],
    )?;
    assert_eq!(view.partition(0).unwrap().leader, leader);
    let mut conn = c.conn(leader)?;
    let first = produce_with_acks(&mut conn, TOPIC, -1, 30_000, &[(0, one_record("first")?)])?;
    assert_eq!((first[0].error_code, first[0].base_offset), (0, 0));

    let pid = c.node(frozen).pid().unwrap();
    signal(pid, "STOP");
    let resume = Resume(pid);
    let request = kafka_protocol::messages::ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(60_000)
        .with_topic_data(vec![
            kafka_protocol::messages::produce_request::TopicProduceData::default()
                .with_name(topic_name(TOPIC))
                .with_partition_data(vec![
                    kafka_protocol::messages::produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(one_record("waits-for-all")?)),
                ]),
        ]);
    let sent_at = Instant::now();
    let correlation = conn.send_request(PRODUCE_VERSION, &request)?;
    // A client claiming to be the frozen follower, with everything copied, is refused: its
    // fetch would otherwise move the high watermark and answer the write above early.
    let spoofed = fetch_request(TOPIC, 0, 2, 0, 1).with_replica_id(BrokerId(frozen));
    let answer = c.conn(leader)?.call(FETCH_VERSION, &spoofed)?;
    assert_eq!(
        answer.error_code, CLUSTER_AUTHORIZATION_FAILED,
        "{answer:?}"
    );
    // So is one that tries brook's node authentication without the cluster secret.
    forge_node_authentication(&c, leader, frozen)?;
    conn.stream().set_read_timeout(Some(FROZEN_FOR))?;
    let early = conn.read_frame();
    let isr_meanwhile = c.partition(leader, TOPIC, 0)?;
    match &early {
        Err(e)
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }) => {}
        other => {
            let other = other.as_ref().map(|f| f.as_ref().map(|b| b.len()));
            panic!(
                "with follower {frozen} frozen but in sync ({isr_meanwhile:?}), the leader \
                 answered an acks=all Produce after {:?} instead of waiting: {other:?}",
                sent_at.elapsed()
            );
        }
    }
    assert!(
        isr_meanwhile.in_sync(frozen),
        "follower {frozen} left the in-sync set while frozen for {FROZEN_FOR:?}: \
         {isr_meanwhile:?}"
    );
    // The leader itself is fine: acks=1 is answered at once.
    let leader_only = produce_with_acks(
        &mut c.conn(leader)?,
        TOPIC,
        1,
        30_000,
        &[(0, one_record("acks-1")?)],
    )?;
    assert_eq!(leader_only[0].error_code, 0, "{:?}", leader_only[0]);

    drop(resume);
    conn.stream().set_read_timeout(Some(OP_TIMEOUT))?;
    let response = conn
        .read_response::<kafka_protocol::messages::ProduceRequest>(PRODUCE_VERSION, correlation)?;
    let p = &response.responses[0].partition_responses[0];
    eprintln!(
        "acks=all answered {:?} after it was sent, {FROZEN_FOR:?} of it with a follower \
         frozen: {p:?}",
        sent_at.elapsed()
    );
    assert_eq!((p.error_code, p.base_offset), (0, 1), "{p:?}");
    // The acks=1 record becomes visible once the followers have it too (high watermark).
    let mut conn = c.conn(leader)?;
    let values = wait_for(
        "all three records below the high watermark",
        EVENTUALLY,
        || {
            let values: Vec<String> = fetch_all_raw(&mut conn, TOPIC, 0, 0)?
                .iter()
                .map(|r| {
                    String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned()
                })
                .collect();
            Ok((values.len() >= 3).then_some(values))
        },
    )?;
    assert_eq!(values, ["first", "waits-for-all", "acks-1"]);
    Ok(())
}

/// A follower that stops fetching (frozen with SIGSTOP, while its broker session is long
/// enough that it is not declared down) leaves the in-sync set after
/// `replica.lag.time.max.ms`; the acks=all write that waited for it is then acknowledged
/// without it (two in sync still meet `min.insync.replicas` 2). Resumed, it catches up and
/// rejoins the in-sync set, and the log holds the write once.
#[test]
fn a_lagging_follower_leaves_the_in_sync_set_and_rejoins() -> Result<()> {
    const TOPIC: &str = "lagging";
    const LAG_MAX_MS: u64 = 3000;
    let c = Cluster::start_with(3, |o| {
        o.set("broker.heartbeat.interval.ms", 500)
            .set("broker.session.timeout.ms", 60_000)
            .set("replica.lag.time.max.ms", LAG_MAX_MS);
    });
    let leader = c.raft_leader();
    let frozen = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let third = c
        .ids()
        .into_iter()
        .find(|&i| i != leader && i != frozen)
        .unwrap();
    c.create_assigned_topic(
        1,
        TOPIC,
        &[vec![leader, frozen, third]],
        &[("min.insync.replicas", "2")],
    )?;
    let mut conn = c.conn(leader)?;
    let first = produce_with_acks(&mut conn, TOPIC, -1, 30_000, &[(0, one_record("first")?)])?;
    assert_eq!((first[0].error_code, first[0].base_offset), (0, 0));

    let pid = c.node(frozen).pid().unwrap();
    signal(pid, "STOP");
    let resume = Resume(pid);
    let frozen_at = Instant::now();
    let during = produce_with_acks(
        &mut conn,
        TOPIC,
        -1,
        60_000,
        &[(0, one_record("without-the-laggard")?)],
    )?;
    let answered_after = frozen_at.elapsed();
    let view = c.partition(leader, TOPIC, 0)?;
    eprintln!(
        "MEASURED follower frozen -> acks=all answered without it: {answered_after:?} \
         (replica.lag.time.max.ms {LAG_MAX_MS}); {view:?}"
    );
    assert_eq!(
        (during[0].error_code, during[0].base_offset),
        (0, 1),
        "{:?}",
        during[0]
    );
    assert!(
        !view.in_sync(frozen) && view.isr.len() == 2,
        "answered after {answered_after:?} while frozen follower {frozen} is still in sync: \
         {view:?}\nleader {leader}'s log:\n{}",
        c.node(leader).log_tail(60)
    );
    // The frozen node cannot answer Metadata; the others agree.
    wait_for(
        &format!("nodes {leader} and {third} to see {frozen} out of the in-sync set"),
        FAILOVER_BOUND,
        || {
            for id in [leader, third] {
                let p = c.partition(id, TOPIC, 0)?;
                ensure!(!p.in_sync(frozen) && p.leader == leader, "node {id}: {p:?}");
            }
            Ok(Some(()))
        },
    )?;

    drop(resume);
    let resumed_at = Instant::now();
    c.wait_for_partitions(
        &format!("follower {frozen} back in the in-sync set"),
        TOPIC,
        REJOIN_BOUND,
        |p| {
            ensure!(p.fully_in_sync() && p.leader == leader, "{p:?}");
            Ok(())
        },
    )?;
    eprintln!(
        "MEASURED follower resumed -> in the in-sync set again: {:?}",
        resumed_at.elapsed()
    );
    let values: Vec<String> = fetch_all_raw(&mut c.conn(leader)?, TOPIC, 0, 0)?
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    assert_eq!(values, ["first", "without-the-laggard"]);
    Ok(())
}
