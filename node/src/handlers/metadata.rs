//! Metadata: brokers, and each topic's partitions with this node as their leader. Unknown topics
//! are created when `auto.create.topics.enable` and the request allow it.
//!
//! Authorization as in Kafka: a listing of every topic leaves out those the caller may not
//! DESCRIBE; a topic asked for by name or id that it may not DESCRIBE gets
//! TOPIC_AUTHORIZATION_FAILED (whether or not it exists), and so does a missing topic it may
//! not CREATE (on the cluster or the topic) when it would be auto-created. Authorized
//! operations are filled in when asked for.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;
use crate::metadata::{validate_topic_name, MetadataImage, NewTopic, TopicMeta};
use crate::partitions;
use crate::security::authorizer::OPERATIONS_NOT_REQUESTED;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: MetadataRequest,
) -> MetadataResponse {
    let broker = &broker;
    let version = call.version;
    // v0 has no null list: an empty list means every topic.
    let requested = match request.topics {
        Some(list) if version == 0 && list.is_empty() => None,
        other => other,
    };
    let auto_create =
        broker.config.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let image = broker.image();
    let view = View {
        broker,
        call: &call,
        operations: request.include_topic_authorized_operations && version >= 8,
    };
    let topics = match requested {
        None => image
            .topics()
            .filter(|t| view.describable(&t.name))
            .map(|t| view.describe(t))
            .collect(),
        Some(list) => {
            // A topic named twice is described once, as Kafka does: the answer stays
            // proportional to the cluster, not to how often a request repeats a name.
            let mut seen = std::collections::HashSet::new();
            let mut topics = Vec::with_capacity(list.len());
            for wanted in list {
                if !seen.insert((wanted.name.clone(), wanted.topic_id)) {
                    continue;
                }
                let entry = match wanted.name {
                    Some(name) => view.by_name(&name, auto_create).await,
                    None => match image.topic_by_id(wanted.topic_id) {
                        Some(t) if view.describable(&t.name) => view.describe(t),
                        found => MetadataResponseTopic::default()
                            .with_error_code(match found {
                                Some(_) => ResponseError::TopicAuthorizationFailed.code(),
                                None => ResponseError::UnknownTopicId.code(),
                            })
                            .with_topic_id(wanted.topic_id)
                            .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED),
                    },
                };
                topics.push(entry);
            }
            topics
        }
    };
    let mut response = MetadataResponse::default()
        .with_brokers(live_brokers(broker, &call.listener, version, &image))
        .with_topics(topics);
    // The controller exists from v1, the cluster id from v2.
    if version >= 1 {
        response = response.with_controller_id(BrokerId(broker.metadata.controller_id()));
    }
    if version >= 2 {
        let id = broker.metadata.cluster_id();
        response = response.with_cluster_id(Some(StrBytes::from_string(id)));
    }
    // The cluster's authorized operations exist in v8-10.
    if (8..=10).contains(&version) {
        let asked = request.include_cluster_authorized_operations;
        response =
            response.with_cluster_authorized_operations(call.cluster_operations(broker, asked));
    }
    response
}

/// One request's view of the topics: who asks, and whether it wants its authorized
/// operations on each.
struct View<'a> {
    broker: &'a Arc<Broker>,
    call: &'a Call,
    operations: bool,
}

impl View<'_> {
    fn describable(&self, topic: &str) -> bool {
        self.call.may(
            self.broker,
            AclOperation::Describe,
            ResourceType::Topic,
            topic,
        )
    }

    fn creatable(&self, topic: &str) -> bool {
        self.call.may_on_cluster(self.broker, AclOperation::Create)
            || self.call.may(
                self.broker,
                AclOperation::Create,
                ResourceType::Topic,
                topic,
            )
    }

    fn describe(&self, topic: &TopicMeta) -> MetadataResponseTopic {
        let operations = self.call.operations(
            self.broker,
            self.operations,
            ResourceType::Topic,
            &topic.name,
        );
        describe(self.broker, self.call, topic).with_topic_authorized_operations(operations)
    }

    async fn by_name(&self, name: &TopicName, auto_create: bool) -> MetadataResponseTopic {
        if !self.describable(name) {
            return failed(name, ResponseError::TopicAuthorizationFailed);
        }
        let auto_create = auto_create && self.broker.image().topic(name).is_none();
        if auto_create && !self.creatable(name) {
            return failed(name, ResponseError::TopicAuthorizationFailed);
        }
        match by_name(self.broker, name, auto_create).await {
            Ok(topic) => self.describe(&topic),
            Err(e) => failed(name, e),
        }
    }
}

fn failed(name: &TopicName, e: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(e.code())
        .with_name(Some(name.clone()))
        .with_topic_authorized_operations(OPERATIONS_NOT_REQUESTED)
}

