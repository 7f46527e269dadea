//! ElectLeaders: move leadership back to each partition's preferred replica (election type 0,
//! the only one at v0), or give a leaderless partition a leader from its live replicas even if
//! none is in sync (type 1, unclean). The election is one Raft write, decided as it is applied.
//!
//! As Kafka's controller: a null partition list means every partition, and then the partitions
//! that already have the leader the election would pick are left out of the answer. Needs ALTER
//! on the cluster.

use std::collections::BTreeSet;
use std::sync::Arc;

use brook_raft::{codes, CommandOutput, MetadataCommand};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;
use crate::errors::{error_name, meta_error};

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: ElectLeadersRequest,
) -> ElectLeadersResponse {
    let election = if call.version == 0 {
        PREFERRED
    } else {
        request.election_type
    };
    if election != PREFERRED && election != UNCLEAN {
        return ElectLeadersResponse::default().with_error_code(codes::INVALID_REQUEST);
    }
    if !call.may_on_cluster(&broker, AclOperation::Alter) {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let all = request.topic_partitions.is_none();
    let image = broker.image();
    // Every partition asked for, once, in the order asked: a partition the image does not
    // know is answered here; the rest go to the election.
    let asked: Vec<(String, i32)> = match &request.topic_partitions {
        Some(topics) => {
            let mut seen = BTreeSet::new();
            topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|&p| (t.topic.to_string(), p)))
                .filter(|tp| seen.insert(tp.clone()))
                .collect()
        }
        None => image
            .topics()
            .flat_map(|t| (0..t.partitions).map(|p| (t.name.clone(), p)))
            .collect(),
    };
    let known = |(topic, p): &(String, i32)| image.topic(topic).and_then(|t| t.owner(*p)).is_some();
    let partitions: Vec<(String, u32)> = asked
        .iter()
        .filter(|tp| known(tp))
        .map(|(t, p)| (t.clone(), u32::try_from(*p).unwrap_or(u32::MAX)))
        .collect();
    let elected = if partitions.is_empty() {
        Ok(Vec::new())
    } else {
        let cmd = if election == UNCLEAN {
            MetadataCommand::ElectUncleanLeaders { partitions }
        } else {
            MetadataCommand::ElectPreferredLeaders { partitions }
        };
        match broker.metadata.write(cmd).await {
            Ok(CommandOutput::PartitionResults { codes }) => Ok(codes),
            Ok(other) => {
                tracing::error!(?other, "unexpected answer to an election");
                Err(ResponseError::UnknownServerError.code())
            }
            Err(e) => Err(meta_error(&e).code()),
        }
    };
    let mut elected_codes = elected.as_ref().map(|c| c.iter());
    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for tp in asked {
        let code = if !known(&tp) {
            codes::UNKNOWN_TOPIC_OR_PARTITION
        } else {
            match &mut elected_codes {
                Ok(decided) => decided
                    .next()
                    .copied()
                    .unwrap_or(codes::UNKNOWN_SERVER_ERROR),
                Err(code) => **code,
            }
        };
        if all && code == codes::ELECTION_NOT_NEEDED {
            continue;
        }
        let (topic, partition) = tp;
        let answer = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(code)
            .with_error_message((code != codes::NONE).then(|| StrBytes::from(error_name(code))));
        match results.last_mut() {
            Some(r) if r.topic.as_str() == topic => r.partition_result.push(answer),
            _ => results.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(StrBytes::from(topic)))
                    .with_partition_result(vec![answer]),
            ),
        }
    }
    if election == UNCLEAN {
        tracing::info!(
            partitions = results.len(),
            "unclean leader election requested"
        );
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}
