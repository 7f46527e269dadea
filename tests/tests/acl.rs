//! The ACL matrix: against a real node with an authorizer, every API brook serves is sent by a
//! user without ACLs, who gets Kafka's authorization error and sees nothing it should not
//! (topics in Metadata, groups in ListGroups, offsets in OffsetFetch), and then again after
//! the admin adds the ACLs Kafka requires, which lets the same request through. A DENY beats
//! an ALLOW, a prefixed ACL covers the names it starts, and the test fails if brook advertises
//! an API the matrix does not cover.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use anyhow::{ensure, Context, Result};
use brook_tests::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use ring::{pbkdf2, rand::SecureRandom};

const ADMIN: &str = "admin";
const ADMIN_PASSWORD: &str = "admin-secret";
const BOB: &str = "bob";
const BOB_PASSWORD: &str = "bob-secret";

// Kafka's codes.
const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const SECURITY_DISABLED: i16 = 54;
const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALLOW: i8 = 3;
const DENY: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const DESCRIBE_CONFIGS: i8 = 10;
const ALTER_CONFIGS: i8 = 11;
const IDEMPOTENT_WRITE: i8 = 12;

/// One ACL for bob (or, with `principal`, someone else), from any host.
#[derive(Clone)]
struct Acl {
    resource_type: i8,
    name: &'static str,
    pattern: i8,
    operation: i8,
    permission: i8,
    principal: &'static str,
}

fn allow(resource_type: i8, name: &'static str, operation: i8) -> Acl {
    Acl {
        resource_type,
        name,
        pattern: LITERAL,
        operation,
        permission: ALLOW,
        principal: "User:bob",
    }
}

fn on_cluster(operation: i8) -> Acl {
    allow(CLUSTER, "kafka-cluster", operation)
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// A connection authenticated with SASL PLAIN.
fn login(broker: &Broker, user: &str, password: &str) -> Result<RawConn> {
    let mut conn = RawConn::connect(broker.addr())?;
    let handshake = SaslHandshakeRequest::default().with_mechanism(text("PLAIN"));
    ensure!(conn.call(1, &handshake)?.error_code == 0, "PLAIN handshake");
    let token = format!("\0{user}\0{password}").into_bytes();
    let auth = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    let answer = conn.call(2, &auth)?;
    ensure!(
        answer.error_code == 0,
        "login as {user}: {:?}",
        answer.error_message
    );
    Ok(conn)
}

fn create_acls(admin: &mut RawConn, acls: &[Acl]) -> Result<()> {
    let creations = acls
        .iter()
        .map(|a| {
            create_acls_request::AclCreation::default()
                .with_resource_type(a.resource_type)
                .with_resource_name(text(a.name))
                .with_resource_pattern_type(a.pattern)
                .with_principal(text(a.principal))
                .with_host(text("*"))
                .with_operation(a.operation)
                .with_permission_type(a.permission)
        })
        .collect();
    let response = admin.call(3, &CreateAclsRequest::default().with_creations(creations))?;
    for r in response.results {
        ensure!(r.error_code == 0, "CreateAcls: {:?}", r.error_message);
    }
    Ok(())
}

/// Removes every ACL, and checks none is left.
fn delete_all_acls(admin: &mut RawConn) -> Result<()> {
    // Null filters match anything; kafka-protocol defaults them to empty strings.
    let any = delete_acls_request::DeleteAclsFilter::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1);
    let response = admin.call(3, &DeleteAclsRequest::default().with_filters(vec![any]))?;
    ensure!(response.filter_results[0].error_code == 0, "DeleteAcls");
    let removed = &response.filter_results[0].matching_acls;
    let left = admin.call(3, &describe_all())?;
    ensure!(
        left.error_code == 0 && left.resources.is_empty(),
        "ACLs left after removing {}",
        removed.len()
    );
    Ok(())
}

fn describe_all() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_pattern_type_filter(1)
        .with_operation(1)
        .with_permission_type(1)
}

