//! The Raft state machine: applies committed entries to the [`MetadataState`], keeps a copy of
//! it in sled, builds and installs snapshots, and shares the image with readers.
//!
//! A snapshot is the bincode encoding of [`StateMachineData`]: the metadata image plus the last
//! applied log id and membership. The current snapshot is stored whole in the `snapshot` tree.

// The helpers here return openraft's `StorageError`, the error type of the storage traits.
#![allow(clippy::result_large_err)]

use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, StorageIOError};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::command::{CommandOutput, CommandResult};
use crate::state::MetadataState;
use crate::typ::{
    Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership, TypeConfig,
};

const STATE: &[u8] = b"state";
const CURRENT: &[u8] = b"current";

/// Everything the state machine holds; also the content of a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateMachineData {
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
    pub state: MetadataState,
}

/// A snapshot as kept in the `snapshot` tree.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    data: Vec<u8>,
}

struct Shared {
    data: RwLock<StateMachineData>,
    applied: watch::Sender<Option<LogId>>,
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

/// The sled-backed state machine store. Cloning shares everything (the clone is also the
/// snapshot builder).
#[derive(Clone)]
pub struct StateMachineStore {
    db: sled::Db,
    sm: sled::Tree,
    snapshots: sled::Tree,
    shared: Arc<Shared>,
    snapshot_seq: Arc<AtomicU64>,
    _alive: Arc<()>,
}

impl StateMachineStore {
    /// Open the store, loading the image last written to the `state_machine` tree.
    pub(crate) fn new(db: &sled::Db, alive: Arc<()>) -> Result<Self, crate::Error> {
        let sm = db.open_tree("state_machine")?;
        let snapshots = db.open_tree("snapshot")?;
        let data: StateMachineData = match sm.get(STATE)? {
            Some(bytes) => bincode::deserialize(&bytes)?,
            None => StateMachineData::default(),
        };
        let (applied, _) = watch::channel(data.last_applied);
        Ok(StateMachineStore {
            db: db.clone(),
            sm,
            snapshots,
            shared: Arc::new(Shared {
                data: RwLock::new(data),
                applied,
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

    /// Write the image to sled. Not flushed: after a crash, openraft re-applies the committed
    /// log from whatever `last_applied` survived.
    fn persist(&self) -> Result<(), StorageError> {
        let bytes = self
            .shared
            .read(bincode::serialize)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.sm
            .insert(STATE, bytes)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        Ok(())
    }

    fn notify(&self) {
        let last = self.shared.read(|d| d.last_applied);
        self.shared.applied.send_replace(last);
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
        let bytes =
            bincode::serialize(&stored).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        self.snapshots
            .insert(CURRENT, bytes)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        self.db
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        tracing::info!(snapshot = %stored.meta.snapshot_id, "built metadata snapshot");
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        })
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
        let replies = self.shared.write(|d| {
            let mut replies = Vec::new();
            for entry in entries {
                d.last_applied = Some(entry.log_id);
                let reply = match entry.payload {
                    EntryPayload::Blank => {
                        d.state.new_term();
                        Ok(CommandOutput::Done)
                    }
                    EntryPayload::Normal(cmd) => {
                        let reply = d.state.apply(&cmd);
                        if let Err(rejection) = &reply {
                            tracing::debug!(log_id = %entry.log_id, %rejection, "command rejected");
                        }
                        reply
                    }
                    EntryPayload::Membership(m) => {
                        d.last_membership = StoredMembership::new(Some(entry.log_id), m);
                        Ok(CommandOutput::Done)
                    }
                };
                replies.push(reply);
            }
            replies
        });
        self.persist()?;
        self.notify();
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        let mut decoded: StateMachineData = bincode::deserialize(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        // The meta is authoritative for where the snapshot sits in the log.
        decoded.last_applied = meta.last_log_id;
        decoded.last_membership = meta.last_membership.clone();
        self.shared.write(|d| *d = decoded);
        self.persist()?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let bytes = bincode::serialize(&stored)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.snapshots
            .insert(CURRENT, bytes)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        self.db
            .flush_async()
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
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
        Ok(Some(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data)),
        }))
    }
}
