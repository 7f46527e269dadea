//! The Raft port admits only peers that hold the cluster secret and belong to this cluster,
//! and refuses out-of-range terms even from them. Each attack here once changed the metadata
//! or stopped the node: an unauthenticated ClientWrite deleted a topic and re-registered a
//! broker at a stranger's address, a stranger joined as a voter, and a term of 2^64 - 1 made
//! openraft panic on every restart.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bincode::Options;
use brook_raft::typ::RPCError;
use brook_raft::typ::{AppendEntriesRequest, Vote, VoteRequest};
use brook_raft::{ClusterSecret, Identity, MetadataCommand, MetadataRaft, Node};
use brook_raft::{TcpNetworkFactory, TransportConfig};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A ClientWrite as the unauthenticated transport framed it: length, then bincode of the
/// request enum (variant 3) holding the command.
fn bare_client_write(cmd: &MetadataCommand) -> Vec<u8> {
    let mut body = 3u32.to_le_bytes().to_vec();
    body.extend(
        bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .serialize(cmd)
            .unwrap(),
    );
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend(body);
    frame
}

/// Send `bytes` and read until the server closes the connection (within 5 s).
async fn send_until_closed(addr: &str, bytes: &[u8]) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(bytes).await.unwrap();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut sink))
        .await
        .expect("the server did not close the connection");
    assert!(sink.len() < 1024, "the server answered at length: {read:?}");
}

async fn vote(identity: Identity, addr: &str) -> Result<bool, RPCError> {
    let mut factory = TcpNetworkFactory::new(identity, TransportConfig::default());
    let mut net = factory.new_client(1, &Node::new(addr.to_owned())).await;
    let req = VoteRequest::new(Vote::new(0, 99), None);
    net.vote(req, RPCOption::new(Duration::from_secs(5)))
        .await
        .map(|r| r.vote_granted)
}

async fn single_node() -> TestNode {
    let node = start_node(1, |_| {}).await;
    let members = BTreeMap::from([(1, Node::new(node.addr.clone()))]);
    node.raft.initialize(members).await.unwrap();
    agreed_leader(std::slice::from_ref(&node)).await;
    let init = MetadataCommand::InitCluster {
        cluster_id: "this-cluster".into(),
        session_timeout_ms: 10_000,
    };
    node.raft.write(init).await.unwrap();
    node.raft.write(register(1)).await.unwrap();
    node.raft.write(create_topic("orders", 7, 1)).await.unwrap();
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_writes_change_nothing() {
    let node = single_node().await;
    let before = node.raft.reader().state();

    send_until_closed(
        &node.addr,
        &bare_client_write(&MetadataCommand::DeleteTopic {
            name: "orders".into(),
        }),
    )
    .await;
    let mut stranger = register(1);
    if let MetadataCommand::RegisterBroker { host, epoch, .. } = &mut stranger {
        *host = "203.0.113.9".into();
        *epoch = 2;
    }
    send_until_closed(&node.addr, &bare_client_write(&stranger)).await;

    // A write through the node itself still works, and the attacks left no trace.
    node.raft.write(register(2)).await.unwrap();
    let after = node.raft.reader();
    assert!(after.read(|s| s.topic("orders").is_some()), "topic deleted");
    assert_eq!(
        after.read(|s| s.broker(1).map(|b| b.host.clone())),
        before.broker(1).map(|b| b.host.clone())
    );
    node.raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_secret_and_other_cluster_are_refused() {
    let node = single_node().await;
    // The right secret gets through (a stale vote is refused, but answered).
    assert!(!vote(peer(99), &node.addr).await.unwrap());

    let wrong = Identity::new(ClusterSecret::new(b"not the cluster secret").unwrap(), 99);
    let err = vote(wrong, &node.addr).await.unwrap_err();
    assert!(matches!(err, RPCError::Unreachable(_)), "{err:?}");

    let other_cluster = Identity {
        cluster_id: Arc::new(|| Some("another-cluster".into())),
        ..peer(99)
    };
    let err = vote(other_cluster, &node.addr).await.unwrap_err();
    assert!(err.to_string().contains("another cluster"), "{err}");

    // The node kept serving.
    node.raft.write(register(2)).await.unwrap();
    node.raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_cannot_join() {
    let node = single_node().await;
    let stranger = start_node(5, |c| {
        c.secret = ClusterSecret::new(b"a stranger's own secret").unwrap();
    })
    .await;
    let joined = stranger
        .raft
        .join(
            std::slice::from_ref(&node.addr),
            &stranger.addr,
            Duration::from_secs(2),
        )
        .await;
    assert!(joined.is_err(), "{joined:?}");
    let members: Vec<u64> = node
        .raft
        .metrics()
        .membership_config
        .membership()
        .nodes()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(members, vec![1]);
    stranger.raft.shutdown().await.unwrap();
    node.raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapping_term_is_refused_and_the_node_survives_restarts() {
    let node = single_node().await;
    let mut factory = TcpNetworkFactory::new(peer(99), TransportConfig::default());
    let mut net = factory.new_client(1, &Node::new(node.addr.clone())).await;
    let hostile = AppendEntriesRequest {
        vote: Vote::new_committed(u64::MAX, 99),
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    let err = net
        .append_entries(hostile, RPCOption::new(Duration::from_secs(5)))
        .await
        .unwrap_err();
    assert!(matches!(err, RPCError::Network(_)), "{err:?}");
    let vote = VoteRequest::new(Vote::new(u64::MAX, 99), None);
    assert!(net
        .vote(vote, RPCOption::new(Duration::from_secs(5)))
        .await
        .is_err());

    node.raft.write(register(2)).await.unwrap();
    assert!(node.raft.metrics().current_term < 10);

    // Restarted from its data directory, it still leads and serves.
    let TestNode {
        id,
        addr,
        raft,
        dir,
    } = node;
    raft.shutdown().await.unwrap();
    let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
    let raft = MetadataRaft::start(config(id, &dir), listener)
        .await
        .unwrap();
    let node = TestNode {
        id,
        addr,
        raft,
        dir,
    };
    agreed_leader(std::slice::from_ref(&node)).await;
    node.raft.write(register(3)).await.unwrap();
    node.raft.shutdown().await.unwrap();
}