/// bob's SCRAM-SHA-256 credential, made by the admin as a client would (KIP-554).
fn create_bob(admin: &mut RawConn) -> Result<()> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    let mut salted = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        std::num::NonZeroU32::new(4096).context("iterations")?,
        &salt,
        BOB_PASSWORD.as_bytes(),
        &mut salted,
    );
    let upsert = alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
        .with_name(text(BOB))
        .with_mechanism(1)
        .with_iterations(4096)
        .with_salt(salt.to_vec().into())
        .with_salted_password(salted.to_vec().into());
    let response = admin.call(
        0,
        &AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsert]),
    )?;
    ensure!(response.results[0].error_code == 0, "creating bob");
    Ok(())
}

/// One API's row of the matrix: the request (answering the code that matters), what bob gets
/// without ACLs, and after each grant the code he gets next.
struct Case {
    api: ApiKey,
    call: fn(&mut RawConn) -> Result<i16>,
    denied: i16,
    grants: Vec<(Vec<Acl>, i16)>,
}

fn case(
    api: ApiKey,
    call: fn(&mut RawConn) -> Result<i16>,
    denied: i16,
    grants: Vec<(Vec<Acl>, i16)>,
) -> Case {
    Case {
        api,
        call,
        denied,
        grants,
    }
}

fn first<T>(items: Vec<T>, what: &str) -> Result<T> {
    items
        .into_iter()
        .next()
        .with_context(|| format!("no {what}"))
}

fn metadata(conn: &mut RawConn, topics: Option<&[&str]>) -> Result<MetadataResponse> {
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name(t)))
            })
            .collect()
    });
    conn.call(
        12,
        &MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false)
            .with_include_topic_authorized_operations(true),
    )
}

fn produce(conn: &mut RawConn) -> Result<i16> {
    let batch = record_batch(
        &[b"v"],
        2,
        ProducerIdentity { id: -1, epoch: -1 },
        -1,
        1,
        Compression::None,
    )?;
    Ok(first(produce_raw(conn, "t", &[(0, batch)])?, "partition")?.error_code)
}

fn fetch(conn: &mut RawConn) -> Result<i16> {
    let response = conn.call(12, &fetch_request("t", 0, 0, 0, 1))?;
    let topic = first(response.responses, "topic")?;
    Ok(first(topic.partitions, "partition")?.error_code)
}

fn list_offsets(conn: &mut RawConn) -> Result<i16> {
    let p = list_offsets_request::ListOffsetsPartition::default()
        .with_partition_index(0)
        .with_timestamp(-1);
    let t = list_offsets_request::ListOffsetsTopic::default()
        .with_name(topic_name("t"))
        .with_partitions(vec![p]);
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![t]);
    let response = conn.call(7, &request)?;
    Ok(first(first(response.topics, "topic")?.partitions, "partition")?.error_code)
}

fn offset_for_leader_epoch(conn: &mut RawConn) -> Result<i16> {
    let p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
        .with_partition(0)
        .with_current_leader_epoch(-1)
        .with_leader_epoch(0);
    let t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
        .with_topic(topic_name("t"))
        .with_partitions(vec![p]);
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![t]);
    let response = conn.call(4, &request)?;
    Ok(first(first(response.topics, "topic")?.partitions, "partition")?.error_code)
}

fn delete_records(conn: &mut RawConn) -> Result<i16> {
    let p = delete_records_request::DeleteRecordsPartition::default()
        .with_partition_index(0)
        .with_offset(0);
    let t = delete_records_request::DeleteRecordsTopic::default()
        .with_name(topic_name("t"))
        .with_partitions(vec![p]);
    let request = DeleteRecordsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(10_000);
    let response = conn.call(2, &request)?;
    Ok(first(first(response.topics, "topic")?.partitions, "partition")?.error_code)
}

fn create_topic(conn: &mut RawConn) -> Result<i16> {
    create_topic_named(conn, "bobs")
}

fn delete_topic(conn: &mut RawConn) -> Result<i16> {
    let t = delete_topics_request::DeleteTopicState::default().with_name(Some(topic_name("bobs")));
    let request = DeleteTopicsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(10_000);
    Ok(first(conn.call(6, &request)?.responses, "topic")?.error_code)
}

