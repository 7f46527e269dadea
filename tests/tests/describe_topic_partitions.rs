//! DescribeTopicPartitions (KIP-966) with raw requests against three nodes: topics by name with
//! what Metadata says of their partitions, missing topics, every topic for an empty list,
//! paging with a partition limit of 1 through the cursors across two topics, a cursor Kafka
//! refuses, and a stopped broker's replicas listed offline.

use std::time::Duration;

use anyhow::{bail, ensure, Result};
use brook_tests::cluster::*;
use brook_tests::*;
use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
use kafka_protocol::messages::describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic;
use kafka_protocol::messages::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};

/// Every operation a topic supports, as Kafka answers without an authorizer.
const TOPIC_OPERATIONS: i32 = 3576;
const INVALID_REQUEST: i16 = 42;

fn describe(
    c: &Cluster,
    id: i32,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> Result<DescribeTopicPartitionsResponse> {
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(
            topics
                .iter()
                .map(|t| TopicRequest::default().with_name(topic_name(t)))
                .collect(),
        )
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(topic, partition)| {
            Cursor::default()
                .with_topic_name(topic_name(topic))
                .with_partition_index(partition)
        }));
    c.conn(id)?.call(0, &request)
}

fn name(t: &DescribeTopicPartitionsResponseTopic) -> String {
    t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default()
}

/// (topic, partition) pairs in the order an answer lists them.
fn listed(r: &DescribeTopicPartitionsResponse) -> Vec<(String, i32)> {
    r.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (name(t), p.partition_index)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_partitions_and_pages() -> Result<()> {
    let mut c = Cluster::start_with(3, |o| {
        // A stopped broker counts as down after 3 s rather than 9.
        o.set("broker.heartbeat.interval.ms", 500)
            .set("broker.session.timeout.ms", 3000);
    });
    c.create_replicated_topic(1, "alpha", 3, 3, &[])?;
    c.create_replicated_topic(1, "beta", 2, 2, &[])?;

    // One topic, described as Metadata describes it.
    let r = describe(&c, 2, &["alpha"], 2000, None)?;
    ensure!(r.next_cursor.is_none(), "{r:?}");
    let [topic] = r.topics.as_slice() else {
        bail!("one topic asked for: {r:?}")
    };
    let meta = wait_for("node 2 to know alpha", EVENTUALLY, || c.topic(2, "alpha"))?;
    ensure!(name(topic) == "alpha" && topic.error_code == 0, "{topic:?}");
    ensure!(topic.topic_id.to_string() == meta.id, "{topic:?} {meta:?}");
    ensure!(!topic.is_internal, "{topic:?}");
    ensure!(
        topic.topic_authorized_operations == TOPIC_OPERATIONS,
        "{topic:?}"
    );
    ensure!(topic.partitions.len() == 3, "{topic:?}");
    for (p, m) in topic.partitions.iter().zip(&meta.partitions) {
        let ids = |v: &[kafka_protocol::messages::BrokerId]| v.iter().map(|b| b.0).collect();
        let got: (i32, i32, i32, Vec<i32>, Vec<i32>) = (
            p.partition_index,
            p.leader_id.0,
            p.leader_epoch,
            ids(&p.replica_nodes),
            ids(&p.isr_nodes),
        );
        let want = (
            m.index,
            m.leader,
            m.leader_epoch,
            m.replicas.clone(),
            m.isr.clone(),
        );
        ensure!(got == want, "partition {got:?}, Metadata says {want:?}");
        ensure!(p.error_code == 0 && p.offline_replicas.is_empty(), "{p:?}");
        ensure!(
            p.eligible_leader_replicas.as_deref() == Some(&[][..])
                && p.last_known_elr.as_deref() == Some(&[][..]),
            "{p:?}"
        );
    }

    // A missing topic is answered with UNKNOWN_TOPIC_OR_PARTITION and no id, in name order.
    let r = describe(&c, 1, &["missing", "alpha"], 2000, None)?;
    let answered: Vec<(String, i16, bool)> = r
        .topics
        .iter()
        .map(|t| (name(t), t.error_code, t.topic_id.is_nil()))
        .collect();
    ensure!(
        answered
            == vec![
                ("alpha".into(), 0, false),
                ("missing".into(), codes::UNKNOWN_TOPIC_OR_PARTITION, true)
            ],
        "{answered:?}"
    );

    // An empty list describes every topic.
    let r = describe(&c, 3, &[], 2000, None)?;
    let names: Vec<String> = r.topics.iter().map(name).collect();
    ensure!(names == ["alpha", "beta"], "{names:?}");
    ensure!(listed(&r).len() == 5 && r.next_cursor.is_none(), "{r:?}");

    // One partition per answer: the cursors walk alpha 0-2, then beta 0-1, and end.
    let mut walked = Vec::new();
    let mut cursor: Option<(String, i32)> = None;
    for page in 1.. {
        ensure!(page <= 10, "paging does not end: {walked:?}");
        let at = cursor.as_ref().map(|(t, p)| (t.as_str(), *p));
        let r = describe(&c, 1, &["beta", "alpha"], 1, at)?;
        let got = listed(&r);
        ensure!(got.len() == 1, "page {page} from {cursor:?}: {r:?}");
        walked.extend(got);
        cursor = r
            .next_cursor
            .map(|n| (n.topic_name.0.to_string(), n.partition_index));
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<(String, i32)> = [
        ("alpha", 0),
        ("alpha", 1),
        ("alpha", 2),
        ("beta", 0),
        ("beta", 1),
    ]
    .into_iter()
    .map(|(t, p)| (t.to_string(), p))
    .collect();
    ensure!(walked == want, "walked {walked:?}");
    // A limit of 0 is taken as 1 (Kafka 4 clamps it to 1..=2000); a cursor mid-topic starts
    // there, and the next topic starts the next page.
    let r = describe(&c, 1, &["alpha", "beta"], 0, Some(("alpha", 2)))?;
    ensure!(listed(&r) == [("alpha".to_string(), 2)], "{r:?}");
    let next = r
        .next_cursor
        .map(|n| (n.topic_name.0.to_string(), n.partition_index));
    ensure!(next == Some(("beta".to_string(), 0)), "{next:?}");
    // The whole list from the cursor on fits: no next cursor. Every topic (empty list) pages too.
    let r = describe(&c, 1, &[], 2000, Some(("alpha", 1)))?;
    ensure!(listed(&r).len() == 4 && r.next_cursor.is_none(), "{r:?}");

    // Kafka refuses a cursor on a topic the list does not name, and a negative partition.
    for (topics, cursor) in [
        (&["beta"][..], ("alpha", 0)),
        (&["alpha"][..], ("alpha", -1)),
    ] {
        let r = describe(&c, 1, topics, 10, Some(cursor))?;
        ensure!(
            r.topics.len() == 1
                && r.topics
                    .iter()
                    .all(|t| t.error_code == INVALID_REQUEST && t.partitions.is_empty()),
            "cursor {cursor:?} over {topics:?}: {r:?}"
        );
    }

    // A stopped broker's replicas are offline, and it leads nothing.
    c.terminate(3);
    wait_for(
        "node 3's replicas to be offline",
        Duration::from_secs(60),
        || {
            let r = describe(&c, 1, &["alpha"], 2000, None)?;
            let partitions = &r.topics[0].partitions;
            let offline = partitions
                .iter()
                .all(|p| p.offline_replicas.iter().map(|b| b.0).eq([3]) && p.leader_id.0 != 3);
            if offline {
                return Ok(Some(()));
            }
            bail!("{partitions:?}")
        },
    )?;
    Ok(())
}
