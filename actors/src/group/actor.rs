//! The group actor: Kafka's classic group protocol for one group, on its coordinator.
//!
//! States follow Kafka's coordinator: Empty → PreparingRebalance (the join barrier) →
//! CompletingRebalance (waiting for the leader's SyncGroup) → Stable, and Dead once the group is
//! deleted or this node stops coordinating it. Timers (session expiry, the join barrier's
//! rebalance timeout, the initial rebalance delay, the sync deadline) live here in memory; what
//! must survive the node (each completed generation and every committed offset) goes through the
//! [`GroupStore`] before the client hears about it. A new coordinator starts from the recorded
//! generation, so members that keep heartbeating carry on without a rebalance.
//!
//! This file holds the actor's state and what every request shares: loading and unloading the
//! group, session timers, and taking members out. The requests themselves are served next door:
//! the join protocol in `join`, `rebalance` and `sync`; heartbeats and leaves in `presence`;
//! offsets in `offsets`; DescribeGroups and DeleteGroups in `admin`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock;
use crate::group::codes;
use crate::group::member::Member;
use crate::group::messages::{JoinResult, Protocol, SyncResult, Unload};
use crate::group::store::{GroupStore, StoredGroup, StoredMember};

/// How long the actor of a group that does not exist lingers before it stops.
const UNKNOWN_GROUP_LINGER: Duration = Duration::from_secs(5);

/// Coordinator settings, by their Kafka names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// `group.min.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`
    pub max_session_timeout_ms: i32,
    /// `group.initial.rebalance.delay.ms`: how long the first rebalance of an empty group waits
    /// for more members.
    pub initial_rebalance_delay_ms: u64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            min_session_timeout_ms: 6_000,
            max_session_timeout_ms: 1_800_000,
            initial_rebalance_delay_ms: 3_000,
        }
    }
}

/// Kafka's group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name DescribeGroups and ListGroups use.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// The first rebalance of an empty group waits `group.initial.rebalance.delay.ms`, again each
/// time a new member arrived during the wait, up to the rebalance timeout.
pub(super) struct InitialDelay {
    pub(super) remaining: Duration,
    pub(super) member_added: bool,
}

pub struct GroupActor {
    pub(super) id: String,
    pub(super) store: Arc<dyn GroupStore>,
    pub(super) config: CoordinatorConfig,
    pub(super) state: GroupState,
    /// Whether the group exists: loaded from the store, joined, or committed to.
    pub(super) exists: bool,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol: Option<String>,
    pub(super) generation: i32,
    pub(super) leader: Option<String>,
    pub(super) members: BTreeMap<String, Member>,
    /// `group.instance.id` → member id, for static members.
    pub(super) instances: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, each with its expiry timer.
    pub(super) pending: HashMap<String, SpawnHandle>,
    /// Members of a completed join that have not sent SyncGroup yet.
    pub(super) pending_sync: HashSet<String>,
    pub(super) state_since_ms: u64,
    /// The placement epoch the group was loaded at (see [`GroupStore::coordinates`]).
    pub(super) epoch: u64,
    pub(super) join_timer: Option<SpawnHandle>,
    pub(super) initial_delay: Option<InitialDelay>,
    pub(super) sync_timer: Option<SpawnHandle>,
}

/// Now, as the store records when the group entered its state.
pub(super) fn now_ms() -> u64 {
    u64::try_from(clock::now_ms()).unwrap_or(0)
}

pub(super) fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

impl GroupActor {
    pub fn new(id: String, store: Arc<dyn GroupStore>, config: CoordinatorConfig) -> Self {
        GroupActor {
            id,
            store,
            config,
            state: GroupState::Empty,
            exists: false,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            instances: HashMap::new(),
            pending: HashMap::new(),
            pending_sync: HashSet::new(),
            state_since_ms: now_ms(),
            epoch: 0,
            join_timer: None,
            initial_delay: None,
            sync_timer: None,
        }
    }

    /// Whether this node still coordinates the group as it loaded it. A node that was paused
    /// or cut off while the group moved away (and perhaps back) holds stale members and
    /// generations: it unloads instead of answering from them, and the client finds the
    /// coordinator again.
    pub(super) fn lost_coordination(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.state == GroupState::Dead || self.store.coordinates(&self.id, self.epoch) {
            return false;
        }
        self.unload(ctx);
        true
    }

    /// Why this actor cannot serve a member's request: NOT_COORDINATOR once the group moved
    /// away (the actor unloads), COORDINATOR_NOT_AVAILABLE once it is Dead.
    pub(super) fn unavailable(&mut self, ctx: &mut Context<Self>) -> Option<i16> {
        if self.lost_coordination(ctx) {
            Some(codes::NOT_COORDINATOR)
        } else if self.state == GroupState::Dead {
            Some(codes::COORDINATOR_NOT_AVAILABLE)
        } else {
            None
        }
    }

    pub(super) fn set_state(&mut self, state: GroupState) {
        if self.state != state {
            tracing::debug!(group = %self.id, from = self.state.name(), to = state.name(), generation = self.generation, "group state");
        }
        self.state = state;
        self.state_since_ms = now_ms();
    }

