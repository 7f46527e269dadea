//! The group actors this node runs as coordinator: started on first use, spread over the
//! arbiters, unloaded when the group's coordinator moves elsewhere.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use actix::prelude::*;
use actix_rt::ArbiterHandle;
use tokio::sync::oneshot;

use crate::group::actor::{CoordinatorConfig, GroupActor};
use crate::group::messages::Unload;
use crate::group::store::GroupStore;
use crate::reply::send_asking;

pub struct GroupRegistry {
    store: Arc<dyn GroupStore>,
    config: CoordinatorConfig,
    arbiters: Vec<ArbiterHandle>,
    next: AtomicUsize,
    groups: Mutex<HashMap<String, Addr<GroupActor>>>,
}

impl GroupRegistry {
    pub fn new(
        store: Arc<dyn GroupStore>,
        arbiters: Vec<ArbiterHandle>,
        config: CoordinatorConfig,
    ) -> Self {
        GroupRegistry {
            store,
            config,
            arbiters,
            next: AtomicUsize::new(0),
            groups: Mutex::new(HashMap::new()),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Addr<GroupActor>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The group's actor, started (and loading its recorded state) if it is not running.
    /// None only if the actor system is gone.
    pub fn get_or_start(&self, group: &str) -> Option<Addr<GroupActor>> {
        let mut map = self.map();
        if let Some(addr) = map.get(group).filter(|a| a.connected()) {
            return Some(addr.clone());
        }
        let arbiter = self
            .arbiters
            .get(self.next.fetch_add(1, Ordering::Relaxed) % self.arbiters.len().max(1))?;
        let (id, store, config) = (group.to_owned(), self.store.clone(), self.config);
        let addr =
            GroupActor::start_in_arbiter(arbiter, move |_| GroupActor::new(id, store, config));
        map.insert(group.to_owned(), addr.clone());
        Some(addr)
    }

    /// The group's actor if it is running.
    pub fn get(&self, group: &str) -> Option<Addr<GroupActor>> {
        self.map().get(group).filter(|a| a.connected()).cloned()
    }

    /// Ids of the groups with a running actor.
    pub fn running(&self) -> Vec<String> {
        let mut map = self.map();
        map.retain(|_, a| a.connected());
        map.keys().cloned().collect()
    }

    /// Unload every group `keep` says this node no longer coordinates.
    pub fn unload_unless(&self, keep: impl Fn(&str) -> bool) {
        let mut map = self.map();
        map.retain(|group, addr| {
            if addr.connected() && keep(group) {
                return true;
            }
            addr.do_send(Unload);
            false
        });
    }

    /// Unload everything (the node is stopping).
    pub fn unload_all(&self) {
        self.unload_unless(|_| false);
    }
}

/// Send a message to a group actor and wait for its answer; None if the actor stopped first
/// (the group was unloaded or deleted, or its state could not be loaded).
pub async fn ask<M, T>(
    addr: &Addr<GroupActor>,
    make: impl FnOnce(oneshot::Sender<T>) -> M,
) -> Option<T>
where
    M: Message<Result = ()> + Send + 'static,
    GroupActor: Handler<M>,
    T: Send + 'static,
{
    send_asking(addr, make).await.ok()
}
