//! Consumer groups at the protocol level: every version of every group API against a real
//! node, and a coordinator killed in the middle of commits on a 3-node cluster, in the clear
//! and on a cluster that speaks only SASL_SSL.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Result};
use brook_tests::cluster::{create_topics, Cluster};
use brook_tests::{unique_name, wait_for, Broker, RawConn, Security};
use bytes::Bytes;
use kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    DeleteGroupsRequest, DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest,
    LeaveGroupRequest, ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest,
    SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

const NONE: i16 = 0;
const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const MEMBER_ID_REQUIRED: i16 = 79;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const GROUP_ID_NOT_FOUND: i16 = 69;

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn group_id(s: &str) -> GroupId {
    GroupId(text(s))
}

fn topic_name(s: &str) -> TopicName {
    TopicName(text(s))
}

/// JoinGroup as a new member; v4+ first gets MEMBER_ID_REQUIRED and rejoins with that id.
/// Returns (member id, generation, leader).
fn join(conn: &mut RawConn, version: i16, group: &str) -> Result<(String, i32, String)> {
    let request = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(group_id(group))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_member_id(text(member))
            .with_protocol_type(text("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default()
                .with_name(text("range"))
                .with_metadata(Bytes::from_static(b"opaque to the broker"))])
    };
    let first = conn.call(version, &request(""))?;
    let answer = if version >= 4 {
        ensure!(
            first.error_code == MEMBER_ID_REQUIRED && !first.member_id.is_empty(),
            "JoinGroup v{version}: expected MEMBER_ID_REQUIRED with an id, got {first:?}"
        );
        conn.call(version, &request(&first.member_id))?
    } else {
        first
    };
    ensure!(
        answer.error_code == NONE,
        "JoinGroup v{version}: {answer:?}"
    );
    ensure!(
        answer.leader == answer.member_id && answer.members.len() == 1,
        "JoinGroup v{version}: a lone member leads and sees itself: {answer:?}"
    );
    if version >= 7 {
        ensure!(answer.protocol_type.as_deref() == Some("consumer"));
    }
    ensure!(answer.protocol_name.as_deref() == Some("range"));
    Ok((
        answer.member_id.to_string(),
        answer.generation_id,
        answer.leader.to_string(),
    ))
}

fn commit(
    conn: &mut RawConn,
    version: i16,
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> Result<Vec<i16>> {
    let partitions = offsets
        .iter()
        .map(|&(p, o)| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(p)
                .with_committed_offset(o)
                .with_committed_metadata(Some(text("m")))
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(text(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(partitions)]);
    let response = conn.call(version, &request)?;
    Ok(response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect())
}

/// Committed offsets of `partitions` of `topic`: (group error, [(partition, offset)]).
fn fetch(
    conn: &mut RawConn,
    version: i16,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<(i16, Vec<(i32, i64)>)> {
    if version >= 8 {
        let request =
            OffsetFetchRequest::default().with_groups(vec![OffsetFetchRequestGroup::default()
                .with_group_id(group_id(group))
                .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(partitions.to_vec())]))]);
        let response = conn.call(version, &request)?;
        let g = response
            .groups
            .first()
            .ok_or_else(|| anyhow::anyhow!("no group in {response:?}"))?;
        let offsets = g
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.committed_offset))
            .collect();
        return Ok((g.error_code, offsets));
    }
    let request = OffsetFetchRequest::default()
        .with_group_id(group_id(group))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes(partitions.to_vec())]));
    let response = conn.call(version, &request)?;
    let offsets = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter())
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    Ok((response.error_code, offsets))
}

