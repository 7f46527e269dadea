//! The metadata workload's client side: workers create, delete and describe topics from a small
//! pool through the admin API and Metadata; at the end every node is asked for its own view of
//! all topics (`brook topic describe` against that node), once they agree or the final time
//! limit passes. [`crate::checker::metadata`] checks the history.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde_json::{json, Value};

use super::{pace, Ctx, Workload};
use crate::checker::metadata::TopicView;
use crate::client::{self, classify, error_name, Outcome};
use crate::history::{OpType, Process};

/// Topic names the workers fight over.
const POOL: usize = 5;
const TIMEOUT: Duration = Duration::from_secs(10);

pub struct Metadata {
    brook_bin: std::path::PathBuf,
}

impl Metadata {
    pub fn new(brook_bin: &std::path::Path) -> Self {
        Metadata {
            brook_bin: brook_bin.to_path_buf(),
        }
    }
}

fn topic(i: usize) -> String {
    format!("jepsen-meta-{i}")
}

fn kind_of(code: RDKafkaErrorCode) -> OpType {
    match classify(&KafkaError::AdminOp(code)) {
        Outcome::Fail => OpType::Fail,
        Outcome::Info => OpType::Info,
    }
}

/// The outcome of a one-topic admin call.
fn admin_outcome(
    r: rdkafka::error::KafkaResult<Vec<Result<String, (String, RDKafkaErrorCode)>>>,
) -> (OpType, Option<String>) {
    match r {
        Ok(results) => match results.into_iter().next() {
            Some(Ok(_)) => (OpType::Ok, None),
            Some(Err((_, code))) => (kind_of(code), Some(error_name(&KafkaError::AdminOp(code)))),
            None => (OpType::Info, Some("no-result".into())),
        },
        Err(e) => (OpType::Info, Some(error_name(&e))),
    }
}

/// Whether `name` exists according to a Metadata request (never auto-creating it).
fn describe(consumer: &BaseConsumer, name: &str) -> (OpType, Value, Option<String>) {
    match consumer.fetch_metadata(Some(name), TIMEOUT) {
        Err(e) => (OpType::Info, json!({"topic": name}), Some(error_name(&e))),
        Ok(md) => match md.topics().iter().find(|t| t.name() == name) {
            None => (OpType::Ok, json!({"topic": name, "exists": false}), None),
            Some(t) => match t.error() {
                Some(e)
                    if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::UnknownTopicOrPartition =>
                {
                    (OpType::Ok, json!({"topic": name, "exists": false}), None)
                }
                Some(e) => (OpType::Info, json!({"topic": name}), Some(format!("{e:?}"))),
                None => (
                    OpType::Ok,
                    json!({"topic": name, "exists": true, "partitions": t.partitions().len()}),
                    None,
                ),
            },
        },
    }
}

/// One node's view of all topics, from `brook topic describe` against it.
fn node_view(
    bin: &std::path::Path,
    security: &client::Security,
    addr: &str,
) -> Result<BTreeMap<String, TopicView>> {
    let out = std::process::Command::new(bin)
        .args(["topic", "--bootstrap-server", addr, "describe"])
        .args(security.command_args())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "brook topic describe: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let mut view = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "Topic: t\tTopicId: <uuid>\tPartitionCount: 2\t..." (partition lines have no TopicId)
        let fields: BTreeMap<&str, &str> = line
            .split('\t')
            .filter_map(|f| f.trim().split_once(": "))
            .collect();
        if let (Some(name), Some(count)) = (fields.get("Topic"), fields.get("PartitionCount")) {
            view.insert(
                name.to_string(),
                TopicView {
                    partitions: count.parse().unwrap_or(0),
                    id: fields.get("TopicId").map(|s| s.to_string()),
                },
            );
        }
    }
    Ok(view)
}

impl Workload for Metadata {
    fn name(&self) -> &'static str {
        "metadata"
    }

    fn setup(&self, _ctx: &Ctx) -> Result<()> {
        Ok(())
    }

    fn worker(&self, ctx: &Ctx, worker: usize, stop: &AtomicBool) {
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ (worker as u64 + 1).wrapping_mul(0xbb67));
        let mut process = worker as u64;
        let mut clients: Option<(AdminClient<DefaultClientContext>, BaseConsumer)> = None;
        let opts = AdminOptions::new()
            .operation_timeout(Some(TIMEOUT))
            .request_timeout(Some(TIMEOUT));
        while !stop.load(Ordering::Relaxed) {
            pace(ctx, &mut rng);
            let (admin, consumer) = match &clients {
                Some(c) => c,
                None => {
                    let made = client::config(&ctx.bootstrap, &ctx.security)
                        .create::<AdminClient<DefaultClientContext>>()
                        .map_err(anyhow::Error::from)
                        .and_then(|a| {
                            Ok((
                                a,
                                client::consumer(
                                    &ctx.bootstrap,
                                    &ctx.security,
                                    "jepsen-meta",
                                    false,
                                )?,
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
            let name = topic(rng.random_range(0..POOL));
            let roll: f64 = rng.random();
            let (f, (kind, value, error)) = if roll < 0.35 {
                let partitions = rng.random_range(1..=3);
                let v = json!({"topic": name, "partitions": partitions});
                ctx.recorder.invoke(&p, "create", v.clone());
                let new = [NewTopic::new(
                    &name,
                    partitions,
                    TopicReplication::Fixed(ctx.replication_factor),
                )];
                let (kind, err) = admin_outcome(futures::executor::block_on(
                    admin.create_topics(&new, &opts),
                ));
                ("create", (kind, v, err))
            } else if roll < 0.65 {
                let v = json!({"topic": name});
                ctx.recorder.invoke(&p, "delete", v.clone());
                let (kind, err) = admin_outcome(futures::executor::block_on(
                    admin.delete_topics(&[name.as_str()], &opts),
                ));
                ("delete", (kind, v, err))
            } else {
                ctx.recorder.invoke(&p, "describe", json!({"topic": name}));
                ("describe", describe(consumer, &name))
            };
            ctx.recorder.complete(&p, kind, f, value, error);
            if kind == OpType::Info {
                clients = None;
                process += ctx.concurrency as u64;
            }
        }
    }

    /// Every node's own view, once they agree (or the final time limit passed).
    fn finish(&self, ctx: &Ctx) -> Result<()> {
        let p = Process::Named("final".into());
        ctx.recorder.invoke(&p, "final-metadata", Value::Null);
        let deadline = Instant::now() + ctx.final_time_limit;
        let mut nodes: BTreeMap<String, BTreeMap<String, TopicView>> = BTreeMap::new();
        loop {
            nodes.clear();
            for (id, addr) in &ctx.node_addrs {
                match node_view(&self.brook_bin, &ctx.security, addr) {
                    Ok(v) => {
                        nodes.insert(id.to_string(), v);
                    }
                    Err(e) => ctx.run.log(format!("final metadata of node {id}: {e:#}")),
                }
            }
            let mut views = nodes.values();
            let first = views.next();
            let agree = nodes.len() == ctx.node_addrs.len() && views.all(|v| Some(v) == first);
            if agree || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        ctx.recorder.complete(
            &p,
            OpType::Ok,
            "final-metadata",
            json!({ "nodes": nodes }),
            None,
        );
        Ok(())
    }

    fn topics(&self) -> Vec<String> {
        Vec::new()
    }
}
