//! The cluster metadata image: a plain, deterministic structure that every node rebuilds from
//! the same Raft log, and that Metadata answers are read from.
//!
//! [`MetadataState::apply`] hands each command to its own `apply_*` function, which lives
//! beside the part of the image it changes:
//!
//! - `brokers`: the cluster's settings, the registered brokers and their liveness.
//! - `topics`: topics, their ids and configs, and the ids of deleted topics.
//! - `placement`: where the replicas of new partitions go.
//! - `replicas`: one partition's replica set, leader and in-sync set ([`PartitionState`]) and
//!   the rules that change them.
//! - `partitions`: the commands that move leadership, in-sync sets and replica sets, and the
//!   elections that follow brokers coming, going and restarting.
//! - `producers`: blocks of producer ids.
//! - `groups`: consumer group writes, fenced by which broker coordinates each group.
//! - `users`: SCRAM credentials (salted keys, never passwords).
//! - `acls`: ACL bindings.
//!
//! Every `apply_*` function checks its command completely before changing anything, so a
//! rejected command leaves the state exactly as it was. Nothing here reads a clock or a random
//! source: broker liveness is judged against the newest heartbeat time seen in the log, not
//! against the local clock.

mod acls;
mod brokers;
mod groups;
mod partitions;
mod placement;
mod producers;
mod replicas;
#[cfg(test)]
mod testkit;
mod topics;
mod users;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{CommandResult, MetadataCommand, Rejection};
use crate::consumer_groups::ConsumerGroups;

pub use brokers::BrokerState;
pub use replicas::PartitionState;
pub use topics::{TopicState, MAX_TOPIC_CONFIG_BYTES};

/// The whole metadata image.
///
/// Snapshots are the bincode encoding of this struct, which depends on the order of its fields:
/// append new fields at the end, never reorder them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataState {
    /// Set once, by the first `InitCluster`.
    cluster_id: Option<String>,
    brokers: BTreeMap<u64, BrokerState>,
    topics: BTreeMap<String, TopicState>,
    /// Ids of deleted topics, so every node knows which stored partitions to remove (and
    /// never mistakes a partition it has not heard of yet for a deleted one).
    deleted_topics: BTreeSet<[u8; 16]>,
    next_producer_id: i64,
    /// The newest heartbeat time in the log: the clock liveness is judged by.
    clock_ms: u64,
    session_timeout_ms: u64,
    groups: ConsumerGroups,
    /// Bumped whenever the set of live brokers changes, which is what moves groups between
    /// coordinators.
    placement_epoch: u64,
    /// The live brokers of the latest placement epochs (oldest first, the current one last),
    /// so a group write can be checked against every placement since its coordinator loaded
    /// the group.
    placements: VecDeque<(u64, Vec<u64>)>,
    /// Since a new Raft term began and until its leader renews the sessions: the brokers
    /// that were live then, which stay live meanwhile (heartbeats stalled during the election,
    /// and ones stamped before it may still arrive).
    grace: Option<BTreeSet<u64>>,
    /// SCRAM credentials by user and mechanism.
    users: BTreeMap<String, BTreeMap<u8, crate::scram::ScramCredential>>,
    acls: crate::acl::Acls,
    /// Dynamic broker configs: the cluster-wide defaults under `None`, a broker's own under
    /// its id.
    broker_configs: BTreeMap<Option<u64>, BTreeMap<String, String>>,
}

impl Default for MetadataState {
    fn default() -> Self {
        MetadataState {
            cluster_id: None,
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            deleted_topics: BTreeSet::new(),
            next_producer_id: 0,
            clock_ms: 0,
            session_timeout_ms: brokers::DEFAULT_SESSION_TIMEOUT_MS,
            groups: ConsumerGroups::default(),
            placement_epoch: 0,
            placements: VecDeque::new(),
            grace: None,
            users: BTreeMap::new(),
            acls: crate::acl::Acls::default(),
            broker_configs: BTreeMap::new(),
        }
    }
}

impl MetadataState {
    /// Apply one command. On `Err` the state is unchanged.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> CommandResult {
        use MetadataCommand as C;
        match cmd {
            C::InitCluster {
                cluster_id,
                session_timeout_ms,
            } => self.apply_init_cluster(cluster_id, *session_timeout_ms),
            C::RegisterBroker {
                id,
                host,
                port,
                endpoints,
                rack,
                epoch,
                at_ms,
            } => self.apply_register_broker(*id, host, *port, endpoints, rack, *epoch, *at_ms),
            C::BrokerHeartbeat { id, at_ms } => self.apply_broker_heartbeat(*id, *at_ms),
            C::RenewSessions { at_ms } => self.apply_renew_sessions(*at_ms),
            C::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
                assignment,
            } => self.apply_create_topic(
                name,
                *id,
                *partitions,
                *replication_factor,
                configs,
                assignment,
            ),
            C::DeleteTopic { name } => self.apply_delete_topic(name),
            C::CreatePartitions {
                name,
                count,
                assignment,
            } => self.apply_create_partitions(name, *count, assignment),
            C::AllocateProducerIds { count } => self.apply_allocate_producer_ids(*count),
            C::AlterPartition {
                topic_id,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.apply_alter_partition(
                topic_id,
                *partition,
                *leader,
                *leader_epoch,
                *partition_epoch,
                isr,
            ),
            C::ElectPreferredLeaders { partitions } => {
                self.apply_elect(partitions, |p, live| p.elect_preferred(&live))
            }
            C::AlterTopicConfigs {
                name,
                set,
                delete,
                replace,
            } => self.apply_alter_topic_configs(name, set, delete, *replace),
            C::AlterBrokerConfigs {
                broker,
                set,
                delete,
            } => self.apply_alter_broker_configs(*broker, set, delete),
            C::ElectUncleanLeaders { partitions } => {
                self.apply_elect(partitions, |p, live| p.elect_unclean(&live))
            }
            C::ReassignPartitions { moves } => self.apply_reassign_partitions(moves),
            C::StoreGroup {
                coordinator,
                since,
                group,
                record,
            } => self.apply_store_group(*coordinator, *since, group, record),
            C::CommitOffsets {
                coordinator,
                at_ms,
                commits,
            } => self.apply_commit_offsets(*coordinator, *at_ms, commits),
            C::DeleteGroup {
                coordinator,
                since,
                group,
            } => self.apply_delete_group(*coordinator, *since, group),
            C::DeleteOffsets {
                coordinator,
                since,
                group,
                partitions,
            } => self.apply_delete_offsets(*coordinator, *since, group, partitions),
            C::ExpireOffsets {
                at_ms,
                retention_ms,
            } => self.apply_expire_offsets(*at_ms, *retention_ms),
            C::UpsertScramCredential {
                user,
                mechanism,
                credential,
            } => self.apply_upsert_scram(user, *mechanism, credential),
            C::DeleteScramCredential { user, mechanism } => {
                self.apply_delete_scram(user, *mechanism)
            }
            C::CreateAcls { bindings } => self.apply_create_acls(bindings),
            C::DeleteAcls { filters } => self.apply_delete_acls(filters),
        }
    }
}

/// A rejection as the result of a command.
fn reject(code: i16, message: impl Into<String>) -> CommandResult {
    Err(Rejection::new(code, message))
}

#[cfg(test)]
mod tests {
    use super::testkit::*;
    use super::*;

    #[test]
    fn state_round_trips_through_bincode() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create("t", 1, 5)).unwrap();
        s.apply(&MetadataCommand::AllocateProducerIds { count: 7 })
            .unwrap();
        let bytes = bincode::serialize(&s).unwrap();
        let back: MetadataState = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, s);
    }
}
