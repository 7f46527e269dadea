//! A replica fetcher: copies every partition this node follows from one leader, with Kafka's
//! replica Fetch (a Fetch request carrying this broker's id as `replica_id`), over one
//! connection to the leader's Kafka listener.
//!
//! Each round sends the follower's log end and the epoch of its last batch for every partition;
//! the leader answers with batches, or with the point where the follower's log diverged from
//! its own, which the follower truncates to first. The copied batches are appended and flushed
//! before the next round, so the offset a follower reports is always durable on it: that is
//! what lets the leader count it for acks=all.

use std::collections::BTreeMap;
use std::time::Duration;

use brook_actors::{
    ask, AppendAsFollower, Divergence, FollowerPosition, PartitionError, PartitionKey,
    TruncateFollower,
};
use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, RequestKind, ResponseKind};
use kafka_protocol::ResponseError;
use tokio::sync::watch;

use super::FetcherContext;
use super::{FollowSet, Followed};
use crate::client::{topic_name, Client};
use crate::security::node_auth;

/// Fetch v12: the first with the follower's last fetched epoch and the diverging epoch.
const FETCH_VERSION: i16 = 12;
/// How long the leader may hold a fetch when it has nothing new.
const MAX_WAIT_MS: i32 = 500;
const PARTITION_MAX_BYTES: i32 = 1 << 20;
const RESPONSE_MAX_BYTES: i32 = 16 << 20;
/// The largest answer read from a leader: its `max_bytes` plus room for the framing of every
/// partition, since the leader may exceed `max_bytes` by one batch.
const RESPONSE_MAX_BYTES_CAP: usize = 64 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed connection or a round in which nothing could be fetched.
const BACKOFF: Duration = Duration::from_millis(200);

