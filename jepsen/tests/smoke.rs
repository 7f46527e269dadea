//! Short runs against real brook processes: a 3-node cluster and the queue workload, with
//! process faults (on nodes that speak only SASL_SSL) and clock faults in `--local` mode and, as root, with partitions and packet loss between
//! network namespaces. Every acknowledged write must be read back, and the run directory must
//! hold everything JEPSEN.md lists. One run proves the harness can fail: with
//! `brook.ack.before.flush=true`, kills lose acknowledged writes and the run must be invalid.
//!
//! Needs the `brook` binary: `BROOK_BIN`, else `<workspace>/target/release/brook`, else
//! `$CARGO_TARGET_DIR/release/brook`. Without one the test says so and passes, so the checker
//! tests still run on machines that have not built brook.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn brook_bin() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("BROOK_BIN").filter(|b| !b.is_empty()) {
        return Some(PathBuf::from(b));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut candidates = vec![workspace.join("target/release/brook")];
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR").filter(|t| !t.is_empty()) {
        candidates.push(workspace.join(t).join("release/brook"));
    }
    candidates.into_iter().find(|c| c.is_file())
}

/// What one `brook-jepsen run` left behind.
struct Outcome {
    /// The exit code: 0 valid, 1 invalid, 2 unknown.
    code: Option<i32>,
    /// stdout and stderr, for assertion messages.
    output: String,
    /// `<store>/queue/latest`.
    run_dir: PathBuf,
    store: PathBuf,
}

impl Outcome {
    fn results(&self) -> Value {
        let path = self.run_dir.join("results.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", path.display(), self.output));
        serde_json::from_str(&text).unwrap()
    }
}

/// Settings of every smoke run that `args` does not set itself.
const DEFAULTS: &[(&str, &str)] = &[
    ("--recovery-time", "3"),
    ("--final-time-limit", "60"),
    ("--rate", "60"),
];

/// Runs `brook-jepsen run` (3 nodes, queue, `--safe`) with `args` in a fresh store and returns
/// what it left, whatever the verdict; None when there is no brook binary to run.
fn run_queue(name: &str, args: &[&str]) -> Option<Outcome> {
    let Some(bin) = brook_bin() else {
        eprintln!("no brook binary (set BROOK_BIN): skipping {name}");
        return None;
    };
    let store = std::env::temp_dir().join(format!("brook-jepsen-{name}-{}", std::process::id()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_brook-jepsen"));
    cmd.args(["run", "--nodes", "3", "--workload", "queue", "--safe"])
        .args(args);
    for (flag, value) in DEFAULTS {
        if !args.contains(flag) {
            cmd.args([flag, value]);
        }
    }
    let out = cmd
        .arg("--brook-bin")
        .arg(&bin)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    Some(Outcome {
        code: out.status.code(),
        output: format!(
            "stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        run_dir: store.join("queue/latest"),
        store,
    })
}

/// [`run_queue`] for a run that must be valid (exit code 0); returns the run directory and
/// the store.
fn run(name: &str, args: &[&str]) -> Option<(PathBuf, PathBuf)> {
    let out = run_queue(name, args)?;
    assert_eq!(out.code, Some(0), "{}", out.output);
    Some((out.run_dir, out.store))
}

fn assert_valid_run(run: &Path) {
    for f in [
        "test.json",
        "history.jsonl",
        "results.json",
        "timeline.svg",
        "harness.log",
        "nodes/n1/broker.log",
    ] {
        assert!(run.join(f).exists(), "{f} missing in {}", run.display());
    }
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], Value::Bool(true), "{results:#}");
    assert_eq!(results["extra"]["drain"]["complete"], Value::Bool(true));
    // The workload made progress: acknowledged writes and reads the checker could judge. Not a
    // speed: under partitions, packet loss and kills on a busy 2-core machine a 30 s run has
    // acknowledged as few as 98 sends.
    let ok = |op: &str| results["stats"][op]["ok"].as_u64().unwrap_or(0);
    assert!(
        ok("send") >= 20 && ok("poll") >= 5,
        "{:#}",
        results["stats"]
    );
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    assert!(
        history.contains("\"process\":\"nemesis\""),
        "the schedule is in the history"
    );
    assert!(
        !run.join("nodes/n1/data").exists(),
        "data directories are removed after the run"
    );
}

/// The run was a `--secure` one: its test.json says so, its key material is in the run
/// directory, and the nodes ran with SASL (they made the admin user). The clients logged in
/// over TLS, or the valid run could not have read anything.
fn assert_secure_run(run: &Path) {
    let test: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["security-protocol"], "SASL_SSL", "{test:#}");
    for f in ["tls/ca.pem", "tls/node.pem", "tls/client.properties"] {
        assert!(run.join(f).exists(), "{f} missing in {}", run.display());
    }
    let made_admin = (1..=3).any(|n| {
        std::fs::read_to_string(run.join(format!("nodes/n{n}/broker.log")))
            .unwrap_or_default()
            .contains("created the bootstrap SCRAM user")
    });
    assert!(made_admin, "no node made the admin user: SASL was off");
}

