//! `brook-jepsen run`: one test from start to verdict.
//!
//! Start the nodes, create the workload's topics, run the workers and the nemesis for
//! `--time-limit` seconds, heal everything, wait `--recovery-time`, check health, let the
//! workload finish (the final drain), stop the nodes and check the history. The nodes are
//! killed on every way out: errors and panics drop the cluster, and Ctrl-C/SIGTERM kill the
//! registered pids from a signal thread before exiting.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use clap::Args;
use serde_json::json;

use crate::analyze::analyze;
use crate::checker::{CheckOptions, Validity};
use crate::client::Security;
use crate::cluster::{self, Cluster, Net, PIDS};
use crate::disk;
use crate::nemesis::{self, sleep_unless, Fault, Probe, Schedule};
use crate::netns;
use crate::recorder::Recorder;
use crate::secure;
use crate::store::RunDir;
use crate::workloads::group_offsets::GroupOffsets;
use crate::workloads::list_append::ListAppend;
use crate::workloads::metadata::Metadata;
use crate::workloads::{self, queue::Queue, Ctx, Workload};
use crate::EXIT_HARNESS_ERROR;

/// Options of `run` (and of each run of `test-all`).
#[derive(Args, Clone, Debug, serde::Serialize)]
pub struct RunOpts {
    /// Run nodes as plain processes on 127.0.77.x (no root; only process faults). Without it
    /// each node gets its own network namespace (needs root).
    #[arg(long)]
    pub local: bool,
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Seconds of workload under faults.
    #[arg(long, default_value_t = 60)]
    pub time_limit: u64,
    /// queue | list-append | group-offsets | metadata
    #[arg(long, default_value = "queue")]
    pub workload: String,
    /// none, all, or a comma-separated list of kill, pause, restart, partition, packet-loss,
    /// disk-full, clock.
    #[arg(long, default_value = "none")]
    pub nemesis: String,
    /// Mean seconds between faults (and mean fault duration).
    #[arg(long, default_value_t = 10)]
    pub nemesis_interval: u64,
    /// Worker threads, each with its own clients.
    #[arg(long, default_value_t = 6)]
    pub concurrency: usize,
    /// Operations per second over all workers.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seed of the schedule and the workers' choices (random by default).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the test this many times (the worst verdict wins).
    #[arg(long, default_value_t = 1)]
    pub test_count: u32,
    /// Seconds between healing and the health check.
    #[arg(long, default_value_t = 10)]
    pub recovery_time: u64,
    /// Seconds the final drain may take.
    #[arg(long, default_value_t = 60)]
    pub final_time_limit: u64,
    /// acks=all, idempotence, high retries, read_committed, earliest, no auto-commit.
    #[arg(long)]
    pub safe: bool,
    /// group-offsets: one shared group that subscribes (rebalances) instead of a group per
    /// worker with assign.
    #[arg(long)]
    pub subscribe: bool,
    /// Keys (partitions of the workload's topic).
    #[arg(long, default_value_t = 8)]
    pub keys: u32,
    /// Replicas of the workload's topics: by default 3 (at most the node count) with
    /// `--safe`, else 1.
    #[arg(long)]
    pub replication_factor: Option<i32>,
    /// The brook binary.
    #[arg(long, env = "BROOK_BIN", default_value = "target/release/brook")]
    pub brook_bin: PathBuf,
    /// Where run directories go.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// A broker setting for every node, `key=value` (repeatable).
    #[arg(long = "broker-opt")]
    pub broker_opts: Vec<String>,
    /// Keep the nodes' data directories after the run.
    #[arg(long)]
    pub keep_data: bool,
    /// Nodes that speak only SASL_SSL, with ACLs, as `brook cluster up --secure` makes them
    /// (key material under the run directory's `tls/`); every client and checker logs in as
    /// the admin user with SCRAM-SHA-512 over TLS.
    #[arg(long)]
    pub secure: bool,
}

