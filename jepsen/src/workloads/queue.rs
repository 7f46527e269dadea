//! The queue workload's client side: workers send unique increasing values to keys (one key
//! per partition of one topic) and poll them back through `assign`ed consumers; the final drain
//! reads every key from the beginning up to its highest acknowledged offset. The history this
//! produces is what [`crate::checker::queue`] reads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

use super::{create_topic, pace, send_value, Ctx, Workload};
use crate::client::{self, error_name};
use crate::history::{OpType, Process};

pub const TOPIC: &str = "jepsen-queue";
/// How long one poll collects records.
const POLL_WINDOW: Duration = Duration::from_millis(200);
/// Records per poll at most.
const POLL_MAX: usize = 200;

pub struct Queue {
    keys: u32,
    next_value: AtomicU64,
    /// Highest acknowledged offset per key: what the final drain must reach.
    acked: Mutex<BTreeMap<u32, i64>>,
}

impl Queue {
    pub fn new(keys: u32) -> Self {
        Queue {
            keys,
            next_value: AtomicU64::new(0),
            acked: Mutex::new(BTreeMap::new()),
        }
    }

    fn assign(&self, consumer: &BaseConsumer, keys: &[u32]) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for &k in keys {
            tpl.add_partition_offset(TOPIC, k as i32, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        Ok(())
    }

    /// One send; returns the completion type, value and error.
    fn send(
        &self,
        producer: &FutureProducer,
        key: u32,
        value: u64,
    ) -> (OpType, Value, Option<String>) {
        match send_value(producer, TOPIC, key, value) {
            Ok(offset) => {
                if let Ok(mut acked) = self.acked.lock() {
                    let top = acked.entry(key).or_insert(offset);
                    *top = (*top).max(offset);
                }
                (
                    OpType::Ok,
                    json!([{"f": "send", "key": key, "value": value, "offset": offset}]),
                    None,
                )
            }
            Err((kind, e)) => (
                kind,
                json!([{"f": "send", "key": key, "value": value}]),
                Some(e),
            ),
        }
    }
}

/// Polls for [`POLL_WINDOW`]; ok with the records by key, or info on any consumer error (the
/// records read before it are not reported: an info poll observes nothing).
pub fn poll(consumer: &BaseConsumer, window: Duration) -> (OpType, Value, Option<String>) {
    let deadline = Instant::now() + window;
    let mut records: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    let mut n = 0;
    while n < POLL_MAX {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left) {
            None => break,
            Some(Ok(m)) => {
                let value = m
                    .payload()
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|s| s.parse::<u64>().ok());
                if let Some(v) = value {
                    records
                        .entry(m.partition().to_string())
                        .or_default()
                        .push((m.offset(), v));
                    n += 1;
                }
            }
            Some(Err(e)) => {
                return (OpType::Info, json!([{"f": "poll"}]), Some(error_name(&e)));
            }
        }
    }
    (OpType::Ok, json!([{"f": "poll", "records": records}]), None)
}