    /// Start from the recorded generation: its members are Stable and get a fresh session.
    fn restore(&mut self, stored: StoredGroup, ctx: &mut Context<Self>) {
        self.exists = true;
        self.protocol_type = stored.protocol_type;
        self.generation = stored.generation;
        self.protocol = stored.protocol;
        self.leader = stored.leader;
        self.state_since_ms = stored.state_since_ms;
        for m in stored.members {
            if let Some(instance) = &m.instance_id {
                self.instances.insert(instance.clone(), m.member_id.clone());
            }
            let member = Member {
                id: m.member_id.clone(),
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                session_timeout: millis(m.session_timeout_ms),
                rebalance_timeout: millis(m.rebalance_timeout_ms),
                protocols: self
                    .protocol
                    .iter()
                    .map(|name| Protocol {
                        name: name.clone(),
                        metadata: m.subscription.clone(),
                    })
                    .collect(),
                assignment: m.assignment,
                awaiting_join: None,
                awaiting_sync: None,
                expiry: None,
            };
            self.members.insert(m.member_id, member);
        }
        self.state = if self.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.schedule_expiry(&id, ctx);
        }
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(), state = self.state.name(), "group loaded");
    }

    /// The group as the store keeps it.
    pub(super) fn record(&self) -> StoredGroup {
        StoredGroup {
            protocol_type: self.protocol_type.clone(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .values()
                .map(|m| StoredMember {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    subscription: m.metadata(self.protocol.as_deref()),
                    assignment: m.assignment.clone(),
                })
                .collect(),
            state_since_ms: self.state_since_ms,
        }
    }

    /// (Re)start a member's session timer: every heartbeat, join, sync and commit does.
    pub(super) fn schedule_expiry(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        if let Some(old) = member.expiry.take() {
            ctx.cancel_future(old);
        }
        let key = id.to_owned();
        member.expiry = Some(ctx.run_later(member.session_timeout, move |act, ctx| {
            act.on_session_expired(&key, ctx)
        }));
    }

    fn on_session_expired(&mut self, id: &str, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        member.expiry = None;
        // A member waiting in the join barrier or for its assignment is alive: the rebalance
        // and sync deadlines bound those waits instead.
        if member.awaiting_join.is_some() || member.awaiting_sync.is_some() {
            self.schedule_expiry(id, ctx);
            return;
        }
        tracing::info!(group = %self.id, member = id, "member session expired");
        self.remove_members(&[id.to_owned()], "member session expired", ctx);
    }

    pub(super) fn cancel(ctx: &mut Context<Self>, timer: &mut Option<SpawnHandle>) {
        if let Some(handle) = timer.take() {
            ctx.cancel_future(handle);
        }
    }

    /// Take a member out of the group, answering anything it still waits for with `error`.
    /// The group's state is the caller's business.
    pub(super) fn drop_member(&mut self, id: &str, error: i16, ctx: &mut Context<Self>) {
        let Some(mut member) = self.members.remove(id) else {
            return;
        };
        if let Some(timer) = member.expiry.take() {
            ctx.cancel_future(timer);
        }
        if let Some(reply) = member.awaiting_join.take() {
            let _ = reply.send(JoinResult::error(error, id));
        }
        if let Some(reply) = member.awaiting_sync.take() {
            let _ = reply.send(SyncResult::error(error));
        }
        if let Some(instance) = &member.instance_id {
            if self.instances.get(instance).map(String::as_str) == Some(id) {
                self.instances.remove(instance);
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    /// Members left (LeaveGroup or expiry): rebalance the rest.
    pub(super) fn remove_members(&mut self, ids: &[String], reason: &str, ctx: &mut Context<Self>) {
        for id in ids {
            self.drop_member(id, codes::UNKNOWN_MEMBER_ID, ctx);
        }
        self.after_membership_change(reason, ctx);
    }

    /// FENCED_INSTANCE_ID or UNKNOWN_MEMBER_ID when `id` (with `instance`) is not a member.
    pub(super) fn check_member(&self, id: &str, instance: Option<&str>) -> Option<i16> {
        if let Some(instance) = instance {
            match self.instances.get(instance) {
                Some(known) if known != id => return Some(codes::FENCED_INSTANCE_ID),
                None => return Some(codes::UNKNOWN_MEMBER_ID),
                Some(_) => {}
            }
        }
        (!self.members.contains_key(id)).then_some(codes::UNKNOWN_MEMBER_ID)
    }

    /// Stop serving the group: what is pending gets NOT_COORDINATOR.
    fn unload(&mut self, ctx: &mut Context<Self>) {
        tracing::info!(group = %self.id, "no longer the coordinator: unloading the group");
        for m in self.members.values_mut() {
            if let Some(reply) = m.awaiting_join.take() {
                let _ = reply.send(JoinResult::error(codes::NOT_COORDINATOR, &m.id));
            }
            if let Some(reply) = m.awaiting_sync.take() {
                let _ = reply.send(SyncResult::error(codes::NOT_COORDINATOR));
            }
        }
        self.state = GroupState::Dead;
        ctx.stop();
    }
}

impl Actor for GroupActor {
    type Context = Context<Self>;

    /// Load the recorded state before serving anything: `wait` holds the mailbox meanwhile.
    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
        // A request about a group that does not exist (a DescribeGroups or Heartbeat with any
        // name) starts an actor; it must not stay, or made-up names would pile up actors.
        ctx.run_interval(UNKNOWN_GROUP_LINGER, |act, ctx| {
            if !act.exists && act.members.is_empty() && act.pending.is_empty() {
                ctx.stop();
            }
        });
        let load = self.store.load(&self.id);
        ctx.wait(load.into_actor(self).map(|loaded, act, ctx| match loaded {
            Ok(loaded) => {
                act.epoch = loaded.epoch;
                if let Some(stored) = loaded.stored {
                    act.restore(stored, ctx);
                }
            }
            Err(error) => {
                tracing::warn!(group = %act.id, error, "could not load the group");
                act.state = GroupState::Dead;
                ctx.stop();
            }
        }));
    }
}

impl Handler<Unload> for GroupActor {
    type Result = ();

    fn handle(&mut self, _msg: Unload, ctx: &mut Self::Context) {
        self.unload(ctx);
    }
}
