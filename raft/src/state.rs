//! The cluster metadata image: a plain, deterministic structure that every node rebuilds from
//! the same Raft log, and that Metadata answers are read from.
//!
//! `apply` checks a command completely before changing anything, so a rejected command leaves
//! the state exactly as it was. Nothing here reads a clock or a random source: broker liveness
//! is judged against the newest heartbeat time seen in the log, not against the local clock.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::command::{
    codes, CommandOutput, CommandResult, MetadataCommand, Reassignment, Rejection,
};
use crate::consumer_groups::{self, ConsumerGroups, GroupCommit, GroupRecord};
use crate::replicas::{self, Election, PartitionState};

/// Kafka's `broker.session.timeout.ms` default: a broker whose last heartbeat is older than
/// this (relative to the newest heartbeat in the log) is not live.
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 9_000;
/// Largest partition count of one topic.
pub const MAX_PARTITIONS: u32 = 100_000;
/// Largest block of producer ids one command may reserve.
pub const MAX_PRODUCER_ID_BLOCK: u32 = 1_000_000;
/// Placement epochs remembered; a coordinator that loaded a group before the oldest of them
/// must reload it before it may write again.
const PLACEMENT_HISTORY: usize = 64;
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_LEN: usize = 249;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerState {
    pub id: u64,
    pub host: String,
    pub port: u16,
    pub rack: Option<String>,
    pub epoch: i64,
    /// Time of the newest heartbeat (or of the registration), in the log's clock.
    pub last_heartbeat_ms: u64,
}

/// A topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    pub name: String,
    /// Stable id (a UUID): a re-created topic gets a new one.
    pub id: [u8; 16],
    pub configs: BTreeMap<String, String>,
    /// Indexed by partition number.
    pub partitions: Vec<PartitionState>,
}

impl TopicState {
    /// `unclean.leader.election.enable` set on the topic (the broker default is false).
    pub fn unclean_election(&self) -> bool {
        self.configs
            .get("unclean.leader.election.enable")
            .is_some_and(|v| v == "true")
    }
}

/// The whole metadata image.
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
    /// A new Raft term began: the next heartbeat renews the session of every broker that was
    /// live, since none could heartbeat while the group had no leader.
    renew_sessions: bool,
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
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            groups: ConsumerGroups::default(),
            placement_epoch: 0,
            placements: VecDeque::new(),
            renew_sessions: false,
        }
    }
}

impl MetadataState {
    /// The cluster id, once the cluster was initialized.
    pub fn cluster_id(&self) -> Option<&str> {
        self.cluster_id.as_deref()
    }

    /// How long a broker may go without a heartbeat before it is considered down.
    pub fn session_timeout_ms(&self) -> u64 {
        self.session_timeout_ms
    }

    /// All registered brokers, by id.
    pub fn brokers(&self) -> &BTreeMap<u64, BrokerState> {
        &self.brokers
    }

    pub fn broker(&self, id: u64) -> Option<&BrokerState> {
        self.brokers.get(&id)
    }

    /// Whether `id` is registered and heartbeated within the session timeout of the newest
    /// heartbeat in the log.
    pub fn is_live(&self, id: u64) -> bool {
        self.brokers.get(&id).is_some_and(|b| self.live(b))
    }

    /// Live brokers in id order.
    pub fn live_brokers(&self) -> impl Iterator<Item = &BrokerState> {
        self.brokers.values().filter(|b| self.live(b))
    }

    /// All topics, by name.
    pub fn topics(&self) -> &BTreeMap<String, TopicState> {
        &self.topics
    }

    pub fn topic(&self, name: &str) -> Option<&TopicState> {
        self.topics.get(name)
    }

    /// Ids of every deleted topic.
    pub fn deleted_topics(&self) -> &BTreeSet<[u8; 16]> {
        &self.deleted_topics
    }

    /// Whether the topic with this id existed and was deleted.
    pub fn is_deleted(&self, id: &[u8; 16]) -> bool {
        self.deleted_topics.contains(id)
    }

    pub fn topic_by_id(&self, id: &[u8; 16]) -> Option<&TopicState> {
        self.topics.values().find(|t| &t.id == id)
    }

    pub fn partition(&self, topic: &str, partition: u32) -> Option<&PartitionState> {
        self.topics
            .get(topic)
            .and_then(|t| t.partitions.get(partition as usize))
    }

    /// The first producer id not yet handed out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Consumer groups and their committed offsets.
    pub fn groups(&self) -> &ConsumerGroups {
        &self.groups
    }

    /// The live broker that coordinates `group`, if any broker is live.
    pub fn group_coordinator(&self, group: &str) -> Option<u64> {
        consumer_groups::coordinator_of(group, self.live_brokers().map(|b| b.id))
    }

    /// The current placement epoch (see [`MetadataState::coordinates_since`]).
    pub fn placement_epoch(&self) -> u64 {
        self.placement_epoch
    }

    /// Whether `broker` has coordinated `group` without a break since placement epoch
    /// `since`: it coordinates it now and under every placement from `since` on. A coordinator
    /// that was paused or cut off while the group went elsewhere (and perhaps came back) fails
    /// this even if it never saw the move, so its writes are refused and it reloads the group.
    pub fn coordinates_since(&self, group: &str, broker: u64, since: u64) -> bool {
        if self.group_coordinator(group) != Some(broker) || since > self.placement_epoch {
            return false;
        }
        let remembered = self
            .placements
            .front()
            .map_or(self.placement_epoch + 1, |(epoch, _)| *epoch);
        if since < remembered {
            return false;
        }
        self.placements
            .iter()
            .filter(|(epoch, _)| *epoch >= since)
            .all(|(_, live)| {
                consumer_groups::coordinator_of(group, live.iter().copied()) == Some(broker)
            })
    }

    /// Record a new placement epoch if the live brokers changed; returns whether they did.
    fn note_placement(&mut self) -> bool {
        let live: Vec<u64> = self.live_brokers().map(|b| b.id).collect();
        if self.placements.back().map(|(_, l)| l) == Some(&live) {
            return false;
        }
        self.placement_epoch += 1;
        self.placements.push_back((self.placement_epoch, live));
        while self.placements.len() > PLACEMENT_HISTORY {
            self.placements.pop_front();
        }
        true
    }

