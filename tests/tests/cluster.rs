//! Multi-node clusters: nodes form one metadata Raft group, spread partitions over the live
//! brokers, send clients to each partition's owner, survive the loss and return of nodes
//! (including the Raft leader, and the whole cluster), admit a joining node, and shrug off
//! garbage on the Raft port.
//!
//! Measured figures (time to a new Raft leader, to the first CreateTopics after the leader's
//! death, CreateTopics throughput through Raft) are printed with `eprintln!`; run with
//! `--nocapture` to see them.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Result};
use brook_tests::cluster::*;
use brook_tests::*;
use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest};

/// KIP-853's error for a voter change naming a node that does not vote.
const VOTER_NOT_FOUND: i16 = 127;
use kafka_protocol::records::Compression;

/// Fast failure detection for the tests that take nodes down: a broker is down 3 s after its
/// last heartbeat rather than 9 s.
fn fast_failure_detection(opts: &mut BrokerOptions) {
    opts.set("broker.heartbeat.interval.ms", 500)
        .set("broker.session.timeout.ms", 3000);
}

/// Keyed messages `key-i` / `value-i`, on explicit partitions when `partitions` is given
/// (round-robin), else left to the client's partitioner.
fn keyed_messages(n: usize, partitions: Option<&[i32]>) -> Vec<Msg> {
    (0..n)
        .map(|i| {
            let m = Msg::value(format!("value-{i}")).key(format!("key-{i}"));
            match partitions {
                Some(ps) => m.partition(ps[i % ps.len()]),
                None => m,
            }
        })
        .collect()
}

/// End offset per partition implied by delivery reports; also checks each partition's offsets
/// are exactly 0..n (no gaps, no duplicates).
fn ends_from_deliveries(delivered: &[Delivered], partitions: i32) -> Result<BTreeMap<i32, i64>> {
    let mut by_partition: BTreeMap<i32, Vec<i64>> = (0..partitions).map(|p| (p, vec![])).collect();
    for d in delivered {
        by_partition
            .get_mut(&d.partition)
            .ok_or_else(|| anyhow!("delivered to unknown partition {}", d.partition))?
            .push(d.offset);
    }
    let mut ends = BTreeMap::new();
    for (p, mut offsets) in by_partition {
        offsets.sort_unstable();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        ensure!(
            offsets == expected,
            "partition {p}: offsets are not 0..{}",
            offsets.len()
        );
        ends.insert(p, offsets.len() as i64);
    }
    Ok(ends)
}

/// Every message was read back at the partition and offset it was delivered to.
fn check_read_back(
    messages: &[Msg],
    delivered: &[Delivered],
    read: &BTreeMap<i32, Vec<Received>>,
) -> Result<()> {
    for (m, d) in messages.iter().zip(delivered) {
        let r = read
            .get(&d.partition)
            .and_then(|list| list.iter().find(|r| r.offset == d.offset))
            .ok_or_else(|| anyhow!("message delivered at {d:?} was not read back"))?;
        ensure!(
            r.content() == m.content(),
            "at {d:?}: read {r:?}, wrote {m:?}"
        );
    }
    Ok(())
}

/// Every partition's data lives on its owner and only there. Asked of every listed node:
/// Produce (one record), Fetch and ListOffsets (latest) of every partition. The owner answers
/// ListOffsets and Fetch with the expected end offset (so nothing landed there by mistake);
/// every other node refuses all three with NOT_LEADER_OR_FOLLOWER. Returns the sum of the end
/// offsets.
fn check_owners_answer(
    conns: &mut BTreeMap<i32, RawConn>,
    topic: &str,
    view: &TopicView,
    ends: &BTreeMap<i32, i64>,
) -> Result<i64> {
    let stray = record_batch(&[b"stray"], 2, NO_PRODUCER, -1, 0, Compression::None)?;
    let mut total = 0;
    for p in &view.partitions {
        let end = ends[&p.index];
        for (&id, conn) in conns.iter_mut() {
            if id == p.owner {
                continue;
            }
            let produced = produce_raw(conn, topic, &[(p.index, stray.clone())])?;
            let fetched = fetch_raw(conn, topic, p.index, 0, 0)?;
            let (listed, offset, _) = list_offset(conn, topic, p.index, -1)?;
            ensure!(
                [produced[0].error_code, fetched.error_code, listed] == [NOT_LEADER_OR_FOLLOWER; 3],
                "node {id} (owner is {}) answered for {topic}/{}: Produce error {} (base \
                 offset {}), Fetch error {}, ListOffsets error {listed} (offset {offset})",
                p.owner,
                p.index,
                produced[0].error_code,
                produced[0].base_offset,
                fetched.error_code
            );
        }
        let owner = conns
            .get_mut(&p.owner)
            .ok_or_else(|| anyhow!("no connection to owner {}", p.owner))?;
        let (code, offset, _) = list_offset(owner, topic, p.index, -1)?;
        let fetched = fetch_raw(owner, topic, p.index, 0, 0)?;
        ensure!(
            (code, offset, fetched.error_code, fetched.high_watermark) == (0, end, 0, end),
            "owner {} of {topic}/{}: ListOffsets error {code} end offset {offset}, Fetch error \
             {} high watermark {}; expected end offset {end}",
            p.owner,
            p.index,
            fetched.error_code,
            fetched.high_watermark
        );
        total += end;
    }
    Ok(total)
}

fn conns(cluster: &Cluster, ids: &[i32]) -> Result<BTreeMap<i32, RawConn>> {
    ids.iter().map(|&id| Ok((id, cluster.conn(id)?))).collect()
}

/// The part of a node's log written by its latest start.
fn latest_run_log(broker: &Broker) -> String {
    let text = std::fs::read_to_string(broker.log_path()).unwrap_or_default();
    match text.rfind("===== brook-tests: start #") {
        Some(at) => text[at..].to_string(),
        None => text,
    }
}

