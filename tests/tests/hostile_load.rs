//! The hostile-load suite: the hardening issue's hostile inputs, and more, replayed against a
//! three-node cluster (replication factor 3). After each input every node must still run and
//! answer Metadata, keep its resident memory under [`RSS_BOUND_MIB`] and its data directory
//! under [`DISK_BOUND_MIB`], and a real client (librdkafka) must produce through the cluster
//! and read back exactly what it produced so far. The `HOSTILE` lines it prints are the
//! README's table. Single-node versions of several inputs, with finer assertions, are in
//! `hostile.rs` and `bad_input.rs`.

use std::net::Shutdown;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context as _, Result};
use brook_tests::cluster::*;
use brook_tests::*;
use bytes::{Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Gzip, Zstd};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    CreateTopicsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId,
    InitProducerIdRequest, MetadataRequest, OffsetCommitRequest, ProducerId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;
use rdkafka::producer::FutureRecord;

const TOPIC: &str = "hostile";
/// Resident memory of any node, at any check: the node-wide request budget
/// (`queued.max.request.bytes`, 256 MiB) and one bounded decompression (64 MiB) with room to
/// spare; an unbounded input (the bombs, the 100 MiB frames) would pass it.
const RSS_BOUND_MIB: f64 = 512.0;
/// A node's data directory (sled files and the Raft log), at any check.
const DISK_BOUND_MIB: f64 = 256.0;
/// `connections.max.idle.ms` and `brook.request.receive.timeout.ms` of the cluster: short, so
/// the suite waits seconds for them, not Kafka's ten minutes.
const IDLE_MS: u64 = 4_000;
const RECEIVE_TIMEOUT_MS: u64 = 3_000;
/// How long a connection the node should drop may stay open: the timeout, plus slack for a
/// busy machine and for frames that wait for the request budget first.
const CLOSE_WITHIN: Duration = Duration::from_secs(40);

/// What one check measured: the largest RSS and data directory over the nodes.
struct Health {
    rss_mib: f64,
    disk_mib: f64,
}

fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for {pid}"))?;
    Ok(kb as f64 / 1024.0)
}

fn dir_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The real client's side: what it produced to partition 0, in order.
struct Witness {
    bootstrap: String,
    produced: Vec<String>,
}

impl Witness {
    /// Every node runs, answers Metadata and is within bounds; the client's new message is
    /// acknowledged (acks=all) and everything it produced reads back in order.
    async fn check(&mut self, c: &mut Cluster, case: &str) -> Result<Health> {
        let mut health = Health {
            rss_mib: 0.0,
            disk_mib: 0.0,
        };
        for id in c.ids() {
            ensure!(c.is_running(id), "node {id} died on {case}");
            c.metadata(id, Some(&[TOPIC]))
                .with_context(|| format!("node {id} after {case}"))?;
            let pid = c.node(id).pid().ok_or_else(|| anyhow!("no pid"))?;
            let rss = rss_mib(pid)?;
            let disk = dir_bytes(&c.node(id).data_dir()) as f64 / f64::from(1 << 20);
            ensure!(
                rss <= RSS_BOUND_MIB,
                "node {id}: {rss:.1} MiB resident after {case}"
            );
            ensure!(
                disk <= DISK_BOUND_MIB,
                "node {id}: {disk:.1} MiB on disk after {case}"
            );
            health.rss_mib = health.rss_mib.max(rss);
            health.disk_mib = health.disk_mib.max(disk);
        }
        let value = format!("after {case}");
        producer_for(&self.bootstrap, &[("enable.idempotence", "true")])
            .send(
                FutureRecord::<(), _>::to(TOPIC)
                    .partition(0)
                    .payload(&value),
                Duration::from_secs(60),
            )
            .await
            .map_err(|(e, _)| anyhow!("the real client's write after {case}: {e}"))?;
        self.produced.push(value);
        let read: Vec<String> = consume_all(c.node(1), TOPIC)?
            .into_iter()
            .filter(|r| r.partition == 0)
            .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
            .collect();
        ensure!(
            read == self.produced,
            "after {case} the real client read {read:?}, produced {:?}",
            self.produced
        );
        Ok(health)
    }
}

/// A batch whose header claims `count` records of `codec` over `records`, with a valid CRC:
/// what a hostile client can send that passes the framing checks.
fn forged_batch(codec: Compression, count: i32, records: &[u8]) -> Result<Bytes> {
    let template = record_batch(&[b"t" as &[u8]], 2, NO_PRODUCER, -1, 0, Compression::None)?;
    let mut bytes = template[..61].to_vec();
    bytes.extend_from_slice(records);
    let length = i32::try_from(bytes.len() - 12)?;
    bytes[8..12].copy_from_slice(&length.to_be_bytes());
    bytes[23..27].copy_from_slice(&count.wrapping_sub(1).to_be_bytes());
    bytes[57..61].copy_from_slice(&count.to_be_bytes());
    bytes[22] = (bytes[22] & !0x07) | codec as u8;
    let crc = crc32c::crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(Bytes::from(bytes))
}

