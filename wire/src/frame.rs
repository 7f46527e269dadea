//! Kafka frames are a big-endian i32 length followed by that many bytes.

use bytes::{Buf, Bytes, BytesMut};

use crate::Error;

const LEN_PREFIX: usize = 4;

/// Takes one complete frame (without its 4-byte length prefix) off the front of `buf`;
/// `Ok(None)` if the frame is not complete yet, leaving `buf` untouched.
///
/// The length is checked as soon as its 4 bytes are in, so an absurd size is refused before we
/// wait for (and buffer) its body. Nothing is reserved for the body either: memory grows only
/// with the bytes the peer actually sends.
pub fn take_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Bytes>, Error> {
    let Some(prefix) = buf.first_chunk::<LEN_PREFIX>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(*prefix);
    let size = usize::try_from(len).map_err(|_| Error::NegativeFrameLength(len))?;
    if size > max {
        return Err(Error::FrameTooLarge { size, max });
    }
    if buf.len() - LEN_PREFIX < size {
        return Ok(None);
    }
    buf.advance(LEN_PREFIX);
    Ok(Some(buf.split_to(size).freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            out.extend_from_slice(&(p.len() as i32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn frames_split_at_every_byte_position() {
        let payloads: [&[u8]; 3] = [b"hello", b"", b"a longer frame body"];
        let wire = framed(&payloads);
        for split in 0..=wire.len() {
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for part in [&wire[..split], &wire[split..]] {
                buf.extend_from_slice(part);
                while let Some(frame) = take_frame(&mut buf, 1024).unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got, payloads, "split at {split}");
            assert!(buf.is_empty(), "split at {split}");
        }
    }

    #[test]
    fn byte_at_a_time_leaves_incomplete_frame_untouched() {
        let wire = framed(&[b"xyz"]);
        let mut buf = BytesMut::new();
        for &b in &wire[..wire.len() - 1] {
            buf.extend_from_slice(&[b]);
            let before = buf.clone();
            assert_eq!(take_frame(&mut buf, 1024).unwrap(), None);
            assert_eq!(buf, before);
        }
        buf.extend_from_slice(&wire[wire.len() - 1..]);
        assert_eq!(take_frame(&mut buf, 1024).unwrap().unwrap(), &b"xyz"[..]);
    }

    #[test]
    fn oversized_length_is_refused_before_the_body_arrives() {
        let mut buf = BytesMut::from(&1025i32.to_be_bytes()[..]);
        assert_eq!(
            take_frame(&mut buf, 1024),
            Err(Error::FrameTooLarge {
                size: 1025,
                max: 1024
            })
        );
        let mut buf = BytesMut::from(&i32::MAX.to_be_bytes()[..]);
        assert!(matches!(
            // Kafka's `socket.request.max.bytes` default.
            take_frame(&mut buf, 100 * 1024 * 1024),
            Err(Error::FrameTooLarge { .. })
        ));
        // Exactly at the limit is fine.
        let mut buf = BytesMut::from(&framed(&[&[7u8; 1024]])[..]);
        assert_eq!(take_frame(&mut buf, 1024).unwrap().unwrap().len(), 1024);
    }

    #[test]
    fn negative_length_is_an_error() {
        for len in [-1i32, i32::MIN] {
            let mut buf = BytesMut::from(&len.to_be_bytes()[..]);
            assert_eq!(
                take_frame(&mut buf, 1024),
                Err(Error::NegativeFrameLength(len))
            );
        }
    }
}
