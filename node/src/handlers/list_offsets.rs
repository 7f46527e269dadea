//! ListOffsets: earliest, latest, the first offset at or after a timestamp, and the offset of the
//! largest timestamp, per partition. Each topic needs DESCRIBE.

use std::sync::Arc;

use brook_actors::{ask, ListOffset, OffsetQuery};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;
use crate::errors::partition_error;
use crate::handlers::routing;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
/// KIP-405: earliest offset in local storage; with no tiered storage it is the log start.
const EARLIEST_LOCAL: i64 = -4;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let broker = &broker;
    let version = call.version;
    let image = broker.image();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let found =
            routing::find_authorized(broker, &call, &image, &topic.name, AclOperation::Describe);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let response =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let answer = async {
                let meta = found.clone()?;
                routing::check_leader_epoch(
                    p.current_leader_epoch,
                    meta.owner(p.partition_index).map_or(0, |o| o.leader_epoch),
                )?;
                let handle = routing::partition(broker, &meta, p.partition_index)?;
                let query = match p.timestamp {
                    LATEST => OffsetQuery::Latest,
                    EARLIEST => OffsetQuery::Earliest,
                    MAX_TIMESTAMP if version >= 7 => OffsetQuery::MaxTimestamp,
                    EARLIEST_LOCAL if version >= 8 => OffsetQuery::Earliest,
                    t if t >= 0 => OffsetQuery::Timestamp(t),
                    _ => return Err(ResponseError::InvalidRequest),
                };
                ask(&handle.addr, |reply| ListOffset { query, reply })
                    .await
                    .map_err(|e| partition_error(&e))
            };
            partitions.push(match answer.await {
                Ok(a) => {
                    let response = response.with_offset(a.offset).with_timestamp(a.timestamp);
                    // The leader epoch field exists from v4.
                    if version >= 4 {
                        response.with_leader_epoch(a.leader_epoch)
                    } else {
                        response
                    }
                }
                Err(e) => response
                    .with_error_code(e.code())
                    .with_offset(-1)
                    .with_timestamp(-1),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
