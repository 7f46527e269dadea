//! The Raft state machine: applies committed entries to the in-memory [`MetadataState`],
//! builds, stores and installs snapshots, and shares the image with readers.
//!
//! Durability follows openraft's usual shape, so that applying an entry costs in proportion to
//! the entry and never to the size of the state (which clients can grow: group records, offset
//! metadata). Applying touches memory only: the entry is already durable in the log (the log
//! store flushes before an entry may count toward a quorum, so before it can be committed or
//! applied). The image becomes durable through snapshots, which openraft builds by its snapshot
//! policy and purges the log behind. On start the store loads the current snapshot (the image
//! with the last applied log id and membership it includes) and openraft re-applies the
//! committed log after it, so a `kill -9` at any point loses nothing.
//!
//! A snapshot is the bincode encoding of [`StateMachineData`]; the current one is stored whole,
//! with its meta, under one key of the `snapshot` tree. A received snapshot is held in a
//! [`SnapshotBuffer`] and decoded within [`MAX_SNAPSHOT_BYTES`].

// The helpers here return openraft's `StorageError`, the error type of the storage traits.
#![allow(clippy::result_large_err)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bincode::Options;
use openraft::storage::RaftStateMachine;
use openraft::{AnyError, EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Mutex};

use crate::clock::StampClock;
use crate::command::{CommandOutput, CommandResult};
use crate::snapshot_buffer::{SnapshotBuffer, MAX_SNAPSHOT_BYTES};
use crate::state::MetadataState;
use crate::typ::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

/// The key of the current snapshot in the `snapshot` tree.
const CURRENT: &[u8] = b"current";
/// Where earlier versions kept a copy of the image, rewritten on every applied entry. The
/// snapshot and the log hold everything it did, so it is dropped on open.
const LEGACY_IMAGE_TREE: &str = "state_machine";

/// Everything the state machine holds; also the content of a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachineData {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub state: MetadataState,
}

impl StateMachineData {
    /// Apply one committed entry: a command to the image, or Raft's own entries to what the
    /// state machine tracks of them.
    fn apply(&mut self, entry: Entry) -> CommandResult {
        self.last_applied = Some(entry.log_id);
        match entry.payload {
            EntryPayload::Blank => {
                self.state.new_term();
                Ok(CommandOutput::Done)
            }
            EntryPayload::Normal(cmd) => {
                let reply = self.state.apply(&cmd);
                if let Err(rejection) = &reply {
                    tracing::debug!(log_id = %entry.log_id, %rejection, "command rejected");
                }
                reply
            }
            EntryPayload::Membership(m) => {
                self.last_membership = StoredMembership::new(Some(entry.log_id), m);
                Ok(CommandOutput::Done)
            }
        }
    }
}

/// A snapshot as kept in the `snapshot` tree.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    pub(crate) meta: SnapshotMeta,
    pub(crate) data: Vec<u8>,
}

impl StoredSnapshot {
    /// The image, last applied log id and membership the snapshot holds; the meta is
    /// authoritative for where the snapshot sits in the log.
    ///
    /// The bytes come from a peer: bincode reads them with a limit of [`MAX_SNAPSHOT_BYTES`]
    /// and otherwise as `bincode::deserialize` (fixed-width integers, trailing bytes allowed),
    /// the format `bincode::serialize` wrote.
    pub(crate) fn decode(&self) -> Result<StateMachineData, bincode::Error> {
        let mut data: StateMachineData = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .allow_trailing_bytes()
            .with_limit(MAX_SNAPSHOT_BYTES as u64)
            .deserialize(&self.data)?;
        data.last_applied = self.meta.last_log_id;
        data.last_membership = self.meta.last_membership.clone();
        Ok(data)
    }

    fn into_snapshot(self) -> Snapshot {
        Snapshot {
            meta: self.meta,
            snapshot: Box::new(SnapshotBuffer::new(self.data)),
        }
    }
}

