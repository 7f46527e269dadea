//! A short `--local` run against real brook processes: a 3-node cluster, the queue workload and
//! process faults. Every acknowledged write must be read back, and the run directory must hold
//! everything JEPSEN.md lists.
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

#[test]
fn queue_under_process_faults_is_valid() {
    let Some(bin) = brook_bin() else {
        eprintln!("no brook binary (set BROOK_BIN): skipping the local smoke run");
        return;
    };
    let store = std::env::temp_dir().join(format!("brook-jepsen-smoke-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_brook-jepsen"))
        .args([
            "run",
            "--local",
            "--nodes",
            "3",
            "--workload",
            "queue",
            "--safe",
        ])
        .args(["--time-limit", "30", "--nemesis", "kill,pause,restart"])
        .args(["--nemesis-interval", "4", "--recovery-time", "3"])
        .args(["--final-time-limit", "60", "--rate", "60"])
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
    let run = store.join("queue/latest");
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
    let _ = std::fs::remove_dir_all(&store);
}
