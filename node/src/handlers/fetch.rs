//! Fetch: whole batches from each partition, starting with the one holding the fetch offset, up to
//! the high watermark. When less than `min_bytes` is available, waits up to `max_wait_ms` for a
//! high watermark to move (a long poll), then reads again.
//!
//! Fetch sessions (KIP-227) are not kept: every answer is a full response with session id 0,
//! which tells clients to keep sending full requests.

use std::sync::Arc;
use std::time::Duration;

use brook_actors::{ask, PartitionHandle, ReadRecords, RecordsRead};
use bytes::Bytes;
use futures::future::{select_all, FutureExt};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::time::Instant;

use crate::broker::Broker;
use crate::errors::partition_error;
use crate::routing::{self, TopicRef};

/// One requested partition, resolved once for every round of the long poll.
struct Wanted {
    topic: usize,
    partition: i32,
    offset: i64,
    max_bytes: usize,
    target: Result<PartitionHandle, ResponseError>,
}

pub async fn handle(broker: &Arc<Broker>, version: i16, request: FetchRequest) -> FetchResponse {
    if request.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    // A follower copying the log names its broker id (in the replica state from v15).
    let replica = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    if replica >= 0 {
        return crate::replication::serve::handle(broker, version, replica, request).await;
    }
    let image = broker.image();
    let by_id = version >= 13;
    let mut wanted = Vec::new();
    let mut shells = Vec::with_capacity(request.topics.len());
    for (index, topic) in request.topics.iter().enumerate() {
        let reference = if by_id {
            TopicRef::Id(topic.topic_id)
        } else {
            TopicRef::Name(&topic.topic)
        };
        let found = reference.find(&image);
        for p in &topic.partitions {
            let target = found.clone().and_then(|meta| {
                routing::check_leader_epoch(
                    p.current_leader_epoch,
                    broker.leader_epoch(&meta, p.partition),
                )?;
                routing::partition(broker, &meta, p.partition)
            });
            wanted.push(Wanted {
                topic: index,
                partition: p.partition,
                offset: p.fetch_offset,
                max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
                target,
            });
        }
        shells.push(
            FetchableTopicResponse::default()
                .with_topic(topic.topic.clone())
                .with_topic_id(topic.topic_id),
        );
    }
    let response_max = usize::try_from(request.max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let deadline =
        Instant::now() + Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let mut shutdown = broker.shutdown.clone();
    let mut watchers: Vec<_> = wanted
        .iter()
        .filter_map(|w| w.target.as_ref().ok().map(|h| h.high_watermark.clone()))
        .collect();
    loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let (partitions, bytes, failed) = read_round(&wanted, response_max, version).await;
        let waiting =
            !failed && bytes < min_bytes && Instant::now() < deadline && !*shutdown.borrow();
        if !waiting {
            return respond(shells, partitions);
        }
        let moved = async {
            if watchers.is_empty() {
                futures::future::pending::<()>().await;
            }
            let _ = select_all(watchers.iter_mut().map(|w| w.changed().boxed())).await;
        };
        tokio::select! {
            () = moved => {}
            () = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
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
                base.with_error_code(e.code())
                    .with_high_watermark(-1)
                    .with_last_stable_offset(-1)
            }
        };
        out.push((w.topic, data));
    }
    (out, total, failed)
}

pub(crate) fn respond(
    mut topics: Vec<FetchableTopicResponse>,
    partitions: Vec<(usize, PartitionData)>,
) -> FetchResponse {
    for (topic, data) in partitions {
        if let Some(t) = topics.get_mut(topic) {
            t.partitions.push(data);
        }
    }
    FetchResponse::default()
        .with_session_id(0)
        .with_responses(topics)
}
