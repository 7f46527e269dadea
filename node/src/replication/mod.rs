//! Partition replication, the node's side: which partitions this node follows and from whom
//! ([`Followers`], one [`fetcher`] task per leader), the leaders' in-sync set changes written
//! through Raft ([`isr`]), and moving leadership back to preferred replicas ([`preferred`]).
//!
//! The partition actors hold the replication state itself (`brook_actors::partition`); the
//! metadata in Raft decides who leads and who is in sync.

pub mod fetcher;
pub mod isr;
pub mod preferred;
pub mod serve;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use brook_actors::{PartitionHandle, PartitionKey};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::broker::Broker;

/// A partition this node follows.
#[derive(Clone)]
pub struct Followed {
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

/// The fetcher tasks of this node, one per leader it follows partitions of.
#[derive(Default)]
pub struct Followers {
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl Followers {
    /// Makes the fetchers follow exactly `wanted` (leader -> its partitions): starts tasks
    /// for new leaders, hands changed sets to running ones, stops the rest.
    pub fn set(&self, broker: &Arc<Broker>, mut wanted: BTreeMap<i32, FollowSet>) {
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
            let task = tokio::spawn(fetcher::run(broker.clone(), leader, rx));
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
