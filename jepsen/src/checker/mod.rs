//! Checkers: pure functions from a history to a report (`results.json`).
//!
//! Each workload has its own checker module; they share [`Report`], which keeps a count for
//! every anomaly type the workload can produce (zeros included, so a reader can tell "checked
//! and absent" from "not checked") and up to [`MAX_EXAMPLES`] examples of each.

pub mod group_offsets;
pub mod list_append;
pub mod metadata;
pub mod queue;

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{json, Value};

use crate::history::{pairs, Op, OpType, Pair, Process};

/// Examples kept per anomaly type; the count goes on.
pub const MAX_EXAMPLES: usize = 32;

/// Jepsen's three-valued verdict: `unknown` when the history cannot decide (e.g. the final
/// drain did not finish, so unseen writes may only be late).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    Valid,
    Invalid,
    Unknown,
}

impl Validity {
    /// Exit code of `run` and `check`.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// The worse of two verdicts (invalid beats unknown beats valid).
    pub fn and(self, other: Validity) -> Validity {
        use Validity::*;
        match (self, other) {
            (Invalid, _) | (_, Invalid) => Invalid,
            (Unknown, _) | (_, Unknown) => Unknown,
            _ => Valid,
        }
    }
}

impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Validity::Valid),
            Value::Bool(false) => Ok(Validity::Invalid),
            _ => Ok(Validity::Unknown),
        }
    }
}

/// How many times one anomaly was seen, with the first few instances.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Anomaly {
    pub count: u64,
    pub examples: Vec<Value>,
}

/// Outcome counts of one kind of operation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OpStats {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

/// What a checker concluded; serialized as `results.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Report {
    pub valid: Validity,
    pub workload: String,
    /// Per `f`, how operations ended (nemesis operations excluded).
    pub stats: BTreeMap<String, OpStats>,
    pub anomalies: BTreeMap<String, Anomaly>,
    /// Anomaly types that are reported but do not make the run invalid under these options
    /// (e.g. duplicates without idempotence).
    pub allowed: Vec<String>,
    /// Why the verdict is what it is, in words.
    pub notes: Vec<String>,
    /// Workload-specific figures (drain outcome, worst real-time lag, ...).
    pub extra: BTreeMap<String, Value>,
}

