//! A segment: one sled tree of batches keyed by base offset, plus the stats the log keeps in
//! memory for it (size, time range, end offset) so rolls, retention and lookups need no scans.

use serde::{Deserialize, Serialize};

use crate::batch::Prefix;
use crate::keys::{offset_key, parse_offset};
use crate::Error;

/// Running totals of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentStats {
    /// Raw batch bytes (without our prefix).
    pub size_bytes: u64,
    pub batch_count: u64,
    /// One past the last offset in the segment (== base offset when empty).
    pub end_offset: u64,
    /// -1 while empty.
    pub max_timestamp: i64,
    /// Base offset of the earliest batch holding `max_timestamp`.
    pub max_timestamp_offset: u64,
}

impl SegmentStats {
    pub fn empty(base_offset: u64) -> Self {
        SegmentStats {
            size_bytes: 0,
            batch_count: 0,
            end_offset: base_offset,
            max_timestamp: -1,
            max_timestamp_offset: base_offset,
        }
    }

    pub fn add(&mut self, base_offset: u64, prefix: &Prefix, raw_len: usize) {
        let ts = prefix.meta.max_timestamp;
        if self.batch_count == 0 || ts > self.max_timestamp {
            self.max_timestamp = ts;
            self.max_timestamp_offset = base_offset;
        }
        self.batch_count += 1;
        self.size_bytes += raw_len as u64;
        self.end_offset = prefix.meta.last_offset(base_offset) + 1;
    }
}

/// What the meta tree keeps per segment under `seg/<base>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SegmentMeta {
    /// Wall-clock time of the segment's first append; drives `segment_ms` rolls.
    pub created_ms: i64,
    /// Written when the segment is sealed (rolled), so recovery need not scan it.
    pub sealed: Option<SegmentStats>,
}

/// Public description of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentInfo {
    pub base_offset: u64,
    /// One past the segment's last offset.
    pub end_offset: u64,
    /// Raw batch bytes.
    pub size_bytes: u64,
    /// Wall-clock time of its first append (its creation time while empty).
    pub created_ms: i64,
    /// Largest batch max_timestamp, -1 when empty.
    pub max_timestamp: i64,
    pub batch_count: u64,
}

pub(crate) struct Segment {
    pub base_offset: u64,
    pub tree: sled::Tree,
    pub created_ms: i64,
    pub stats: SegmentStats,
}

/// One batch read back from a segment.
pub(crate) struct StoredBatch {
    pub base_offset: u64,
    pub prefix: Prefix,
    value: sled::IVec,
}

impl StoredBatch {
    pub fn decode(key: &[u8], value: sled::IVec) -> Result<StoredBatch, Error> {
        let base_offset = parse_offset(key)?;
        let (prefix, _) = Prefix::decode(&value)?;
        Ok(StoredBatch {
            base_offset,
            prefix,
            value,
        })
    }

    /// The raw batch bytes, without our prefix.
    pub fn raw(&self) -> &[u8] {
        self.value
            .get(crate::batch::PREFIX_LEN..)
            .unwrap_or_default()
    }

    pub fn last_offset(&self) -> u64 {
        self.prefix.meta.last_offset(self.base_offset)
    }

    pub fn end_offset(&self) -> u64 {
        self.last_offset() + 1
    }
}

/// Where a scan stopped: the stats of the good prefix, and the offset from which the tree holds
/// no valid continuation (a gap or an undecodable entry), if any.
pub(crate) struct ScanOutcome {
    pub stats: SegmentStats,
    pub broken_at: Option<u64>,
}

impl Segment {
    pub fn info(&self) -> SegmentInfo {
        SegmentInfo {
            base_offset: self.base_offset,
            end_offset: self.stats.end_offset,
            size_bytes: self.stats.size_bytes,
            created_ms: self.created_ms,
            max_timestamp: self.stats.max_timestamp,
            batch_count: self.stats.batch_count,
        }
    }

    /// Batches with base offset >= `from`, in order.
    pub fn batches_from(&self, from: u64) -> impl Iterator<Item = Result<StoredBatch, Error>> + '_ {
        self.tree.range(offset_key(from)..).map(|item| {
            item.map_err(Error::from)
                .and_then(|(k, v)| StoredBatch::decode(&k, v))
        })
    }

    /// The batch whose offsets include `offset`, if the segment has one.
    pub fn batch_containing(&self, offset: u64) -> Result<Option<StoredBatch>, Error> {
        let Some((k, v)) = self
            .tree
            .range(..=offset_key(offset))
            .next_back()
            .transpose()?
        else {
            return Ok(None);
        };
        let batch = StoredBatch::decode(&k, v)?;
        Ok((batch.last_offset() >= offset).then_some(batch))
    }

    pub fn get(&self, base_offset: u64) -> Result<Option<StoredBatch>, Error> {
        match self.tree.get(offset_key(base_offset))? {
            Some(v) => StoredBatch::decode(&offset_key(base_offset), v).map(Some),
            None => Ok(None),
        }
    }

    /// Extends `stats` (which must end at `from`) with the batches at and after `from`,
    /// checking that each starts where the previous one ended.
    pub fn scan(&self, mut stats: SegmentStats, from: u64) -> Result<ScanOutcome, Error> {
        for item in self.tree.range(offset_key(from)..) {
            let (k, v) = item?;
            let batch = match StoredBatch::decode(&k, v) {
                Ok(b) if b.base_offset == stats.end_offset => b,
                Ok(b) => {
                    tracing::warn!(
                        expected = stats.end_offset,
                        found = b.base_offset,
                        "gap in segment"
                    );
                    return Ok(ScanOutcome {
                        stats,
                        broken_at: Some(stats.end_offset),
                    });
                }
                Err(e) => {
                    tracing::warn!(offset = stats.end_offset, error = %e, "undecodable batch");
                    return Ok(ScanOutcome {
                        stats,
                        broken_at: Some(stats.end_offset),
                    });
                }
            };
            stats.add(batch.base_offset, &batch.prefix, batch.raw().len());
        }
        Ok(ScanOutcome {
            stats,
            broken_at: None,
        })
    }

    /// Cheap check that sealed stats match the tree: it starts at the base offset and its last
    /// batch ends where the stats say.
    pub fn stats_match(&self, stats: &SegmentStats) -> Result<bool, Error> {
        if stats.batch_count == 0 {
            return Ok(self.tree.is_empty());
        }
        let first = match self.tree.first()? {
            Some((k, _)) => parse_offset(&k)?,
            None => return Ok(false),
        };
        let Some((k, v)) = self.tree.last()? else {
            return Ok(false);
        };
        let last = match StoredBatch::decode(&k, v) {
            Ok(b) => b,
            Err(_) => return Ok(false),
        };
        Ok(first == self.base_offset && last.end_offset() == stats.end_offset)
    }

    /// Removes every batch with base offset >= `from`, newest first so a crash part-way still
    /// leaves a contiguous log.
    pub fn remove_from(&self, from: u64) -> Result<(), Error> {
        loop {
            let Some((k, _)) = self.tree.last()? else {
                return Ok(());
            };
            match parse_offset(&k) {
                Ok(offset) if offset < from => return Ok(()),
                _ => {
                    self.tree.remove(k)?;
                }
            }
        }
    }
}