/// Installs the Ctrl-C/SIGTERM/SIGHUP handler once per process.
fn install_signal_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("signals".into())
            .spawn(|| {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    use tokio::signal::unix::{signal, SignalKind};
                    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                        signal(SignalKind::interrupt()),
                        signal(SignalKind::terminate()),
                        signal(SignalKind::hangup()),
                    ) else {
                        return;
                    };
                    tokio::select! {
                        _ = int.recv() => {}
                        _ = term.recv() => {}
                        _ = hup.recv() => {}
                    }
                    eprintln!("brook-jepsen: interrupted; killing the nodes");
                    PIDS.kill_all();
                    if netns::ACTIVE.load(Ordering::SeqCst) {
                        netns::cleanup();
                    }
                    if disk::ACTIVE.load(Ordering::SeqCst) {
                        disk::cleanup();
                    }
                    std::process::exit(EXIT_HARNESS_ERROR);
                });
            });
        if let Err(e) = spawned {
            eprintln!("brook-jepsen: no signal handler: {e}");
        }
    });
}

fn workload(opts: &RunOpts) -> Result<Box<dyn Workload>> {
    match opts.workload.as_str() {
        "queue" => Ok(Box::new(Queue::new(opts.keys))),
        "list-append" => Ok(Box::new(ListAppend::new(opts.keys))),
        "group-offsets" => Ok(Box::new(GroupOffsets::new(opts.keys, opts.subscribe))),
        "metadata" => Ok(Box::new(Metadata::new(&opts.brook_bin))),
        other => bail!("unknown workload {other:?}"),
    }
}

fn git_sha() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Checks options that would otherwise fail half-way through a run.
pub fn validate(opts: &RunOpts) -> Result<()> {
    if !opts.local && !nix::unistd::Uid::effective().is_root() {
        bail!("network namespaces need root: run as root or pass --local");
    }
    if opts.nodes == 0 || opts.concurrency == 0 || opts.keys == 0 || opts.rate <= 0.0 {
        bail!("--nodes, --concurrency, --keys and --rate must be positive");
    }
    if !opts.brook_bin.is_file() {
        bail!(
            "no brook binary at {} (build it with `cargo build --release -p brook-node`, or pass --brook-bin / BROOK_BIN)",
            opts.brook_bin.display()
        );
    }
    nemesis::parse(&opts.nemesis, opts.local)?;
    workload(opts)?;
    Ok(())
}

/// Runs `--test-count` tests; the worst verdict wins.
pub fn run(opts: &RunOpts) -> Result<Validity> {
    let mut verdict = Validity::Valid;
    for i in 0..opts.test_count {
        let mut o = opts.clone();
        o.seed = opts.seed.map(|s| s + u64::from(i));
        verdict = verdict.and(run_once(&o)?);
    }
    Ok(verdict)
}

/// One row of `test-all`.
pub struct Outcome {
    pub workload: String,
    pub nemesis: String,
    pub verdict: std::result::Result<Validity, String>,
    pub summary: String,
    pub dir: Option<PathBuf>,
}

/// `test-all`: every workload under every nemesis, one run each; returns the rows and writes
/// them as a Markdown table to `store/test-all-<timestamp>.md`.
pub fn test_all(opts: &RunOpts, workloads: &[String], nemeses: &[String]) -> Result<Vec<Outcome>> {
    let mut rows = Vec::new();
    for w in workloads {
        for n in nemeses {
            let mut o = opts.clone();
            o.workload = w.clone();
            o.nemesis = n.clone();
            o.test_count = 1;
            let row = match validate(&o).and_then(|()| run_once(&o)) {
                Ok(v) => Outcome {
                    workload: w.clone(),
                    nemesis: n.clone(),
                    verdict: Ok(v),
                    summary: latest_summary(&o),
                    dir: latest_dir(&o),
                },
                Err(e) => Outcome {
                    workload: w.clone(),
                    nemesis: n.clone(),
                    verdict: Err(format!("{e:#}")),
                    summary: String::new(),
                    dir: latest_dir(&o),
                },
            };
            rows.push(row);
        }
    }
    let table = table(opts, &rows);
    std::fs::create_dir_all(&opts.store)?;
    let path = opts
        .store
        .join(format!("test-all-{}.md", crate::store::timestamp()));
    std::fs::write(&path, &table)?;
    println!("{table}");
    println!("written to {}", path.display());
    Ok(rows)
}