/// One member runs a whole group life cycle at each version of every group API, so every
/// field a version has (and none it lacks) is encoded and decoded by a real client library.
#[test]
fn every_version_of_every_group_api_works() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.set("group.initial.rebalance.delay.ms", 0);
    });
    let topic = unique_name("gv");
    let mut conn = RawConn::connect(broker.addr())?;
    for (t, code, message) in create_topics(&mut conn, &[&topic], 2, 10_000)? {
        ensure!(code == NONE, "CreateTopics {t}: {code} {message:?}");
    }
    for step in 0..8i16 {
        let group = format!("{topic}-g{step}");
        let (join_v, sync_v, hb_v) = (2 + step, step.min(5), step.min(4));
        let (commit_v, fetch_v, leave_v) = (2 + step, 1 + step, step.min(5));
        let (describe_v, list_v, delete_v) = (step.min(6), step.min(5), step.min(2));

        let coordinator = conn.call(
            step.min(3),
            &FindCoordinatorRequest::default().with_key(text(&group)),
        )?;
        ensure!(
            coordinator.error_code == NONE && coordinator.node_id.0 == 1,
            "FindCoordinator: {coordinator:?}"
        );
        let (member, generation, _) = join(&mut conn, join_v, &group)?;
        let sync = conn.call(
            sync_v,
            &SyncGroupRequest::default()
                .with_group_id(group_id(&group))
                .with_generation_id(generation)
                .with_member_id(text(&member))
                .with_protocol_type(Some(text("consumer")).filter(|_| sync_v >= 5))
                .with_protocol_name(Some(text("range")).filter(|_| sync_v >= 5))
                .with_assignments(vec![SyncGroupRequestAssignment::default()
                    .with_member_id(text(&member))
                    .with_assignment(Bytes::from_static(b"all of it"))]),
        )?;
        ensure!(
            sync.error_code == NONE && sync.assignment == Bytes::from_static(b"all of it"),
            "SyncGroup v{sync_v}: {sync:?}"
        );
        let heartbeat = |conn: &mut RawConn, generation: i32, member: &str| {
            conn.call(
                hb_v,
                &HeartbeatRequest::default()
                    .with_group_id(group_id(&group))
                    .with_generation_id(generation)
                    .with_member_id(text(member)),
            )
            .map(|r| r.error_code)
        };
        ensure!(heartbeat(&mut conn, generation, &member)? == NONE);
        ensure!(heartbeat(&mut conn, generation + 1, &member)? == ILLEGAL_GENERATION);
        ensure!(heartbeat(&mut conn, generation, "stranger")? == UNKNOWN_MEMBER_ID);

        let codes = commit(
            &mut conn,
            commit_v,
            &group,
            generation,
            &member,
            &topic,
            &[(0, 10 + i64::from(step)), (1, 20), (7, 1)],
        )?;
        ensure!(
            codes == [NONE, NONE, UNKNOWN_TOPIC_OR_PARTITION],
            "OffsetCommit v{commit_v}: {codes:?}"
        );
        let stale = commit(
            &mut conn,
            commit_v,
            &group,
            generation - 1,
            &member,
            &topic,
            &[(0, 99)],
        )?;
        ensure!(stale == [ILLEGAL_GENERATION], "stale generation: {stale:?}");
        for v in [fetch_v, 9] {
            let (error, offsets) = fetch(&mut conn, v, &group, &topic, &[0, 1, 5])?;
            ensure!(
                error == NONE && offsets == [(0, 10 + i64::from(step)), (1, 20), (5, -1)],
                "OffsetFetch v{v}: {error} {offsets:?}"
            );
        }

        let described = conn.call(
            describe_v,
            &DescribeGroupsRequest::default().with_groups(vec![group_id(&group)]),
        )?;
        let d = &described.groups[0];
        ensure!(
            d.error_code == NONE
                && d.group_state.as_str() == "Stable"
                && d.protocol_data.as_str() == "range"
                && d.members.len() == 1
                && d.members[0].member_id.as_str() == member
                && d.members[0].member_assignment == Bytes::from_static(b"all of it"),
            "DescribeGroups v{describe_v}: {d:?}"
        );
        let listed = conn.call(list_v, &ListGroupsRequest::default())?;
        ensure!(
            listed.groups.iter().any(|g| g.group_id.as_str() == group),
            "ListGroups v{list_v}: {listed:?}"
        );

        let leave = if leave_v >= 3 {
            LeaveGroupRequest::default()
                .with_group_id(group_id(&group))
                .with_members(vec![
                    MemberIdentity::default().with_member_id(text(&member)),
                    MemberIdentity::default().with_member_id(text("stranger")),
                ])
        } else {
            LeaveGroupRequest::default()
                .with_group_id(group_id(&group))
                .with_member_id(text(&member))
        };
        let left = conn.call(leave_v, &leave)?;
        ensure!(left.error_code == NONE, "LeaveGroup v{leave_v}: {left:?}");
        if leave_v >= 3 {
            let codes: Vec<i16> = left.members.iter().map(|m| m.error_code).collect();
            ensure!(
                codes == [NONE, UNKNOWN_MEMBER_ID],
                "LeaveGroup members: {codes:?}"
            );
        }
        // The group is empty now: its offsets stay, and it can be deleted.
        let (_, offsets) = fetch(&mut conn, 9, &group, &topic, &[1])?;
        ensure!(offsets == [(1, 20)], "offsets after leaving: {offsets:?}");
        let deleted = conn.call(
            delete_v,
            &DeleteGroupsRequest::default().with_groups_names(vec![group_id(&group)]),
        )?;
        ensure!(
            deleted.results[0].error_code == NONE,
            "DeleteGroups v{delete_v}: {deleted:?}"
        );
        let (_, offsets) = fetch(&mut conn, 9, &group, &topic, &[1])?;
        ensure!(offsets == [(1, -1)], "offsets after delete: {offsets:?}");
        let again = conn.call(
            delete_v,
            &DeleteGroupsRequest::default().with_groups_names(vec![group_id(&group)]),
        )?;
        ensure!(again.results[0].error_code == GROUP_ID_NOT_FOUND);
        if describe_v >= 6 {
            let gone = conn.call(
                describe_v,
                &DescribeGroupsRequest::default().with_groups(vec![group_id(&group)]),
            )?;
            ensure!(
                gone.groups[0].error_code == GROUP_ID_NOT_FOUND
                    && gone.groups[0].group_state.as_str() == "Dead",
                "DescribeGroups of a deleted group: {gone:?}"
            );
        }
    }
    Ok(())
}

