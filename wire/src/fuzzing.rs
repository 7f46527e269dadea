//! Fuzz targets for every decoder here that a stranger's bytes reach: request frames (framing,
//! header peek and decode, the body of any API key at any version kafka-protocol knows, and
//! the consumer protocol inside JoinGroup), responses (what brook's own client reads from a
//! peer), and record batches of every codec (validation, the timestamp fold of ListOffsets,
//! and the leader's in-place patches). Each target takes any bytes and must return without
//! panicking, hanging or allocating without bound. `fuzz/` runs them under libFuzzer (the
//! crate feature `fuzzing` makes this module public); the tests below run them over
//! `fuzz/corpus/` and seeded mutations in `cargo test`.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind};

use crate::{batch, consumer_protocol, frame, request, response};

/// The frame limit the request target splits its stream with: Kafka's default
/// `socket.request.max.bytes`.
const MAX_FRAME: usize = 100 << 20;

/// Bytes from a client: split into frames as the connection loop does, each decoded as a
/// request; input that yields no frame is decoded as one frame without its length prefix.
pub fn request(data: &[u8]) {
    let mut stream = BytesMut::from(data);
    let mut framed = false;
    while let Ok(Some(frame)) = frame::take_frame(&mut stream, MAX_FRAME) {
        framed = true;
        request_frame(frame);
    }
    if !framed {
        request_frame(Bytes::copy_from_slice(data));
    }
}

fn request_frame(frame: Bytes) {
    let _ = request::peek_header(&frame);
    let Ok((key, header, body)) = request::decode_header(frame) else {
        return;
    };
    // OffsetDelete reads the consumer protocol out of the metadata members joined with.
    if let Ok(RequestKind::JoinGroup(join)) =
        request::decode_body(key, header.request_api_version, body)
    {
        for protocol in &join.protocols {
            let _ = consumer_protocol::subscribed_topics(&protocol.metadata);
        }
    }
}

/// A response frame as brook's client reads one: the API key and version of the request it
/// answers (two big-endian i16), then the frame without its length prefix.
pub fn response(data: &[u8]) {
    let Some((&[k0, k1, v0, v1], frame)) = data.split_first_chunk::<4>() else {
        return;
    };
    let Ok(key) = ApiKey::try_from(i16::from_be_bytes([k0, k1])) else {
        return;
    };
    let version = i16::from_be_bytes([v0, v1]);
    let _ = response::decode_response(key, version, Bytes::copy_from_slice(frame));
}

/// A records blob from a producer (or a leader): a mode byte, then the blob. An odd mode byte
/// re-signs every batch's CRC first, so mutations reach the checks behind it. The blob is
/// validated as one batch and as several, each valid batch then fully validated, folded for
/// its timestamps and patched as a leader patches it.
pub fn record_batches(data: &[u8]) {
    let Some((&mode, blob)) = data.split_first() else {
        return;
    };
    let mut blob = blob.to_vec();
    if mode & 1 == 1 {
        batch::resign(&mut blob);
    }
    let _ = batch::validate_batch(&blob);
    let _ = batch::fold_timestamps(&blob, 0u64, |n, _, _| n.wrapping_add(1));
    let Ok(batches) = batch::validate_batches(&blob) else {
        return;
    };
    for (range, _) in batches {
        let Some(one) = blob.get_mut(range) else {
            continue;
        };
        let _ = batch::validate_batch(one);
        let _ = batch::fold_timestamps(one, i64::MIN, |max, _, t| max.max(t));
        let _ = batch::set_base_offset(one, i64::MAX);
        let _ = batch::set_partition_leader_epoch(one, -1);
        let _ = batch::set_log_append_time(one, i64::MIN);
    }
}

#[cfg(test)]
mod tests;