fn create_partitions(conn: &mut RawConn) -> Result<i16> {
    let t = create_partitions_request::CreatePartitionsTopic::default()
        .with_name(topic_name("grow"))
        .with_count(2)
        .with_assignments(None);
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(10_000);
    Ok(first(conn.call(3, &request)?.results, "topic")?.error_code)
}

fn init_producer_id(conn: &mut RawConn) -> Result<i16> {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    Ok(conn.call(4, &request)?.error_code)
}

fn describe_configs(conn: &mut RawConn, resource_type: i8, name: &str) -> Result<i16> {
    let r = describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(text(name));
    let request = DescribeConfigsRequest::default().with_resources(vec![r]);
    Ok(first(conn.call(4, &request)?.results, "resource")?.error_code)
}

fn alter_configs(conn: &mut RawConn) -> Result<i16> {
    let c = alter_configs_request::AlterableConfig::default()
        .with_name(text("retention.ms"))
        .with_value(Some(text("3600000")));
    let r = alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(text("t"))
        .with_configs(vec![c]);
    let request = AlterConfigsRequest::default().with_resources(vec![r]);
    Ok(first(conn.call(2, &request)?.responses, "resource")?.error_code)
}

fn incremental_alter_configs(conn: &mut RawConn) -> Result<i16> {
    let c = incremental_alter_configs_request::AlterableConfig::default()
        .with_name(text("retention.ms"))
        .with_config_operation(0)
        .with_value(Some(text("7200000")));
    let r = incremental_alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(text("t"))
        .with_configs(vec![c]);
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![r]);
    Ok(first(conn.call(1, &request)?.responses, "resource")?.error_code)
}

/// DescribeCluster needs no ACL, but shows the cluster's operations only to who may DESCRIBE
/// it: CLUSTER_AUTHORIZATION_FAILED stands for "no operations shown".
fn describe_cluster(conn: &mut RawConn) -> Result<i16> {
    let request =
        DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let response = conn.call(1, &request)?;
    ensure!(response.error_code == 0 && !response.brokers.is_empty());
    Ok(match response.cluster_authorized_operations {
        0 => CLUSTER_DENIED,
        ops if ops & (1 << DESCRIBE) != 0 => 0,
        ops => anyhow::bail!("cluster operations {ops:#b} without DESCRIBE"),
    })
}

fn find_coordinator(conn: &mut RawConn) -> Result<i16> {
    let request = FindCoordinatorRequest::default()
        .with_key_type(0)
        .with_coordinator_keys(vec![text("g")]);
    Ok(first(conn.call(4, &request)?.coordinators, "coordinator")?.error_code)
}

fn describe_quorum(conn: &mut RawConn) -> Result<i16> {
    let p = describe_quorum_request::PartitionData::default().with_partition_index(0);
    let t = describe_quorum_request::TopicData::default()
        .with_topic_name(topic_name("__cluster_metadata"))
        .with_partitions(vec![p]);
    let request = DescribeQuorumRequest::default().with_topics(vec![t]);
    Ok(conn.call(2, &request)?.error_code)
}

fn describe_log_dirs(conn: &mut RawConn) -> Result<i16> {
    let response = conn.call(4, &DescribeLogDirsRequest::default().with_topics(None))?;
    if response.error_code != 0 {
        ensure!(
            response.results.is_empty(),
            "log dirs shown to an unauthorized caller"
        );
    }
    Ok(response.error_code)
}

fn describe_topic_partitions(conn: &mut RawConn) -> Result<i16> {
    let t = describe_topic_partitions_request::TopicRequest::default().with_name(topic_name("t"));
    let request = DescribeTopicPartitionsRequest::default()
        .with_topics(vec![t])
        .with_response_partition_limit(100);
    Ok(first(conn.call(0, &request)?.topics, "topic")?.error_code)
}

