//! The three trees every partition shares, and the keys inside them.
//!
//! A partition is known inside the store by a compact id (a `u64` the directory hands out and
//! never reuses), so its keys are short, sort together, and a re-created topic (new topic id,
//! new partition id) can never see the old one's data. Every multi-byte number is big-endian
//! so sled's byte order is numeric order:
//!
//! - `brook/directory`: `p` + topic id + partition (sign bit flipped) -> partition id; `next_id`
//!   -> the next id to hand out; `format` -> [`FORMAT_VERSION`].
//! - `brook/meta`: partition id + tag [+ offset] -> the partition's bookkeeping (log start,
//!   high watermark, leader epochs, checkpoint, and per segment its header and producer
//!   snapshot).
//! - `brook/batches`: partition id + base offset -> one stored batch. A segment is the key
//!   range from its base offset to the next segment's.

use std::ops::Range;

use crate::Error;

/// Prefix of every tree name the partition data uses; `Store::open_tree` refuses it.
pub(crate) const RESERVED_TREES: &str = "brook/";
pub(crate) const DIRECTORY_TREE: &str = "brook/directory";
pub(crate) const META_TREE: &str = "brook/meta";
pub(crate) const BATCH_TREE: &str = "brook/batches";
/// Tree names of the earlier layout (a tree per segment), which this version does not read.
pub(crate) const OLD_LAYOUT_TREES: &str = "brook/p/";

/// The two trees a partition's log reads and writes, shared by every partition.
#[derive(Clone)]
pub(crate) struct Trees {
    pub meta: sled::Tree,
    pub batches: sled::Tree,
}

/// Directory keys.
pub(crate) const FORMAT: &[u8] = b"format";
pub(crate) const FORMAT_VERSION: u32 = 2;
pub(crate) const NEXT_ID: &[u8] = b"next_id";
const ENTRY: u8 = b'p';

/// Meta tags, one byte after the partition id.
pub(crate) const LOG_START: u8 = b'l';
pub(crate) const HIGH_WATERMARK: u8 = b'h';
pub(crate) const EPOCHS: u8 = b'e';
pub(crate) const CHECKPOINT: u8 = b'c';
/// + base offset: a segment's header (creation time and, once sealed, its stats).
pub(crate) const SEGMENT: u8 = b's';
/// + base offset: producer state as of a segment's base offset.
pub(crate) const SNAPSHOT: u8 = b'n';

/// A directory entry's key.
pub(crate) fn entry(topic_id: [u8; 16], partition: i32) -> [u8; 21] {
    let mut k = [0u8; 21];
    k[0] = ENTRY;
    k[1..17].copy_from_slice(&topic_id);
    // Flipping the sign bit makes byte order agree with numeric order for negative indexes.
    let bits = u32::from_be_bytes(partition.to_be_bytes());
    k[17..].copy_from_slice(&(bits ^ 0x8000_0000).to_be_bytes());
    k
}

/// Every directory entry starts with this.
pub(crate) fn entry_prefix() -> [u8; 1] {
    [ENTRY]
}

/// (topic id, partition) from a key made by [`entry`]; other keys give `None`.
pub(crate) fn parse_entry(key: &[u8]) -> Option<([u8; 16], i32)> {
    let (&tag, rest) = key.split_first()?;
    let (topic, partition) = rest.split_first_chunk::<16>()?;
    let partition: [u8; 4] = partition.try_into().ok()?;
    (tag == ENTRY).then(|| {
        let raw = u32::from_be_bytes(partition) ^ 0x8000_0000;
        (*topic, i32::from_be_bytes(raw.to_be_bytes()))
    })
}

/// A meta key without an offset.
pub(crate) fn meta(id: u64, tag: u8) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8] = tag;
    k
}

/// A meta key for one segment (header or snapshot).
pub(crate) fn meta_at(id: u64, tag: u8, offset: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[..9].copy_from_slice(&meta(id, tag));
    k[9..].copy_from_slice(&offset.to_be_bytes());
    k
}

/// The offset of a key made by [`meta_at`].
pub(crate) fn parse_meta_at(key: &[u8]) -> Result<u64, Error> {
    u64_at(key, 9, "segment meta")
}

/// A batch's key.
pub(crate) fn batch(id: u64, offset: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&offset.to_be_bytes());
    k
}

/// The base offset of a key made by [`batch`].
pub(crate) fn parse_batch(key: &[u8]) -> Result<u64, Error> {
    u64_at(key, 8, "batch")
}

/// The batch keys of offsets in `offsets` (an end of `u64::MAX` reaches the partition's last
/// batch: offsets never get there).
pub(crate) fn batches(id: u64, offsets: Range<u64>) -> Range<[u8; 16]> {
    batch(id, offsets.start)..batch(id, offsets.end)
}

/// The partition id every key of a partition starts with.
pub(crate) fn id_prefix(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// The partition id a meta or batch key starts with.
pub(crate) fn parse_id(key: &[u8]) -> Result<u64, Error> {
    u64_at(key, 0, "partition")
}

/// The big-endian number at `at` in a key of ours.
fn u64_at(key: &[u8], at: usize, kind: &str) -> Result<u64, Error> {
    key.get(at..)
        .and_then(|rest| rest.first_chunk::<8>())
        .map(|b| u64::from_be_bytes(*b))
        .ok_or_else(|| Error::Corrupt(format!("{kind} key of {} bytes", key.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_entries_round_trip_and_sort_numerically() {
        let id = [0xab; 16];
        for p in [i32::MIN, -1, 0, 1, 10, i32::MAX] {
            assert_eq!(parse_entry(&entry(id, p)), Some((id, p)));
        }
        assert!(entry(id, -1) < entry(id, 0));
        assert!(entry(id, 9) < entry(id, 10));
        assert_eq!(parse_entry(NEXT_ID), None);
        assert_eq!(parse_entry(FORMAT), None);
        assert!(entry(id, 0).starts_with(&entry_prefix()));
    }

    #[test]
    fn keys_of_one_partition_sort_together_in_offset_order() {
        assert!(batch(1, u64::MAX - 1) < batch(2, 0));
        assert!(batch(1, 255) < batch(1, 256));
        assert_eq!(parse_batch(&batch(3, 77)).unwrap(), 77);
        assert_eq!(parse_id(&batch(3, 77)).unwrap(), 3);
        assert_eq!(parse_meta_at(&meta_at(3, SEGMENT, 9)).unwrap(), 9);
        assert!(meta_at(3, SEGMENT, u64::MAX).starts_with(&id_prefix(3)));
        assert!(meta(3, CHECKPOINT).starts_with(&id_prefix(3)));
        let range = batches(5, 10..20);
        assert!(range.contains(&batch(5, 19)) && !range.contains(&batch(5, 20)));
    }
}
