//! `brook consume TOPIC`: records printed as they arrive, like Kafka's console consumer and
//! `kcat -C`. It starts at `--offset` (`end` by default, `beginning`, or a number) or, with
//! `--group`, at the group's committed offsets, reads from each partition's leader, and stops
//! after `--max-messages` records, at the end of every partition with `--exit-at-end`, or on
//! Ctrl-C. With `--group` the offsets reached are committed when it stops, as a consumer
//! outside the group protocol (generation -1) commits them; the group must have no members.
//! Batches are decompressed within brook's 64 MiB bound per batch.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, RequestKind, ResponseKind};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder};

use super::group::client::{is_retriable, Cluster};
use super::group::describe::fetch_offsets;
use super::group::offsets::{Tp, EARLIEST, LATEST};
use super::group::reset::commit;
use crate::cli::output::error_text;
use crate::client::topic_name;

/// Bytes asked of each partition per Fetch.
const PARTITION_MAX_BYTES: i32 = 1 << 20;

#[derive(Debug, clap::Args)]
pub struct ConsumeArgs {
    /// The topic to read.
    pub topic: String,
    /// Read only this partition.
    #[arg(long, short = 'p')]
    pub partition: Option<i32>,
    /// Where to start without a committed offset: beginning, end or an offset.
    #[arg(long, short = 'o', default_value = "end")]
    pub offset: String,
    /// Start at the beginning (Kafka's console consumer flag; the same as --offset beginning).
    #[arg(long)]
    pub from_beginning: bool,
    /// Start at this group's committed offsets and commit where it stops.
    #[arg(long, short = 'g')]
    pub group: Option<String>,
    /// Stop after this many records.
    #[arg(long, short = 'c')]
    pub max_messages: Option<usize>,
    /// Stop once every partition is read to its end (kcat's -e).
    #[arg(long, short = 'e')]
    pub exit_at_end: bool,
    /// How to print a record (kcat's -f): %t topic, %p partition, %o offset, %k key, %v value,
    /// %h headers (name=value,...), %T timestamp (ms), \n, \t, %%.
    #[arg(long, short = 'f', default_value = "%v\\n")]
    pub format: String,
}

pub async fn run(args: ConsumeArgs, bootstrap: &str) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    let Some(partitions) = cluster.topics.get(&args.topic) else {
        bail!("topic {} does not exist", args.topic);
    };
    let wanted: Vec<i32> = match args.partition {
        Some(p) if partitions.contains_key(&p) => vec![p],
        Some(p) => bail!("topic {} has no partition {p}", args.topic),
        None => partitions.keys().copied().collect(),
    };
    let start = if args.from_beginning {
        "beginning"
    } else {
        args.offset.as_str()
    };
    let mut positions = starting_offsets(&mut cluster, &args, &wanted, start).await?;
    let format = Format::parse(&args.format);
    let mut stdout = std::io::stdout().lock();
    let mut printed = 0usize;
    let limit = args.max_messages.unwrap_or(usize::MAX);
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    while printed < limit {
        let done = args.exit_at_end
            && positions
                .iter()
                .all(|(p, at)| ends.get(p).is_some_and(|end| at >= end));
        if done {
            break;
        }
        let round = tokio::select! {
            round = fetch_round(&mut cluster, &args.topic, &positions) => round?,
            _ = &mut ctrl_c => break,
        };
        for (partition, high_watermark, records) in round {
            ends.insert(partition, high_watermark);
            for record in records {
                let Some(at) = positions.get_mut(&partition) else {
                    continue;
                };
                if record.offset < *at || printed >= limit {
                    continue;
                }
                *at = record.offset + 1;
                format.write(&mut stdout, &args.topic, partition, &record)?;
                printed += 1;
            }
        }
        stdout.flush()?;
    }
    drop(stdout);
    if let Some(group) = &args.group {
        let reached: Vec<(Tp, i64)> = positions
            .iter()
            .map(|(p, offset)| ((args.topic.clone(), *p), *offset))
            .collect();
        commit(&mut cluster, group, &reached).await?;
    }
    eprintln!("consumed {printed} records from {}", args.topic);
    Ok(())
}

/// Where each partition starts: the group's committed offset, else `start`.
async fn starting_offsets(
    cluster: &mut Cluster,
    args: &ConsumeArgs,
    partitions: &[i32],
    start: &str,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let committed: BTreeMap<i32, i64> = match &args.group {
        Some(group) => fetch_offsets(cluster, group)
            .await?
            .into_iter()
            .filter(|((topic, p), _)| *topic == args.topic && partitions.contains(p))
            .map(|((_, p), offset)| (p, offset))
            .collect(),
        None => BTreeMap::new(),
    };
    let missing: Vec<Tp> = partitions
        .iter()
        .filter(|p| !committed.contains_key(p))
        .map(|p| (args.topic.clone(), *p))
        .collect();
    let mut positions = committed;
    let fixed = match start {
        "beginning" => None,
        "end" => None,
        n => Some(
            n.parse::<i64>()
                .with_context(|| format!("--offset {n}: beginning, end or an offset"))?,
        ),
    };
    if missing.is_empty() {
        return Ok(positions);
    }
    if let Some(offset) = fixed {
        positions.extend(missing.iter().map(|(_, p)| (*p, offset)));
        return Ok(positions);
    }
    let timestamp = if start == "beginning" {
        EARLIEST
    } else {
        LATEST
    };
    for ((_, partition), offset) in cluster.list_offsets(&missing, timestamp).await? {
        let offset = offset
            .map_err(|code| anyhow::anyhow!("partition {partition}: {}", error_text(code, None)))?;
        positions.insert(partition, offset);
    }
    Ok(positions)
}