/// A node prints its ready line once the Raft leader has applied its registration; from then
/// on the leader counts it as a live broker, lists it in Metadata and places new partitions on
/// it. Checked for a new cluster, and for a whole cluster started again after being down
/// longer than the broker session timeout. (Followers may apply a registration a moment later,
/// so only the leader is asked.)
///
/// A broker that drops out does so for a few milliseconds at most, so the leader's Metadata is
/// polled without pause for a second from the ready lines on while a topic is created.
#[test]
fn ready_nodes_are_live_brokers_at_once() -> Result<()> {
    const WATCH: Duration = Duration::from_secs(1);
    let mut c = Cluster::launch_with(3, fast_failure_detection);
    let mut failures = Vec::new();
    let mut check = |c: &Cluster, when: &str, topic: &str| -> Result<()> {
        let leader = c.raft_leader();
        let (incomplete, view) = std::thread::scope(|s| {
            let watcher = s.spawn(|| -> Result<BTreeSet<Vec<i32>>> {
                let mut conn = c.conn(leader)?;
                let mut incomplete = BTreeSet::new();
                let until = Instant::now() + WATCH;
                while Instant::now() < until {
                    let brokers: Vec<i32> = metadata(&mut conn, Some(&[]))?
                        .brokers
                        .into_keys()
                        .collect();
                    if brokers != [1, 2, 3] {
                        incomplete.insert(brokers);
                    }
                }
                Ok(incomplete)
            });
            let view = c.create_topic(leader, topic, 6);
            (watcher.join().unwrap(), view)
        });
        let (incomplete, view) = (incomplete?, view?);
        if !incomplete.is_empty() {
            failures.push(format!(
                "{when}: in the second after every node printed its ready line, the Raft \
                 leader (node {leader}) listed only brokers {incomplete:?}"
            ));
        }
        if view.owner_counts().len() != 3 {
            failures.push(format!(
                "{when}: right after every node printed its ready line, the Raft leader \
                 (node {leader}) placed a new 6-partition topic on {:?}",
                view.owners()
            ));
        }
        Ok(())
    };
    check(&c, "a new cluster", "at-once")?;
    let statuses = c.stop_all();
    assert!(statuses.values().all(|s| s.success()), "{statuses:?}");
    // The scenario is a downtime longer than the 3 s session timeout.
    std::thread::sleep(Duration::from_millis(3500));
    c.start_all();
    check(&c, "after a whole-cluster restart", "after-restart")?;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_up_spreads_partitions_and_clients_reach_owners() -> Result<()> {
    const TOPIC: &str = "spread";
    const PARTITIONS: i32 = 12;
    const MESSAGES: usize = 3000;
    let mut up = ClusterUp::start(3, &[]);
    let addrs: Vec<String> = (1..=3).map(|i| up.addr(i).to_string()).collect();
    assert_eq!(up.bootstrap_servers, addrs.join(","));
    let node1 = addrs[0].clone();

    // Created through node 2; every node must then describe it the same way.
    let results = create_topics(
        &mut RawConn::connect(up.addr(2))?,
        &[TOPIC],
        PARTITIONS,
        30_000,
    )?;
    assert!(
        results.iter().all(|(_, code, _)| *code == 0),
        "CreateTopics: {results:?}"
    );
    let view = wait_for("every node to describe the topic", EVENTUALLY, || {
        let mut views = Vec::new();
        for i in 1..=3 {
            let cluster = metadata(&mut RawConn::connect(up.addr(i))?, Some(&[TOPIC]))?;
            ensure!(
                cluster.brokers.keys().copied().collect::<Vec<_>>() == [1, 2, 3],
                "node {i} lists brokers {:?}",
                cluster.brokers
            );
            let t = cluster.topics.into_iter().next().unwrap();
            ensure!(
                t.error == 0
                    && t.partitions.len() == PARTITIONS as usize
                    && t.partitions.iter().all(|p| p.leader >= 0),
                "node {i} describes {t:?}"
            );
            views.push(t);
        }
        ensure!(
            views.iter().all(|v| v == &views[0]),
            "nodes disagree: {views:?}"
        );
        Ok(views.pop())
    })?;
    // Checked at the end: the rest holds for any placement and is worth knowing either way.
    let spread = view.owner_counts() == BTreeMap::from([(1, 4), (2, 4), (3, 4)]);
    for p in &view.partitions {
        assert_eq!(p.leader, p.owner, "partition {p:?} is led by its owner");
    }

    // The client only knows node 1 and finds the other owners through Metadata.
    let producer = producer_for(&node1, &[("linger.ms", "5")]);
    let messages = keyed_messages(MESSAGES, None);
    let delivered = produce_all(&producer, TOPIC, &messages).await?;
    let ends = ends_from_deliveries(&delivered, PARTITIONS)?;
    assert!(
        ends.values().all(|&e| e > 0),
        "keys reach every partition: {ends:?}"
    );
    let read = consume_to_ends(&node1, TOPIC, &ends)?;
    assert_eq!(
        read.values().map(Vec::len).sum::<usize>(),
        MESSAGES,
        "read back every message"
    );
    check_read_back(&messages, &delivered, &read)?;

    // Each partition's data lives on its owner, and only there.
    let mut conns = (1..=3u16)
        .map(|i| Ok((i32::from(i), RawConn::connect(up.addr(i))?)))
        .collect::<Result<BTreeMap<_, _>>>()?;
    let total = check_owners_answer(&mut conns, TOPIC, &view, &ends)?;
    assert_eq!(total, MESSAGES as i64);

    let status = up.terminate();
    assert!(status.success(), "brook cluster up exited with {status}");
    // The supervisor returns only after its nodes stopped: nothing listens any more, and each
    // node exited cleanly rather than being killed.
    for i in 1..=3u16 {
        assert!(
            TcpStream::connect(up.addr(i)).is_err(),
            "node {i}'s Kafka port still accepts connections"
        );
        let raft = std::net::SocketAddr::from(([127, 0, 0, 1], up.raft_base_port + i - 1));
        assert!(
            TcpStream::connect(raft).is_err(),
            "node {i}'s Raft port still accepts connections"
        );
        let exited = format!("[node-{i}] exited with exit status: 0");
        assert!(
            up.log().contains(&exited),
            "no `{exited}` in the supervisor's output:\n{}",
            up.log_tail(40)
        );
    }
    assert!(
        spread,
        "12 partitions over the 3 brokers of a healthy cluster are placed {:?}",
        view.owners()
    );
    Ok(())
}

/// Sends a frame size far past `socket.request.max.bytes` to `addr`, which the node answers by
/// closing the connection with a WARN "connection closed by broker"; waits for the close.
fn send_oversized_frame(addr: std::net::SocketAddr) -> Result<()> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(EVENTUALLY))?;
    conn.write_all(&i32::MAX.to_be_bytes())?;
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
        Err(e) => Err(anyhow!("waiting for the node to close the connection: {e}")),
    }
}

