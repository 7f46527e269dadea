//! What admin tools ask of a group: DescribeGroups (and ListGroups, built on it) and
//! DeleteGroups.

use actix::prelude::*;

use crate::group::actor::{GroupActor, GroupState};
use crate::group::codes;
use crate::group::messages::{DeleteGroup, DescribeGroup, GroupDescription, MemberDescription};

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