pub(super) async fn run(
    context: FetcherContext,
    leader: i32,
    mut partitions: watch::Receiver<FollowSet>,
) {
    let mut positions: BTreeMap<PartitionKey, FollowerPosition> = BTreeMap::new();
    let mut shutdown = context.shutdown.clone();
    loop {
        if shutdown.is_shutdown() {
            return;
        }
        let Some(mut client) = connect(&context, leader).await else {
            tokio::select! {
                () = tokio::time::sleep(BACKOFF * 5) => continue,
                () = shutdown.recv() => return,
            }
        };
        loop {
            let followed = partitions.borrow_and_update().clone();
            positions.retain(|k, _| followed.contains_key(k));
            if followed.is_empty() {
                // Nothing to follow from this leader: let the connection go rather than hold
                // it idle until the leader closes it (`connections.max.idle.ms`), and connect
                // again once there is.
                drop(client);
                tokio::select! {
                    _ = partitions.changed() => break,
                    () = shutdown.recv() => return,
                }
            }
            for (key, f) in &followed {
                if !positions.contains_key(key) {
                    match truncate(f, None).await {
                        Ok(at) => {
                            positions.insert(*key, at);
                        }
                        Err(e) => {
                            tracing::debug!(partition = %key, error = %e, "follower not ready")
                        }
                    }
                }
            }
            let request = fetch_request(context.node_id, &followed, &positions);
            let call = client.call(ApiKey::Fetch, FETCH_VERSION, RequestKind::Fetch(request));
            let response = tokio::select! {
                r = tokio::time::timeout(REQUEST_TIMEOUT, call) => r,
                () = shutdown.recv() => return,
            };
            let response = match response {
                Ok(Ok(ResponseKind::Fetch(r))) => r,
                Ok(Ok(other)) => {
                    tracing::warn!(leader, ?other, "unexpected answer to a replica fetch");
                    break;
                }
                Ok(Err(e)) => {
                    tracing::info!(leader, error = %e, "replica fetch failed; reconnecting");
                    break;
                }
                Err(_) => {
                    tracing::info!(leader, "replica fetch timed out; reconnecting");
                    break;
                }
            };
            let by_name: BTreeMap<(String, i32), PartitionKey> = followed
                .iter()
                .map(|(k, f)| ((f.topic.clone(), f.partition), *k))
                .collect();
            let mut work = Vec::new();
            for topic in response.responses {
                for data in topic.partitions {
                    let name = topic.topic.to_string();
                    let Some(key) = by_name.get(&(name, data.partition_index)) else {
                        continue;
                    };
                    if let (Some(f), Some(at)) = (followed.get(key), positions.get(key)) {
                        work.push(apply(*key, f.clone(), *at, data));
                    }
                }
            }
            let mut answered = false;
            for (key, outcome) in join_all(work).await {
                match outcome {
                    Some(at) => {
                        answered = true;
                        positions.insert(key, at);
                    }
                    None => {
                        positions.remove(&key);
                    }
                }
            }
            if !answered {
                // Nothing but errors (the leader moved, or is not ready yet): do not spin.
                tokio::select! {
                    () = tokio::time::sleep(BACKOFF) => {}
                    _ = partitions.changed() => {}
                    () = shutdown.recv() => return,
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(BACKOFF) => {}
            () = shutdown.recv() => return,
        }
    }
}

async fn connect(context: &FetcherContext, leader: i32) -> Option<Client> {
    let image = context.metadata.image();
    let target = image.broker(leader)?;
    let addr = format!("{}:{}", target.host, target.port);
    // Connected and authenticated as this broker, within the one time limit.
    let cluster_id = context.metadata.cluster_id();
    let connected = async {
        let mut client = match &context.tls {
            Some(tls) => {
                let connector = tls.connector()?;
                Client::connect_tls(&addr, &target.host, &connector, RESPONSE_MAX_BYTES_CAP).await?
            }
            None => Client::connect(&addr, RESPONSE_MAX_BYTES_CAP).await?,
        };
        let proven =
            node_auth::authenticate(&mut client, &context.secret, &cluster_id, context.node_id);
        if let Err(e) = proven.await {
            tracing::warn!(leader, %addr, error = %e, "authenticating to the leader failed");
            return Err(e);
        }
        anyhow::Ok(client)
    };
    match tokio::time::timeout(CONNECT_TIMEOUT, connected).await {
        Ok(Ok(client)) => Some(client),
        Ok(Err(e)) => {
            tracing::debug!(leader, %addr, error = %e, "cannot reach or authenticate to the leader");
            None
        }
        Err(_) => {
            tracing::debug!(leader, %addr, "connecting to the leader timed out");
            None
        }
    }
}

fn fetch_request(
    node_id: i32,
    followed: &FollowSet,
    positions: &BTreeMap<PartitionKey, FollowerPosition>,
) -> FetchRequest {
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for (key, f) in followed {
        let Some(at) = positions.get(key) else {
            continue;
        };
        topics.entry(&f.topic).or_default().push(
            FetchPartition::default()
                .with_partition(f.partition)
                .with_current_leader_epoch(f.leader_epoch)
                .with_fetch_offset(i64::try_from(at.log_end).unwrap_or(i64::MAX))
                .with_last_fetched_epoch(at.last_epoch)
                .with_log_start_offset(i64::try_from(at.log_start).unwrap_or(i64::MAX))
                .with_partition_max_bytes(PARTITION_MAX_BYTES),
        );
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(node_id))
        .with_max_wait_ms(MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(RESPONSE_MAX_BYTES)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    FetchTopic::default()
                        .with_topic(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        )
}

/// Applies one partition's answer; returns the follower's new position, or `None` when it
/// must be read again before the next fetch.
async fn apply(
    key: PartitionKey,
    f: Followed,
    at: FollowerPosition,
    data: PartitionData,
) -> (PartitionKey, Option<FollowerPosition>) {
    let outcome = match ResponseError::try_from_code(data.error_code) {
        None if data.diverging_epoch.end_offset >= 0 => {
            let divergence = Divergence::Epoch {
                epoch: data.diverging_epoch.epoch,
                end_offset: offset(data.diverging_epoch.end_offset),
            };
            truncate(&f, Some(divergence)).await
        }
        // New batches, or records the leader deleted from the front (DeleteRecords).
        None => match data
            .records
            .filter(|r| !r.is_empty())
            .or_else(|| (offset(data.log_start_offset) > at.log_start).then(Bytes::new))
        {
            Some(records) => {
                let appended = ask(&f.handle.addr, |reply| AppendAsFollower {
                    leader_epoch: f.leader_epoch,
                    records,
                    leader_high_watermark: offset(data.high_watermark),
                    leader_log_start: offset(data.log_start_offset),
                    reply,
                })
                .await;
                match appended {
                    Err(PartitionError::Storage(e)) => {
                        tracing::warn!(partition = %key, error = %e, "copied batches do not fit the log");
                        truncate(&f, Some(Divergence::Misaligned)).await
                    }
                    other => other,
                }
            }
            // Nothing new: the position stands.
            None => Ok(at),
        },
        Some(ResponseError::OffsetOutOfRange) => {
            let divergence = Divergence::OutOfRange {
                log_start: offset(data.log_start_offset),
                log_end: offset(data.high_watermark),
            };
            truncate(&f, Some(divergence)).await
        }
        Some(e) => {
            tracing::debug!(partition = %key, error = ?e, "replica fetch refused");
            return (key, None);
        }
    };
    match outcome {
        Ok(at) => (key, Some(at)),
        Err(e) => {
            tracing::debug!(partition = %key, error = %e, "follower could not take the fetched data");
            (key, None)
        }
    }
}

async fn truncate(
    f: &Followed,
    divergence: Option<Divergence>,
) -> Result<FollowerPosition, PartitionError> {
    ask(&f.handle.addr, |reply| TruncateFollower {
        divergence,
        reply,
    })
    .await
}

fn offset(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
