//! Moving replicas without downtime: `brook cluster rebalance` gives a node that joined its
//! share of replicas and empties a node being decommissioned (AlterPartitionReassignments and
//! ListPartitionReassignments underneath), and every acknowledged message stays readable.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{ensure, Result};
use brook_tests::cluster::*;
use brook_tests::*;
use rdkafka::consumer::Consumer;

const TOPIC: &str = "moving";
const PARTITIONS: i32 = 6;

/// Partition -> (leader, replicas, sorted in-sync replicas).
type Placement = BTreeMap<i32, (i32, Vec<i32>, Vec<i32>)>;

/// The placement as a client sees it through node `via`.
fn replicas(c: &Cluster, via: i32) -> Result<Placement> {
    let consumer = consumer(c.node(via), &[("allow.auto.create.topics", "false")]);
    let metadata = consumer.fetch_metadata(Some(TOPIC), OP_TIMEOUT)?;
    let topic = &metadata.topics()[0];
    Ok(topic
        .partitions()
        .iter()
        .map(|p| {
            let mut isr = p.isr().to_vec();
            isr.sort_unstable();
            (p.id(), (p.leader(), p.replicas().to_vec(), isr))
        })
        .collect())
}

fn rebalance(c: &Cluster, args: &[&str]) -> Result<String> {
    let out = Command::new(brook_bin())
        .args([
            "cluster",
            "rebalance",
            "--bootstrap-server",
            &c.bootstrap(2),
        ])
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(
        out.status.success(),
        "rebalance {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(stdout)
}

/// Waits until every partition has `rf` replicas, all in sync, none on `excluded`.
fn wait_settled(c: &Cluster, via: i32, rf: usize, excluded: Option<i32>) -> Result<Placement> {
    wait_for("replicas to settle", EVENTUALLY, || {
        let view = replicas(c, via)?;
        let settled = view.values().all(|(leader, replicas, isr)| {
            let mut sorted = replicas.clone();
            sorted.sort_unstable();
            replicas.len() == rf
                && sorted == *isr
                && replicas.contains(leader)
                && excluded.is_none_or(|x| !replicas.contains(&x))
        });
        Ok(settled.then_some(view))
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn rebalance_moves_replicas_onto_a_new_node_and_off_a_decommissioned_one() -> Result<()> {
    let mut c = Cluster::start(3);
    let created = Command::new(brook_bin())
        .args([
            "topic",
            "create",
            TOPIC,
            "--partitions",
            "6",
            "--replication-factor",
            "3",
        ])
        // A comma list, as Kafka's tools take: the first address has no broker.
        .args([
            "--bootstrap-server",
            &format!("127.0.0.1:1,{}", c.bootstrap(1)),
        ])
        .status()?;
    ensure!(created.success());
    c.wait_for_topic(TOPIC, PARTITIONS)?;
    let messages: Vec<Msg> = (0..600)
        .map(|i| {
            Msg::value(format!("value-{i}"))
                .key(format!("key-{i}"))
                .partition(i % PARTITIONS)
        })
        .collect();
    let delivered = produce_all(&producer(c.node(1), &[]), TOPIC, &messages).await?;
    let before = wait_settled(&c, 1, 3, None)?;
    ensure!(before.values().all(|(_, r, _)| !r.contains(&4)));

    let fourth = c.add_node(1);
    for id in c.ids() {
        c.wait_for_brokers(id, &[1, 2, 3, 4])?;
    }
    let dry = rebalance(&c, &[])?;
    ensure!(
        dry.contains("--execute"),
        "a dry run changes nothing:\n{dry}"
    );
    let out = rebalance(&c, &["--execute"])?;
    ensure!(out.contains("Done"), "{out}");
    let view = wait_settled(&c, 2, 3, None)?;
    let mut load: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, replicas, _) in view.values() {
        for r in replicas {
            *load.entry(*r).or_default() += 1;
        }
    }
    // 18 replicas over 4 nodes: 4 or 5 each.
    ensure!(
        load.len() == 4 && load.values().all(|&n| (4..=5).contains(&n)),
        "replicas per node after adding node {fourth}: {load:?}"
    );

    let out = rebalance(&c, &["--decommission", "1", "--execute"])?;
    ensure!(out.contains("Done"), "{out}");
    let view = wait_settled(&c, 2, 3, Some(1))?;
    ensure!(view.values().all(|(leader, _, _)| *leader != 1), "{view:?}");

    // Every acknowledged message is still there, read through a node that stayed.
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for d in &delivered {
        let end = ends.entry(d.partition).or_default();
        *end = (*end).max(d.offset + 1);
    }
    let read = consume_to_ends(&c.bootstrap(2), TOPIC, &ends)?;
    for (m, d) in messages.iter().zip(&delivered) {
        let r = read[&d.partition].iter().find(|r| r.offset == d.offset);
        ensure!(
            r.is_some_and(|r| r.content() == m.content()),
            "message delivered at {d:?} was not read back"
        );
    }
    Ok(())
}
