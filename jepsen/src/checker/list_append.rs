//! The list-append checker: a partition read from the beginning is a list, and appends only grow
//! it.
//!
//! Operations: `append` (invoke `{"key":k,"value":v}`, ok adds `"offset":o`) and `read` (invoke
//! `{"key":k}`, ok `{"key":k,"values":[v,...]}`, everything from the beginning up to the latest
//! offset at the time of the read). Every read of a key must be a prefix of the longest read of
//! it, contain every append acknowledged before the read began, and hold no value twice and no
//! value whose append definitely failed.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;

use super::Report;
use crate::history::{OpType, Pair};

pub const TYPES: &[&str] = &[
    "nonprefix-read",
    "missing-append",
    "duplicate-in-read",
    "failed-append-read",
];

#[derive(Deserialize)]
struct Append {
    key: u32,
    value: u64,
}

#[derive(Deserialize)]
struct Read {
    key: u32,
    #[serde(default)]
    values: Vec<u64>,
}

pub fn check(ps: &[Pair<'_>]) -> Report {
    let mut r = Report::new("list-append", TYPES);
    // Per key: acknowledged appends (value, completion time), failed values, ok reads.
    let mut acked: BTreeMap<u32, Vec<(u64, u64)>> = BTreeMap::new();
    let mut failed: HashMap<u32, HashSet<u64>> = HashMap::new();
    let mut reads: BTreeMap<u32, Vec<(&Pair<'_>, Vec<u64>)>> = BTreeMap::new();
    for p in ps {
        match p.f() {
            "append" => {
                let Ok(a) = serde_json::from_value::<Append>(p.value().clone()) else {
                    continue;
                };
                match p.kind() {
                    OpType::Ok => acked
                        .entry(a.key)
                        .or_default()
                        .push((a.value, p.complete_time())),
                    OpType::Fail => {
                        failed.entry(a.key).or_default().insert(a.value);
                    }
                    _ => {}
                }
            }
            "read" if p.is_ok() => {
                if let Ok(rd) = serde_json::from_value::<Read>(p.value().clone()) {
                    reads.entry(rd.key).or_default().push((p, rd.values));
                }
            }
            _ => {}
        }
    }

    for (key, rs) in &reads {
        // The first of the longest reads: when two reads disagree, the earlier one is taken
        // as the reference and the later one is reported.
        let longest = rs.iter().fold(Vec::new(), |best: Vec<u64>, (_, v)| {
            if v.len() > best.len() {
                v.clone()
            } else {
                best
            }
        });
        let no_acks = Vec::new();
        let acks = acked.get(key).unwrap_or(&no_acks);
        let no_fails = HashSet::new();
        let fails = failed.get(key).unwrap_or(&no_fails);
        for (p, values) in rs {
            if let Some(i) = values.iter().zip(&longest).position(|(a, b)| a != b) {
                r.add(
                    "nonprefix-read",
                    json!({"key": key, "index": i, "read": values[i], "longest": longest[i], "op": p.describe()}),
                );
            }
            let seen: HashSet<u64> = values.iter().copied().collect();
            let missing: Vec<u64> = acks
                .iter()
                .filter(|(v, t)| *t < p.invoke_time() && !seen.contains(v))
                .map(|(v, _)| *v)
                .collect();
            if !missing.is_empty() {
                r.add(
                    "missing-append",
                    json!({"key": key, "missing": missing, "op": p.describe()}),
                );
            }
            if seen.len() < values.len() {
                let mut counted = HashSet::new();
                let dups: Vec<u64> = values
                    .iter()
                    .filter(|v| !counted.insert(**v))
                    .copied()
                    .collect();
                r.add(
                    "duplicate-in-read",
                    json!({"key": key, "values": dups, "op": p.describe()}),
                );
            }
            let bad: Vec<u64> = values
                .iter()
                .filter(|v| fails.contains(v))
                .copied()
                .collect();
            if !bad.is_empty() {
                r.add(
                    "failed-append-read",
                    json!({"key": key, "values": bad, "op": p.describe()}),
                );
            }
        }
    }
    r.settle();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check as run_check, CheckOptions, Validity};
    use crate::history::Builder;

    fn append(b: &mut Builder, p: u64, v: u64, ok: bool) {
        b.invoke(p, "append", json!({"key": 0, "value": v}));
        if ok {
            b.ok(p, "append", json!({"key": 0, "value": v, "offset": v}));
        } else {
            b.fail(p, "append", json!({"key": 0, "value": v}), "unknown-topic");
        }
    }

    fn read(b: &mut Builder, p: u64, values: &[u64]) {
        b.invoke(p, "read", json!({"key": 0}))
            .ok(p, "read", json!({"key": 0, "values": values}));
    }

    fn report(b: &Builder) -> Report {
        run_check("list-append", &b.ops, &CheckOptions::default()).unwrap()
    }

    fn clean() -> Builder {
        let mut b = Builder::new();
        append(&mut b, 0, 1, true);
        read(&mut b, 1, &[1]);
        append(&mut b, 0, 2, true);
        read(&mut b, 1, &[1, 2]);
        b
    }

    #[test]
    fn clean_reads_are_valid() {
        let r = report(&clean());
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
        assert_eq!(r.anomalies.len(), TYPES.len());
    }

    #[test]
    fn each_violation_is_told_apart() {
        let cases: [(&[u64], &str); 3] = [
            (&[2, 1], "nonprefix-read"),
            (&[1], "missing-append"),
            (&[1, 2, 2], "duplicate-in-read"),
        ];
        for (values, kind) in cases {
            let mut b = clean();
            read(&mut b, 2, values);
            let r = report(&b);
            assert_eq!(r.count(kind), 1, "{kind}: {}", r.summary());
            assert_eq!(r.valid, Validity::Invalid);
        }
        let mut b = clean();
        append(&mut b, 0, 3, false);
        read(&mut b, 2, &[1, 2, 3]);
        let r = report(&b);
        assert_eq!(r.count("failed-append-read"), 1, "{}", r.summary());
        assert_eq!(r.count("nonprefix-read"), 0);
    }
}
