//! Requests that try to make one node do or hold far more than they cost the sender: each is
//! answered at a cost bounded by the cluster, not by the request, or the connection is closed,
//! and the node keeps serving a real client afterwards.

use std::net::Shutdown;
use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use brook_tests::*;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::MetadataRequest;
use kafka_protocol::records::Compression;

/// How long a test waits for the broker to close a connection it should close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A topic with one partition holding a few records.
async fn topic_with_data(broker: &Broker, name: &str) -> Result<()> {
    create_topic(broker, name, 1, &[]).await?;
    let mut conn = RawConn::connect(broker.addr())?;
    let batch = record_batch(
        &[b"a" as &[u8], b"b", b"c"],
        2,
        NO_PRODUCER,
        -1,
        0,
        Compression::None,
    )?;
    let answers = produce_raw(&mut conn, name, &[(0, batch)])?;
    ensure!(
        answers.iter().all(|p| p.error_code == codes::NONE),
        "{answers:?}"
    );
    Ok(())
}

/// A Metadata request naming one topic 400 times describes it once (Kafka answers a name once),
/// so the answer does not grow with the repetition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_describes_a_repeated_topic_once() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "wide", 8, &[]).await?;
    let mut conn = RawConn::connect(broker.addr())?;
    let request = MetadataRequest::default().with_topics(Some(
        (0..400)
            .map(|_| MetadataRequestTopic::default().with_name(Some(topic_name("wide"))))
            .collect(),
    ));
    let response = conn.call(9, &request)?;
    let names: Vec<_> = response
        .topics
        .iter()
        .map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    ensure!(
        names == [Some("wide".to_string())],
        "{} topic entries: {:?}",
        names.len(),
        &names[..names.len().min(3)]
    );
    ensure!(response.topics[0].partitions.len() == 8);
    assert_healthy(&broker).await;
    Ok(())
}

/// A Fetch naming one partition 300 times reads it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_reads_a_repeated_partition_once() -> Result<()> {
    let broker = Broker::start();
    topic_with_data(&broker, "repeated").await?;
    let mut conn = RawConn::connect(broker.addr())?;
    let request = fetch_request("repeated", 0, 0, 0, 300);
    let response = conn.call(FETCH_VERSION, &request)?;
    ensure!(
        response.responses.len() == 1,
        "{:?}",
        response.responses.len()
    );
    let partitions = &response.responses[0].partitions;
    ensure!(
        partitions.len() == 1,
        "{} partition answers",
        partitions.len()
    );
    ensure!(decode_records(partitions[0].records.as_ref())?.len() == 3);
    assert_healthy(&broker).await;
    Ok(())
}

/// A connection that sends nothing is closed after `connections.max.idle.ms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.set("connections.max.idle.ms", 1_000);
    });
    let mut idle = RawConn::connect(broker.addr())?;
    idle.expect_closed(CLOSE_TIMEOUT)?;
    assert_healthy(&broker).await;
    Ok(())
}

/// A frame that stops arriving halfway is dropped after `brook.request.receive.timeout.ms`,
/// with the request budget it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_frames_time_out() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.set("brook.request.receive.timeout.ms", 1_000);
    });
    let mut slow = RawConn::connect(broker.addr())?;
    let mut partial = (1_000_000i32).to_be_bytes().to_vec();
    partial.extend_from_slice(&[0u8; 1000]);
    slow.write_raw(&partial)?;
    slow.expect_closed(CLOSE_TIMEOUT)?;
    assert_healthy(&broker).await;
    Ok(())
}

/// `queued.max.request.bytes` bounds what all connections together hold: while a half-sent
/// frame holds the whole budget, another connection's request waits, and it is answered once
/// the half-sent frame is given up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bytes_share_one_budget() -> Result<()> {
    const BUDGET: i32 = 1 << 20;
    let broker = Broker::start_with(|o| {
        o.set("socket.request.max.bytes", BUDGET)
            .set("queued.max.request.bytes", BUDGET)
            .set("brook.request.receive.timeout.ms", 8_000);
    });
    let mut hog = RawConn::connect(broker.addr())?;
    let mut partial = BUDGET.to_be_bytes().to_vec();
    partial.extend_from_slice(&[0u8; 100]);
    hog.write_raw(&partial)?;
    // Give the broker time to read the hog's prefix and take the budget (nothing tells a
    // client when it did; two seconds is far more than reading 104 bytes takes).
    std::thread::sleep(Duration::from_secs(2));
    let mut other = RawConn::connect(broker.addr())?;
    let sent = Instant::now();
    let response = other.call(9, &MetadataRequest::default().with_topics(Some(vec![])))?;
    let waited = sent.elapsed();
    ensure!(response.brokers.len() == 1);
    ensure!(
        waited >= Duration::from_secs(3),
        "answered after {waited:?}, while the hog held the budget"
    );
    hog.expect_closed(CLOSE_TIMEOUT)?;
    let _ = hog.stream().shutdown(Shutdown::Both);
    assert_healthy(&broker).await;
    Ok(())
}

