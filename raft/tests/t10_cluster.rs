//! Three in-process nodes over the real TCP transport: writes through a follower reach every
//! node, a new leader takes over when the leader stops, and a late joiner catches up.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use brook_raft::{codes, CommandOutput, Error, MetadataCommand, Node};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_write_is_forwarded_and_survives_leader_loss() {
    let mut nodes = start_cluster(3).await;
    let leader = agreed_leader(&nodes).await;
    let follower = nodes.iter().position(|n| n.id != leader).unwrap();

    // Register the brokers through the follower too: every write is forwarded.
    for id in 1..=3 {
        let out = nodes[follower].raft.write(register(id)).await.unwrap();
        assert_eq!(out, CommandOutput::Done);
    }
    let out = nodes[follower]
        .raft
        .write(create_topic("orders", 1, 6))
        .await
        .unwrap();
    let CommandOutput::TopicCreated { replicas, .. } = out else {
        panic!("unexpected output {out:?}");
    };
    for broker in 1..=3 {
        assert_eq!(replicas.iter().filter(|r| r[0] == broker).count(), 2);
    }
    // Read-your-writes: the forwarding node's own image already has it.
    assert!(nodes[follower]
        .raft
        .reader()
        .read(|s| s.topic("orders").is_some()));
    converge(&nodes, "orders on every node", |s| {
        s.topic("orders").is_some_and(|t| t.partitions.len() == 6) && s.brokers().len() == 3
    })
    .await;
    let images: Vec<_> = nodes.iter().map(|n| n.raft.reader().state()).collect();
    assert!(images.windows(2).all(|w| w[0] == w[1]), "images differ");

    // A rejection travels back through the forwarding path with its Kafka code.
    let err = nodes[follower]
        .raft
        .write(create_topic("orders", 2, 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Rejected(r) if r.code == codes::TOPIC_ALREADY_EXISTS),
        "{err:?}"
    );
    assert_eq!(err.kafka_code(), codes::TOPIC_ALREADY_EXISTS);

    // Stop the leader; the other two elect a new one and keep accepting writes.
    let old = nodes.iter().position(|n| n.id == leader).unwrap();
    nodes.remove(old).raft.shutdown().await.unwrap();
    let new_leader = agreed_leader(&nodes).await;
    assert_ne!(new_leader, leader);
    for n in &nodes {
        let name = format!("after-{}", n.id);
        n.raft
            .write(create_topic(&name, 10 + n.id as u8, 3))
            .await
            .unwrap();
    }
    converge(&nodes, "writes after the failover on both nodes", |s| {
        s.topics().len() == 3 && s.topic("orders").is_some()
    })
    .await;
    let out = nodes[0]
        .raft
        .write(MetadataCommand::AllocateProducerIds { count: 100 })
        .await
        .unwrap();
    assert_eq!(
        out,
        CommandOutput::ProducerIds {
            start: 0,
            count: 100
        }
    );

    for n in nodes {
        n.raft.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_learner_catches_up_from_a_snapshot() {
    // Snapshot often and purge the log behind it, so a new node can only catch up by
    // receiving the snapshot over the transport (InstallSnapshot).
    let mut nodes = Vec::new();
    for id in 1..=3 {
        nodes.push(
            start_node(id, |c| {
                c.raft.snapshot_policy = openraft::SnapshotPolicy::LogsSinceLast(5);
                c.raft.max_in_snapshot_log_to_keep = 0;
                c.raft.purge_batch_size = 1;
            })
            .await,
        );
    }
    let members: BTreeMap<_, _> = nodes
        .iter()
        .map(|n| (n.id, Node::new(n.addr.clone())))
        .collect();
    nodes[0].raft.initialize(members).await.unwrap();
    agreed_leader(&nodes).await;
    for id in 1..=3 {
        nodes[0].raft.write(register(id)).await.unwrap();
    }
    for i in 0..20u8 {
        let name = format!("t{i}");
        nodes[0]
            .raft
            .write(create_topic(&name, i + 1, 2))
            .await
            .unwrap();
    }
    eventually(
        "the log is purged behind a snapshot",
        Duration::from_secs(10),
        || {
            nodes
                .iter()
                .all(|n| n.raft.metrics().purged.is_some_and(|p| p.index > 5))
        },
    )
    .await;

    let late = start_node(4, |_| {}).await;
    let leader = agreed_leader(&nodes).await;
    let leader = nodes.iter().find(|n| n.id == leader).unwrap();
    leader
        .raft
        .raft()
        .add_learner(4, Node::new(late.addr.clone()), true)
        .await
        .unwrap();
    eventually(
        "the learner has all topics",
        Duration::from_secs(10),
        || {
            late.raft
                .reader()
                .read(|s| s.topics().len() == 20 && s.brokers().len() == 3)
        },
    )
    .await;
    assert!(
        late.raft.metrics().snapshot.is_some(),
        "learner installed no snapshot"
    );
    assert_eq!(late.raft.reader().state(), leader.raft.reader().state());

    late.raft.shutdown().await.unwrap();
    for n in nodes {
        n.raft.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_node_keeps_its_state() {
    let node = start_node(1, |_| {}).await;
    let members = BTreeMap::from([(1, Node::new(node.addr.clone()))]);
    node.raft.initialize(members.clone()).await.unwrap();
    agreed_leader(std::slice::from_ref(&node)).await;
    node.raft.write(register(1)).await.unwrap();
    node.raft.write(create_topic("kept", 7, 4)).await.unwrap();
    let before = node.raft.reader().state();
    let support::TestNode { id, raft, dir, .. } = node;
    raft.shutdown().await.unwrap();

    // Same directory, new port: the vote, log and image are all still there.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raft = brook_raft::MetadataRaft::start(support::config(id, &dir), listener)
        .await
        .unwrap();
    // Initializing again is a harmless no-op.
    raft.initialize(members).await.unwrap();
    eventually("the image is back", Duration::from_secs(10), || {
        raft.reader().state() == before
    })
    .await;
    raft.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_nodes_become_learners_beyond_the_voter_limit() {
    let nodes = start_cluster(3).await;
    let follower = {
        let leader = agreed_leader(&nodes).await;
        nodes.iter().find(|n| n.id != leader).unwrap()
    };
    // Asked through a follower: the join is passed on to the leader.
    let fourth = start_node(4, |_| {}).await;
    let join = |addr: String| {
        let seeds = vec![follower.addr.clone()];
        let raft = &fourth.raft;
        async move { raft.join(&seeds, &addr, Duration::from_secs(20)).await }
    };
    let voter = join(fourth.addr.clone()).await.unwrap();
    assert!(!voter, "a 4th node must not make the voter count even");
    // Joining again is harmless and changes nothing.
    assert!(!join(fourth.addr.clone()).await.unwrap());
    eventually(
        "every node sees 3 voters and 1 learner",
        Duration::from_secs(10),
        || {
            nodes.iter().chain([&fourth]).all(|n| {
                let m = n.raft.metrics().membership_config.membership().clone();
                m.voter_ids().collect::<Vec<_>>() == vec![1, 2, 3]
                    && m.learner_ids().collect::<Vec<_>>() == vec![4]
            })
        },
    )
    .await;
    // The learner replicates the metadata.
    follower.raft.write(register(1)).await.unwrap();
    follower
        .raft
        .write(create_topic("after-join", 9, 4))
        .await
        .unwrap();
    eventually(
        "the learner sees the new topic",
        Duration::from_secs(10),
        || {
            fourth
                .raft
                .reader()
                .read(|s| s.topic("after-join").is_some())
        },
    )
    .await;
    // The same id at another address is refused rather than silently re-pointed.
    let impostor = join("127.0.0.1:1".to_string()).await;
    assert!(
        matches!(impostor, Err(brook_raft::Error::Write(_))),
        "{impostor:?}"
    );
    fourth.raft.shutdown().await.unwrap();
    for n in nodes {
        n.raft.shutdown().await.unwrap();
    }
}
