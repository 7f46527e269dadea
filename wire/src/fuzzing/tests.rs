//! The wire fuzz targets as property tests, and the seeds of their corpus: a request and a
//! response of every API brook serves at every version it accepts (default bodies, plus
//! bodies with arrays filled for the APIs that carry the most), and valid batches of every
//! codec.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;

use super::*;
use crate::batch::fixtures::{batch, framed, raw_batch, record_body, CODECS};
use crate::response::{encode_request, encode_response};

#[path = "../../../fuzz/property.rs"]
mod property;

const ROUNDS: usize = 20_000;

/// The APIs and versions brook accepts, copied from `apis!` in node/src/handlers/mod.rs (wire
/// cannot import node), with their request and response types for the default seeds.
macro_rules! brook_apis {
    ($($key:ident $min:literal..=$max:literal $req:ident $resp:ident,)*) => {
        const BROOK_APIS: &[(ApiKey, i16, i16)] = &[$((ApiKey::$key, $min, $max),)*];

        fn default_request(key: ApiKey) -> RequestKind {
            match key {
                $(ApiKey::$key => $req::default().into(),)*
                other => unreachable!("{other:?} is not in BROOK_APIS"),
            }
        }

        fn default_response(key: ApiKey) -> ResponseKind {
            match key {
                $(ApiKey::$key => $resp::default().into(),)*
                other => unreachable!("{other:?} is not in BROOK_APIS"),
            }
        }
    };
}

brook_apis! {
    Produce 0..=12 ProduceRequest ProduceResponse,
    Fetch 4..=17 FetchRequest FetchResponse,
    ListOffsets 1..=8 ListOffsetsRequest ListOffsetsResponse,
    Metadata 0..=12 MetadataRequest MetadataResponse,
    ApiVersions 0..=4 ApiVersionsRequest ApiVersionsResponse,
    CreateTopics 2..=7 CreateTopicsRequest CreateTopicsResponse,
    DeleteTopics 1..=6 DeleteTopicsRequest DeleteTopicsResponse,
    InitProducerId 0..=5 InitProducerIdRequest InitProducerIdResponse,
    DescribeConfigs 1..=4 DescribeConfigsRequest DescribeConfigsResponse,
    CreatePartitions 0..=3 CreatePartitionsRequest CreatePartitionsResponse,
    DescribeCluster 0..=2 DescribeClusterRequest DescribeClusterResponse,
    FindCoordinator 0..=6 FindCoordinatorRequest FindCoordinatorResponse,
    DescribeQuorum 0..=2 DescribeQuorumRequest DescribeQuorumResponse,
    AlterPartitionReassignments 0..=1 AlterPartitionReassignmentsRequest AlterPartitionReassignmentsResponse,
    ListPartitionReassignments 0..=0 ListPartitionReassignmentsRequest ListPartitionReassignmentsResponse,
    JoinGroup 2..=9 JoinGroupRequest JoinGroupResponse,
    SyncGroup 0..=5 SyncGroupRequest SyncGroupResponse,
    Heartbeat 0..=4 HeartbeatRequest HeartbeatResponse,
    LeaveGroup 0..=5 LeaveGroupRequest LeaveGroupResponse,
    OffsetCommit 2..=9 OffsetCommitRequest OffsetCommitResponse,
    OffsetFetch 1..=9 OffsetFetchRequest OffsetFetchResponse,
    DescribeGroups 0..=6 DescribeGroupsRequest DescribeGroupsResponse,
    ListGroups 0..=5 ListGroupsRequest ListGroupsResponse,
    DeleteGroups 0..=2 DeleteGroupsRequest DeleteGroupsResponse,
    OffsetDelete 0..=0 OffsetDeleteRequest OffsetDeleteResponse,
}

fn name(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

/// A consumer's subscription as JoinGroup carries it: version prefix, then the subscription.
fn subscription() -> Bytes {
    let sub = ConsumerProtocolSubscription::default().with_topics(vec![
        StrBytes::from_static_str("orders"),
        StrBytes::from_static_str("payments"),
    ]);
    let mut buf = BytesMut::new();
    buf.put_i16(1);
    sub.encode(&mut buf, 1).unwrap();
    buf.freeze()
}

/// Bodies with their arrays filled, for the APIs that carry the most; a version takes the
/// first one that encodes at it (topics by name before topic ids, by id after).
fn rich_requests(key: ApiKey) -> Vec<RequestKind> {
    let id = uuid::Uuid::from_u128(7);
    match key {
        ApiKey::Produce => {
            let partition = produce_request::PartitionProduceData::default()
                .with_records(Some(batch(Compression::Lz4).freeze()));
            vec![ProduceRequest::default()
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(name("orders"))
                    .with_partition_data(vec![partition])])
                .into()]
        }
        ApiKey::Fetch => {
            let partitions = vec![fetch_request::FetchPartition::default().with_fetch_offset(5)];
            let topic = fetch_request::FetchTopic::default().with_partitions(partitions);
            vec![
                FetchRequest::default()
                    .with_topics(vec![topic.clone().with_topic(name("orders"))])
                    .into(),
                FetchRequest::default()
                    .with_topics(vec![topic.with_topic_id(id)])
                    .into(),
            ]
        }
        ApiKey::Metadata => vec![MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(name("orders")))]))
            .into()],
        ApiKey::CreateTopics => {
            let config = create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("retention.ms"))
                .with_value(Some(StrBytes::from_static_str("1000")));
            vec![CreateTopicsRequest::default()
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(name("orders"))
                    .with_num_partitions(3)
                    .with_configs(vec![config])])
                .into()]
        }
        ApiKey::JoinGroup => vec![JoinGroupRequest::default()
            .with_protocol_type(StrBytes::from_static_str("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(StrBytes::from_static_str("range"))
            .with_metadata(subscription())])
            .into()],
        ApiKey::OffsetCommit => {
            let partitions = vec![
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_committed_offset(42)
                    .with_committed_metadata(Some(StrBytes::from_static_str("m"))),
            ];
            vec![OffsetCommitRequest::default()
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(name("orders"))
                        .with_partitions(partitions),
                ])
                .into()]
        }
        _ => Vec::new(),
    }
}

