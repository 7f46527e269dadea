//! AddRaftVoter v0 (KIP-853): an operator's consent for a node that joined the metadata group
//! (as a learner, which KRaft calls an observer) to become a voter, up to
//! `brook.raft.max.voters`. What `kafka-metadata-quorum add-controller` and
//! `brook cluster promote` send. Needs ALTER on the cluster.
//!
//! The voter is named by its node id; the directory id and listeners KRaft also sends are not
//! used (brook's voters are reached at the Raft address they joined with).

use std::sync::Arc;
use std::time::Duration;

use brook_raft::acl::AclOperation;
use kafka_protocol::messages::{AddRaftVoterRequest, AddRaftVoterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;
use crate::metadata::MetaError;

/// How long a promotion may take when the request names no (or a silly) timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    let failed = |code: ResponseError, message: String| {
        AddRaftVoterResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if !call.may_on_cluster(&broker, AclOperation::Alter) {
        let why = "Cluster authorization failed.".to_string();
        return failed(ResponseError::ClusterAuthorizationFailed, why);
    }
    let cluster_id = broker.metadata.cluster_id();
    if let Some(asked) = request.cluster_id.as_deref().filter(|c| *c != cluster_id) {
        let why = format!("this is cluster {cluster_id}, not {asked}");
        return failed(ResponseError::InconsistentClusterId, why);
    }
    let Ok(id) = u64::try_from(request.voter_id) else {
        return failed(ResponseError::InvalidRequest, "a negative voter id".into());
    };
    let timeout = u64::try_from(request.timeout_ms)
        .ok()
        .filter(|t| *t > 0)
        .map_or(MAX_TIMEOUT, |t| Duration::from_millis(t).min(MAX_TIMEOUT));
    match broker.metadata.raft().promote(id, timeout).await {
        Ok(_) => {
            tracing::info!(voter = id, "node promoted to metadata voter");
            AddRaftVoterResponse::default().with_error_message(None)
        }
        Err(MetaError::Write(why)) => failed(ResponseError::InvalidRequest, why),
        Err(MetaError::Timeout(t)) => failed(
            ResponseError::RequestTimedOut,
            format!("no leader promoted node {id} within {t:?}"),
        ),
        Err(e) => failed(meta_error(&e), e.to_string()),
    }
}
