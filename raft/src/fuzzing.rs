//! Fuzz targets for what a peer on the Raft port can make a node decode: RPC frames (bincode
//! of a [`RaftRequest`] or [`RaftReply`], within the frame limit) and snapshots (the chunks
//! openraft writes into a [`SnapshotBuffer`](crate::SnapshotBuffer), and the bincode image they add up to). Each
//! target takes any bytes and must return without panicking, hanging or allocating without
//! bound. `fuzz/` runs them under libFuzzer (the crate feature `fuzzing` makes this module
//! public); the tests below run them over `fuzz/corpus/` and seeded mutations in `cargo test`.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use openraft::network::snapshot_transport::Streaming;

use crate::rpc::{self, RaftReply, RaftRequest, TransportConfig};
use crate::state_machine::{StateMachineData, StoredSnapshot};
use crate::typ::{InstallSnapshotRequest, SnapshotMeta, TypeConfig};

/// One frame of the Raft port: its length prefix, and its bytes decoded as a request (what a
/// server reads) and as a reply (what a client reads).
pub fn rpc(data: &[u8]) {
    let max = TransportConfig::default().max_frame_bytes;
    if let Some(prefix) = data.first_chunk::<4>() {
        let _ = rpc::frame_len(*prefix, max);
    }
    let _ = rpc::decode::<RaftRequest>(data, max);
    let _ = rpc::decode::<RaftReply>(data, max);
}

/// Bytes of one chunk header in [`snapshot`]'s input: offset (u64), length (u16), done (u8).
const CHUNK_HEADER: usize = 11;

/// A received snapshot: `data` decoded as a snapshot image, then read as a stream of
/// InstallSnapshot chunks (each an [`CHUNK_HEADER`]-byte header and its bytes) fed to
/// openraft's receiver, and the image the chunks add up to decoded once one says it is done.
pub fn snapshot(data: &[u8]) {
    let _ = image(data.to_vec());
    let mut streaming = Streaming::<TypeConfig>::new("fuzz".into(), Box::default());
    let mut rest = data;
    while let Some((header, tail)) = rest.split_first_chunk::<CHUNK_HEADER>() {
        let (offset, header) = header.split_at(8);
        let offset = u64::from_be_bytes(offset.try_into().unwrap_or_default());
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let done = header[2] & 1 == 1;
        let (bytes, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        let chunk = InstallSnapshotRequest {
            vote: Default::default(),
            meta: SnapshotMeta::default(),
            offset,
            data: bytes.to_vec(),
            done,
        };
        // A refused chunk fails its RPC; the sender may go on with others, so do we.
        let _ = poll_once(streaming.receive(chunk));
        if done {
            let _ = image(streaming.into_snapshot_data().into_inner());
            return;
        }
    }
}

/// Decodes a snapshot image as `install_snapshot` does.
fn image(data: Vec<u8>) -> Result<StateMachineData, bincode::Error> {
    StoredSnapshot {
        meta: SnapshotMeta::default(),
        data,
    }
    .decode()
}

/// Polls `future` once: a [`SnapshotBuffer`](crate::SnapshotBuffer) never waits, so openraft's receiver completes.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

#[cfg(test)]
mod tests;