struct Shared {
    data: RwLock<StateMachineData>,
    applied: watch::Sender<Option<LogId>>,
    /// `Some(last log id)` of the stored snapshot, `None` while there is none. Held while a
    /// snapshot is written: openraft builds snapshots in a task of their own, so a slow build
    /// could otherwise replace a newer snapshot installed meanwhile, and a restart would then
    /// need log entries the installation purged.
    stored: Mutex<Option<Option<LogId>>>,
    /// What this node stamps liveness with when it leads.
    stamps: StampClock,
}

impl Shared {
    fn read<R>(&self, f: impl FnOnce(&StateMachineData) -> R) -> R {
        // A poisoned lock only means a reader panicked; the data itself is whole because
        // writers replace it only after a complete apply.
        let guard = self.data.read().unwrap_or_else(|e| e.into_inner());
        f(&guard)
    }

    fn write<R>(&self, f: impl FnOnce(&mut StateMachineData) -> R) -> R {
        let mut guard = self.data.write().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }
}

/// A read-only view of the local metadata image, for answering Metadata requests. Cheap to
/// clone; always shows a state between two whole log entries.
#[derive(Clone)]
pub struct MetadataReader {
    shared: Arc<Shared>,
}

impl MetadataReader {
    /// Run `f` on the current image (under a read lock: keep `f` short and never await in it).
    pub fn read<R>(&self, f: impl FnOnce(&MetadataState) -> R) -> R {
        self.shared.read(|d| f(&d.state))
    }

    /// Like [`MetadataReader::read`], also passing the id of the last entry the image includes.
    pub fn read_applied<R>(&self, f: impl FnOnce(Option<LogId>, &MetadataState) -> R) -> R {
        self.shared.read(|d| f(d.last_applied, &d.state))
    }

    /// The time this node, as the Raft leader, stamps liveness commands with (see
    /// [`crate::clock`]): never behind the log's clock as applied here.
    pub fn stamp_ms(&self) -> u64 {
        let floor = self.read(MetadataState::clock_ms);
        self.shared.stamps.now_ms(floor)
    }

    /// A copy of the current image.
    pub fn state(&self) -> MetadataState {
        self.read(|s| s.clone())
    }

    /// The id of the last entry applied to the image.
    pub fn last_applied(&self) -> Option<LogId> {
        self.shared.read(|d| d.last_applied)
    }

    /// Be woken whenever entries were applied (the value is the last applied log id).
    pub fn subscribe(&self) -> watch::Receiver<Option<LogId>> {
        self.shared.applied.subscribe()
    }
}

/// The state machine store: the image in memory, snapshots in sled. Cloning shares everything
/// (the clone is also the snapshot builder).
#[derive(Clone)]
pub struct StateMachineStore {
    db: sled::Db,
    snapshots: sled::Tree,
    shared: Arc<Shared>,
    snapshot_seq: Arc<AtomicU64>,
    _alive: Arc<()>,
}

impl StateMachineStore {
    /// Open the store, starting from the current snapshot (openraft re-applies the log after
    /// it).
    pub(crate) fn new(db: &sled::Db, alive: Arc<()>) -> Result<Self, crate::Error> {
        db.drop_tree(LEGACY_IMAGE_TREE)?;
        let snapshots = db.open_tree("snapshot")?;
        let (data, stored) = match snapshots.get(CURRENT)? {
            Some(bytes) => {
                let snapshot: StoredSnapshot = bincode::deserialize(&bytes)?;
                (snapshot.decode()?, Some(snapshot.meta.last_log_id))
            }
            None => (StateMachineData::default(), None),
        };
        let (applied, _) = watch::channel(data.last_applied);
        Ok(StateMachineStore {
            db: db.clone(),
            snapshots,
            shared: Arc::new(Shared {
                data: RwLock::new(data),
                applied,
                stored: Mutex::new(stored),
                stamps: StampClock::new(),
            }),
            snapshot_seq: Arc::new(AtomicU64::new(0)),
            _alive: alive,
        })
    }

    /// A read-only view of the image that stays valid while Raft owns this store.
    pub fn reader(&self) -> MetadataReader {
        MetadataReader {
            shared: self.shared.clone(),
        }
    }

