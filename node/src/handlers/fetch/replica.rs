//! The leader's side of a replica fetch: a Fetch request whose `replica_id` names a broker.
//! Unlike a consumer's, it reads up to the log end (not the high watermark), reports where the
//! follower's log diverged, and tells the partition's actor how far the follower got, which
//! moves the high watermark. When nothing is new it waits up to `max_wait_ms` for an append.

use brook_actors::{ask, PartitionHandle, ReplicaFetch, ReplicaRead};
use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{EpochEndOffset, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use super::long_poll::{failed, resolve, respond, Poll};
use crate::broker::Broker;
use crate::errors::partition_error;
use crate::handlers::routing;

struct Wanted {
    topic: usize,
    partition: i32,
    offset: i64,
    last_fetched_epoch: i32,
    current_leader_epoch: i32,
    log_start: i64,
    max_bytes: usize,
    target: Result<PartitionHandle, ResponseError>,
}

pub(super) async fn handle(
    broker: &Broker,
    version: i16,
    replica: i32,
    request: FetchRequest,
) -> FetchResponse {
    let image = broker.image();
    let (wanted, shells) = resolve(&image, version, &request, |topic, found, _, p| Wanted {
        topic,
        partition: p.partition,
        offset: p.fetch_offset,
        last_fetched_epoch: p.last_fetched_epoch,
        current_leader_epoch: p.current_leader_epoch,
        log_start: p.log_start_offset,
        max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
        target: found.and_then(|meta| routing::partition(broker, &meta, p.partition)),
    });
    let watchers = wanted
        .iter()
        .filter_map(|w| w.target.as_ref().ok().map(|h| h.log_end.clone()))
        .collect();
    let mut poll = Poll::new(broker, &request, watchers);
    loop {
        poll.start_round();
        let (partitions, done) = read_round(replica, &wanted, poll.response_max).await;
        if done || poll.is_over() {
            return respond(shells, partitions);
        }
        poll.wait().await;
    }
}

/// Reads every partition once; returns the answers and whether to answer now (data, a
/// divergence or an error).
async fn read_round(
    replica: i32,
    wanted: &[Wanted],
    response_max: usize,
) -> (Vec<(usize, PartitionData)>, bool) {
    let mut out = Vec::with_capacity(wanted.len());
    let mut done = false;
    let mut total = 0usize;
    for w in wanted {
        let base = PartitionData::default()
            .with_partition_index(w.partition)
            .with_records(Some(Bytes::new()));
        let result = match (&w.target, u64::try_from(w.offset)) {
            (Err(e), _) => Err(*e),
            (Ok(_), Err(_)) => Err(ResponseError::OffsetOutOfRange),
            (Ok(handle), Ok(offset)) => ask(&handle.addr, |reply| ReplicaFetch {
                replica,
                offset,
                last_fetched_epoch: w.last_fetched_epoch,
                current_leader_epoch: w.current_leader_epoch,
                log_start: w.log_start,
                max_bytes: w.max_bytes.min(response_max.saturating_sub(total)),
                reply,
            })
            .await
            .map_err(|e| partition_error(&e)),
        };
        let data = match result {
            Ok(mut read) => {
                // As for consumers, only the first data may exceed the budget; the follower
                // asks again for what is cut here.
                if total > 0 && total + read.records.len() > response_max {
                    read.records = Bytes::new();
                }
                total += read.records.len();
                done |= !read.records.is_empty() || read.diverging.is_some();
                answer(base, read)
            }
            Err(e) => {
                done = true;
                failed(w.partition, e)
            }
        };
        out.push((w.topic, data));
    }
    (out, done)
}

fn answer(base: PartitionData, read: ReplicaRead) -> PartitionData {
    let offset = |o: u64| i64::try_from(o).unwrap_or(i64::MAX);
    let hw = offset(read.high_watermark);
    let data = base
        .with_high_watermark(hw)
        .with_last_stable_offset(hw)
        .with_log_start_offset(offset(read.log_start_offset))
        .with_records(Some(read.records));
    match read.diverging {
        Some((epoch, end)) => data.with_diverging_epoch(
            EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(offset(end)),
        ),
        None => data,
    }
}
