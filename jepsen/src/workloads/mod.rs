//! The client side of the workloads: what workers do during a run and how each run ends. Each
//! workload writes the history its checker in [`crate::checker`] reads.

pub mod group_offsets;
pub mod list_append;
pub mod metadata;
pub mod queue;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use rand::rngs::StdRng;
use rand::Rng;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::json;

use crate::client;
use crate::history::{OpType, Process};
use crate::recorder::Recorder;
use crate::store::RunDir;

/// What workers need to know about the run.
pub struct Ctx<'a> {
    pub bootstrap: String,
    /// How the clients reach the nodes (SASL_SSL with `--secure`).
    pub security: client::Security,
    /// Each node's own Kafka address, for per-node checks.
    pub node_addrs: Vec<(u32, String)>,
    pub recorder: &'a Recorder,
    pub run: &'a RunDir,
    pub safe: bool,
    pub seed: u64,
    pub concurrency: usize,
    /// Total operations per second over all workers.
    pub rate: f64,
    pub replication_factor: i32,
    pub final_time_limit: Duration,
}

pub trait Workload: Send + Sync {
    fn name(&self) -> &'static str;
    /// Before the workers start (topics).
    fn setup(&self, ctx: &Ctx) -> Result<()>;
    /// One worker's loop until `stop` is set.
    fn worker(&self, ctx: &Ctx, worker: usize, stop: &AtomicBool);
    /// After faults are healed and the cluster recovered: final reads.
    fn finish(&self, ctx: &Ctx) -> Result<()>;
    /// Topics whose partitions must all have an owner after recovery.
    fn topics(&self) -> Vec<String>;
}

/// Sends `value` to partition `key` of `topic` and waits for the outcome: the offset, or the
/// completion type (fail/info) and error name.
pub fn send_value(
    producer: &FutureProducer,
    topic: &str,
    key: u32,
    value: u64,
) -> std::result::Result<i64, (OpType, String)> {
    let k = key.to_string();
    let v = value.to_string();
    let record = FutureRecord::to(topic)
        .partition(key as i32)
        .key(&k)
        .payload(&v);
    let delivery = match producer.send_result(record) {
        Ok(d) => d,
        // Not even queued: it cannot have been sent.
        Err((e, _)) => return Err((OpType::Fail, client::error_name(&e))),
    };
    match futures::executor::block_on(delivery) {
        Ok(Ok(d)) => Ok(d.offset),
        Ok(Err((e, _))) => Err((
            match client::classify(&e) {
                client::Outcome::Fail => OpType::Fail,
                client::Outcome::Info => OpType::Info,
            },
            client::error_name(&e),
        )),
        Err(_) => Err((OpType::Info, "canceled".into())),
    }
}

/// Sleeps between operations so all workers together make about `rate` ops/s.
pub fn pace(ctx: &Ctx, rng: &mut StdRng) {
    let mean = ctx.concurrency as f64 / ctx.rate.max(0.001);
    std::thread::sleep(Duration::from_secs_f64(mean * rng.random_range(0.5..1.5)));
}

/// Creates `topic`, retrying while the cluster is settling; an existing topic is fine.
pub fn create_topic(ctx: &Ctx, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        client::config(&ctx.bootstrap, &ctx.security).create()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    loop {
        let topics = [NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(ctx.replication_factor),
        )];
        let outcome = futures::executor::block_on(admin.create_topics(&topics, &opts));
        let err = match outcome {
            Ok(results) => match results.into_iter().next() {
                Some(Ok(_)) => return Ok(()),
                Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => return Ok(()),
                Some(Err((_, code))) => anyhow!("{code:?}"),
                None => anyhow!("no result"),
            },
            Err(e) => anyhow!("{e}"),
        };
        if Instant::now() > deadline {
            bail!("creating topic {topic}: {err}");
        }
        ctx.run
            .log(format!("creating topic {topic}: {err}; retrying"));
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// After recovery: every node answers Metadata and every partition of `topics` has an owner.
/// Recorded in the history as `health` ops (process `health`), one per node.
pub fn health(ctx: &Ctx, topics: &[String], wait: Duration) -> bool {
    let p = Process::Named("health".into());
    let deadline = Instant::now() + wait;
    loop {
        let mut all_ok = true;
        let mut views = Vec::new();
        for (id, addr) in &ctx.node_addrs {
            let consumer: Result<BaseConsumer> =
                client::consumer(addr, &ctx.security, "jepsen-health", false);
            let mut problems = Vec::new();
            match consumer {
                Err(e) => problems.push(format!("client: {e:#}")),
                Ok(c) => {
                    for t in topics {
                        match c.fetch_metadata(Some(t), Duration::from_secs(5)) {
                            Err(e) => problems.push(format!("{t}: {e}")),
                            Ok(md) => {
                                for mt in md.topics() {
                                    if let Some(e) = mt.error() {
                                        problems.push(format!("{t}: {e:?}"));
                                    }
                                    for part in mt.partitions() {
                                        if part.leader() < 0 {
                                            problems.push(format!("{t}/{}: no leader", part.id()));
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            all_ok &= problems.is_empty();
            views.push((*id, problems));
        }
        if all_ok || Instant::now() > deadline {
            for (id, problems) in views {
                let v = json!({"node": id, "ok": problems.is_empty(), "problems": problems});
                ctx.recorder.invoke(&p, "health", v.clone());
                ctx.recorder.complete(&p, OpType::Ok, "health", v, None);
            }
            ctx.run.log(format!(
                "health: {}",
                if all_ok { "ok" } else { "NOT healthy" }
            ));
            return all_ok;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
