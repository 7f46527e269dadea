//! `brook-jepsen check DIR` on recorded histories: the verdict is the exit code, and the
//! results and timeline land beside the history.

// Helpers outside #[test] functions fail loudly, as the tests themselves do.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use brook_jepsen::history::{self, Builder};
use serde_json::{json, Value};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "brook-jepsen-cli-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn check(dir: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_brook-jepsen"))
        .arg("check")
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn queue_history(lose_one: bool) -> Builder {
    let mut b = Builder::new();
    for (v, o) in [(1, 0), (2, 1), (3, 2)] {
        b.done(
            0,
            "send",
            json!([{"f": "send", "key": 0, "value": v}]),
            json!([{"f": "send", "key": 0, "value": v, "offset": o}]),
        );
    }
    let recs = if lose_one {
        json!([[0, 1], [2, 3]])
    } else {
        json!([[0, 1], [1, 2], [2, 3]])
    };
    b.done(
        1,
        "poll",
        json!([{"f": "poll"}]),
        json!([{"f": "poll", "records": {"0": recs}}]),
    );
    b.done("drain", "drain", json!(null), json!({"complete": true}));
    b
}

#[test]
fn check_exit_codes_and_outputs() {
    let good = dir("good");
    history::write(&good.join("history.jsonl"), &queue_history(false).ops).unwrap();
    let (code, summary) = check(&good, &[]);
    assert_eq!(code, 0, "{summary}");
    assert!(summary.contains("queue workload: valid"), "{summary}");
    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(good.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], json!(true));
    assert_eq!(results["anomalies"]["lost-write"]["count"], json!(0));
    assert!(std::fs::read_to_string(good.join("timeline.svg"))
        .unwrap()
        .starts_with("<svg"));

    let bad = dir("bad");
    history::write(&bad.join("history.jsonl"), &queue_history(true).ops).unwrap();
    let (code, summary) = check(&bad, &["--idempotent"]);
    assert_eq!(code, 1, "{summary}");
    assert!(summary.contains("int-poll-skip"), "{summary}");

    assert_eq!(check(&bad, &["--no-such-flag"]).0, 254);
    let missing = dir("missing");
    assert_eq!(check(&missing, &[]).0, 255, "no history is a harness error");
    for d in [good, bad, missing] {
        let _ = std::fs::remove_dir_all(d);
    }
}