fn alter_reassignments(conn: &mut RawConn) -> Result<i16> {
    let p = alter_partition_reassignments_request::ReassignablePartition::default()
        .with_partition_index(0)
        .with_replicas(Some(vec![BrokerId(1)]));
    let t = alter_partition_reassignments_request::ReassignableTopic::default()
        .with_name(topic_name("t"))
        .with_partitions(vec![p]);
    let request = AlterPartitionReassignmentsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(10_000);
    Ok(conn.call(0, &request)?.error_code)
}

fn list_reassignments(conn: &mut RawConn) -> Result<i16> {
    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(10_000);
    Ok(conn.call(0, &request)?.error_code)
}

fn elect_leaders(conn: &mut RawConn) -> Result<i16> {
    let t = elect_leaders_request::TopicPartitions::default()
        .with_topic(topic_name("t"))
        .with_partitions(vec![0]);
    let request = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_topic_partitions(Some(vec![t]))
        .with_timeout_ms(10_000);
    Ok(conn.call(2, &request)?.error_code)
}

fn join_group(conn: &mut RawConn) -> Result<i16> {
    let p = join_group_request::JoinGroupRequestProtocol::default()
        .with_name(text("range"))
        .with_metadata(vec![0u8, 1].into());
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(text("g2")))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(text("consumer"))
        .with_protocols(vec![p]);
    Ok(conn.call(9, &request)?.error_code)
}

fn sync_group(conn: &mut RawConn) -> Result<i16> {
    let request = SyncGroupRequest::default()
        .with_group_id(GroupId(text("g2")))
        .with_generation_id(1)
        .with_member_id(text("nobody"));
    Ok(conn.call(5, &request)?.error_code)
}

fn heartbeat(conn: &mut RawConn) -> Result<i16> {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(text("g2")))
        .with_generation_id(1)
        .with_member_id(text("nobody"));
    Ok(conn.call(4, &request)?.error_code)
}

fn leave_group(conn: &mut RawConn) -> Result<i16> {
    let m = leave_group_request::MemberIdentity::default().with_member_id(text("nobody"));
    let request = LeaveGroupRequest::default()
        .with_group_id(GroupId(text("g2")))
        .with_members(vec![m]);
    Ok(conn.call(5, &request)?.error_code)
}

fn offset_commit(conn: &mut RawConn) -> Result<i16> {
    let p = offset_commit_request::OffsetCommitRequestPartition::default()
        .with_partition_index(0)
        .with_committed_offset(1)
        .with_committed_leader_epoch(-1);
    let t = offset_commit_request::OffsetCommitRequestTopic::default()
        .with_name(topic_name("t"))
        .with_partitions(vec![p]);
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![t]);
    let response = conn.call(9, &request)?;
    Ok(first(first(response.topics, "topic")?.partitions, "partition")?.error_code)
}

/// OffsetFetch of every committed offset of group g: the group's error, and TOPIC_DENIED
/// while topic t's committed offset is hidden.
fn offset_fetch(conn: &mut RawConn) -> Result<i16> {
    let g = offset_fetch_request::OffsetFetchRequestGroup::default()
        .with_group_id(GroupId(text("g")))
        .with_topics(None);
    let response = conn.call(9, &OffsetFetchRequest::default().with_groups(vec![g]))?;
    let group = first(response.groups, "group")?;
    if group.error_code != 0 {
        ensure!(group.topics.is_empty(), "offsets shown with a group error");
        return Ok(group.error_code);
    }
    let committed = group
        .topics
        .iter()
        .find(|t| t.name.as_str() == "t")
        .and_then(|t| t.partitions.first())
        .map(|p| p.committed_offset);
    Ok(match committed {
        None => TOPIC_DENIED,
        Some(1) => 0,
        Some(other) => anyhow::bail!("committed offset {other}"),
    })
}

fn describe_groups(conn: &mut RawConn) -> Result<i16> {
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(text("g"))])
        .with_include_authorized_operations(true);
    let group = first(conn.call(5, &request)?.groups, "group")?;
    if group.error_code == 0 {
        ensure!(group.authorized_operations & (1 << DESCRIBE) != 0);
    }
    Ok(group.error_code)
}

