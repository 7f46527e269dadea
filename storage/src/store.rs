//! The node's database handle: opens partitions, lists and removes them, and owns the
//! group-commit flusher.
//!
//! All partitions share three sled trees (see `keys`), so adding a partition writes a handful
//! of keys instead of creating trees: sled rewrites its registry of trees for every new tree,
//! which made partitions cost time and disk quadratic in their number.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use crate::directory::{self, Directory};
use crate::group_commit::GroupCommit;
use crate::keys::{self, Trees};
use crate::open_set::OpenSet;
use crate::partition::{LogConfig, PartitionLog};
use crate::Error;

/// How the database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// sled's I/O buffer ("segment") size, a power of two up to 16 MiB. sled writes any page
    /// bigger than a quarter of it to a blob file of its own, and a leaf page holds up to 16
    /// batches, so this decides which batch sizes cost files. Fixed when the store is
    /// created: sled refuses to open it with another value.
    pub io_buffer_bytes: usize,
    /// sled's page cache, one for the whole store.
    pub cache_bytes: u64,
}

impl Default for StoreConfig {
    /// 8 MiB buffers: batches up to about 128 KiB never cost a blob file (sled's default of
    /// 512 KiB wrote one per 16 KiB-batch leaf and more than one per 1 MiB batch; here a
    /// 1 MiB batch costs about a seventh of one), at the same throughput within the noise of
    /// `examples/partitions_bench`. A 256 MiB cache instead of sled's 1 GiB bounds what a
    /// busy store keeps resident.
    fn default() -> Self {
        StoreConfig {
            io_buffer_bytes: 8 << 20,
            cache_bytes: 256 << 20,
        }
    }
}

/// Handle to the node's database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub db: sled::Db,
    directory: Directory,
    pub trees: Trees,
    commit: GroupCommit,
    open: Arc<OpenSet>,
}

impl Store {
    /// Opens (or creates) the database in `dir` with the default [`StoreConfig`].
    pub fn open(dir: &Path) -> Result<Store, Error> {
        Store::open_with(dir, StoreConfig::default())
    }

    /// Opens (or creates) the database in `dir`. sled replays its log, so after a crash this
    /// sees a consistent prefix of the writes; the data of partitions whose removal a crash
    /// cut short is removed here, and each partition finishes its own recovery in
    /// [`Store::open_partition`]. Blocking: call it off the async runtime.
    pub fn open_with(dir: &Path, config: StoreConfig) -> Result<Store, Error> {
        let db = sled::Config::new()
            .path(dir)
            .segment_size(config.io_buffer_bytes)
            .cache_capacity(config.cache_bytes)
            .open()
            .map_err(|e| match e {
                // Other settings, a newer sled, or a store of earlier versions (which used
                // sled's default buffer size).
                sled::Error::Unsupported(why) => Error::UnsupportedFormat(format!(
                    "a database sled cannot open with these settings ({why})"
                )),
                e => Error::Sled(e),
            })?;
        let directory = Directory::open(&db)?;
        let trees = Trees {
            meta: db.open_tree(keys::META_TREE)?,
            batches: db.open_tree(keys::BATCH_TREE)?,
        };
        directory.sweep(&[&trees.batches, &trees.meta])?;
        let commit = GroupCommit::start(db.clone())?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                directory,
                trees,
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
        let id = self.inner.directory.id_or_assign(topic_id, partition)?;
        PartitionLog::open(self.inner.trees.clone(), id, partition, config, guard)
    }

    /// Removes the partition: its directory entry first (from then on it is gone, and opening
    /// it again starts an empty log under a new id), then its batches and meta keys, which a
    /// crash part-way leaves for the next [`Store::open`] to sweep. The caller drops its
    /// `PartitionLog` first (`AlreadyOpen` otherwise). Blocking, in proportion to the data.
    pub fn remove_partition(&self, topic_id: [u8; 16], partition: i32) -> Result<(), Error> {
        let _guard = self.inner.open.claim((topic_id, partition))?;
        if let Some(id) = self.inner.directory.remove(topic_id, partition)? {
            directory::remove_all(&self.inner.trees.batches, id)?;
            directory::remove_all(&self.inner.trees.meta, id)?;
        }
        Ok(())
    }

    /// Every partition the store holds (opened and not removed since).
    pub fn partitions(&self) -> Result<Vec<([u8; 16], i32)>, Error> {
        self.inner.directory.partitions()
    }

    /// A named tree for other node-local state. Names starting with `brook/` are reserved
    /// for partition data.
    pub fn open_tree(&self, name: &str) -> Result<sled::Tree, Error> {
        if name.starts_with(keys::RESERVED_TREES) {
            return Err(Error::ReservedName(name.to_string()));
        }
        Ok(self.inner.db.open_tree(name)?)
    }

    /// Group commit: resolves once everything written before the call is durable. One flush
    /// serves every caller waiting when it starts; callers arriving during a flush wait for the
    /// next one. Never blocks; the future needs no particular runtime. After a failed flush
    /// every later one fails too (sled takes no more writes after an I/O error).
    pub fn flush(&self) -> impl Future<Output = Result<(), Error>> + Send + 'static {
        self.inner.commit.request()
    }

    /// Whether a flush failed: the database takes no more writes (DescribeLogDirs reports its
    /// directory as KAFKA_STORAGE_ERROR).
    pub fn is_failed(&self) -> bool {
        self.inner.commit.failed()
    }

    /// (flushes done, flush requests served), for benchmarks and metrics.
    pub fn flush_stats(&self) -> (u64, u64) {
        self.inner.commit.stats()
    }

    #[cfg(test)]
    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// Test hook: the next flush fails as an I/O error would, and so does every later one.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn inject_flush_failure(&self) {
        self.inner.commit.inject_failure();
    }
}