    fn notify(&self) {
        let last = self.shared.read(|d| d.last_applied);
        self.shared.applied.send_replace(last);
    }

    /// Make `snapshot` the current one, durably, unless a newer one is stored already (and
    /// `replace_newer` is false). Returns whether it was written.
    async fn store_snapshot(
        &self,
        snapshot: &StoredSnapshot,
        replace_newer: bool,
    ) -> Result<bool, StorageError> {
        let last = snapshot.meta.last_log_id;
        let mut stored = self.shared.stored.lock().await;
        if !replace_newer && stored.is_some_and(|s| s > last) {
            return Ok(false);
        }
        let failed = |e| StorageIOError::write_snapshot(Some(snapshot.meta.signature()), e);
        let bytes = bincode::serialize(snapshot).map_err(|e| failed(AnyError::new(&e)))?;
        self.snapshots
            .insert(CURRENT, bytes)
            .map_err(|e| failed(AnyError::new(&e)))?;
        // openraft purges the log behind a snapshot it was given: it must be on disk first.
        self.db
            .flush_async()
            .await
            .map_err(|e| failed(AnyError::new(&e)))?;
        *stored = Some(last);
        Ok(true)
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let (data, last_log_id, last_membership) = self.shared.read(|d| {
            (
                bincode::serialize(d),
                d.last_applied,
                d.last_membership.clone(),
            )
        });
        let data = data.map_err(|e| StorageIOError::read_state_machine(&e))?;
        let seq = self.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_log_id {
            Some(id) => format!("{}-{}-{seq}", id.leader_id, id.index),
            None => format!("--{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        };
        let stored = StoredSnapshot { meta, data };
        if self.store_snapshot(&stored, false).await? {
            tracing::info!(snapshot = %stored.meta.snapshot_id, "built metadata snapshot");
        } else {
            tracing::info!(
                snapshot = %stored.meta.snapshot_id,
                "built metadata snapshot is older than the stored one; not kept"
            );
        }
        Ok(stored.into_snapshot())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok(self
            .shared
            .read(|d| (d.last_applied, d.last_membership.clone())))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let replies = self
            .shared
            .write(|d| entries.into_iter().map(|entry| d.apply(entry)).collect());
        self.notify();
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotBuffer>, StorageError> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<SnapshotBuffer>,
    ) -> Result<(), StorageError> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        let decoded = stored
            .decode()
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        // Stored before the image is replaced: once this returns, openraft may purge the log
        // the old image would need.
        self.store_snapshot(&stored, true).await?;
        self.shared.write(|d| *d = decoded);
        tracing::info!(snapshot = %meta.snapshot_id, "installed metadata snapshot");
        self.notify();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let Some(bytes) = self
            .snapshots
            .get(CURRENT)
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
        else {
            return Ok(None);
        };
        let stored: StoredSnapshot =
            bincode::deserialize(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(stored.into_snapshot()))
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload};
    use tempfile::TempDir;

    use super::*;
    use crate::command::MetadataCommand;
    use crate::consumer_groups::{GroupRecord, MemberRecord};
    use crate::store::open_stores;

    fn entry(index: u64, cmd: MetadataCommand) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    /// Entries 1 and 2: broker 1 registers and stores a group whose record is `bytes` large.
    fn broker_with_a_large_group(bytes: usize) -> Vec<Entry> {
        let register = MetadataCommand::RegisterBroker {
            id: 1,
            host: "h".into(),
            port: 1,
            endpoints: Vec::new(),
            rack: None,
            epoch: 1,
            at_ms: 0,
        };
        let record = GroupRecord {
            generation: 1,
            members: vec![MemberRecord {
                member_id: "m".into(),
                subscription: vec![7; bytes],
                ..Default::default()
            }],
            ..Default::default()
        };
        // Registering broker 1 starts placement epoch 1, under which it coordinates every group.
        let store = MetadataCommand::StoreGroup {
            coordinator: 1,
            since: 1,
            group: "big".into(),
            record,
        };
        vec![entry(1, register), entry(2, store)]
    }

    fn heartbeats(from_index: u64, count: u64) -> Vec<Entry> {
        (from_index..from_index + count)
            .map(|i| entry(i, MetadataCommand::BrokerHeartbeat { id: 1, at_ms: i }))
            .collect()
    }

    async fn apply_one_by_one(sm: &mut StateMachineStore, entries: &[Entry]) {
        for e in entries {
            let reply = sm.apply([e.clone()]).await.unwrap();
            assert!(reply[0].is_ok(), "{e:?}: {reply:?}");
        }
    }

    /// Build a snapshot as openraft's snapshot policy would.
    /// Opens the stores of `path` again once the last handle is dropped: sled releases its
    /// directory lock only when its flusher thread has stopped, a moment later.
    fn reopen(path: &std::path::Path) -> (crate::LogStore, StateMachineStore) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match open_stores(path) {
                Ok(stores) => return stores,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err(e) => panic!("reopening the stores: {e}"),
            }
        }
    }

    async fn build(sm: &mut StateMachineStore) -> Snapshot {
        sm.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn applying_an_entry_costs_the_entry_not_the_state() {
        let dir = TempDir::new().unwrap();
        let (_log, mut sm) = open_stores(dir.path()).unwrap();
        apply_one_by_one(&mut sm, &broker_with_a_large_group(4 << 20)).await;
        sm.db.flush_async().await.unwrap();
        let before = sm.db.size_on_disk().unwrap();
        // Heartbeats are the most frequent entries; each one used to rewrite the whole image.
        apply_one_by_one(&mut sm, &heartbeats(3, 50)).await;
        sm.db.flush_async().await.unwrap();
        let grown = sm.db.size_on_disk().unwrap().saturating_sub(before);
        assert!(
            grown < 1 << 20,
            "50 heartbeats on a 4 MiB image grew the store by {grown} bytes"
        );
    }

    #[tokio::test]
    async fn a_reopened_store_starts_from_its_snapshot_and_replays_the_log() {
        let dir = TempDir::new().unwrap();
        let (log, mut sm) = open_stores(dir.path()).unwrap();
        apply_one_by_one(&mut sm, &broker_with_a_large_group(1 << 10)).await;
        let snapshot = build(&mut sm).await;
        let at_snapshot = sm.reader().state();
        // Entries after the snapshot live only in the log (here: in `tail`).
        let tail = heartbeats(3, 5);
        apply_one_by_one(&mut sm, &tail).await;
        let want = sm.reader().state();
        let want_applied = sm.applied_state().await.unwrap();
        assert_ne!(want, at_snapshot);
        drop((log, sm));

        let (_log, mut sm) = reopen(dir.path());
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, snapshot.meta.last_log_id);
        assert_eq!(applied.map(|l| l.index), Some(2));
        assert_eq!(membership, snapshot.meta.last_membership);
        assert_eq!(sm.reader().state(), at_snapshot);
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snapshot.meta);
        // What openraft does next: re-apply the committed log after the snapshot.
        apply_one_by_one(&mut sm, &tail).await;
        assert_eq!(sm.reader().state(), want);
        assert_eq!(sm.applied_state().await.unwrap(), want_applied);
    }

    #[tokio::test]
    async fn an_older_snapshot_never_replaces_a_newer_one() {
        let dir = TempDir::new().unwrap();
        let (_log, mut sm) = open_stores(dir.path()).unwrap();
        apply_one_by_one(&mut sm, &broker_with_a_large_group(1 << 10)).await;
        let older = build(&mut sm).await;
        apply_one_by_one(&mut sm, &heartbeats(3, 2)).await;
        let newer = build(&mut sm).await;
        // A build that read the image before the newer snapshot was stored finishes late.
        let late = StoredSnapshot {
            meta: older.meta.clone(),
            data: older.snapshot.into_inner(),
        };
        assert!(!sm.store_snapshot(&late, false).await.unwrap());
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, newer.meta);
        // An installed snapshot is authoritative, whatever its place in the log.
        assert!(sm.store_snapshot(&late, true).await.unwrap());
        let current = sm.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, older.meta);
    }
}
