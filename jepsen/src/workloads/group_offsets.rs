//! The group-offsets workload's client side. Each worker is one member of its own consumer
//! group (`jepsen-g<worker>`, kept when the worker's process is retired), so commits of a
//! group come from one client at a time. A worker sends records, polls its assigned keys,
//! commits `max polled + 1`, reads committed offsets back, and now and then crashes: its next
//! client resumes every key from the committed offset (`resume` ops). The history feeds
//! [`crate::checker::group_offsets`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use super::queue::poll;
use super::{create_topic, pace, send_value, Ctx, Workload};
use crate::client::{self, classify, error_name, Outcome};
use crate::history::{OpType, Process};

pub const TOPIC: &str = "jepsen-groups";
const POLL_WINDOW: Duration = Duration::from_millis(200);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct GroupOffsets {
    keys: u32,
    subscribe: bool,
    next_value: AtomicU64,
}

impl GroupOffsets {
    pub fn new(keys: u32, subscribe: bool) -> Self {
        GroupOffsets {
            keys,
            subscribe,
            next_value: AtomicU64::new(0),
        }
    }

    fn group_of(&self, worker: usize) -> String {
        if self.subscribe {
            "jepsen-gs".to_string()
        } else {
            format!("jepsen-g{worker}")
        }
    }

    /// A fresh member of the shared group, subscribed to the topic.
    fn subscribed(&self, ctx: &Ctx, group: &str) -> Result<BaseConsumer> {
        // A short poll interval is also the rebalance timeout: a member that stopped polling
        // holds up a rebalance for this long at most.
        let consumer = client::consumer_with(
            &ctx.bootstrap,
            &ctx.security,
            group,
            ctx.safe,
            &[("max.poll.interval.ms", "10000")],
        )?;
        consumer.subscribe(&[TOPIC])?;
        Ok(consumer)
    }
}

/// The keys assigned to `consumer` right now.
fn assigned(consumer: &BaseConsumer) -> Option<BTreeSet<u32>> {
    let tpl = consumer.assignment().ok()?;
    Some(
        tpl.elements()
            .iter()
            .filter(|e| e.topic() == TOPIC)
            .filter_map(|e| u32::try_from(e.partition()).ok())
            .collect(),
    )
}

fn outcome(e: &rdkafka::error::KafkaError) -> OpType {
    match classify(e) {
        Outcome::Fail => OpType::Fail,
        Outcome::Info => OpType::Info,
    }
}

/// The committed offset of `key` for the consumer's group (`None`: nothing committed).
fn committed(consumer: &BaseConsumer, key: u32) -> Result<Option<i64>, (OpType, String)> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, key as i32);
    let got = consumer
        .committed_offsets(tpl, FETCH_TIMEOUT)
        .map_err(|e| (outcome(&e), error_name(&e)))?;
    Ok(
        match got.find_partition(TOPIC, key as i32).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        },
    )
}

/// Records a `fetch-committed` (or `resume`) op for `key`.
fn fetch_op(
    ctx: &Ctx,
    p: &Process,
    f: &str,
    consumer: &BaseConsumer,
    group: &str,
    key: u32,
) -> (OpType, Option<i64>) {
    ctx.recorder
        .invoke(p, f, json!({"group": group, "key": key}));
    match committed(consumer, key) {
        Ok(c) => {
            ctx.recorder.complete(
                p,
                OpType::Ok,
                f,
                json!({"group": group, "key": key, "offset": c}),
                None,
            );
            (OpType::Ok, c)
        }
        Err((kind, e)) => {
            ctx.recorder
                .complete(p, kind, f, json!({"group": group, "key": key}), Some(e));
            (kind, None)
        }
    }
}

/// A fresh consumer of the worker's group, resumed at every key's committed offset.
fn resume(ctx: &Ctx, p: &Process, group: &str, keys: u32) -> Result<Option<BaseConsumer>> {
    let consumer = client::consumer(&ctx.bootstrap, &ctx.security, group, ctx.safe)?;
    let mut tpl = TopicPartitionList::new();
    for key in 0..keys {
        let (kind, c) = fetch_op(ctx, p, "resume", &consumer, group, key);
        if kind != OpType::Ok {
            return Ok(None);
        }
        let at = c.map_or(Offset::Beginning, Offset::Offset);
        tpl.add_partition_offset(TOPIC, key as i32, at)?;
    }
    consumer.assign(&tpl)?;
    Ok(Some(consumer))
}

