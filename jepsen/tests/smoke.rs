//! Short runs against real brook processes: a 3-node cluster and the queue workload, with
//! process faults in `--local` mode and, as root, with partitions and packet loss between
//! network namespaces. Every acknowledged write must be read back, and the run directory must
//! hold everything JEPSEN.md lists.
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

/// Runs `brook-jepsen run` with `args` in a fresh store; returns the run directory, or None
/// when there is no brook binary to run.
fn run(name: &str, args: &[&str]) -> Option<(PathBuf, PathBuf)> {
    let Some(bin) = brook_bin() else {
        eprintln!("no brook binary (set BROOK_BIN): skipping {name}");
        return None;
    };
    let store = std::env::temp_dir().join(format!("brook-jepsen-{name}-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_brook-jepsen"))
        .args(["run", "--nodes", "3", "--workload", "queue", "--safe"])
        .args(args)
        .args([
            "--recovery-time",
            "3",
            "--final-time-limit",
            "60",
            "--rate",
            "60",
        ])
        .arg("--brook-bin")
        .arg(&bin)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    Some((store.join("queue/latest"), store))
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
    assert!(results["stats"]["send"]["ok"].as_u64().unwrap() > 100);
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

#[test]
fn queue_under_process_faults_is_valid() {
    let Some((run_dir, store)) = run(
        "local",
        &[
            "--local",
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
    let _ = std::fs::remove_dir_all(&store);
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