fn compressed<C: Compressor<BytesMut, BufMut = BytesMut>>(data: &[u8]) -> Result<Vec<u8>> {
    let mut out = BytesMut::new();
    C::compress(&mut out, |buf: &mut BytesMut| {
        buf.extend_from_slice(data);
        Ok(())
    })?;
    Ok(out.to_vec())
}

/// A raw snappy block whose header claims `claimed` bytes, followed by one 20-byte literal.
fn snappy_claiming(claimed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = claimed;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.push((20 - 1) << 2);
    out.extend_from_slice(&[b'x'; 20]);
    out
}

fn code_name(code: i16) -> &'static str {
    match code {
        0 => "NONE",
        2 => "CORRUPT_MESSAGE",
        12 => "OFFSET_METADATA_TOO_LARGE",
        37 => "INVALID_PARTITIONS",
        87 => "INVALID_RECORD",
        _ => "another error",
    }
}

/// Produces `batch` to partition 1 at its leader; it must be refused with one of `expected`,
/// and partition 1's log must end where it did.
fn refused_batch(c: &Cluster, batch: Bytes, expected: &[i16]) -> Result<String> {
    let leader = c.partition(1, TOPIC, 1)?.leader;
    let end_before = c.end_offset(leader, TOPIC, 1)?;
    let mut conn = c.conn(leader)?;
    let answer = produce_raw(&mut conn, TOPIC, &[(1, batch)])?;
    let code = answer[0].error_code;
    ensure!(expected.contains(&code), "answered {code}: {:?}", answer[0]);
    ensure!(
        c.end_offset(leader, TOPIC, 1)? == end_before,
        "the log moved"
    );
    Ok(format!("{} ({code}), log unchanged", code_name(code)))
}

fn good_batch(c: &Cluster) -> Result<i64> {
    let leader = c.partition(1, TOPIC, 1)?.leader;
    let batch = record_batch(&[b"ok" as &[u8]], 2, NO_PRODUCER, -1, 0, Compression::None)?;
    let answer = produce_raw(&mut c.conn(leader)?, TOPIC, &[(1, batch)])?;
    ensure!(answer[0].error_code == 0, "{:?}", answer[0]);
    Ok(answer[0].base_offset)
}

fn poison_zstd(c: &Cluster) -> Result<String> {
    let junk: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(151) ^ 0x5a).collect();
    refused_batch(c, forged_batch(Compression::Zstd, 1, &junk)?, &[2])
}

fn poison_ff(c: &Cluster) -> Result<String> {
    refused_batch(
        c,
        forged_batch(Compression::None, 10, &[0xff; 70])?,
        &[2, 87],
    )
}

fn poison_count(c: &Cluster) -> Result<String> {
    let before = good_batch(c)?;
    let plain = record_batch(
        &[b"a" as &[u8], b"b"],
        2,
        NO_PRODUCER,
        -1,
        0,
        Compression::None,
    )?;
    let zipped = compressed::<Zstd>(&plain[61..])?;
    let outcome = refused_batch(
        c,
        forged_batch(Compression::Zstd, i32::MAX, &zipped)?,
        &[87, 2],
    )?;
    let next = good_batch(c)?;
    ensure!(
        next == before + 1,
        "next batch at {next}, expected {}",
        before + 1
    );
    Ok(format!("{outcome}; the next batch got offset {next}"))
}

fn bomb<C: Compressor<BytesMut, BufMut = BytesMut>>(
    c: &Cluster,
    codec: Compression,
) -> Result<String> {
    let zipped = compressed::<C>(&vec![0u8; 80 << 20])?;
    let size = zipped.len();
    let outcome = refused_batch(c, forged_batch(codec, 1, &zipped)?, &[2, 87])?;
    Ok(format!("{size} B inflating to 80 MiB: {outcome}"))
}

fn snappy_bomb(c: &Cluster) -> Result<String> {
    let block = snappy_claiming(3 << 30);
    let size = block.len();
    let outcome = refused_batch(c, forged_batch(Compression::Snappy, 1, &block)?, &[2, 87])?;
    Ok(format!("{size} B claiming 3 GiB: {outcome}"))
}

