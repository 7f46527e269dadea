//! DescribeCluster: the cluster id, the controller and the brokers. Anyone may ask, as in
//! Kafka; the cluster's authorized operations are shown to a caller that may DESCRIBE it.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;

/// KIP-919: endpoint type 1 asks for brokers; 2 (controllers) is not something brook separates.
const BROKERS: i8 = 1;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let broker = &broker;
    let version = call.version;
    if request.endpoint_type != BROKERS {
        return DescribeClusterResponse::default()
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_endpoint_type(request.endpoint_type);
    }
    let image = broker.image();
    // Brokers that missed their heartbeats are listed as fenced from v2 (KIP-1073) and left
    // out before, as Kafka does.
    let mut brokers: Vec<DescribeClusterBroker> = image
        .brokers()
        .filter(|b| b.live || version >= 2)
        // Each broker as reached through the caller's listener; one without it is left out.
        .filter_map(|b| {
            let (host, port) = b.address(&call.listener)?;
            let entry = DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(host.to_owned()))
                .with_port(port)
                .with_rack(b.rack.clone().map(StrBytes::from_string));
            Some(if version >= 2 {
                entry.with_is_fenced(!b.live)
            } else {
                entry
            })
        })
        .collect();
    if let (None, Some((host, port))) = (
        image.broker(broker.node_id()),
        broker.address(&call.listener),
    ) {
        brokers.push(
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(broker.node_id()))
                .with_host(StrBytes::from_string(host.to_owned()))
                .with_port(port),
        );
    }
    DescribeClusterResponse::default()
        .with_endpoint_type(BROKERS)
        .with_cluster_id(StrBytes::from_string(broker.metadata.cluster_id()))
        .with_controller_id(BrokerId(broker.metadata.controller_id()))
        .with_cluster_authorized_operations(
            call.cluster_operations(broker, request.include_cluster_authorized_operations),
        )
        .with_brokers(brokers)
}