/// A topic by name, created first when it is missing and `auto_create`.
async fn by_name(
    broker: &Arc<Broker>,
    name: &TopicName,
    auto_create: bool,
) -> Result<Arc<TopicMeta>, ResponseError> {
    if let Some(topic) = broker.image().topic(name) {
        return Ok(topic.clone());
    }
    if let Err(reason) = validate_topic_name(name) {
        tracing::debug!(%reason, "metadata for an invalid topic name");
        return Err(ResponseError::InvalidTopicException);
    }
    if !auto_create {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    let partitions = broker.config.num_partitions;
    let topic = NewTopic {
        name: name.to_string(),
        partitions,
        replication_factor: broker.default_replication_factor(),
        configs: Default::default(),
        assignment: Vec::new(),
    };
    match partitions::create_topic(broker, topic).await {
        Ok(_) => tracing::info!(topic = %name.0, partitions, "auto-created topic"),
        // Another request created it in the meantime.
        Err(e) if e.kafka_code() == ResponseError::TopicAlreadyExists.code() => {}
        Err(e) => {
            tracing::error!(topic = %name.0, error = %e, "auto-creating topic failed");
            return Err(meta_error(&e));
        }
    }
    // A delete may already have removed it again: the client asks again.
    broker
        .image()
        .topic(name)
        .cloned()
        .ok_or(ResponseError::LeaderNotAvailable)
}

/// The brokers clients may connect to: the live ones. This node is listed even before its
/// registration is applied, since it is evidently up.
fn live_brokers(
    broker: &Broker,
    listener: &str,
    version: i16,
    image: &MetadataImage,
) -> Vec<MetadataResponseBroker> {
    let entry = |id: i32, host: &str, port: i32, rack: Option<&String>| {
        let b = MetadataResponseBroker::default()
            .with_node_id(BrokerId(id))
            .with_host(StrBytes::from_string(host.to_owned()))
            .with_port(port);
        // Racks exist from v1.
        match rack {
            Some(rack) if version >= 1 => b.with_rack(Some(StrBytes::from_string(rack.clone()))),
            _ => b,
        }
    };
    // Each broker as reached through the caller's listener; one without it is left out.
    let mut brokers: Vec<MetadataResponseBroker> = image
        .brokers()
        .filter(|b| b.live)
        .filter_map(|b| {
            let (host, port) = b.address(listener)?;
            Some(entry(b.id, host, port, b.rack.as_ref()))
        })
        .collect();
    if let (false, Some((host, port))) = (image.is_live(broker.node_id()), broker.address(listener))
    {
        let rack = broker.config.cluster.rack.as_ref();
        brokers.push(entry(broker.node_id(), host, port, rack));
    }
    brokers
}

/// Each partition with its leader, replicas, in-sync replicas and the replicas that are down.
/// A partition without a leader answers LEADER_NOT_AVAILABLE (retriable) with leader -1.
fn describe(broker: &Broker, call: &Call, topic: &TopicMeta) -> MetadataResponseTopic {
    let version = call.version;
    let image = broker.image();
    // A leader the caller's listener does not reach (nodes configured with different
    // listeners) is reported as Kafka does: LISTENER_NOT_FOUND from v6, else unavailable.
    let reachable = |id: i32| {
        if id == broker.node_id() {
            broker.address(&call.listener).is_some()
        } else {
            image
                .broker(id)
                .is_some_and(|b| b.address(&call.listener).is_some())
        }
    };
    let live = |id: i32| is_up(broker, &image, id);
    let ids = |ids: &[i32]| ids.iter().copied().map(BrokerId).collect::<Vec<_>>();
    let partitions = (0..topic.partitions)
        .zip(&topic.owners)
        .map(|(p, meta)| {
            let offline: Vec<i32> = meta
                .replicas
                .iter()
                .copied()
                .filter(|&r| !live(r))
                .collect();
            let mut partition = MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(meta.node))
                .with_replica_nodes(ids(&meta.replicas))
                .with_isr_nodes(ids(&meta.isr));
            if meta.node < 0 || !live(meta.node) {
                partition = partition
                    .with_error_code(ResponseError::LeaderNotAvailable.code())
                    .with_leader_id(BrokerId(-1));
            } else if !reachable(meta.node) {
                let error = if version >= 6 {
                    ResponseError::ListenerNotFound
                } else {
                    ResponseError::LeaderNotAvailable
                };
                partition = partition
                    .with_error_code(error.code())
                    .with_leader_id(BrokerId(-1));
            }
            // Offline replicas exist from v5, leader epochs from v7.
            if version >= 5 {
                partition = partition.with_offline_replicas(ids(&offline));
            }
            if version >= 7 {
                partition = partition.with_leader_epoch(meta.leader_epoch);
            }
            partition
        })
        .collect();
    let described = MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_partitions(partitions);
    // Topic ids exist from v10.
    if version >= 10 {
        described.with_topic_id(topic.id)
    } else {
        described
    }
}

/// Whether broker `id` is up as clients should see it: this node while it holds its lease,
/// others while they heartbeat.
pub(super) fn is_up(broker: &Broker, image: &MetadataImage, id: i32) -> bool {
    if id == broker.node_id() {
        broker.lease.holds()
    } else {
        image.is_live(id)
    }
}
