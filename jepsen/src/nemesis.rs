//! The nemesis: faults as start/stop pairs on a random schedule, each recorded in the history
//! as `start-<fault>` / `stop-<fault>` by process `nemesis` with the nodes it hit.
//!
//! After a warm-up, it waits a uniform 0..2x interval, starts a fault on a random node, waits
//! again and stops it; one fault at a time, so each window in the timeline has one cause. When
//! the run ends it stops whatever fault is active before returning.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::history::{OpType, Process};
use crate::local::LocalCluster;
use crate::recorder::Recorder;
use crate::store::RunDir;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL; stop restarts the node on the same data.
    Kill,
    /// SIGSTOP; stop sends SIGCONT.
    Pause,
    /// SIGTERM (graceful); stop starts the node again.
    Restart,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::Restart => "restart",
        }
    }

    /// The faults available in `--local` mode.
    pub const LOCAL: &'static [Fault] = &[Fault::Kill, Fault::Pause, Fault::Restart];
}

/// Parses `--nemesis`: `none`, `all`, or a comma-separated list.
pub fn parse(spec: &str, local: bool) -> Result<Vec<Fault>> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part {
            "none" => {}
            "all" => out.extend_from_slice(Fault::LOCAL),
            "kill" => out.push(Fault::Kill),
            "pause" => out.push(Fault::Pause),
            "restart" => out.push(Fault::Restart),
            "partition" | "packet-loss" | "disk-full" if local => {
                bail!("nemesis {part} needs network namespaces or loop mounts: not in --local mode")
            }
            "partition" | "packet-loss" | "disk-full" => {
                bail!("nemesis {part} is not implemented yet")
            }
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

fn apply(cluster: &Mutex<LocalCluster>, fault: Fault, node: u32, start: bool) -> Result<()> {
    let mut c = cluster
        .lock()
        .map_err(|_| anyhow::anyhow!("cluster lock poisoned"))?;
    match (fault, start) {
        (Fault::Kill, true) => c.kill(node),
        (Fault::Pause, true) => c.pause(node),
        (Fault::Restart, true) => c.terminate(node),
        (Fault::Pause, false) => c.resume(node),
        (Fault::Kill | Fault::Restart, false) => c.spawn(node).map(|_| ()),
    }
}

/// Runs the schedule until `stop` is set; the active fault, if any, is stopped before return.
pub fn run(
    schedule: &Schedule,
    cluster: &Mutex<LocalCluster>,
    recorder: &Recorder,
    run_dir: &RunDir,
    stop: &AtomicBool,
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
    let step = |fault: Fault, node: u32, start: bool| {
        let f = format!("{}-{}", if start { "start" } else { "stop" }, fault.name());
        let value = json!({"nodes": [node]});
        recorder.invoke(&nemesis, &f, value.clone());
        let result = apply(cluster, fault, node, start);
        run_dir.log(format!("nemesis {f} node {node}: {result:?}"));
        recorder.complete(
            &nemesis,
            OpType::Info,
            &f,
            value,
            result.err().map(|e| format!("{e:#}")),
        );
    };
    if !sleep_unless(stop, schedule.warmup) {
        return;
    }
    let gap = |rng: &mut StdRng| {
        Duration::from_secs_f64(rng.random_range(0.0..2.0) * schedule.interval.as_secs_f64())
    };
    loop {
        if !sleep_unless(stop, gap(&mut rng)) {
            return;
        }
        let fault = schedule.faults[rng.random_range(0..schedule.faults.len())];
        let node = ids[rng.random_range(0..ids.len())];
        step(fault, node, true);
        let keep_going = sleep_unless(stop, gap(&mut rng));
        step(fault, node, false);
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
        assert!(parse("bogus", false).is_err());
    }
}
