//! The group actor: Kafka's classic group protocol for one group, on its coordinator.
//!
//! States follow Kafka's coordinator: Empty → PreparingRebalance (the join barrier) →
//! CompletingRebalance (waiting for the leader's SyncGroup) → Stable, and Dead once the group is
//! deleted or this node stops coordinating it. Timers (session expiry, the join barrier's
//! rebalance timeout, the initial rebalance delay, the sync deadline) live here in memory; what
//! must survive the node (each completed generation and every committed offset) goes through the
//! [`GroupStore`] before the client hears about it. A new coordinator starts from the recorded
//! generation, so members that keep heartbeating carry on without a rebalance.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix::prelude::*;
use bytes::Bytes;

use crate::group::codes;
use crate::group::member::{common_protocols, select_protocol, Member};
use crate::group::messages::*;
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
struct InitialDelay {
    remaining: Duration,
    member_added: bool,
}

pub struct GroupActor {
    id: String,
    store: Arc<dyn GroupStore>,
    config: CoordinatorConfig,
    state: GroupState,
    /// Whether the group exists: loaded from the store, joined, or committed to.
    exists: bool,
    protocol_type: Option<String>,
    protocol: Option<String>,
    generation: i32,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// `group.instance.id` → member id, for static members.
    instances: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, each with its expiry timer.
    pending: HashMap<String, SpawnHandle>,
    /// Members of a completed join that have not sent SyncGroup yet.
    pending_sync: HashSet<String>,
    state_since_ms: u64,
    /// The placement epoch the group was loaded at (see [`GroupStore::coordinates`]).
    epoch: u64,
    join_timer: Option<SpawnHandle>,
    initial_delay: Option<InitialDelay>,
    sync_timer: Option<SpawnHandle>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn millis(ms: i32) -> Duration {
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
    fn lost_coordination(&mut self, ctx: &mut Context<Self>) -> bool {
        if self.state == GroupState::Dead || self.store.coordinates(&self.id, self.epoch) {
            return false;
        }
        self.unload(ctx);
        true
    }

    fn set_state(&mut self, state: GroupState) {
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
    fn record(&self) -> StoredGroup {
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

    // ---- timers -------------------------------------------------------------------------

    /// (Re)start a member's session timer: every heartbeat, join, sync and commit does.
    fn schedule_expiry(&mut self, id: &str, ctx: &mut Context<Self>) {
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

    fn cancel(ctx: &mut Context<Self>, timer: &mut Option<SpawnHandle>) {
        if let Some(handle) = timer.take() {
            ctx.cancel_future(handle);
        }
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    // ---- the join barrier ---------------------------------------------------------------

    /// Start (or restart) a rebalance.
    fn prepare_rebalance(&mut self, reason: &str, ctx: &mut Context<Self>) {
        if self.state == GroupState::CompletingRebalance {
            self.fail_syncs(codes::REBALANCE_IN_PROGRESS);
        }
        Self::cancel(ctx, &mut self.sync_timer);
        Self::cancel(ctx, &mut self.join_timer);
        self.pending_sync.clear();
        let was_empty = self.state == GroupState::Empty;
        self.set_state(GroupState::PreparingRebalance);
        tracing::info!(group = %self.id, generation = self.generation, reason, "preparing to rebalance");
        let rebalance = self.rebalance_timeout();
        let initial = Duration::from_millis(self.config.initial_rebalance_delay_ms);
        let wait = if was_empty && !initial.is_zero() {
            let first = initial.min(rebalance);
            self.initial_delay = Some(InitialDelay {
                remaining: rebalance.saturating_sub(first),
                member_added: false,
            });
            first
        } else {
            self.initial_delay = None;
            rebalance
        };
        self.join_timer = Some(ctx.run_later(wait, |act, ctx| act.on_join_timer(ctx)));
        self.try_complete_join(ctx);
    }

    fn on_join_timer(&mut self, ctx: &mut Context<Self>) {
        self.join_timer = None;
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        if let Some(delay) = &mut self.initial_delay {
            if delay.member_added && !delay.remaining.is_zero() {
                let next = Duration::from_millis(self.config.initial_rebalance_delay_ms)
                    .min(delay.remaining);
                delay.remaining -= next;
                delay.member_added = false;
                self.join_timer = Some(ctx.run_later(next, |act, ctx| act.on_join_timer(ctx)));
                return;
            }
        }
        self.initial_delay = None;
        self.complete_join(ctx);
    }

    /// Complete the barrier early once every member has rejoined (never during the initial
    /// delay, which exists to gather members).
    fn try_complete_join(&mut self, ctx: &mut Context<Self>) {
        if self.state != GroupState::PreparingRebalance || self.initial_delay.is_some() {
            return;
        }
        if self.pending.is_empty() && self.members.values().all(|m| m.awaiting_join.is_some()) {
            Self::cancel(ctx, &mut self.join_timer);
            self.complete_join(ctx);
        }
    }

    /// Close the barrier: members that did not rejoin leave, a new generation starts, the
    /// leader gets every member's metadata.
    fn complete_join(&mut self, ctx: &mut Context<Self>) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time");
            self.drop_member(id, codes::UNKNOWN_MEMBER_ID, ctx);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.leader = None;
            self.set_state(GroupState::Empty);
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            self.persist_quietly(ctx);
            return;
        }
        self.protocol = select_protocol(self.members.values());
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.set_state(GroupState::CompletingRebalance);
        tracing::info!(group = %self.id, generation = self.generation, protocol = ?self.protocol, members = self.members.len(), "rebalance: join complete");
        let everyone = self.joined_members();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in &ids {
            let with_members = self.leader.as_deref() == Some(id.as_str());
            let result = self.join_result(id, with_members.then(|| everyone.clone()));
            if let Some(member) = self.members.get_mut(id) {
                if let Some(reply) = member.awaiting_join.take() {
                    let _ = reply.send(result);
                }
            }
            self.schedule_expiry(id, ctx);
        }
        self.pending_sync = ids.into_iter().collect();
        let generation = self.generation;
        self.sync_timer = Some(ctx.run_later(self.rebalance_timeout(), move |act, ctx| {
            act.on_sync_timeout(generation, ctx)
        }));
    }

    /// Members that never sent SyncGroup within the rebalance timeout leave (else a leader that
    /// died after joining would hold the group forever).
    fn on_sync_timeout(&mut self, generation: i32, ctx: &mut Context<Self>) {
        self.sync_timer = None;
        if self.state != GroupState::CompletingRebalance || self.generation != generation {
            return;
        }
        let late: Vec<String> = self.pending_sync.drain().collect();
        for id in &late {
            self.drop_member(id, codes::UNKNOWN_MEMBER_ID, ctx);
        }
        self.prepare_rebalance("members did not sync in time", ctx);
    }

    fn joined_members(&self) -> Vec<JoinedMember> {
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(self.protocol.as_deref()),
            })
            .collect()
    }

    fn join_result(&self, member_id: &str, members: Option<Vec<JoinedMember>>) -> JoinResult {
        JoinResult {
            error: codes::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_owned(),
            members: members.unwrap_or_default(),
            skip_assignment: false,
        }
    }

    /// Answer every held SyncGroup with `error` and forget the assignments.
    fn fail_syncs(&mut self, error: i16) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(reply) = m.awaiting_sync.take() {
                let _ = reply.send(SyncResult::error(error));
            }
        }
    }

    // ---- membership changes -------------------------------------------------------------

    /// Take a member out of the group, answering anything it still waits for with `error`.
    /// The group's state is the caller's business.
    fn drop_member(&mut self, id: &str, error: i16, ctx: &mut Context<Self>) {
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
    fn remove_members(&mut self, ids: &[String], reason: &str, ctx: &mut Context<Self>) {
        for id in ids {
            self.drop_member(id, codes::UNKNOWN_MEMBER_ID, ctx);
        }
        self.after_membership_change(reason, ctx);
    }

    fn after_membership_change(&mut self, reason: &str, ctx: &mut Context<Self>) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(reason, ctx)
            }
            GroupState::PreparingRebalance => self.try_complete_join(ctx),
            GroupState::Dead => {}
        }
    }

    fn add_member(&mut self, id: String, join: JoinGroup, ctx: &mut Context<Self>) {
        if self.members.is_empty() {
            self.protocol_type = Some(join.protocol_type.clone());
        }
        if let Some(instance) = &join.instance_id {
            self.instances.insert(instance.clone(), id.clone());
        }
        if let Some(delay) = &mut self.initial_delay {
            delay.member_added = true;
        }
        self.exists = true;
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: join.instance_id,
                client_id: join.client_id,
                client_host: join.client_host,
                session_timeout: millis(join.session_timeout_ms),
                rebalance_timeout: millis(join.rebalance_timeout_ms),
                protocols: join.protocols,
                assignment: Bytes::new(),
                awaiting_join: Some(join.reply),
                awaiting_sync: None,
                expiry: None,
            },
        );
        self.schedule_expiry(&id, ctx);
        self.after_membership_change("a new member joined", ctx);
    }

    /// A known member rejoins with (possibly new) protocols: it waits in the barrier.
    fn update_member(&mut self, id: &str, join: JoinGroup, ctx: &mut Context<Self>) {
        let Some(member) = self.members.get_mut(id) else {
            let _ = join
                .reply
                .send(JoinResult::error(codes::UNKNOWN_MEMBER_ID, id));
            return;
        };
        member.protocols = join.protocols;
        member.session_timeout = millis(join.session_timeout_ms);
        member.rebalance_timeout = millis(join.rebalance_timeout_ms);
        member.client_id = join.client_id;
        member.client_host = join.client_host;
        if let Some(old) = member.awaiting_join.replace(join.reply) {
            let _ = old.send(JoinResult::error(codes::REBALANCE_IN_PROGRESS, id));
        }
        self.schedule_expiry(id, ctx);
        self.after_membership_change("a member rejoined", ctx);
    }

    /// FENCED_INSTANCE_ID or UNKNOWN_MEMBER_ID when `id` (with `instance`) is not a member.
    fn check_member(&self, id: &str, instance: Option<&str>) -> Option<i16> {
        if let Some(instance) = instance {
            match self.instances.get(instance) {
                Some(known) if known != id => return Some(codes::FENCED_INSTANCE_ID),
                None => return Some(codes::UNKNOWN_MEMBER_ID),
                Some(_) => {}
            }
        }
        (!self.members.contains_key(id)).then_some(codes::UNKNOWN_MEMBER_ID)
    }

    fn supports(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        let common = common_protocols(self.members.values());
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|p| common.contains(&p.name))
    }

    fn join_new_member(&mut self, join: JoinGroup, ctx: &mut Context<Self>) {
        let prefix = join.instance_id.as_deref().unwrap_or(&join.client_id);
        let id = format!("{prefix}-{}", uuid::Uuid::new_v4());
        if let Some(instance) = &join.instance_id {
            if let Some(old) = self.instances.get(instance).cloned() {
                return self.replace_static_member(&old, id, join, ctx);
            }
            return self.add_member(id, join, ctx);
        }
        if join.require_known_member_id {
            // KIP-394: the member must come back with this id within its session timeout.
            let key = id.clone();
            let timer = ctx.run_later(millis(join.session_timeout_ms), move |act, ctx| {
                if act.pending.remove(&key).is_some() {
                    act.try_complete_join(ctx);
                }
            });
            self.pending.insert(id.clone(), timer);
            let _ = join
                .reply
                .send(JoinResult::error(codes::MEMBER_ID_REQUIRED, &id));
            return;
        }
        self.add_member(id, join, ctx);
    }

    fn join_known_member(&mut self, join: JoinGroup, ctx: &mut Context<Self>) {
        let id = join.member_id.clone();
        if let Some(timer) = self.pending.remove(&id) {
            ctx.cancel_future(timer);
            return self.add_member(id, join, ctx);
        }
        if let Some(error) = self.check_member(&id, join.instance_id.as_deref()) {
            let _ = join.reply.send(JoinResult::error(error, &id));
            return;
        }
        let (unchanged, is_leader) = match self.members.get(&id) {
            Some(m) => (
                m.matches(&join.protocols),
                self.leader.as_deref() == Some(id.as_str()),
            ),
            None => (false, false),
        };
        match self.state {
            GroupState::CompletingRebalance if unchanged => {
                // It missed the JoinGroup answer: send it again.
                let members = is_leader.then(|| self.joined_members());
                let _ = join.reply.send(self.join_result(&id, members));
                self.schedule_expiry(&id, ctx);
            }
            GroupState::Stable if unchanged && !is_leader => {
                let _ = join.reply.send(self.join_result(&id, None));
                self.schedule_expiry(&id, ctx);
            }
            GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
            | GroupState::Stable => self.update_member(&id, join, ctx),
            GroupState::Empty | GroupState::Dead => {
                let _ = join
                    .reply
                    .send(JoinResult::error(codes::UNKNOWN_MEMBER_ID, &id));
            }
        }
    }

    /// A static member came back with a new member id (KIP-345): the old id is fenced. In a
    /// Stable group with unchanged protocols it gets the current generation without a
    /// rebalance, once the new id is recorded.
    fn replace_static_member(
        &mut self,
        old: &str,
        new: String,
        join: JoinGroup,
        ctx: &mut Context<Self>,
    ) {
        let Some(mut member) = self.members.remove(old) else {
            return self.add_member(new, join, ctx);
        };
        if let Some(reply) = member.awaiting_join.take() {
            let _ = reply.send(JoinResult::error(codes::FENCED_INSTANCE_ID, old));
        }
        if let Some(reply) = member.awaiting_sync.take() {
            let _ = reply.send(SyncResult::error(codes::FENCED_INSTANCE_ID));
        }
        if let Some(timer) = member.expiry.take() {
            ctx.cancel_future(timer);
        }
        tracing::info!(group = %self.id, old, new = %new, instance = ?join.instance_id, "static member replaced");
        member.id = new.clone();
        if let Some(instance) = &join.instance_id {
            self.instances.insert(instance.clone(), new.clone());
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new.clone());
        }
        if self.pending_sync.remove(old) {
            self.pending_sync.insert(new.clone());
        }
        let unchanged = member.matches(&join.protocols);
        self.members.insert(new.clone(), member);
        if self.state == GroupState::Stable && unchanged {
            self.schedule_expiry(&new, ctx);
            let is_leader = self.leader.as_deref() == Some(new.as_str());
            let mut result = self.join_result(&new, is_leader.then(|| self.joined_members()));
            result.skip_assignment = is_leader;
            let store = self.store.store(&self.id, self.epoch, self.record());
            ctx.spawn(store.into_actor(self).map(move |stored, _act, _ctx| {
                let result = match stored {
                    Ok(()) => result,
                    Err(error) => JoinResult::error(error, &new),
                };
                let _ = join.reply.send(result);
            }));
            return;
        }
        self.update_member(&new, join, ctx);
    }

    /// Record the group without waiting for the answer (the group became empty: nothing
    /// depends on the write but later loads).
    fn persist_quietly(&mut self, ctx: &mut Context<Self>) {
        let group = self.id.clone();
        let store = self.store.store(&self.id, self.epoch, self.record());
        ctx.spawn(store.into_actor(self).map(move |stored, _, _| {
            if let Err(error) = stored {
                tracing::warn!(group = %group, error, "could not record the group");
            }
        }));
    }

    /// The leader's assignment is recorded: the generation is Stable and every member gets its
    /// share.
    fn on_assignment_stored(
        &mut self,
        generation: i32,
        assignments: HashMap<String, Bytes>,
        stored: Result<(), i16>,
        ctx: &mut Context<Self>,
    ) {
        if self.state != GroupState::CompletingRebalance || self.generation != generation {
            return;
        }
        if let Err(error) = stored {
            tracing::warn!(group = %self.id, generation, error, "could not record the assignment");
            self.fail_syncs(error);
            self.prepare_rebalance("the assignment could not be recorded", ctx);
            return;
        }
        Self::cancel(ctx, &mut self.sync_timer);
        self.set_state(GroupState::Stable);
        tracing::info!(group = %self.id, generation, "rebalance complete: group is stable");
        for m in self.members.values_mut() {
            m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
            if let Some(reply) = m.awaiting_sync.take() {
                let _ = reply.send(SyncResult {
                    error: codes::NONE,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    assignment: m.assignment.clone(),
                });
            }
        }
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

impl Handler<JoinGroup> for GroupActor {
    type Result = ();

    fn handle(&mut self, join: JoinGroup, ctx: &mut Self::Context) {
        let error = if self.lost_coordination(ctx) {
            Some(codes::NOT_COORDINATOR)
        } else if self.state == GroupState::Dead {
            Some(codes::COORDINATOR_NOT_AVAILABLE)
        } else if join.session_timeout_ms < self.config.min_session_timeout_ms
            || join.session_timeout_ms > self.config.max_session_timeout_ms
        {
            Some(codes::INVALID_SESSION_TIMEOUT)
        } else if !self.supports(&join.protocol_type, &join.protocols) {
            Some(codes::INCONSISTENT_GROUP_PROTOCOL)
        } else {
            None
        };
        if let Some(error) = error {
            let member = join.member_id.clone();
            let _ = join.reply.send(JoinResult::error(error, &member));
            return;
        }
        if join.member_id.is_empty() {
            self.join_new_member(join, ctx);
        } else {
            self.join_known_member(join, ctx);
        }
    }
}

impl Handler<SyncGroup> for GroupActor {
    type Result = ();

    fn handle(&mut self, sync: SyncGroup, ctx: &mut Self::Context) {
        let id = sync.member_id.clone();
        let mismatch =
            |ours: &Option<String>, theirs: &Option<String>| theirs.is_some() && theirs != ours;
        let error = if self.lost_coordination(ctx) {
            Some(codes::NOT_COORDINATOR)
        } else if self.state == GroupState::Dead {
            Some(codes::COORDINATOR_NOT_AVAILABLE)
        } else if let Some(error) = self.check_member(&id, sync.instance_id.as_deref()) {
            Some(error)
        } else if sync.generation != self.generation {
            Some(codes::ILLEGAL_GENERATION)
        } else if mismatch(&self.protocol_type, &sync.protocol_type)
            || mismatch(&self.protocol, &sync.protocol)
        {
            Some(codes::INCONSISTENT_GROUP_PROTOCOL)
        } else {
            match self.state {
                GroupState::Empty => Some(codes::UNKNOWN_MEMBER_ID),
                GroupState::PreparingRebalance => Some(codes::REBALANCE_IN_PROGRESS),
                _ => None,
            }
        };
        if let Some(error) = error {
            let _ = sync.reply.send(SyncResult::error(error));
            return;
        }
        self.schedule_expiry(&id, ctx);
        if self.state == GroupState::Stable {
            let assignment = self
                .members
                .get(&id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default();
            let _ = sync.reply.send(SyncResult {
                error: codes::NONE,
                protocol_type: self.protocol_type.clone(),
                protocol: self.protocol.clone(),
                assignment,
            });
            return;
        }
        // CompletingRebalance: hold the answer until the leader's assignment is recorded.
        self.pending_sync.remove(&id);
        if let Some(member) = self.members.get_mut(&id) {
            if let Some(old) = member.awaiting_sync.replace(sync.reply) {
                let _ = old.send(SyncResult::error(codes::REBALANCE_IN_PROGRESS));
            }
        }
        if self.leader.as_deref() != Some(id.as_str()) {
            return;
        }
        let assignments: HashMap<String, Bytes> = sync.assignments.into_iter().collect();
        let mut record = self.record();
        for m in &mut record.members {
            m.assignment = assignments.get(&m.member_id).cloned().unwrap_or_default();
        }
        record.state_since_ms = now_ms();
        let generation = self.generation;
        let store = self.store.store(&self.id, self.epoch, record);
        ctx.spawn(store.into_actor(self).map(move |stored, act, ctx| {
            act.on_assignment_stored(generation, assignments, stored, ctx)
        }));
    }
}

impl Handler<Heartbeat> for GroupActor {
    type Result = ();

    fn handle(&mut self, hb: Heartbeat, ctx: &mut Self::Context) {
        let error = if self.lost_coordination(ctx) {
            codes::NOT_COORDINATOR
        } else if self.state == GroupState::Dead {
            codes::COORDINATOR_NOT_AVAILABLE
        } else if let Some(error) = self.check_member(&hb.member_id, hb.instance_id.as_deref()) {
            error
        } else if hb.generation != self.generation {
            codes::ILLEGAL_GENERATION
        } else {
            self.schedule_expiry(&hb.member_id, ctx);
            if self.state == GroupState::PreparingRebalance {
                codes::REBALANCE_IN_PROGRESS
            } else {
                codes::NONE
            }
        };
        let _ = hb.reply.send(error);
    }
}

impl Handler<LeaveGroup> for GroupActor {
    type Result = ();

    fn handle(&mut self, leave: LeaveGroup, ctx: &mut Self::Context) {
        let error = if self.lost_coordination(ctx) {
            Some(codes::NOT_COORDINATOR)
        } else if self.state == GroupState::Dead {
            Some(codes::COORDINATOR_NOT_AVAILABLE)
        } else {
            None
        };
        if let Some(error) = error {
            let _ = leave.reply.send(LeaveResult {
                error,
                members: vec![error; leave.members.len()],
            });
            return;
        }
        let mut leaving = Vec::new();
        let mut pending_left = false;
        let errors = leave
            .members
            .iter()
            .map(|m| {
                if let Some(instance) = &m.instance_id {
                    return match self.instances.get(instance) {
                        None => codes::UNKNOWN_MEMBER_ID,
                        Some(known) if !m.member_id.is_empty() && *known != m.member_id => {
                            codes::FENCED_INSTANCE_ID
                        }
                        Some(known) => {
                            leaving.push(known.clone());
                            codes::NONE
                        }
                    };
                }
                if let Some(timer) = self.pending.remove(&m.member_id) {
                    ctx.cancel_future(timer);
                    pending_left = true;
                    codes::NONE
                } else if self.members.contains_key(&m.member_id) {
                    leaving.push(m.member_id.clone());
                    codes::NONE
                } else {
                    codes::UNKNOWN_MEMBER_ID
                }
            })
            .collect();
        if !leaving.is_empty() {
            tracing::info!(group = %self.id, members = ?leaving, "members left the group");
            self.remove_members(&leaving, "members left the group", ctx);
        } else if pending_left {
            self.try_complete_join(ctx);
        }
        let _ = leave.reply.send(LeaveResult {
            error: codes::NONE,
            members: errors,
        });
    }
}

impl Handler<CommitOffsets> for GroupActor {
    type Result = ();

    fn handle(&mut self, commit: CommitOffsets, ctx: &mut Self::Context) {
        let standalone = commit.generation < 0
            && commit.member_id.is_empty()
            && commit.instance_id.is_none()
            && self.members.is_empty();
        let error = if self.lost_coordination(ctx) {
            Some(codes::NOT_COORDINATOR)
        } else if self.state == GroupState::Dead {
            Some(codes::COORDINATOR_NOT_AVAILABLE)
        } else if standalone {
            None
        } else if !self.exists && commit.generation >= 0 {
            Some(codes::ILLEGAL_GENERATION)
        } else if let Some(error) =
            self.check_member(&commit.member_id, commit.instance_id.as_deref())
        {
            Some(error)
        } else if commit.generation != self.generation {
            Some(codes::ILLEGAL_GENERATION)
        } else if self.state == GroupState::CompletingRebalance {
            Some(codes::REBALANCE_IN_PROGRESS)
        } else {
            None
        };
        if let Some(error) = error {
            let _ = commit.reply.send(error);
            return;
        }
        if !standalone {
            self.schedule_expiry(&commit.member_id, ctx);
        }
        self.exists = true;
        // The answer does not depend on the actor once the write is on its way, so it is sent
        // from a plain task: it arrives even if the group is unloaded meanwhile.
        let stored = self.store.commit(&self.id, self.epoch, commit.offsets);
        let reply = commit.reply;
        actix::spawn(async move {
            let _ = reply.send(stored.await.err().unwrap_or(codes::NONE));
        });
    }
}

impl Handler<DescribeGroup> for GroupActor {
    type Result = ();

    fn handle(&mut self, msg: DescribeGroup, ctx: &mut Self::Context) {
        if self.lost_coordination(ctx) {
            let _ = msg.reply.send(GroupDescription {
                error: codes::NOT_COORDINATOR,
                ..Default::default()
            });
            return;
        }
        let protocol = self.protocol.as_deref();
        let description = GroupDescription {
            error: codes::NONE,
            state: self.state.name(),
            exists: self.exists,
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.unwrap_or_default().to_owned(),
            members: self
                .members
                .values()
                .map(|m| MemberDescription {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    metadata: m.metadata(protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        };
        let _ = msg.reply.send(description);
    }
}

impl Handler<DeleteGroup> for GroupActor {
    type Result = ();

    fn handle(&mut self, msg: DeleteGroup, ctx: &mut Self::Context) {
        let lost = self.lost_coordination(ctx);
        let error = match self.state {
            _ if lost => Some(codes::NOT_COORDINATOR),
            GroupState::Dead => Some(codes::GROUP_ID_NOT_FOUND),
            GroupState::Empty if !self.exists => Some(codes::GROUP_ID_NOT_FOUND),
            GroupState::Empty => None,
            _ => Some(codes::NON_EMPTY_GROUP),
        };
        if let Some(error) = error {
            let _ = msg.reply.send(error);
            return;
        }
        let deleted = self.store.delete(&self.id, self.epoch);
        // Nothing else is served until the delete is decided.
        ctx.wait(deleted.into_actor(self).map(move |deleted, act, ctx| {
            let error = deleted.err().unwrap_or(codes::NONE);
            if error == codes::NONE {
                tracing::info!(group = %act.id, "group deleted");
                act.state = GroupState::Dead;
                ctx.stop();
            }
            let _ = msg.reply.send(error);
        }));
    }
}

impl Handler<DeleteOffsets> for GroupActor {
    type Result = ();

    fn handle(&mut self, msg: DeleteOffsets, ctx: &mut Self::Context) {
        let count = msg.partitions.len();
        if self.lost_coordination(ctx) {
            let _ = msg.reply.send((codes::NOT_COORDINATOR, vec![]));
            return;
        }
        if self.state == GroupState::Dead || !self.exists {
            let _ = msg.reply.send((codes::GROUP_ID_NOT_FOUND, vec![]));
            return;
        }
        let deleted = self
            .store
            .delete_offsets(&self.id, self.epoch, msg.partitions);
        let reply = msg.reply;
        actix::spawn(async move {
            let answer = match deleted.await {
                Ok(()) => (codes::NONE, vec![codes::NONE; count]),
                Err(error) => (error, vec![]),
            };
            let _ = reply.send(answer);
        });
    }
}

impl Handler<Unload> for GroupActor {
    type Result = ();

    fn handle(&mut self, _msg: Unload, ctx: &mut Self::Context) {
        self.unload(ctx);
    }
}

impl GroupActor {
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
