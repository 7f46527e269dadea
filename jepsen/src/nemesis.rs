//! The nemesis: faults as start/stop pairs on a random schedule, each recorded in the history
//! as `start-<fault>` / `stop-<fault>` by process `nemesis` with the nodes it hit.
//!
//! After a warm-up, it waits a uniform 0..2x interval, starts a fault on a random node, waits
//! again and stops it; one fault at a time, so each window in the timeline has one cause. When
//! the run ends it stops whatever fault is active before returning.
//!
//! Partitions take one of Jepsen's shapes at random: one node isolated, a majority/minority
//! split, the majorities ring, the Raft leader isolated (found with `brook cluster status`), or
//! the owner of the busiest partitions isolated (the node leading the most records).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::Consumer;
use serde_json::{json, Value};

use crate::client;
use crate::clock;
use crate::disk;
use crate::netns::{self, shapes};

use crate::cluster::Cluster;
use crate::history::{OpType, Process};
use crate::recorder::Recorder;
use crate::store::RunDir;

/// The share of packets between nodes that packet-loss drops.
const PACKET_LOSS: f64 = 0.2;
/// How far the clock nemesis steps a clock, either way: from less than a heartbeat to well past
/// any session timeout.
const CLOCK_STEPS_MS: &[i64] = &[500, 5_000, 30_000, 300_000, 86_400_000];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL; stop restarts the node on the same data.
    Kill,
    /// SIGSTOP; stop sends SIGCONT.
    Pause,
    /// SIGTERM (graceful); stop starts the node again.
    Restart,
    /// iptables drops between nodes, in one of several shapes; stop heals.
    Partition,
    /// A fraction of packets between nodes dropped; stop heals.
    PacketLoss,
    /// The node's data filesystem filled up; stop frees it.
    DiskFull,
    /// The node's wall clock stepped (bump) or jumping back and forth (strobe); stop sets it
    /// right.
    Clock,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Restart => "restart",
            Fault::Partition => "partition",
            Fault::PacketLoss => "packet-loss",
            Fault::DiskFull => "disk-full",
            Fault::Clock => "clock",
        }
    }

    /// The faults available in `--local` mode.
    pub const LOCAL: &'static [Fault] = &[Fault::Kill, Fault::Pause, Fault::Restart, Fault::Clock];
    /// The faults available with network namespaces.
    pub const ALL: &'static [Fault] = &[
        Fault::Kill,
        Fault::Pause,
        Fault::Restart,
        Fault::Partition,
        Fault::PacketLoss,
        Fault::DiskFull,
        Fault::Clock,
    ];
}

/// Parses `--nemesis`: `none`, `all`, or a comma-separated list.
pub fn parse(spec: &str, local: bool) -> Result<Vec<Fault>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "none" => {}
            "all" if local => out.extend_from_slice(Fault::LOCAL),
            "all" => out.extend_from_slice(Fault::ALL),
            "kill" => out.push(Fault::Kill),
            "pause" => out.push(Fault::Pause),
            "restart" => out.push(Fault::Restart),
            "clock" => out.push(Fault::Clock),
            "partition" | "packet-loss" | "disk-full" if local => {
                bail!("nemesis {part} needs network namespaces or loop mounts: not in --local mode")
            }
            "partition" => out.push(Fault::Partition),
            "packet-loss" => out.push(Fault::PacketLoss),
            "disk-full" => out.push(Fault::DiskFull),
            other => bail!("unknown nemesis {other:?}"),
        }
    }
    out.dedup();
    Ok(out)
}

pub struct Schedule {
    pub faults: Vec<Fault>,
    pub interval: Duration,
    pub warmup: Duration,
    pub seed: u64,
    /// For finding the Raft leader and the busiest owner.
    pub probe: Probe,
}

/// Asks the cluster who leads: the Raft group (through the `brook` CLI) and the partitions
/// (through Metadata and the high watermarks).
pub struct Probe {
    pub brook_bin: PathBuf,
    /// How its clients and `brook cluster status` reach the nodes.
    pub security: client::Security,
    pub node_addrs: Vec<(u32, String)>,
    pub topics: Vec<String>,
}