fn latest_dir(o: &RunOpts) -> Option<PathBuf> {
    std::fs::canonicalize(o.store.join(&o.workload).join("latest")).ok()
}

fn latest_summary(o: &RunOpts) -> String {
    let Some(dir) = latest_dir(o) else {
        return String::new();
    };
    std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<crate::checker::Report>(&t).ok())
        .map(|r| {
            let found: Vec<String> = r
                .anomalies
                .iter()
                .filter(|(_, a)| a.count > 0)
                .map(|(k, a)| format!("{k} x{}", a.count))
                .collect();
            let ops: u64 = r.stats.values().map(|s| s.ok).sum();
            format!(
                "{ops} ok ops; {}",
                if found.is_empty() {
                    "no anomalies".to_string()
                } else {
                    found.join(", ")
                }
            )
        })
        .unwrap_or_default()
}

fn table(opts: &RunOpts, rows: &[Outcome]) -> String {
    let mut t = format!(
        "brook-jepsen test-all: {} nodes, {} s, {} workers at {} ops/s{}{}{}\n\n",
        opts.nodes,
        opts.time_limit,
        opts.concurrency,
        opts.rate,
        if opts.local {
            ", --local"
        } else {
            ", network namespaces"
        },
        if opts.safe { ", --safe" } else { "" },
        if opts.secure { ", --secure" } else { "" },
    );
    t.push_str("| workload | nemesis | valid | details | run |\n|---|---|---|---|---|\n");
    for r in rows {
        let verdict = match &r.verdict {
            Ok(Validity::Valid) => "true".to_string(),
            Ok(Validity::Invalid) => "**false**".to_string(),
            Ok(Validity::Unknown) => "unknown".to_string(),
            Err(_) => "error".to_string(),
        };
        let details = match &r.verdict {
            Err(e) => e.replace('|', "/"),
            Ok(_) => r.summary.clone(),
        };
        let dir = r
            .dir
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        t.push_str(&format!(
            "| {} | {} | {verdict} | {details} | {dir} |\n",
            r.workload, r.nemesis
        ));
    }
    t
}

