//! The group-offsets checker: committed consumer-group offsets must behave like a durable,
//! monotonic register, and consumers resuming from them must neither skip nor lose records.
//!
//! Operations (every value names its consumer group `group` and key `key`):
//! - `send`: as in the queue workload, `{"key":k,"value":v}`, ok adds `"offset":o`;
//! - `poll`: ok `{"group":g,"records":{"k":[[o,v],...]}}`;
//! - `commit`: `{"group":g,"key":k,"offset":c}` (the next offset to read, `max polled + 1`);
//! - `fetch-committed`: ok `{"group":g,"key":k,"offset":c}` (`null` when nothing is committed);
//! - `resume`: ok `{"group":g,"key":k,"offset":c}`: a fresh consumer starts from the committed
//!   offset `c` (`null`: from the beginning); its next poll of the key is checked against it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;

use super::Report;
use crate::history::{OpType, Pair, Process};

pub const TYPES: &[&str] = &[
    "lost-commit",
    "committed-regression",
    "phantom-commit",
    "resume-skip",
    "group-gap",
];

#[derive(Deserialize)]
struct Send {
    key: u32,
    offset: Option<i64>,
}

#[derive(Deserialize)]
struct Poll {
    group: String,
    #[serde(default)]
    records: BTreeMap<u32, Vec<(i64, u64)>>,
}

#[derive(Deserialize)]
struct Committed {
    group: String,
    key: u32,
    offset: Option<i64>,
}

type GroupKey = (String, u32);

/// Values with the time they became known, for "the highest one known before time t".
#[derive(Default)]
struct Timeline(Vec<(u64, i64, u64)>);

impl Timeline {
    fn push(&mut self, time: u64, value: i64, index: u64) {
        self.0.push((time, value, index));
    }

    /// The highest value whose time is before `t`, with its op index.
    fn max_before(&self, t: u64) -> Option<(i64, u64)> {
        self.0
            .iter()
            .filter(|(time, _, _)| *time < t)
            .map(|(_, v, i)| (*v, *i))
            .max()
    }
}

