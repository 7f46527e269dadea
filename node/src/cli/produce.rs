//! `brook produce TOPIC`: records from standard input (or `--file`), one per line, like Kafka's
//! console producer and `kcat -P`. With `--key-separator` a line is `key<SEP>value`; keyed
//! records go to partition murmur2(key) mod partitions, the Java client's default partitioner,
//! so they land where Kafka's own tools would put them; records without a key rotate over the
//! partitions a batch at a time. Batches go straight to each partition's leader (acks all or 1),
//! and a retriable error (a leader that moved) is retried after the leaders are looked up again.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::group::client::{is_retriable, Cluster};
use crate::cli::output::error_text;
use crate::client::topic_name;

/// How often a batch is sent again after a retriable error.
const ATTEMPTS: u32 = 5;
/// Sends once this many bytes of records are waiting, whatever `--batch-records` says.
const MAX_PENDING_BYTES: usize = 1 << 20;
/// The longest line read: longer is refused rather than held.
const MAX_LINE_BYTES: usize = 16 << 20;

#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// The topic to write to.
    pub topic: String,
    /// Write every record to this partition.
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Split each line at the first SEP into key and value (kcat's -K).
    #[arg(long, short = 'K', value_name = "SEP")]
    pub key_separator: Option<String>,
    /// A header for every record, NAME=VALUE; may repeat.
    #[arg(long = "header", short = 'H', value_parser = super::key_value)]
    pub headers: Vec<(String, String)>,
    /// all (-1) or 1. acks=0 is not offered: the tool reports what was written.
    #[arg(long, default_value = "all")]
    pub acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    pub compression: String,
    /// Read the records from this file instead of standard input.
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// Records per batch and partition.
    #[arg(long, default_value_t = 500)]
    pub batch_records: usize,
}

pub async fn run(args: ProduceArgs, bootstrap: &str) -> anyhow::Result<()> {
    let acks: i16 = match args.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        other => bail!("--acks {other}: all or 1"),
    };
    let compression = match args.compression.as_str() {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => bail!("--compression {other}: none, gzip, snappy, lz4 or zstd"),
    };
    let mut cluster = Cluster::connect(bootstrap).await?;
    let Some(partitions) = cluster.topics.get(&args.topic) else {
        bail!("topic {} does not exist", args.topic);
    };
    let count = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
    if let Some(p) = args.partition.filter(|p| !partitions.contains_key(p)) {
        bail!("topic {} has no partition {p}", args.topic);
    }
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let template = template(&args.headers);
    let mut sender = Sender {
        topic: args.topic.clone(),
        acks,
        compression,
        cluster: &mut cluster,
        sent: 0,
    };
    let mut pending: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
    let (mut pending_bytes, mut round_robin) = (0usize, 0i32);
    for line in lines(input) {
        let line = line?;
        let (key, value) = match &args.key_separator {
            Some(sep) => match line.split_once(sep.as_str()) {
                Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
                None => (None, line),
            },
            None => (None, line),
        };
        let partition = match (args.partition, &key) {
            (Some(p), _) => p,
            (None, Some(k)) => key_partition(k, count),
            (None, None) => round_robin,
        };
        pending_bytes += value.len() + key.as_ref().map_or(0, Bytes::len);
        let records = pending.entry(partition).or_default();
        let mut record = template.clone();
        // Offsets count within the batch (the leader gives the real ones). kafka-protocol's
        // encoder starts a new batch where offset minus sequence changes, so the sequence of a
        // non-idempotent record counts along from -1.
        let index = i32::try_from(records.len()).unwrap_or(i32::MAX);
        record.offset = i64::from(index);
        record.sequence = index.wrapping_sub(1);
        record.key = key;
        record.value = Some(Bytes::from(value));
        record.timestamp = now_ms();
        records.push(record);
        if records.len() >= args.batch_records.max(1) || pending_bytes >= MAX_PENDING_BYTES {
            sender.send(std::mem::take(&mut pending)).await?;
            pending_bytes = 0;
            round_robin = (round_robin + 1) % count.max(1);
        }
    }
    sender.send(pending).await?;
    eprintln!("produced {} records to {}", sender.sent, args.topic);
    Ok(())
}

/// Lines without their line ending, each at most [`MAX_LINE_BYTES`].
fn lines(mut input: Box<dyn BufRead>) -> impl Iterator<Item = anyhow::Result<String>> {
    std::iter::from_fn(move || {
        let mut line = Vec::new();
        let read =
            std::io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut line);
        match read {
            Ok(0) => None,
            Err(e) => Some(Err(e.into())),
            Ok(_) if line.len() > MAX_LINE_BYTES && !line.ends_with(b"\n") => Some(Err(
                anyhow::anyhow!("a line of more than {MAX_LINE_BYTES} bytes"),
            )),
            Ok(_) => {
                while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    line.pop();
                }
                Some(Ok(String::from_utf8_lossy(&line).into_owned()))
            }
        }
    })
}

