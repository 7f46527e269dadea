//! RemoveRaftVoter v0 (KIP-853): an operator takes a voter's vote away; the node stays in the
//! metadata group as a learner (KRaft's observer) and keeps serving as a broker. What
//! `kafka-metadata-quorum remove-controller` and `brook cluster demote` send. Needs ALTER on
//! the cluster.
//!
//! A node that is not a voter (as this node last saw the group) is VOTER_NOT_FOUND, as in
//! Kafka; the group's only voter is kept (INVALID_REQUEST). The directory id is not used.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::{RemoveRaftVoterRequest, RemoveRaftVoterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{raft_voters, Call};
use crate::broker::Broker;

/// KIP-853's request has no timeout; the leader gets this long to commit the change.
const TIMEOUT_MS: i32 = 30_000;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    let cluster_id = request.cluster_id.as_deref();
    let refusal = match raft_voters::check(&broker, &call, cluster_id, request.voter_id, TIMEOUT_MS)
    {
        Err(refusal) => refusal,
        Ok((id, _)) if !broker.metadata.raft().is_voter(id) => (
            ResponseError::VoterNotFound,
            format!("node {id} is not a voter of the metadata group"),
        ),
        Ok((id, timeout)) => match demote(&broker, id, timeout).await {
            Ok(()) => {
                tracing::info!(
                    voter = id,
                    "node removed from the metadata voters; it stays a learner"
                );
                return RemoveRaftVoterResponse::default().with_error_message(None);
            }
            Err(refusal) => refusal,
        },
    };
    let (code, message) = refusal;
    RemoveRaftVoterResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

async fn demote(broker: &Broker, id: u64, timeout: Duration) -> Result<(), raft_voters::Refusal> {
    match broker.metadata.raft().demote(id, timeout).await {
        Ok(_) => Ok(()),
        Err(e) => Err(raft_voters::failed(id, e)),
    }
}