/// ListGroups: GROUP_DENIED stands for "group g is not listed".
fn list_groups(conn: &mut RawConn) -> Result<i16> {
    let response = conn.call(5, &ListGroupsRequest::default())?;
    ensure!(response.error_code == 0);
    let listed = response.groups.iter().any(|g| g.group_id.as_str() == "g");
    Ok(if listed { 0 } else { GROUP_DENIED })
}

fn delete_groups(conn: &mut RawConn) -> Result<i16> {
    let request = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text("g3"))]);
    Ok(first(conn.call(2, &request)?.results, "group")?.error_code)
}

/// OffsetDelete of group g's offset on topic t: the group's error, else the partition's.
fn offset_delete(conn: &mut RawConn) -> Result<i16> {
    let p = offset_delete_request::OffsetDeleteRequestPartition::default().with_partition_index(0);
    let t = offset_delete_request::OffsetDeleteRequestTopic::default()
        .with_name(topic_name("t"))
        .with_partitions(vec![p]);
    let request = OffsetDeleteRequest::default()
        .with_group_id(GroupId(text("g")))
        .with_topics(vec![t]);
    let response = conn.call(0, &request)?;
    if response.error_code != 0 {
        return Ok(response.error_code);
    }
    Ok(first(first(response.topics, "topic")?.partitions, "partition")?.error_code)
}

fn describe_scram(conn: &mut RawConn) -> Result<i16> {
    let response = conn.call(
        0,
        &DescribeUserScramCredentialsRequest::default().with_users(None),
    )?;
    if response.error_code == 0 {
        ensure!(response.results.iter().any(|r| r.user.as_str() == BOB));
    }
    Ok(response.error_code)
}

fn alter_scram(conn: &mut RawConn) -> Result<i16> {
    let d = alter_user_scram_credentials_request::ScramCredentialDeletion::default()
        .with_name(text("nobody"))
        .with_mechanism(1);
    let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![d]);
    Ok(first(conn.call(0, &request)?.results, "user")?.error_code)
}

fn create_acl(conn: &mut RawConn) -> Result<i16> {
    let c = create_acls_request::AclCreation::default()
        .with_resource_type(TOPIC)
        .with_resource_name(text("elsewhere"))
        .with_resource_pattern_type(LITERAL)
        .with_principal(text("User:carol"))
        .with_host(text("*"))
        .with_operation(READ)
        .with_permission_type(ALLOW);
    let request = CreateAclsRequest::default().with_creations(vec![c]);
    Ok(first(conn.call(3, &request)?.results, "creation")?.error_code)
}

fn describe_acls(conn: &mut RawConn) -> Result<i16> {
    let response = conn.call(3, &describe_all())?;
    if response.error_code != 0 {
        ensure!(
            response.resources.is_empty(),
            "ACLs shown to an unauthorized caller"
        );
    }
    Ok(response.error_code)
}

fn delete_acl(conn: &mut RawConn) -> Result<i16> {
    let f = delete_acls_request::DeleteAclsFilter::default()
        .with_resource_type_filter(TOPIC)
        .with_resource_name_filter(Some(text("elsewhere")))
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_pattern_type_filter(LITERAL)
        .with_operation(1)
        .with_permission_type(1);
    let request = DeleteAclsRequest::default().with_filters(vec![f]);
    Ok(first(conn.call(3, &request)?.filter_results, "filter")?.error_code)
}

fn add_raft_voter(conn: &mut RawConn) -> Result<i16> {
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_voter_id(99)
        .with_timeout_ms(5_000);
    Ok(conn.call(0, &request)?.error_code)
}

fn remove_raft_voter(conn: &mut RawConn) -> Result<i16> {
    let request = RemoveRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_voter_id(99);
    Ok(conn.call(0, &request)?.error_code)
}

fn metadata_of_t(conn: &mut RawConn) -> Result<i16> {
    let topic = first(metadata(conn, Some(&["t"]))?.topics, "topic")?;
    if topic.error_code == 0 {
        ensure!(!topic.partitions.is_empty());
        ensure!(topic.topic_authorized_operations & (1 << DESCRIBE) != 0);
    } else {
        ensure!(
            topic.partitions.is_empty(),
            "partitions shown with an error"
        );
    }
    Ok(topic.error_code)
}

