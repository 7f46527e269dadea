//! The Raft port survives garbage: a malformed or oversized frame closes only its own
//! connection, and the node keeps serving RPCs on others.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use brook_raft::typ::{NodeId, Vote, VoteRequest};
use brook_raft::{Node, TcpNetworkFactory, TransportConfig};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Send `bytes` on a fresh connection and check the server closes it without answering.
async fn assert_closed_after(addr: &str, bytes: &[u8]) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(bytes).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("the server did not close the connection");
    // A clean EOF, or a reset if the server closed with unread input.
    assert!(matches!(read, Ok(0) | Err(_)), "server answered: {read:?}");
}

async fn vote_rpc(net: &mut impl RaftNetwork<brook_raft::TypeConfig>, from: NodeId) -> bool {
    // A stale candidate (term 0) is refused, but the refusal proves the RPC went through.
    let req = VoteRequest::new(Vote::new(0, from), None);
    let resp = net
        .vote(req, RPCOption::new(Duration::from_secs(5)))
        .await
        .unwrap();
    resp.vote_granted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_oversized_frames_are_rejected_without_harm() {
    let node = start_node(1, |_| {}).await;
    let members = BTreeMap::from([(1, Node::new(node.addr.clone()))]);
    node.raft.initialize(members).await.unwrap();
    agreed_leader(std::slice::from_ref(&node)).await;

    // A peer connection opened before the garbage arrives, and used before and after it.
    let mut factory = TcpNetworkFactory::new(peer(99), TransportConfig::default());
    let mut net = factory.new_client(1, &Node::new(node.addr.clone())).await;
    assert!(!vote_rpc(&mut net, 99).await);

    // Garbage in a well-formed frame: not a request.
    let mut frame = 16u32.to_be_bytes().to_vec();
    frame.extend_from_slice(&[0xff; 16]);
    assert_closed_after(&node.addr, &frame).await;
    // A frame announcing far more than the limit: closed before reading the body.
    assert_closed_after(&node.addr, &u32::MAX.to_be_bytes()).await;
    // Just over the default 16 MiB limit.
    let over = (TransportConfig::default().max_frame_bytes as u32 + 1).to_be_bytes();
    assert_closed_after(&node.addr, &over).await;
    // Not even a whole length prefix, then EOF.
    {
        let mut conn = TcpStream::connect(&node.addr).await.unwrap();
        conn.write_all(&[1, 2]).await.unwrap();
        conn.shutdown().await.unwrap();
    }

    // The old connection and new ones still work, and so does the node.
    assert!(!vote_rpc(&mut net, 99).await);
    let mut fresh = factory.new_client(1, &Node::new(node.addr.clone())).await;
    assert!(!vote_rpc(&mut fresh, 99).await);
    node.raft.write(register(1)).await.unwrap();
    assert!(node.raft.reader().read(|s| s.broker(1).is_some()));

    node.raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_peer_is_reported_as_such() {
    // Nothing listens on a port we just released.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let mut factory = TcpNetworkFactory::new(peer(1), TransportConfig::default());
    let mut net = factory.new_client(2, &Node::new(addr)).await;
    let err = net
        .vote(
            VoteRequest::new(Vote::new(1, 1), None),
            RPCOption::new(Duration::from_secs(1)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, openraft::error::RPCError::Unreachable(_)),
        "{err:?}"
    );
}
