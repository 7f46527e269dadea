//! What AddRaftVoter and RemoveRaftVoter (KIP-853) share: both need ALTER on the cluster,
//! name this cluster (or none), and bound how long the leader may take.

use std::time::Duration;

use brook_raft::acl::AclOperation;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;
use crate::metadata::MetaError;

/// How long a voter change may take when the request names no (or a silly) timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a voter change is refused: Kafka's code and a message.
pub(super) type Refusal = (ResponseError, String);

/// The voter's id and the time allowed, once the caller may change voters of this cluster.
pub(super) fn check(
    broker: &Broker,
    call: &Call,
    cluster_id: Option<&str>,
    voter_id: i32,
    timeout_ms: i32,
) -> Result<(u64, Duration), Refusal> {
    if !call.may_on_cluster(broker, AclOperation::Alter) {
        let why = "Cluster authorization failed.".to_string();
        return Err((ResponseError::ClusterAuthorizationFailed, why));
    }
    let ours = broker.metadata.cluster_id();
    if let Some(asked) = cluster_id.filter(|c| *c != ours) {
        let why = format!("this is cluster {ours}, not {asked}");
        return Err((ResponseError::InconsistentClusterId, why));
    }
    let Ok(id) = u64::try_from(voter_id) else {
        return Err((ResponseError::InvalidRequest, "a negative voter id".into()));
    };
    let timeout = u64::try_from(timeout_ms)
        .ok()
        .filter(|t| *t > 0)
        .map_or(MAX_TIMEOUT, |t| Duration::from_millis(t).min(MAX_TIMEOUT));
    Ok((id, timeout))
}

/// Kafka's code for a voter change the leader did not make.
pub(super) fn failed(id: u64, error: MetaError) -> Refusal {
    match error {
        MetaError::Write(why) => (ResponseError::InvalidRequest, why),
        MetaError::Timeout(t) => (
            ResponseError::RequestTimedOut,
            format!("no leader changed the voters for node {id} within {t:?}"),
        ),
        e => (meta_error(&e), e.to_string()),
    }
}
