//! Real Kafka clients round-trip data through brook: librdkafka (the `rdkafka` crate) with every
//! compression codec, keys, headers, null keys and values, messages from 0 B to 1 MiB; and
//! `kcat` producing and consuming, its output checked line by line.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{ensure, Result};
use brook_tests::*;
use bytes::Buf;
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];
const ONE_MIB: usize = 1024 * 1024;

/// Message `g` of the mixed workload: mostly small, some medium, a few up to 1 MiB; some null
/// keys, null values, empty values, headers with null and empty values; a third of them left
/// to the partitioner.
fn mixed_message(g: usize, codec: &str, rng: &mut StdRng, partitions: i32) -> Msg {
    let size = match rng.random_range(0..10_000u32) {
        0..10 => rng.random_range(64 * 1024..=ONE_MIB),
        10..900 => rng.random_range(256..16 * 1024),
        _ => rng.random_range(0..256),
    };
    // Every codec gets one message of exactly 1 MiB.
    let size = if g % 20_000 == 17 { ONE_MIB } else { size };
    let mut value = Vec::with_capacity(size);
    let random_prefix = size.min(512);
    value.extend((0..random_prefix).map(|_| rng.random::<u8>()));
    value.extend((random_prefix..size).map(|j| b"brook-mixed-payload:"[(j + g) % 20]));
    let mut m = Msg {
        value: (!g.is_multiple_of(11)).then_some(value),
        key: (!g.is_multiple_of(7)).then(|| format!("key-{g}-{}", "k".repeat(g % 40)).into_bytes()),
        ..Msg::default()
    };
    if !g.is_multiple_of(5) {
        m = m
            .header("codec", Some(codec.as_bytes()))
            .header("idx", Some(g.to_string().as_bytes()));
        if g.is_multiple_of(13) {
            m = m
                .header("null-header", None)
                .header("empty-header", Some(b""));
        }
    }
    if !g.is_multiple_of(3) {
        m = m.partition((g % partitions as usize) as i32);
    }
    m
}

/// Compression codecs of every complete batch stored in a partition, read with raw Fetch.
fn stored_codecs(broker: &Broker, topic: &str, partition: i32) -> Result<BTreeSet<String>> {
    let mut conn = RawConn::connect(broker.addr())?;
    let mut codecs = BTreeSet::new();
    let mut next = 0;
    loop {
        let data = fetch_raw(&mut conn, topic, partition, next, 100)?;
        ensure!(data.error_code == 0, "fetch error {}", data.error_code);
        let mut buf = data.records.clone().unwrap_or_default();
        while buf.remaining() >= 12 {
            let total = 12 + i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
            if buf.remaining() < total {
                break;
            }
            let mut batch = buf.split_to(total);
            for info in RecordBatchDecoder::decode_batch_info(&mut batch)? {
                codecs.insert(
                    match info.compression {
                        Compression::None => "none",
                        Compression::Gzip => "gzip",
                        Compression::Snappy => "snappy",
                        Compression::Lz4 => "lz4",
                        Compression::Zstd => "zstd",
                    }
                    .to_string(),
                );
                next = info.min_offset + info.record_count as i64;
            }
        }
        if next >= data.high_watermark {
            return Ok(codecs);
        }
    }
}