/// On nodes that speak only SASL_SSL (`--secure`): every client, the final drain and the
/// checkers' probes log in over TLS.
#[test]
fn queue_under_process_faults_is_valid() {
    let Some((run_dir, store)) = run(
        "local",
        &[
            "--local",
            "--secure",
            "--time-limit",
            "30",
            "--nemesis",
            "kill,pause,restart",
            "--nemesis-interval",
            "4",
        ],
    ) else {
        return;
    };
    assert_valid_run(&run_dir);
    assert_secure_run(&run_dir);
    let _ = std::fs::remove_dir_all(&store);
}

/// Skewed and strobing node clocks (libfaketime): liveness and leases run on the Raft leader's
/// stamps and the monotonic clock, so the queue stays valid. Every clock fault must have
/// started, and its offsets must have been written where the nodes read them.
#[test]
fn queue_under_clock_faults_is_valid() {
    if brook_jepsen::clock::library().is_err() {
        panic!("the clock nemesis needs libfaketime (scripts/test.sh installs it)");
    }
    let Some((run_dir, store)) = run(
        "clock",
        &[
            "--local",
            "--time-limit",
            "20",
            "--nemesis",
            "clock",
            "--nemesis-interval",
            "2",
        ],
    ) else {
        return;
    };
    assert_valid_run(&run_dir);
    let history = std::fs::read_to_string(run_dir.join("history.jsonl")).unwrap();
    let starts: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|op| op["f"] == "start-clock" && op["type"] == "info")
        .collect();
    assert!(!starts.is_empty(), "no clock fault in 20 s");
    for op in &starts {
        assert!(op.get("error").is_none(), "a clock fault failed: {op}");
        let node = op["value"]["nodes"][0].as_u64().unwrap();
        assert!(run_dir.join(format!("nodes/n{node}/faketime")).is_file());
    }
    let _ = std::fs::remove_dir_all(&store);
}

/// The harness can fail. With `brook.ack.before.flush=true` a node acknowledges writes (and
/// shows them to consumers) before sled flushes them, which it does about every 500 ms, so a
/// SIGKILL loses the node's last acknowledged writes and the restarted node gives their offsets
/// to new writes. An acknowledged value that no poll had read before the crash is then missing
/// below an offset that was read (`lost-write`) or at the end of its key (`unseen`).
///
/// Kills only, about one every two seconds and each node down for about a second, for 45 s: on
/// a 2-core machine that is 20-25 kills and, in every run measured, several lost writes (most
/// values are polled before the crash that loses them and show up as `inconsistent-offsets`
/// instead). The same arguments without the setting give a valid run.
#[test]
fn queue_with_ack_before_flush_under_kills_is_invalid() {
    let Some(out) = run_queue(
        "ack-before-flush",
        &[
            "--local",
            "--time-limit",
            "45",
            "--nemesis",
            "kill",
            "--nemesis-interval",
            "1",
            "--rate",
            "200",
            "--final-time-limit",
            "20",
            "--broker-opt",
            "brook.ack.before.flush=true",
            // One replica: with three, the other replicas still hold what the killed node
            // lost, and nothing is lost (the point of replication).
            "--replication-factor",
            "1",
        ],
    ) else {
        return;
    };
    let results = out.results();
    assert_eq!(out.code, Some(1), "{}\n{results:#}", out.output);
    assert_eq!(results["valid"], Value::Bool(false), "{results:#}");
    let count = |kind: &str| results["anomalies"][kind]["count"].as_u64().unwrap();
    eprintln!(
        "ack before flush: lost-write x{}, unseen x{}, inconsistent-offsets x{}",
        count("lost-write"),
        count("unseen"),
        count("inconsistent-offsets")
    );
    assert!(
        count("lost-write") + count("unseen") >= 1,
        "no acknowledged write was lost: {results:#}"
    );
    let _ = std::fs::remove_dir_all(&out.store);
}

#[test]
fn queue_under_partitions_is_valid() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("not root: skipping the network-namespace run");
        return;
    }
    let Some((run_dir, store)) = run(
        "netns",
        &[
            "--time-limit",
            "30",
            "--nemesis",
            "partition,packet-loss,kill",
            "--nemesis-interval",
            "4",
        ],
    ) else {
        return;
    };
    assert_valid_run(&run_dir);
    let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout).contains("jn1"),
        "namespaces are removed after the run"
    );
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn other_workloads_under_kills_are_valid() {
    let Some(bin) = brook_bin() else {
        eprintln!("no brook binary (set BROOK_BIN): skipping the workload matrix");
        return;
    };
    let store = std::env::temp_dir().join(format!("brook-jepsen-matrix-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_brook-jepsen"))
        .args(["test-all", "--local", "--nodes", "3", "--safe"])
        .args(["--workloads", "list-append,metadata,group-offsets"])
        .args(["--nemeses", "kill", "--nemesis-interval", "3"])
        .args(["--time-limit", "12", "--recovery-time", "2"])
        .args(["--final-time-limit", "30", "--rate", "60"])
        .arg("--brook-bin")
        .arg(&bin)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let row = |w: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {w} |")))
            .unwrap_or_else(|| panic!("no row for {w}:\n{stdout}\n{stderr}"))
            .to_string()
    };
    for w in ["list-append", "metadata"] {
        assert!(row(w).contains("| true |"), "{}\n{stderr}", row(w));
    }
    // A brook without consumer groups leaves the group workload unknown, never invalid.
    let groups = row("group-offsets");
    assert!(
        groups.contains("| true |") || groups.contains("| unknown |"),
        "{groups}\n{stderr}"
    );
    let _ = std::fs::remove_dir_all(&store);
}