/// One Fetch to each leader; per partition, its high watermark and the records read.
async fn fetch_round(
    cluster: &mut Cluster,
    topic: &str,
    positions: &BTreeMap<i32, i64>,
) -> anyhow::Result<Vec<(i32, i64, Vec<Record>)>> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for partition in positions.keys() {
        let leader = cluster
            .topics
            .get(topic)
            .and_then(|ps| ps.get(partition))
            .copied()
            .unwrap_or(-1);
        by_leader.entry(leader).or_default().push(*partition);
    }
    let mut out = Vec::new();
    let mut stale = false;
    for (leader, partitions) in by_leader {
        let Some(node) = cluster.brokers.get(&leader).cloned() else {
            stale = true;
            continue;
        };
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(16 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| {
                            FetchPartition::default()
                                .with_partition(*p)
                                .with_fetch_offset(positions.get(p).copied().unwrap_or(0))
                                .with_partition_max_bytes(PARTITION_MAX_BYTES)
                        })
                        .collect(),
                )]);
        let response = match cluster
            .call(&node.addr(), ApiKey::Fetch, 12, RequestKind::Fetch(request))
            .await
        {
            Ok(ResponseKind::Fetch(r)) => r,
            Ok(other) => bail!("unexpected answer to Fetch: {other:?}"),
            Err(e) => {
                eprintln!("fetch from node {leader}: {e:#}; looking the leaders up again");
                stale = true;
                continue;
            }
        };
        for data in response.responses.into_iter().flat_map(|t| t.partitions) {
            if data.error_code != 0 {
                if is_retriable(data.error_code) {
                    stale = true;
                    continue;
                }
                bail!(
                    "partition {}: {}",
                    data.partition_index,
                    error_text(data.error_code, None)
                );
            }
            let records = decode(data.records.unwrap_or_default())
                .with_context(|| format!("partition {}", data.partition_index))?;
            out.push((data.partition_index, data.high_watermark, records));
        }
    }
    if stale {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        cluster.refresh_metadata().await?;
    }
    Ok(out)
}

/// The records of every whole batch in `bytes` (a trailing partial batch is left for the next
/// Fetch), decompressed within brook's bound.
fn decode(mut bytes: Bytes) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    while bytes.len() >= 12 {
        let length = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let whole = usize::try_from(length).map_or(usize::MAX, |l| l.saturating_add(12));
        if whole > bytes.len() {
            break;
        }
        let mut batch = bytes.split_to(whole);
        let set = RecordBatchDecoder::decode_with_custom_compression(
            &mut batch,
            Some(|data: &mut Bytes, codec: Compression| {
                brook_wire::batch::decompress_records(codec as u8, data)
                    .map(Bytes::from)
                    .map_err(|e| anyhow::anyhow!("{e}"))
            }),
        )?;
        records.extend(set.records.into_iter().filter(|r| !r.control));
    }
    Ok(records)
}

/// A `--format`, parsed once.
struct Format(Vec<Piece>);

enum Piece {
    Text(String),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Headers,
    Timestamp,
}

impl Format {
    fn parse(text: &str) -> Format {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            let piece = match (c, chars.clone().next()) {
                ('%', Some(n)) | ('\\', Some(n)) => {
                    let piece = match (c, n) {
                        ('%', 't') => Some(Piece::Topic),
                        ('%', 'p') => Some(Piece::Partition),
                        ('%', 'o') => Some(Piece::Offset),
                        ('%', 'k') => Some(Piece::Key),
                        ('%', 'v') => Some(Piece::Value),
                        ('%', 'h') => Some(Piece::Headers),
                        ('%', 'T') => Some(Piece::Timestamp),
                        ('%', '%') => Some(Piece::Text("%".into())),
                        ('\\', 'n') => Some(Piece::Text("\n".into())),
                        ('\\', 't') => Some(Piece::Text("\t".into())),
                        _ => None,
                    };
                    if piece.is_some() {
                        chars.next();
                    }
                    piece
                }
                _ => None,
            };
            match piece {
                Some(piece) => {
                    if !literal.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut literal)));
                    }
                    pieces.push(piece);
                }
                None => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Format(pieces)
    }

    fn write(
        &self,
        out: &mut impl Write,
        topic: &str,
        partition: i32,
        record: &Record,
    ) -> std::io::Result<()> {
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => out.write_all(t.as_bytes())?,
                Piece::Topic => out.write_all(topic.as_bytes())?,
                Piece::Partition => write!(out, "{partition}")?,
                Piece::Offset => write!(out, "{}", record.offset)?,
                Piece::Key => out.write_all(record.key.as_deref().unwrap_or_default())?,
                Piece::Value => out.write_all(record.value.as_deref().unwrap_or_default())?,
                Piece::Timestamp => write!(out, "{}", record.timestamp)?,
                Piece::Headers => {
                    for (i, (name, value)) in record.headers.iter().enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        out.write_all(name.as_bytes())?;
                        out.write_all(b"=")?;
                        out.write_all(value.as_deref().unwrap_or_default())?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kcat() {
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: kafka_protocol::records::TimestampType::Creation,
            offset: 7,
            sequence: -1,
            timestamp: 1000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut out = Vec::new();
        Format::parse("%t/%p@%o %k=%v%%\\t%T\\n100%x")
            .write(&mut out, "orders", 2, &record)
            .unwrap();
        assert_eq!(out, b"orders/2@7 k=v%\t1000\n100%x");
    }
}