fn repeated_metadata(c: &Cluster) -> Result<String> {
    let request = MetadataRequest::default().with_topics(Some(
        (0..400)
            .map(|_| MetadataRequestTopic::default().with_name(Some(topic_name(TOPIC))))
            .collect(),
    ));
    for id in c.ids() {
        let response = c.conn(id)?.call(9, &request)?;
        ensure!(
            response.topics.len() == 1,
            "node {id}: {} entries",
            response.topics.len()
        );
    }
    Ok("each node describes the topic once".into())
}

fn repeated_fetch(c: &Cluster) -> Result<String> {
    let leader = c.partition(1, TOPIC, 1)?.leader;
    let request = fetch_request(TOPIC, 1, 0, 0, 300);
    let response = c.conn(leader)?.call(FETCH_VERSION, &request)?;
    let answers: usize = response.responses.iter().map(|t| t.partitions.len()).sum();
    ensure!(answers == 1, "{answers} partition answers");
    Ok("read once".into())
}

/// Waits for the node to close every one of `conns`; returns the seconds since `started`.
fn all_closed(conns: &mut [RawConn], started: Instant) -> Result<f64> {
    for conn in conns {
        conn.expect_closed(CLOSE_WITHIN)?;
    }
    Ok(started.elapsed().as_secs_f64())
}

fn half_sent_frames(c: &Cluster) -> Result<String> {
    let started = Instant::now();
    let mut conns = Vec::new();
    for id in c.ids() {
        for _ in 0..5 {
            let mut conn = c.conn(id)?;
            conn.write_raw(&(100i32 << 20).to_be_bytes())?;
            conn.write_raw(&[0u8; 1024])?;
            conns.push(conn);
        }
    }
    let secs = all_closed(&mut conns, started)?;
    Ok(format!(
        "15 frames of 100 MiB, 1 KiB sent: all dropped within {secs:.1} s"
    ))
}

fn idle_connections(c: &Cluster) -> Result<String> {
    let started = Instant::now();
    let mut conns = Vec::new();
    for id in c.ids() {
        for _ in 0..200 {
            conns.push(c.conn(id)?);
        }
    }
    let secs = all_closed(&mut conns, started)?;
    Ok(format!(
        "600 idle connections: all closed within {secs:.1} s"
    ))
}

fn pipelined_unread(c: &Cluster) -> Result<String> {
    let request = MetadataRequest::default().with_topics(None);
    let mut sent = 0usize;
    for id in c.ids() {
        let mut conn = c.conn(id)?;
        conn.stream()
            .set_write_timeout(Some(Duration::from_secs(2)))?;
        // Never reads: once the socket buffers are full, the node must stop reading too.
        for _ in 0..20_000 {
            if conn.send_request(12, &request).is_err() {
                break;
            }
            sent += 1;
        }
        let _ = conn.stream().shutdown(Shutdown::Both);
    }
    Ok(format!("{sent} Metadata requests sent, no response read"))
}

fn hijack_producer(c: &Cluster) -> Result<String> {
    let leader = c.partition(1, TOPIC, 1)?.leader;
    let mut conn = c.conn(leader)?;
    let victim = init_producer_id(&mut conn)?;
    let hijack = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(victim.id))
        .with_producer_epoch(victim.epoch);
    let answer = c.conn(1)?.call(INIT_PRODUCER_ID_VERSION, &hijack)?;
    ensure!(
        answer.error_code != 0 || answer.producer_id.0 != victim.id,
        "the caller got the victim's id: {answer:?}"
    );
    let batch = record_batch(&[b"victim" as &[u8]], 2, victim, 0, 0, Compression::None)?;
    let produced = produce_raw(&mut conn, TOPIC, &[(1, batch)])?;
    ensure!(
        produced[0].error_code == 0,
        "the victim was fenced: {:?}",
        produced[0]
    );
    Ok(format!(
        "caller got producer id {} (not {}); the victim still writes",
        answer.producer_id.0, victim.id
    ))
}

fn made_up_groups(c: &Cluster) -> Result<String> {
    let before = c.describe_quorum(1)?.high_watermark;
    let ids: Vec<GroupId> = (0..1000)
        .map(|i| GroupId(StrBytes::from_string(format!("ghost-{i}"))))
        .collect();
    for id in c.ids() {
        let request = DescribeGroupsRequest::default().with_groups(ids.clone());
        let answer = c.conn(id)?.call(5, &request)?;
        ensure!(answer.groups.len() == 1000);
    }
    let grew = c.describe_quorum(1)?.high_watermark - before;
    // Broker heartbeats keep writing meanwhile, never one entry per group.
    ensure!(grew < 200, "the Raft log grew by {grew} entries");
    Ok(format!(
        "3,000 ids described; the Raft log grew by {grew} entries"
    ))
}

