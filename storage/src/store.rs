//! The node's database handle: opens partitions, lists and removes them, and owns the
//! group-commit flusher.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use crate::group_commit::GroupCommit;
use crate::keys::{self, TreeKind};
use crate::open_set::OpenSet;
use crate::partition::{LogConfig, PartitionLog};
use crate::Error;

/// Handle to the node's database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    commit: GroupCommit,
    open: Arc<OpenSet>,
}

impl Store {
    /// Opens (or creates) the database in `dir`. sled replays its log, so after a crash this
    /// sees a consistent prefix of the writes; each partition finishes its own recovery in
    /// [`Store::open_partition`]. Blocking: call it off the async runtime.
    pub fn open(dir: &Path) -> Result<Store, Error> {
        let db = sled::Config::new().path(dir).open()?;
        let commit = GroupCommit::start(db.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                commit,
                open: Arc::default(),
            }),
        })
    }

    /// Opens a partition's log, creating it if needed and recovering it after a crash.
    /// Blocking; costs a scan of the active segment's tail (at most a few MiB) plus a few point
    /// reads per segment. Fails with `AlreadyOpen` while another `PartitionLog` for it lives.
    pub fn open_partition(
        &self,
        topic_id: [u8; 16],
        partition: i32,
        config: LogConfig,
    ) -> Result<PartitionLog, Error> {
        let guard = self.inner.open.claim((topic_id, partition))?;
        PartitionLog::open(self.inner.db.clone(), topic_id, partition, config, guard)
    }

    /// Drops every tree of the partition (segments first, its meta tree last, so a crash
    /// part-way leaves something `partitions` still reports and a retry can finish).
    /// The caller drops its `PartitionLog` first.
    pub fn remove_partition(&self, topic_id: [u8; 16], partition: i32) -> Result<(), Error> {
        let mut segments = Vec::new();
        let mut meta = None;
        for name in self.inner.db.tree_names() {
            match keys::parse_tree_name(&name) {
                Some((t, p, TreeKind::Segment(base))) if (t, p) == (topic_id, partition) => {
                    segments.push((base, name));
                }
                Some((t, p, TreeKind::Meta)) if (t, p) == (topic_id, partition) => {
                    meta = Some(name);
                }
                _ => {}
            }
        }
        segments.sort();
        for (_, name) in segments.into_iter().rev() {
            self.inner.db.drop_tree(name)?;
        }
        if let Some(name) = meta {
            self.inner.db.drop_tree(name)?;
        }
        Ok(())
    }

    /// Every partition that has data on disk.
    pub fn partitions(&self) -> Result<Vec<([u8; 16], i32)>, Error> {
        let found: BTreeSet<([u8; 16], i32)> = self
            .inner
            .db
            .tree_names()
            .iter()
            .filter_map(|name| keys::parse_tree_name(name))
            .map(|(t, p, _)| (t, p))
            .collect();
        Ok(found.into_iter().collect())
    }

    /// A named tree for other node-local state. Names starting with `brook/p/` are reserved
    /// for partition data.
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree, Error> {
        if name.starts_with(keys::PARTITION_TREES) {
            return Err(Error::ReservedName(name.to_string()));
        }
        Ok(self.inner.db.open_tree(name)?)
    }

    /// Group commit: resolves once everything written before the call is durable. One flush
    /// serves every caller waiting when it starts; callers arriving during a flush wait for the
    /// next one. Never blocks; the future needs no particular runtime.
    pub fn flush(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.inner.commit.request()
    }

    /// (flushes done, flush requests served), for benchmarks and metrics.
    pub fn flush_stats(&self) -> (u64, u64) {
        self.inner.commit.stats()
    }
}
