//! DeleteRecords: moves partitions' log start offsets forward (what `kafka-delete-records` and
//! Kafka Streams' purging of repartition topics call). Each partition is answered with its low
//! watermark once every in-sync replica's log starts there, or REQUEST_TIMED_OUT after the
//! request's `timeout_ms`; the leader's log start has moved either way, as in Kafka. Each
//! topic needs DELETE.

use std::sync::Arc;
use std::time::Duration;

use brook_actors::{ask, DeleteRecords};
use futures::future::join_all;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;
use crate::errors::partition_error;
use crate::handlers::routing;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let broker = &broker;
    let image = broker.image();
    let wait = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let topics = request.topics.into_iter().map(|topic| {
        let found =
            routing::find_authorized(broker, &call, &image, &topic.name, AclOperation::Delete);
        let partitions = topic.partitions.into_iter().map(move |p| {
            let found = found.clone();
            async move {
                let answer = async {
                    let meta = found?;
                    let handle = routing::partition(broker, &meta, p.partition_index)?;
                    let deleted = ask(&handle.addr, |reply| DeleteRecords {
                        offset: p.offset,
                        reply,
                    });
                    match tokio::time::timeout(wait, deleted).await {
                        Ok(result) => result.map_err(|e| partition_error(&e)),
                        Err(_) => Err(ResponseError::RequestTimedOut),
                    }
                };
                let result =
                    DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                match answer.await {
                    Ok(low) => result.with_low_watermark(i64::try_from(low).unwrap_or(i64::MAX)),
                    Err(e) => result.with_low_watermark(-1).with_error_code(e.code()),
                }
            }
        });
        async move {
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(join_all(partitions).await)
        }
    });
    DeleteRecordsResponse::default().with_topics(join_all(topics).await)
}
