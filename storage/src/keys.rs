//! Tree names and keys. Every partition tree is namespaced by topic id and partition, so a
//! re-created topic (new id) can never open the old one's data.

use crate::Error;

/// Prefix of every tree that belongs to a partition; `Store::open_tree` refuses it.
pub(crate) const PARTITION_TREES: &str = "brook/p/";

/// Keys in a partition's meta tree.
pub(crate) const LOG_START: &[u8] = b"log_start";
pub(crate) const HIGH_WATERMARK: &[u8] = b"high_watermark";
pub(crate) const EPOCHS: &[u8] = b"epochs";
pub(crate) const CHECKPOINT: &[u8] = b"checkpoint";
/// `seg/` + base offset: a segment's creation time and, once sealed, its stats.
pub(crate) const SEGMENT_META: &[u8] = b"seg/";
/// `snp/` + base offset: producer state as of a segment's base offset.
pub(crate) const SNAPSHOT: &[u8] = b"snp/";

/// What a partition tree holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TreeKind {
    Meta,
    Segment(u64),
}

/// `brook/p/<topic id hex>/<partition>/`; the trailing slash keeps partition 1 apart from 10.
pub(crate) fn partition_prefix(topic_id: [u8; 16], partition: i32) -> String {
    let mut s = String::with_capacity(PARTITION_TREES.len() + 32 + 12);
    s.push_str(PARTITION_TREES);
    for b in topic_id {
        s.push_str(&format!("{b:02x}"));
    }
    s.push_str(&format!("/{partition}/"));
    s
}

pub(crate) fn meta_tree(topic_id: [u8; 16], partition: i32) -> String {
    format!("{}meta", partition_prefix(topic_id, partition))
}

pub(crate) fn segment_tree(topic_id: [u8; 16], partition: i32, base_offset: u64) -> String {
    format!(
        "{}s/{base_offset:016x}",
        partition_prefix(topic_id, partition)
    )
}

/// Parses a tree name made by [`meta_tree`] or [`segment_tree`]; other names give `None`.
pub(crate) fn parse_tree_name(name: &[u8]) -> Option<([u8; 16], i32, TreeKind)> {
    let name = std::str::from_utf8(name).ok()?;
    let rest = name.strip_prefix(PARTITION_TREES)?;
    let (hex, rest) = rest.split_once('/')?;
    let (partition, rest) = rest.split_once('/')?;
    if hex.len() != 32 {
        return None;
    }
    let mut topic_id = [0u8; 16];
    for (i, b) in topic_id.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let partition: i32 = partition.parse().ok()?;
    let kind = if rest == "meta" {
        TreeKind::Meta
    } else {
        let base = rest.strip_prefix("s/")?;
        if base.len() != 16 {
            return None;
        }
        TreeKind::Segment(u64::from_str_radix(base, 16).ok()?)
    };
    Some((topic_id, partition, kind))
}

/// Batch key inside a segment tree: big-endian so sled's order is offset order.
pub(crate) fn offset_key(offset: u64) -> [u8; 8] {
    offset.to_be_bytes()
}

pub(crate) fn parse_offset(key: &[u8]) -> Result<u64, Error> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| Error::Corrupt(format!("offset key of {} bytes", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// A meta key made of a fixed tag and a big-endian offset.
pub(crate) fn tagged(tag: &[u8], offset: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(tag.len() + 8);
    k.extend_from_slice(tag);
    k.extend_from_slice(&offset.to_be_bytes());
    k
}

pub(crate) fn parse_tagged(tag: &[u8], key: &[u8]) -> Result<u64, Error> {
    let rest = key
        .strip_prefix(tag)
        .ok_or_else(|| Error::Corrupt("meta key without its tag".into()))?;
    parse_offset(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_names_round_trip() {
        let id = [0xab; 16];
        assert_eq!(
            parse_tree_name(meta_tree(id, 3).as_bytes()),
            Some((id, 3, TreeKind::Meta))
        );
        assert_eq!(
            parse_tree_name(segment_tree(id, -1, 77).as_bytes()),
            Some((id, -1, TreeKind::Segment(77)))
        );
        assert_eq!(parse_tree_name(b"brook.metadata"), None);
        assert_eq!(parse_tree_name(b"__sled__default"), None);
        assert!(!meta_tree(id, 10).starts_with(&partition_prefix(id, 1)));
    }
}
