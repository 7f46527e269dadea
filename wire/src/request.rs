//! Request decoding: a cheap peek at the fixed header fields, then the full header, then the body.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::Error;

/// The first fields of every request header (api key i16, api version i16, correlation id i32),
/// read without decoding the rest, so the caller can answer or log even when the rest is garbage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPeek {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

/// Reads the fixed 8-byte start of a request header.
pub fn peek_header(frame: &[u8]) -> Result<HeaderPeek, Error> {
    let Some(&[k0, k1, v0, v1, c0, c1, c2, c3]) = frame.first_chunk::<8>() else {
        return Err(Error::Truncated {
            needed: 8,
            have: frame.len(),
        });
    };
    Ok(HeaderPeek {
        api_key: i16::from_be_bytes([k0, k1]),
        api_version: i16::from_be_bytes([v0, v1]),
        correlation_id: i32::from_be_bytes([c0, c1, c2, c3]),
    })
}

/// Resolves an API key and checks `version` against what kafka-protocol can decode.
pub(crate) fn checked_key(api_key: i16, version: i16) -> Result<ApiKey, Error> {
    let key = ApiKey::try_from(api_key).map_err(|()| Error::UnknownApiKey(api_key))?;
    check_version(key, version)?;
    Ok(key)
}

pub(crate) fn check_version(api_key: ApiKey, version: i16) -> Result<(), Error> {
    let range = api_key.valid_versions();
    if version < range.min || version > range.max {
        return Err(Error::UnsupportedVersion { api_key, version });
    }
    Ok(())
}

/// Decodes the request header at `api_key.request_header_version(version)` and returns it with
/// the remaining body bytes (a zero-copy slice of `frame`).
pub fn decode_header(frame: Bytes) -> Result<(ApiKey, RequestHeader, Bytes), Error> {
    let peek = peek_header(&frame)?;
    let key = checked_key(peek.api_key, peek.api_version)?;
    let mut rest = frame;
    let header = RequestHeader::decode(&mut rest, key.request_header_version(peek.api_version))
        .map_err(|e| Error::Malformed(format!("{key:?} request header: {e:#}")))?;
    Ok((key, header, rest))
}

/// Decodes a request body at `version`.
///
/// Trailing bytes after the body are ignored, as Kafka does.
pub fn decode_body(api_key: ApiKey, version: i16, body: Bytes) -> Result<RequestKind, Error> {
    check_version(api_key, version)?;
    let mut body = body;
    RequestKind::decode(api_key, &mut body, version).map_err(|e| Error::Malformed(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::encode_request;
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    /// `encode_request` output minus the 4-byte length prefix.
    fn frame_of(header: &RequestHeader, body: &RequestKind) -> Bytes {
        let mut framed = encode_request(header, body).unwrap();
        let len = i32::from_be_bytes(framed[..4].try_into().unwrap());
        assert_eq!(len as usize, framed.len() - 4);
        framed.split_off(4)
    }

    fn header(key: ApiKey, version: i16, correlation_id: i32) -> RequestHeader {
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("test-client")))
    }

    #[test]
    fn decodes_api_versions_v3() {
        let body = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("brook-test"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let frame = frame_of(
            &header(ApiKey::ApiVersions, 3, 42),
            &RequestKind::ApiVersions(body.clone()),
        );
        assert_eq!(
            peek_header(&frame).unwrap(),
            HeaderPeek {
                api_key: 18,
                api_version: 3,
                correlation_id: 42
            }
        );
        let (key, hdr, rest) = decode_header(frame).unwrap();
        assert_eq!(key, ApiKey::ApiVersions);
        assert_eq!(hdr.correlation_id, 42);
        assert_eq!(hdr.client_id.as_deref(), Some("test-client"));
        match decode_body(key, 3, rest).unwrap() {
            RequestKind::ApiVersions(got) => assert_eq!(got, body),
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn decodes_metadata_v12() {
        let body = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("orders"))))]))
            .with_allow_auto_topic_creation(false)
            .with_include_topic_authorized_operations(true);
        let frame = frame_of(
            &header(ApiKey::Metadata, 12, 7),
            &RequestKind::Metadata(body.clone()),
        );
        let (key, hdr, rest) = decode_header(frame).unwrap();
        assert_eq!(
            (key, hdr.request_api_version, hdr.correlation_id),
            (ApiKey::Metadata, 12, 7)
        );
        match decode_body(key, 12, rest).unwrap() {
            RequestKind::Metadata(got) => {
                assert_eq!(got, body);
                let topics = got.topics.unwrap();
                assert_eq!(topics[0].name.as_deref().map(|n| &**n), Some("orders"));
            }
            other => panic!("decoded as {other:?}"),
        }
    }

    #[test]
    fn unknown_key_and_unsupported_version() {
        let mut frame = vec![0x7f, 0x00, 0, 1, 0, 0, 0, 9];
        frame.extend_from_slice(&[0xff, 0xff]); // null client id
        assert_eq!(
            decode_header(Bytes::from(frame.clone())),
            Err(Error::UnknownApiKey(0x7f00))
        );
        // The peek still works, so the caller can log the correlation id.
        assert_eq!(peek_header(&frame).unwrap().correlation_id, 9);

        frame[..4].copy_from_slice(&[0, 3, 0x40, 0]); // Metadata v16384
        assert_eq!(
            decode_header(Bytes::from(frame)),
            Err(Error::UnsupportedVersion {
                api_key: ApiKey::Metadata,
                version: 0x4000
            })
        );
        assert!(matches!(
            decode_body(ApiKey::Metadata, -1, Bytes::new()),
            Err(Error::UnsupportedVersion { .. })
        ));
    }

    /// Unpatched kafka-protocol 0.18 sizes `Vec::with_capacity` from the array count on the wire,
    /// so this 4-byte Metadata v0 body asked for ~150 GB and aborted the process. brook builds
    /// against a patched copy (third_party/README.md); this test fails (aborts) without it.
    #[test]
    fn absurd_array_count_is_an_error_not_an_abort() {
        let body = Bytes::from_static(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(matches!(
            decode_body(ApiKey::Metadata, 0, body),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn absurd_compact_array_count_is_an_error_not_an_abort() {
        // Metadata v12: topics is a compact array; 0xffffffff0f is the varint 2^32 - 1.
        let body = Bytes::from_static(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(
            decode_body(ApiKey::Metadata, 12, body),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn short_and_garbage_input() {
        assert_eq!(
            peek_header(&[0, 18, 0]),
            Err(Error::Truncated { needed: 8, have: 3 })
        );
        // Valid peek, but the client id length runs past the end.
        let frame = Bytes::from_static(&[0, 18, 0, 3, 0, 0, 0, 1, 0, 50, b'x']);
        assert!(matches!(decode_header(frame), Err(Error::Malformed(_))));
        // A Metadata v12 body cut short.
        assert!(matches!(
            decode_body(ApiKey::Metadata, 12, Bytes::from_static(&[5])),
            Err(Error::Malformed(_))
        ));
    }
}
