//! The join barrier of Kafka's classic protocol: a rebalance gathers the members (waiting out
//! the initial delay for an empty group, then at most the rebalance timeout), closes with a new
//! generation and its leader, and gives the members until the rebalance timeout again to sync.

use std::time::Duration;

use actix::prelude::*;
use bytes::Bytes;

use crate::group::actor::{GroupActor, GroupState, InitialDelay};
use crate::group::codes;
use crate::group::member::select_protocol;
use crate::group::messages::{JoinResult, JoinedMember, SyncResult};

impl GroupActor {
    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// Start (or restart) a rebalance.
    pub(super) fn prepare_rebalance(&mut self, reason: &str, ctx: &mut Context<Self>) {
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
    pub(super) fn try_complete_join(&mut self, ctx: &mut Context<Self>) {
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

    pub(super) fn after_membership_change(&mut self, reason: &str, ctx: &mut Context<Self>) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty => {
                self.prepare_rebalance(reason, ctx)
            }
            GroupState::PreparingRebalance => self.try_complete_join(ctx),
            GroupState::Dead => {}
        }
    }

    pub(super) fn joined_members(&self) -> Vec<JoinedMember> {
        self.members
            .values()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata(self.protocol.as_deref()),
            })
            .collect()
    }

    pub(super) fn join_result(
        &self,
        member_id: &str,
        members: Option<Vec<JoinedMember>>,
    ) -> JoinResult {
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
    pub(super) fn fail_syncs(&mut self, error: i16) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(reply) = m.awaiting_sync.take() {
                let _ = reply.send(SyncResult::error(error));
            }
        }
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
}