fn matrix() -> Vec<Case> {
    let t = |op| allow(TOPIC, "t", op);
    let g = |op| allow(GROUP, "g", op);
    let g2 = |op| allow(GROUP, "g2", op);
    use ApiKey as K;
    vec![
        case(
            K::Metadata,
            metadata_of_t,
            TOPIC_DENIED,
            vec![(vec![t(DESCRIBE)], 0)],
        ),
        case(K::Produce, produce, TOPIC_DENIED, vec![(vec![t(WRITE)], 0)]),
        case(K::Fetch, fetch, TOPIC_DENIED, vec![(vec![t(READ)], 0)]),
        case(
            K::ListOffsets,
            list_offsets,
            TOPIC_DENIED,
            vec![(vec![t(DESCRIBE)], 0)],
        ),
        case(
            K::OffsetForLeaderEpoch,
            offset_for_leader_epoch,
            TOPIC_DENIED,
            vec![(vec![t(DESCRIBE)], 0)],
        ),
        case(
            K::DeleteRecords,
            delete_records,
            TOPIC_DENIED,
            vec![(vec![t(DELETE)], 0)],
        ),
        case(
            K::CreateTopics,
            create_topic,
            TOPIC_DENIED,
            vec![(vec![allow(TOPIC, "bobs", CREATE)], 0)],
        ),
        case(
            K::DeleteTopics,
            delete_topic,
            TOPIC_DENIED,
            vec![(vec![allow(TOPIC, "bobs", DELETE)], 0)],
        ),
        case(
            K::CreatePartitions,
            create_partitions,
            TOPIC_DENIED,
            vec![(vec![allow(TOPIC, "grow", ALTER)], 0)],
        ),
        case(
            K::InitProducerId,
            init_producer_id,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(IDEMPOTENT_WRITE)], 0)],
        ),
        case(
            K::DescribeConfigs,
            |c| describe_configs(c, TOPIC, "t"),
            TOPIC_DENIED,
            vec![(vec![t(DESCRIBE_CONFIGS)], 0)],
        ),
        case(
            K::AlterConfigs,
            alter_configs,
            TOPIC_DENIED,
            vec![(vec![t(ALTER_CONFIGS)], 0)],
        ),
        case(
            K::IncrementalAlterConfigs,
            incremental_alter_configs,
            TOPIC_DENIED,
            vec![(vec![t(ALTER_CONFIGS)], 0)],
        ),
        case(
            K::DescribeCluster,
            describe_cluster,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(DESCRIBE)], 0)],
        ),
        case(
            K::FindCoordinator,
            find_coordinator,
            GROUP_DENIED,
            vec![(vec![g(DESCRIBE)], 0)],
        ),
        case(
            K::DescribeQuorum,
            describe_quorum,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(DESCRIBE)], 0)],
        ),
        case(
            K::DescribeLogDirs,
            describe_log_dirs,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(DESCRIBE)], 0)],
        ),
        case(
            K::DescribeTopicPartitions,
            describe_topic_partitions,
            TOPIC_DENIED,
            vec![(vec![t(DESCRIBE)], 0)],
        ),
        case(
            K::AlterPartitionReassignments,
            alter_reassignments,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(ALTER)], 0)],
        ),
        case(
            K::ListPartitionReassignments,
            list_reassignments,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(DESCRIBE)], 0)],
        ),
        case(
            K::ElectLeaders,
            elect_leaders,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(ALTER)], 0)],
        ),
        // The group APIs reach the coordinator once READ is granted, which then judges the
        // member: a new member must rejoin with its id (MEMBER_ID_REQUIRED), an unknown one is
        // UNKNOWN_MEMBER_ID.
        case(
            K::JoinGroup,
            join_group,
            GROUP_DENIED,
            vec![(vec![g2(READ)], 79)],
        ),
        case(
            K::SyncGroup,
            sync_group,
            GROUP_DENIED,
            vec![(vec![g2(READ)], 25)],
        ),
        case(
            K::Heartbeat,
            heartbeat,
            GROUP_DENIED,
            vec![(vec![g2(READ)], 25)],
        ),
        case(
            K::LeaveGroup,
            leave_group,
            GROUP_DENIED,
            vec![(vec![g2(READ)], 0)],
        ),
        case(
            K::OffsetCommit,
            offset_commit,
            GROUP_DENIED,
            vec![(vec![g(READ)], TOPIC_DENIED), (vec![t(READ)], 0)],
        ),
        case(
            K::OffsetFetch,
            offset_fetch,
            GROUP_DENIED,
            vec![(vec![g(DESCRIBE)], TOPIC_DENIED), (vec![t(DESCRIBE)], 0)],
        ),
        case(
            K::DescribeGroups,
            describe_groups,
            GROUP_DENIED,
            vec![(vec![g(DESCRIBE)], 0)],
        ),
        case(
            K::ListGroups,
            list_groups,
            GROUP_DENIED,
            vec![(vec![g(DESCRIBE)], 0)],
        ),
        // A group that does not exist is GROUP_ID_NOT_FOUND once bob may delete it.
        case(
            K::DeleteGroups,
            delete_groups,
            GROUP_DENIED,
            vec![(vec![allow(GROUP, "g3", DELETE)], 69)],
        ),
        case(
            K::OffsetDelete,
            offset_delete,
            GROUP_DENIED,
            vec![(vec![g(DELETE)], TOPIC_DENIED), (vec![t(READ)], 0)],
        ),
        case(
            K::DescribeUserScramCredentials,
            describe_scram,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(DESCRIBE)], 0)],
        ),
        // Deleting a credential nobody has is RESOURCE_NOT_FOUND once bob may.
        case(
            K::AlterUserScramCredentials,
            alter_scram,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(ALTER)], 91)],
        ),
        case(
            K::CreateAcls,
            create_acl,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(ALTER)], 0)],
        ),
        case(
            K::DescribeAcls,
            describe_acls,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(DESCRIBE)], 0)],
        ),
        case(
            K::DeleteAcls,
            delete_acl,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(ALTER)], 0)],
        ),
        // Node 99 never joined: INVALID_REQUEST once bob may promote voters.
        case(
            K::AddRaftVoter,
            add_raft_voter,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(ALTER)], 42)],
        ),
        // Node 99 is no voter: VOTER_NOT_FOUND once bob may change voters.
        case(
            K::RemoveRaftVoter,
            remove_raft_voter,
            CLUSTER_DENIED,
            vec![(vec![on_cluster(ALTER)], 127)],
        ),
    ]
}