impl Workload for GroupOffsets {
    fn name(&self) -> &'static str {
        "group-offsets"
    }

    fn setup(&self, ctx: &Ctx) -> Result<()> {
        create_topic(ctx, TOPIC, self.keys as i32)
    }

    fn worker(&self, ctx: &Ctx, worker: usize, stop: &AtomicBool) {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ (worker as u64 + 1).wrapping_mul(0x6a09));
        let group = self.group_of(worker);
        let mut process = worker as u64;
        let mut clients: Option<(FutureProducer, BaseConsumer)> = None;
        // Highest offset polled per key since the last resume: what a commit covers.
        let mut polled: BTreeMap<u32, i64> = BTreeMap::new();
        while !stop.load(Ordering::Relaxed) {
            pace(ctx, &mut rng);
            let p = Process::Worker(process);
            let retire = |process: &mut u64| *process += ctx.concurrency as u64;
            let (producer, consumer) = match &clients {
                Some(c) => c,
                None => {
                    let made = client::producer(&ctx.bootstrap, &ctx.security, ctx.safe).and_then(
                        |prod| {
                            let consumer = if self.subscribe {
                                Some(self.subscribed(ctx, &group)?)
                            } else {
                                resume(ctx, &p, &group, self.keys)?
                            };
                            Ok((prod, consumer))
                        },
                    );
                    match made {
                        Ok((prod, Some(cons))) => {
                            polled.clear();
                            clients.insert((prod, cons))
                        }
                        Ok((_, None)) => {
                            // A resume op ended in doubt: this process is done.
                            retire(&mut process);
                            continue;
                        }
                        Err(e) => {
                            ctx.run.log(format!("worker {worker}: no client: {e:#}"));
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    }
                }
            };
            let roll: f64 = rng.random();
            // Each crash of a subscribed member rebalances the whole group: fewer of them, or
            // the group never settles.
            let crash = if self.subscribe { 0.003 } else { 0.03 };
            let kind = if roll < crash {
                ctx.recorder.invoke(&p, "crash", Value::Null);
                ctx.recorder
                    .complete(&p, OpType::Info, "crash", Value::Null, Some("crash".into()));
                OpType::Info
            } else if roll < 0.4 {
                let key = rng.random_range(0..self.keys);
                let v = self.next_value.fetch_add(1, Ordering::Relaxed);
                let invoke = json!({"key": key, "value": v});
                ctx.recorder.invoke(&p, "send", invoke.clone());
                let (kind, value, err) = match send_value(producer, TOPIC, key, v) {
                    Ok(o) => (
                        OpType::Ok,
                        json!({"key": key, "value": v, "offset": o}),
                        None,
                    ),
                    Err((kind, e)) => (kind, invoke, Some(e)),
                };
                ctx.recorder.complete(&p, kind, "send", value, err);
                kind
            } else if roll < 0.75 {
                ctx.recorder.invoke(&p, "poll", json!({"group": group}));
                let (kind, value, err) = poll(consumer, POLL_WINDOW);
                let records = value[0]["records"].clone();
                if let Some(recs) = records.as_object() {
                    for (k, rs) in recs {
                        let top = rs
                            .as_array()
                            .and_then(|a| a.last())
                            .and_then(|r| r[0].as_i64());
                        if let (Ok(k), Some(top)) = (k.parse::<u32>(), top) {
                            let e = polled.entry(k).or_insert(top);
                            *e = (*e).max(top);
                        }
                    }
                }
                if self.subscribe {
                    // After a rebalance, commit only what this member still holds.
                    if let Some(keys) = assigned(consumer) {
                        polled.retain(|k, _| keys.contains(k));
                    }
                }
                let value = if kind == OpType::Ok {
                    json!({"group": group, "records": records})
                } else {
                    json!({"group": group})
                };
                ctx.recorder.complete(&p, kind, "poll", value, err);
                kind
            } else if roll < 0.9 {
                let Some((&key, &top)) =
                    polled.iter().nth(rng.random_range(0..polled.len().max(1)))
                else {
                    continue;
                };
                let v = json!({"group": group, "key": key, "offset": top + 1});
                ctx.recorder.invoke(&p, "commit", v.clone());
                let mut tpl = TopicPartitionList::new();
                let result = tpl
                    .add_partition_offset(TOPIC, key as i32, Offset::Offset(top + 1))
                    .and_then(|()| consumer.commit(&tpl, CommitMode::Sync));
                let (kind, err) = match result {
                    Ok(()) => (OpType::Ok, None),
                    Err(e) => (outcome(&e), Some(error_name(&e))),
                };
                ctx.recorder.complete(&p, kind, "commit", v, err);
                kind
            } else {
                let key = rng.random_range(0..self.keys);
                fetch_op(ctx, &p, "fetch-committed", consumer, &group, key).0
            };
            if kind == OpType::Info {
                clients = None;
                retire(&mut process);
            }
        }
    }

    /// After recovery, every group's committed offsets are read back once more.
    fn finish(&self, ctx: &Ctx) -> Result<()> {
        let p = Process::Named("final".into());
        let groups: BTreeSet<String> = (0..ctx.concurrency).map(|w| self.group_of(w)).collect();
        for group in groups {
            let consumer = client::consumer(&ctx.bootstrap, &ctx.security, &group, ctx.safe)?;
            for key in 0..self.keys {
                fetch_op(ctx, &p, "fetch-committed", &consumer, &group, key);
            }
        }
        Ok(())
    }

    fn topics(&self) -> Vec<String> {
        vec![TOPIC.to_string()]
    }
}
