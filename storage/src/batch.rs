//! What the log knows about a batch, and the small prefix stored in front of its raw bytes so
//! recovery, time lookups and producer-state replay never have to parse Kafka's format.

use crate::Error;

/// What the log needs to know about a batch; filled in by the caller from the batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// Records in the batch minus one.
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
    /// -1 = not idempotent.
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// -1 when not idempotent.
    pub base_sequence: i32,
    pub leader_epoch: i32,
}

impl BatchMeta {
    /// Sequence of the batch's last record; sequences wrap from i32::MAX to 0 like Kafka's.
    pub fn last_sequence(&self) -> i32 {
        add_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Offset of the last record for a batch placed at `base_offset`.
    pub(crate) fn last_offset(&self, base_offset: u64) -> u64 {
        base_offset.saturating_add(u64::try_from(self.last_offset_delta).unwrap_or(0))
    }
}

/// `seq + delta` with Kafka's wrap-around to 0 after i32::MAX.
pub(crate) fn add_sequence(seq: i32, delta: i32) -> i32 {
    let sum = i64::from(seq) + i64::from(delta);
    let wrapped = sum.rem_euclid(i64::from(i32::MAX) + 1);
    i32::try_from(wrapped).unwrap_or(0)
}

/// Version 2 came with the shared-tree layout and its flags byte.
const FORMAT_V2: u8 = 2;
/// The batch is the first of its segment.
const SEGMENT_START: u8 = 1;
/// version, flags, max_timestamp, last_offset_delta, producer_id, producer_epoch,
/// base_sequence, leader_epoch, append time.
pub(crate) const PREFIX_LEN: usize = 1 + 1 + 8 + 4 + 8 + 2 + 4 + 4 + 8;

/// One stored batch's prefix: the caller's metadata plus the wall-clock time of the append
/// (kept so producer-state expiry replays the same way after a restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    pub meta: BatchMeta,
    pub append_ms: i64,
    /// The first batch of its segment. Segment boundaries live in the segment headers; this
    /// copy in the data lets recovery find a boundary whose header was lost.
    pub segment_start: bool,
}

impl Prefix {
    /// Encodes the sled value for a batch: prefix, then the raw bytes.
    pub fn encode(&self, batch: &[u8]) -> Vec<u8> {
        let m = &self.meta;
        let mut out = Vec::with_capacity(PREFIX_LEN + batch.len());
        out.push(FORMAT_V2);
        out.push(if self.segment_start { SEGMENT_START } else { 0 });
        out.extend_from_slice(&m.max_timestamp.to_be_bytes());
        out.extend_from_slice(&m.last_offset_delta.to_be_bytes());
        out.extend_from_slice(&m.producer_id.to_be_bytes());
        out.extend_from_slice(&m.producer_epoch.to_be_bytes());
        out.extend_from_slice(&m.base_sequence.to_be_bytes());
        out.extend_from_slice(&m.leader_epoch.to_be_bytes());
        out.extend_from_slice(&self.append_ms.to_be_bytes());
        out.extend_from_slice(batch);
        out
    }

    /// Splits a stored value into its prefix and the raw batch bytes.
    pub fn decode(value: &[u8]) -> Result<(Prefix, &[u8]), Error> {
        if value.len() < PREFIX_LEN || value[0] != FORMAT_V2 {
            return Err(Error::Corrupt(format!(
                "stored batch of {} bytes has no valid prefix",
                value.len()
            )));
        }
        let flags = value[1];
        let mut r = Reader(&value[2..]);
        let max_timestamp = i64::from_be_bytes(r.take()?);
        let last_offset_delta = i32::from_be_bytes(r.take()?);
        let producer_id = i64::from_be_bytes(r.take()?);
        let producer_epoch = i16::from_be_bytes(r.take()?);
        let base_sequence = i32::from_be_bytes(r.take()?);
        let leader_epoch = i32::from_be_bytes(r.take()?);
        let append_ms = i64::from_be_bytes(r.take()?);
        if last_offset_delta < 0 {
            return Err(Error::Corrupt("negative last offset delta".into()));
        }
        let prefix = Prefix {
            meta: BatchMeta {
                last_offset_delta,
                max_timestamp,
                producer_id,
                producer_epoch,
                base_sequence,
                leader_epoch,
            },
            append_ms,
            segment_start: flags & SEGMENT_START != 0,
        };
        Ok((prefix, r.0))
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let (head, tail) = self
            .0
            .split_first_chunk::<N>()
            .ok_or_else(|| Error::Corrupt("short batch prefix".into()))?;
        self.0 = tail;
        Ok(*head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trips() {
        let prefix = Prefix {
            meta: BatchMeta {
                last_offset_delta: 4,
                max_timestamp: -7,
                producer_id: 99,
                producer_epoch: 3,
                base_sequence: 12,
                leader_epoch: 5,
            },
            append_ms: 1234,
            segment_start: true,
        };
        let value = prefix.encode(b"raw");
        let (back, raw) = Prefix::decode(&value).unwrap();
        assert_eq!(back, prefix);
        assert_eq!(raw, b"raw");
        assert!(Prefix::decode(&value[..PREFIX_LEN - 1]).is_err());
    }

    #[test]
    fn sequences_wrap() {
        assert_eq!(add_sequence(i32::MAX, 1), 0);
        assert_eq!(add_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(add_sequence(5, 2), 7);
    }
}
