//! The node's side of the group coordinator: which node coordinates a group, the group actors
//! this node runs, their durable state on Raft, and committed offsets read back from it.
//!
//! - [`store`]: [`RaftGroupStore`], the actors' `GroupStore` as Raft commands.
//! - [`commits`]: [`CommitQueue`], offset commits batched into shared Raft entries.
//!
//! A group's coordinator is chosen from the metadata by rendezvous hashing over the live
//! brokers (`brook_raft::consumer_groups::coordinator_of`); every node computes the same
//! answer from its image, and Raft refuses group writes from a node that is no longer it.

pub mod commits;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use brook_actors::group::{codes, GroupActor, GroupRegistry};
use brook_raft::{CommittedOffset, MetadataCommand};
use tokio::sync::watch;

pub use commits::CommitQueue;
pub use store::RaftGroupStore;

use crate::broker::Broker;
use crate::config::GroupConfig;
use crate::metadata::MetadataImage;

/// The groups this node coordinates.
pub struct Coordinator {
    pub registry: GroupRegistry,
    pub commits: CommitQueue,
    pub config: GroupConfig,
}

impl Broker {
    /// The actor of a group this node coordinates, started on first use; otherwise the code a
    /// client gets: NOT_COORDINATOR when another node coordinates it, COORDINATOR_NOT_AVAILABLE
    /// when no broker is live.
    pub fn group_actor(&self, group: &str) -> Result<Addr<GroupActor>, i16> {
        match self.image().group_coordinator(group) {
            Some(id) if id == self.node_id() => self
                .groups
                .registry
                .get_or_start(group)
                .ok_or(codes::COORDINATOR_NOT_AVAILABLE),
            Some(_) => Err(codes::NOT_COORDINATOR),
            None => Err(codes::COORDINATOR_NOT_AVAILABLE),
        }
    }

    /// Wait until this node's copy of the metadata holds every commit of `group` that was
    /// acknowledged before the call, by any coordinator: an empty commit goes through the Raft
    /// log (sharing an entry with other commits). Reads after it are linearizable.
    pub async fn offsets_barrier(&self, group: &str) -> Result<(), i16> {
        match self
            .groups
            .commits
            .commit(group.to_owned(), 0, Vec::new())
            .await
        {
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

impl MetadataImage {
    /// The live broker that coordinates `group`.
    pub fn group_coordinator(&self, group: &str) -> Option<i32> {
        let live = self
            .brokers()
            .filter(|b| b.live)
            .filter_map(|b| u64::try_from(b.id).ok());
        brook_raft::consumer_groups::coordinator_of(group, live)
            .and_then(|id| i32::try_from(id).ok())
    }
}

/// Unload the groups whose coordinator moved to another node whenever the set of live
/// brokers changes: their members get NOT_COORDINATOR and find the new coordinator.
pub async fn follow_coordination(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut applied = broker.metadata.raft().reader().subscribe();
    let mut live: Vec<i32> = Vec::new();
    loop {
        let image = broker.image();
        let now: Vec<i32> = image.brokers().filter(|b| b.live).map(|b| b.id).collect();
        if now != live {
            let me = broker.node_id();
            broker
                .groups
                .registry
                .unload_unless(|g| image.group_coordinator(g) == Some(me));
            live = now;
        }
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// On the Raft leader, drop expired offsets every `offsets.retention.check.interval.ms`.
pub async fn expire_offsets(broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let config = broker.groups.config;
    let period = Duration::from_millis(config.retention_check_interval_ms);
    crate::broker::as_controller(broker, period, shutdown, |broker| async move {
        let cmd = MetadataCommand::ExpireOffsets {
            at_ms: crate::formation::now_ms(),
            retention_ms: config.offsets_retention_ms,
        };
        if let Err(e) = broker.metadata.write(cmd).await {
            tracing::warn!(error = %e, "expiring committed offsets failed");
        }
    })
    .await;
}
