//! The queue checker, after Jepsen's Kafka workload.
//!
//! Keys map to topic-partitions and every value sent to a key is unique, so each record can be
//! followed from its send to every poll that saw it. Operations carry micro-operations:
//!
//! - send: invoke `[{"f":"send","key":k,"value":v}]`, ok adds `"offset":o`;
//! - poll: invoke `[{"f":"poll"}]`, ok `[{"f":"poll","records":{"k":[[o,v],...]}}]`;
//! - `assign` (the consumer was repositioned, so its poll order starts over), `crash`;
//! - one `drain` op at the end (process `drain`) whose value says whether the final drain
//!   reached every key's highest acknowledged offset (`{"complete": bool}`).
//!
//! From sends and polls the checker builds each key's version order (offset -> values) and looks
//! for the anomalies in [`TYPES`]; see JEPSEN.md for what each one means.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{CheckOptions, Report, Validity};
use crate::history::{OpType, Pair, Process};

pub const TYPES: &[&str] = &[
    "lost-write",
    "unseen",
    "duplicate",
    "inconsistent-offsets",
    "wrong-send-offset",
    "aborted-read",
    "poll-skip",
    "int-poll-skip",
    "nonmonotonic-poll",
    "int-nonmonotonic-poll",
    "nonmonotonic-send",
    "int-nonmonotonic-send",
];

pub type Key = u32;
pub type Offset = i64;
pub type Val = u64;

/// A micro-operation of the queue workload.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum Mop {
    Send {
        key: Key,
        value: Val,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        offset: Option<Offset>,
    },
    Poll {
        /// Keyed by the key as a string: JSON object keys are strings, and serde cannot turn
        /// them into integers inside an internally tagged enum.
        #[serde(default)]
        records: BTreeMap<String, Vec<(Offset, Val)>>,
    },
}

/// The records of a poll by numeric key (keys that are not numbers are skipped).
pub fn by_key(records: BTreeMap<String, Vec<(Offset, Val)>>) -> Vec<(Key, Vec<(Offset, Val)>)> {
    records
        .into_iter()
        .filter_map(|(k, v)| k.parse().ok().map(|k| (k, v)))
        .collect()
}

/// The micro-operations of a send or poll, or none for anything else.
pub fn mops(p: &Pair<'_>) -> Vec<Mop> {
    if p.f() != "send" && p.f() != "poll" {
        return Vec::new();
    }
    serde_json::from_value(p.value().clone()).unwrap_or_default()
}

#[derive(Default)]
struct KeyState {
    /// Version order: offset -> values seen there (by acknowledged sends and polls).
    at: BTreeMap<Offset, BTreeSet<Val>>,
    /// Value -> offsets it was seen at.
    offsets_of: HashMap<Val, BTreeSet<Offset>>,
    /// Acknowledged sends: value -> (offset, completion time, op example).
    acked: BTreeMap<Val, (Offset, u64, Value)>,
    polled: HashSet<Val>,
    max_polled: Option<Offset>,
    /// (poll completion time, highest offset that poll read), for real-time lag.
    poll_times: Vec<(u64, Offset)>,
}

impl KeyState {
    fn observe(&mut self, offset: Offset, value: Val) {
        self.at.entry(offset).or_default().insert(value);
        self.offsets_of.entry(value).or_default().insert(offset);
    }

    /// Is some known offset strictly between `a` and `b`?
    fn known_between(&self, a: Offset, b: Offset) -> Option<Offset> {
        if b <= a + 1 {
            return None;
        }
        self.at.range(a + 1..b).next().map(|(o, _)| *o)
    }
}