/// 100,000 messages (about 150 MB, 0 B to 1 MiB, every codec, keys, headers, nulls) across four
/// partitions come back complete, in order per partition, at the offsets the delivery reports
/// gave, with the same key, value and headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_round_trips_100k_mixed_messages_with_every_codec() -> Result<()> {
    let broker = Broker::start();
    const PARTITIONS: i32 = 4;
    const PER_CODEC: usize = 20_000;
    create_topic(
        &broker,
        "mixed",
        PARTITIONS,
        &[("max.message.bytes", "4194304")],
    )
    .await?;

    let mut rng = StdRng::seed_from_u64(0xb700c);
    let mut sent: Vec<Msg> = Vec::with_capacity(PER_CODEC * CODECS.len());
    let mut delivered: Vec<Delivered> = Vec::with_capacity(PER_CODEC * CODECS.len());
    for (c, codec) in CODECS.iter().enumerate() {
        let messages: Vec<Msg> = (0..PER_CODEC)
            .map(|i| mixed_message(c * PER_CODEC + i, codec, &mut rng, PARTITIONS))
            .collect();
        let producer = producer(
            &broker,
            &[
                ("compression.type", codec),
                ("message.max.bytes", "4194304"),
                ("linger.ms", "5"),
                ("acks", if c % 2 == 0 { "all" } else { "1" }),
            ],
        );
        let d = produce_all(&producer, "mixed", &messages).await?;
        sent.extend(messages);
        delivered.extend(d);
    }
    let total_bytes: usize = sent
        .iter()
        .map(|m| m.value.as_ref().map_or(0, |v| v.len()))
        .sum();
    assert!(
        total_bytes > 80_000_000,
        "workload too small: {total_bytes} B"
    );
    eprintln!(
        "produced {} messages, {total_bytes} value bytes",
        sent.len()
    );

    // Delivery reports: every partition's offsets are exactly 0..n, in production order.
    let mut by_partition: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    for (m, d) in sent.iter().zip(&delivered) {
        if let Some(p) = m.partition {
            assert_eq!(
                d.partition, p,
                "message for partition {p} was delivered to {}",
                d.partition
            );
        }
        by_partition.entry(d.partition).or_default().push(d.offset);
    }
    for (p, offsets) in &by_partition {
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert!(
            offsets == &expected,
            "partition {p}: delivery-report offsets are not 0..{} in production order",
            offsets.len()
        );
    }

    let expected: HashMap<Delivered, &Msg> = delivered.iter().copied().zip(sent.iter()).collect();
    let received = consume_all(&broker, "mixed")?;
    assert_eq!(
        received.len(),
        sent.len(),
        "consumed a different number of messages than produced"
    );
    let mut last: HashMap<i32, i64> = HashMap::new();
    for r in &received {
        let previous = last.insert(r.partition, r.offset).unwrap_or(-1);
        assert_eq!(
            r.offset,
            previous + 1,
            "partition {}: offset {} follows {previous}",
            r.partition,
            r.offset
        );
        let m = expected
            .get(&Delivered {
                partition: r.partition,
                offset: r.offset,
            })
            .unwrap_or_else(|| {
                panic!(
                    "consumed {}@{} which no delivery report named",
                    r.partition, r.offset
                )
            });
        if r.content() != m.content() {
            panic!(
                "{}@{}: key {:?} / value {:?} B / headers {:?} read back, wrote key {:?} / value {:?} B / headers {:?}",
                r.partition,
                r.offset,
                r.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
                r.value.as_ref().map(|v| v.len()),
                r.headers,
                m.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
                m.value.as_ref().map(|v| v.len()),
                m.headers,
            );
        }
    }

    // The batches are stored as the producer compressed them (compression.type=producer), so
    // every codec really went over the wire and back. librdkafka silently sends a codec's
    // batches uncompressed when the broker's ApiVersions does not enable that codec's feature
    // (rdkafka_feature.c: LZ4 requires FindCoordinator to be advertised, ZSTD Produce v7).
    let mut codecs = BTreeSet::new();
    for p in 0..PARTITIONS {
        codecs.extend(stored_codecs(&broker, "mixed", p)?);
    }
    let all: BTreeSet<String> = CODECS.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        codecs, all,
        "codecs of the stored batches (a missing codec was never used by librdkafka)"
    );
    Ok(())
}

fn kcat_lines(output: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(output)
        .lines()
        .map(|l| l.to_string())
        .collect()
}

