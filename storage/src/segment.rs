//! A segment: the key range of the partition's batches from its base offset up to the next
//! segment's base, a header in the meta tree, and the stats the log keeps in memory for it
//! (size, time range, end offset) so rolls, retention and lookups need no scans.

use serde::{Deserialize, Serialize};

use crate::batch::Prefix;
use crate::keys;
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

/// A segment's header, kept in the meta tree under its base offset.
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

/// What the log keeps in memory per segment: a few dozen bytes.
pub(crate) struct Segment {
    pub base_offset: u64,
    pub created_ms: i64,
    pub stats: SegmentStats,
}

impl Segment {
    pub fn new(base_offset: u64, created_ms: i64) -> Segment {
        Segment {
            base_offset,
            created_ms,
            stats: SegmentStats::empty(base_offset),
        }
    }

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
}

/// One batch read back from the batch tree.
pub(crate) struct StoredBatch {
    pub base_offset: u64,
    pub prefix: Prefix,
    value: sled::IVec,
}

impl StoredBatch {
    pub fn decode(key: &[u8], value: sled::IVec) -> Result<StoredBatch, Error> {
        let base_offset = keys::parse_batch(key)?;
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

/// Where a scan stopped: the stats of the good prefix, the offset from which the range holds
/// no valid continuation (a gap or an undecodable entry), if any, and the first batch that
/// starts a segment of its own (base offset, append time), if the range holds one.
pub(crate) struct ScanOutcome {
    pub stats: SegmentStats,
    pub broken_at: Option<u64>,
    pub next_segment: Option<(u64, i64)>,
}

/// Batches a removal takes per sled batch: big enough that a segment usually goes in one
/// atomic step, small enough that removing a large one never builds a huge batch in memory.
const REMOVE_CHUNK: usize = 4096;

/// The batches of one partition with base offsets in `[start, end)`: a segment (`end` the next
/// segment's base, `u64::MAX` for the active one), or the whole partition.
#[derive(Clone, Copy)]
pub(crate) struct Span<'a> {
    pub tree: &'a sled::Tree,
    pub id: u64,
    pub start: u64,
    pub end: u64,
}

impl Span<'_> {
    fn keys(&self, from: u64) -> sled::Iter {
        self.tree
            .range(keys::batches(self.id, from.max(self.start)..self.end))
    }

    /// Batches with base offset >= `from`, in order.
    pub fn batches_from(&self, from: u64) -> impl Iterator<Item = Result<StoredBatch, Error>> {
        self.keys(from).map(|item| {
            item.map_err(Error::from)
                .and_then(|(k, v)| StoredBatch::decode(&k, v))
        })
    }

    /// The batch whose offsets include `offset`, if the span has one.
    pub fn batch_containing(&self, offset: u64) -> Result<Option<StoredBatch>, Error> {
        if offset < self.start {
            return Ok(None);
        }
        let upto = offset.saturating_add(1).min(self.end);
        let Some((k, v)) = self
            .tree
            .range(keys::batches(self.id, self.start..upto))
            .next_back()
            .transpose()?
        else {
            return Ok(None);
        };
        let batch = StoredBatch::decode(&k, v)?;
        Ok((batch.last_offset() >= offset).then_some(batch))
    }

    pub fn get(&self, base_offset: u64) -> Result<Option<StoredBatch>, Error> {
        let key = keys::batch(self.id, base_offset);
        match self.tree.get(key)? {
            Some(v) => StoredBatch::decode(&key, v).map(Some),
            None => Ok(None),
        }
    }

    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.keys(self.start).next().transpose()?.is_none())
    }

    /// The first base offset in the span.
    pub fn first_offset(&self) -> Result<Option<u64>, Error> {
        match self.keys(self.start).next().transpose()? {
            Some((k, _)) => keys::parse_batch(&k).map(Some),
            None => Ok(None),
        }
    }

    /// Extends `stats` (which must end at `from`) with the batches at and after `from`,
    /// checking that each starts where the previous one ended, and stopping before a batch
    /// marked as the start of another segment.
    pub fn scan(&self, mut stats: SegmentStats, from: u64) -> Result<ScanOutcome, Error> {
        let outcome = |stats, broken_at, next_segment| {
            Ok(ScanOutcome {
                stats,
                broken_at,
                next_segment,
            })
        };
        for item in self.keys(from) {
            let (k, v) = item?;
            let batch = match StoredBatch::decode(&k, v) {
                Ok(b) if b.base_offset == stats.end_offset => b,
                Ok(b) => {
                    tracing::warn!(
                        expected = stats.end_offset,
                        found = b.base_offset,
                        "gap in segment"
                    );
                    return outcome(stats, Some(stats.end_offset), None);
                }
                Err(e) => {
                    tracing::warn!(offset = stats.end_offset, error = %e, "undecodable batch");
                    return outcome(stats, Some(stats.end_offset), None);
                }
            };
            if batch.prefix.segment_start && batch.base_offset > self.start {
                let next = (batch.base_offset, batch.prefix.append_ms);
                return outcome(stats, None, Some(next));
            }
            stats.add(batch.base_offset, &batch.prefix, batch.raw().len());
        }
        outcome(stats, None, None)
    }

    /// Cheap check that sealed stats match the span: it starts at its base offset and its last
    /// batch ends where the stats say.
    pub fn stats_match(&self, stats: &SegmentStats) -> Result<bool, Error> {
        if stats.batch_count == 0 {
            return self.is_empty();
        }
        if self.first_offset()? != Some(self.start) {
            return Ok(false);
        }
        let Some((k, v)) = self
            .tree
            .range(keys::batches(self.id, self.start..self.end))
            .next_back()
            .transpose()?
        else {
            return Ok(false);
        };
        Ok(StoredBatch::decode(&k, v).is_ok_and(|last| last.end_offset() == stats.end_offset))
    }

    /// Removes every batch with base offset >= `from`, newest first, so a crash part-way
    /// still leaves a contiguous log.
    pub fn remove_from(&self, from: u64) -> Result<(), Error> {
        let range = keys::batches(self.id, from.max(self.start)..self.end);
        remove_keys(self.tree, range, Order::NewestFirst)
    }

    /// Removes every batch, oldest first, so a crash part-way leaves the newest batches,
    /// which still end where the next segment begins. For the front of the log.
    pub fn remove_oldest_first(&self) -> Result<(), Error> {
        let range = keys::batches(self.id, self.start..self.end);
        remove_keys(self.tree, range, Order::OldestFirst)
    }
}

/// Which end of a range a removal starts from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    OldestFirst,
    NewestFirst,
}

/// Removes every key in `range`, [`REMOVE_CHUNK`] keys per atomic sled batch.
pub(crate) fn remove_keys<K, R>(tree: &sled::Tree, range: R, order: Order) -> Result<(), Error>
where
    K: AsRef<[u8]>,
    R: std::ops::RangeBounds<K> + Clone,
{
    loop {
        let keys = tree.range(range.clone()).keys();
        let chunk: Vec<sled::IVec> = match order {
            Order::OldestFirst => keys.take(REMOVE_CHUNK).collect::<Result<_, _>>()?,
            Order::NewestFirst => keys.rev().take(REMOVE_CHUNK).collect::<Result<_, _>>()?,
        };
        if chunk.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for key in chunk {
            batch.remove(key);
        }
        tree.apply_batch(batch)?;
    }
}
