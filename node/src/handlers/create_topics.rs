//! CreateTopics: validate each topic (name, partitions, replication factor, assignments, configs),
//! then create it unless `validate_only`. v5+ answers with the configs in force.
//!
//! A topic needs CREATE on the cluster or on the topic (TOPIC_AUTHORIZATION_FAILED otherwise),
//! and its configs are shown only with DESCRIBE_CONFIGS on it, as in Kafka.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;
use crate::config::topic::{describe_topic, TopicConfig};
use crate::errors::meta_error;
use crate::metadata::validate_topic_name;
use crate::metadata::NewTopic;
use crate::partitions;

/// A topic the request may create: its partition count, replication factor and configs.
struct Plan {
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
    /// The replicas of each partition (leader first) when the request assigned them; empty
    /// for automatic placement.
    assignment: Vec<Vec<u64>>,
}

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let broker = &broker;
    let version = call.version;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for t in &request.topics {
        *seen.entry(t.name.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let name = topic.name.clone();
        let result = CreatableTopicResult::default().with_name(name.clone());
        // Kafka refuses every copy of a name listed twice.
        if seen.get(name.as_str()).copied().unwrap_or(0) > 1 {
            results.push(fail(
                result,
                ResponseError::InvalidRequest,
                format!("topic `{}` is listed more than once", name.as_str()),
            ));
            continue;
        }
        let creatable = call.may_on_cluster(broker, AclOperation::Create)
            || call.may(broker, AclOperation::Create, ResourceType::Topic, &name);
        if !creatable {
            let why = "Authorization failed.".to_string();
            results.push(fail(result, ResponseError::TopicAuthorizationFailed, why));
            continue;
        }
        let plan = match plan(broker, &topic) {
            Ok(plan) => plan,
            Err((e, why)) => {
                results.push(fail(result, e, why));
                continue;
            }
        };
        // Only a dry run answers TOPIC_ALREADY_EXISTS from this node's image; a real create
        // lets the Raft log decide, since the image may be stale (a topic deleted meanwhile).
        if request.validate_only && broker.image().topic(&name).is_some() {
            let why = format!("topic `{}` already exists", name.as_str());
            results.push(fail(result, ResponseError::TopicAlreadyExists, why));
            continue;
        }
        let described = describe_topic(broker.image().defaults(), &plan.configs);
        let result = if request.validate_only {
            result
        } else {
            let topic = NewTopic {
                name: name.to_string(),
                partitions: plan.partitions,
                replication_factor: u32::try_from(plan.replication_factor).unwrap_or(1),
                configs: plan.configs,
                assignment: plan.assignment,
            };
            match partitions::create_topic(broker, topic).await {
                Ok(id) => {
                    tracing::info!(topic = %name.as_str(), partitions = plan.partitions, "created topic");
                    // Topic ids exist from v7.
                    if version >= 7 {
                        result.with_topic_id(id)
                    } else {
                        result
                    }
                }
                Err(e) => {
                    results.push(fail(result, meta_error(&e), e.to_string()));
                    continue;
                }
            }
        };
        // v5+ answers with what the topic got: partitions, replication and configs.
        let shows_configs = call.may(
            broker,
            AclOperation::DescribeConfigs,
            ResourceType::Topic,
            &name,
        );
        results.push(if version >= 5 && !shows_configs {
            result.with_topic_config_error_code(ResponseError::TopicAuthorizationFailed.code())
        } else if version >= 5 {
            result
                .with_num_partitions(plan.partitions)
                .with_replication_factor(plan.replication_factor)
                .with_configs(Some(
                    described
                        .into_iter()
                        .map(|c| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(c.name))
                                .with_value(Some(StrBytes::from_string(c.value)))
                                .with_config_source(c.source)
                        })
                        .collect(),
                ))
        } else {
            result
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn plan(broker: &Broker, topic: &CreatableTopic) -> Result<Plan, (ResponseError, String)> {
    validate_topic_name(&topic.name).map_err(|why| (ResponseError::InvalidTopicException, why))?;
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            (
                ResponseError::InvalidConfig,
                format!("config `{}` has a null value", c.name.as_str()),
            )
        })?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    TopicConfig::resolve(broker.image().defaults(), &configs)
        .map_err(|why| (ResponseError::InvalidConfig, why))?;
    let (partitions, replication_factor) = if topic.assignments.is_empty() {
        let partitions = match topic.num_partitions {
            -1 => broker.config.num_partitions,
            n if n > 0 => n,
            n => {
                return Err((
                    ResponseError::InvalidPartitions,
                    format!("number of partitions must be positive, got {n}"),
                ))
            }
        };
        let rf = match topic.replication_factor {
            -1 => i16::try_from(broker.default_replication_factor()).unwrap_or(1),
            n if n > 0 => n,
            n => {
                return Err((
                    ResponseError::InvalidReplicationFactor,
                    format!("replication factor must be positive, got {n}"),
                ))
            }
        };
        (partitions, rf)
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            let why = "with manual assignments, num_partitions and replication_factor must be -1"
                .to_string();
            return Err((ResponseError::InvalidRequest, why));
        }
        let mut indexes: Vec<i32> = topic
            .assignments
            .iter()
            .map(|a| a.partition_index)
            .collect();
        indexes.sort_unstable();
        if indexes
            .iter()
            .enumerate()
            .any(|(i, &p)| usize::try_from(p).ok() != Some(i))
        {
            let why = "assignments must cover partitions 0..n exactly once".to_string();
            return Err((ResponseError::InvalidReplicaAssignment, why));
        }
        let image = broker.image();
        for a in &topic.assignments {
            if a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| image.broker(b.0).is_none()) {
                let why = format!(
                    "partition {} is assigned to brokers that do not exist",
                    a.partition_index
                );
                return Err((ResponseError::InvalidReplicaAssignment, why));
            }
        }
        let rf = topic
            .assignments
            .first()
            .map_or(1, |a| i16::try_from(a.broker_ids.len()).unwrap_or(i16::MAX));
        (
            i32::try_from(topic.assignments.len()).unwrap_or(i32::MAX),
            rf,
        )
    };
    let live = broker.image().brokers().filter(|b| b.live).count();
    if topic.assignments.is_empty() && usize::try_from(replication_factor).unwrap_or(0) > live {
        let why = format!(
            "replication factor {replication_factor} is larger than the {live} live brokers"
        );
        return Err((ResponseError::InvalidReplicationFactor, why));
    }
    let mut assigned: Vec<(i32, Vec<u64>)> = Vec::with_capacity(topic.assignments.len());
    for a in &topic.assignments {
        let mut replicas: Vec<u64> = a
            .broker_ids
            .iter()
            .filter_map(|b| u64::try_from(b.0).ok())
            .collect();
        if replicas.len() != usize::try_from(replication_factor).unwrap_or(0) {
            let why = "every partition must have the same number of replicas".to_string();
            return Err((ResponseError::InvalidReplicaAssignment, why));
        }
        let count = replicas.len();
        replicas.sort_unstable();
        replicas.dedup();
        if replicas.len() != count {
            let why = format!("partition {} names a broker twice", a.partition_index);
            return Err((ResponseError::InvalidReplicaAssignment, why));
        }
        let ordered = a
            .broker_ids
            .iter()
            .filter_map(|b| u64::try_from(b.0).ok())
            .collect();
        assigned.push((a.partition_index, ordered));
    }
    assigned.sort_unstable();
    Ok(Plan {
        partitions,
        replication_factor,
        configs,
        assignment: assigned.into_iter().map(|(_, replicas)| replicas).collect(),
    })
}

fn fail(result: CreatableTopicResult, error: ResponseError, why: String) -> CreatableTopicResult {
    tracing::debug!(topic = %result.name.as_str(), %why, "create topic refused");
    result
        .with_error_code(error.code())
        .with_error_message(Some(StrBytes::from_string(why)))
}
