//! The dispatch table and ApiVersions agree: every API brook advertises is answered at its
//! highest advertised version, over a real TCP connection to an in-process node.

use brook_node::admin::AdminClient;
use brook_node::config::BrokerConfig;
use brook_node::handlers::APIS;
use brook_node::runtime::Node;
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
        other => panic!("no sample request for {other:?}: add one when adding an API"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_advertised_api_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(dir.path()).await;
    let mut client = AdminClient::connect(&node.local_addr.to_string())
        .await
        .unwrap();

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
    brook_node::admin::create_topic(
        &addr,
        "kept",
        3,
        1,
        &[("retention.ms".into(), "60000".into())],
    )
    .await
    .unwrap();
    assert!(brook_node::admin::create_topic(&addr, "kept", 3, 1, &[])
        .await
        .is_err());
    assert!(brook_node::admin::create_topic(
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
    let mut client = AdminClient::connect(&node.local_addr.to_string())
        .await
        .unwrap();
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
