//! A node killed with SIGKILL right after its writes were applied comes back with exactly the
//! image it had: from its last snapshot and the log after it (the state machine writes nothing
//! when it applies an entry, so there is nothing else to recover from).
//!
//! The node runs in a child process (this test binary run again for this one test, told so by
//! an environment variable), which the test kills by its handle.

// Test helpers outside #[test] functions unwrap too: a failure should stop the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use brook_raft::{MetadataCommand, MetadataRaft, MetadataState, Node};
use support::*;
use tempfile::TempDir;
use tokio::net::TcpListener;

/// Set in the child: the directory its node keeps its data in.
const CHILD_DIR: &str = "BROOK_RAFT_TEST_CHILD_DIR";
/// What the child prints once its writes were applied and its image saved (libtest may have
/// begun the line with the test name).
const READY: &str = "brook-raft-test-child-ready";
/// Where the child saves the image it had when it became ready (bincode).
const EXPECTED: &str = "expected-image";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_recovers_its_image_from_snapshot_and_log() {
    init_tracing();
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        return write_then_wait(PathBuf::from(dir)).await;
    }
    let dir = TempDir::new().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_node_recovers_its_image_from_snapshot_and_log",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if line.is_ok_and(|l| l.contains(READY)) {
                let _ = ready_tx.send(());
            }
        }
    });
    let ready = ready_rx.recv_timeout(Duration::from_secs(60));
    child.kill().unwrap();
    child.wait().unwrap();
    ready.expect("the child node never became ready");
    let expected: MetadataState =
        bincode::deserialize(&std::fs::read(dir.path().join(EXPECTED)).unwrap()).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let raft = MetadataRaft::start(config_at(1, dir.path()), listener)
        .await
        .unwrap();
    // openraft re-applied the committed log after the snapshot before `start` returned; what
    // the child had not yet recorded as committed is applied once the node leads again. A
    // single node that led takes the lead back at once; were it elected anew, the new term's
    // blank entry would follow the child's entries.
    let mut in_a_new_term = expected.clone();
    in_a_new_term.new_term();
    eventually("the image is back", Duration::from_secs(10), || {
        let image = raft.reader().state();
        image == expected || image == in_a_new_term
    })
    .await;
    eventually(
        "the child's snapshot and purge",
        Duration::from_secs(10),
        || {
            let m = raft.metrics();
            m.snapshot.is_some() && m.purged.is_some()
        },
    )
    .await;
    raft.shutdown().await.unwrap();
}

/// The child: a single node that snapshots, purges its log behind the snapshot, applies more
/// entries after it, saves its image and reports ready; then it waits to be killed.
async fn write_then_wait(dir: PathBuf) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = config_at(1, &dir);
    config.raft.snapshot_policy = openraft::SnapshotPolicy::Never;
    config.raft.max_in_snapshot_log_to_keep = 0;
    config.raft.purge_batch_size = 1;
    let raft = MetadataRaft::start(config, listener).await.unwrap();
    raft.initialize(BTreeMap::from([(1, Node::new(addr))]))
        .await
        .unwrap();
    raft.write(register(1)).await.unwrap();
    for i in 0..10u8 {
        raft.write(create_topic(&format!("before-{i}"), i + 1, 2))
            .await
            .unwrap();
    }
    let snapshot_at = raft.metrics().last_applied.unwrap().index;
    raft.raft().trigger().snapshot().await.unwrap();
    eventually("a snapshot", Duration::from_secs(10), || {
        raft.metrics()
            .snapshot
            .is_some_and(|s| s.index >= snapshot_at)
    })
    .await;
    let snapshot_at = raft.metrics().snapshot.unwrap().index;
    raft.raft().trigger().purge_log(snapshot_at).await.unwrap();
    eventually("the log purged", Duration::from_secs(10), || {
        raft.metrics()
            .purged
            .is_some_and(|p| p.index == snapshot_at)
    })
    .await;
    for i in 0..5u8 {
        raft.write(create_topic(&format!("after-{i}"), 100 + i, 2))
            .await
            .unwrap();
    }
    raft.write(MetadataCommand::AllocateProducerIds { count: 10 })
        .await
        .unwrap();
    let applied = raft.reader().last_applied().unwrap().index;
    assert_eq!(applied, snapshot_at + 6, "entries after the snapshot");
    let image = raft.reader().state();
    assert_eq!(image.topics().len(), 15);
    // Written before READY: a killed process loses no completed write.
    std::fs::write(dir.join(EXPECTED), bincode::serialize(&image).unwrap()).unwrap();
    println!("{READY}");
    std::future::pending::<()>().await;
}
