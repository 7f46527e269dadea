//! The partition directory: which partitions the store holds, and the compact id each one's
//! keys are filed under in the shared trees.
//!
//! Ids come from a persisted counter and are never reused. That is what makes removal cheap
//! and crash-safe: the directory entry goes first (one atomic write: the partition is gone,
//! and a re-created one gets a new id), then its keys; whatever a crash leaves behind belongs
//! to an id without an entry, and [`Directory::sweep`] removes it when the store opens.

use std::collections::HashSet;

use crate::keys;
use crate::segment::{remove_keys, Order};
use crate::Error;

pub(crate) struct Directory {
    tree: sled::Tree,
}

impl Directory {
    /// Opens the directory tree, refusing a store written in another format.
    pub fn open(db: &sled::Db) -> Result<Directory, Error> {
        let old = db
            .tree_names()
            .iter()
            .any(|name| name.starts_with(keys::OLD_LAYOUT_TREES.as_bytes()));
        if old {
            return Err(Error::UnsupportedFormat(
                "the one-tree-per-segment layout of earlier versions".into(),
            ));
        }
        let tree = db.open_tree(keys::DIRECTORY_TREE)?;
        let current = keys::FORMAT_VERSION.to_be_bytes();
        match tree.get(keys::FORMAT)? {
            Some(v) if v.as_ref() == current => {}
            Some(v) => {
                return Err(Error::UnsupportedFormat(format!("format {:?}", v.as_ref())));
            }
            None => {
                tree.insert(keys::FORMAT, &current)?;
            }
        }
        Ok(Directory { tree })
    }

    /// The partition's id, handing out a new one if it has none.
    pub fn id_or_assign(&self, topic_id: [u8; 16], partition: i32) -> Result<u64, Error> {
        let entry = keys::entry(topic_id, partition);
        if let Some(v) = self.tree.get(entry)? {
            return decode_id(&v);
        }
        // The counter moves before the entry is written: a crash in between only skips an id.
        let previous = self.tree.fetch_and_update(keys::NEXT_ID, |old| {
            let next = old.and_then(|v| decode_id(v).ok()).unwrap_or(1);
            Some(next.saturating_add(1).to_be_bytes().to_vec())
        })?;
        let id = match previous {
            Some(v) => decode_id(&v)?,
            None => 1,
        };
        self.tree.insert(entry, &id.to_be_bytes())?;
        Ok(id)
    }

    /// Removes the partition's entry and returns its id, if it had one.
    pub fn remove(&self, topic_id: [u8; 16], partition: i32) -> Result<Option<u64>, Error> {
        match self.tree.remove(keys::entry(topic_id, partition))? {
            Some(v) => decode_id(&v).map(Some),
            None => Ok(None),
        }
    }

    /// Every partition with an entry.
    pub fn partitions(&self) -> Result<Vec<([u8; 16], i32)>, Error> {
        let mut found = Vec::new();
        for key in self.tree.scan_prefix(keys::entry_prefix()).keys() {
            found.extend(keys::parse_entry(&key?));
        }
        Ok(found)
    }

    /// Removes, from each of `trees`, the keys of every id that has no entry (a removal or a
    /// creation a crash cut short). Costs one seek per id present in a tree.
    pub fn sweep(&self, trees: &[&sled::Tree]) -> Result<usize, Error> {
        let mut live = HashSet::new();
        for value in self.tree.scan_prefix(keys::entry_prefix()).values() {
            live.insert(decode_id(&value?)?);
        }
        let mut swept = 0;
        for tree in trees {
            let mut from = 0u64;
            while let Some(key) = tree.range(keys::id_prefix(from)..).keys().next() {
                let id = keys::parse_id(&key?)?;
                if !live.contains(&id) {
                    remove_all(tree, id)?;
                    swept += 1;
                }
                let Some(next) = id.checked_add(1) else { break };
                from = next;
            }
        }
        if swept > 0 {
            tracing::info!(
                swept,
                "removed the data of partitions removed before a crash"
            );
        }
        Ok(swept)
    }
}

/// Removes every key of partition `id` from `tree`.
pub(crate) fn remove_all(tree: &sled::Tree, id: u64) -> Result<(), Error> {
    let end = keys::id_prefix(id.saturating_add(1));
    remove_keys(tree, keys::id_prefix(id)..end, Order::NewestFirst)
}

fn decode_id(value: &[u8]) -> Result<u64, Error> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| Error::Corrupt(format!("partition id of {} bytes", value.len())))
}
