//! A consumer's Fetch: whole batches from each partition, starting with the one holding the fetch
//! offset, up to the high watermark. When less than `min_bytes` is available, waits up to
//! `max_wait_ms` for a high watermark to move, then reads again. Each topic needs READ.

use std::sync::Arc;

use brook_actors::{ask, PartitionHandle, ReadRecords, RecordsRead};
use brook_raft::acl::{AclOperation, ResourceType};
use bytes::Bytes;
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use super::long_poll::{failed as failed_partition, resolve, respond, Poll};
use crate::broker::Broker;
use crate::errors::partition_error;
use crate::handlers::routing;
use crate::handlers::Call;
use crate::metadata::TopicMeta;

/// One requested partition, resolved once for every round of the long poll.
struct Wanted {
    topic: usize,
    /// The topic's name once found, for the bytes-out count.
    name: Option<Arc<TopicMeta>>,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    target: Result<PartitionHandle, ResponseError>,
}

pub(super) async fn handle(broker: &Broker, call: &Call, request: FetchRequest) -> FetchResponse {
    let version = call.version;
    let image = broker.image();
    let (wanted, shells) = resolve(&image, version, &request, |topic, found, t, p| {
        // READ on the topic, whether it exists or not; a topic id no topic has stays unknown.
        let name = found
            .as_ref()
            .map_or(t.topic.as_str(), |meta| meta.name.as_str());
        let readable = (version >= 13 && found.is_err())
            || call.may(broker, AclOperation::Read, ResourceType::Topic, name);
        let found = if readable {
            found
        } else {
            Err(ResponseError::TopicAuthorizationFailed)
        };
        let meta = found.as_ref().ok().cloned();
        let target = found.and_then(|meta| {
            routing::check_leader_epoch(p.current_leader_epoch, leader_epoch(&meta, p.partition))?;
            routing::partition(broker, &meta, p.partition)
        });
        Wanted {
            topic,
            name: meta,
            partition: p.partition,
            offset: p.fetch_offset,
            max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            target,
        }
    });
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let watchers = wanted
        .iter()
        .filter_map(|w| w.target.as_ref().ok().map(|h| h.high_watermark.clone()))
        .collect();
    let mut poll = Poll::new(broker, &request, watchers);
    loop {
        poll.start_round();
        let (partitions, bytes, failed) = read_round(&wanted, poll.response_max, version).await;
        if failed || bytes >= min_bytes || poll.is_over() {
            for (w, (_, data)) in wanted.iter().zip(&partitions) {
                if let (Some(meta), Some(records)) = (&w.name, &data.records) {
                    broker.metrics.consumed(&meta.name, records.len());
                }
            }
            return respond(shells, partitions);
        }
        poll.wait().await;
    }
}

/// Reads every partition once. Returns the partition answers, the bytes read and whether any
/// partition failed (an error is answered at once, without waiting).
async fn read_round(
    wanted: &[Wanted],
    response_max: usize,
    version: i16,
) -> (Vec<(usize, PartitionData)>, usize, bool) {
    let mut out = Vec::with_capacity(wanted.len());
    let mut total = 0usize;
    let mut failed = false;
    for w in wanted {
        let base = PartitionData::default()
            .with_partition_index(w.partition)
            .with_records(Some(Bytes::new()));
        let result = match (&w.target, u64::try_from(w.offset)) {
            (Err(e), _) => Err(*e),
            (Ok(_), Err(_)) => Err(ResponseError::OffsetOutOfRange),
            (Ok(handle), Ok(offset)) => {
                let remaining = response_max.saturating_sub(total);
                let max_bytes = w.max_bytes.min(remaining);
                ask(&handle.addr, |reply| ReadRecords {
                    offset,
                    max_bytes,
                    reply,
                })
                .await
                .map_err(|e| partition_error(&e))
            }
        };
        let data = match result {
            Ok(RecordsRead {
                mut records,
                high_watermark,
                log_start_offset,
                ..
            }) => {
                // Only the first data of a response may exceed the limits (so one large batch
                // still gets through); later partitions get nothing once the budget is spent.
                if total > 0 && total + records.len() > response_max {
                    records = Bytes::new();
                }
                total += records.len();
                let hw = i64::try_from(high_watermark).unwrap_or(i64::MAX);
                let data = base
                    .with_high_watermark(hw)
                    .with_last_stable_offset(hw)
                    .with_records(Some(records));
                // The log start offset field exists from v5.
                if version >= 5 {
                    data.with_log_start_offset(i64::try_from(log_start_offset).unwrap_or(i64::MAX))
                } else {
                    data
                }
            }
            Err(e) => {
                failed = true;
                failed_partition(w.partition, e)
            }
        };
        out.push((w.topic, data));
    }
    (out, total, failed)
}

/// The leader epoch of a partition: bumped by the metadata whenever its leader changes.
fn leader_epoch(topic: &TopicMeta, partition: i32) -> i32 {
    topic.owner(partition).map_or(0, |o| o.leader_epoch)
}
