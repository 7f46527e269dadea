//! Opening the Raft storage: one sled database per node holding the log store's trees (`logs`,
//! `meta`) and the state machine's snapshot (`snapshot`); the image itself lives in memory.

use std::path::Path;
use std::sync::Arc;

use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;

/// Open (or create) the Raft storage at `path`.
///
/// sled locks the directory while any handle is open. Both stores share a liveness token, so
/// whoever stops Raft can wait until openraft's tasks dropped every clone (and with them the
/// lock) before opening the directory again.
pub fn open_stores(path: &Path) -> Result<(LogStore, StateMachineStore), crate::Error> {
    let db = sled::Config::new().path(path).open()?;
    let alive = Arc::new(());
    Ok((
        LogStore::new(&db, alive.clone())?,
        StateMachineStore::new(&db, alive)?,
    ))
}

#[cfg(test)]
mod tests {
    use openraft::testing::{StoreBuilder, Suite};
    use tempfile::TempDir;

    use super::*;
    use crate::typ::{StorageError, TypeConfig};

    struct SledBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for SledBuilder {
        async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
            let dir = TempDir::new().map_err(|e| openraft::StorageIOError::write(&e))?;
            let (log, sm) =
                open_stores(dir.path()).map_err(|e| openraft::StorageIOError::write(&e))?;
            Ok((dir, log, sm))
        }
    }

    /// openraft's storage conformance suite. It builds its own runtimes, so this is a plain test.
    #[test]
    fn openraft_storage_suite() {
        Suite::test_all(SledBuilder).unwrap();
    }
}