/// A record with every `--header`, to give each line's key, value and time.
fn template(headers: &[(String, String)]) -> Record {
    let mut record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: None,
        headers: Default::default(),
    };
    for (name, value) in headers {
        record.headers.insert(
            StrBytes::from_string(name.clone()),
            Some(Bytes::from(value.clone())),
        );
    }
    record
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The Java client's default partition of a keyed record: murmur2 of the key, made positive,
/// modulo the partition count.
pub fn key_partition(key: &[u8], partitions: i32) -> i32 {
    let positive = murmur2(key) & 0x7fff_ffff;
    i32::try_from(positive % partitions.max(1) as u32).unwrap_or(0)
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), seed 0x9747b28c.
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// Sends batches to the leaders, retrying what a leader change refused.
struct Sender<'a> {
    topic: String,
    acks: i16,
    compression: Compression,
    cluster: &'a mut Cluster,
    sent: usize,
}

impl Sender<'_> {
    async fn send(&mut self, batches: BTreeMap<i32, Vec<Record>>) -> anyhow::Result<()> {
        let mut waiting = batches;
        for attempt in 1..=ATTEMPTS {
            waiting.retain(|_, records| !records.is_empty());
            if waiting.is_empty() {
                return Ok(());
            }
            let mut failed = BTreeMap::new();
            let mut last_error = String::new();
            let mut by_leader: BTreeMap<i32, Vec<(i32, Vec<Record>)>> = BTreeMap::new();
            for (partition, records) in std::mem::take(&mut waiting) {
                let leader = self
                    .cluster
                    .topics
                    .get(&self.topic)
                    .and_then(|ps| ps.get(&partition))
                    .copied()
                    .filter(|l| self.cluster.brokers.contains_key(l));
                match leader {
                    Some(leader) => by_leader
                        .entry(leader)
                        .or_default()
                        .push((partition, records)),
                    None => {
                        last_error = format!("partition {partition} has no leader");
                        failed.insert(partition, records);
                    }
                }
            }
            for (leader, batches) in by_leader {
                let outcome = self.send_to(leader, &batches).await;
                for ((partition, records), result) in batches.into_iter().zip(outcome) {
                    match result {
                        Ok(()) => self.sent += records.len(),
                        Err((code, why)) if is_retriable(code) || code < 0 => {
                            last_error = why;
                            failed.insert(partition, records);
                        }
                        Err((_, why)) => bail!("partition {partition}: {why}"),
                    }
                }
            }
            if failed.is_empty() {
                return Ok(());
            }
            if attempt == ATTEMPTS {
                bail!("giving up after {ATTEMPTS} attempts: {last_error}");
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            self.cluster.refresh_metadata().await?;
            waiting = failed;
        }
        Ok(())
    }

    /// One Produce to `leader`; per partition, in order, success or (error code, why). A code
    /// of -1 stands for a broken connection.
    async fn send_to(
        &mut self,
        leader: i32,
        batches: &[(i32, Vec<Record>)],
    ) -> Vec<Result<(), (i16, String)>> {
        let mut data = Vec::with_capacity(batches.len());
        for (partition, records) in batches {
            let mut buf = BytesMut::new();
            let options = RecordEncodeOptions {
                version: 2,
                compression: self.compression,
            };
            if let Err(e) = RecordBatchEncoder::encode(&mut buf, records, &options) {
                return batches
                    .iter()
                    .map(|_| Err((-2, format!("encoding: {e}"))))
                    .collect();
            }
            data.push(
                PartitionProduceData::default()
                    .with_index(*partition)
                    .with_records(Some(buf.freeze())),
            );
        }
        let request = ProduceRequest::default()
            .with_acks(self.acks)
            .with_timeout_ms(30_000)
            .with_transactional_id(None)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic_name(&self.topic))
                .with_partition_data(data)]);
        let addr = match self.cluster.brokers.get(&leader) {
            Some(node) => node.addr(),
            None => String::new(),
        };
        let answer = self
            .cluster
            .call(&addr, ApiKey::Produce, 9, RequestKind::Produce(request))
            .await;
        let response = match answer {
            Ok(ResponseKind::Produce(r)) => r,
            Ok(_) => {
                return batches
                    .iter()
                    .map(|_| Err((-1, "unexpected answer".into())))
                    .collect()
            }
            Err(e) => {
                let why = format!("node {leader}: {e:#}");
                return batches.iter().map(|_| Err((-1, why.clone()))).collect();
            }
        };
        let answers: BTreeMap<i32, (i16, Option<StrBytes>)> = response
            .responses
            .into_iter()
            .flat_map(|t| t.partition_responses)
            .map(|p| (p.index, (p.error_code, p.error_message)))
            .collect();
        batches
            .iter()
            .map(|(partition, _)| match answers.get(partition) {
                Some((0, _)) => Ok(()),
                Some((code, message)) => Err((*code, error_text(*code, message.as_ref()))),
                None => Err((-1, format!("no answer for partition {partition}"))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas() {
        // Values from Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 4] = [
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
        ];
        for (key, want) in cases {
            assert_eq!(
                murmur2(key) as i32,
                want,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }
}
