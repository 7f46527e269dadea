//! What consumer and replica fetches share: resolving the requested partitions once, waiting
//! for data (a long poll woken when a watched offset moves), and assembling the answer.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::{select_all, FutureExt};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;
use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use crate::broker::Broker;
use crate::handlers::routing::TopicRef;
use crate::metadata::{MetadataImage, TopicMeta};
use crate::shutdown::Shutdown;

/// Resolves every requested partition once for all rounds of the poll: `wanted` turns a
/// partition of a requested topic (with the topic's lookup result) into the caller's record of
/// it. Returns
/// those records and an empty answer per topic, in request order. A partition named twice is
/// read once (Kafka keeps one entry per partition), so repeating a name cannot multiply the
/// answer.
pub(super) fn resolve<W>(
    image: &MetadataImage,
    version: i16,
    request: &FetchRequest,
    mut wanted: impl FnMut(
        usize,
        Result<Arc<TopicMeta>, ResponseError>,
        &FetchTopic,
        &FetchPartition,
    ) -> W,
) -> (Vec<W>, Vec<FetchableTopicResponse>) {
    let mut out = Vec::new();
    let mut shells: Vec<FetchableTopicResponse> = Vec::new();
    let mut topics: HashMap<(&str, Uuid), usize> = HashMap::new();
    let mut seen: HashSet<(usize, i32)> = HashSet::new();
    for topic in &request.topics {
        // Topics are named by id from v13.
        let reference = if version >= 13 {
            TopicRef::Id(topic.topic_id)
        } else {
            TopicRef::Name(&topic.topic)
        };
        let found = reference.find(image);
        let index = *topics
            .entry((topic.topic.as_str(), topic.topic_id))
            .or_insert_with(|| {
                shells.push(
                    FetchableTopicResponse::default()
                        .with_topic(topic.topic.clone())
                        .with_topic_id(topic.topic_id),
                );
                shells.len() - 1
            });
        for p in &topic.partitions {
            if seen.insert((index, p.partition)) {
                out.push(wanted(index, found.clone(), topic, p));
            }
        }
    }
    (out, shells)
}

/// One fetch's long poll: its byte budget, its deadline, and the offsets whose moves wake it.
pub(super) struct Poll {
    /// Record bytes the answer may carry: the request's `max_bytes`, capped by the broker's
    /// `fetch.max.bytes`.
    pub response_max: usize,
    deadline: Instant,
    shutdown: Shutdown,
    watchers: Vec<watch::Receiver<u64>>,
}

impl Poll {
    pub fn new(
        broker: &Broker,
        request: &FetchRequest,
        watchers: Vec<watch::Receiver<u64>>,
    ) -> Self {
        let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
        Poll {
            response_max: usize::try_from(request.max_bytes)
                .unwrap_or(0)
                .min(broker.config.fetch_max_bytes),
            deadline: Instant::now() + wait,
            shutdown: broker.shutdown.clone(),
            watchers,
        }
    }

    /// Call before each read: marks every watched offset as seen, so [`Poll::wait`] returns
    /// only for a later move.
    pub fn start_round(&mut self) {
        for w in &mut self.watchers {
            w.borrow_and_update();
        }
    }

    /// Whether to answer with what there is: the deadline passed or the node is stopping.
    pub fn is_over(&self) -> bool {
        Instant::now() >= self.deadline || self.shutdown.is_shutdown()
    }

    /// Waits until a watched offset moves, the deadline passes, or the node begins to stop.
    pub async fn wait(&mut self) {
        let watchers = &mut self.watchers;
        let moved = async {
            if watchers.is_empty() {
                futures::future::pending::<()>().await;
            }
            let _ = select_all(watchers.iter_mut().map(|w| w.changed().boxed())).await;
        };
        tokio::select! {
            () = moved => {}
            () = tokio::time::sleep_until(self.deadline) => {}
            () = self.shutdown.recv() => {}
        }
    }
}

/// The answer: each partition under its topic, in request order.
pub(super) fn respond(
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

/// A partition's answer when it cannot be read.
pub(super) fn failed(partition: i32, error: ResponseError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(error.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_records(Some(bytes::Bytes::new()))
}