    fn live(&self, b: &BrokerState) -> bool {
        self.clock_ms.saturating_sub(b.last_heartbeat_ms) <= self.session_timeout_ms
    }

    /// A new leader term began (its first, blank, entry was applied). Heartbeats stall while
    /// the group elects a leader; without a grace period the first heartbeat after a long
    /// election would declare every other broker down (KRaft's controller likewise restarts
    /// the session timers when it takes over).
    pub fn new_term(&mut self) {
        self.renew_sessions = true;
    }

    /// Gives every broker that was live before `at_ms` a fresh session from `at_ms`.
    fn renew_live_sessions(&mut self, at_ms: u64) {
        let live: Vec<u64> = self.live_brokers().map(|b| b.id).collect();
        for id in live {
            if let Some(b) = self.brokers.get_mut(&id) {
                b.last_heartbeat_ms = b.last_heartbeat_ms.max(at_ms);
            }
        }
        self.renew_sessions = false;
    }

    /// Apply one command. On `Err` the state is unchanged.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> CommandResult {
        let restarted = match cmd {
            MetadataCommand::RegisterBroker { id, epoch, .. } => {
                self.brokers.get(id).is_some_and(|b| b.epoch < *epoch)
            }
            _ => false,
        };
        let result = self.apply_command(cmd);
        if result.is_ok()
            && matches!(
                cmd,
                MetadataCommand::InitCluster { .. }
                    | MetadataCommand::RegisterBroker { .. }
                    | MetadataCommand::BrokerHeartbeat { .. }
            )
        {
            if restarted {
                if let MetadataCommand::RegisterBroker { id, .. } = cmd {
                    self.elect_all(|_| Election::Restarted(*id));
                }
            }
            if self.note_placement() {
                self.elect_all(|topic| Election::Liveness {
                    unclean: topic.unclean_election(),
                });
            }
        }
        result
    }

    /// Runs an election on every partition (the controller's reaction to a broker coming,
    /// going or restarting).
    fn elect_all(&mut self, election: impl Fn(&TopicState) -> Election) {
        let live: BTreeSet<u64> = self.live_brokers().map(|b| b.id).collect();
        let is_live = |id: u64| live.contains(&id);
        for topic in self.topics.values_mut() {
            let election = election(topic);
            for p in &mut topic.partitions {
                p.elect(election, &is_live);
            }
        }
    }

    fn apply_command(&mut self, cmd: &MetadataCommand) -> CommandResult {
        match cmd {
            MetadataCommand::InitCluster {
                cluster_id,
                session_timeout_ms,
            } => self.init_cluster(cluster_id, *session_timeout_ms),
            MetadataCommand::RegisterBroker {
                id,
                host,
                port,
                rack,
                epoch,
                at_ms,
            } => self.register_broker(*id, host, *port, rack, *epoch, *at_ms),
            MetadataCommand::BrokerHeartbeat { id, at_ms } => self.heartbeat(*id, *at_ms),
            MetadataCommand::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
                assignment,
            } => self.create_topic(
                name,
                *id,
                *partitions,
                *replication_factor,
                configs,
                assignment,
            ),
            MetadataCommand::DeleteTopic { name } => self.delete_topic(name),
            MetadataCommand::CreatePartitions {
                name,
                count,
                assignment,
            } => self.create_partitions(name, *count, assignment),
            MetadataCommand::AllocateProducerIds { count } => self.allocate_producer_ids(*count),
            MetadataCommand::AlterPartition {
                topic_id,
                partition,
                leader,
                leader_epoch,
                partition_epoch,
                isr,
            } => self.alter_partition(
                topic_id,
                *partition,
                *leader,
                *leader_epoch,
                *partition_epoch,
                isr,
            ),
            MetadataCommand::ElectPreferredLeaders { partitions } => {
                Ok(self.elect_preferred(partitions))
            }
            MetadataCommand::ReassignPartitions { moves } => Ok(self.reassign(moves)),
            MetadataCommand::StoreGroup {
                coordinator,
                since,
                group,
                record,
            } => self.store_group(*coordinator, *since, group, record),
            MetadataCommand::CommitOffsets {
                coordinator,
                at_ms,
                commits,
            } => Ok(self.commit_offsets(*coordinator, *at_ms, commits)),
            MetadataCommand::DeleteGroup {
                coordinator,
                since,
                group,
            } => self.delete_group(*coordinator, *since, group),
            MetadataCommand::DeleteOffsets {
                coordinator,
                since,
                group,
                partitions,
            } => self.delete_offsets(*coordinator, *since, group, partitions),
            MetadataCommand::ExpireOffsets {
                at_ms,
                retention_ms,
            } => {
                self.groups.expire(*at_ms, *retention_ms);
                Ok(CommandOutput::Done)
            }
        }
    }

    fn init_cluster(&mut self, cluster_id: &str, session_timeout_ms: u64) -> CommandResult {
        if self.cluster_id.is_some() {
            return Ok(CommandOutput::Done);
        }
        if cluster_id.is_empty() || session_timeout_ms == 0 {
            return reject(
                codes::INVALID_REQUEST,
                "a cluster needs an id and a positive session timeout",
            );
        }
        self.cluster_id = Some(cluster_id.to_owned());
        self.session_timeout_ms = session_timeout_ms;
        Ok(CommandOutput::Done)
    }

    fn register_broker(
        &mut self,
        id: u64,
        host: &str,
        port: u16,
        rack: &Option<String>,
        epoch: i64,
        at_ms: u64,
    ) -> CommandResult {
        if host.is_empty() || port == 0 {
            return reject(codes::INVALID_REQUEST, "broker needs a host and a port");
        }
        if let Some(old) = self.brokers.get(&id) {
            if epoch < old.epoch {
                return reject(
                    codes::STALE_BROKER_EPOCH,
                    format!("broker {id}: epoch {epoch} is older than {}", old.epoch),
                );
            }
        }
        if self.renew_sessions {
            self.renew_live_sessions(at_ms);
        }
        // A (re)registration counts as a heartbeat. Liveness is judged against the newest
        // heartbeat time in the log, so without this a broker registering before any
        // heartbeat (or after a long outage) would look down until its first heartbeat.
        let at = self.clock_ms.max(at_ms);
        self.clock_ms = at;
        self.brokers.insert(
            id,
            BrokerState {
                id,
                host: host.to_owned(),
                port,
                rack: rack.clone(),
                epoch,
                last_heartbeat_ms: at,
            },
        );
        Ok(CommandOutput::Done)
    }

    fn heartbeat(&mut self, id: u64, at_ms: u64) -> CommandResult {
        if !self.brokers.contains_key(&id) {
            return reject(
                codes::BROKER_ID_NOT_REGISTERED,
                format!("broker {id} is not registered"),
            );
        }
        if self.renew_sessions {
            self.renew_live_sessions(at_ms);
        }
        let Some(broker) = self.brokers.get_mut(&id) else {
            return reject(
                codes::BROKER_ID_NOT_REGISTERED,
                format!("broker {id} is not registered"),
            );
        };
        broker.last_heartbeat_ms = broker.last_heartbeat_ms.max(at_ms);
        self.clock_ms = self.clock_ms.max(at_ms);
        Ok(CommandOutput::Done)
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: [u8; 16],
        partitions: u32,
        replication_factor: u32,
        configs: &BTreeMap<String, String>,
        assignment: &[Vec<u64>],
    ) -> CommandResult {
        validate_topic_name(name)?;
        if self.topics.contains_key(name) {
            return reject(
                codes::TOPIC_ALREADY_EXISTS,
                format!("topic {name} already exists"),
            );
        }
        if id == [0; 16] {
            return reject(codes::INVALID_REQUEST, "topic id must not be zero");
        }
        if self.topic_by_id(&id).is_some() || self.deleted_topics.contains(&id) {
            return reject(
                codes::TOPIC_ALREADY_EXISTS,
                format!("topic id of {name} is already in use"),
            );
        }
        if partitions == 0 || partitions > MAX_PARTITIONS {
            return reject(
                codes::INVALID_PARTITIONS,
                format!("partition count {partitions} must be in 1..={MAX_PARTITIONS}"),
            );
        }
        let replicas = self.replica_sets(&id, &[], partitions, replication_factor, assignment)?;
        self.topics.insert(
            name.to_owned(),
            TopicState {
                name: name.to_owned(),
                id,
                configs: configs.clone(),
                partitions: replicas.iter().cloned().map(PartitionState::new).collect(),
            },
        );
        Ok(CommandOutput::TopicCreated { id, replicas })
    }

    fn delete_topic(&mut self, name: &str) -> CommandResult {
        match self.topics.remove(name) {
            Some(topic) => {
                self.deleted_topics.insert(topic.id);
                Ok(CommandOutput::Done)
            }
            None => unknown_topic(name),
        }
    }

    fn create_partitions(
        &mut self,
        name: &str,
        count: u32,
        assignment: &[Vec<u64>],
    ) -> CommandResult {
        let Some(topic) = self.topics.get(name) else {
            return unknown_topic(name);
        };
        let current = topic.partitions.len() as u32;
        if count <= current || count > MAX_PARTITIONS {
            return reject(
                codes::INVALID_PARTITIONS,
                format!(
                    "topic {name} has {current} partitions; the new count {count} must be larger \
                     and at most {MAX_PARTITIONS}"
                ),
            );
        }
        let leaders: Vec<u64> = topic.partitions.iter().map(|p| p.replicas[0]).collect();
        let rf = topic.partitions.first().map_or(1, |p| p.replicas.len()) as u32;
        let replicas = self.replica_sets(&topic.id, &leaders, count - current, rf, assignment)?;
        if let Some(topic) = self.topics.get_mut(name) {
            topic
                .partitions
                .extend(replicas.iter().cloned().map(PartitionState::new));
        }
        Ok(CommandOutput::PartitionsCreated {
            first: current,
            replicas,
        })
    }

    fn allocate_producer_ids(&mut self, count: u32) -> CommandResult {
        if count == 0 || count > MAX_PRODUCER_ID_BLOCK {
            return reject(
                codes::INVALID_REQUEST,
                format!("producer id block size {count} must be in 1..={MAX_PRODUCER_ID_BLOCK}"),
            );
        }
        let start = self.next_producer_id;
        let Some(next) = start.checked_add(i64::from(count)) else {
            return reject(codes::INVALID_REQUEST, "producer ids exhausted");
        };
        self.next_producer_id = next;
        Ok(CommandOutput::ProducerIds { start, count })
    }

    fn alter_partition(
        &mut self,
        topic_id: &[u8; 16],
        partition: u32,
        leader: u64,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: &[u64],
    ) -> CommandResult {
        let live: BTreeSet<u64> = self.live_brokers().map(|b| b.id).collect();
        let Some(p) = self
            .topics
            .values_mut()
            .find(|t| &t.id == topic_id)
            .and_then(|t| t.partitions.get_mut(partition as usize))
        else {
            return reject(
                codes::UNKNOWN_TOPIC_OR_PARTITION,
                format!("partition {partition} of the topic does not exist"),
            );
        };
        let partition_epoch = p.alter_isr(leader, leader_epoch, partition_epoch, isr, &|id| {
            live.contains(&id)
        })?;
        Ok(CommandOutput::PartitionAltered { partition_epoch })
    }

    fn elect_preferred(&mut self, partitions: &[(String, u32)]) -> CommandOutput {
        let live: BTreeSet<u64> = self.live_brokers().map(|b| b.id).collect();
        let codes = partitions
            .iter()
            .map(|(topic, partition)| {
                match self
                    .topics
                    .get_mut(topic)
                    .and_then(|t| t.partitions.get_mut(*partition as usize))
                {
                    Some(p) => p.elect_preferred(&|id| live.contains(&id)),
                    None => codes::UNKNOWN_TOPIC_OR_PARTITION,
                }
            })
            .collect();
        CommandOutput::PartitionResults { codes }
    }

    fn reassign(&mut self, moves: &[Reassignment]) -> CommandOutput {
        let live: BTreeSet<u64> = self.live_brokers().map(|b| b.id).collect();
        let is_live = |id: u64| live.contains(&id);
        let codes = moves
            .iter()
            .map(|m| {
                if let Some(target) = &m.replicas {
                    if self.check_replicas(target).is_err() {
                        return codes::INVALID_REPLICA_ASSIGNMENT;
                    }
                }
                let Some(p) = self
                    .topics
                    .get_mut(&m.topic)
                    .and_then(|t| t.partitions.get_mut(m.partition as usize))
                else {
                    return codes::UNKNOWN_TOPIC_OR_PARTITION;
                };
                match &m.replicas {
                    Some(target) => {
                        p.reassign(target, &is_live);
                        codes::NONE
                    }
                    None if p.cancel_reassignment(&is_live) => codes::NONE,
                    None => codes::NO_REASSIGNMENT_IN_PROGRESS,
                }
            })
            .collect();
        CommandOutput::PartitionResults { codes }
    }

    /// A replica set must be non-empty, name each broker once, and only registered ones.
    fn check_replicas(&self, replicas: &[u64]) -> Result<(), Rejection> {
        let mut distinct = replicas.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        if replicas.is_empty() || distinct.len() != replicas.len() {
            return Err(Rejection::new(
                codes::INVALID_REPLICA_ASSIGNMENT,
                format!("replica set {replicas:?} is empty or repeats a broker"),
            ));
        }
        if let Some(unknown) = replicas.iter().find(|b| !self.brokers.contains_key(b)) {
            return Err(Rejection::new(
                codes::INVALID_REPLICA_ASSIGNMENT,
                format!("broker {unknown} is not registered"),
            ));
        }
        Ok(())
    }

    /// The replica sets of `count` new partitions: the given assignment, checked, or placed.
    fn replica_sets(
        &self,
        topic_id: &[u8; 16],
        existing_leaders: &[u64],
        count: u32,
        replication_factor: u32,
        assignment: &[Vec<u64>],
    ) -> Result<Vec<Vec<u64>>, Rejection> {
        if assignment.is_empty() {
            return self.place(topic_id, existing_leaders, count, replication_factor);
        }
        if assignment.len() != count as usize {
            return Err(Rejection::new(
                codes::INVALID_REPLICA_ASSIGNMENT,
                format!("{} partitions assigned, {count} expected", assignment.len()),
            ));
        }
        for replicas in assignment {
            self.check_replicas(replicas)?;
        }
        Ok(assignment.to_vec())
    }

    /// Choose replica sets for `count` new partitions of the topic with id `topic_id`, whose
    /// existing partitions have the preferred leaders `existing`.
    ///
    /// Live brokers are ordered so that neighbours are on different racks where racks are
    /// known, and rotated to start at an index derived from the topic id, so different topics
    /// start on different brokers. Each new partition's leader is the live broker that leads
    /// the fewest partitions of this topic, ties broken by that order (continuing after the
    /// previous pick); its followers are the next brokers in the order. For a new topic this
    /// is plain round-robin from the start index: 12 partitions over 3 brokers lead 4/4/4.
    fn place(
        &self,
        topic_id: &[u8; 16],
        existing: &[u64],
        count: u32,
        replication_factor: u32,
    ) -> Result<Vec<Vec<u64>>, Rejection> {
        let brokers: Vec<(u64, Option<String>)> = self
            .live_brokers()
            .map(|b| (b.id, b.rack.clone()))
            .collect();
        let live = replicas::rack_alternated(&brokers);
        let rf = replication_factor as usize;
        if live.is_empty() || rf == 0 || rf > live.len() {
            return Err(Rejection::new(
                codes::INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {replication_factor} needs as many live brokers; {} are live",
                    live.len()
                ),
            ));
        }
        let n = live.len();
        let start = (u128::from_be_bytes(*topic_id) % n as u128) as usize;
        let mut load: Vec<usize> = live
            .iter()
            .map(|id| existing.iter().filter(|o| *o == id).count())
            .collect();
        let mut sets = Vec::with_capacity(count as usize);
        let mut next = (start + existing.len()) % n;
        for _ in 0..count {
            let mut best = next;
            for step in 0..n {
                let i = (next + step) % n;
                if load[i] < load[best] {
                    best = i;
                }
            }
            load[best] += 1;
            sets.push(replicas::replica_set(&live, best, rf));
            next = (best + 1) % n;
        }
        Ok(sets)
    }
}

