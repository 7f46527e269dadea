//! Partition replication, the follower's side: which partitions this node follows and from
//! whom ([`Followers`], one [`fetcher`] task per leader).
//!
//! The partition actors hold the replication state itself (`brook_actors::partition`); the
//! metadata in Raft decides who leads and who is in sync. The leader's side of a replica fetch
//! is in `handlers/fetch/replica.rs`; in-sync set changes and preferred-leader elections are
//! background tasks (`server/tasks/`).

mod fetcher;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use brook_actors::{PartitionHandle, PartitionKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metadata::Metadata;
use crate::shutdown::Shutdown;

/// A partition this node follows.
#[derive(Clone)]
pub(crate) struct Followed {
    pub topic: String,
    pub partition: i32,
    pub leader_epoch: i32,
    pub handle: PartitionHandle,
}

type FollowSet = BTreeMap<PartitionKey, Followed>;

struct Fetcher {
    partitions: watch::Sender<FollowSet>,
    task: JoinHandle<()>,
}

/// What a fetcher needs of its node.
#[derive(Clone)]
pub(crate) struct FetcherContext {
    pub node_id: i32,
    /// Where the leaders are.
    pub metadata: Arc<Metadata>,
    pub shutdown: Shutdown,
    /// Proves this node's broker id to the leaders (`BROOK-NODE`).
    pub secret: brook_raft::ClusterSecret,
    /// On a TLS listener, how to reach a leader's listener.
    pub tls: Option<Arc<crate::security::tls::Tls>>,
}

/// The fetcher tasks of this node, one per leader it follows partitions of.
pub(crate) struct Followers {
    context: FetcherContext,
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl Followers {
    pub fn new(context: FetcherContext) -> Self {
        Followers {
            context,
            fetchers: Mutex::new(HashMap::new()),
        }
    }

    /// Makes the fetchers follow exactly `wanted` (leader -> its partitions): starts tasks
    /// for new leaders, hands changed sets to running ones, stops the rest.
    pub fn set(&self, mut wanted: BTreeMap<i32, FollowSet>) {
        let mut fetchers = self
            .fetchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        fetchers.retain(|leader, fetcher| match wanted.remove(leader) {
            Some(set) if !fetcher.task.is_finished() => {
                fetcher.partitions.send_if_modified(|current| {
                    let changed = !same(current, &set);
                    *current = set;
                    changed
                });
                true
            }
            _ => {
                fetcher.task.abort();
                false
            }
        });
        for (leader, set) in wanted {
            let (tx, rx) = watch::channel(set);
            let task = tokio::spawn(fetcher::run(self.context.clone(), leader, rx));
            fetchers.insert(
                leader,
                Fetcher {
                    partitions: tx,
                    task,
                },
            );
        }
    }

    pub fn stop(&self) {
        let mut fetchers = self
            .fetchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, f) in fetchers.drain() {
            f.task.abort();
        }
    }
}

fn same(a: &FollowSet, b: &FollowSet) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, fa), (kb, fb))| ka == kb && fa.leader_epoch == fb.leader_epoch)
}