/// One test; returns its verdict.
pub fn run_once(opts: &RunOpts) -> Result<Validity> {
    install_signal_handler();
    let faults = nemesis::parse(&opts.nemesis, opts.local)?;
    let workload = workload(opts)?;
    let seed = opts.seed.unwrap_or_else(rand::random);
    let run_dir = RunDir::create(&opts.store, &opts.workload)?;
    let test = json!({
        "workload": opts.workload,
        "idempotent": opts.safe,
        "security-protocol": if opts.secure { "SASL_SSL" } else { "PLAINTEXT" },
        "seed": seed,
        "git-sha": git_sha(),
        "options": opts,
    });
    std::fs::write(
        run_dir.path.join("test.json"),
        serde_json::to_string_pretty(&test)? + "\n",
    )?;
    run_dir.log(format!(
        "run {}: {} nodes, workload {}, nemesis {}, seed {seed}{}",
        run_dir.path.display(),
        opts.nodes,
        opts.workload,
        opts.nemesis,
        if opts.secure { ", SASL_SSL" } else { "" }
    ));

    let ids: Vec<u32> = (1..=opts.nodes).collect();
    let net = if opts.local { Net::Local } else { Net::Netns };
    let (settings, security) = if opts.secure {
        let hosts: Vec<String> = ids.iter().map(|&id| cluster::host(net, id)).collect();
        let (node_settings, security) = secure::prepare(&run_dir.path.join("tls"), &hosts)
            .context("making the TLS material")?;
        // --broker-opt comes last, so it still wins.
        let settings = node_settings
            .into_iter()
            .chain(opts.broker_opts.clone())
            .collect();
        (settings, security)
    } else {
        (opts.broker_opts.clone(), Security::plaintext())
    };
    let _lock = cluster::exclusive(net, &|m| run_dir.log(m))?;
    // Declared before the cluster so it is dropped after it: nodes die, then their namespaces.
    let _net_guard = if opts.local {
        None
    } else {
        let guard = netns::Guard;
        netns::setup(&ids).context("setting up network namespaces")?;
        Some(guard)
    };
    // Also dropped after the cluster: the nodes must be gone before their disks.
    let mut _disk_guard = None;
    let mut cluster = Cluster::new(
        &opts.brook_bin,
        opts.nodes,
        &run_dir.path.join("nodes"),
        settings,
        net,
    )?;
    if faults.contains(&Fault::Clock) {
        cluster.enable_clock_faults()?;
    }
    if faults.contains(&Fault::DiskFull) {
        _disk_guard = Some(disk::Guard);
        let dirs = cluster
            .nodes
            .iter()
            .map(|n| (n.id, n.dir.join("data")))
            .collect::<Vec<_>>();
        disk::setup(&dirs).context("mounting the nodes' small filesystems")?;
    }
    cluster.start_all().context("starting the cluster")?;
    let bootstrap = cluster.bootstrap();
    let node_addrs: Vec<(u32, String)> = cluster
        .nodes
        .iter()
        .map(|n| (n.id, n.kafka_addr()))
        .collect();
    let cluster = Mutex::new(cluster);
    let recorder = Recorder::create(&run_dir.path.join("history.jsonl"))?;
    let ctx = Ctx {
        bootstrap,
        security: security.clone(),
        node_addrs: node_addrs.clone(),
        recorder: &recorder,
        run: &run_dir,
        safe: opts.safe,
        seed,
        concurrency: opts.concurrency,
        rate: opts.rate,
        replication_factor: opts.replication_factor.unwrap_or(if opts.safe {
            i32::try_from(opts.nodes.min(3)).unwrap_or(1)
        } else {
            1
        }),
        final_time_limit: Duration::from_secs(opts.final_time_limit),
    };
    workload.setup(&ctx).context("setting up the workload")?;
    run_dir.log("cluster up; workload starts");

    let stop = AtomicBool::new(false);
    let schedule = Schedule {
        faults,
        interval: Duration::from_secs(opts.nemesis_interval.max(1)),
        warmup: Duration::from_secs(opts.nemesis_interval.clamp(1, 5)),
        seed,
        probe: Probe {
            brook_bin: opts.brook_bin.clone(),
            security,
            node_addrs,
            topics: workload.topics(),
        },
    };
    std::thread::scope(|s| {
        for w in 0..opts.concurrency {
            let (ctx, stop, workload) = (&ctx, &stop, &workload);
            s.spawn(move || workload.worker(ctx, w, stop));
        }
        let nemesis = s.spawn(|| nemesis::run(&schedule, &cluster, &recorder, &run_dir, &stop));
        let never = AtomicBool::new(false);
        sleep_unless(&never, Duration::from_secs(opts.time_limit));
        stop.store(true, Ordering::Relaxed);
        let _ = nemesis.join();
    });
    run_dir.log("workload stopped; healing");

    {
        let mut c = cluster
            .lock()
            .map_err(|_| anyhow!("cluster lock poisoned"))?;
        c.heal().context("healing")?;
    }
    std::thread::sleep(Duration::from_secs(opts.recovery_time));
    workloads::health(&ctx, &workload.topics(), Duration::from_secs(30));
    workload.finish(&ctx).context("final reads")?;
    recorder.flush();

    let mut c = cluster
        .into_inner()
        .map_err(|_| anyhow!("cluster lock poisoned"))?;
    c.stop_all();
    if !opts.keep_data {
        c.remove_data();
    }
    drop(c);
    let report = analyze(
        &run_dir.path,
        Some(&opts.workload),
        Some(CheckOptions {
            idempotent: opts.safe,
        }),
    )?;
    run_dir.log(format!("verdict: {}", report.summary()));
    println!("{}", report.summary());
    println!("results: {}", run_dir.path.join("results.json").display());
    Ok(report.valid)
}
