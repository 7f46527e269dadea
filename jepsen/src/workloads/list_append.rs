//! The list-append workload's client side: each partition of one topic is a list; appends are
//! sends of unique values, and a read assigns the partition, seeks to the beginning and reads up
//! to the high watermark it asked for after the read began. A read that cannot get there in
//! time ends `info` (it observed nothing definite). [`crate::checker::list_append`] checks it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureProducer;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{json, Value};

use super::{create_topic, pace, send_value, Ctx, Workload};
use crate::client::{self, error_name};
use crate::history::{OpType, Process};

pub const TOPIC: &str = "jepsen-list";
/// How long a read may take to reach the high watermark.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ListAppend {
    keys: u32,
    next_value: AtomicU64,
}

impl ListAppend {
    pub fn new(keys: u32) -> Self {
        ListAppend {
            keys,
            next_value: AtomicU64::new(0),
        }
    }
}

/// Reads partition `key` from the beginning up to the high watermark.
fn read(consumer: &BaseConsumer, key: u32) -> (OpType, Value, Option<String>) {
    let invoke = json!({"key": key});
    let mut tpl = TopicPartitionList::new();
    if let Err(e) = tpl
        .add_partition_offset(TOPIC, key as i32, Offset::Beginning)
        .and_then(|()| consumer.assign(&tpl))
    {
        return (OpType::Info, invoke, Some(error_name(&e)));
    }
    let (low, high) = match consumer.fetch_watermarks(TOPIC, key as i32, READ_TIMEOUT) {
        Ok(w) => w,
        Err(e) => return (OpType::Info, invoke, Some(error_name(&e))),
    };
    let mut values = Vec::new();
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut next = low;
    while next < high {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (OpType::Info, invoke, Some("read-timeout".into()));
        }
        match consumer.poll(left.min(Duration::from_millis(500))) {
            None => {}
            Some(Ok(m)) => {
                if let Some(v) = m
                    .payload()
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|s| s.parse::<u64>().ok())
                {
                    values.push(v);
                }
                next = m.offset() + 1;
            }
            Some(Err(e)) => return (OpType::Info, invoke, Some(error_name(&e))),
        }
    }
    (
        OpType::Ok,
        json!({"key": key, "values": values, "high-watermark": high}),
        None,
    )
}

impl Workload for ListAppend {
    fn name(&self) -> &'static str {
        "list-append"
    }

    fn setup(&self, ctx: &Ctx) -> anyhow::Result<()> {
        create_topic(ctx, TOPIC, self.keys as i32)
    }

    fn worker(&self, ctx: &Ctx, worker: usize, stop: &AtomicBool) {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ (worker as u64 + 1).wrapping_mul(0x51ed));
        let mut process = worker as u64;
        let mut clients: Option<(FutureProducer, BaseConsumer)> = None;
        while !stop.load(Ordering::Relaxed) {
            pace(ctx, &mut rng);
            let (producer, consumer) = match &clients {
                Some(c) => c,
                None => {
                    let made =
                        client::producer(&ctx.bootstrap, &ctx.security, ctx.safe).and_then(|p| {
                            let group = format!("jepsen-list-{process}");
                            Ok((
                                p,
                                client::consumer(&ctx.bootstrap, &ctx.security, &group, ctx.safe)?,
                            ))
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
            let key = rng.random_range(0..self.keys);
            let (f, (kind, value, error)) = if rng.random_bool(0.5) {
                let v = self.next_value.fetch_add(1, Ordering::Relaxed);
                let invoke = json!({"key": key, "value": v});
                ctx.recorder.invoke(&p, "append", invoke.clone());
                let out = match send_value(producer, TOPIC, key, v) {
                    Ok(o) => (
                        OpType::Ok,
                        json!({"key": key, "value": v, "offset": o}),
                        None,
                    ),
                    Err((kind, e)) => (kind, invoke, Some(e)),
                };
                ("append", out)
            } else {
                ctx.recorder.invoke(&p, "read", json!({"key": key}));
                ("read", read(consumer, key))
            };
            ctx.recorder.complete(&p, kind, f, value, error);
            if kind == OpType::Info {
                clients = None;
                process += ctx.concurrency as u64;
            }
        }
    }

    /// A last read of every key with a fresh client: every acknowledged append must be in it.
    fn finish(&self, ctx: &Ctx) -> anyhow::Result<()> {
        let deadline = Instant::now() + ctx.final_time_limit;
        let mut attempt = 0;
        for key in 0..self.keys {
            loop {
                let p = Process::Named(format!("final-{attempt}"));
                let consumer = client::consumer(
                    &ctx.bootstrap,
                    &ctx.security,
                    &format!("jepsen-list-final-{attempt}"),
                    ctx.safe,
                )?;
                ctx.recorder.invoke(&p, "read", json!({"key": key}));
                let (kind, value, error) = read(&consumer, key);
                ctx.recorder.complete(&p, kind, "read", value, error);
                attempt += 1;
                if kind == OpType::Ok || Instant::now() > deadline {
                    break;
                }
            }
        }
        Ok(())
    }

    fn topics(&self) -> Vec<String> {
        vec![TOPIC.to_string()]
    }
}