impl MetadataState {
    fn not_coordinator(coordinator: u64, group: &str) -> Rejection {
        Rejection::new(
            codes::NOT_COORDINATOR,
            format!("broker {coordinator} no longer coordinates group {group}"),
        )
    }

    fn store_group(
        &mut self,
        coordinator: u64,
        since: u64,
        group: &str,
        record: &GroupRecord,
    ) -> CommandResult {
        if !self.coordinates_since(group, coordinator, since) {
            return Err(Self::not_coordinator(coordinator, group));
        }
        match self.groups.store(group, record) {
            Ok(()) => Ok(CommandOutput::Done),
            Err(code) => reject(
                code,
                format!("group {group}: generation {} is stale", record.generation),
            ),
        }
    }

    fn commit_offsets(
        &mut self,
        coordinator: u64,
        at_ms: u64,
        commits: &[GroupCommit],
    ) -> CommandOutput {
        let codes = commits
            .iter()
            .map(|c| {
                if self.coordinates_since(&c.group, coordinator, c.since) {
                    self.groups.commit(c, at_ms);
                    codes::NONE
                } else {
                    codes::NOT_COORDINATOR
                }
            })
            .collect();
        CommandOutput::GroupResults { codes }
    }

    fn delete_group(&mut self, coordinator: u64, since: u64, group: &str) -> CommandResult {
        if !self.coordinates_since(group, coordinator, since) {
            return Err(Self::not_coordinator(coordinator, group));
        }
        match self.groups.delete(group) {
            codes::NONE => Ok(CommandOutput::Done),
            code => reject(code, format!("group {group} cannot be deleted")),
        }
    }