impl Report {
    /// A report for `workload` that knows every anomaly type in `types`, all at zero.
    pub fn new(workload: &str, types: &[&str]) -> Self {
        Report {
            valid: Validity::Valid,
            workload: workload.to_string(),
            stats: BTreeMap::new(),
            anomalies: types
                .iter()
                .map(|t| (t.to_string(), Anomaly::default()))
                .collect(),
            allowed: Vec::new(),
            notes: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// Records one instance of anomaly `kind`.
    pub fn add(&mut self, kind: &str, example: Value) {
        let a = self.anomalies.entry(kind.to_string()).or_default();
        a.count += 1;
        if a.examples.len() < MAX_EXAMPLES {
            a.examples.push(example);
        }
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.anomalies.get(kind).map_or(0, |a| a.count)
    }

    pub fn allow(&mut self, kind: &str) {
        self.allowed.push(kind.to_string());
    }

    /// Anomaly types with a non-zero count that are not allowed.
    pub fn found(&self) -> Vec<&str> {
        self.anomalies
            .iter()
            .filter(|(k, a)| a.count > 0 && !self.allowed.iter().any(|x| x == *k))
            .map(|(k, _)| k.as_str())
            .collect()
    }

    /// Sets the verdict from the anomalies: any one that is not allowed makes the run invalid.
    /// `unknown` set by the checker beforehand stays unless something is invalid.
    pub fn settle(&mut self) {
        if !self.found().is_empty() {
            self.valid = Validity::Invalid;
        }
    }

    /// Counts outcomes per `f` over client operations.
    pub fn count_ops(&mut self, ps: &[Pair<'_>]) {
        for p in ps.iter().filter(|p| !p.process().is_nemesis()) {
            let s = self.stats.entry(p.f().to_string()).or_default();
            match p.kind() {
                OpType::Ok => s.ok += 1,
                OpType::Fail => s.fail += 1,
                _ => s.info += 1,
            }
        }
    }

    /// One paragraph for a person.
    pub fn summary(&self) -> String {
        let verdict = match self.valid {
            Validity::Valid => "valid",
            Validity::Invalid => "INVALID",
            Validity::Unknown => "unknown",
        };
        let (ok, fail, info) = self
            .stats
            .values()
            .fold((0, 0, 0), |(o, f, i), s| (o + s.ok, f + s.fail, i + s.info));
        let mut s = format!(
            "{} workload: {verdict}. {ok} ops ok, {fail} failed, {info} indeterminate.",
            self.workload
        );
        let found: Vec<String> = self
            .anomalies
            .iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(k, a)| {
                let allowed = if self.allowed.contains(k) {
                    " (allowed)"
                } else {
                    ""
                };
                format!("{k} x{}{allowed}", a.count)
            })
            .collect();
        if found.is_empty() {
            s.push_str(" No anomalies.");
        } else {
            s.push_str(&format!(" Anomalies: {}.", found.join(", ")));
        }
        for n in &self.notes {
            s.push(' ');
            s.push_str(n);
        }
        s
    }
}

/// What the checkers need to know about how the run was configured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct CheckOptions {
    /// Producers were idempotent: a duplicate is a bug, not just a retry.
    pub idempotent: bool,
}

/// Runs the checker of `workload` over `history`.
pub fn check(workload: &str, history: &[Op], opts: &CheckOptions) -> Result<Report> {
    let ps = pairs(history)?;
    let mut report = match workload {
        "queue" => queue::check(&ps, opts),
        "list-append" => list_append::check(&ps),
        "group-offsets" => group_offsets::check(&ps),
        "metadata" => metadata::check(&ps),
        other => bail!("unknown workload {other:?}"),
    };
    report.count_ops(&ps);
    report
        .extra
        .insert("faults".into(), json!(fault_count(&ps)));
    // A run in which no worker operation succeeded proves nothing either way.
    let worker_ok = ps
        .iter()
        .any(|p| matches!(p.process(), Process::Worker(_)) && p.is_ok());
    if !worker_ok && report.valid == Validity::Valid {
        report.valid = Validity::Unknown;
        report
            .notes
            .push("No worker operation succeeded: nothing was tested.".into());
    }
    Ok(report)
}

/// How many faults the nemesis started.
fn fault_count(ps: &[Pair<'_>]) -> usize {
    ps.iter()
        .filter(|p| p.process().is_nemesis() && p.f().starts_with("start-"))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity_serializes_as_jepsen_does() {
        assert_eq!(serde_json::to_string(&Validity::Valid).unwrap(), "true");
        assert_eq!(serde_json::to_string(&Validity::Invalid).unwrap(), "false");
        assert_eq!(
            serde_json::to_string(&Validity::Unknown).unwrap(),
            "\"unknown\""
        );
        assert_eq!(Validity::Valid.and(Validity::Unknown), Validity::Unknown);
        assert_eq!(Validity::Unknown.and(Validity::Invalid), Validity::Invalid);
    }

    #[test]
    fn examples_are_capped_but_counts_are_not() {
        let mut r = Report::new("queue", &["lost-write", "unseen"]);
        for i in 0..100 {
            r.add("lost-write", json!(i));
        }
        assert_eq!(r.count("lost-write"), 100);
        assert_eq!(r.anomalies["lost-write"].examples.len(), MAX_EXAMPLES);
        assert_eq!(r.count("unseen"), 0);
        let text = serde_json::to_value(&r).unwrap();
        assert_eq!(
            text["anomalies"]["unseen"]["count"], 0,
            "zeros are reported"
        );
        r.settle();
        assert_eq!(r.valid, Validity::Invalid);
    }

    #[test]
    fn a_run_without_successful_operations_is_unknown() {
        let mut b = crate::history::Builder::new();
        b.invoke(0, "send", json!([{"f": "send", "key": 0, "value": 0}]))
            .info(
                0,
                "send",
                json!([{"f": "send", "key": 0, "value": 0}]),
                "timeout",
            );
        let r = check("queue", &b.ops, &CheckOptions::default()).unwrap();
        assert_eq!(r.valid, Validity::Unknown, "{}", r.summary());
    }
}
