//! OffsetCommit and OffsetDelete for a group. Commits from members are checked against the
//! generation; a standalone commit (a consumer that assigns partitions itself) is taken while
//! the group has no members. The answer comes once the store made the change durable.

use actix::prelude::*;

use crate::group::actor::{GroupActor, GroupState};
use crate::group::codes;
use crate::group::messages::{CommitOffsets, DeleteOffsets};

impl Handler<CommitOffsets> for GroupActor {
    type Result = ();

    fn handle(&mut self, commit: CommitOffsets, ctx: &mut Self::Context) {
        let standalone = commit.generation < 0
            && commit.member_id.is_empty()
            && commit.instance_id.is_none()
            && self.members.is_empty();
        let error = if let Some(error) = self.unavailable(ctx) {
            Some(error)
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