/// kcat produces with every codec (keys with -K, headers with -H) and kcat reads it back
/// (-C -e with a format printing partition, offset, key, value and headers); rdkafka reads the
/// same data; kcat reads from an offset and relative to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_produces_and_consumes_with_every_codec() -> Result<()> {
    let broker = Broker::start();
    const PARTITIONS: i32 = 3;
    const PER_RUN: usize = 1_000;
    create_topic(&broker, "kcat", PARTITIONS, &[]).await?;

    // expected[p] = (key, value, codec) in the order written to partition p.
    let mut expected: Vec<Vec<(String, String, &str)>> = vec![Vec::new(); PARTITIONS as usize];
    for (c, codec) in CODECS.iter().enumerate() {
        for p in 0..PARTITIONS {
            let mut input = String::new();
            let mut lines = Vec::new();
            for i in 0..PER_RUN {
                let key = format!("key-{codec}-{p}-{i}");
                let value = format!("value-{codec}-{p}-{i}-{}", "x".repeat((i * 37 + c) % 3000));
                input.push_str(&format!("{key}\t{value}\n"));
                lines.push((key, value, *codec));
            }
            let topic_partition = p.to_string();
            let header = format!("codec={codec}");
            kcat(
                &broker,
                &[
                    "-P",
                    "-t",
                    "kcat",
                    "-p",
                    &topic_partition,
                    "-z",
                    codec,
                    "-K",
                    "\\t",
                    "-H",
                    &header,
                    "-H",
                    "source=kcat",
                ],
                input.as_bytes(),
            )?;
            expected[p as usize].extend(lines);
        }
    }

    // kcat reads everything back.
    let out = kcat(
        &broker,
        &[
            "-C",
            "-t",
            "kcat",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%p\t%o\t%k\t%s\t%h\n",
        ],
        b"",
    )?;
    let lines = kcat_lines(&out);
    assert_eq!(
        lines.len(),
        PER_RUN * CODECS.len() * PARTITIONS as usize,
        "kcat consumed line count"
    );
    let mut seen: Vec<Vec<(i64, String, String, String)>> = vec![Vec::new(); PARTITIONS as usize];
    for line in &lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 5, "kcat line {line:?}");
        let p: usize = fields[0].parse()?;
        seen[p].push((
            fields[1].parse()?,
            fields[2].to_string(),
            fields[3].to_string(),
            fields[4].to_string(),
        ));
    }
    for p in 0..PARTITIONS as usize {
        assert_eq!(
            seen[p].len(),
            expected[p].len(),
            "partition {p}: kcat read {} of {}",
            seen[p].len(),
            expected[p].len()
        );
        for (i, ((offset, key, value, headers), (ekey, evalue, codec))) in
            seen[p].iter().zip(&expected[p]).enumerate()
        {
            assert_eq!(
                *offset, i as i64,
                "partition {p}: kcat printed offset {offset} at position {i}"
            );
            assert_eq!(
                (key, value),
                (ekey, evalue),
                "partition {p} offset {offset}"
            );
            assert_eq!(
                headers,
                &format!("codec={codec},source=kcat"),
                "partition {p} offset {offset} headers"
            );
        }
    }

    // rdkafka reads kcat's messages, headers included.
    let received = consume_all(&broker, "kcat")?;
    assert_eq!(received.len(), lines.len());
    for r in &received {
        let (key, value, codec) = &expected[r.partition as usize][r.offset as usize];
        assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
        assert_eq!(r.value.as_deref(), Some(value.as_bytes()));
        let headers = vec![
            ("codec".to_string(), Some(codec.as_bytes().to_vec())),
            ("source".to_string(), Some(b"kcat".to_vec())),
        ];
        assert_eq!(r.headers, headers, "{}@{} headers", r.partition, r.offset);
    }

    // kcat's batches are stored with the codec it was asked for (see the rdkafka test).
    let mut codecs = BTreeSet::new();
    for p in 0..PARTITIONS {
        codecs.extend(stored_codecs(&broker, "kcat", p)?);
    }
    let all: BTreeSet<String> = CODECS.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        codecs, all,
        "codecs of kcat's stored batches (a missing codec was never used by kcat's librdkafka)"
    );

    // From an absolute offset, and relative to the end (ListOffsets latest).
    let out = kcat(
        &broker,
        &[
            "-C", "-t", "kcat", "-p", "1", "-o", "2500", "-c", "5", "-e", "-q", "-f", "%o %k\n",
        ],
        b"",
    )?;
    let want: Vec<String> = (2500..2505)
        .map(|o| format!("{o} {}", expected[1][o].0))
        .collect();
    assert_eq!(kcat_lines(&out), want, "kcat -o 2500 -c 5");
    let end = expected[2].len();
    let out = kcat(
        &broker,
        &[
            "-C", "-t", "kcat", "-p", "2", "-o", "-3", "-e", "-q", "-f", "%o %k\n",
        ],
        b"",
    )?;
    let want: Vec<String> = (end - 3..end)
        .map(|o| format!("{o} {}", expected[2][o].0))
        .collect();
    assert_eq!(kcat_lines(&out), want, "kcat -o -3");
    Ok(())
}

/// kcat reads what rdkafka wrote, telling null keys and values from empty ones, and prints the
/// offsets and headers the producer's delivery reports and records named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_reads_rdkafka_nulls_empties_and_headers() -> Result<()> {
    let broker = Broker::start();
    create_topic(&broker, "nulls", 1, &[]).await?;
    let mut null_value = Msg::default().key("null-value");
    null_value.value = None;
    let messages = vec![
        Msg::value("plain")
            .key("k1")
            .header("h1", Some(b"v1"))
            .header("h2", Some(b"v2")),
        Msg::value("no key"),
        null_value,
        Msg::value("").key("empty-value"),
        Msg::value("empty key").key(""),
        Msg::default(),
    ];
    for codec in CODECS {
        let producer = producer(&broker, &[("compression.type", codec)]);
        produce_all(&producer, "nulls", &messages).await?;
    }
    let delivered_per_codec = messages.len();

    let out = kcat(
        &broker,
        &[
            "-C",
            "-t",
            "nulls",
            "-e",
            "-q",
            "-Z",
            "-f",
            "%o|%K|%k|%S|%s|%h\n",
        ],
        b"",
    )?;
    let lines = kcat_lines(&out);
    let expected_once = [
        "|2|k1|5|plain|h1=v1,h2=v2",
        "|-1|NULL|6|no key|",
        "|10|null-value|-1|NULL|",
        // kcat -Z prints NULL for empty keys and values too; %K / %S tell -1 (null) from 0.
        "|11|empty-value|0|NULL|",
        "|0|NULL|9|empty key|",
        "|-1|NULL|-1|NULL|",
    ];
    assert_eq!(
        lines.len(),
        delivered_per_codec * CODECS.len(),
        "kcat output:\n{}",
        lines.join("\n")
    );
    for (o, line) in lines.iter().enumerate() {
        let want = format!("{o}{}", expected_once[o % expected_once.len()]);
        assert_eq!(line, &want, "kcat line for offset {o}");
    }

    // And rdkafka reads exactly what it wrote, nulls included.
    let received = consume_all(&broker, "nulls")?;
    assert_eq!(received.len(), lines.len());
    for r in &received {
        let m = &messages[r.offset as usize % messages.len()];
        assert_eq!(r.content(), m.content(), "offset {}", r.offset);
    }
    Ok(())
}