pub fn check(ps: &[Pair<'_>]) -> Report {
    let mut r = Report::new("group-offsets", TYPES);
    // Offsets known to exist per key (acknowledged sends and polls).
    let mut known: HashMap<u32, BTreeSet<i64>> = HashMap::new();
    let mut consumed: HashMap<GroupKey, HashSet<i64>> = HashMap::new();
    let mut ok_commits: HashMap<GroupKey, Timeline> = HashMap::new();
    let mut proposed: HashMap<GroupKey, HashSet<i64>> = HashMap::new();
    let mut fetches: Vec<(&Pair<'_>, GroupKey, Option<i64>)> = Vec::new();
    for p in ps {
        let v = p.value().clone();
        match p.f() {
            "send" if p.is_ok() => {
                if let Ok(Send {
                    key,
                    offset: Some(o),
                }) = serde_json::from_value(v)
                {
                    known.entry(key).or_default().insert(o);
                }
            }
            "poll" if p.is_ok() => {
                if let Ok(poll) = serde_json::from_value::<Poll>(v) {
                    for (key, recs) in poll.records {
                        let c = consumed.entry((poll.group.clone(), key)).or_default();
                        for (o, _) in recs {
                            known.entry(key).or_default().insert(o);
                            c.insert(o);
                        }
                    }
                }
            }
            "commit" => {
                if let Ok(Committed {
                    group,
                    key,
                    offset: Some(c),
                }) = serde_json::from_value(v)
                {
                    // Any attempted commit may have landed, so any may be read back.
                    proposed.entry((group.clone(), key)).or_default().insert(c);
                    if p.is_ok() {
                        ok_commits.entry((group, key)).or_default().push(
                            p.complete_time(),
                            c,
                            p.invoke.index,
                        );
                    }
                }
            }
            // A resume reads the committed offset too: it is held to the same rules.
            "fetch-committed" | "resume" if p.is_ok() => {
                if let Ok(c) = serde_json::from_value::<Committed>(v) {
                    fetches.push((p, (c.group, c.key), c.offset));
                }
            }
            _ => {}
        }
    }

    // Fetches of committed offsets against acknowledged commits and earlier fetches.
    let mut seen_fetches: HashMap<GroupKey, Timeline> = HashMap::new();
    for (p, gk, c) in &fetches {
        if let Some(c) = c {
            seen_fetches
                .entry(gk.clone())
                .or_default()
                .push(p.complete_time(), *c, p.invoke.index);
        }
    }
    for (p, gk, c) in &fetches {
        let got = c.unwrap_or(-1);
        let (group, key) = gk;
        if let Some((acked, at)) = ok_commits
            .get(gk)
            .and_then(|t| t.max_before(p.invoke_time()))
        {
            if got < acked {
                r.add(
                    "lost-commit",
                    json!({"group": group, "key": key, "fetched": c, "committed": acked, "commit-op": at, "fetch": p.describe()}),
                );
            }
        }
        if let Some((earlier, at)) = seen_fetches
            .get(gk)
            .and_then(|t| t.max_before(p.invoke_time()))
        {
            // A commit that may still have been in flight explains going back to its value.
            let late_commit = proposed.get(gk).is_some_and(|s| s.contains(&got));
            if got < earlier && !(late_commit && is_indeterminate_commit(ps, gk, got)) {
                r.add(
                    "committed-regression",
                    json!({"group": group, "key": key, "fetched": c, "earlier-fetch": earlier, "earlier-op": at, "fetch": p.describe()}),
                );
            }
        }
        if let Some(c) = c {
            let high_watermark = known
                .get(key)
                .and_then(|s| s.iter().next_back())
                .map_or(0, |o| o + 1);
            let nobody = !proposed.get(gk).is_some_and(|s| s.contains(c));
            if nobody || *c > high_watermark {
                r.add(
                    "phantom-commit",
                    json!({"group": group, "key": key, "fetched": c, "high-watermark": high_watermark, "ever-committed": !nobody, "fetch": p.describe()}),
                );
            }
        }
    }

    // A resumed consumer's first poll of its key must start at the first offset >= c.
    let mut resumed: HashMap<(&Process, u32), (i64, u64)> = HashMap::new();
    for p in ps.iter().filter(|p| p.is_ok()) {
        match p.f() {
            "resume" => {
                if let Ok(c) = serde_json::from_value::<Committed>(p.value().clone()) {
                    resumed.insert(
                        (p.process(), c.key),
                        (c.offset.unwrap_or(0), p.invoke.index),
                    );
                }
            }
            "poll" => {
                let Ok(poll) = serde_json::from_value::<Poll>(p.value().clone()) else {
                    continue;
                };
                for (key, recs) in &poll.records {
                    let Some(&(first, _)) = recs.first() else {
                        continue;
                    };
                    let Some((c, at)) = resumed.remove(&(p.process(), *key)) else {
                        continue;
                    };
                    let expected = known.get(key).and_then(|s| s.range(c..).next().copied());
                    if expected.is_some_and(|e| e < first) {
                        r.add(
                            "resume-skip",
                            json!({"group": poll.group, "key": key, "resumed-at": c, "expected": expected, "first-polled": first, "resume-op": at, "poll": p.describe()}),
                        );
                    }
                }
            }
            _ => {}
        }
    }

    // Everything below the highest acknowledged commit must have been consumed by the group.
    for (gk, commits) in &ok_commits {
        let Some(&(_, top, at)) = commits.0.iter().max_by_key(|(_, c, _)| *c) else {
            continue;
        };
        let none = HashSet::new();
        let got = consumed.get(gk).unwrap_or(&none);
        let missing: Vec<i64> = known
            .get(&gk.1)
            .map(|s| {
                s.range(..top)
                    .filter(|o| !got.contains(o))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        if !missing.is_empty() {
            r.add(
                "group-gap",
                json!({"group": gk.0, "key": gk.1, "committed": top, "commit-op": at, "never-consumed": missing}),
            );
        }
    }
    r.settle();
    r
}

/// Did a commit of `offset` for `gk` end without a definite outcome?
fn is_indeterminate_commit(ps: &[Pair<'_>], gk: &GroupKey, offset: i64) -> bool {
    ps.iter().any(|p| {
        p.f() == "commit"
            && p.kind() == OpType::Info
            && serde_json::from_value::<Committed>(p.value().clone())
                .is_ok_and(|c| c.group == gk.0 && c.key == gk.1 && c.offset == Some(offset))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check as run_check, CheckOptions, Validity};
    use crate::history::Builder;

    fn send(b: &mut Builder, v: u64, o: i64) {
        b.done(
            0,
            "send",
            json!({"key": 0, "value": v}),
            json!({"key": 0, "value": v, "offset": o}),
        );
    }

    fn poll(b: &mut Builder, p: u64, recs: &[(i64, u64)]) {
        b.done(
            p,
            "poll",
            json!({"group": "g"}),
            json!({"group": "g", "records": {"0": recs}}),
        );
    }

    fn commit(b: &mut Builder, p: u64, c: i64) {
        let v = json!({"group": "g", "key": 0, "offset": c});
        b.done(p, "commit", v.clone(), v);
    }

    fn fetch(b: &mut Builder, p: u64, c: Option<i64>) {
        b.done(
            p,
            "fetch-committed",
            json!({"group": "g", "key": 0}),
            json!({"group": "g", "key": 0, "offset": c}),
        );
    }

    fn resume(b: &mut Builder, p: u64, c: Option<i64>) {
        let v = json!({"group": "g", "key": 0, "offset": c});
        b.done(p, "resume", v.clone(), v);
    }

    fn report(b: &Builder) -> Report {
        run_check("group-offsets", &b.ops, &CheckOptions::default()).unwrap()
    }

    /// Four records; consumer 1 reads two and commits 2, crashes; consumer 2 resumes at 2.
    fn clean() -> Builder {
        let mut b = Builder::new();
        for (v, o) in [(1, 0), (2, 1), (3, 2), (4, 3)] {
            send(&mut b, v, o);
        }
        resume(&mut b, 1, None);
        poll(&mut b, 1, &[(0, 1), (1, 2)]);
        commit(&mut b, 1, 2);
        fetch(&mut b, 1, Some(2));
        b.invoke(1, "crash", json!(null))
            .info(1, "crash", json!(null), "crash");
        resume(&mut b, 2, Some(2));
        poll(&mut b, 2, &[(2, 3), (3, 4)]);
        commit(&mut b, 2, 4);
        fetch(&mut b, 2, Some(4));
        b
    }

    #[test]
    fn clean_group_history_is_valid() {
        let r = report(&clean());
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
    }

    #[test]
    fn lost_commit_and_regression() {
        let mut b = clean();
        fetch(&mut b, 3, Some(2));
        let r = report(&b);
        assert_eq!(r.count("lost-commit"), 1, "{}", r.summary());
        assert_eq!(r.count("committed-regression"), 1);
        assert_eq!(r.valid, Validity::Invalid);
    }

    #[test]
    fn regression_explained_by_an_indeterminate_commit_is_not_reported() {
        let mut b = Builder::new();
        for (v, o) in [(1, 0), (2, 1), (3, 2), (4, 3)] {
            send(&mut b, v, o);
        }
        poll(&mut b, 1, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
        for (p, c) in [(1, 4), (2, 3)] {
            let v = json!({"group": "g", "key": 0, "offset": c});
            b.invoke(p, "commit", v.clone())
                .info(p, "commit", v, "timeout");
            fetch(&mut b, 3, Some(c));
        }
        let r = report(&b);
        assert_eq!(r.count("committed-regression"), 0, "{}", r.summary());
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
    }

    #[test]
    fn a_resume_below_an_acknowledged_commit_is_a_lost_commit() {
        let mut b = clean();
        resume(&mut b, 3, Some(2));
        let r = report(&b);
        assert_eq!(r.count("lost-commit"), 1, "{}", r.summary());
        assert_eq!(r.count("committed-regression"), 1);
    }

    #[test]
    fn phantom_commit() {
        let mut b = clean();
        fetch(&mut b, 3, Some(7));
        let r = report(&b);
        assert_eq!(r.count("phantom-commit"), 1, "{}", r.summary());
        assert_eq!(r.valid, Validity::Invalid);
    }

    #[test]
    fn resume_skip() {
        let mut b = clean();
        send(&mut b, 5, 4);
        send(&mut b, 6, 5);
        resume(&mut b, 3, Some(4));
        poll(&mut b, 3, &[(5, 6)]);
        let r = report(&b);
        assert_eq!(r.count("resume-skip"), 1, "{}", r.summary());
    }

    #[test]
    fn group_gap() {
        let mut b = Builder::new();
        for (v, o) in [(1, 0), (2, 1), (3, 2)] {
            send(&mut b, v, o);
        }
        poll(&mut b, 1, &[(0, 1)]);
        commit(&mut b, 1, 3);
        let r = report(&b);
        assert_eq!(r.count("group-gap"), 1, "{}", r.summary());
        assert_eq!(r.valid, Validity::Invalid);
    }
}
