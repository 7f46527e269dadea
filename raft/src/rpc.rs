//! The node-to-node wire format: frames of a big-endian `u32` length followed by that many
//! bytes of bincode, each carrying one [`RaftRequest`] or its [`RaftReply`].
//!
//! Frames are capped at [`TransportConfig::max_frame_bytes`] on both sides, and decoding is
//! bounded by the same limit, so a peer cannot make a node allocate more than that.

use std::time::Duration;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::command::MetadataCommand;
use crate::error::Error;
use crate::membership::JoinReply;
use crate::stream::Layer;
use crate::typ::{
    AppendEntriesRequest, AppendEntriesResponse, ClientWriteError, ClientWriteResponse,
    InstallSnapshotError, InstallSnapshotRequest, InstallSnapshotResponse, NodeId, RaftError,
    VoteRequest, VoteResponse,
};

/// Limits and timeouts of the Raft transport.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Largest frame (request or reply) in bytes; a larger one closes the connection. Must be
    /// well above openraft's `snapshot_max_chunk_size` (3 MiB by default).
    pub max_frame_bytes: usize,
    /// How long to wait for a TCP connection to a peer.
    pub connect_timeout: Duration,
    /// Upper bound for one RPC (openraft may ask for less).
    pub request_timeout: Duration,
    /// A server connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Connections the server keeps open at once; a new one beyond it closes the longest-idle.
    pub max_connections: usize,
    /// A layer around every connection (TLS), set up before the handshake.
    pub layer: Layer,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            max_frame_bytes: 16 * 1024 * 1024,
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_connections: 256,
            layer: Layer::default(),
        }
    }
}

/// A request from one node to another.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftRequest {
    AppendEntries(AppendEntriesRequest),
    Vote(VoteRequest),
    InstallSnapshot(InstallSnapshotRequest),
    /// A follower forwards a client's command to the node it believes is the leader.
    ClientWrite(MetadataCommand),
    /// A new node asks to be added to the group (see [`crate::membership`]).
    Join {
        id: NodeId,
        addr: String,
    },
    /// An operator's consent: make learner `id` a voter (KIP-853's AddRaftVoter).
    Promote {
        id: NodeId,
    },
    /// An operator's request: make voter `id` a learner again (KIP-853's RemoveRaftVoter).
    Demote {
        id: NodeId,
    },
}

/// The answer to a [`RaftRequest`], in the matching variant.
#[derive(Debug, Serialize, Deserialize)]
pub enum RaftReply {
    AppendEntries(Result<AppendEntriesResponse, RaftError>),
    Vote(Result<VoteResponse, RaftError>),
    InstallSnapshot(Result<InstallSnapshotResponse, RaftError<InstallSnapshotError>>),
    ClientWrite(Result<ClientWriteResponse, RaftError<ClientWriteError>>),
    Join(JoinReply),
}

fn codec(max: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .with_limit(max as u64)
}

/// Encode a message as a frame body, refusing one larger than `max`.
pub(crate) fn encode<T: Serialize>(msg: &T, max: usize) -> Result<Vec<u8>, Error> {
    let len = codec(usize::MAX).serialized_size(msg)? as usize;
    if len > max {
        return Err(Error::FrameTooLarge { len, max });
    }
    Ok(codec(max).serialize(msg)?)
}

pub(crate) fn decode<T: DeserializeOwned>(body: &[u8], max: usize) -> Result<T, Error> {
    Ok(codec(max).deserialize(body)?)
}

/// Write one frame.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
) -> Result<(), Error> {
    let len = u32::try_from(body.len()).map_err(|_| Error::FrameTooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    w.write_all(&len.to_be_bytes()).await?;
    w.write_all(body).await?;
    w.flush().await?;
    Ok(())
}

/// Read the length prefix of the next frame; `None` on a clean end of stream.
pub(crate) async fn read_frame_len<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<usize>, Error> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    frame_len(len, max).map(Some)
}

/// The body length a frame's 4-byte prefix announces, refused over `max` before anything is
/// read or allocated for the body.
pub(crate) fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, Error> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > max {
        return Err(Error::FrameTooLarge { len, max });
    }
    Ok(len)
}

/// Read a frame body whose length was read by [`read_frame_len`].
pub(crate) async fn read_frame_body<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
) -> Result<Vec<u8>, Error> {
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let req = RaftRequest::ClientWrite(MetadataCommand::DeleteTopic { name: "t".into() });
        let body = encode(&req, 1024).unwrap();
        let back: RaftRequest = decode(&body, 1024).unwrap();
        assert!(matches!(
            back,
            RaftRequest::ClientWrite(MetadataCommand::DeleteTopic { name }) if name == "t"
        ));
    }

    #[test]
    fn oversized_message_is_refused() {
        let req = RaftRequest::ClientWrite(MetadataCommand::DeleteTopic {
            name: "x".repeat(100),
        });
        assert!(matches!(
            encode(&req, 50),
            Err(Error::FrameTooLarge { max: 50, .. })
        ));
    }

    #[test]
    fn garbage_does_not_decode() {
        assert!(decode::<RaftRequest>(&[0xff; 16], 1024).is_err());
        // A length prefix claiming a huge string is stopped by the limit, not allocated.
        // ClientWrite(DeleteTopic { name }) with a name length of 2^64 - 1.
        let mut body = vec![3, 0, 0, 0, 3, 0, 0, 0];
        body.extend_from_slice(&[0xff; 8]);
        assert!(decode::<RaftRequest>(&body, 1024).is_err());
    }

    #[tokio::test]
    async fn frames_round_trip_and_cap() {
        let mut buf = Vec::new();
        write_frame(&mut buf, b"hello").await.unwrap();
        let mut r = &buf[..];
        let len = read_frame_len(&mut r, 10).await.unwrap().unwrap();
        assert_eq!(read_frame_body(&mut r, len).await.unwrap(), b"hello");
        assert!(read_frame_len(&mut r, 10).await.unwrap().is_none());
        let mut r = &buf[..];
        assert!(matches!(
            read_frame_len(&mut r, 4).await,
            Err(Error::FrameTooLarge { len: 5, max: 4 })
        ));
    }
}