/// `encode_request` output: a whole frame with its length prefix.
fn request_frame(key: ApiKey, version: i16, body: &RequestKind) -> Option<Bytes> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    encode_request(&header, body).ok()
}

fn versions() -> impl Iterator<Item = (ApiKey, i16)> {
    BROOK_APIS
        .iter()
        .flat_map(|&(key, min, max)| (min..=max).map(move |v| (key, v)))
}

/// A request frame of every API and version brook accepts, and the filled ones.
fn request_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for (key, version) in versions() {
        let default = request_frame(key, version, &default_request(key));
        let rich = rich_requests(key)
            .iter()
            .find_map(|body| request_frame(key, version, body));
        seeds.extend(default.into_iter().chain(rich).map(|f| f.to_vec()));
    }
    seeds
}

/// A default response of every API and version brook accepts, behind the key and version.
fn response_seeds() -> Vec<Vec<u8>> {
    versions()
        .filter_map(|(key, version)| {
            let frame = encode_response(key, version, 7, &default_response(key)).ok()?;
            let mut seed = (key as i16).to_be_bytes().to_vec();
            seed.extend_from_slice(&version.to_be_bytes());
            seed.extend_from_slice(&frame[4..]);
            Some(seed)
        })
        .collect()
}

/// Every codec's batch, with and without the re-signing mode byte, two batches in one blob,
/// and hand-made records with null and present keys, values and headers.
fn batch_seeds() -> Vec<Vec<u8>> {
    let mut blobs: Vec<Vec<u8>> = CODECS.iter().map(|&c| batch(c).to_vec()).collect();
    let mut two = batch(Compression::None).to_vec();
    two.extend_from_slice(&batch(Compression::Zstd));
    blobs.push(two);
    let mut records = framed(&record_body(0, None, Some(b"v")));
    records.extend(framed(&record_body(1, Some(b"k"), None)));
    blobs.push(raw_batch(0, 2, &records));
    blobs
        .iter()
        .flat_map(|blob| [0u8, 1].map(|mode| [&[mode], &blob[..]].concat()))
        .collect()
}

/// Every request seed decodes, and encodes back to the same bytes.
#[test]
fn request_seeds_round_trip() {
    let seeds = request_seeds();
    assert!(seeds.len() > 150, "{} request seeds", seeds.len());
    for seed in seeds {
        let frame = Bytes::from(seed);
        let (key, header, rest) = request::decode_header(frame.slice(4..)).unwrap();
        let version = header.request_api_version;
        let body = request::decode_body(key, version, rest).unwrap();
        assert_eq!(
            request_frame(key, version, &body),
            Some(frame),
            "{key:?} v{version}"
        );
    }
    assert_eq!(
        consumer_protocol::subscribed_topics(&subscription()),
        ["orders", "payments"]
    );
}

#[test]
fn requests_never_panic() {
    property::check("request", request_seeds(), ROUNDS, request);
}

#[test]
fn responses_never_panic() {
    property::check("response", response_seeds(), ROUNDS, response);
}

#[test]
fn record_batches_never_panic() {
    property::check("record_batches", batch_seeds(), ROUNDS / 4, record_batches);
}

/// A Metadata v0 body announcing 2^31 - 1 topics, and a v12 one announcing 2^32 - 2 through
/// its compact array, inside a frame with room for about ten million bytes: before the caps
/// the reservation was sized by the bytes left (ten million ~80-byte topics, 800 MB); now the
/// counts are refused before anything is reserved.
#[test]
fn absurd_counts_in_a_large_frame_are_refused_before_allocating() {
    let room = vec![0u8; 10 << 20];
    for (version, count) in [
        (0, &[0x7f, 0xff, 0xff, 0xff][..]),
        (12, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
    ] {
        let body = Bytes::from([count, &room].concat());
        let error = request::decode_body(ApiKey::Metadata, version, body).unwrap_err();
        assert!(error.to_string().contains("over the limit"), "{error}");
    }
    // Within the cap but more elements than bytes left.
    let body = Bytes::from_static(&[0, 0, 0x10, 0, 0, 0]);
    let error = request::decode_body(ApiKey::Metadata, 0, body).unwrap_err();
    assert!(error.to_string().contains("bytes left"), "{error}");
}

/// A Heartbeat v4 body announcing 2^31 - 1 tagged fields is refused at the count.
#[test]
fn absurd_tagged_field_count_is_refused() {
    let frame = request_frame(ApiKey::Heartbeat, 4, &default_request(ApiKey::Heartbeat)).unwrap();
    let (_, _, body) = request::decode_header(frame.slice(4..)).unwrap();
    // The body ends with its tagged fields count, 0: announce 2^31 - 1 instead.
    let mut body = body.to_vec();
    body.pop();
    body.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x07]);
    let error = request::decode_body(ApiKey::Heartbeat, 4, Bytes::from(body)).unwrap_err();
    assert!(error.to_string().contains("tagged fields"), "{error}");
}

/// Rewrites the seed files of `fuzz/corpus/{request,response,record_batches}`:
/// `cargo test --release -p brook-wire write_corpus -- --ignored`.
#[test]
#[ignore]
fn write_corpus() {
    property::write_seeds("request", &request_seeds());
    property::write_seeds("response", &response_seeds());
    property::write_seeds("record_batches", &batch_seeds());
}