fn huge_offset_metadata(c: &Cluster) -> Result<String> {
    let group = GroupId(StrBytes::from_static_str("hostile-commits"));
    let found = c.conn(1)?.call(
        3,
        &FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("hostile-commits")),
    )?;
    ensure!(found.error_code == 0, "{found:?}");
    let request = OffsetCommitRequest::default()
        .with_group_id(group)
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(topic_name(TOPIC))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)
                .with_committed_metadata(Some(StrBytes::from_string(
                    "m".repeat(32_000),
                )))])]);
    let answer = c.conn(found.node_id.0)?.call(7, &request)?;
    let code = answer.topics[0].partitions[0].error_code;
    ensure!(code == 12, "answered {code}");
    Ok(format!(
        "32,000 B of metadata: {} ({code})",
        code_name(code)
    ))
}

fn raft_port_garbage(c: &Cluster) -> Result<String> {
    let started = Instant::now();
    let mut conns = Vec::new();
    for id in c.ids() {
        // A length over the Raft frame bound (16 MiB), then one under it with noise behind.
        for length in [i32::MAX, 1 << 20] {
            let mut conn = RawConn::connect(c.raft_addr(id))?;
            let noise: Vec<u8> = (0..65_536u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect();
            let _ = conn.write_raw(&length.to_be_bytes());
            let _ = conn.write_raw(&noise);
            conns.push(conn);
        }
    }
    let secs = all_closed(&mut conns, started)?;
    Ok(format!(
        "a 2 GiB frame and a half-sent 1 MiB frame of noise to each Raft port: all closed within {secs:.1} s"
    ))
}

fn absurd_partitions(c: &Cluster) -> Result<String> {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name("absurd"))
            .with_num_partitions(i32::MAX)
            .with_replication_factor(3)]);
    let answer = c.conn(1)?.call(7, &request)?;
    let code = answer.topics[0].error_code;
    ensure!(code == 37, "answered {code}");
    Ok(format!("2^31-1 partitions: {} ({code})", code_name(code)))
}

fn oversized_frame(c: &Cluster) -> Result<String> {
    for id in c.ids() {
        let mut conn = c.conn(id)?;
        conn.write_raw(&i32::MAX.to_be_bytes())?;
        conn.expect_closed(CLOSE_WITHIN)?;
    }
    Ok("a 2 GiB length prefix: connection closed".into())
}

type Case = (&'static str, fn(&Cluster) -> Result<String>);

const CASES: &[Case] = &[
    ("zstd batch over 40 random bytes", poison_zstd),
    (
        "uncompressed batch claiming 10 records over 70 bytes of 0xFF",
        poison_ff,
    ),
    ("compressed batch claiming 2^31-1 records", poison_count),
    ("zstd bomb", |c| bomb::<Zstd>(c, Compression::Zstd)),
    ("gzip bomb", |c| bomb::<Gzip>(c, Compression::Gzip)),
    ("snappy block claiming 3 GiB", snappy_bomb),
    ("Metadata naming one topic 400 times", repeated_metadata),
    ("Fetch naming one partition 300 times", repeated_fetch),
    ("half-sent 100 MiB frames, 5 per node", half_sent_frames),
    ("200 idle connections per node", idle_connections),
    ("pipelined Metadata requests never read", pipelined_unread),
    (
        "InitProducerId naming another producer's id and epoch",
        hijack_producer,
    ),
    (
        "DescribeGroups of 1,000 made-up ids, on each node",
        made_up_groups,
    ),
    (
        "OffsetCommit with 32,000 B of metadata (the limit is 4,096)",
        huge_offset_metadata,
    ),
    ("noise on the Raft port", raft_port_garbage),
    ("CreateTopics with 2^31-1 partitions", absurd_partitions),
    ("a frame length of 2 GiB", oversized_frame),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_survive_hostile_load() -> Result<()> {
    let mut c = Cluster::start_with(3, |o| {
        o.set("connections.max.idle.ms", IDLE_MS)
            .set("brook.request.receive.timeout.ms", RECEIVE_TIMEOUT_MS);
    });
    c.create_replicated_topic(1, TOPIC, 2, 3, &[("min.insync.replicas", "2")])?;
    let mut witness = Witness {
        bootstrap: c
            .ids()
            .iter()
            .map(|&id| c.bootstrap(id))
            .collect::<Vec<_>>()
            .join(","),
        produced: Vec::new(),
    };
    witness.check(&mut c, "start").await?;
    println!("HOSTILE | input | outcome | max RSS (MiB) | max data dir (MiB) | s |");
    for (input, run) in CASES {
        let started = Instant::now();
        let outcome = run(&c).with_context(|| format!("input: {input}"))?;
        let health = witness.check(&mut c, input).await?;
        println!(
            "HOSTILE | {input} | {outcome} | {:.0} | {:.1} | {:.1} |",
            health.rss_mib,
            health.disk_mib,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