/// Where node `via` says the group's coordinator is.
fn find_coordinator(cluster: &Cluster, via: i32, group: &str) -> Result<i32> {
    let answer = cluster
        .conn(via)?
        .call(3, &FindCoordinatorRequest::default().with_key(text(group)))?;
    ensure!(answer.error_code == NONE, "FindCoordinator: {answer:?}");
    Ok(answer.node_id.0)
}

/// Standalone commits (generation -1, as consumers that assign partitions themselves make)
/// run while the coordinator is killed: every commit that was acknowledged survives, the
/// survivors agree on a new coordinator, no committed offset ever goes backwards, and when the
/// old coordinator returns and takes its group back it serves the newest commits.
#[test]
fn coordinator_failover_keeps_every_acknowledged_commit() -> Result<()> {
    coordinator_failover(Security::plaintext())
}

/// As above on a cluster that speaks only SASL_SSL, with ACLs, as `brook cluster up --secure`
/// sets it up: every request goes over TLS as the admin user.
#[test]
fn coordinator_failover_keeps_every_acknowledged_commit_on_a_secure_cluster() -> Result<()> {
    coordinator_failover(Security::sasl_ssl())
}

fn coordinator_failover(security: Security) -> Result<()> {
    let mut cluster = Cluster::start_with(3, |o| {
        o.secure(&security);
    });
    if security.is_secure() {
        for id in cluster.ids() {
            brook_tests::secure::plaintext_is_refused(cluster.addr(id))?;
        }
    }
    let topic = unique_name("gfail");
    cluster.create_topic(1, &topic, 3)?;
    let group = unique_name("gfail-group");
    let first = find_coordinator(&cluster, 1, &group)?;
    for id in cluster.ids() {
        ensure!(
            find_coordinator(&cluster, id, &group)? == first,
            "nodes disagree"
        );
    }

    let mut acknowledged = 0i64;
    let commit_at = |cluster: &Cluster, node: i32, offset: i64| -> Result<i16> {
        let mut conn = cluster.conn(node)?;
        let codes = commit(
            &mut conn,
            9,
            &group,
            -1,
            "",
            &topic,
            &[(0, offset), (1, offset)],
        )?;
        ensure!(codes[0] == codes[1], "one request, one verdict: {codes:?}");
        Ok(codes[0])
    };
    for offset in 1..=50 {
        let code = commit_at(&cluster, first, offset)?;
        ensure!(code == NONE, "commit {offset}: {code}");
        acknowledged = offset;
    }
    cluster.kill9(first);
    let killed = Instant::now();

    // Keep committing through whichever node is the coordinator; retriable errors meanwhile.
    let survivors: Vec<i32> = cluster.up_ids();
    let mut offset = acknowledged;
    let mut next = None;
    while next.is_none() {
        ensure!(
            killed.elapsed() < Duration::from_secs(60),
            "no new coordinator after 60 s"
        );
        let Ok(candidate) = find_coordinator(&cluster, survivors[0], &group) else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        if candidate == first {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        offset += 1;
        match commit_at(&cluster, candidate, offset)? {
            NONE => {
                acknowledged = offset;
                next = Some(candidate);
            }
            NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | COORDINATOR_LOAD_IN_PROGRESS => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => bail!("commit through the new coordinator: error {other}"),
        }
    }
    let next = next.unwrap_or_default();
    eprintln!(
        "new coordinator {next} took commits {:?} after the kill",
        killed.elapsed()
    );
    for id in &survivors {
        ensure!(find_coordinator(&cluster, *id, &group)? == next);
    }
    for offset in acknowledged + 1..=acknowledged + 20 {
        ensure!(commit_at(&cluster, next, offset)? == NONE);
    }
    acknowledged += 20;
    for id in &survivors {
        wait_for(
            &format!("node {id} shows commit {acknowledged}"),
            Duration::from_secs(10),
            || {
                let (error, offsets) = fetch(&mut cluster.conn(*id)?, 9, &group, &topic, &[0, 1])?;
                ensure!(
                    error == NONE && offsets == [(0, acknowledged), (1, acknowledged)],
                    "node {id}: {error} {offsets:?}"
                );
                Ok(Some(()))
            },
        )?;
    }

    // The old coordinator comes back; rendezvous hashing hands it its group again, and it
    // must serve the commits made while it was away.
    cluster.restart(first);
    wait_for(
        "the restarted node coordinates its group again",
        Duration::from_secs(30),
        || {
            let c = find_coordinator(&cluster, next, &group)?;
            ensure!(c == first, "coordinator is {c}");
            Ok(Some(()))
        },
    )?;
    let mut seen = BTreeMap::new();
    wait_for(
        "a commit through the returned coordinator",
        Duration::from_secs(30),
        || {
            let code = commit_at(&cluster, first, acknowledged + 1)?;
            ensure!(code == NONE, "error {code}");
            Ok(Some(()))
        },
    )?;
    acknowledged += 1;
    for id in cluster.ids() {
        let (error, offsets) = fetch(&mut cluster.conn(id)?, 9, &group, &topic, &[0, 1])?;
        seen.insert(id, (error, offsets.clone()));
        if id == first {
            ensure!(
                error == NONE && offsets == [(0, acknowledged), (1, acknowledged)],
                "the returned coordinator serves {offsets:?} (error {error}); expected {acknowledged}"
            );
        }
    }
    eprintln!("committed offsets per node: {seen:?}");
    Ok(())
}

/// A commit too large for one metadata log entry is refused with INVALID_COMMIT_OFFSET_SIZE
/// (as Kafka refuses one too large for `__consumer_offsets`), and nothing else is disturbed:
/// the Raft group keeps replicating and the next commit goes through.
#[test]
fn an_oversized_commit_is_refused_and_the_node_keeps_serving() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.set("offset.metadata.max.bytes", 8192);
    });
    let topic = unique_name("gbig");
    let group = unique_name("gbig-group");
    let mut conn = RawConn::connect(broker.addr())?;
    for (t, code, message) in create_topics(&mut conn, &[&topic], 1, 10_000)? {
        ensure!(code == NONE, "CreateTopics {t}: {code} {message:?}");
    }
    let metadata = "m".repeat(8000);
    let partitions = (0..1000)
        .map(|i| {
            OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(i)
                .with_committed_metadata(Some(text(&metadata)))
        })
        .collect();
    let request = OffsetCommitRequest::default()
        .with_group_id(group_id(&group))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(&topic))
            .with_partitions(partitions)]);
    let response = conn.call(8, &request)?;
    let codes: Vec<i16> = response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect();
    const INVALID_COMMIT_OFFSET_SIZE: i16 = 28;
    ensure!(
        codes.len() == 1000 && codes.iter().all(|&c| c == INVALID_COMMIT_OFFSET_SIZE),
        "an 8 MB commit: {:?}",
        &codes[..codes.len().min(5)]
    );
    let codes = commit(&mut conn, 9, &group, -1, "", &topic, &[(0, 42)])?;
    ensure!(codes == [NONE], "a normal commit afterwards: {codes:?}");
    let (error, offsets) = fetch(&mut conn, 9, &group, &topic, &[0])?;
    ensure!(error == NONE && offsets == [(0, 42)], "{error} {offsets:?}");
    Ok(())
}