impl Probe {
    /// The Raft leader as some node reports it.
    pub fn raft_leader(&self) -> Option<u32> {
        for (_, addr) in &self.node_addrs {
            let out = std::process::Command::new(&self.brook_bin)
                .args(["cluster", "status", "--bootstrap-server", addr])
                .args(self.security.command_args())
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let leader = text
                .lines()
                .find_map(|l| l.strip_prefix("raft leader:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|id| id.parse().ok());
            if leader.is_some() {
                return leader;
            }
        }
        None
    }

    /// The node leading the most records of the workload's topics.
    pub fn busiest_owner(&self) -> Option<u32> {
        let bootstrap = self
            .node_addrs
            .iter()
            .map(|(_, a)| a.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let consumer = client::consumer(&bootstrap, &self.security, "jepsen-probe", false).ok()?;
        let mut records: BTreeMap<i32, i64> = BTreeMap::new();
        for t in &self.topics {
            let md = consumer
                .fetch_metadata(Some(t), Duration::from_secs(5))
                .ok()?;
            for mt in md.topics() {
                for p in mt.partitions().iter().filter(|p| p.leader() >= 0) {
                    let (lo, hi) = consumer
                        .fetch_watermarks(t, p.id(), Duration::from_secs(5))
                        .unwrap_or((0, 0));
                    *records.entry(p.leader()).or_default() += hi - lo;
                }
            }
        }
        records
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .and_then(|(id, _)| u32::try_from(id).ok())
    }
}

/// Sleeps up to `d`, returning early (false) once `stop` is set.
pub fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let deadline = Instant::now() + d;
    while Instant::now() < deadline {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep((deadline - Instant::now()).min(Duration::from_millis(100)));
    }
    !stop.load(Ordering::Relaxed)
}

/// A fault as started: the nodes it hit, and for partitions the shape and grudge.
struct Active {
    fault: Fault,
    value: Value,
    node: u32,
    /// A strobing clock, stopped with the fault.
    strobe: Option<clock::Strobe>,
}

/// Picks the target of `fault` and starts it.
fn start(
    cluster: &Mutex<Cluster>,
    probe: &Probe,
    ids: &[u32],
    fault: Fault,
    rng: &mut StdRng,
) -> (Active, Result<()>) {
    let node = ids[rng.random_range(0..ids.len())];
    let simple = |value| Active {
        fault,
        value,
        node,
        strobe: None,
    };
    let with_cluster = |f: &dyn Fn(&mut Cluster) -> Result<()>| match cluster.lock() {
        Ok(mut c) => f(&mut c),
        Err(_) => Err(anyhow!("cluster lock poisoned")),
    };
    match fault {
        Fault::Kill => (
            simple(json!({"nodes": [node]})),
            with_cluster(&|c| c.kill(node)),
        ),
        Fault::Pause => (
            simple(json!({"nodes": [node]})),
            with_cluster(&|c| c.pause(node)),
        ),
        Fault::Restart => (
            simple(json!({"nodes": [node]})),
            with_cluster(&|c| c.terminate(node)),
        ),
        Fault::PacketLoss => (
            simple(json!({"nodes": ids, "probability": PACKET_LOSS})),
            netns::packet_loss(ids, PACKET_LOSS),
        ),
        Fault::DiskFull => {
            let result = with_cluster(&|c| {
                let dir = c.data_dir(node)?;
                disk::fill(&dir).map(|_| ())
            });
            (simple(json!({"nodes": [node]})), result)
        }
        Fault::Clock => {
            let step = CLOCK_STEPS_MS[rng.random_range(0..CLOCK_STEPS_MS.len())];
            let offset_ms = if rng.random_bool(0.5) { step } else { -step };
            let dir = cluster
                .lock()
                .map_err(|_| anyhow!("cluster lock poisoned"))
                .and_then(|c| c.node_dir(node));
            let dir = match dir {
                Ok(d) => d,
                Err(e) => return (simple(json!({"nodes": [node]})), Err(e)),
            };
            if rng.random_bool(0.5) {
                let value = json!({"nodes": [node], "mode": "bump", "offset_ms": offset_ms});
                (simple(value), clock::set_offset(&dir, offset_ms))
            } else {
                let period_ms = rng.random_range(50..1_000);
                let value = json!({"nodes": [node], "mode": "strobe", "offset_ms": offset_ms,
                                   "period_ms": period_ms});
                let mut active = simple(value);
                active.strobe = Some(clock::Strobe::start(
                    &dir,
                    offset_ms,
                    Duration::from_millis(period_ms),
                ));
                (active, Ok(()))
            }
        }
        Fault::Partition => {
            let mut shuffled = ids.to_vec();
            shuffled.shuffle(rng);
            let minority = shuffled[..ids.len() / 2].to_vec();
            let shape = ["one", "majority", "ring", "leader", "busiest"][rng.random_range(0..5)];
            let (nodes, grudge) = match shape {
                "majority" => (
                    minority.clone(),
                    shapes::split(&minority, &shuffled[ids.len() / 2..]),
                ),
                "ring" => (ids.to_vec(), shapes::ring(ids)),
                "leader" | "busiest" => {
                    let found = if shape == "leader" {
                        probe.raft_leader()
                    } else {
                        probe.busiest_owner()
                    };
                    let x = found.unwrap_or(node);
                    (vec![x], shapes::isolate(ids, x))
                }
                _ => (vec![node], shapes::isolate(ids, node)),
            };
            let grudge_json: BTreeMap<String, &BTreeSet<u32>> =
                grudge.iter().map(|(k, v)| (k.to_string(), v)).collect();
            (
                simple(json!({"nodes": nodes, "shape": shape, "grudge": grudge_json})),
                netns::partition(&grudge),
            )
        }
    }
}

fn stop(cluster: &Mutex<Cluster>, ids: &[u32], a: Active) -> Result<()> {
    if let Some(strobe) = a.strobe {
        return strobe.finish();
    }
    let mut c = cluster
        .lock()
        .map_err(|_| anyhow!("cluster lock poisoned"))?;
    match a.fault {
        Fault::Pause => c.resume(a.node),
        Fault::Kill | Fault::Restart => c.spawn(a.node).map(|_| ()),
        Fault::Partition | Fault::PacketLoss => netns::heal(ids),
        Fault::DiskFull => disk::free(&c.data_dir(a.node)?),
        Fault::Clock => clock::set_offset(&c.node_dir(a.node)?, 0),
    }
}

/// Runs the schedule until `stop` is set; the active fault, if any, is stopped before return.
pub fn run(
    schedule: &Schedule,
    cluster: &Mutex<Cluster>,
    recorder: &Recorder,
    run_dir: &RunDir,
    stop_flag: &AtomicBool,
) {
    if schedule.faults.is_empty() {
        return;
    }
    let ids: Vec<u32> = match cluster.lock() {
        Ok(c) => c.nodes.iter().map(|n| n.id).collect(),
        Err(_) => return,
    };
    let mut rng = StdRng::seed_from_u64(schedule.seed);
    let nemesis = Process::nemesis();
    let record = |f: &str, value: &Value, result: Result<()>| {
        run_dir.log(format!("nemesis {f} {value}: {result:?}"));
        recorder.complete(
            &nemesis,
            OpType::Info,
            f,
            value.clone(),
            result.err().map(|e| format!("{e:#}")),
        );
    };
    if !sleep_unless(stop_flag, schedule.warmup) {
        return;
    }
    let gap = |rng: &mut StdRng| {
        Duration::from_secs_f64(rng.random_range(0.0..2.0) * schedule.interval.as_secs_f64())
    };
    loop {
        if !sleep_unless(stop_flag, gap(&mut rng)) {
            return;
        }
        let fault = schedule.faults[rng.random_range(0..schedule.faults.len())];
        let f = format!("start-{}", fault.name());
        recorder.invoke(&nemesis, &f, json!({}));
        let (active, result) = start(cluster, &schedule.probe, &ids, fault, &mut rng);
        record(&f, &active.value, result);
        let keep_going = sleep_unless(stop_flag, gap(&mut rng));
        let f = format!("stop-{}", fault.name());
        let value = active.value.clone();
        recorder.invoke(&nemesis, &f, value.clone());
        record(&f, &value, stop(cluster, &ids, active));
        if !keep_going {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nemesis_lists() {
        assert!(parse("none", true).unwrap().is_empty());
        assert_eq!(
            parse("kill,pause", true).unwrap(),
            vec![Fault::Kill, Fault::Pause]
        );
        assert_eq!(parse("all", true).unwrap(), Fault::LOCAL.to_vec());
        assert!(parse("partition", true).is_err());
        assert_eq!(parse("all", false).unwrap(), Fault::ALL.to_vec());
        assert!(parse("bogus", false).is_err());
    }
}
