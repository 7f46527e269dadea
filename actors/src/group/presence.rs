//! Heartbeat and LeaveGroup: members saying they are still there (which keeps their session
//! alive and tells them about a rebalance) or that they are going.

use actix::prelude::*;

use crate::group::actor::{GroupActor, GroupState};
use crate::group::codes;
use crate::group::messages::{Heartbeat, LeaveGroup, LeaveResult};

impl Handler<Heartbeat> for GroupActor {
    type Result = ();

    fn handle(&mut self, hb: Heartbeat, ctx: &mut Self::Context) {
        let error = if let Some(error) = self.unavailable(ctx) {
            error
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
        if let Some(error) = self.unavailable(ctx) {
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
