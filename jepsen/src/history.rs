//! The history: every operation the harness attempted, as Jepsen records it.
//!
//! Each operation is two entries, an `invoke` when a process starts it and a completion
//! (`ok`, `fail` or `info`) when it ends; `history.jsonl` holds one entry per line. `ok` and
//! `fail` are definite (it happened / it did not), `info` means the outcome is unknown: the
//! operation may take effect at any time after its invocation, or never. A process never has two
//! operations in flight, so an invocation's completion is the next entry of the same process;
//! a process whose operation ended `info` is retired and its work continues under a new id.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Who performed an operation: a numbered worker process, or a named one (`nemesis`, `drain`,
/// `final`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Worker(u64),
    Named(String),
}

impl Process {
    pub fn nemesis() -> Self {
        Process::Named("nemesis".into())
    }

    pub fn is_nemesis(&self) -> bool {
        matches!(self, Process::Named(n) if n == "nemesis")
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Process::Worker(n) => write!(f, "{n}"),
            Process::Named(n) => f.write_str(n),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// One entry of the history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Dense from 0 in the order entries were recorded.
    pub index: u64,
    /// Nanoseconds since the run started (monotonic clock).
    pub time: u64,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: OpType,
    pub f: String,
    #[serde(default)]
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The node the operation was sent to, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<u32>,
}

/// An invocation together with its completion (none if the history ends first, which counts as
/// `info`).
#[derive(Clone, Debug)]
pub struct Pair<'a> {
    pub invoke: &'a Op,
    pub complete: Option<&'a Op>,
}

impl<'a> Pair<'a> {
    /// The outcome; an operation that never completed is indeterminate.
    pub fn kind(&self) -> OpType {
        self.complete.map_or(OpType::Info, |c| c.kind)
    }

    pub fn is_ok(&self) -> bool {
        self.kind() == OpType::Ok
    }

    pub fn f(&self) -> &'a str {
        &self.invoke.f
    }

    pub fn process(&self) -> &'a Process {
        &self.invoke.process
    }

    /// The completion's value when there is one (it carries what was observed), else the
    /// invocation's.
    pub fn value(&self) -> &'a Value {
        match self.complete {
            Some(c) if !c.value.is_null() => &c.value,
            _ => &self.invoke.value,
        }
    }

    pub fn invoke_time(&self) -> u64 {
        self.invoke.time
    }

    /// Completion time; `u64::MAX` for an operation that never completed.
    pub fn complete_time(&self) -> u64 {
        self.complete.map_or(u64::MAX, |c| c.time)
    }

    /// A compact description for anomaly examples.
    pub fn describe(&self) -> Value {
        serde_json::json!({
            "process": self.invoke.process,
            "f": self.invoke.f,
            "type": self.kind(),
            "invoke-index": self.invoke.index,
            "complete-index": self.complete.map(|c| c.index),
            "value": self.value(),
            "error": self.complete.and_then(|c| c.error.clone()),
        })
    }
}

/// Pairs every invocation with its completion, in invocation order. Completions without an
/// invocation are an error in the history, not in the system under test.
pub fn pairs(history: &[Op]) -> Result<Vec<Pair<'_>>> {
    let mut open: HashMap<&Process, usize> = HashMap::new();
    let mut out: Vec<Pair<'_>> = Vec::new();
    for op in history {
        match op.kind {
            OpType::Invoke => {
                if open.contains_key(&op.process) {
                    bail!(
                        "process {} invoked op {} while another was in flight",
                        op.process,
                        op.index
                    );
                }
                open.insert(&op.process, out.len());
                out.push(Pair {
                    invoke: op,
                    complete: None,
                });
            }
            _ => {
                let Some(i) = open.remove(&op.process) else {
                    bail!(
                        "op {} completes nothing: process {} has no operation in flight",
                        op.index,
                        op.process
                    );
                };
                out[i].complete = Some(op);
            }
        }
    }
    Ok(out)
}

/// Reads `history.jsonl`.
pub fn read(path: &Path) -> Result<Vec<Op>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut ops = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a history entry", path.display(), n + 1))?;
        ops.push(op);
    }
    Ok(ops)
}

/// Writes entries one per line.
pub fn write(path: &Path, ops: &[Op]) -> Result<()> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::new(file);
    for op in ops {
        serde_json::to_writer(&mut w, op)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(())
}

/// Builds histories by hand (for tests) with dense indexes and increasing times.
#[derive(Default)]
pub struct Builder {
    pub ops: Vec<Op>,
    time: u64,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    fn push(&mut self, process: Process, kind: OpType, f: &str, value: Value, error: Option<&str>) {
        self.time += 1_000_000;
        self.ops.push(Op {
            index: self.ops.len() as u64,
            time: self.time,
            process,
            kind,
            f: f.to_string(),
            value,
            error: error.map(str::to_string),
            node: None,
        });
    }

    pub fn invoke(&mut self, p: impl Into<Process>, f: &str, value: Value) -> &mut Self {
        self.push(p.into(), OpType::Invoke, f, value, None);
        self
    }

    pub fn ok(&mut self, p: impl Into<Process>, f: &str, value: Value) -> &mut Self {
        self.push(p.into(), OpType::Ok, f, value, None);
        self
    }

    pub fn fail(&mut self, p: impl Into<Process>, f: &str, value: Value, err: &str) -> &mut Self {
        self.push(p.into(), OpType::Fail, f, value, Some(err));
        self
    }

    pub fn info(&mut self, p: impl Into<Process>, f: &str, value: Value, err: &str) -> &mut Self {
        self.push(p.into(), OpType::Info, f, value, Some(err));
        self
    }

    /// An invocation immediately followed by its `ok` completion.
    pub fn done(&mut self, p: impl Into<Process>, f: &str, invoke: Value, ok: Value) -> &mut Self {
        let p = p.into();
        self.invoke(p.clone(), f, invoke).ok(p, f, ok)
    }
}

impl From<u64> for Process {
    fn from(n: u64) -> Self {
        Process::Worker(n)
    }
}

impl From<&str> for Process {
    fn from(n: &str) -> Self {
        Process::Named(n.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_round_trip_through_jsonl() {
        let mut b = Builder::new();
        b.invoke(0, "send", json!([{"f": "send", "key": 1, "value": 1}]))
            .invoke("nemesis", "start-kill", json!({"nodes": [2]}))
            .info("nemesis", "start-kill", json!({"nodes": [2]}), "killed")
            .ok(
                0,
                "send",
                json!([{"f": "send", "key": 1, "value": 1, "offset": 0}]),
            );
        let dir = tempdir();
        let path = dir.join("history.jsonl");
        write(&path, &b.ops).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().next().unwrap().contains("\"type\":\"invoke\""));
        assert!(text.contains("\"process\":\"nemesis\""));
        assert_eq!(read(&path).unwrap(), b.ops);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn pairs_match_completions_by_process() {
        let mut b = Builder::new();
        b.invoke(0, "send", json!(null))
            .invoke(1, "poll", json!(null))
            .ok(1, "poll", json!(null))
            .fail(0, "send", json!(null), "unknown-topic")
            .invoke(2, "poll", json!(null));
        let ps = pairs(&b.ops).unwrap();
        assert_eq!(ps.len(), 3);
        assert_eq!(ps[0].kind(), OpType::Fail);
        assert_eq!(ps[1].kind(), OpType::Ok);
        assert_eq!(ps[2].kind(), OpType::Info, "never completed");
        let mut bad = Builder::new();
        bad.ok(0, "send", json!(null));
        assert!(pairs(&bad.ops).is_err());
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "brook-jepsen-history-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