pub fn check(ps: &[Pair<'_>], opts: &CheckOptions) -> Report {
    let mut r = Report::new("queue", TYPES);
    if !opts.idempotent {
        // Without idempotence a retried send legitimately lands twice.
        r.allow("duplicate");
    }
    let mut keys: BTreeMap<Key, KeyState> = BTreeMap::new();
    let mut failed: HashMap<(Key, Val), Value> = HashMap::new();

    // Pass 1: the version order, from acknowledged sends and successful polls.
    for p in ps {
        for m in mops(p) {
            match m {
                Mop::Send { key, value, offset } => match (p.kind(), offset) {
                    (OpType::Ok, Some(o)) => {
                        let k = keys.entry(key).or_default();
                        k.observe(o, value);
                        k.acked.insert(value, (o, p.complete_time(), p.describe()));
                    }
                    (OpType::Fail, _) => {
                        failed.insert((key, value), p.describe());
                    }
                    _ => {}
                },
                Mop::Poll { records } if p.is_ok() => {
                    for (key, recs) in by_key(records) {
                        let k = keys.entry(key).or_default();
                        let mut top = None;
                        for (o, v) in recs {
                            k.observe(o, v);
                            k.polled.insert(v);
                            k.max_polled = k.max_polled.max(Some(o));
                            top = top.max(Some(o));
                        }
                        if let Some(top) = top {
                            k.poll_times.push((p.complete_time(), top));
                        }
                    }
                }
                Mop::Poll { .. } => {}
            }
        }
    }

    // Pass 2: anomalies of the version order itself.
    for (key, k) in &keys {
        for (o, vs) in &k.at {
            if vs.len() > 1 {
                r.add(
                    "inconsistent-offsets",
                    json!({"key": key, "offset": o, "values": vs}),
                );
            }
        }
        for (v, os) in &k.offsets_of {
            if os.len() > 1 {
                r.add("duplicate", json!({"key": key, "value": v, "offsets": os}));
            }
        }
        for (v, (o, _, op)) in &k.acked {
            let there = k.at.get(o).cloned().unwrap_or_default();
            if there.iter().any(|x| x != v) {
                r.add(
                    "wrong-send-offset",
                    json!({"key": key, "value": v, "offset": o, "values-at-offset": there, "op": op}),
                );
            }
            if k.polled.contains(v) {
                continue;
            }
            if k.max_polled.is_some_and(|m| *o < m) {
                r.add(
                    "lost-write",
                    json!({"key": key, "value": v, "offset": o, "max-polled-offset": k.max_polled, "op": op}),
                );
            } else {
                r.add(
                    "unseen",
                    json!({"key": key, "value": v, "offset": o, "op": op}),
                );
            }
        }
        for v in &k.polled {
            if let Some(op) = failed.get(&(*key, *v)) {
                r.add(
                    "aborted-read",
                    json!({"key": key, "value": v, "offsets": k.offsets_of.get(v), "send": op}),
                );
            }
        }
    }

    // Pass 3: order as each process saw it.
    let mut last_poll: HashMap<(&Process, Key), (Offset, u64)> = HashMap::new();
    let mut last_send: HashMap<(&Process, Key), (Offset, u64)> = HashMap::new();
    for p in ps {
        let proc_ = p.process();
        if p.f() == "assign" || p.f() == "crash" {
            last_poll.retain(|(q, _), _| *q != proc_);
            continue;
        }
        if !p.is_ok() {
            continue;
        }
        let idx = p.invoke.index;
        let mut sent_here: HashMap<Key, Offset> = HashMap::new();
        for m in mops(p) {
            match m {
                Mop::Send {
                    key,
                    offset: Some(o),
                    ..
                } => {
                    if let Some(prev) = sent_here.insert(key, o) {
                        if o <= prev {
                            r.add(
                                "int-nonmonotonic-send",
                                json!({"key": key, "offsets": [prev, o], "op": p.describe()}),
                            );
                        }
                    } else if let Some((prev, at)) = last_send.get(&(proc_, key)) {
                        if o <= *prev {
                            r.add(
                                "nonmonotonic-send",
                                json!({"key": key, "process": proc_, "offsets": [prev, o], "ops": [at, idx]}),
                            );
                        }
                    }
                    last_send.insert((proc_, key), (o, idx));
                }
                Mop::Send { .. } => {}
                Mop::Poll { records } => {
                    for (key, recs) in by_key(records) {
                        let Some(k) = keys.get(&key) else { continue };
                        let Some(&(first, _)) = recs.first() else {
                            continue;
                        };
                        if let Some(&(prev, at)) = last_poll.get(&(proc_, key)) {
                            if first <= prev {
                                r.add(
                                    "nonmonotonic-poll",
                                    json!({"key": key, "process": proc_, "offsets": [prev, first], "ops": [at, idx]}),
                                );
                            } else if let Some(skipped) = k.known_between(prev, first) {
                                r.add(
                                    "poll-skip",
                                    json!({"key": key, "process": proc_, "offsets": [prev, first], "skipped": skipped, "ops": [at, idx]}),
                                );
                            }
                        }
                        for w in recs.windows(2) {
                            let (a, b) = (w[0].0, w[1].0);
                            if b <= a {
                                r.add(
                                    "int-nonmonotonic-poll",
                                    json!({"key": key, "offsets": [a, b], "op": p.describe()}),
                                );
                            } else if let Some(skipped) = k.known_between(a, b) {
                                r.add(
                                    "int-poll-skip",
                                    json!({"key": key, "offsets": [a, b], "skipped": skipped, "op": p.describe()}),
                                );
                            }
                        }
                        if let Some(&(last, _)) = recs.last() {
                            last_poll.insert((proc_, key), (last, idx));
                        }
                    }
                }
            }
        }
    }

    // Real-time lag: from a send's acknowledgement to the first poll that reached its offset.
    let mut worst: Option<(u64, Key, Offset)> = None;
    for (key, k) in keys.iter_mut() {
        k.poll_times.sort_unstable();
        // Suffix minimum of times is not needed: walk polls in time order, keep the running
        // highest offset, and answer each send with the first poll whose running max covers it.
        let mut running = Vec::with_capacity(k.poll_times.len());
        let mut hi = Offset::MIN;
        for &(t, o) in &k.poll_times {
            hi = hi.max(o);
            running.push((t, hi));
        }
        for (o, t_ack, _) in k.acked.values() {
            let i = running.partition_point(|(_, hi)| hi < o);
            if let Some(&(t_seen, _)) = running.get(i) {
                let lag = t_seen.saturating_sub(*t_ack);
                if worst.is_none_or(|(w, _, _)| lag > w) {
                    worst = Some((lag, *key, *o));
                }
            }
        }
    }
    if let Some((lag, key, offset)) = worst {
        r.extra.insert(
            "worst-realtime-lag".into(),
            json!({"ms": lag as f64 / 1e6, "key": key, "offset": offset}),
        );
    }

    // Unseen writes are only a verdict once the final drain read everything it could.
    let drain = ps.iter().rev().find(|p| p.f() == "drain");
    let drain_complete = drain.map(|d| d.is_ok() && d.value()["complete"] == json!(true));
    if let Some(d) = drain {
        r.extra.insert("drain".into(), d.value().clone());
    }
    let unseen = r.count("unseen");
    if unseen > 0 && drain_complete == Some(false) {
        r.allow("unseen");
        r.valid = Validity::Unknown;
        r.notes.push(format!(
            "{unseen} acknowledged writes were not read, but the final drain did not finish."
        ));
    }
    r.settle();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::check as run_check;
    use crate::history::Builder;

    fn send(b: &mut Builder, p: u64, key: Key, value: Val, offset: Option<Offset>) {
        b.invoke(
            p,
            "send",
            json!([{"f": "send", "key": key, "value": value}]),
        );
        match offset {
            Some(o) => b.ok(
                p,
                "send",
                json!([{"f": "send", "key": key, "value": value, "offset": o}]),
            ),
            None => b.fail(
                p,
                "send",
                json!([{"f": "send", "key": key, "value": value}]),
                "unknown-topic",
            ),
        };
    }

    fn poll(b: &mut Builder, p: u64, key: Key, recs: &[(Offset, Val)]) {
        b.invoke(p, "poll", json!([{"f": "poll"}])).ok(
            p,
            "poll",
            json!([{"f": "poll", "records": {key.to_string(): recs}}]),
        );
    }

    fn report(b: &Builder, idempotent: bool) -> Report {
        run_check("queue", &b.ops, &CheckOptions { idempotent }).unwrap()
    }

    fn only(r: &Report, kind: &str) {
        let found: Vec<_> = r
            .anomalies
            .iter()
            .filter(|(_, a)| a.count > 0)
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(found, vec![kind], "{}", r.summary());
    }

    /// Three sends to key 0 and two polls that read them in order.
    fn clean() -> Builder {
        let mut b = Builder::new();
        send(&mut b, 0, 0, 1, Some(0));
        send(&mut b, 0, 0, 2, Some(1));
        poll(&mut b, 1, 0, &[(0, 1), (1, 2)]);
        send(&mut b, 0, 0, 3, Some(2));
        poll(&mut b, 1, 0, &[(2, 3)]);
        b
    }

    #[test]
    fn clean_history_is_valid_with_every_type_counted() {
        let r = report(&clean(), true);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
        for t in TYPES {
            assert_eq!(r.count(t), 0, "{t}");
        }
        assert_eq!(r.stats["send"].ok, 3);
        assert_eq!(r.stats["poll"].ok, 2);
        assert!(r.extra.contains_key("worst-realtime-lag"));
    }

    #[test]
    fn lost_write_below_the_highest_polled_offset() {
        let mut b = Builder::new();
        send(&mut b, 0, 0, 1, Some(0));
        send(&mut b, 0, 0, 2, Some(1));
        send(&mut b, 0, 0, 3, Some(2));
        poll(&mut b, 1, 0, &[(0, 1)]);
        // A fresh consumer that skips nothing it knows of, yet value 2 at offset 1 is gone.
        b.invoke(1, "assign", json!({"keys": [0]}))
            .ok(1, "assign", json!({"keys": [0]}));
        poll(&mut b, 1, 0, &[(2, 3)]);
        let r = report(&b, true);
        assert_eq!(r.count("lost-write"), 1, "{}", r.summary());
        assert_eq!(r.valid, Validity::Invalid);
    }

    #[test]
    fn unseen_is_invalid_after_a_complete_drain_and_unknown_otherwise() {
        let mut b = clean();
        send(&mut b, 0, 0, 4, Some(3));
        b.invoke("drain", "drain", json!(null))
            .ok("drain", "drain", json!({"complete": true}));
        let r = report(&b, true);
        only(&r, "unseen");
        assert_eq!(r.valid, Validity::Invalid);

        let mut b = clean();
        send(&mut b, 0, 0, 4, Some(3));
        b.invoke("drain", "drain", json!(null))
            .ok("drain", "drain", json!({"complete": false}));
        let r = report(&b, true);
        assert_eq!(r.count("unseen"), 1);
        assert_eq!(r.valid, Validity::Unknown, "{}", r.summary());
    }

    #[test]
    fn duplicate_is_allowed_only_without_idempotence() {
        let mut b = clean();
        poll(&mut b, 1, 0, &[(3, 3)]);
        let r = report(&b, true);
        assert!(r.count("duplicate") == 1, "{}", r.summary());
        assert_eq!(r.valid, Validity::Invalid);
        let r = report(&b, false);
        assert_eq!(r.count("duplicate"), 1);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
    }

    #[test]
    fn inconsistent_offsets_and_wrong_send_offset() {
        let mut b = Builder::new();
        send(&mut b, 0, 0, 1, Some(0));
        send(&mut b, 0, 0, 2, Some(1));
        // Offset 1 holds 7, which nobody acknowledged there.
        poll(&mut b, 1, 0, &[(0, 1), (1, 7)]);
        let r = report(&b, true);
        assert_eq!(r.count("inconsistent-offsets"), 1);
        assert_eq!(r.count("wrong-send-offset"), 1);
        assert_eq!(r.count("lost-write"), 0);
        assert_eq!(r.valid, Validity::Invalid);
    }

    #[test]
    fn aborted_read_of_a_failed_send() {
        let mut b = clean();
        send(&mut b, 0, 0, 9, None);
        poll(&mut b, 1, 0, &[(3, 9)]);
        only(&report(&b, true), "aborted-read");
    }

    #[test]
    fn poll_skip_across_polls_and_within_one() {
        let mut b = Builder::new();
        for (v, o) in [(1, 0), (2, 1), (3, 2), (4, 3)] {
            send(&mut b, 0, 0, v, Some(o));
        }
        poll(&mut b, 1, 0, &[(0, 1), (1, 2), (2, 3), (3, 4)]);
        poll(&mut b, 2, 0, &[(0, 1)]);
        poll(&mut b, 2, 0, &[(2, 3), (3, 4)]);
        only(&report(&b, true), "poll-skip");

        let mut b = Builder::new();
        for (v, o) in [(1, 0), (2, 1), (3, 2)] {
            send(&mut b, 0, 0, v, Some(o));
        }
        poll(&mut b, 1, 0, &[(0, 1), (1, 2), (2, 3)]);
        poll(&mut b, 2, 0, &[(0, 1), (2, 3)]);
        only(&report(&b, true), "int-poll-skip");
    }

    #[test]
    fn assign_resets_the_poll_order() {
        let mut b = clean();
        b.invoke(1, "assign", json!({"keys": [0]}))
            .ok(1, "assign", json!({"keys": [0]}));
        poll(&mut b, 1, 0, &[(0, 1), (1, 2)]);
        assert_eq!(report(&b, true).valid, Validity::Valid);
    }

    #[test]
    fn nonmonotonic_poll_across_polls_and_within_one() {
        let mut b = clean();
        poll(&mut b, 1, 0, &[(1, 2)]);
        only(&report(&b, true), "nonmonotonic-poll");

        let mut b = clean();
        poll(&mut b, 2, 0, &[(1, 2), (0, 1)]);
        only(&report(&b, true), "int-nonmonotonic-poll");
    }

    #[test]
    fn nonmonotonic_send_across_sends_and_within_one() {
        let mut b = Builder::new();
        send(&mut b, 0, 0, 1, Some(1));
        send(&mut b, 0, 0, 2, Some(0));
        poll(&mut b, 1, 0, &[(0, 2), (1, 1)]);
        only(&report(&b, true), "nonmonotonic-send");

        let mut b = Builder::new();
        b.invoke(0, "send", json!([{"f": "send", "key": 0, "value": 1}, {"f": "send", "key": 0, "value": 2}]))
            .ok(0, "send", json!([{"f": "send", "key": 0, "value": 1, "offset": 1}, {"f": "send", "key": 0, "value": 2, "offset": 0}]));
        poll(&mut b, 1, 0, &[(0, 2), (1, 1)]);
        only(&report(&b, true), "int-nonmonotonic-send");
    }

    #[test]
    fn indeterminate_sends_may_or_may_not_appear() {
        let mut b = clean();
        b.invoke(0, "send", json!([{"f": "send", "key": 0, "value": 4}]))
            .info(
                0,
                "send",
                json!([{"f": "send", "key": 0, "value": 4}]),
                "timeout",
            );
        b.invoke(2, "send", json!([{"f": "send", "key": 0, "value": 5}]))
            .info(
                2,
                "send",
                json!([{"f": "send", "key": 0, "value": 5}]),
                "timeout",
            );
        poll(&mut b, 1, 0, &[(3, 4)]);
        let r = report(&b, true);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
        assert_eq!(r.stats["send"].info, 2);
    }
}
