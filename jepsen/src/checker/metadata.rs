//! The metadata checker: topic creation and deletion through Raft must behave like one
//! linearizable register per topic name, and every node must end with the same topics.
//!
//! Operations (all name a topic from a small pool):
//! - `create`: `{"topic":t,"partitions":n}`, ok adds `"id"`; failing with
//!   `topic-already-exists` observes that the topic exists;
//! - `delete`: `{"topic":t}`; failing with `unknown-topic` observes that it does not;
//! - `describe`: ok `{"topic":t,"exists":bool,"partitions":n}`: recorded, but not part of the
//!   linearizability check: like Kafka's, each node answers Metadata from its own view, which
//!   may lag the Raft leader's (the final agreement is checked instead);
//! - `final-metadata` (process `final`): ok `{"nodes":{"1":{"t":{"partitions":n,"id":...}}}}`,
//!   each node's own view at the end, after healing.
//!
//! Linearizability is decided per topic name by a search over the orders the operations could
//! have taken effect in (Wing & Gong, with memoization as in Lowe's variant): the state is only
//! "exists or not", so the search is small unless many operations are indeterminate.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{Report, Validity};
use crate::history::{OpType, Pair};

pub const TYPES: &[&str] = &[
    "nonlinearizable",
    "metadata-divergence",
    "lost-create",
    "resurrected-topic",
];

/// States explored per topic before the search gives up and says `unknown`.
const SEARCH_BUDGET: usize = 200_000;

#[derive(Deserialize)]
struct TopicOp {
    topic: String,
    #[serde(default)]
    id: Option<String>,
}

/// A topic's description in one node's final view.
#[derive(Clone, Debug, PartialEq, Deserialize, serde::Serialize)]
pub struct TopicView {
    pub partitions: u32,
    #[serde(default)]
    pub id: Option<String>,
}

#[derive(Deserialize)]
struct FinalMetadata {
    nodes: BTreeMap<String, BTreeMap<String, TopicView>>,
}

/// What an operation does to the "topic exists" register.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Effect {
    /// Requires absent, makes it exist.
    Create,
    /// Requires existing, makes it absent.
    Delete,
    /// Requires this state, changes nothing.
    Observe(bool),
    /// Indeterminate create/delete: makes it exist/absent whatever it was (a create of an
    /// existing topic fails without effect, which ends in the same state).
    Set(bool),
}

#[derive(Clone, Debug)]
struct RegOp {
    effect: Effect,
    invoke: u64,
    /// `u64::MAX` for indeterminate operations: they may take effect at any later time.
    complete: u64,
    required: bool,
}

fn apply(effect: Effect, exists: bool) -> Option<bool> {
    match effect {
        Effect::Create => (!exists).then_some(true),
        Effect::Delete => exists.then_some(false),
        Effect::Observe(s) => (exists == s).then_some(exists),
        Effect::Set(s) => Some(s),
    }
}

/// `Some(true)` linearizable, `Some(false)` not, `None` the search ran out of budget.
fn linearizable(ops: &[RegOp], initial: bool) -> Option<bool> {
    let words = ops.len().div_ceil(64);
    let mut memo: HashSet<(Vec<u64>, bool)> = HashSet::new();
    // Depth-first over "which op takes effect next", with an explicit stack of (done set,
    // state, next candidate to try).
    let mut stack: Vec<(Vec<u64>, bool, usize)> = vec![(vec![0; words], initial, 0)];
    let is_done = |done: &[u64], i: usize| done[i / 64] & (1 << (i % 64)) != 0;
    while let Some((done, state, from)) = stack.pop() {
        let pending_required = ops
            .iter()
            .enumerate()
            .filter(|(i, o)| o.required && !is_done(&done, *i));
        let horizon = pending_required.clone().map(|(_, o)| o.complete).min();
        let Some(horizon) = horizon else {
            return Some(true);
        };
        // The next op to take effect must have been invoked before every pending op completed.
        for (i, op) in ops.iter().enumerate().skip(from) {
            if is_done(&done, i) || op.invoke >= horizon {
                continue;
            }
            let Some(next) = apply(op.effect, state) else {
                continue;
            };
            let mut d = done.clone();
            d[i / 64] |= 1 << (i % 64);
            if !memo.insert((d.clone(), next)) {
                continue;
            }
            if memo.len() > SEARCH_BUDGET {
                return None;
            }
            // Come back to this level for the candidates after i.
            stack.push((done, state, i + 1));
            stack.push((d, next, 0));
            break;
        }
    }
    Some(false)
}

