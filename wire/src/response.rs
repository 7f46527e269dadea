//! Encoding whole frames (length prefix, header, body), and decoding responses on the client side.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::request::{check_version, checked_key};
use crate::Error;

/// Response header version for `api_key` at `version`.
///
/// ApiVersions responses always use v0 so that a client which sent a version we do not support
/// can still read our answer (KIP-511).
fn response_header_version(api_key: ApiKey, version: i16) -> i16 {
    if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    }
}

/// Writes the length prefix into the 4 bytes reserved at the start of `buf`.
fn finish_frame(mut buf: BytesMut) -> Result<Bytes, Error> {
    let len = i32::try_from(buf.len() - 4)
        .map_err(|_| Error::Encode(format!("frame of {} bytes is too large", buf.len() - 4)))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes a complete response frame: 4-byte length, response header (correlation id, plus empty
/// tagged fields when the header version is 1), body at `version`.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<Bytes, Error> {
    check_version(api_key, version)?;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, response_header_version(api_key, version))
        .map_err(|e| Error::Encode(format!("{api_key:?} response header: {e:#}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| Error::Encode(format!("{e:#}")))?;
    finish_frame(buf)
}

/// Encodes a complete request frame (for the admin CLI and tests acting as a client): 4-byte
/// length, header at `request_header_version`, body at the header's api version.
pub fn encode_request(header: &RequestHeader, body: &RequestKind) -> Result<Bytes, Error> {
    let version = header.request_api_version;
    let key = checked_key(header.request_api_key, version)?;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(version))
        .map_err(|e| Error::Encode(format!("{key:?} request header: {e:#}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| Error::Encode(format!("{e:#}")))?;
    finish_frame(buf)
}

/// Client side: decodes a response frame (without its length prefix) for a request that was
/// sent as `api_key` at `version`. Returns the correlation id and the body.
pub fn decode_response(
    api_key: ApiKey,
    version: i16,
    frame: Bytes,
) -> Result<(i32, ResponseKind), Error> {
    check_version(api_key, version)?;
    let mut rest = frame;
    let header = ResponseHeader::decode(&mut rest, response_header_version(api_key, version))
        .map_err(|e| Error::Malformed(format!("{api_key:?} response header: {e:#}")))?;
    let body = ResponseKind::decode(api_key, &mut rest, version)
        .map_err(|e| Error::Malformed(format!("{e:#}")))?;
    Ok((header.correlation_id, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::metadata_response::MetadataResponseBroker;
    use kafka_protocol::messages::{ApiVersionsResponse, BrokerId, MetadataResponse};
    use kafka_protocol::protocol::StrBytes;

    fn api_versions() -> ResponseKind {
        ResponseKind::ApiVersions(ApiVersionsResponse::default().with_api_keys(
            vec![ApiVersion::default()
                .with_api_key(ApiKey::Metadata as i16)
                .with_min_version(0)
                .with_max_version(12)],
        ))
    }

    fn metadata() -> ResponseKind {
        ResponseKind::Metadata(MetadataResponse::default().with_brokers(
            vec![MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("localhost"))
                .with_port(9092)],
        ))
    }

    /// Checks the length prefix and returns the frame without it.
    fn unframe(framed: Bytes) -> Bytes {
        let len = i32::from_be_bytes(framed[..4].try_into().unwrap());
        assert_eq!(len as usize, framed.len() - 4);
        framed.slice(4..)
    }

    #[test]
    fn api_versions_response_header_is_always_v0() {
        for version in [0, 3, 4] {
            let frame = unframe(
                encode_response(ApiKey::ApiVersions, version, 77, &api_versions()).unwrap(),
            );
            // v0 header: correlation id, then the body starts right away with the i16 error code;
            // a v1 header would put a 0 tagged-field count byte in between.
            assert_eq!(&frame[..4], &77i32.to_be_bytes());
            assert_eq!(&frame[4..6], &[0, 0]);
            let mut body = frame.slice(4..);
            let decoded = ApiVersionsResponse::decode(&mut body, version).unwrap();
            assert_eq!(decoded.api_keys.len(), 1, "v{version}");
            assert_eq!(
                decode_response(ApiKey::ApiVersions, version, frame).unwrap(),
                (77, api_versions())
            );
        }
    }

    #[test]
    fn metadata_response_header_v0_before_v9_and_v1_after() {
        let v8 = unframe(encode_response(ApiKey::Metadata, 8, 5, &metadata()).unwrap());
        let v9 = unframe(encode_response(ApiKey::Metadata, 9, 5, &metadata()).unwrap());
        assert_eq!(&v8[..4], &5i32.to_be_bytes());
        assert_eq!(&v9[..4], &5i32.to_be_bytes());
        // v8 body starts with throttle_time_ms; v9 has the empty tagged-fields byte first.
        assert_eq!(&v8[4..8], &[0, 0, 0, 0]);
        assert_eq!(v9[4], 0);
        let mut body = v9.slice(5..);
        let decoded = MetadataResponse::decode(&mut body, 9).unwrap();
        assert_eq!(decoded.brokers[0].port, 9092);
        for (version, frame) in [(8, v8), (9, v9)] {
            assert_eq!(
                decode_response(ApiKey::Metadata, version, frame).unwrap(),
                (5, metadata())
            );
        }
    }

    #[test]
    fn encode_rejects_bad_keys_and_versions() {
        assert!(matches!(
            encode_response(ApiKey::Metadata, 99, 1, &metadata()),
            Err(Error::UnsupportedVersion { .. })
        ));
        let header = RequestHeader::default().with_request_api_key(-5);
        let body = RequestKind::Metadata(Default::default());
        assert_eq!(
            encode_request(&header, &body),
            Err(Error::UnknownApiKey(-5))
        );
    }

    #[test]
    fn decode_response_rejects_garbage() {
        assert!(matches!(
            decode_response(ApiKey::Metadata, 12, Bytes::from_static(&[0, 0])),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            decode_response(
                ApiKey::Metadata,
                12,
                Bytes::from_static(&[0, 0, 0, 1, 0, 0, 0])
            ),
            Err(Error::Malformed(_))
        ));
    }
}