impl Workload for Queue {
    fn name(&self) -> &'static str {
        "queue"
    }

    fn setup(&self, ctx: &Ctx) -> Result<()> {
        create_topic(ctx, TOPIC, self.keys as i32)
    }

    fn worker(&self, ctx: &Ctx, worker: usize, stop: &AtomicBool) {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ (worker as u64 + 1).wrapping_mul(0x9e37));
        let mut process = worker as u64;
        let all: Vec<u32> = (0..self.keys).collect();
        let mut clients: Option<(FutureProducer, BaseConsumer)> = None;
        while !stop.load(Ordering::Relaxed) {
            pace(ctx, &mut rng);
            let (producer, consumer) = match &clients {
                Some(c) => c,
                None => {
                    let made =
                        client::producer(&ctx.bootstrap, &ctx.security, ctx.safe).and_then(|p| {
                            let c = client::consumer(
                                &ctx.bootstrap,
                                &ctx.security,
                                &format!("jepsen-queue-{process}"),
                                ctx.safe,
                            )?;
                            self.assign(&c, &all)?;
                            Ok((p, c))
                        });
                    match made {
                        Ok(c) => clients.insert(c),
                        Err(e) => {
                            ctx.run.log(format!("worker {worker}: no client: {e:#}"));
                            std::thread::sleep(Duration::from_secs(1));
                            continue;
                        }
                    }
                }
            };
            let p = Process::Worker(process);
            let roll: f64 = rng.random();
            let (f, outcome) = if roll < 0.01 {
                // The client crashes: whatever it had in flight is in doubt.
                ctx.recorder.invoke(&p, "crash", Value::Null);
                ("crash", (OpType::Info, Value::Null, Some("crash".into())))
            } else if roll < 0.05 {
                let mut keys: Vec<u32> = all
                    .iter()
                    .copied()
                    .filter(|_| rng.random_bool(0.5))
                    .collect();
                if keys.is_empty() {
                    keys.push(rng.random_range(0..self.keys));
                }
                let v = json!({"keys": keys});
                ctx.recorder.invoke(&p, "assign", v.clone());
                let out = match self.assign(consumer, &keys) {
                    Ok(()) => (OpType::Ok, v, None),
                    Err(e) => (OpType::Info, v, Some(format!("{e:#}"))),
                };
                ("assign", out)
            } else if roll < 0.5 {
                let key = rng.random_range(0..self.keys);
                let value = self.next_value.fetch_add(1, Ordering::Relaxed);
                ctx.recorder.invoke(
                    &p,
                    "send",
                    json!([{"f": "send", "key": key, "value": value}]),
                );
                ("send", self.send(producer, key, value))
            } else {
                ctx.recorder.invoke(&p, "poll", json!([{"f": "poll"}]));
                ("poll", poll(consumer, POLL_WINDOW))
            };
            let (kind, value, error) = outcome;
            ctx.recorder.complete(&p, kind, f, value, error);
            if kind == OpType::Info {
                // Retire the process: its clients may still act on what is in doubt.
                clients = None;
                process += ctx.concurrency as u64;
            }
        }
    }

    fn finish(&self, ctx: &Ctx) -> Result<()> {
        let targets = self
            .acked
            .lock()
            .map_err(|_| anyhow!("lock poisoned"))?
            .clone();
        let drain = Process::Named("drain".into());
        ctx.recorder
            .invoke(&drain, "drain", json!({"targets": targets}));
        let deadline = Instant::now() + ctx.final_time_limit;
        let all: Vec<u32> = (0..self.keys).collect();
        let mut reached: BTreeMap<u32, i64> = BTreeMap::new();
        let done = |reached: &BTreeMap<u32, i64>| {
            targets
                .iter()
                .all(|(k, t)| reached.get(k).is_some_and(|r| r >= t))
        };
        let mut reader = 0;
        'readers: while !done(&reached) && Instant::now() < deadline {
            let p = Process::Named(format!("drain-{reader}"));
            reader += 1;
            let consumer = match client::consumer(
                &ctx.bootstrap,
                &ctx.security,
                &format!("jepsen-drain-{reader}"),
                ctx.safe,
            )
            .and_then(|c| self.assign(&c, &all).map(|()| c))
            {
                Ok(c) => c,
                Err(e) => {
                    ctx.run.log(format!("drain: no consumer: {e:#}"));
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            while !done(&reached) && Instant::now() < deadline {
                ctx.recorder.invoke(&p, "poll", json!([{"f": "poll"}]));
                let (kind, value, error) = poll(&consumer, Duration::from_secs(1));
                if kind == OpType::Ok {
                    if let Some(recs) = value[0]["records"].as_object() {
                        for (k, rs) in recs {
                            let top = rs
                                .as_array()
                                .and_then(|a| a.last())
                                .and_then(|r| r[0].as_i64());
                            if let (Ok(k), Some(top)) = (k.parse::<u32>(), top) {
                                let e = reached.entry(k).or_insert(top);
                                *e = (*e).max(top);
                            }
                        }
                    }
                }
                ctx.recorder.complete(&p, kind, "poll", value, error);
                if kind != OpType::Ok {
                    continue 'readers;
                }
            }
        }
        let complete = done(&reached);
        ctx.run.log(format!(
            "drain {}: reached {reached:?} of {targets:?}",
            if complete { "complete" } else { "INCOMPLETE" }
        ));
        ctx.recorder.complete(
            &drain,
            OpType::Ok,
            "drain",
            json!({"complete": complete, "targets": targets, "reached": reached}),
            None,
        );
        Ok(())
    }

    fn topics(&self) -> Vec<String> {
        vec![TOPIC.to_string()]
    }
}
