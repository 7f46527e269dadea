//! InitProducerId: a new producer id for an idempotent producer. Transactions are not supported.
//! An idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on some topic
//! (KIP-679), CLUSTER_AUTHORIZATION_FAILED otherwise.
//!
//! A producer id and epoch in the request (KIP-360's bump after a fatal sequence error) are not
//! taken on trust: as Kafka does for a producer without a transactional id, the answer is always
//! a fresh id at epoch 0. Bumping the epoch of whatever id a client names would let any client
//! fence any other producer.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let broker = &broker;
    let fail = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        tracing::info!(
            "InitProducerId with a transactional id refused: transactions are not supported"
        );
        return fail(ResponseError::TransactionalIdAuthorizationFailed);
    }
    let idempotent = call.may_on_cluster(broker, AclOperation::IdempotentWrite)
        || call.may_on_some(broker, AclOperation::Write, ResourceType::Topic);
    if !idempotent {
        return fail(ResponseError::ClusterAuthorizationFailed);
    }
    match broker.metadata.allocate_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!(error = %e, "allocating a producer id failed");
            fail(meta_error(&e))
        }
    }
}
