//! Tests of the retry and error paths of `brook group` against a scripted in-process broker:
//! coordinators that are not available yet or moved, errors reported by Kafka's names.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, DeleteGroupsResponse, DescribeGroupsResponse,
    FindCoordinatorResponse, MetadataResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::client::Cluster;
use super::describe::describe_group;

/// What the fake broker answers: the error code of the n-th answer to each API (the last one
/// repeats), and how many requests of each API it saw.
#[derive(Default)]
struct Script {
    find_coordinator: Vec<i16>,
    describe: Vec<i16>,
    delete: Vec<i16>,
    seen: BTreeMap<i16, usize>,
}

fn nth(codes: &[i16], n: usize) -> i16 {
    codes.get(n).or_else(|| codes.last()).copied().unwrap_or(0)
}

fn answer(script: &Mutex<Script>, port: i32, key: ApiKey, body: RequestKind) -> ResponseKind {
    let mut s = script.lock().unwrap();
    let n = *s
        .seen
        .entry(key as i16)
        .and_modify(|c| *c += 1)
        .or_insert(1)
        - 1;
    let host = StrBytes::from_static_str("127.0.0.1");
    match body {
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(
            ApiVersionsResponse::default().with_api_keys(
                [
                    ApiKey::ApiVersions,
                    ApiKey::Metadata,
                    ApiKey::FindCoordinator,
                    ApiKey::DescribeGroups,
                    ApiKey::DeleteGroups,
                ]
                .into_iter()
                .map(|k| {
                    ApiVersion::default()
                        .with_api_key(k as i16)
                        .with_min_version(0)
                        .with_max_version(k.valid_versions().max)
                })
                .collect(),
            ),
        ),
        RequestKind::Metadata(_) => ResponseKind::Metadata(
            MetadataResponse::default().with_brokers(vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(host)
                .with_port(port)]),
        ),
        RequestKind::FindCoordinator(r) => {
            let code = nth(&s.find_coordinator, n);
            ResponseKind::FindCoordinator(
                FindCoordinatorResponse::default().with_coordinators(
                    r.coordinator_keys
                        .into_iter()
                        .map(|k| {
                            Coordinator::default()
                                .with_key(k)
                                .with_node_id(BrokerId(1))
                                .with_host(host.clone())
                                .with_port(port)
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::DescribeGroups(r) => {
            let code = nth(&s.describe, n);
            ResponseKind::DescribeGroups(
                DescribeGroupsResponse::default().with_groups(
                    r.groups
                        .into_iter()
                        .map(|g| {
                            DescribedGroup::default()
                                .with_group_id(g)
                                .with_error_code(code)
                                .with_group_state(StrBytes::from_static_str("Empty"))
                                .with_protocol_type(StrBytes::from_static_str("consumer"))
                        })
                        .collect(),
                ),
            )
        }
        RequestKind::DeleteGroups(r) => {
            let code = nth(&s.delete, n);
            ResponseKind::DeleteGroups(
                DeleteGroupsResponse::default().with_results(
                    r.groups_names
                        .into_iter()
                        .map(|g| {
                            let code = if g.as_str() == "missing" {
                                ResponseError::GroupIdNotFound.code()
                            } else {
                                code
                            };
                            DeletableGroupResult::default()
                                .with_group_id(g)
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            )
        }
        other => panic!("unexpected request {other:?}"),
    }
}

/// Starts the fake broker; returns its address and the script it follows.
async fn start(script: Script) -> (String, Arc<Mutex<Script>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let port = i32::from(addr.port());
    let script = Arc::new(Mutex::new(script));
    let shared = script.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let script = shared.clone();
            tokio::spawn(async move {
                loop {
                    let Ok(len) = stream.read_i32().await else {
                        return;
                    };
                    let mut frame = BytesMut::zeroed(len as usize);
                    if stream.read_exact(&mut frame).await.is_err() {
                        return;
                    }
                    let (key, header, body) =
                        brook_wire::request::decode_header(Bytes::from(frame)).unwrap();
                    let version = header.request_api_version;
                    let body = brook_wire::request::decode_body(key, version, body).unwrap();
                    let response = answer(&script, port, key, body);
                    let out = brook_wire::response::encode_response(
                        key,
                        version,
                        header.correlation_id,
                        &response,
                    )
                    .unwrap();
                    if stream.write_all(&out).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr.to_string(), script)
}

fn seen(script: &Mutex<Script>, key: ApiKey) -> usize {
    script
        .lock()
        .unwrap()
        .seen
        .get(&(key as i16))
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn coordinator_errors_are_retried() {
    let not_available = ResponseError::CoordinatorNotAvailable.code();
    let not_coordinator = ResponseError::NotCoordinator.code();
    let loading = ResponseError::CoordinatorLoadInProgress.code();
    let (addr, script) = start(Script {
        find_coordinator: vec![not_available, 0],
        describe: vec![not_coordinator, loading, 0],
        ..Script::default()
    })
    .await;
    let mut cluster = Cluster::connect(&addr).await.unwrap();
    let group = describe_group(&mut cluster, "g").await.unwrap().unwrap();
    assert_eq!(group.state, "Empty");
    assert_eq!(group.coordinator.id, 1);
    assert_eq!(seen(&script, ApiKey::DescribeGroups), 3);
    // One retry of the lookup itself, then one lookup per DescribeGroups attempt.
    assert_eq!(seen(&script, ApiKey::FindCoordinator), 4);
}

#[tokio::test]
async fn retries_end_and_errors_carry_kafka_names() {
    let (addr, _) = start(Script {
        describe: vec![ResponseError::NotCoordinator.code()],
        ..Script::default()
    })
    .await;
    let mut cluster = Cluster::connect(&addr).await.unwrap();
    let e = describe_group(&mut cluster, "g").await.unwrap_err();
    assert!(format!("{e:#}").contains("NOT_COORDINATOR"), "{e:#}");

    let (addr, _) = start(Script {
        describe: vec![ResponseError::GroupAuthorizationFailed.code()],
        ..Script::default()
    })
    .await;
    let mut cluster = Cluster::connect(&addr).await.unwrap();
    let e = describe_group(&mut cluster, "g").await.unwrap_err();
    assert!(
        format!("{e:#}").contains("GROUP_AUTHORIZATION_FAILED"),
        "{e:#}"
    );

    let (addr, _) = start(Script {
        find_coordinator: vec![ResponseError::GroupAuthorizationFailed.code()],
        ..Script::default()
    })
    .await;
    let mut cluster = Cluster::connect(&addr).await.unwrap();
    let e = describe_group(&mut cluster, "g").await.unwrap_err();
    assert!(
        format!("{e:#}").contains("finding the coordinator"),
        "{e:#}"
    );
}

#[tokio::test]
async fn delete_reports_each_group_and_retries_moved_ones() {
    let (addr, script) = start(Script {
        delete: vec![ResponseError::NotCoordinator.code(), 0],
        ..Script::default()
    })
    .await;
    let mut cluster = Cluster::connect(&addr).await.unwrap();
    let results = super::delete::delete_groups(&mut cluster, &["a".into(), "missing".into()])
        .await
        .unwrap();
    assert_eq!(results.get("a"), Some(&Ok(())));
    assert_eq!(
        results.get("missing"),
        Some(&Err("GROUP_ID_NOT_FOUND".to_string()))
    );
    assert_eq!(seen(&script, ApiKey::DeleteGroups), 2);
    // ApiVersions gates what is sent: this broker has no ListGroups.
    let e = super::list::list_groups(&mut cluster, &[])
        .await
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("do not support ListGroups"),
        "{e:#}"
    );
}
