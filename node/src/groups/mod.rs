//! The node's side of the group coordinator: which node coordinates a group, the group actors
//! this node runs, their durable state on Raft, and committed offsets read back from it.
//!
//! - `store`: [`RaftGroupStore`], the actors' `GroupStore` as Raft commands.
//! - `commits`: [`CommitQueue`], offset commits batched into shared Raft entries.
//!
//! A group's coordinator is chosen from the metadata by rendezvous hashing over the live
//! brokers (`brook_raft::consumer_groups::coordinator_of`); every node computes the same
//! answer from its image, and Raft refuses group writes from a node that is no longer it.

mod commits;
mod store;

use std::sync::Arc;

use actix::Addr;
use brook_actors::group::{codes, GroupActor, GroupRegistry};
use brook_raft::CommittedOffset;

pub(crate) use commits::CommitQueue;
pub(crate) use store::RaftGroupStore;

use crate::config::GroupConfig;
use crate::metadata::Metadata;

/// The groups this node coordinates.
pub(crate) struct Coordinator {
    pub registry: GroupRegistry,
    pub commits: CommitQueue,
    pub config: GroupConfig,
    pub metadata: Arc<Metadata>,
    pub node_id: i32,
}

impl Coordinator {
    /// The actor of a group this node coordinates, started on first use; otherwise the code a
    /// client gets: NOT_COORDINATOR when another node coordinates it, COORDINATOR_NOT_AVAILABLE
    /// when no broker is live.
    pub fn actor(&self, group: &str) -> Result<Addr<GroupActor>, i16> {
        match self.metadata.image().group_coordinator(group) {
            Some(id) if id == self.node_id => self
                .registry
                .get_or_start(group)
                .ok_or(codes::COORDINATOR_NOT_AVAILABLE),
            Some(_) => Err(codes::NOT_COORDINATOR),
            None => Err(codes::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// The actor of a group that exists: one running here, or one recorded in the metadata
    /// (started to serve it). `Ok(None)` for a group nobody joined or committed to: APIs that
    /// only read or leave a group answer that without starting an actor for a made-up id.
    pub fn existing(&self, group: &str) -> Result<Option<Addr<GroupActor>>, i16> {
        if let Some(addr) = self.registry.get(group) {
            return Ok(Some(addr));
        }
        let recorded = self
            .metadata
            .raft()
            .reader()
            .read(|s| s.groups().get(group).is_some());
        if recorded {
            self.actor(group).map(Some)
        } else {
            // Still NOT_COORDINATOR from the wrong node, so clients look the group up.
            match self.metadata.image().group_coordinator(group) {
                Some(id) if id == self.node_id => Ok(None),
                Some(_) => Err(codes::NOT_COORDINATOR),
                None => Err(codes::COORDINATOR_NOT_AVAILABLE),
            }
        }
    }

    /// Wait until this node's copy of the metadata holds every commit of `group` that was
    /// acknowledged before the call, by any coordinator: an empty commit goes through the Raft
    /// log (sharing an entry with other commits). Reads after it are linearizable.
    pub async fn offsets_barrier(&self, group: &str) -> Result<(), i16> {
        match self.commits.commit(group.to_owned(), 0, Vec::new()).await {
            // Refused because this node does not coordinate the group: still a barrier.
            Ok(()) | Err(codes::NOT_COORDINATOR) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Committed offsets of a group from this node's copy of the metadata: every partition,
    /// or those of `wanted`.
    pub fn committed_offsets(
        &self,
        group: &str,
        wanted: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), Option<CommittedOffset>)> {
        self.metadata.raft().reader().read(|s| {
            let offsets = s.groups().get(group).map(|g| &g.offsets);
            match wanted {
                Some(list) => list
                    .iter()
                    .map(|k| (k.clone(), offsets.and_then(|o| o.get(k)).cloned()))
                    .collect(),
                None => offsets
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
            }
        })
    }
}