    fn delete_offsets(
        &mut self,
        coordinator: u64,
        since: u64,
        group: &str,
        partitions: &[(String, i32)],
    ) -> CommandResult {
        if !self.coordinates_since(group, coordinator, since) {
            return Err(Self::not_coordinator(coordinator, group));
        }
        match self.groups.delete_offsets(group, partitions) {
            codes::NONE => Ok(CommandOutput::Done),
            code => reject(code, format!("group {group} does not exist")),
        }
    }
}

fn reject(code: i16, message: impl Into<String>) -> CommandResult {
    Err(Rejection::new(code, message))
}

fn unknown_topic(name: &str) -> CommandResult {
    reject(
        codes::UNKNOWN_TOPIC_OR_PARTITION,
        format!("topic {name} does not exist"),
    )
}

/// Kafka's rule: 1 to 249 characters of `[a-zA-Z0-9._-]`, and not `.` or `..`.
fn validate_topic_name(name: &str) -> Result<(), Rejection> {
    let legal = !name.is_empty()
        && name.len() <= MAX_TOPIC_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-');
    if legal {
        Ok(())
    } else {
        Err(Rejection::new(
            codes::INVALID_TOPIC_EXCEPTION,
            format!("illegal topic name {name:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(id: u64) -> MetadataCommand {
        MetadataCommand::RegisterBroker {
            id,
            host: format!("host{id}"),
            port: 9092,
            rack: None,
            epoch: 1,
            at_ms: 0,
        }
    }

    fn create(name: &str, id: u8, partitions: u32) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            id: [id; 16],
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
            assignment: vec![],
        }
    }

    fn with_brokers(ids: &[u64]) -> MetadataState {
        let mut s = MetadataState::default();
        for &id in ids {
            s.apply(&register(id)).unwrap();
        }
        s
    }

    /// Apply a command that must be rejected with `code`, and check nothing changed.
    fn assert_rejected(s: &mut MetadataState, cmd: MetadataCommand, code: i16) {
        let before = s.clone();
        let err = s.apply(&cmd).unwrap_err();
        assert_eq!(err.code, code, "{cmd:?}: {err}");
        assert_eq!(*s, before, "{cmd:?} changed the state");
    }

    fn owners(s: &MetadataState, topic: &str) -> Vec<u64> {
        s.topic(topic)
            .unwrap()
            .partitions
            .iter()
            .map(|p| p.leader.unwrap())
            .collect()
    }

    fn as_sets(leaders: &[u64]) -> Vec<Vec<u64>> {
        leaders.iter().map(|&l| vec![l]).collect()
    }

    fn count(owners: &[u64], id: u64) -> usize {
        owners.iter().filter(|&&o| o == id).count()
    }

    #[test]
    fn only_the_first_init_cluster_applies() {
        let mut s = MetadataState::default();
        assert_eq!(s.cluster_id(), None);
        assert_rejected(
            &mut s,
            MetadataCommand::InitCluster {
                cluster_id: String::new(),
                session_timeout_ms: 5_000,
            },
            codes::INVALID_REQUEST,
        );
        let init = |id: &str, timeout| MetadataCommand::InitCluster {
            cluster_id: id.into(),
            session_timeout_ms: timeout,
        };
        assert_eq!(s.apply(&init("a", 5_000)), Ok(CommandOutput::Done));
        assert_eq!(s.apply(&init("b", 7_000)), Ok(CommandOutput::Done));
        assert_eq!((s.cluster_id(), s.session_timeout_ms()), (Some("a"), 5_000));
    }

    #[test]
    fn register_broker_and_reregister() {
        let mut s = with_brokers(&[1, 2]);
        assert_eq!(s.brokers().len(), 2);
        assert_eq!(s.broker(1).unwrap().host, "host1");
        // A newer epoch replaces the registration.
        s.apply(&MetadataCommand::RegisterBroker {
            id: 1,
            host: "new".into(),
            port: 9093,
            rack: Some("r1".into()),
            epoch: 2,
            at_ms: 0,
        })
        .unwrap();
        let b = s.broker(1).unwrap();
        assert_eq!((b.host.as_str(), b.port, b.epoch), ("new", 9093, 2));
        assert_eq!(b.rack.as_deref(), Some("r1"));
        // The same epoch again is an idempotent retry.
        s.apply(&MetadataCommand::RegisterBroker {
            id: 1,
            host: "new".into(),
            port: 9093,
            rack: Some("r1".into()),
            epoch: 2,
            at_ms: 0,
        })
        .unwrap();
    }

    #[test]
    fn register_broker_rejections() {
        let mut s = with_brokers(&[1]);
        s.apply(&MetadataCommand::RegisterBroker {
            id: 1,
            host: "h".into(),
            port: 1,
            rack: None,
            epoch: 5,
            at_ms: 0,
        })
        .unwrap();
        let stale = MetadataCommand::RegisterBroker {
            id: 1,
            host: "h".into(),
            port: 1,
            rack: None,
            epoch: 4,
            at_ms: 0,
        };
        assert_rejected(&mut s, stale, codes::STALE_BROKER_EPOCH);
        let no_host = MetadataCommand::RegisterBroker {
            id: 2,
            host: String::new(),
            port: 1,
            rack: None,
            epoch: 0,
            at_ms: 0,
        };
        assert_rejected(&mut s, no_host, codes::INVALID_REQUEST);
        let no_port = MetadataCommand::RegisterBroker {
            id: 2,
            host: "h".into(),
            port: 0,
            rack: None,
            epoch: 0,
            at_ms: 0,
        };
        assert_rejected(&mut s, no_port, codes::INVALID_REQUEST);
    }

    #[test]
    fn heartbeats_decide_liveness() {
        let mut s = with_brokers(&[1, 2, 3]);
        let hb = |id, at_ms| MetadataCommand::BrokerHeartbeat { id, at_ms };
        s.apply(&hb(1, 100_000)).unwrap();
        s.apply(&hb(2, 95_000)).unwrap();
        // Broker 3 never heartbeated: 100 s behind the log's clock.
        assert!(s.is_live(1) && s.is_live(2) && !s.is_live(3));
        let live: Vec<u64> = s.live_brokers().map(|b| b.id).collect();
        assert_eq!(live, vec![1, 2]);
        // A late heartbeat with an older time does not move anything backwards.
        s.apply(&hb(1, 50_000)).unwrap();
        assert_eq!(s.broker(1).unwrap().last_heartbeat_ms, 100_000);
        // Re-registration makes a broker live again.
        s.apply(&MetadataCommand::RegisterBroker {
            id: 3,
            host: "h".into(),
            port: 1,
            rack: None,
            epoch: 2,
            at_ms: 0,
        })
        .unwrap();
        assert!(s.is_live(3));
        assert_rejected(&mut s, hb(9, 1), codes::BROKER_ID_NOT_REGISTERED);
        // A registration is a heartbeat at its own time: live at once, and the clock moves.
        s.apply(&MetadataCommand::RegisterBroker {
            id: 4,
            host: "h".into(),
            port: 1,
            rack: None,
            epoch: 1,
            at_ms: 200_000,
        })
        .unwrap();
        assert!(s.is_live(4) && !s.is_live(1));
    }

    #[test]
    fn create_topic_spreads_evenly() {
        let mut s = with_brokers(&[1, 2, 3]);
        let out = s.apply(&create("t", 7, 12)).unwrap();
        let o = owners(&s, "t");
        assert_eq!(
            out,
            CommandOutput::TopicCreated {
                id: [7; 16],
                replicas: as_sets(&o)
            }
        );
        assert_eq!((count(&o, 1), count(&o, 2), count(&o, 3)), (4, 4, 4));
        // Round-robin: consecutive partitions go to consecutive brokers.
        for w in o.windows(2) {
            assert_ne!(w[0], w[1]);
        }
        let t = s.topic("t").unwrap();
        assert_eq!(t.id, [7; 16]);
        for p in &t.partitions {
            assert_eq!(p.replicas, vec![p.leader.unwrap()]);
            assert_eq!(p.isr, p.replicas);
            assert_eq!(p.leader_epoch, 0);
        }
        assert_eq!(s.topic_by_id(&[7; 16]).unwrap().name, "t");
    }

    #[test]
    fn create_topic_start_depends_on_topic_id() {
        let mut s = with_brokers(&[1, 2, 3]);
        // Ids whose big-endian value is 0, 1 and 2 mod 3 start on brokers 1, 2 and 3.
        let mut firsts = Vec::new();
        for (i, last) in [3u8, 4, 5].into_iter().enumerate() {
            let mut id = [0u8; 16];
            id[15] = last;
            let name = format!("t{i}");
            s.apply(&MetadataCommand::CreateTopic {
                name: name.clone(),
                id,
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
                assignment: vec![],
            })
            .unwrap();
            firsts.push(owners(&s, &name)[0]);
        }
        assert_eq!(firsts, vec![1, 2, 3]);
        // The same command on another replica gives the same answer.
        let mut a = with_brokers(&[1, 2, 3]);
        let mut b = with_brokers(&[1, 2, 3]);
        assert_eq!(a.apply(&create("x", 9, 7)), b.apply(&create("x", 9, 7)));
        assert_eq!(a, b);
    }

    #[test]
    fn create_topic_uses_only_live_brokers() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&MetadataCommand::BrokerHeartbeat {
            id: 1,
            at_ms: 60_000,
        })
        .unwrap();
        s.apply(&MetadataCommand::BrokerHeartbeat {
            id: 3,
            at_ms: 60_000,
        })
        .unwrap();
        s.apply(&create("t", 1, 6)).unwrap();
        let o = owners(&s, "t");
        assert_eq!((count(&o, 1), count(&o, 2), count(&o, 3)), (3, 0, 3));
    }

    #[test]
    fn create_topic_keeps_configs() {
        let mut s = with_brokers(&[1]);
        let configs = BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]);
        s.apply(&MetadataCommand::CreateTopic {
            name: "t".into(),
            id: [1; 16],
            partitions: 1,
            replication_factor: 1,
            configs: configs.clone(),
            assignment: vec![],
        })
        .unwrap();
        assert_eq!(s.topic("t").unwrap().configs, configs);
    }

    #[test]
    fn create_topic_rejections() {
        let mut empty = MetadataState::default();
        assert_rejected(
            &mut empty,
            create("t", 1, 3),
            codes::INVALID_REPLICATION_FACTOR,
        );

        let mut s = with_brokers(&[1, 2]);
        s.apply(&create("t", 1, 3)).unwrap();
        assert_rejected(&mut s, create("t", 2, 3), codes::TOPIC_ALREADY_EXISTS);
        assert_rejected(&mut s, create("u", 1, 3), codes::TOPIC_ALREADY_EXISTS);
        assert_rejected(&mut s, create("u", 0, 3), codes::INVALID_REQUEST);
        assert_rejected(&mut s, create("u", 2, 0), codes::INVALID_PARTITIONS);
        assert_rejected(
            &mut s,
            create("u", 2, MAX_PARTITIONS + 1),
            codes::INVALID_PARTITIONS,
        );
        for bad in ["", ".", "..", "a b", "ü", &"x".repeat(250)] {
            assert_rejected(&mut s, create(bad, 2, 1), codes::INVALID_TOPIC_EXCEPTION);
        }
        s.apply(&create("a._-Z9", 2, 1)).unwrap();
    }

    #[test]
    fn delete_topic_and_recreate_with_new_id() {
        let mut s = with_brokers(&[1]);
        s.apply(&create("t", 1, 2)).unwrap();
        assert_eq!(
            s.apply(&MetadataCommand::DeleteTopic { name: "t".into() }),
            Ok(CommandOutput::Done)
        );
        assert!(s.topic("t").is_none());
        assert!(s.topic_by_id(&[1; 16]).is_none());
        assert!(s.is_deleted(&[1; 16]) && !s.is_deleted(&[2; 16]));
        assert_rejected(
            &mut s,
            MetadataCommand::DeleteTopic { name: "t".into() },
            codes::UNKNOWN_TOPIC_OR_PARTITION,
        );
        // A deleted topic's id is never reused.
        assert_rejected(&mut s, create("t", 1, 1), codes::TOPIC_ALREADY_EXISTS);
        s.apply(&create("t", 2, 1)).unwrap();
        assert_eq!(s.topic("t").unwrap().id, [2; 16]);
    }

    #[test]
    fn explicit_assignments_are_checked_and_kept() {
        let mut s = with_brokers(&[1, 2]);
        let assigned = |partitions, assignment: Vec<u64>| MetadataCommand::CreateTopic {
            name: "a".into(),
            id: [9; 16],
            partitions,
            replication_factor: 1,
            configs: BTreeMap::new(),
            assignment: as_sets(&assignment),
        };
        assert_rejected(
            &mut s,
            assigned(2, vec![1]),
            codes::INVALID_REPLICA_ASSIGNMENT,
        );
        assert_rejected(
            &mut s,
            assigned(2, vec![1, 7]),
            codes::INVALID_REPLICA_ASSIGNMENT,
        );
        s.apply(&assigned(3, vec![2, 2, 1])).unwrap();
        assert_eq!(owners(&s, "a"), vec![2, 2, 1]);
        s.apply(&MetadataCommand::CreatePartitions {
            name: "a".into(),
            count: 4,
            assignment: vec![vec![2]],
        })
        .unwrap();
        assert_eq!(owners(&s, "a"), vec![2, 2, 1, 2]);
    }

    #[test]
    fn create_partitions_keeps_spread_even() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create("t", 1, 4)).unwrap();
        let out = s
            .apply(&MetadataCommand::CreatePartitions {
                name: "t".into(),
                count: 12,
                assignment: vec![],
            })
            .unwrap();
        let o = owners(&s, "t");
        assert_eq!(
            out,
            CommandOutput::PartitionsCreated {
                first: 4,
                replicas: as_sets(&o[4..])
            }
        );
        assert_eq!((count(&o, 1), count(&o, 2), count(&o, 3)), (4, 4, 4));

        // A new broker joins: growing the topic fills it up first.
        s.apply(&register(4)).unwrap();
        s.apply(&MetadataCommand::CreatePartitions {
            name: "t".into(),
            count: 15,
            assignment: vec![],
        })
        .unwrap();
        let o = owners(&s, "t");
        assert_eq!(count(&o, 4), 3);
    }

    #[test]
    fn create_partitions_rejections() {
        let mut s = with_brokers(&[1]);
        s.apply(&create("t", 1, 3)).unwrap();
        let grow = |name: &str, count| MetadataCommand::CreatePartitions {
            name: name.into(),
            count,
            assignment: vec![],
        };
        assert_rejected(&mut s, grow("t", 3), codes::INVALID_PARTITIONS);
        assert_rejected(&mut s, grow("t", 2), codes::INVALID_PARTITIONS);
        assert_rejected(
            &mut s,
            grow("t", MAX_PARTITIONS + 1),
            codes::INVALID_PARTITIONS,
        );
        assert_rejected(&mut s, grow("nope", 5), codes::UNKNOWN_TOPIC_OR_PARTITION);
        // Nobody live to own new partitions.
        s.apply(&register(2)).unwrap();
        s.apply(&MetadataCommand::BrokerHeartbeat { id: 2, at_ms: 1 })
            .unwrap();
        let mut dead = s.clone();
        dead.clock_ms = 1_000_000;
        assert_rejected(&mut dead, grow("t", 5), codes::INVALID_REPLICATION_FACTOR);
    }

    #[test]
    fn allocate_producer_ids_hands_out_disjoint_blocks() {
        let mut s = MetadataState::default();
        let alloc = |count| MetadataCommand::AllocateProducerIds { count };
        assert_eq!(
            s.apply(&alloc(1000)),
            Ok(CommandOutput::ProducerIds {
                start: 0,
                count: 1000
            })
        );
        assert_eq!(
            s.apply(&alloc(10)),
            Ok(CommandOutput::ProducerIds {
                start: 1000,
                count: 10
            })
        );
        assert_eq!(s.next_producer_id(), 1010);
        assert_rejected(&mut s, alloc(0), codes::INVALID_REQUEST);
        assert_rejected(
            &mut s,
            alloc(MAX_PRODUCER_ID_BLOCK + 1),
            codes::INVALID_REQUEST,
        );
        s.next_producer_id = i64::MAX - 5;
        assert_rejected(&mut s, alloc(10), codes::INVALID_REQUEST);
    }

    fn create_rf(name: &str, id: u8, partitions: u32, rf: u32) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.into(),
            id: [id; 16],
            partitions,
            replication_factor: rf,
            configs: BTreeMap::new(),
            assignment: vec![],
        }
    }

    fn heartbeat(id: u64, at_ms: u64) -> MetadataCommand {
        MetadataCommand::BrokerHeartbeat { id, at_ms }
    }

    #[test]
    fn replicas_are_spread_and_the_factor_is_checked() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create_rf("t", 1, 6, 3)).unwrap();
        let t = s.topic("t").unwrap();
        for p in &t.partitions {
            let mut sorted = p.replicas.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, vec![1, 2, 3]);
            assert_eq!((p.leader, &p.isr), (Some(p.replicas[0]), &p.replicas));
        }
        let leaders = owners(&s, "t");
        assert_eq!((count(&leaders, 1), count(&leaders, 2)), (2, 2));
        assert_rejected(
            &mut s,
            create_rf("u", 2, 1, 4),
            codes::INVALID_REPLICATION_FACTOR,
        );
        assert_rejected(
            &mut s,
            create_rf("u", 2, 1, 0),
            codes::INVALID_REPLICATION_FACTOR,
        );
        // Growing keeps the factor.
        s.apply(&MetadataCommand::CreatePartitions {
            name: "t".into(),
            count: 7,
            assignment: vec![],
        })
        .unwrap();
        assert_eq!(s.partition("t", 6).unwrap().replicas.len(), 3);
    }

    #[test]
    fn a_dead_leader_is_replaced_and_fenced_by_epoch() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create_rf("t", 1, 3, 3)).unwrap();
        let p0 = s.partition("t", 0).unwrap().clone();
        let dead = p0.leader.unwrap();
        let alive: Vec<u64> = [1, 2, 3].into_iter().filter(|&b| b != dead).collect();
        // Liveness follows the newest heartbeat in the log, so the survivors keep beating.
        for at in [4_000, 8_000, 12_000] {
            for &b in &alive {
                s.apply(&heartbeat(b, at)).unwrap();
            }
        }
        let p = s.partition("t", 0).unwrap();
        assert_ne!(p.leader, Some(dead));
        assert!(p.leader.is_some_and(|l| alive.contains(&l)));
        assert!(!p.isr.contains(&dead), "{p:?}");
        assert_eq!(p.leader_epoch, p0.leader_epoch + 1);
        assert_eq!(p.offline(&|b| s.is_live(b)), vec![dead]);
        // The deposed leader can no longer change the in-sync set.
        let stale = MetadataCommand::AlterPartition {
            topic_id: [1; 16],
            partition: 0,
            leader: dead,
            leader_epoch: p0.leader_epoch,
            partition_epoch: p0.partition_epoch,
            isr: vec![dead],
        };
        assert_rejected(&mut s, stale, codes::NOT_LEADER_OR_FOLLOWER);
        // The dead broker returns (same incarnation): it stays out of the in-sync set until
        // the leader adds it back.
        s.apply(&heartbeat(dead, 12_000)).unwrap();
        let p = s.partition("t", 0).unwrap().clone();
        assert!(!p.isr.contains(&dead));
        let leader = p.leader.unwrap();
        let mut isr = p.isr.clone();
        isr.push(dead);
        let add = MetadataCommand::AlterPartition {
            topic_id: [1; 16],
            partition: 0,
            leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            isr,
        };
        assert_eq!(
            s.apply(&add),
            Ok(CommandOutput::PartitionAltered {
                partition_epoch: p.partition_epoch + 1
            })
        );
        assert_eq!(
            s.partition("t", 0).unwrap().isr.len(),
            3,
            "{:?}",
            s.partition("t", 0)
        );
        // The same change again starts from an old partition epoch.
        assert_rejected(&mut s, add, codes::INVALID_UPDATE_VERSION);
        // Preferred leadership goes back to the first replica.
        let out = s
            .apply(&MetadataCommand::ElectPreferredLeaders {
                partitions: vec![("t".into(), 0), ("nope".into(), 0)],
            })
            .unwrap();
        assert_eq!(
            out,
            CommandOutput::PartitionResults {
                codes: vec![codes::NONE, codes::UNKNOWN_TOPIC_OR_PARTITION]
            }
        );
        let p = s.partition("t", 0).unwrap();
        assert_eq!(p.leader, Some(p.replicas[0]));
    }

    #[test]
    fn a_new_term_renews_the_sessions_of_live_brokers() {
        let mut s = with_brokers(&[1, 2, 3]);
        s.apply(&create_rf("t", 1, 3, 3)).unwrap();
        let before = s.topic("t").unwrap().clone();
        // The group had no leader for longer than the session timeout.
        s.new_term();
        s.apply(&heartbeat(1, 20_000)).unwrap();
        assert!(s.is_live(2) && s.is_live(3));
        assert_eq!(s.topic("t").unwrap(), &before, "nobody lost leadership");
        // Without a new term the same gap declares them down.
        s.apply(&heartbeat(1, 40_000)).unwrap();
        assert!(!s.is_live(2) && !s.is_live(3));
    }

    #[test]
    fn a_restarted_leader_gets_a_new_epoch() {
        let mut s = with_brokers(&[1]);
        s.apply(&create_rf("t", 1, 1, 1)).unwrap();
        assert_eq!(s.partition("t", 0).unwrap().leader_epoch, 0);
        s.apply(&MetadataCommand::RegisterBroker {
            id: 1,
            host: "host1".into(),
            port: 9092,
            rack: None,
            epoch: 2,
            at_ms: 10,
        })
        .unwrap();
        let p = s.partition("t", 0).unwrap();
        assert_eq!((p.leader, p.leader_epoch), (Some(1), 1));
    }

    #[test]
    fn group_writes_apply_only_from_the_coordinator() {
        let mut s = with_brokers(&[1, 2, 3]);
        let coordinator = s.group_coordinator("g").unwrap();
        let other = [1, 2, 3].into_iter().find(|&b| b != coordinator).unwrap();
        let loaded = s.placement_epoch();
        let commit_since = |by, since| MetadataCommand::CommitOffsets {
            coordinator: by,
            at_ms: 7,
            commits: vec![GroupCommit {
                group: "g".into(),
                since,
                offsets: vec![crate::consumer_groups::OffsetCommit {
                    topic: "t".into(),
                    partition: 0,
                    offset: 42,
                    leader_epoch: 3,
                    metadata: "m".into(),
                }],
            }],
        };
        let commit = |by| commit_since(by, loaded);
        assert_eq!(
            s.apply(&commit(other)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            }
        );
        assert!(s.groups().get("g").is_none());
        assert_eq!(
            s.apply(&commit(coordinator)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NONE]
            }
        );
        let stored = &s.groups().get("g").unwrap().offsets[&("t".to_string(), 0)];
        assert_eq!(
            (stored.offset, stored.leader_epoch, stored.commit_ms),
            (42, 3, 7)
        );
        let store = |by| MetadataCommand::StoreGroup {
            coordinator: by,
            since: loaded,
            group: "g".into(),
            record: GroupRecord {
                generation: 1,
                ..Default::default()
            },
        };
        assert_rejected(&mut s, store(other), codes::NOT_COORDINATOR);
        s.apply(&store(coordinator)).unwrap();

        // The coordinator stops heartbeating: once it is down, another broker takes over and
        // the old one's writes are refused.
        for at in [5_000, 10_000] {
            for b in [1, 2, 3].into_iter().filter(|&b| b != coordinator) {
                s.apply(&MetadataCommand::BrokerHeartbeat { id: b, at_ms: at })
                    .unwrap();
            }
        }
        let next = s.group_coordinator("g").unwrap();
        assert_ne!(next, coordinator);
        assert_eq!(
            s.apply(&commit(coordinator)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            }
        );
        let taken_over = s.placement_epoch();
        assert!(taken_over > loaded);
        assert_eq!(
            s.apply(&commit(next)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            },
            "the new coordinator must load the group at the new placement first"
        );
        assert_eq!(
            s.apply(&commit_since(next, taken_over)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NONE]
            }
        );

        // The old coordinator comes back and coordinates the group again. Having missed the
        // move (it was paused, say), it still holds the group as loaded at `loaded`: refused,
        // although it is the coordinator now. Reloaded at the current placement, it may write.
        s.apply(&MetadataCommand::BrokerHeartbeat {
            id: coordinator,
            at_ms: 10_000,
        })
        .unwrap();
        assert_eq!(s.group_coordinator("g"), Some(coordinator));
        assert_eq!(
            s.apply(&commit_since(coordinator, loaded)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NOT_COORDINATOR]
            }
        );
        let back = s.placement_epoch();
        assert_eq!(
            s.apply(&commit_since(coordinator, back)).unwrap(),
            CommandOutput::GroupResults {
                codes: vec![codes::NONE]
            }
        );
        // A barrier (a commit without offsets) changes nothing, even for an unknown group.
        let barrier = MetadataCommand::CommitOffsets {
            coordinator: 99,
            at_ms: 8,
            commits: vec![GroupCommit {
                group: "unknown".into(),
                since: 0,
                offsets: vec![],
            }],
        };
        let before = s.clone();
        s.apply(&barrier).unwrap();
        assert_eq!(s, before);
    }

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
