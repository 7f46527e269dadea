//! The node's read-only image of the cluster metadata: brokers, topics with their settings in
//! force, and each partition's replicas, leader and in-sync set, rebuilt from the local copy of
//! the Raft state machine after each applied entry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use brook_raft::MetadataState;
use uuid::Uuid;

use crate::config::topic::TopicConfig;
use crate::config::{Source, Values};

/// A topic as the metadata knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    /// Stable id: a re-created topic gets a new one, so it never sees the old data.
    pub id: Uuid,
    pub partitions: i32,
    /// Only the configs set on the topic; the rest come from broker defaults.
    pub configs: BTreeMap<String, String>,
    /// The settings in force, resolved once per metadata change rather than per request.
    pub config: TopicConfig,
    /// Per partition: leader, replicas and in-sync set.
    pub owners: Vec<PartitionMeta>,
}

/// One partition's replication state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    /// The leader; -1 while the partition has none.
    pub node: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The replica set, preferred leader first.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// A move in progress: replicas joining and leaving (both are in `replicas` meanwhile).
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

impl TopicMeta {
    pub fn owner(&self, partition: i32) -> Option<&PartitionMeta> {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.owners.get(p))
    }

    /// The replication factor (of the first partition; they all share it unless assigned by
    /// hand).
    pub fn replication_factor(&self) -> usize {
        self.owners.first().map_or(1, |p| p.replicas.len())
    }
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMeta {
    pub id: i32,
    /// Where other nodes reach it (its inter-broker listener).
    pub host: String,
    pub port: i32,
    /// Every listener's advertised address.
    pub endpoints: Vec<brook_raft::Endpoint>,
    pub rack: Option<String>,
    /// Heartbeating within the session timeout.
    pub live: bool,
}

impl BrokerMeta {
    /// Where a client that connected through `listener` reaches this broker; `None` if the
    /// broker has no such listener. A registration without endpoints has one address.
    pub fn address(&self, listener: &str) -> Option<(&str, i32)> {
        if self.endpoints.is_empty() {
            return Some((&self.host, self.port));
        }
        self.endpoints
            .iter()
            .find(|e| e.listener == listener)
            .map(|e| (e.host.as_str(), i32::from(e.port)))
    }
}

/// A read-only snapshot of the metadata.
#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    topics: BTreeMap<String, Arc<TopicMeta>>,
    brokers: BTreeMap<i32, BrokerMeta>,
    cluster_id: Option<String>,
    /// Ids of deleted topics, whose data every node removes.
    deleted: BTreeSet<Uuid>,
    session_timeout_ms: u64,
    /// The broker settings in force on this node: static ones under the dynamic cluster-wide
    /// defaults under this broker's own dynamic configs.
    defaults: Arc<Values>,
    /// The dynamic broker configs as stored: cluster-wide under `None`, per broker by id.
    dynamic: BTreeMap<Option<u64>, BTreeMap<String, String>>,
}

impl MetadataImage {
    pub(super) fn from_state(state: &MetadataState, statics: &Arc<Values>, me: u64) -> Self {
        let dynamic = state.broker_configs().clone();
        let in_force = in_force(statics, &dynamic, me);
        let defaults = &*in_force;
        let topics = state
            .topics()
            .values()
            .map(|t| {
                let owners = t
                    .partitions
                    .iter()
                    .map(|p| PartitionMeta {
                        node: p.leader.map_or(-1, node_id),
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        replicas: p.replicas.iter().copied().map(node_id).collect(),
                        isr: p.isr.iter().copied().map(node_id).collect(),
                        adding: p.adding.iter().copied().map(node_id).collect(),
                        removing: p.removing.iter().copied().map(node_id).collect(),
                    })
                    .collect::<Vec<_>>();
                let meta = TopicMeta {
                    name: t.name.clone(),
                    id: Uuid::from_bytes(t.id),
                    partitions: i32::try_from(owners.len()).unwrap_or(i32::MAX),
                    configs: t.configs.clone(),
                    config: resolve(&t.name, defaults, &t.configs),
                    owners,
                };
                (t.name.clone(), Arc::new(meta))
            })
            .collect();
        let brokers = state
            .brokers()
            .values()
            .map(|b| {
                let broker = BrokerMeta {
                    id: node_id(b.id),
                    host: b.host.clone(),
                    port: i32::from(b.port),
                    endpoints: b.endpoints.clone(),
                    rack: b.rack.clone(),
                    live: state.is_live(b.id),
                };
                (broker.id, broker)
            })
            .collect();
        MetadataImage {
            topics,
            brokers,
            cluster_id: state.cluster_id().map(str::to_owned),
            deleted: state
                .deleted_topics()
                .iter()
                .copied()
                .map(Uuid::from_bytes)
                .collect(),
            session_timeout_ms: state.session_timeout_ms(),
            defaults: Arc::clone(&in_force),
            dynamic,
        }
    }

    /// The broker settings in force on this node, dynamic ones included: what topic settings
    /// default to and what DescribeConfigs reports.
    pub fn defaults(&self) -> &Values {
        &self.defaults
    }

    /// The dynamic configs of broker `id`, or the cluster-wide ones for `None`.
    pub fn dynamic_configs(&self, broker: Option<u64>) -> Option<&BTreeMap<String, String>> {
        self.dynamic.get(&broker)
    }

