//! SyncGroup: members of a completed join wait for their assignment; the leader brings it, it is
//! recorded through the store, and only then does every member get its share.

use std::collections::HashMap;

use actix::prelude::*;
use bytes::Bytes;

use crate::group::actor::{now_ms, GroupActor, GroupState};
use crate::group::codes;
use crate::group::messages::{SyncGroup, SyncResult};

impl Handler<SyncGroup> for GroupActor {
    type Result = ();

    fn handle(&mut self, sync: SyncGroup, ctx: &mut Self::Context) {
        let id = sync.member_id.clone();
        let mismatch =
            |ours: &Option<String>, theirs: &Option<String>| theirs.is_some() && theirs != ours;
        let error = if let Some(error) = self.unavailable(ctx) {
            Some(error)
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

impl GroupActor {
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
