//! DescribeLogDirs against three nodes (replication factor 3), with raw requests at every
//! version brook serves: each node lists the replicas it holds, leader or follower, with the
//! bytes their logs hold (growing with what was produced, equal on every replica once the
//! followers caught up, with no lag left), and at v4 the space of its filesystem. A request
//! naming partitions lists only those this node holds.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, ensure, Result};
use brook_tests::cluster::*;
use brook_tests::*;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::DescribeLogDirsResult;
use kafka_protocol::messages::DescribeLogDirsRequest;

const TOPIC: &str = "sized";
const PARTITIONS: i32 = 2;
const MESSAGES: usize = 100;
const VALUE_BYTES: usize = 1000;

/// Node `id`'s one log directory, as DescribeLogDirs `version` reports it for `topics`
/// (`None`: all).
fn log_dir(
    c: &Cluster,
    id: i32,
    version: i16,
    topics: Option<Vec<DescribableLogDirTopic>>,
) -> Result<DescribeLogDirsResult> {
    let request = DescribeLogDirsRequest::default().with_topics(topics);
    let response = c.conn(id)?.call(version, &request)?;
    ensure!(response.error_code == 0, "error {}", response.error_code);
    match <[DescribeLogDirsResult; 1]>::try_from(response.results) {
        Ok([dir]) => Ok(dir),
        Err(results) => bail!("expected one log dir, got {results:?}"),
    }
}

/// (partition -> (size, lag)) of `TOPIC` in a log dir's answer.
fn sizes(dir: &DescribeLogDirsResult) -> BTreeMap<i32, (i64, i64)> {
    dir.topics
        .iter()
        .filter(|t| t.name.0.as_str() == TOPIC)
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition_index, (p.partition_size, p.offset_lag)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_lists_its_replicas_with_their_size() -> Result<()> {
    let c = Cluster::start(3);
    c.create_replicated_topic(1, TOPIC, PARTITIONS, 3, &[])?;

    // Created and empty: every node holds both replicas, with nothing in them.
    for id in c.ids() {
        let held = wait_for(
            &format!("node {id} to list both replicas"),
            EVENTUALLY,
            || {
                let found = sizes(&log_dir(&c, id, 4, None)?);
                Ok((found.len() == PARTITIONS as usize).then_some(found))
            },
        )?;
        ensure!(
            held.values().all(|&(size, lag)| size == 0 && lag == 0),
            "node {id}: {held:?}"
        );
    }

    let messages: Vec<Msg> = (0..MESSAGES * PARTITIONS as usize)
        .map(|i| {
            let mut value = format!("m{i}-").into_bytes();
            value.resize(VALUE_BYTES, b'x');
            Msg::value(value).partition((i % PARTITIONS as usize) as i32)
        })
        .collect();
    produce_all(&producer(c.node(1), &[]), TOPIC, &messages).await?;
    let produced = (MESSAGES * VALUE_BYTES) as i64;

    // Followers copy asynchronously: wait until every node reports the same size for each
    // partition and no lag.
    let by_node = wait_for(
        "every replica to hold the produced bytes",
        EVENTUALLY,
        || {
            let mut by_node = BTreeMap::new();
            for id in c.ids() {
                by_node.insert(id, sizes(&log_dir(&c, id, 4, None)?));
            }
            let same = by_node.values().all(|s| Some(s) == by_node.get(&1));
            let settled = by_node
                .values()
                .flat_map(|s| s.values())
                .all(|&(size, lag)| size >= produced && lag == 0);
            let complete = by_node.values().all(|s| s.len() == PARTITIONS as usize);
            if same && settled && complete {
                return Ok(Some(by_node));
            }
            bail!("not yet: {by_node:?}")
        },
    )?;
    // The record batches as stored: the values plus a few dozen bytes of framing per record.
    for (id, found) in &by_node {
        for (partition, &(size, _)) in found {
            ensure!(
                size < 2 * produced,
                "node {id} partition {partition}: {size} bytes for {produced} bytes of values"
            );
        }
    }

    // Every version lists the same replicas; v4 adds the filesystem's space.
    for id in c.ids() {
        for version in 1..=4 {
            let dir = log_dir(&c, id, version, None)?;
            ensure!(dir.error_code == 0, "node {id} v{version}: {dir:?}");
            ensure!(
                Path::new(dir.log_dir.as_str()).is_absolute()
                    && dir.log_dir.as_str() == c.node(id).data_dir().display().to_string(),
                "node {id} v{version}: log dir {:?}, data in {:?}",
                dir.log_dir,
                c.node(id).data_dir()
            );
            ensure!(
                sizes(&dir) == by_node[&id],
                "node {id} v{version}: {:?}",
                sizes(&dir)
            );
            if version >= 4 {
                ensure!(
                    dir.total_bytes > 0 && (1..=dir.total_bytes).contains(&dir.usable_bytes),
                    "node {id} v4: total {} usable {}",
                    dir.total_bytes,
                    dir.usable_bytes
                );
            }
        }
    }

    // Named partitions: only those held here; an unknown topic or partition is left out.
    let named = vec![
        DescribableLogDirTopic::default()
            .with_topic(topic_name(TOPIC))
            .with_partitions(vec![1, 7]),
        DescribableLogDirTopic::default()
            .with_topic(topic_name("no-such-topic"))
            .with_partitions(vec![0]),
    ];
    let dir = log_dir(&c, 2, 4, Some(named))?;
    let listed: Vec<(String, Vec<i32>)> = dir
        .topics
        .iter()
        .map(|t| {
            let partitions = t.partitions.iter().map(|p| p.partition_index).collect();
            (t.name.0.to_string(), partitions)
        })
        .collect();
    ensure!(
        listed == vec![(TOPIC.to_string(), vec![1])],
        "named request listed {listed:?}"
    );
    let dir = log_dir(&c, 2, 4, Some(Vec::new()))?;
    ensure!(
        dir.topics.is_empty(),
        "an empty list names nothing: {dir:?}"
    );
    Ok(())
}

/// A topic held by one node only (replication factor 1) is listed by that node and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_nodes_holding_a_replica_list_it() -> Result<()> {
    let c = Cluster::start(3);
    let view = c.create_replicated_topic(1, "single", 3, 1, &[])?;
    for id in c.ids() {
        let want: Vec<i32> = view
            .partitions
            .iter()
            .filter(|p| p.replicas == vec![id])
            .map(|p| p.index)
            .collect();
        let dir = log_dir(&c, id, 4, None)?;
        let have: Vec<i32> = dir
            .topics
            .iter()
            .filter(|t| t.name.0.as_str() == "single")
            .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
            .collect();
        ensure!(have == want, "node {id} lists {have:?}, holds {want:?}");
    }
    Ok(())
}
