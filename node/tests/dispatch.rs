//! The dispatch table and ApiVersions agree: every API brook advertises is answered at its
//! highest advertised version, over a real TCP connection to an in-process node.

#![allow(clippy::unwrap_used, clippy::panic)] // test code: a failure should stop the test loudly

use brook_node::client::Client;
use brook_node::config::BrokerConfig;
use brook_node::handlers::APIS;
use brook_node::server::Node;
use kafka_protocol::messages::*;

async fn start(dir: &std::path::Path) -> Node {
    let flags = vec![
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        ("log.dirs".to_string(), dir.display().to_string()),
    ];
    let config = BrokerConfig::load(None, Vec::new(), &flags).unwrap();
    Node::start(config).await.unwrap()
}

/// A request of each kind that a broker must answer (Produce with acks=1 so it has a response).
fn sample(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => RequestKind::Produce(ProduceRequest::default().with_acks(1)),
        ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default().with_max_wait_ms(0)),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
        ApiKey::CreatePartitions => {
            RequestKind::CreatePartitions(CreatePartitionsRequest::default())
        }
        ApiKey::DescribeCluster => {
            RequestKind::DescribeCluster(DescribeClusterRequest::default().with_endpoint_type(1))
        }
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
        ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(DescribeQuorumRequest::default()),
        ApiKey::AlterPartitionReassignments => {
            RequestKind::AlterPartitionReassignments(AlterPartitionReassignmentsRequest::default())
        }
        ApiKey::ListPartitionReassignments => {
            RequestKind::ListPartitionReassignments(ListPartitionReassignmentsRequest::default())
        }
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(DescribeGroupsRequest::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(OffsetDeleteRequest::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
        ApiKey::OffsetForLeaderEpoch => {
            RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default())
        }
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(ElectLeadersRequest::default()),
        ApiKey::DescribeLogDirs => {
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None))
        }
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(
            DescribeTopicPartitionsRequest::default().with_response_partition_limit(2000),
        ),
        ApiKey::DescribeUserScramCredentials => {
            RequestKind::DescribeUserScramCredentials(DescribeUserScramCredentialsRequest::default())
        }
        ApiKey::AlterUserScramCredentials => {
            RequestKind::AlterUserScramCredentials(AlterUserScramCredentialsRequest::default())
        }
        // Without an authorizer: SECURITY_DISABLED, answered.
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(DescribeAclsRequest::default()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(CreateAclsRequest::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(DeleteAclsRequest::default()),
        // Node 0 is no member: INVALID_REQUEST, answered.
        ApiKey::AddRaftVoter => {
            RequestKind::AddRaftVoter(AddRaftVoterRequest::default().with_timeout_ms(5000))
        }
        // Node 0 is no voter: VOTER_NOT_FOUND, answered.
        ApiKey::RemoveRaftVoter => RequestKind::RemoveRaftVoter(RemoveRaftVoterRequest::default()),
        // On a PLAINTEXT listener: refused with UNSUPPORTED_SASL_MECHANISM, answered.
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(
            SaslHandshakeRequest::default()
                .with_mechanism(kafka_protocol::protocol::StrBytes::from_static_str("PLAIN")),
        ),
        // Without a handshake: ILLEGAL_SASL_STATE, answered, then the connection closes (the
        // table lists it last).
        ApiKey::SaslAuthenticate => {
            RequestKind::SaslAuthenticate(SaslAuthenticateRequest::default())
        }
        other => panic!("no sample request for {other:?}: add one when adding an API"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_advertised_api_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let mut client = Client::admin(&node.local_addr.to_string()).await.unwrap();

    let ResponseKind::ApiVersions(versions) = client
        .call(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await
        .unwrap()
    else {
        panic!("not an ApiVersions response");
    };
    assert_eq!(versions.error_code, 0);
    let advertised: Vec<(i16, i16, i16)> = versions
        .api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect();
    let table: Vec<(i16, i16, i16)> = APIS.iter().map(|a| (a.key as i16, a.min, a.max)).collect();
    assert_eq!(advertised, table);

    for api in APIS {
        let response = client.call(api.key, api.max, sample(api.key)).await;
        assert!(
            response.is_ok(),
            "{:?} v{} was not answered: {:?}",
            api.key,
            api.max,
            response.err()
        );
    }
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_survive_a_graceful_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let addr = node.local_addr.to_string();
    brook_node::cli::topic::create(
        &addr,
        "kept",
        3,
        1,
        &[("retention.ms".into(), "60000".into())],
    )
    .await
    .unwrap();
    assert!(brook_node::cli::topic::create(&addr, "kept", 3, 1, &[])
        .await
        .is_err());
    assert!(brook_node::cli::topic::create(
        &addr,
        "bad",
        1,
        1,
        &[("cleanup.policy".into(), "compact".into())]
    )
    .await
    .is_err());
    node.shutdown().await.unwrap();

    let node = start(dir.path()).await;
    let mut client = Client::admin(&node.local_addr.to_string()).await.unwrap();
    let request = MetadataRequest::default().with_topics(None);
    let ResponseKind::Metadata(meta) = client
        .call(ApiKey::Metadata, 12, RequestKind::Metadata(request))
        .await
        .unwrap()
    else {
        panic!("not a Metadata response");
    };
    let names: Vec<String> = meta
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.to_string()))
        .collect();
    assert_eq!(names, vec!["kept".to_string()]);
    assert_eq!(meta.topics[0].partitions.len(), 3);
    node.shutdown().await.unwrap();
}

/// One record batch of `count` records stamped `timestamp`.
fn batch(count: i64, timestamp: i64) -> bytes::Bytes {
    use kafka_protocol::records::*;
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // The encoder keeps records in one batch while offset - sequence is constant; the
            // batch's base sequence stays -1 (not idempotent).
            sequence: i as i32 - 1,
            timestamp,
            key: Some(bytes::Bytes::from(format!("k{i}"))),
            value: Some(bytes::Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).unwrap();
    buf.freeze()
}

fn name(s: &str) -> TopicName {
    TopicName(kafka_protocol::protocol::StrBytes::from_string(
        s.to_string(),
    ))
}

/// Every version brook accepts is answered with fields that version can carry: real requests
/// against a real topic, so version-specific response fields are exercised, not just defaults.
#[tokio::test(flavor = "multi_thread")]
async fn every_accepted_version_answers_real_requests() {
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};

    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let addr = node.local_addr.to_string();
    brook_node::cli::topic::create(&addr, "t", 1, 1, &[])
        .await
        .unwrap();
    let meta = Client::admin(&addr).await.unwrap();
    drop(meta);
    let mut client = Client::admin(&addr).await.unwrap();
    let ResponseKind::Metadata(m) = client
        .call(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
        )
        .await
        .unwrap()
    else {
        panic!("not Metadata")
    };
    let topic_id = m.topics[0].topic_id;

    for version in 3..=12 {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(name("t"))
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch(3, 1000 + i64::from(version))))])]);
        let ResponseKind::Produce(r) = client
            .call(ApiKey::Produce, version, RequestKind::Produce(request))
            .await
            .unwrap()
        else {
            panic!("not Produce")
        };
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "Produce v{version}");
        assert_eq!(
            p.base_offset,
            i64::from(version - 3) * 3,
            "Produce v{version}"
        );
    }
    for version in 4..=17 {
        let topic = if version >= 13 {
            FetchTopic::default().with_topic_id(topic_id)
        } else {
            FetchTopic::default().with_topic(name("t"))
        };
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_epoch(-1)
            .with_topics(vec![topic.with_partitions(vec![FetchPartition::default()
                .with_fetch_offset(4)
                .with_partition_max_bytes(1 << 20)])]);
        let ResponseKind::Fetch(r) = client
            .call(ApiKey::Fetch, version, RequestKind::Fetch(request))
            .await
            .unwrap()
        else {
            panic!("not Fetch")
        };
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{version}");
        assert_eq!(p.high_watermark, 30, "Fetch v{version}");
        let records = p.records.clone().unwrap();
        // Whole batches from the one holding offset 4 (which starts at 3).
        assert_eq!(
            i64::from_be_bytes(records[..8].try_into().unwrap()),
            3,
            "Fetch v{version}"
        );
    }
    for version in 1..=8 {
        // Produce v4 wrote offsets 3-5 stamped 1004.
        for (ts, offset) in [(-1, 30), (-2, 0), (1004, 3), (1003, 0)] {
            let request =
                ListOffsetsRequest::default().with_topics(vec![ListOffsetsTopic::default()
                    .with_name(name("t"))
                    .with_partitions(vec![ListOffsetsPartition::default().with_timestamp(ts)])]);
            let ResponseKind::ListOffsets(r) = client
                .call(
                    ApiKey::ListOffsets,
                    version,
                    RequestKind::ListOffsets(request),
                )
                .await
                .unwrap()
            else {
                panic!("not ListOffsets")
            };
            let p = &r.topics[0].partitions[0];
            assert_eq!(
                (p.error_code, p.offset),
                (0, offset),
                "ListOffsets v{version} ts {ts}"
            );
        }
    }
    for version in 0..=12 {
        let topics = if version >= 10 {
            vec![
                MetadataRequestTopic::default().with_name(Some(name("t"))),
                MetadataRequestTopic::default()
                    .with_name(None)
                    .with_topic_id(topic_id),
            ]
        } else {
            vec![MetadataRequestTopic::default().with_name(Some(name("t")))]
        };
        let request = MetadataRequest::default().with_topics(Some(topics));
        let ResponseKind::Metadata(r) = client
            .call(ApiKey::Metadata, version, RequestKind::Metadata(request))
            .await
            .unwrap()
        else {
            panic!("not Metadata")
        };
        assert!(
            r.topics
                .iter()
                .all(|t| t.error_code == 0 && t.partitions.len() == 1),
            "Metadata v{version}: {r:?}"
        );
    }
    for version in 2..=7 {
        let topic = format!("made-v{version}");
        let request = CreateTopicsRequest::default().with_topics(vec![
            CreatableTopic::default()
                .with_name(name(&topic))
                .with_num_partitions(2)
                .with_replication_factor(1),
            CreatableTopic::default()
                .with_name(name("t"))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
        let ResponseKind::CreateTopics(r) = client
            .call(
                ApiKey::CreateTopics,
                version,
                RequestKind::CreateTopics(request),
            )
            .await
            .unwrap()
        else {
            panic!("not CreateTopics")
        };
        assert_eq!(r.topics[0].error_code, 0, "CreateTopics v{version}");
        assert_eq!(
            r.topics[1].error_code, 36,
            "CreateTopics v{version} (already exists)"
        );
    }
    for version in 0..=3 {
        let request = CreatePartitionsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name(&format!("made-v{}", version + 2)))
                .with_count(3)
                .with_assignments(None),
        ]);
        let ResponseKind::CreatePartitions(r) = client
            .call(
                ApiKey::CreatePartitions,
                version,
                RequestKind::CreatePartitions(request),
            )
            .await
            .unwrap()
        else {
            panic!("not CreatePartitions")
        };
        assert_eq!(r.results[0].error_code, 0, "CreatePartitions v{version}");
    }
    for version in 1..=4 {
        let request = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_include_documentation(version >= 3)
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name("t".into()),
                DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name("1".into()),
            ]);
        let ResponseKind::DescribeConfigs(r) = client
            .call(
                ApiKey::DescribeConfigs,
                version,
                RequestKind::DescribeConfigs(request),
            )
            .await
            .unwrap()
        else {
            panic!("not DescribeConfigs")
        };
        assert!(
            r.results
                .iter()
                .all(|x| x.error_code == 0 && !x.configs.is_empty()),
            "DescribeConfigs v{version}: {r:?}"
        );
    }
    for version in 1..=4 {
        let request = DescribeLogDirsRequest::default().with_topics(Some(vec![
            describe_log_dirs_request::DescribableLogDirTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![0, 7]),
        ]));
        let ResponseKind::DescribeLogDirs(r) = client
            .call(
                ApiKey::DescribeLogDirs,
                version,
                RequestKind::DescribeLogDirs(request),
            )
            .await
            .unwrap()
        else {
            panic!("not DescribeLogDirs")
        };
        let d = &r.results[0];
        assert_eq!(d.error_code, 0, "DescribeLogDirs v{version}");
        assert_eq!(
            std::path::Path::new(d.log_dir.as_str()),
            std::path::absolute(dir.path()).unwrap(),
            "DescribeLogDirs v{version}"
        );
        // Partition 7 does not exist: left out.
        let p = &d.topics[0].partitions;
        assert_eq!(p.len(), 1, "DescribeLogDirs v{version}: {r:?}");
        assert!(p[0].partition_size > 0, "DescribeLogDirs v{version}");
        if version >= 4 {
            assert!(
                d.total_bytes > 0 && (0..=d.total_bytes).contains(&d.usable_bytes),
                "DescribeLogDirs v{version}: {d:?}"
            );
        }
    }
    for version in 0..=5 {
        let ResponseKind::InitProducerId(r) = client
            .call(
                ApiKey::InitProducerId,
                version,
                RequestKind::InitProducerId(
                    InitProducerIdRequest::default().with_transactional_id(None),
                ),
            )
            .await
            .unwrap()
        else {
            panic!("not InitProducerId")
        };
        assert_eq!(
            (r.error_code, r.producer_epoch),
            (0, 0),
            "InitProducerId v{version}"
        );
        assert!(r.producer_id.0 >= 0);
    }
    // A client naming another producer's id and epoch gets an id of its own, so it cannot
    // fence that producer (as Kafka answers InitProducerId without a transactional id).
    let idempotent = || InitProducerIdRequest::default().with_transactional_id(None);
    let victim = init_producer_id(&mut client, idempotent()).await;
    let thief = init_producer_id(
        &mut client,
        idempotent()
            .with_producer_id(victim.producer_id)
            .with_producer_epoch(victim.producer_epoch),
    )
    .await;
    assert_eq!(thief.error_code, 0);
    assert_ne!(thief.producer_id, victim.producer_id, "{thief:?}");
    assert_eq!(thief.producer_epoch, 0);
    for version in 0..=6 {
        let request = if version >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec!["g1".into(), "g2".into()])
        } else {
            FindCoordinatorRequest::default().with_key("g1".into())
        };
        let ResponseKind::FindCoordinator(r) = client
            .call(
                ApiKey::FindCoordinator,
                version,
                RequestKind::FindCoordinator(request),
            )
            .await
            .unwrap()
        else {
            panic!("not FindCoordinator")
        };
        if version >= 4 {
            assert_eq!(r.coordinators.len(), 2, "FindCoordinator v{version}");
            assert!(
                r.coordinators
                    .iter()
                    .all(|c| c.error_code == 0 && c.node_id.0 == 1),
                "FindCoordinator v{version}"
            );
        } else {
            assert_eq!(
                (r.error_code, r.node_id.0, r.port),
                (0, 1, i32::from(node.local_addr.port())),
                "FindCoordinator v{version}"
            );
        }
    }
    for version in 0..=2 {
        let ResponseKind::DescribeCluster(r) = client
            .call(
                ApiKey::DescribeCluster,
                version,
                RequestKind::DescribeCluster(DescribeClusterRequest::default()),
            )
            .await
            .unwrap()
        else {
            panic!("not DescribeCluster")
        };
        assert_eq!(
            (r.error_code, r.brokers.len()),
            (0, 1),
            "DescribeCluster v{version}"
        );
    }
    for version in 0..=2 {
        let request = DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(name("__cluster_metadata"))
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default(),
                    describe_quorum_request::PartitionData::default().with_partition_index(1),
                ]),
        ]);
        let ResponseKind::DescribeQuorum(r) = client
            .call(
                ApiKey::DescribeQuorum,
                version,
                RequestKind::DescribeQuorum(request),
            )
            .await
            .unwrap()
        else {
            panic!("not DescribeQuorum")
        };
        let p = &r.topics[0].partitions;
        // A single node is its own leader and only voter.
        assert_eq!(
            (p[0].error_code, p[0].leader_id.0, p[0].current_voters.len()),
            (0, 1, 1),
            "DescribeQuorum v{version}"
        );
        assert!(p[0].leader_epoch >= 1 && p[0].high_watermark > 0);
        assert_eq!(p[1].error_code, 3, "DescribeQuorum v{version} partition 1");
        assert_eq!(r.nodes.len(), usize::from(version >= 2));
    }
    for version in 1..=6 {
        let topic = format!("made-v{}", version + 1);
        let request = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(name(&topic))),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&topic), name("never-was")])
        };
        let ResponseKind::DeleteTopics(r) = client
            .call(
                ApiKey::DeleteTopics,
                version,
                RequestKind::DeleteTopics(request),
            )
            .await
            .unwrap()
        else {
            panic!("not DeleteTopics")
        };
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{version}");
        if version < 6 {
            assert_eq!(
                r.responses[1].error_code, 3,
                "DeleteTopics v{version} (unknown)"
            );
        }
    }
    node.shutdown().await.unwrap();
}

async fn init_producer_id(
    client: &mut Client,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    match client
        .call(
            ApiKey::InitProducerId,
            4,
            RequestKind::InitProducerId(request),
        )
        .await
        .unwrap()
    {
        ResponseKind::InitProducerId(r) => r,
        other => panic!("not InitProducerId: {other:?}"),
    }
}
