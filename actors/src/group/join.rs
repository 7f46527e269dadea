//! JoinGroup: a member asks to join (or rejoin) the group. New dynamic members may first be
//! handed an id to come back with (KIP-394), static members replace their old id (KIP-345),
//! and a member whose protocols are unchanged in a settled group is answered without a
//! rebalance; everyone else waits in the barrier (see `rebalance`).

use actix::prelude::*;
use bytes::Bytes;

use crate::group::actor::{millis, GroupActor, GroupState};
use crate::group::codes;
use crate::group::member::{common_protocols, Member};
use crate::group::messages::{JoinGroup, JoinResult, Protocol, SyncResult};

impl Handler<JoinGroup> for GroupActor {
    type Result = ();

    fn handle(&mut self, join: JoinGroup, ctx: &mut Self::Context) {
        let error = if let Some(error) = self.unavailable(ctx) {
            Some(error)
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

impl GroupActor {
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
}
