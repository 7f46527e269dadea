//! A leader refuses what Kafka's log validator refuses before the batch gets an offset, so a
//! bad batch leaves the log as it was and the next good batch lands where it would have. A
//! batch that got into a log before that check (copied by a follower, which trusts its leader)
//! makes ListOffsets by timestamp fail without inflating it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use brook_actors::*;
use brook_wire::batch::MAX_DECOMPRESSED_BYTES;
use brook_wire::Error as WireError;
use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Zstd};
use kafka_protocol::records::Compression;

mod common;
use common::*;

fn zstd(data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Zstd::compress(&mut out, |buf: &mut BytesMut| {
        buf.extend_from_slice(data);
        Ok(())
    })
    .unwrap();
    out.to_vec()
}

/// The hardening issue's three batches, each with the header the node's pre-check reads.
fn poison() -> Vec<(&'static str, BytesMut)> {
    let junk: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(151) ^ 0x5a).collect();
    let (plain, _) = batch(&["a", "b"]);
    let mut zipped = with_records(Compression::Zstd, 2, &zstd(&plain[61..]));
    for (at, value) in [(57, i32::MAX), (23, i32::MAX - 1)] {
        zipped[at..at + 4].copy_from_slice(&value.to_be_bytes());
    }
    let crc = crc32c::crc32c(&zipped[21..]);
    zipped[17..21].copy_from_slice(&crc.to_be_bytes());
    vec![
        (
            "zstd over random bytes",
            with_records(Compression::Zstd, 1, &junk),
        ),
        (
            "10 records of 0xFF",
            with_records(Compression::None, 10, &[0xff; 70]),
        ),
        ("2^31-1 compressed records", zipped),
    ]
}

#[tokio::test]
async fn a_leader_refuses_invalid_records_and_its_log_is_unchanged() {
    let leader = replica(1);
    lead(&leader, 1, 1, &[1], 1);
    let first = append(&leader, &["a", "b", "c"], Acks::Leader)
        .await
        .unwrap();
    assert_eq!(first.base_offset, 0);
    let before = read_all(&leader).await;
    let (_, template) = batch(&["x"]);
    for (what, bad) in poison() {
        // What the node read from the header; the actor must not take its word for it.
        let mut header = template;
        header.record_count = i32::from_be_bytes(bad[57..61].try_into().unwrap());
        header.last_offset_delta = header.record_count.wrapping_sub(1);
        header.attributes = i16::from_be_bytes(bad[21..23].try_into().unwrap());
        let refused = append_bytes(&leader, bad, header, Acks::Leader).await;
        assert!(
            matches!(refused, Err(PartitionError::Wire(_))),
            "{what}: {refused:?}"
        );
        assert_eq!(read_all(&leader).await, before, "{what}");
        let end = list_offset(&leader, OffsetQuery::Latest).await.unwrap();
        assert_eq!(end.offset, 3, "{what}");
    }
    let next = append(&leader, &["d"], Acks::Leader).await.unwrap();
    assert_eq!(next.base_offset, 3);
}

#[tokio::test]
async fn list_offsets_on_a_stored_bomb_fails_without_inflating_it() {
    // Zeros past the bound compress to a few kilobytes.
    let bomb = with_records(
        Compression::Zstd,
        1,
        &zstd(&vec![0u8; MAX_DECOMPRESSED_BYTES + (1 << 20)]),
    );
    assert!(bomb.len() < 64 << 10, "{} bytes", bomb.len());
    let replica = replica(2);
    follow(&replica, 1, 1);
    let at = copy(&replica, bomb.freeze(), 1, 1).await;
    assert_eq!(at.log_end, 1, "a follower keeps what its leader wrote");
    lead(&replica, 2, 2, &[2], 1);
    let answer = list_offset(&replica, OffsetQuery::Timestamp(0)).await;
    assert!(
        matches!(
            &answer,
            Err(PartitionError::Wire(WireError::InvalidRecord { reason, .. }))
                if reason.contains("decompress")
        ),
        "{answer:?}"
    );
}