fn acl_broker() -> Broker {
    Broker::start_with(|o| {
        o.set("listener.security.protocol.map", "PLAINTEXT:SASL_PLAINTEXT")
            .set("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256")
            .set("brook.sasl.bootstrap.user", ADMIN)
            .set("brook.sasl.bootstrap.password", ADMIN_PASSWORD)
            .set("super.users", format!("User:{ADMIN}"))
            .set(
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            )
            .set("auto.create.topics.enable", "false");
    })
}

/// Topics t (with a record), grow and hidden, and group g with a committed offset on t.
fn prepare(admin: &mut RawConn) -> Result<()> {
    for name in ["t", "grow", "hidden"] {
        let code = create_topic_named(admin, name)?;
        ensure!(code == 0, "creating {name}: {code}");
    }
    wait_for("t to have a leader", || {
        Ok(metadata(admin, Some(&["t"]))?.topics[0].partitions[0]
            .leader_id
            .0
            >= 0)
    })?;
    // Producing and committing need the leader's partition actor; retry what a client retries.
    wait_for("the admin's produce", || Ok(produce(admin)? == 0))?;
    wait_for("the admin's commit", || Ok(offset_commit(admin)? == 0))?;
    Ok(())
}

fn create_topic_named(conn: &mut RawConn, name: &str) -> Result<i16> {
    let t = create_topics_request::CreatableTopic::default()
        .with_name(topic_name(name))
        .with_num_partitions(1)
        .with_replication_factor(1);
    let request = CreateTopicsRequest::default()
        .with_topics(vec![t])
        .with_timeout_ms(10_000);
    Ok(first(conn.call(7, &request)?.topics, "topic")?.error_code)
}

