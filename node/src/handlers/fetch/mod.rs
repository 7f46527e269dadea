//! Fetch, from consumers ([`consumer`]: up to the high watermark) and from followers copying a
//! leader's log ([`replica`]: up to the log end, moving the high watermark). Both wait for data
//! with the same long poll ([`long_poll`]).
//!
//! Fetch sessions (KIP-227) are not kept: every answer is a full response with session id 0,
//! which tells clients to keep sending full requests.

mod consumer;
mod long_poll;
mod replica;

use std::sync::Arc;

use kafka_protocol::messages::{FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;
use crate::security::Principal;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: FetchRequest,
) -> FetchResponse {
    if request.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0);
    }
    // A follower copying the log names its broker id (in the replica state from v15).
    let replica = if call.version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    if replica >= 0 {
        // Only broker N itself, authenticated with the cluster secret, fetches as replica N:
        // a replica's fetch moves the high watermark, which a client must never do. This is
        // stricter than Kafka's CLUSTER_ACTION: no ACL lets a client fetch as a replica.
        if call.principal != Principal::Node(replica) {
            tracing::warn!(replica, principal = %call.principal, "replica fetch from a connection not authenticated as that broker");
            return FetchResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
        }
        replica::handle(&broker, call.version, replica, request).await
    } else {
        consumer::handle(&broker, &call, request).await
    }
}