/// The end of this node's metadata Raft log, from DescribeQuorum.
fn raft_log_end(conn: &mut RawConn) -> Result<i64> {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::DescribeQuorumRequest;
    let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(topic_name("__cluster_metadata"))
        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
    let response = conn.call(1, &request)?;
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| anyhow::anyhow!("no quorum in {response:?}"))?;
    Ok(partition.high_watermark)
}

/// Describing (or heartbeating into) groups nobody created starts no coordinator for them and
/// writes nothing through Raft: made-up ids cost a lookup, not a log entry each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_groups_cost_no_raft_writes() -> Result<()> {
    use kafka_protocol::messages::{DescribeGroupsRequest, GroupId, HeartbeatRequest};
    use kafka_protocol::protocol::StrBytes;
    const GHOSTS: usize = 1000;
    let broker = Broker::start();
    let mut conn = RawConn::connect(broker.addr())?;
    let before = raft_log_end(&mut conn)?;
    let ids: Vec<GroupId> = (0..GHOSTS)
        .map(|i| GroupId(StrBytes::from_string(format!("ghost-{i}"))))
        .collect();
    let described = conn.call(5, &DescribeGroupsRequest::default().with_groups(ids))?;
    ensure!(described.groups.len() == GHOSTS);
    for g in &described.groups {
        ensure!(
            g.error_code == codes::NONE && g.group_state.as_str() == "Dead",
            "{g:?}"
        );
    }
    let heartbeat = conn.call(
        4,
        &HeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_static_str("ghost-hb")))
            .with_member_id(StrBytes::from_static_str("nobody"))
            .with_generation_id(1),
    )?;
    ensure!(heartbeat.error_code == 25, "{heartbeat:?}"); // UNKNOWN_MEMBER_ID
    let after = raft_log_end(&mut conn)?;
    // Broker heartbeats keep writing meanwhile (a few a second), never one entry per group.
    ensure!(
        after - before < 100,
        "the Raft log grew by {} entries for {GHOSTS} made-up groups",
        after - before
    );
    assert_healthy(&broker).await;
    Ok(())
}

/// A group's members choose the size of their subscriptions and assignments; a generation
/// whose record exceeds `brook.group.record.max.bytes` is not written to the metadata log
/// (SyncGroup answers UNKNOWN_SERVER_ERROR, as Kafka does for a group record over its offsets
/// topic's message size), and the node keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_group_records_stay_out_of_raft() -> Result<()> {
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
    use kafka_protocol::messages::{GroupId, JoinGroupRequest, SyncGroupRequest};
    use kafka_protocol::protocol::StrBytes;
    let broker = Broker::start_with(|o| {
        o.set("group.initial.rebalance.delay.ms", 0);
    });
    let mut conn = RawConn::connect(broker.addr())?;
    let group = GroupId(StrBytes::from_static_str("big"));
    let join = JoinGroupRequest::default()
        .with_group_id(group.clone())
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(StrBytes::from_static_str("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(vec![7u8; 600_000].into())]);
    // v3: no MEMBER_ID_REQUIRED round trip.
    let joined = conn.call(3, &join)?;
    ensure!(joined.error_code == codes::NONE, "{:?}", joined.error_code);
    let sync = SyncGroupRequest::default()
        .with_group_id(group)
        .with_generation_id(joined.generation_id)
        .with_member_id(joined.member_id.clone())
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(joined.member_id.clone())
            .with_assignment(vec![9u8; 600_000].into())]);
    let synced = conn.call(3, &sync)?;
    ensure!(
        synced.error_code == -1,
        "SyncGroup answered {}",
        synced.error_code
    );
    assert_healthy(&broker).await;
    Ok(())
}
