//! Helpers the state's unit tests share: commands to apply and checks on the image.

use std::collections::BTreeMap;

use crate::command::MetadataCommand;
use crate::state::MetadataState;

pub(super) fn register(id: u64) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        id,
        host: format!("host{id}"),
        port: 9092,
        endpoints: Vec::new(),
        rack: None,
        epoch: 1,
        at_ms: 0,
    }
}

pub(super) fn heartbeat(id: u64, at_ms: u64) -> MetadataCommand {
    MetadataCommand::BrokerHeartbeat { id, at_ms }
}

/// A topic with replication factor 1.
pub(super) fn create(name: &str, id: u8, partitions: u32) -> MetadataCommand {
    create_rf(name, id, partitions, 1)
}

pub(super) fn create_rf(name: &str, id: u8, partitions: u32, rf: u32) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: name.into(),
        id: [id; 16],
        partitions,
        replication_factor: rf,
        configs: BTreeMap::new(),
        assignment: vec![],
    }
}

pub(super) fn with_brokers(ids: &[u64]) -> MetadataState {
    let mut s = MetadataState::default();
    for &id in ids {
        s.apply(&register(id)).unwrap();
    }
    s
}

/// Apply a command that must be rejected with `code`, and check nothing changed.
pub(super) fn assert_rejected(s: &mut MetadataState, cmd: MetadataCommand, code: i16) {
    let before = s.clone();
    let err = s.apply(&cmd).unwrap_err();
    assert_eq!(err.code, code, "{cmd:?}: {err}");
    assert_eq!(*s, before, "{cmd:?} changed the state");
}

/// The leader of each partition of `topic`, in partition order.
pub(super) fn owners(s: &MetadataState, topic: &str) -> Vec<u64> {
    s.topic(topic)
        .unwrap()
        .partitions
        .iter()
        .map(|p| p.leader.unwrap())
        .collect()
}

/// Single-replica sets led by `leaders`.
pub(super) fn as_sets(leaders: &[u64]) -> Vec<Vec<u64>> {
    leaders.iter().map(|&l| vec![l]).collect()
}

pub(super) fn count(owners: &[u64], id: u64) -> usize {
    owners.iter().filter(|&&o| o == id).count()
}
