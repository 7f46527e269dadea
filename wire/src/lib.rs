//! brook-wire: the Kafka wire format, without I/O.
//!
//! - [`frame`]: splits a byte stream into length-prefixed frames.
//! - [`request`]: peeks at and decodes request headers and bodies.
//! - [`response`]: encodes responses (and, for clients, requests) into frames; decodes responses.
//! - [`batch`]: inspects, validates (records included, as Kafka's log validator does, with
//!   decompression bounded) and patches v2 record batches in place.
//! - [`consumer_protocol`]: reads the topics out of a consumer group member's subscription.
//! - [`Error`]: the one error type every function here returns.

pub mod batch;
pub mod consumer_protocol;
mod error;
pub mod frame;
pub mod request;
pub mod response;

pub use error::Error;

/// Random and mutated input for every parser: errors are fine, panics are not.
#[cfg(test)]
mod fuzz {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::{
        ApiKey, ApiVersionsRequest, FindCoordinatorRequest, HeartbeatRequest, MetadataRequest,
        ProduceRequest, RequestHeader, RequestKind,
    };
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use crate::{batch, frame, request, response};

    /// xorshift64*: deterministic, so a failure reproduces.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            let len = self.below(max_len + 1);
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    fn all_batch_functions(bytes: &[u8]) {
        let _ = batch::parse_header(bytes);
        let _ = batch::validate_batches(bytes);
        let _ = batch::validate_batch(bytes);
        let _ = batch::record_timestamps(bytes);
        let mut copy = bytes.to_vec();
        let _ = batch::set_base_offset(&mut copy, i64::MAX);
        let _ = batch::set_partition_leader_epoch(&mut copy, -1);
        let _ = batch::set_log_append_time(&mut copy, i64::MIN);
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let mut input = rng.bytes(160);
            // Half the time, make the length fields plausible so parsing gets further.
            if rng.below(2) == 0 && input.len() >= 17 {
                let len = (input.len() - 12) as i32;
                input[8..12].copy_from_slice(&len.to_be_bytes());
                input[16] = 2;
            }
            let mut buf = BytesMut::from(&input[..]);
            while let Ok(Some(_)) = frame::take_frame(&mut buf, 64) {}
            let _ = request::peek_header(&input);
            if let Ok((key, header, body)) = request::decode_header(Bytes::from(input.clone())) {
                // Only bodies without arrays: kafka-protocol 0.18 pre-allocates arrays from the
                // wire count and aborts on absurd ones (see request::tests).
                if matches!(key, ApiKey::ApiVersions | ApiKey::Heartbeat) {
                    let _ = request::decode_body(key, header.request_api_version, body);
                }
            }
            all_batch_functions(&input);
        }
    }

    fn record_batch(compression: Compression, n: i64) -> BytesMut {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: None,
                value: Some(Bytes::from_static(b"some value bytes")),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf
    }

    #[test]
    fn mutated_batches_with_fixed_crc_never_panic() {
        let mut rng = Rng(42);
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for codec in codecs {
            let clean = record_batch(codec, 4);
            assert_eq!(batch::record_timestamps(&clean).unwrap().len(), 4);
            for _ in 0..2_000 {
                let mut bytes = clean.to_vec();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.next() as u8;
                }
                // Re-sign, so the CRC check does not stop the parsers early.
                let crc = crc32c::crc32c(&bytes[21..]);
                bytes[17..21].copy_from_slice(&crc.to_be_bytes());
                all_batch_functions(&bytes);
            }
        }
    }

    #[test]
    fn truncated_messages_never_panic() {
        let produce = ProduceRequest::default().with_topic_data(vec![
            kafka_protocol::messages::produce_request::TopicProduceData::default()
                .with_name(kafka_protocol::messages::TopicName::from(
                    kafka_protocol::protocol::StrBytes::from_static_str("t"),
                ))
                .with_partition_data(vec![
                    kafka_protocol::messages::produce_request::PartitionProduceData::default()
                        .with_records(Some(record_batch(Compression::Lz4, 3).freeze())),
                ]),
        ]);
        let requests: Vec<(ApiKey, i16, RequestKind)> = vec![
            (ApiKey::ApiVersions, 3, ApiVersionsRequest::default().into()),
            (
                ApiKey::Metadata,
                1,
                MetadataRequest::default()
                    .with_topics(Some(vec![Default::default()]))
                    .into(),
            ),
            (
                ApiKey::Metadata,
                12,
                MetadataRequest::default()
                    .with_topics(Some(vec![Default::default()]))
                    .into(),
            ),
            (ApiKey::Heartbeat, 4, HeartbeatRequest::default().into()),
            (
                ApiKey::FindCoordinator,
                4,
                FindCoordinatorRequest::default()
                    .with_coordinator_keys(vec![Default::default()])
                    .into(),
            ),
            (ApiKey::Produce, 9, produce.into()),
        ];
        for (key, version, body) in requests {
            let header = RequestHeader::default()
                .with_request_api_key(key as i16)
                .with_request_api_version(version)
                .with_correlation_id(1);
            let framed = response::encode_request(&header, &body).unwrap();
            let frame = framed.slice(4..);
            let (_, _, whole_body) = request::decode_header(frame.clone()).unwrap();
            assert_eq!(
                request::decode_body(key, version, whole_body).unwrap(),
                body
            );
            for len in 0..frame.len() {
                if let Ok((key, h, rest)) = request::decode_header(frame.slice(..len)) {
                    let _ = request::decode_body(key, h.request_api_version, rest);
                }
                let _ = response::decode_response(key, version, frame.slice(..len));
            }
        }
    }
}
