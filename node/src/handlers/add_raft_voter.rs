//! AddRaftVoter v0 (KIP-853): an operator's consent for a node that joined the metadata group
//! (as a learner, which KRaft calls an observer) to become a voter, up to
//! `brook.raft.max.voters`. What `kafka-metadata-quorum add-controller` and
//! `brook cluster promote` send. Needs ALTER on the cluster.
//!
//! The voter is named by its node id; the directory id and listeners KRaft also sends are not
//! used (brook's voters are reached at the Raft address they joined with).

use std::sync::Arc;

use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse};
use kafka_protocol::protocol::StrBytes;

use super::{raft_voters, Call};
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    let cluster_id = request.cluster_id.as_deref();
    let refusal = match raft_voters::check(
        &broker,
        &call,
        cluster_id,
        request.voter_id,
        request.timeout_ms,
    ) {
        Err(refusal) => refusal,
        Ok((id, timeout)) => match broker.metadata.raft().promote(id, timeout).await {
            Ok(_) => {
                tracing::info!(voter = id, "node promoted to metadata voter");
                return AddRaftVoterResponse::default().with_error_message(None);
            }
            Err(e) => raft_voters::failed(id, e),
        },
    };
    let (code, message) = refusal;
    AddRaftVoterResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}