fn wait_for(what: &str, mut ready: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let last = ready();
        if matches!(last, Ok(true)) {
            return Ok(());
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {last:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn every_api_checks_what_kafka_checks() -> Result<()> {
    let broker = acl_broker();
    let mut admin = login(&broker, ADMIN, ADMIN_PASSWORD)?;
    create_bob(&mut admin)?;
    prepare(&mut admin)?;
    let mut bob = login(&broker, BOB, BOB_PASSWORD)?;

    // The matrix covers every API the node advertises, but those every client may call.
    let advertised: BTreeSet<i16> = bob
        .call(3, &ApiVersionsRequest::default())?
        .api_keys
        .iter()
        .map(|k| k.api_key)
        .collect();
    let cases = matrix();
    let covered: BTreeSet<i16> = cases.iter().map(|c| c.api as i16).collect();
    let open: BTreeSet<i16> = [
        ApiKey::ApiVersions,
        ApiKey::SaslHandshake,
        ApiKey::SaslAuthenticate,
    ]
    .iter()
    .map(|k| *k as i16)
    .collect();
    let missing: Vec<_> = advertised
        .difference(&covered)
        .filter(|k| !open.contains(k))
        .collect();
    ensure!(
        missing.is_empty(),
        "APIs without an authorization case: {missing:?}"
    );

    // Without ACLs bob sees no topic at all.
    let listed = metadata(&mut bob, None)?;
    ensure!(listed.topics.is_empty(), "bob sees {:?}", listed.topics);

    for c in cases {
        let got = (c.call)(&mut bob).with_context(|| format!("{:?} as bob", c.api))?;
        ensure!(
            got == c.denied,
            "{:?} without ACLs: {got}, expected {}",
            c.api,
            c.denied
        );
        for (acls, expected) in &c.grants {
            create_acls(&mut admin, acls)?;
            let got = (c.call)(&mut bob).with_context(|| format!("{:?} as bob", c.api))?;
            ensure!(
                got == *expected,
                "{:?} after a grant: {got}, expected {expected}",
                c.api
            );
        }
        delete_all_acls(&mut admin)?;
    }

    // A listing shows exactly the topics bob may describe, prefixed ACLs included.
    create_acls(
        &mut admin,
        &[Acl {
            name: "gr",
            pattern: PREFIXED,
            ..allow(TOPIC, "", DESCRIBE)
        }],
    )?;
    let names: Vec<String> = metadata(&mut bob, None)?
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    ensure!(names == ["grow"], "bob lists {names:?}");

    // A DENY beats an ALLOW, also one for everyone.
    let everyone_reads = Acl {
        principal: "User:*",
        ..allow(TOPIC, "t", READ)
    };
    create_acls(&mut admin, &[everyone_reads])?;
    ensure!(fetch(&mut bob)? == 0);
    create_acls(
        &mut admin,
        &[Acl {
            permission: DENY,
            ..allow(TOPIC, "t", READ)
        }],
    )?;
    ensure!(
        fetch(&mut bob)? == TOPIC_DENIED,
        "a DENY did not beat an ALLOW"
    );
    ensure!(fetch(&mut admin)? == 0, "super users are not bound by ACLs");
    Ok(())
}

#[test]
fn acl_apis_say_when_no_authorizer_is_configured() -> Result<()> {
    let broker = Broker::start();
    let mut conn = RawConn::connect(broker.addr())?;
    ensure!(describe_acls(&mut conn)? == SECURITY_DISABLED);
    ensure!(create_acl(&mut conn)? == SECURITY_DISABLED);
    ensure!(delete_acl(&mut conn)? == SECURITY_DISABLED);
    // And without one every request is allowed, as in Kafka.
    ensure!(create_topic(&mut conn)? == 0);
    Ok(())
}
