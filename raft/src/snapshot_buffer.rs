//! The bytes of a snapshot in memory, as openraft reads them to send a snapshot in chunks and
//! writes a received one chunk by chunk, with the bounds a peer's chunks must keep.
//!
//! openraft's chunked receiver seeks to each chunk's `offset` (chosen by the sender) and writes
//! its bytes there. Over a plain `Cursor<Vec<u8>>` a chunk at offset 2^40 grows the vector to a
//! terabyte and aborts the node, and endless chunks grow it without end. Here a seek may not
//! leave a hole (a sender writes its chunks in order and only ever resends one already
//! written), and the snapshot may not grow past [`MAX_SNAPSHOT_BYTES`], so what a peer can make
//! a node hold is bounded by the bytes it sent and by that limit.

use std::io::{self, Cursor, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

/// The largest snapshot a node sends or accepts: 1 GiB, far above any metadata image brook
/// builds (topics, placement, groups and committed offsets of a large cluster are megabytes),
/// and the bound on the bincode decoding of a received image.
pub const MAX_SNAPSHOT_BYTES: usize = 1 << 30;

/// A snapshot's bytes and a position in them; openraft's `SnapshotData`.
#[derive(Debug, Default)]
pub struct SnapshotBuffer {
    cursor: Cursor<Vec<u8>>,
}

impl SnapshotBuffer {
    pub fn new(bytes: Vec<u8>) -> Self {
        SnapshotBuffer {
            cursor: Cursor::new(bytes),
        }
    }

    /// The snapshot's bytes.
    pub fn into_inner(self) -> Vec<u8> {
        self.cursor.into_inner()
    }

    fn len(&self) -> u64 {
        self.cursor.get_ref().len() as u64
    }
}

fn refused(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, why)
}

impl AsyncRead for SnapshotBuffer {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.cursor).poll_read(cx, buf)
    }
}

impl AsyncSeek for SnapshotBuffer {
    /// Any position from the start to the end of the bytes written so far; past the end is
    /// refused (a chunk may be written again, never after a gap).
    fn start_seek(mut self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let len = self.len();
        let target = match position {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::End(delta) => len.checked_add_signed(delta),
            SeekFrom::Current(delta) => self.cursor.position().checked_add_signed(delta),
        };
        match target {
            Some(at) if at <= len => {
                self.cursor.set_position(at);
                Ok(())
            }
            _ => Err(refused(format!(
                "seek to {position:?} in a snapshot of {len} bytes"
            ))),
        }
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.cursor.position()))
    }
}

impl AsyncWrite for SnapshotBuffer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let end = self.cursor.position().saturating_add(buf.len() as u64);
        if end > MAX_SNAPSHOT_BYTES as u64 {
            return Poll::Ready(Err(refused(format!(
                "snapshot would grow to {end} bytes, over the limit of {MAX_SNAPSHOT_BYTES}"
            ))));
        }
        Pin::new(&mut self.cursor).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.cursor).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.cursor).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn chunks_in_order_and_resent_ones_build_the_snapshot() {
        let mut buf = SnapshotBuffer::default();
        buf.write_all(b"hello ").await.unwrap();
        buf.write_all(b"world").await.unwrap();
        // A chunk resent after a timeout lands where it was.
        buf.seek(SeekFrom::Start(6)).await.unwrap();
        buf.write_all(b"world").await.unwrap();
        buf.seek(SeekFrom::Start(0)).await.unwrap();
        let mut out = String::new();
        buf.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
        assert_eq!(buf.seek(SeekFrom::End(0)).await.unwrap(), 11);
        assert_eq!(buf.into_inner(), b"hello world");
    }

    /// A chunk at offset 2^40 used to grow the vector to a terabyte (an abort); now the seek
    /// is refused and nothing is allocated.
    #[tokio::test]
    async fn a_gap_or_an_absurd_offset_is_refused() {
        let mut buf = SnapshotBuffer::new(b"abc".to_vec());
        for at in [4, 1 << 40, u64::MAX] {
            assert!(buf.seek(SeekFrom::Start(at)).await.is_err(), "{at}");
        }
        assert!(buf.seek(SeekFrom::End(1)).await.is_err());
        assert!(
            buf.seek(SeekFrom::Current(-1)).await.is_err(),
            "before the start"
        );
        assert_eq!(buf.seek(SeekFrom::Current(2)).await.unwrap(), 2);
        assert_eq!(buf.seek(SeekFrom::End(0)).await.unwrap(), 3);
    }

    #[tokio::test]
    async fn growth_stops_at_the_limit() {
        let mut buf = SnapshotBuffer::default();
        // Only the position matters for the check: no gigabyte is needed to reach the limit.
        buf.cursor.set_position(MAX_SNAPSHOT_BYTES as u64);
        assert!(buf.write_all(b"x").await.is_err());
        assert!(buf.into_inner().is_empty());
    }
}