pub fn check(ps: &[Pair<'_>]) -> Report {
    let mut r = Report::new("metadata", TYPES);
    let mut by_topic: BTreeMap<String, Vec<(&Pair<'_>, RegOp)>> = BTreeMap::new();
    for p in ps {
        let Ok(t) = serde_json::from_value::<TopicOp>(p.value().clone()) else {
            continue;
        };
        let err = p.complete.and_then(|c| c.error.as_deref()).unwrap_or("");
        let effect = match (p.f(), p.kind()) {
            ("create", OpType::Ok) => Effect::Create,
            ("create", OpType::Fail) if err == "topic-already-exists" => Effect::Observe(true),
            ("create", OpType::Info) => Effect::Set(true),
            ("delete", OpType::Ok) => Effect::Delete,
            ("delete", OpType::Fail) if err == "unknown-topic" => Effect::Observe(false),
            ("delete", OpType::Info) => Effect::Set(false),
            _ => continue,
        };
        let required = p.kind() != OpType::Info;
        by_topic.entry(t.topic).or_default().push((
            p,
            RegOp {
                effect,
                invoke: p.invoke_time(),
                complete: if required {
                    p.complete_time()
                } else {
                    u64::MAX
                },
                required,
            },
        ));
    }

    let mut undecided = Vec::new();
    for (topic, ops) in &by_topic {
        let reg: Vec<RegOp> = ops.iter().map(|(_, o)| o.clone()).collect();
        match linearizable(&reg, false) {
            Some(true) => {}
            Some(false) => {
                let history: Vec<Value> = ops.iter().take(64).map(|(p, _)| p.describe()).collect();
                r.add(
                    "nonlinearizable",
                    json!({"topic": topic, "ops": ops.len(), "history": history}),
                );
            }
            None => undecided.push(topic.clone()),
        }
    }

    match ps
        .iter()
        .rev()
        .find(|p| p.f() == "final-metadata" && p.is_ok())
        .and_then(|p| serde_json::from_value::<FinalMetadata>(p.value().clone()).ok())
    {
        Some(fin) => check_final(&mut r, ps, &fin),
        None => r
            .notes
            .push("No final metadata in the history: end state not checked.".into()),
    }

    if !undecided.is_empty() {
        r.valid = Validity::Unknown;
        r.notes.push(format!(
            "Linearizability undecided (search budget) for: {}.",
            undecided.join(", ")
        ));
    }
    r.settle();
    r
}

fn check_final(r: &mut Report, ps: &[Pair<'_>], fin: &FinalMetadata) {
    let mut names: Vec<&String> = fin.nodes.values().flat_map(|v| v.keys()).collect();
    names.sort();
    names.dedup();
    for name in &names {
        let views: BTreeMap<&String, Option<&TopicView>> =
            fin.nodes.iter().map(|(n, v)| (n, v.get(*name))).collect();
        let mut distinct: Vec<&Option<&TopicView>> = views.values().collect();
        distinct.dedup();
        if distinct.len() > 1 {
            r.add(
                "metadata-divergence",
                json!({"topic": name, "views": views}),
            );
        }
    }

    let topic_of =
        |p: &Pair<'_>| -> Option<TopicOp> { serde_json::from_value(p.value().clone()).ok() };
    // A topic that exists at the end although an acknowledged delete began after every
    // attempt to create it had ended.
    let mut resurrected: HashSet<(String, String)> = HashSet::new();
    for (node, view) in &fin.nodes {
        for name in view.keys() {
            let of_topic = |f: &'static str| {
                ps.iter()
                    .filter(move |p| p.f() == f && topic_of(p).is_some_and(|t| &t.topic == name))
            };
            let last_create_end = of_topic("create")
                .filter(|p| p.kind() != OpType::Fail)
                .map(|p| p.complete_time())
                .max()
                .unwrap_or(0);
            if let Some(d) =
                of_topic("delete").find(|d| d.is_ok() && d.invoke_time() > last_create_end)
            {
                resurrected.insert((node.clone(), name.clone()));
                r.add(
                    "resurrected-topic",
                    json!({"topic": name, "node": node, "final": view.get(name), "delete": d.describe()}),
                );
            }
        }
    }
    for p in ps.iter().filter(|p| p.f() == "create" && p.is_ok()) {
        let Some(t) = topic_of(p) else { continue };
        let deleted_later = ps.iter().any(|d| {
            d.f() == "delete"
                && d.invoke_time() > p.invoke_time()
                && topic_of(d).is_some_and(|x| x.topic == t.topic)
        });
        let deleted_after_completion = ps.iter().find(|d| {
            d.f() == "delete"
                && d.is_ok()
                && d.invoke_time() > p.complete_time()
                && topic_of(d).is_some_and(|x| x.topic == t.topic)
        });
        for (node, view) in &fin.nodes {
            let here = view.get(&t.topic);
            if !deleted_later {
                let same = here.is_some_and(|v| t.id.is_none() || v.id == t.id);
                if !same {
                    r.add(
                        "lost-create",
                        json!({"topic": t.topic, "node": node, "created-id": t.id, "final": here, "create": p.describe()}),
                    );
                }
            }
            if let (Some(d), Some(v)) = (deleted_after_completion, here) {
                if t.id.is_some()
                    && v.id == t.id
                    && !resurrected.contains(&(node.clone(), t.topic.clone()))
                {
                    r.add(
                        "resurrected-topic",
                        json!({"topic": t.topic, "node": node, "id": v.id, "create": p.describe(), "delete": d.describe()}),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check as run_check, CheckOptions};
    use crate::history::Builder;

    fn create(b: &mut Builder, p: u64, id: &str) {
        b.done(
            p,
            "create",
            json!({"topic": "t", "partitions": 2}),
            json!({"topic": "t", "partitions": 2, "id": id}),
        );
    }

    fn delete(b: &mut Builder, p: u64) {
        b.done(p, "delete", json!({"topic": "t"}), json!({"topic": "t"}));
    }

    fn describe(b: &mut Builder, p: u64, exists: bool) {
        b.done(
            p,
            "describe",
            json!({"topic": "t"}),
            json!({"topic": "t", "exists": exists}),
        );
    }

    fn finish(b: &mut Builder, views: &[Option<&str>]) {
        let nodes: BTreeMap<String, Value> = views
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let v = match id {
                    Some(id) => json!({"t": {"partitions": 2, "id": id}}),
                    None => json!({}),
                };
                ((i + 1).to_string(), v)
            })
            .collect();
        b.done(
            "final",
            "final-metadata",
            json!(null),
            json!({ "nodes": nodes }),
        );
    }

    fn report(b: &Builder) -> Report {
        run_check("metadata", &b.ops, &CheckOptions::default()).unwrap()
    }

    #[test]
    fn sequential_create_delete_create_is_valid() {
        let mut b = Builder::new();
        create(&mut b, 0, "a");
        describe(&mut b, 1, true);
        delete(&mut b, 0);
        b.invoke(1, "delete", json!({"topic": "t"})).fail(
            1,
            "delete",
            json!({"topic": "t"}),
            "unknown-topic",
        );
        create(&mut b, 0, "b");
        finish(&mut b, &[Some("b"), Some("b"), Some("b")]);
        let r = report(&b);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
    }

    #[test]
    fn a_failed_delete_after_an_acknowledged_create_is_not_linearizable() {
        let mut b = Builder::new();
        create(&mut b, 0, "a");
        b.invoke(1, "delete", json!({"topic": "t"})).fail(
            1,
            "delete",
            json!({"topic": "t"}),
            "unknown-topic",
        );
        finish(&mut b, &[Some("a"), Some("a"), Some("a")]);
        let r = report(&b);
        assert_eq!(r.count("nonlinearizable"), 1, "{}", r.summary());
        assert_eq!(r.valid, Validity::Invalid);
    }

    #[test]
    fn a_stale_describe_is_not_a_violation() {
        let mut b = Builder::new();
        create(&mut b, 0, "a");
        delete(&mut b, 0);
        describe(&mut b, 1, true);
        finish(&mut b, &[None, None, None]);
        let r = report(&b);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());
    }

    #[test]
    fn concurrent_and_indeterminate_ops_may_take_either_order() {
        let mut b = Builder::new();
        // Create and delete overlap: describe(false) then describe(true) can still be explained.
        b.invoke(0, "create", json!({"topic": "t", "partitions": 2}));
        describe(&mut b, 1, false);
        b.ok(
            0,
            "create",
            json!({"topic": "t", "partitions": 2, "id": "a"}),
        );
        b.invoke(2, "delete", json!({"topic": "t"}));
        describe(&mut b, 1, true);
        b.info(2, "delete", json!({"topic": "t"}), "timeout");
        describe(&mut b, 1, false);
        finish(&mut b, &[None, None, None]);
        let r = report(&b);
        assert_eq!(r.valid, Validity::Valid, "{}", r.summary());

        // Two acknowledged creates with nothing between them cannot both have succeeded.
        let mut b = Builder::new();
        create(&mut b, 0, "a");
        create(&mut b, 1, "b");
        let r = report(&b);
        assert_eq!(r.count("nonlinearizable"), 1, "{}", r.summary());
    }

    #[test]
    fn divergence_lost_create_and_resurrection() {
        let mut b = Builder::new();
        create(&mut b, 0, "a");
        finish(&mut b, &[Some("a"), Some("a"), None]);
        let r = report(&b);
        assert_eq!(r.count("metadata-divergence"), 1, "{}", r.summary());
        assert_eq!(r.count("lost-create"), 1);
        assert_eq!(r.count("resurrected-topic"), 0);

        let mut b = Builder::new();
        create(&mut b, 0, "a");
        delete(&mut b, 0);
        finish(&mut b, &[Some("a"), Some("a"), Some("a")]);
        let r = report(&b);
        assert_eq!(r.count("resurrected-topic"), 3, "{}", r.summary());

        // Without topic ids in the create results, the order of operations is enough.
        let mut b = Builder::new();
        b.done(
            0,
            "create",
            json!({"topic": "t", "partitions": 2}),
            json!({"topic": "t", "partitions": 2}),
        );
        delete(&mut b, 0);
        finish(&mut b, &[Some("x"), Some("x"), Some("x")]);
        let r = report(&b);
        assert_eq!(r.count("resurrected-topic"), 3, "{}", r.summary());
        assert_eq!(r.count("metadata-divergence"), 0);
        assert_eq!(r.valid, Validity::Invalid);
    }
}
