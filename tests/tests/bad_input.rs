//! Malformed or hostile input over a raw socket: the offending connection is closed or gets
//! the specific Kafka error code, and the node keeps serving everyone else (after each case a
//! real rdkafka client still produces and consumes on the same broker).

use std::net::Shutdown;
use std::time::Duration;

use anyhow::Result;
use brook_tests::*;
use bytes::Bytes;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, MetadataRequest};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{Compression, IEEE};

const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);

/// A second connection opened before the bad input still works afterwards.
fn assert_other_connection_works(other: &mut RawConn) {
    let response = other
        .call(
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("brook-tests"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .expect("an unrelated connection must keep working");
    assert_eq!(response.error_code, 0);
}

/// Opens a bystander connection, runs `bad` on a fresh connection, then checks the bystander
/// and a real client.
async fn with_bystander(
    broker: &Broker,
    bad: impl FnOnce(&mut RawConn) -> Result<()>,
) -> Result<()> {
    let mut bystander = RawConn::connect(broker.addr())?;
    assert_other_connection_works(&mut bystander);
    let mut conn = RawConn::connect(broker.addr())?;
    bad(&mut conn)?;
    assert_other_connection_works(&mut bystander);
    assert_healthy(broker).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_frame_then_close() -> Result<()> {
    let broker = Broker::start();
    with_bystander(&broker, |conn| {
        // Announces 100 bytes, sends 10, closes its write side.
        conn.write_raw(&[0, 0, 0, 100, 0, 18, 0, 3, 0, 0, 0, 1, 0, 0])?;
        conn.stream().shutdown(Shutdown::Write)?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_length_closes_the_connection() -> Result<()> {
    let broker = Broker::start();
    with_bystander(&broker, |conn| {
        conn.write_raw(&0x7fff_ffffi32.to_be_bytes())?;
        conn.write_raw(&[0, 18, 0, 3, 0, 0, 0, 1])?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await?;
    // Just above socket.request.max.bytes (100 MiB by default).
    with_bystander(&broker, |conn| {
        conn.write_raw(&(104_857_600i32 + 1).to_be_bytes())?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negative_length_closes_the_connection() -> Result<()> {
    let broker = Broker::start();
    for length in [-1i32, i32::MIN, -100] {
        with_bystander(&broker, |conn| {
            conn.write_raw(&length.to_be_bytes())?;
            conn.write_raw(&[0; 16])?;
            conn.expect_closed(CLOSE_TIMEOUT)
        })
        .await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_close_the_connection() -> Result<()> {
    let broker = Broker::start();
    // An HTTP request: its first four bytes read as a 1.1 GB length.
    with_bystander(&broker, |conn| {
        conn.write_raw(b"GET / HTTP/1.1\r\nHost: brook\r\n\r\n")?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await?;
    // A well-framed payload of pseudo-random bytes (api key 0x7f3c is no API).
    with_bystander(&broker, |conn| {
        let mut payload: Vec<u8> = (0..256u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        payload[0] = 0x7f;
        payload[1] = 0x3c;
        conn.send_frame(&payload)?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await?;
    // An empty frame: no request header at all.
    with_bystander(&broker, |conn| {
        conn.send_frame(&[])?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await?;
    // Metadata v1 whose client id claims 30,000 bytes in a 20-byte frame.
    with_bystander(&broker, |conn| {
        let mut payload = vec![0, 3, 0, 1, 0, 0, 0, 7];
        payload.extend_from_slice(&30_000i16.to_be_bytes());
        payload.extend_from_slice(b"short-body");
        conn.send_frame(&payload)?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_key_closes_the_connection() -> Result<()> {
    let broker = Broker::start();
    with_bystander(&broker, |conn| {
        conn.send_raw_request(9999, 0, &[])?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_metadata_version_closes_the_connection() -> Result<()> {
    let broker = Broker::start();
    with_bystander(&broker, |conn| {
        // A valid Metadata v1 body (all topics), under version 99.
        conn.send_raw_request(3, 99, &(-1i32).to_be_bytes())?;
        conn.expect_closed(CLOSE_TIMEOUT)
    })
    .await
}

/// KIP-511: ApiVersions at an unknown version answers UNSUPPORTED_VERSION with the supported
/// versions, in the v0 response format (header v0), and keeps the connection open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_v99_answers_unsupported_version_with_the_supported_list() -> Result<()> {
    let broker = Broker::start();
    with_bystander(&broker, |conn| {
        // Header v2 (as for ApiVersions v3+: a tagged-field byte after the client id), then a
        // v3-style body: compact client software name and version, no tagged fields.
        let mut body = vec![0u8, 12];
        body.extend_from_slice(b"brook-tests");
        body.extend_from_slice(&[2, b'1', 0]);
        let correlation = conn.send_raw_request(18, 99, &body)?;
        let mut frame = conn
            .read_frame()?
            .expect("ApiVersions v99 must be answered, not closed");
        assert!(frame.len() >= 4);
        let got_correlation = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
        assert_eq!(
            got_correlation, correlation,
            "response header v0 starts with the correlation id"
        );
        let mut body: Bytes = frame.split_off(4);
        let response = ApiVersionsResponse::decode(&mut body, 0)?;
        assert!(
            body.is_empty(),
            "{} bytes after a v0 ApiVersions body: not the v0 format (header v0, body v0)",
            body.len()
        );
        assert_eq!(
            response.error_code,
            codes::UNSUPPORTED_VERSION,
            "ApiVersions v99 error code"
        );
        let find = |key: i16| response.api_keys.iter().find(|a| a.api_key == key);
        for key in [0i16, 1, 2, 3, 18, 19, 20, 22, 32, 37, 60] {
            assert!(
                find(key).is_some(),
                "api key {key} missing from the supported list: {:?}",
                response.api_keys
            );
        }
        let api_versions = find(18).expect("ApiVersions listed");
        assert!(
            api_versions.min_version == 0 && api_versions.max_version >= 3,
            "ApiVersions range {api_versions:?}"
        );
        // The connection stays usable: the client retries with a version from the list.
        let retry = conn.call(0, &ApiVersionsRequest::default())?;
        assert_eq!(retry.error_code, 0, "ApiVersions v0 after the v99 attempt");
        let metadata = conn.call(1, &MetadataRequest::default().with_topics(Some(vec![])))?;
        assert_eq!(metadata.brokers.len(), 1, "Metadata on the same connection");
        Ok(())
    })
    .await
}

/// Produce of two partitions, one batch with a wrong CRC: that partition gets CORRUPT_MESSAGE
/// and nothing is appended to it, the other partition's batch is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_with_bad_crc_is_corrupt_message_for_that_partition() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "crc", 2, &[]).await?;
    with_bystander(&broker, |conn| {
        let good = record_batch(
            &[b"a", b"b", b"c"],
            2,
            NO_PRODUCER,
            -1,
            1_700_000_000_000,
            Compression::None,
        )?;
        let mut bad = good.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 0x55; // inside the last record, covered by the CRC
        let responses = produce_raw(conn, "crc", &[(0, Bytes::from(bad)), (1, good)])?;
        assert_eq!(
            responses[0].error_code,
            codes::CORRUPT_MESSAGE,
            "partition with the bad CRC: {:?}",
            responses[0]
        );
        assert_eq!(
            (responses[1].error_code, responses[1].base_offset),
            (0, 0),
            "partition with a good batch: {:?}",
            responses[1]
        );
        assert_eq!(
            list_offset(conn, "crc", 0, -1)?.1,
            0,
            "nothing appended to the corrupt partition"
        );
        assert_eq!(list_offset(conn, "crc", 1, -1)?.1, 3);
        Ok(())
    })
    .await
}

/// A magic 1 (pre-0.11) message set, built by hand: offset, size, CRC32, magic 1, attributes,
/// timestamp, key, value.
fn magic1_message_set(values: &[&[u8]]) -> Bytes {
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let mut message = vec![1u8, 0]; // magic, attributes
        message.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        message.extend_from_slice(&(-1i32).to_be_bytes()); // null key
        message.extend_from_slice(&(v.len() as i32).to_be_bytes());
        message.extend_from_slice(v);
        let crc = IEEE.checksum(&message);
        out.extend_from_slice(&(i as i64).to_be_bytes());
        out.extend_from_slice(&(message.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&message);
    }
    Bytes::from(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_of_magic_1_message_set_is_refused() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "legacy", 1, &[]).await?;
    with_bystander(&broker, |conn| {
        let responses = produce_raw(
            conn,
            "legacy",
            &[(0, magic1_message_set(&[b"old", b"format"]))],
        )?;
        let code = responses[0].error_code;
        assert!(
            [
                codes::CORRUPT_MESSAGE,
                codes::UNSUPPORTED_FOR_MESSAGE_FORMAT,
                codes::INVALID_RECORD
            ]
            .contains(&code),
            "magic 1 on Produce v{PRODUCE_VERSION}: error {code}, want 2, 43 or 87"
        );
        assert_eq!(list_offset(conn, "legacy", 0, -1)?.1, 0, "nothing appended");
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_to_unknown_topic_is_unknown_topic_or_partition() -> Result<()> {
    let broker = Broker::start();
    with_bystander(&broker, |conn| {
        let batch = record_batch(
            &[b"x"],
            2,
            NO_PRODUCER,
            -1,
            1_700_000_000_000,
            Compression::None,
        )?;
        let responses = produce_raw(conn, "no-such-topic", &[(0, batch)])?;
        assert_eq!(
            responses[0].error_code,
            codes::UNKNOWN_TOPIC_OR_PARTITION,
            "{:?}",
            responses[0]
        );
        Ok(())
    })
    .await?;
    // Produce does not auto-create the topic.
    let metadata = {
        let mut conn = RawConn::connect(broker.addr())?;
        conn.call(
            9,
            &MetadataRequest::default()
                .with_topics(None)
                .with_allow_auto_topic_creation(false),
        )?
    };
    assert!(
        metadata
            .topics
            .iter()
            .all(|t| t.name.as_ref().map(|n| n.0.as_str()) != Some("no-such-topic")),
        "Produce created the unknown topic"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_out_of_range_is_offset_out_of_range() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "range", 1, &[]).await?;
    let producer = producer(&broker, &[]);
    let messages: Vec<Msg> = (0..10).map(|i| Msg::value(format!("r{i}"))).collect();
    produce_all(&producer, "range", &messages).await?;
    with_bystander(&broker, |conn| {
        let data = fetch_raw(conn, "range", 0, 1000, 0)?;
        assert_eq!(
            data.error_code,
            codes::OFFSET_OUT_OF_RANGE,
            "fetch at 1000 of 10: {data:?}"
        );
        let data = fetch_raw(conn, "range", 0, 11, 0)?;
        assert_eq!(
            data.error_code,
            codes::OFFSET_OUT_OF_RANGE,
            "fetch at 11 of 10"
        );
        let data = fetch_raw(conn, "range", 0, -5, 0)?;
        assert_eq!(data.error_code, codes::OFFSET_OUT_OF_RANGE, "fetch at -5");
        // At the log end: no error, no records (long poll times out empty).
        let data = fetch_raw(conn, "range", 0, 10, 100)?;
        assert_eq!(data.error_code, 0, "fetch at the log end");
        assert_eq!(data.high_watermark, 10);
        assert!(decode_records(data.records.as_ref())?.is_empty());
        let data = fetch_raw(conn, "range", 0, 7, 0)?;
        let offsets: Vec<i64> = decode_records(data.records.as_ref())?
            .iter()
            .map(|r| r.offset)
            .filter(|o| *o >= 7)
            .collect();
        assert_eq!(offsets, vec![7, 8, 9]);
        Ok(())
    })
    .await
}

/// max.connections=8: eight connections are served; further ones are closed without an answer
/// while the eight keep working; once some close, new connections are accepted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_above_max_connections_are_refused() -> Result<()> {
    let broker = Broker::start_with(|o| {
        o.set("max.connections", 8);
    });
    let mut admitted = Vec::new();
    for i in 0..8 {
        let mut conn = RawConn::connect(broker.addr())?;
        let r = conn.call(0, &ApiVersionsRequest::default());
        assert!(
            matches!(r, Ok(ref v) if v.error_code == 0),
            "connection {i} of 8 not served: {r:?}"
        );
        admitted.push(conn);
    }
    let mut extras = Vec::new();
    for i in 0..8 {
        // The connect itself may succeed (the kernel accepts); the broker must close it.
        // A refused connect is fine too.
        if let Ok(mut conn) = RawConn::connect(broker.addr()) {
            let _ = conn.send_raw_request(18, 0, &[]);
            conn.expect_closed(CLOSE_TIMEOUT)
                .map_err(|e| anyhow::anyhow!("extra connection {i}: {e:#}"))?;
            extras.push(conn);
        }
    }
    for (i, conn) in admitted.iter_mut().enumerate() {
        let r = conn.call(1, &MetadataRequest::default().with_topics(None));
        assert!(r.is_ok(), "admitted connection {i} stopped working: {r:?}");
    }
    // Free the slots; new connections are served again (bounded poll: the broker
    // notices closed connections asynchronously).
    drop(extras);
    drop(admitted);
    let mut fresh = wait_for("a slot to free up", EVENTUALLY, || {
        let mut conn = RawConn::connect(broker.addr())?;
        Ok(conn
            .call(0, &ApiVersionsRequest::default())
            .ok()
            .map(|_| conn))
    })?;
    assert_eq!(fresh.call(0, &ApiVersionsRequest::default())?.error_code, 0);
    drop(fresh);
    assert_healthy(&broker).await;
    Ok(())
}