/// `brook cluster logs` with the cluster's folder and `args`; its stdout.
fn cluster_logs(up: &ClusterUp, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(brook_bin())
        .args(["cluster", "logs", "--dir"])
        .arg(up.cluster_dir())
        .args(args)
        .output()?;
    ensure!(
        out.status.success(),
        "brook cluster logs {args:?} exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// `cluster up`'s terminal shows its progress, the status table and the nodes' warnings, but not
/// their INFO lines: those go to `DIR/logs/node-N.log`, which `brook cluster logs` prints and
/// follows.
#[test]
fn cluster_up_terminal_is_quiet_and_node_logs_go_to_files() -> Result<()> {
    let mut up = ClusterUp::start(3, &[]);
    wait_for("the status table on the terminal", EVENTUALLY, || {
        Ok(up.log().contains("NODE  ADDRESS").then_some(()))
    })?;
    for id in 1..=3u16 {
        let log = up.node_log(id);
        ensure!(
            log.starts_with(&format!("==== brook cluster up: node {id} starting at ")),
            "node {id}'s log does not start with the header: {}",
            up.all_tails(20)
        );
        // `node started` precedes the ready line, which cluster up waited for.
        let started = format!("node started node={id} ");
        ensure!(
            log.lines()
                .any(|l| l.contains(" INFO ") && l.contains(&started)),
            "no `{started}` INFO line in node {id}'s log:\n{}",
            up.all_tails(40)
        );
    }
    let terminal = up.log();
    let node_infos: Vec<&str> = terminal
        .lines()
        .filter(|l| l.starts_with("[node-") && (l.contains(" INFO ") || l.contains(" DEBUG ")))
        .collect();
    ensure!(
        node_infos.is_empty() && !terminal.contains("node started"),
        "node INFO lines on the terminal: {node_infos:#?}"
    );
    let logs_dir = up.cluster_dir().join("logs");
    ensure!(
        terminal.contains(&format!("node logs are in {}", logs_dir.display()))
            && terminal.contains("brook cluster logs"),
        "the terminal does not say where the logs are:\n{terminal}"
    );

    // The last 5 lines of node 2's log, unprefixed: consecutive lines of its file.
    let printed = cluster_logs(&up, &["--node", "2", "-n", "5"])?;
    let printed: Vec<&str> = printed.lines().collect();
    assert_eq!(printed.len(), 5, "{printed:#?}");
    let file = up.node_log(2);
    let file: Vec<&str> = file.lines().collect();
    let at = file.iter().position(|l| *l == printed[0]);
    assert!(
        at.is_some_and(|i| file.get(i..i + 5) == Some(&printed[..])),
        "`cluster logs --node 2 -n 5` printed {printed:#?}, not 5 consecutive lines of node 2's log"
    );
    // Every node's, prefixed with its node.
    let all = cluster_logs(&up, &["-n", "1"])?;
    let prefixes: Vec<&str> = all.lines().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(prefixes, ["[node-1]", "[node-2]", "[node-3]"], "{all}");

    // `--follow` prints node 1's new lines as they come.
    let mut follow = std::process::Command::new(brook_bin())
        .args(["cluster", "logs", "--dir"])
        .arg(up.cluster_dir())
        .args(["--node", "1", "--follow", "-n", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = follow
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no stdout pipe"))?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // A garbage frame makes a node log a WARN, which the terminal shows too. Sent until the
    // follower prints one: it may not have reached the end of the file before the first.
    let followed = wait_for(
        "`cluster logs -f` to print node 1's WARN",
        EVENTUALLY,
        || {
            send_oversized_frame(up.addr(1))?;
            while let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
                if line.contains("WARN") && line.contains("connection closed by broker") {
                    return Ok(Some(line));
                }
            }
            Ok(None)
        },
    );
    let _ = follow.kill();
    let _ = follow.wait();
    followed?;
    send_oversized_frame(up.addr(3))?;
    wait_for("node 3's WARN on the terminal", EVENTUALLY, || {
        let terminal = up.log();
        let warned = terminal.lines().any(|l| {
            l.starts_with("[node-3] ")
                && l.contains(" WARN ")
                && l.contains("connection closed by broker")
        });
        Ok(warned.then_some(()))
    })?;
    ensure!(
        up.node_log(3).contains("connection closed by broker"),
        "node 3's WARN is not in its log file"
    );

    let status = up.terminate();
    assert!(status.success(), "brook cluster up exited with {status}");
    for id in 1..=3u16 {
        ensure!(
            up.node_log(id).contains("shutting down"),
            "node {id}'s log does not show its shutdown:\n{}",
            up.all_tails(20)
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_kill_elects_new_leader_and_node_catches_up_from_snapshot() -> Result<()> {
    const SNAPSHOT_INTERVAL: i64 = 20;
    const TOPICS_WHILE_DOWN: usize = 30;
    let mut c = Cluster::start_with(3, |o| {
        fast_failure_detection(o);
        o.set("brook.raft.snapshot.interval.entries", SNAPSHOT_INTERVAL);
    });
    let victim = c.raft_leader();
    let survivors: Vec<i32> = c.ids().into_iter().filter(|&i| i != victim).collect();
    assert_eq!(
        c.controller(victim)?,
        victim,
        "DescribeCluster names the Raft leader"
    );

    // A topic with partitions on every node, some of them data on the victim.
    let before = c.create_topic(survivors[0], "before-kill", 6)?;
    let victims_partitions = before.owned_by(victim);
    assert_eq!(victims_partitions.len(), 2, "{before:?}");
    let messages = keyed_messages(200, Some(&victims_partitions));
    let producer = producer(c.node(survivors[0]), &[]);
    produce_all(&producer, "before-kill", &messages).await?;
    let log_end_at_kill = c.describe_quorum(victim)?.high_watermark;

    let killed_at = Instant::now();
    c.kill9(victim);
    // The data path does not wait for Raft: partitions on the survivors keep taking writes
    // while a new leader is elected.
    let survivors_partitions: Vec<i32> =
        (0..6).filter(|p| !victims_partitions.contains(p)).collect();
    let during_election = {
        let producer = producer.clone();
        let messages = keyed_messages(400, Some(&survivors_partitions));
        tokio::spawn(async move {
            let delivered = produce_all(&producer, "before-kill", &messages).await;
            (delivered, killed_at.elapsed())
        })
    };

    // Measured concurrently from the kill: the first survivor to name a new leader, and the
    // first CreateTopics through a survivor that succeeds.
    let (new_leader, to_leader, to_create) = std::thread::scope(|s| {
        let c = &c;
        let survivors = &survivors;
        let leader = s.spawn(move || -> Result<(i32, Duration)> {
            let deadline = killed_at + EVENTUALLY;
            loop {
                for &id in survivors {
                    if let Ok(q) = c.describe_quorum(id) {
                        if q.leader >= 0 && q.leader != victim {
                            return Ok((q.leader, killed_at.elapsed()));
                        }
                    }
                }
                ensure!(
                    Instant::now() < deadline,
                    "no new leader after {EVENTUALLY:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let create = s.spawn(move || -> Result<Duration> {
            let via = survivors[0];
            let deadline = killed_at + EVENTUALLY;
            loop {
                // Retried under one name: an attempt that timed out may still have committed.
                let attempt = c
                    .conn(via)
                    .and_then(|mut conn| create_topics(&mut conn, &["first-after-kill"], 1, 5_000));
                let last = match attempt {
                    Ok(r)
                        if r.iter()
                            .all(|(_, code, _)| *code == 0 || *code == TOPIC_ALREADY_EXISTS) =>
                    {
                        return Ok(killed_at.elapsed())
                    }
                    Ok(r) => format!("{r:?}"),
                    Err(e) => format!("{e:#}"),
                };
                ensure!(
                    Instant::now() < deadline,
                    "no CreateTopics succeeded through node {via} after {EVENTUALLY:?}: {last}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let (new_leader, to_leader) = leader.join().unwrap()?;
        let to_create = create.join().unwrap()?;
        Ok::<_, anyhow::Error>((new_leader, to_leader, to_create))
    })?;
    eprintln!("MEASURED leader kill -9 -> a survivor names new leader {new_leader}: {to_leader:?}");
    eprintln!("MEASURED leader kill -9 -> first successful CreateTopics through a survivor: {to_create:?}");
    assert!(survivors.contains(&new_leader));
    let (delivered, took) = during_election.await?;
    let delivered = delivered?;
    eprintln!(
        "MEASURED leader kill -9 -> 400 acks=all writes to the survivors' partitions done: {took:?}"
    );
    assert!(delivered.iter().all(|d| d.offset < 100));
    drop(producer);
    for &id in &survivors {
        wait_for(
            &format!("node {id} to name {new_leader} controller"),
            EVENTUALLY,
            || {
                let described = c.controller(id)?;
                let in_metadata = c.metadata(id, Some(&[]))?.controller;
                Ok((described == new_leader && in_metadata == new_leader).then_some(()))
            },
        )?;
    }

    // The dead broker leaves Metadata, and its partitions lose their leader.
    for &id in &survivors {
        c.wait_for_brokers(id, &survivors)?;
        eprintln!(
            "MEASURED leader kill -9 -> node {id} stops listing broker {victim}: {:?}",
            killed_at.elapsed()
        );
        let t = c.topic(id, "before-kill")?.unwrap();
        for p in &t.partitions {
            if p.owner == victim {
                assert_eq!(
                    (p.leader, p.error),
                    (-1, LEADER_NOT_AVAILABLE),
                    "node {id}: partition owned by dead node {victim}: {p:?}"
                );
            } else {
                assert_eq!((p.leader, p.error), (p.owner, 0), "node {id}: {p:?}");
            }
        }
    }

    // Enough writes while it is down that the log it would need is compacted behind snapshots.
    let mut created = vec!["first-after-kill".to_string()];
    let mut i = 0;
    loop {
        let q = c.describe_quorum(new_leader)?;
        if created.len() > TOPICS_WHILE_DOWN
            && q.high_watermark > log_end_at_kill + 3 * SNAPSHOT_INTERVAL
        {
            break;
        }
        let name = format!("while-down-{i}");
        let via = survivors[i % survivors.len()];
        let r = create_topics(&mut c.conn(via)?, &[&name], 2, 30_000)?;
        assert!(
            r.iter().all(|(_, code, _)| *code == 0),
            "{name} through {via}: {r:?}"
        );
        created.push(name);
        i += 1;
    }
    assert!(
        latest_run_log(c.node(new_leader)).contains("built metadata snapshot"),
        "the new leader built no snapshot"
    );

    let restarted_at = Instant::now();
    c.restart(victim);
    eprintln!(
        "MEASURED restart of node {victim} -> ready line: {:?}",
        restarted_at.elapsed()
    );
    wait_for(&format!("node {victim} to catch up"), EVENTUALLY, || {
        let view = c.metadata(victim, None)?;
        let known: BTreeSet<&str> = view.topics.iter().map(|t| t.name.as_str()).collect();
        let missing: Vec<&String> = created
            .iter()
            .filter(|n| !known.contains(n.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(Some(()));
        }
        bail!(
            "node {victim} misses {} topics, e.g. {:?}",
            missing.len(),
            missing.first()
        )
    })?;
    eprintln!(
        "MEASURED restart of node {victim} -> its Metadata lists all {} new topics: {:?}",
        created.len(),
        restarted_at.elapsed()
    );
    assert!(
        latest_run_log(c.node(victim)).contains("installed metadata snapshot"),
        "node {victim} caught up without installing a snapshot (the log it missed was not \
         compacted away?)"
    );

    // Its partitions are led again, by it, with the data acknowledged before the kill.
    let after = c.wait_for_topic("before-kill", 6)?;
    assert_eq!(after.owners(), before.owners());
    assert_eq!(after.id, before.id);
    for id in c.ids() {
        c.wait_for_brokers(id, &[1, 2, 3])?;
        let t = c.topic(id, "before-kill")?.unwrap();
        assert!(
            t.partitions
                .iter()
                .all(|p| p.leader == p.owner && p.error == 0),
            "node {id}: {t:?}"
        );
    }
    let mut all = conns(&c, &c.ids())?;
    let ends: BTreeMap<i32, i64> = before.partitions.iter().map(|p| (p.index, 100)).collect();
    check_owners_answer(&mut all, "before-kill", &before, &ends)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_keeps_topics_owners_and_data() -> Result<()> {
    const TOPIC: &str = "kept";
    const PARTITIONS: i32 = 6;
    let mut c = Cluster::start(3);
    let before = c.create_topic(2, TOPIC, PARTITIONS)?;
    let all_partitions: Vec<i32> = (0..PARTITIONS).collect();
    let messages = keyed_messages(600, Some(&all_partitions));
    let delivered = produce_all(&producer(c.node(1), &[]), TOPIC, &messages).await?;
    let ends = ends_from_deliveries(&delivered, PARTITIONS)?;

    let statuses = c.stop_all();
    assert_eq!(statuses.len(), 3);
    for (id, status) in &statuses {
        assert!(
            status.success(),
            "node {id} exited with {status} on SIGTERM"
        );
    }
    c.start_all();

    let after = c.wait_for_topic(TOPIC, PARTITIONS)?;
    assert_eq!(after.id, before.id, "the topic id survives the restart");
    assert_eq!(
        after.owners(),
        before.owners(),
        "owners survive the restart"
    );
    for id in c.ids() {
        c.wait_for_brokers(id, &[1, 2, 3])?;
    }
    let mut all = conns(&c, &c.ids())?;
    check_owners_answer(&mut all, TOPIC, &after, &ends)?;
    let read = consume_to_ends(&c.bootstrap(3), TOPIC, &ends)?;
    check_read_back(&messages, &delivered, &read)?;
    // New writes continue each partition's log.
    let more = keyed_messages(60, Some(&all_partitions));
    let delivered = produce_all(&producer(c.node(2), &[]), TOPIC, &more).await?;
    for d in &delivered {
        assert!(
            d.offset >= ends[&d.partition] && d.offset < ends[&d.partition] + 10,
            "{d:?} after ends {ends:?}"
        );
    }
    Ok(())
}

/// Topics whose CreateTopics was acknowledged are in the Raft log of a quorum on disk: killing
/// every node at once loses none of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_topics_survive_kill9_of_every_node() -> Result<()> {
    let mut c = Cluster::start(3);
    let mut ids = BTreeMap::new();
    for i in 0..20 {
        let name = format!("durable-meta-{i}");
        let via = 1 + i % 3;
        let r = create_topics(&mut c.conn(via)?, &[&name], 2, 30_000)?;
        assert!(r.iter().all(|(_, code, _)| *code == 0), "{name}: {r:?}");
        ids.insert(name, None);
    }
    for id in c.ids() {
        c.kill9(id);
    }
    c.start_all();
    for (name, topic_id) in ids.iter_mut() {
        let view = c.wait_for_topic(name, 2)?;
        *topic_id = Some(view.id);
    }
    let distinct: BTreeSet<_> = ids.values().collect();
    assert_eq!(distinct.len(), ids.len(), "topic ids are unique: {ids:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fourth_node_joins_and_gets_new_partitions() -> Result<()> {
    const TOPIC: &str = "four-ways";
    let mut c = Cluster::start_with(3, |o| {
        o.set("brook.raft.max.voters", 5);
    });
    let fourth = c.add_node(1);
    assert_eq!(fourth, 4);
    for id in c.ids() {
        c.wait_for_brokers(id, &[1, 2, 3, 4])?;
    }
    let quorum_is = |voters: &[i32], observers: &[i32]| -> Result<()> {
        let want = (
            voters.iter().copied().collect::<BTreeSet<_>>(),
            observers.iter().copied().collect::<BTreeSet<_>>(),
        );
        let leader = c.raft_leader();
        for id in [leader, fourth] {
            wait_for(
                &format!("node {id}'s view of the quorum"),
                EVENTUALLY,
                || {
                    let q = c.describe_quorum(id)?;
                    ensure!(
                        (q.voters.clone(), q.observers.clone()) == want,
                        "node {id} reports {q:?}"
                    );
                    Ok(Some(()))
                },
            )?;
        }
        Ok(())
    };
    // Holding the cluster secret lets a node join, as a learner (KRaft's observer), but not
    // vote: that takes an operator's consent (AddRaftVoter), for a node that joined.
    quorum_is(&[1, 2, 3], &[4])?;
    let add_voter = |id: i32| -> Result<AddRaftVoterResponse> {
        let request = AddRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_voter_id(id)
            .with_timeout_ms(30_000);
        c.conn(2)?.call(0, &request)
    };
    let stranger = add_voter(7)?;
    ensure!(
        stranger.error_code == 42,
        "promoting a non-member: {stranger:?}"
    );
    let promoted = add_voter(fourth)?;
    ensure!(promoted.error_code == 0, "promoting node 4: {promoted:?}");
    quorum_is(&[1, 2, 3, 4], &[])?;

    let view = c.create_topic(fourth, TOPIC, 8)?;
    assert_eq!(
        view.owner_counts(),
        BTreeMap::from([(1, 2), (2, 2), (3, 2), (4, 2)]),
        "8 partitions over 4 brokers: {view:?}"
    );
    let on_fourth = view.owned_by(fourth);
    let messages = keyed_messages(200, Some(&on_fourth));
    let delivered = produce_all(&producer(c.node(1), &[]), TOPIC, &messages).await?;
    let ends: BTreeMap<i32, i64> = (0..8)
        .map(|p| (p, if on_fourth.contains(&p) { 100 } else { 0 }))
        .collect();
    assert_eq!(ends_from_deliveries(&delivered, 8)?, ends);
    let read = consume_to_ends(&c.bootstrap(1), TOPIC, &ends)?;
    check_read_back(&messages, &delivered, &read)?;
    let mut all = conns(&c, &c.ids())?;
    check_owners_answer(&mut all, TOPIC, &view, &ends)?;

    // RemoveRaftVoter: node 4 stops voting and stays an observer that keeps its partitions;
    // asked again, it is no voter (VOTER_NOT_FOUND).
    let remove_voter = |id: i32| -> Result<i16> {
        let request = RemoveRaftVoterRequest::default()
            .with_cluster_id(None)
            .with_voter_id(id);
        Ok(c.conn(3)?.call(0, &request)?.error_code)
    };
    assert_eq!(remove_voter(fourth)?, 0);
    quorum_is(&[1, 2, 3], &[4])?;
    wait_for("node 3 to see node 4 as no voter", EVENTUALLY, || {
        Ok((remove_voter(fourth)? == VOTER_NOT_FOUND).then_some(()))
    })?;
    let read = consume_to_ends(&c.bootstrap(4), TOPIC, &ends)?;
    check_read_back(&messages, &delivered, &read)?;
    Ok(())
}

/// Sends `bytes` to a Raft port (half-closing afterwards if `half_close`) and waits for the
/// node to close the connection.
fn send_to_raft_port(addr: &str, bytes: &[u8], half_close: bool) -> Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    // The node may close while we are still writing; that is an answer too.
    match stream.write_all(bytes) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {
            return Ok(())
        }
        Err(e) => return Err(e.into()),
    }
    if half_close {
        match stream.shutdown(Shutdown::Write) {
            Ok(()) => {}
            // Already closed by the node.
            Err(e) if e.kind() == ErrorKind::NotConnected => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            // A reply to garbage would be a bug in its own right, but not a crash; keep reading
            // until the node closes.
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("the node kept the connection open for 30 s")
            }
            Err(e) => return Err(e.into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_port_rejects_garbage() -> Result<()> {
    let mut c = Cluster::start(3);
    let mut random = vec![0u8; 64 * 1024];
    random.iter_mut().for_each(|b| *b = rand::random());
    let mut oversized = 0xffff_ffffu32.to_be_bytes().to_vec();
    oversized.extend_from_slice(&[0x55; 64]);
    let mut just_over_cap = (16 * 1024 * 1024u32 + 1).to_be_bytes().to_vec();
    just_over_cap.extend_from_slice(&[0; 64]);
    let mut truncated = 1000u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(&[0, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
    // A whole frame that is not a request: an enum tag no request has.
    let mut bad_tag = 8u32.to_be_bytes().to_vec();
    bad_tag.extend_from_slice(&[0xff; 8]);
    // A Join (tag 4) whose address claims to be 2^62 bytes long, inside a 24-byte frame.
    let mut huge_string = 24u32.to_be_bytes().to_vec();
    huge_string.extend_from_slice(&4u32.to_le_bytes());
    huge_string.extend_from_slice(&99u64.to_le_bytes());
    huge_string.extend_from_slice(&(1u64 << 62).to_le_bytes());
    huge_string.extend_from_slice(&[b'x'; 4]);
    let cases: [(&str, &[u8], bool); 6] = [
        ("64 KiB of random bytes", &random, true),
        ("a 4 GiB length prefix", &oversized, false),
        (
            "a length prefix one byte over the 16 MiB cap",
            &just_over_cap,
            false,
        ),
        ("a truncated frame", &truncated, true),
        ("a frame with an unknown request tag", &bad_tag, false),
        (
            "a frame whose string claims 2^62 bytes",
            &huge_string,
            false,
        ),
    ];
    let leader = c.raft_leader();
    // A frame whose body never comes, on a connection left open: the node gives up on it
    // (after its request timeout) rather than waiting forever. Started first, checked last.
    let stalled_at = Instant::now();
    let mut stalled = Vec::new();
    for id in c.ids() {
        let mut stream = TcpStream::connect(c.raft_addr(id))?;
        stream.write_all(&truncated)?;
        stalled.push((id, stream));
    }
    for id in c.ids() {
        for (what, bytes, half_close) in &cases {
            send_to_raft_port(&c.raft_addr(id), bytes, *half_close)
                .map_err(|e| anyhow!("node {id} (leader {leader}), {what}: {e:#}"))?;
        }
    }
    for (id, mut stream) in stalled {
        let left = Duration::from_secs(30).saturating_sub(stalled_at.elapsed());
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        let mut buf = [0u8; 64];
        match stream.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => panic!(
                "node {id}: a stalled frame's connection was not closed within 30 s: {other:?}"
            ),
        }
    }
    for id in c.ids() {
        assert!(
            c.is_running(id),
            "node {id} died of garbage on its Raft port"
        );
    }
    // The group still works: one leader, every node creates topics and lists every broker.
    assert!(c.ids().contains(&c.raft_leader()));
    for id in c.ids() {
        c.create_topic(id, &format!("after-garbage-{id}"), 3)?;
        c.wait_for_brokers(id, &[1, 2, 3])?;
    }
    Ok(())
}

/// Idle connections to the Raft ports (a port scanner, a stuck or hostile client) must not keep
/// the survivors of a leader failure from reaching each other: they elect a new leader about
/// as fast as without them (3 to 4 s here).
#[test]
fn idle_connections_on_raft_ports_do_not_block_failover() -> Result<()> {
    /// More than a node serves at once (256).
    const IDLE_PER_NODE: usize = 300;
    const FAILOVER_BOUND: Duration = Duration::from_secs(30);
    let mut c = Cluster::start(3);
    let leader = c.raft_leader();
    let survivors: Vec<i32> = c.ids().into_iter().filter(|&i| i != leader).collect();
    let mut idle = Vec::new();
    for &id in &survivors {
        for _ in 0..IDLE_PER_NODE {
            idle.push(TcpStream::connect(c.raft_addr(id))?);
        }
    }
    let killed_at = Instant::now();
    c.kill9(leader);
    let new_leader = |c: &Cluster| -> Result<Option<i32>> {
        for &id in &survivors {
            let q = c.describe_quorum(id)?;
            if q.leader >= 0 && q.leader != leader {
                return Ok(Some(q.leader));
            }
        }
        Ok(None)
    };
    let found = wait_for("a new leader", FAILOVER_BOUND, || new_leader(&c));
    let held_for = killed_at.elapsed();
    drop(idle);
    let after = wait_for(
        "a new leader once the idle connections closed",
        EVENTUALLY,
        || new_leader(&c),
    );
    assert!(
        found.is_ok(),
        "with {IDLE_PER_NODE} idle connections open to each survivor's Raft port, no new \
         leader {held_for:?} after the leader's kill -9 ({}); once they were closed: {after:?} \
         after {:?}",
        found.unwrap_err(),
        killed_at.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_topic_data_is_removed_everywhere_and_recreate_is_empty() -> Result<()> {
    const TOPIC: &str = "recycled";
    const PARTITIONS: i32 = 6;
    let c = Cluster::start(3);
    let old = c.create_topic(1, TOPIC, PARTITIONS)?;
    assert_eq!(old.owner_counts().len(), 3, "{old:?}");
    let all_partitions: Vec<i32> = (0..PARTITIONS).collect();
    let messages = keyed_messages(600, Some(&all_partitions));
    let delivered = produce_all(&producer(c.node(1), &[]), TOPIC, &messages).await?;
    let ends = ends_from_deliveries(&delivered, PARTITIONS)?;
    let mut all = conns(&c, &c.ids())?;
    check_owners_answer(&mut all, TOPIC, &old, &ends)?;

    c.delete_topic(2, TOPIC)?;
    // The old owners no longer serve it.
    for p in &old.partitions {
        let (code, _) = c.end_offset(p.owner, TOPIC, p.index)?;
        assert_eq!(
            code,
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            "old owner {} of partition {} after the delete",
            p.owner,
            p.index
        );
    }

    // Each new partition on the node that held the old partition's data, the case where
    // leftovers would show.
    let (code, message) = create_topic_with_owners(&mut c.conn(3)?, TOPIC, &old.owners())?;
    assert_eq!(code, 0, "re-creating {TOPIC}: {message:?}");
    let new = c.wait_for_topic(TOPIC, PARTITIONS)?;
    assert_eq!(new.owners(), old.owners());
    assert_ne!(new.id, old.id, "a re-created topic gets a new id");
    let empty: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut all = conns(&c, &c.ids())?;
    check_owners_answer(&mut all, TOPIC, &new, &empty)?;
    for p in &new.partitions {
        let mut conn = c.conn(p.owner)?;
        let (code, earliest, _) = list_offset(&mut conn, TOPIC, p.index, -2)?;
        assert_eq!(
            (code, earliest),
            (0, 0),
            "earliest of new partition {}",
            p.index
        );
        let data = fetch_raw(&mut conn, TOPIC, p.index, 0, 10)?;
        assert_eq!(data.error_code, 0);
        assert_eq!(data.high_watermark, 0, "new partition {}", p.index);
        assert!(
            decode_records(data.records.as_ref())?.is_empty(),
            "new partition {} returns old records",
            p.index
        );
    }
    // The re-created topic takes new writes from offset 0.
    let delivered = produce_all(&producer(c.node(2), &[]), TOPIC, &messages[..60]).await?;
    assert_eq!(
        ends_from_deliveries(&delivered, PARTITIONS)?,
        (0..PARTITIONS).map(|p| (p, 10)).collect()
    );
    Ok(())
}

/// A node that was down while its topic was deleted (and the deletion compacted into a
/// snapshot) removes the old partition's data when it returns: the topic re-created with the
/// same name and owner is empty there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_deleted_while_its_owner_is_down_is_empty_when_recreated() -> Result<()> {
    const TOPIC: &str = "gone-while-down";
    let mut c = Cluster::start_with(3, |o| {
        fast_failure_detection(o);
        o.set("brook.raft.snapshot.interval.entries", 20);
    });
    let old = c.create_topic(1, TOPIC, 3)?;
    assert_eq!(old.owner_counts().len(), 3, "{old:?}");
    let messages = keyed_messages(300, Some(&[0, 1, 2]));
    produce_all(&producer(c.node(1), &[]), TOPIC, &messages).await?;
    let away = old
        .partitions
        .iter()
        .find(|p| p.owner != 1)
        .cloned()
        .unwrap();

    c.kill9(away.owner);
    let survivors = c.up_ids();
    let via = survivors[0];
    c.delete_topic(via, TOPIC)?;
    // Enough metadata writes that the deletion lies behind a snapshot.
    let log_end = c.describe_quorum(via)?.high_watermark;
    let mut i = 0;
    while c.describe_quorum(via)?.high_watermark < log_end + 60 {
        c.create_topic(via, &format!("filler-{i}"), 1)?;
        i += 1;
    }
    let (code, message) = create_topic_with_owners(&mut c.conn(via)?, TOPIC, &old.owners())?;
    assert_eq!(code, 0, "re-creating {TOPIC}: {message:?}");

    c.restart(away.owner);
    let new = c.wait_for_topic(TOPIC, 3)?;
    assert_ne!(new.id, old.id);
    assert_eq!(new.owners(), old.owners());
    let empty: BTreeMap<i32, i64> = (0..3).map(|p| (p, 0)).collect();
    let mut all = conns(&c, &c.ids())?;
    check_owners_answer(&mut all, TOPIC, &new, &empty)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_waits_for_a_down_owner_and_delivers_after_restart() -> Result<()> {
    const TOPIC: &str = "patient";
    const PER_PARTITION: usize = 100;
    let mut c = Cluster::start_with(3, fast_failure_detection);
    let view = c.create_topic(1, TOPIC, 3)?;
    // The producer bootstraps from node 1; the owner that goes down is another node.
    let down = view
        .partitions
        .iter()
        .find(|p| p.owner != 1)
        .cloned()
        .unwrap();
    assert_eq!(
        view.owner_counts().len(),
        3,
        "one partition per node: {view:?}"
    );
    let others: Vec<i32> = (0..3).filter(|&p| p != down.index).collect();
    let producer = producer(c.node(1), &[("message.timeout.ms", "120000")]);
    // One message everywhere first, so the client has metadata and connections to every owner.
    let warm = keyed_messages(3, Some(&[0, 1, 2]));
    produce_all(&producer, TOPIC, &warm).await?;

    c.kill9(down.owner);
    let survivors: Vec<i32> = c.up_ids();
    wait_for(
        "survivors to report the partition leaderless",
        EVENTUALLY,
        || {
            for &id in &survivors {
                let t = c.topic(id, TOPIC)?.unwrap();
                let p = t.partitions[down.index as usize].clone();
                ensure!(
                    p.leader == -1 && p.error == LEADER_NOT_AVAILABLE,
                    "node {id}: {p:?}"
                );
            }
            Ok(Some(()))
        },
    )?;

    // Messages for the leaderless partition wait in the client; the others go through.
    let waiting_messages = keyed_messages(PER_PARTITION, Some(&[down.index]));
    let finished = Arc::new(AtomicUsize::new(0));
    let waiting = {
        let producer = producer.clone();
        let messages = waiting_messages.clone();
        let finished = finished.clone();
        tokio::spawn(async move {
            let result = produce_all(&producer, TOPIC, &messages).await;
            finished.fetch_add(1, Ordering::SeqCst);
            result
        })
    };
    let flowing = keyed_messages(2 * PER_PARTITION, Some(&others));
    produce_all(&producer, TOPIC, &flowing).await?;
    if finished.load(Ordering::SeqCst) != 0 {
        let outcome = waiting.await?;
        panic!(
            "deliveries to partition {} finished while its owner was down: {outcome:?}",
            down.index
        );
    }

    c.restart(down.owner);
    let delivered = tokio::time::timeout(EVENTUALLY, waiting)
        .await
        .map_err(|_| anyhow!("deliveries did not finish after the owner came back"))??
        .map_err(|e| anyhow!("the producer gave up: {e:#}"))?;
    let offsets: Vec<i64> = delivered.iter().map(|d| d.offset).collect();
    assert_eq!(offsets, (1..=PER_PARTITION as i64).collect::<Vec<_>>());
    assert!(delivered.iter().all(|d| d.partition == down.index));

    let ends: BTreeMap<i32, i64> = (0..3).map(|p| (p, 1 + PER_PARTITION as i64)).collect();
    let read = consume_to_ends(&c.bootstrap(1), TOPIC, &ends)?;
    let late: Vec<Received> = read[&down.index][1..].to_vec();
    assert_eq!(late.len(), PER_PARTITION);
    for (m, r) in waiting_messages.iter().zip(&late) {
        assert_eq!(r.content(), m.content(), "at offset {}", r.offset);
    }
    Ok(())
}

/// Sequential single-partition CreateTopics, through a follower (forwarded to the leader) and
/// through the leader; every node ends up listing all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_throughput_through_raft() -> Result<()> {
    const TOPICS: usize = 100;
    let c = Cluster::start(3);
    let leader = c.raft_leader();
    let follower = c.ids().into_iter().find(|&i| i != leader).unwrap();
    let mut names = Vec::new();
    for (role, via) in [("follower", follower), ("leader", leader)] {
        let mut conn = c.conn(via)?;
        let started = Instant::now();
        for i in 0..TOPICS {
            let name = format!("rate-{role}-{i}");
            let r = create_topics(&mut conn, &[&name], 1, 30_000)?;
            assert!(r.iter().all(|(_, code, _)| *code == 0), "{name}: {r:?}");
            names.push(name);
        }
        let elapsed = started.elapsed();
        eprintln!(
            "MEASURED {TOPICS} sequential CreateTopics through the {role} (node {via}): {elapsed:?}, \
             {:.1} topics/s",
            TOPICS as f64 / elapsed.as_secs_f64()
        );
    }
    for id in c.ids() {
        wait_for(
            &format!("node {id} to list every topic"),
            EVENTUALLY,
            || {
                let view = c.metadata(id, None)?;
                let known: BTreeSet<&str> = view.topics.iter().map(|t| t.name.as_str()).collect();
                let missing = names.iter().filter(|n| !known.contains(n.as_str())).count();
                ensure!(missing == 0, "node {id} misses {missing} topics");
                let leaderless = view
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .filter(|p| p.leader < 0)
                    .count();
                ensure!(
                    leaderless == 0,
                    "node {id}: {leaderless} partitions without leader"
                );
                Ok(Some(()))
            },
        )?;
    }
    Ok(())
}
