//! In-place patches the leader makes to a batch before storing it: its offset, its leader epoch
//! and, for LogAppendTime topics, its timestamps. The records are never touched, so a compressed
//! batch is stored exactly as the producer compressed it.

use super::header::{
    checked_header, truncated, ATTRIBUTES, BASE_OFFSET, BASE_TIMESTAMP, CRC, DELETE_HORIZON_BIT,
    LEADER_EPOCH, MAX_TIMESTAMP, TIMESTAMP_TYPE_BIT,
};
use crate::Error;

fn write(bytes: &mut [u8], at: usize, value: &[u8]) -> Result<(), Error> {
    let have = bytes.len();
    at.checked_add(value.len())
        .and_then(|end| bytes.get_mut(at..end))
        .ok_or_else(|| truncated(at.saturating_add(value.len()), have))?
        .copy_from_slice(value);
    Ok(())
}

/// Sets the base offset in place (outside the CRC, so no recomputation).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) -> Result<(), Error> {
    checked_header(batch)?;
    write(batch, BASE_OFFSET, &base_offset.to_be_bytes())
}

/// Sets the partition leader epoch in place (outside the CRC, so no recomputation).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) -> Result<(), Error> {
    checked_header(batch)?;
    write(batch, LEADER_EPOCH, &epoch.to_be_bytes())
}

/// For topics with `message.timestamp.type=LogAppendTime`: sets the timestamp-type bit,
/// max_timestamp and base_timestamp to `now_ms`, then recomputes the CRC over the batch.
///
/// Readers take every record's timestamp from max_timestamp in such batches; base_timestamp is
/// also set, as Kafka does when it rebuilds a batch, so naive readers (base + delta) are close.
/// It is left alone when the delete-horizon bit is set, because it then holds the horizon.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) -> Result<(), Error> {
    let (header, total) = checked_header(batch)?;
    let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
    write(batch, ATTRIBUTES, &attributes.to_be_bytes())?;
    write(batch, MAX_TIMESTAMP, &now_ms.to_be_bytes())?;
    if header.attributes & DELETE_HORIZON_BIT == 0 {
        write(batch, BASE_TIMESTAMP, &now_ms.to_be_bytes())?;
    }
    let crc = crc32c::crc32c(batch.get(ATTRIBUTES..total).unwrap_or_default());
    write(batch, CRC, &crc.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::fixtures::{batch, only_header, CODECS};
    use crate::batch::header::{parse_header, BATCH_OVERHEAD};
    use crate::batch::record_timestamps;

    #[test]
    fn patching_offset_and_epoch_keeps_the_crc_valid() {
        for codec in CODECS {
            let mut bytes = batch(codec);
            let crc = parse_header(&bytes).unwrap().crc;
            set_base_offset(&mut bytes, 1_234_567).unwrap();
            set_partition_leader_epoch(&mut bytes, 17).unwrap();
            let h = only_header(&bytes);
            assert_eq!(h.base_offset, 1_234_567);
            assert_eq!(h.partition_leader_epoch, 17);
            assert_eq!(h.last_offset(), 1_234_571);
            assert_eq!(h.crc, crc);
        }
        let mut short = vec![0u8; BATCH_OVERHEAD - 1];
        assert!(matches!(
            set_base_offset(&mut short, 1),
            Err(Error::Truncated { .. })
        ));
    }

    #[test]
    fn log_append_time_keeps_the_crc_valid() {
        for codec in CODECS {
            let mut bytes = batch(codec);
            set_base_offset(&mut bytes, 50).unwrap();
            set_log_append_time(&mut bytes, 99_999).unwrap();
            let h = only_header(&bytes);
            assert!(h.is_log_append_time());
            assert_eq!(h.compression(), codec as u8);
            assert_eq!((h.base_timestamp, h.max_timestamp), (99_999, 99_999));
            let expected: Vec<(i64, i64)> = (50..55).map(|o| (o, 99_999)).collect();
            assert_eq!(record_timestamps(&bytes).unwrap(), expected, "{codec:?}");
        }
    }
}
