//! Turning a run directory's `history.jsonl` into its verdict: the workload's checker, the scan
//! of node logs, `results.json` and `timeline.svg`. `run` ends with this and `check` is only
//! this, so a recorded history can be re-checked after the checkers change.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use serde_json::{json, Value};

use crate::checker::{self, CheckOptions, Report, Validity};
use crate::history::{self, pairs, Op};
use crate::{logscan, timeline};

/// What `test.json` says about the run, when it is there.
#[derive(Debug, Default)]
pub struct RunInfo {
    pub workload: Option<String>,
    pub opts: CheckOptions,
}

pub fn read_test_json(dir: &Path) -> Result<RunInfo> {
    let path = dir.join("test.json");
    if !path.exists() {
        return Ok(RunInfo::default());
    }
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(RunInfo {
        workload: v["workload"].as_str().map(str::to_string),
        opts: CheckOptions {
            idempotent: v["idempotent"].as_bool().unwrap_or(false),
        },
    })
}

/// Guesses the workload from the operations, for a bare history without `test.json`.
pub fn infer_workload(ops: &[Op]) -> Option<&'static str> {
    let has = |f: &str| ops.iter().any(|o| o.f == f);
    if has("commit") || has("fetch-committed") {
        Some("group-offsets")
    } else if has("append") {
        Some("list-append")
    } else if has("create") || has("final-metadata") {
        Some("metadata")
    } else if has("send") || has("poll") {
        Some("queue")
    } else {
        None
    }
}

/// Checks `dir/history.jsonl` and writes `results.json` and `timeline.svg` beside it.
pub fn analyze(dir: &Path, workload: Option<&str>, opts: Option<CheckOptions>) -> Result<Report> {
    let ops = history::read(&dir.join("history.jsonl"))?;
    let info = read_test_json(dir)?;
    let workload = match workload
        .map(str::to_string)
        .or(info.workload)
        .or_else(|| infer_workload(&ops).map(str::to_string))
    {
        Some(w) => w,
        None => bail!(
            "cannot tell the workload of {}: pass --workload",
            dir.display()
        ),
    };
    let opts = opts.unwrap_or(info.opts);
    let mut report = checker::check(&workload, &ops, &opts)?;
    let scan = logscan::scan(dir);
    if !scan.clean() {
        report.valid = Validity::Invalid;
        report
            .notes
            .push(format!("{} panics in node logs.", scan.panics));
    }
    report.extra.insert("log-scan".into(), json!(scan));
    fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    let ps = pairs(&ops)?;
    let title = format!("brook {workload}: {}", dir.display());
    fs::write(dir.join("timeline.svg"), timeline::render(&ps, &title))?;
    Ok(report)
}
