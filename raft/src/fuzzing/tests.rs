//! The Raft fuzz targets as property tests, the seeds of their corpus, and the inputs that
//! broke them before they were fixed.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{CommittedLeaderId, EntryPayload, Membership};

use super::*;
use crate::command::{MetadataCommand, Reassignment};
use crate::consumer_groups::{GroupCommit, GroupRecord, MemberRecord, OffsetCommit};
use crate::membership::JoinReply;
use crate::state::MetadataState;
use crate::typ::{
    AppendEntriesRequest, AppendEntriesResponse, Entry, ForwardToLeader, InstallSnapshotResponse,
    LogId, Node, StoredMembership, Vote, VoteRequest, VoteResponse,
};

#[path = "../../../fuzz/property.rs"]
mod property;

const ROUNDS: usize = 20_000;

fn log_id(index: u64) -> LogId {
    LogId::new(CommittedLeaderId::new(3, 1), index)
}

/// A command of every shape that carries strings, maps or nested vectors.
fn commands() -> Vec<MetadataCommand> {
    let group = GroupRecord {
        protocol_type: Some("consumer".into()),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        members: vec![MemberRecord {
            member_id: "m-1".into(),
            instance_id: Some("i-1".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 45_000,
            rebalance_timeout_ms: 60_000,
            subscription: vec![0, 1, 0, 0, 0, 1, 0, 1, b't'],
            assignment: vec![0, 1, 2, 3],
        }],
        state_since_ms: 7,
    };
    vec![
        MetadataCommand::InitCluster {
            cluster_id: "brook".into(),
            session_timeout_ms: 9_000,
        },
        MetadataCommand::RegisterBroker {
            id: 1,
            host: "localhost".into(),
            port: 9092,
            endpoints: Vec::new(),
            rack: Some("r1".into()),
            epoch: 1,
            at_ms: 5,
        },
        MetadataCommand::CreateTopic {
            name: "t".into(),
            id: [7; 16],
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::from([("retention.ms".into(), "1000".into())]),
            assignment: vec![vec![1], vec![1]],
        },
        MetadataCommand::AlterPartition {
            topic_id: [7; 16],
            partition: 1,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            isr: vec![1],
        },
        MetadataCommand::ReassignPartitions {
            moves: vec![Reassignment {
                topic: "t".into(),
                partition: 0,
                replicas: Some(vec![1]),
            }],
        },
        MetadataCommand::StoreGroup {
            coordinator: 1,
            since: 1,
            group: "g".into(),
            record: group,
        },
        MetadataCommand::CommitOffsets {
            coordinator: 1,
            at_ms: 9,
            commits: vec![GroupCommit {
                group: "g".into(),
                since: 1,
                offsets: vec![OffsetCommit {
                    topic: "t".into(),
                    partition: 0,
                    offset: 42,
                    leader_epoch: 0,
                    metadata: "m".into(),
                }],
            }],
        },
        MetadataCommand::DeleteOffsets {
            coordinator: 1,
            since: 1,
            group: "g".into(),
            partitions: vec![("t".into(), 1)],
        },
    ]
}

fn membership() -> Membership<u64, Node> {
    let nodes = BTreeMap::from([(1, Node::new("127.0.0.1:9093")), (2, Node::new("h:1"))]);
    Membership::new(vec![BTreeSet::from([1])], nodes)
}

fn entries() -> Vec<Entry> {
    let mut payloads = vec![EntryPayload::Blank, EntryPayload::Membership(membership())];
    payloads.extend(commands().into_iter().map(EntryPayload::Normal));
    payloads
        .into_iter()
        .zip(1..)
        .map(|(payload, i)| Entry {
            log_id: log_id(i),
            payload,
        })
        .collect()
}

fn snapshot_meta() -> SnapshotMeta {
    SnapshotMeta {
        last_log_id: Some(log_id(10)),
        last_membership: StoredMembership::new(Some(log_id(2)), membership()),
        snapshot_id: "3-1-10-0".into(),
    }
}

/// Encoded requests and replies of every kind.
fn rpc_seeds() -> Vec<Vec<u8>> {
    let max = TransportConfig::default().max_frame_bytes;
    let vote = Vote::new(3, 1);
    let requests = [
        RaftRequest::Vote(VoteRequest::new(vote, Some(log_id(9)))),
        RaftRequest::AppendEntries(AppendEntriesRequest {
            vote,
            prev_log_id: Some(log_id(0)),
            entries: entries(),
            leader_commit: Some(log_id(1)),
        }),
        RaftRequest::InstallSnapshot(InstallSnapshotRequest {
            vote,
            meta: snapshot_meta(),
            offset: 0,
            data: b"image bytes".to_vec(),
            done: true,
        }),
        RaftRequest::ClientWrite(MetadataCommand::DeleteTopic { name: "t".into() }),
        RaftRequest::Join {
            id: 2,
            addr: "127.0.0.1:9094".into(),
        },
    ];
    let leader = ForwardToLeader::new(1, Node::new("127.0.0.1:9093"));
    let replies = [
        RaftReply::Vote(Ok(VoteResponse::new(vote, Some(log_id(9)), true))),
        RaftReply::AppendEntries(Ok(AppendEntriesResponse::Success)),
        RaftReply::AppendEntries(Ok(AppendEntriesResponse::Conflict)),
        RaftReply::InstallSnapshot(Ok(InstallSnapshotResponse { vote })),
        RaftReply::ClientWrite(Err(openraft::error::RaftError::APIError(
            openraft::error::ClientWriteError::ForwardToLeader(leader),
        ))),
        RaftReply::Join(JoinReply::NotLeader {
            leader: Some((1, "127.0.0.1:9093".into())),
        }),
    ];
    let mut seeds: Vec<Vec<u8>> = requests
        .iter()
        .map(|r| rpc::encode(r, max).unwrap())
        .collect();
    seeds.extend(replies.iter().map(|r| rpc::encode(r, max).unwrap()));
    seeds
}

/// The image a node builds after applying `commands()`.
fn image_bytes() -> Vec<u8> {
    let mut state = MetadataState::default();
    for cmd in commands() {
        let _ = state.apply(&cmd);
    }
    let data = StateMachineData {
        last_applied: Some(log_id(10)),
        last_membership: StoredMembership::new(Some(log_id(2)), membership()),
        state,
    };
    bincode::serialize(&data).unwrap()
}

/// `bytes` as the chunk stream [`snapshot`] reads: `(offset, bytes, done)` each.
fn chunks(parts: &[(u64, &[u8], bool)]) -> Vec<u8> {
    let mut out = Vec::new();
    for &(offset, bytes, done) in parts {
        out.extend_from_slice(&offset.to_be_bytes());
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.push(u8::from(done));
        out.extend_from_slice(bytes);
    }
    out
}

/// The image whole, and sent in chunks (in order, and with one chunk resent).
fn snapshot_seeds() -> Vec<Vec<u8>> {
    let image = image_bytes();
    let (a, b) = image.split_at(image.len() / 2);
    let half = a.len() as u64;
    vec![
        image.clone(),
        chunks(&[(0, a, false), (half, b, true)]),
        chunks(&[(0, a, false), (half, b, false), (half, b, true)]),
    ]
}

#[test]
fn seeds_decode() {
    let max = TransportConfig::default().max_frame_bytes;
    for seed in &rpc_seeds()[..5] {
        rpc::decode::<RaftRequest>(seed, max).unwrap();
    }
    for seed in &rpc_seeds()[5..] {
        rpc::decode::<RaftReply>(seed, max).unwrap();
    }
    let image = image(image_bytes()).unwrap();
    assert!(!image.state.topics().is_empty());
    // The chunks add up to the same image.
    let stream = &snapshot_seeds()[1];
    let mut streaming = Streaming::<TypeConfig>::new("s".into(), Box::default());
    let mut rest = &stream[..];
    while let Some((header, tail)) = rest.split_first_chunk::<CHUNK_HEADER>() {
        let len = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let chunk = InstallSnapshotRequest {
            vote: Default::default(),
            meta: SnapshotMeta::default(),
            offset: u64::from_be_bytes(header[..8].try_into().unwrap()),
            data: tail[..len].to_vec(),
            done: header[10] == 1,
        };
        poll_once(streaming.receive(chunk)).unwrap().unwrap();
        rest = &tail[len..];
    }
    assert_eq!(streaming.into_snapshot_data().into_inner(), image_bytes());
}

#[test]
fn rpc_frames_never_panic() {
    property::check("raft_rpc", rpc_seeds(), ROUNDS, rpc);
}

#[test]
fn snapshots_never_panic() {
    property::check("raft_snapshot", snapshot_seeds(), ROUNDS / 4, snapshot);
}

/// A second chunk at offset 2^40 made openraft's receiver grow a `Cursor<Vec<u8>>` to a
/// terabyte, which aborts the node; a `SnapshotBuffer` refuses the seek.
#[test]
fn a_chunk_far_past_the_end_is_refused() {
    let mut streaming = Streaming::<TypeConfig>::new("s".into(), Box::default());
    for (offset, done) in [(0, false), (1 << 40, true)] {
        let chunk = InstallSnapshotRequest {
            vote: Default::default(),
            meta: SnapshotMeta::default(),
            offset,
            data: b"abc".to_vec(),
            done,
        };
        let received = poll_once(streaming.receive(chunk)).unwrap();
        assert_eq!(received.is_ok(), offset == 0);
    }
    snapshot(&chunks(&[(0, b"abc", false), (1 << 40, b"abc", true)]));
}

/// Rewrites the seed files of `fuzz/corpus/raft_*` from the seeds above:
/// `cargo test --release -p brook-raft write_corpus -- --ignored`.
#[test]
#[ignore]
fn write_corpus() {
    property::write_seeds("raft_rpc", &rpc_seeds());
    property::write_seeds("raft_snapshot", &snapshot_seeds());
}