    /// How long a broker may go without a heartbeat before it is down.
    pub fn session_timeout_ms(&self) -> u64 {
        self.session_timeout_ms
    }

    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<&Arc<TopicMeta>> {
        self.topics.values().find(|t| t.id == id)
    }

    pub fn topics(&self) -> impl Iterator<Item = &Arc<TopicMeta>> {
        self.topics.values()
    }

    /// Every registered broker, live or not, by id.
    pub fn brokers(&self) -> impl Iterator<Item = &BrokerMeta> {
        self.brokers.values()
    }

    pub fn broker(&self, id: i32) -> Option<&BrokerMeta> {
        self.brokers.get(&id)
    }

    pub fn is_live(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| b.live)
    }

    /// The cluster id, once the cluster was initialized.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// Whether the topic with this id was deleted (its data may be removed everywhere).
    pub fn is_deleted(&self, id: Uuid) -> bool {
        self.deleted.contains(&id)
    }

    /// Whether both images hold the same topics (partition owners included) and deletions,
    /// i.e. whether partition actors need reconciling between them.
    pub fn same_topics(&self, other: &MetadataImage) -> bool {
        self.topics == other.topics && self.deleted == other.deleted
    }

    /// The live broker that coordinates `group`.
    pub fn group_coordinator(&self, group: &str) -> Option<i32> {
        let live = self
            .brokers()
            .filter(|b| b.live)
            .filter_map(|b| u64::try_from(b.id).ok());
        brook_raft::consumer_groups::coordinator_of(group, live)
            .and_then(|id| i32::try_from(id).ok())
    }
}

/// A stored topic's settings. Configs were validated when they were stored, so a failure means
/// the broker defaults changed since; the topic then gets the broker defaults, and the log says
/// so.
/// The static settings under the dynamic cluster-wide defaults under broker `me`'s own; the
/// static ones themselves (no copy) while there are no dynamic ones.
fn in_force(
    statics: &Arc<Values>,
    dynamic: &BTreeMap<Option<u64>, BTreeMap<String, String>>,
    me: u64,
) -> Arc<Values> {
    let layers = [
        (None, Source::DynamicDefault),
        (Some(me), Source::DynamicBroker),
    ];
    if layers.iter().all(|(key, _)| !dynamic.contains_key(key)) {
        return Arc::clone(statics);
    }
    let mut values = (**statics).clone();
    for (key, source) in layers {
        for (name, value) in dynamic.get(&key).into_iter().flatten() {
            // Only names this node knows: a newer node's setting is not this one's business.
            if let Some(slot) = values.get_mut(name) {
                *slot = (value.clone(), source);
            }
        }
    }
    Arc::new(values)
}

fn resolve(name: &str, defaults: &Values, configs: &BTreeMap<String, String>) -> TopicConfig {
    TopicConfig::resolve(defaults, configs).unwrap_or_else(|e| {
        tracing::warn!(topic = %name, error = %e, "stored topic config no longer valid; using broker defaults");
        TopicConfig::resolve(defaults, &BTreeMap::new()).unwrap_or_default()
    })
}

/// Raft node ids are broker ids, which Kafka puts on the wire as `i32`.
pub(crate) fn node_id(id: u64) -> i32 {
    i32::try_from(id).unwrap_or(-1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use brook_raft::MetadataCommand;

    fn defaults() -> Values {
        crate::config::BrokerConfig::load(None, Vec::new(), &[])
            .unwrap()
            .values
    }

    #[test]
    fn image_reports_owners_epochs_and_liveness() {
        let mut state = MetadataState::default();
        let init = MetadataCommand::InitCluster {
            cluster_id: "c1".into(),
            session_timeout_ms: 1_000,
        };
        state.apply(&init).unwrap();
        for id in [1, 2] {
            let cmd = MetadataCommand::RegisterBroker {
                id,
                host: "127.0.0.1".into(),
                port: 9000 + id as u16,
                endpoints: Vec::new(),
                rack: None,
                epoch: 1,
                at_ms: 0,
            };
            state.apply(&cmd).unwrap();
        }
        state
            .apply(&MetadataCommand::BrokerHeartbeat {
                id: 1,
                at_ms: 5_000,
            })
            .unwrap();
        state
            .apply(&MetadataCommand::CreateTopic {
                name: "t".into(),
                id: [7; 16],
                partitions: 3,
                replication_factor: 1,
                configs: BTreeMap::new(),
                assignment: vec![],
            })
            .unwrap();
        let image = MetadataImage::from_state(&state, &Arc::new(defaults()), 1);
        assert_eq!(image.cluster_id(), Some("c1"));
        assert!(image.is_live(1));
        assert!(!image.is_live(2), "broker 2 missed its heartbeats");
        let t = image.topic("t").unwrap();
        assert_eq!((t.partitions, t.id), (3, Uuid::from_bytes([7; 16])));
        // Only broker 1 is live, so it owns every partition.
        assert!((0..3).all(|p| t.owner(p).map(|o| o.node) == Some(1)));
        assert_eq!(t.owner(3), None);
        assert_eq!(t.owner(-1), None);
    }
}
