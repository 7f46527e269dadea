//! Changing a topic's configs at run time, shared by AlterConfigs (the whole set at once) and
//! IncrementalAlterConfigs (one operation per config). A change is checked as CreateTopics
//! checks configs, then written through Raft; every node's partitions take it from there
//! without a restart.
//!
//! Broker configs are static in brook (set in the node's configuration), so a change to one is
//! refused with INVALID_REQUEST, as Kafka refuses a change to a config that is not dynamic.
//! A topic needs ALTER_CONFIGS on it (TOPIC_AUTHORIZATION_FAILED), a broker ALTER_CONFIGS on the
//! cluster (CLUSTER_AUTHORIZATION_FAILED), checked before anything else about the change.

use std::collections::{BTreeMap, BTreeSet};

use brook_raft::acl::{AclOperation, ResourceType};
use brook_raft::MetadataCommand;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;
use crate::config::topic::{is_list_config, is_topic_config, value_in_force, TopicConfig};
use crate::errors::meta_error;

pub(super) const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;

/// One config's change.
pub(super) enum Op {
    Set(String),
    Delete,
    /// Add to / remove from a list config's values (comma-separated).
    Append(String),
    Subtract(String),
}

/// The error a resource is answered with, and why.
pub(super) type Refusal = (ResponseError, String);

/// One resource of a request: its type, its name, and its changes or why they were refused
/// already.
pub(super) type Resource = (i8, StrBytes, Result<Vec<(String, Op)>, Refusal>);

/// Alters each resource in order and makes each one's answer with `answer(type, name, error
/// code, message)`. A resource named more than once in one request is refused every time, as
/// Kafka does.
pub(super) async fn alter_all<T>(
    broker: &Broker,
    call: &Call,
    resources: Vec<Resource>,
    replace: bool,
    validate_only: bool,
    answer: impl Fn(i8, StrBytes, i16, Option<StrBytes>) -> T,
) -> Vec<T> {
    let mut seen = BTreeSet::new();
    let dupes: BTreeSet<(i8, StrBytes)> = resources
        .iter()
        .filter(|(t, n, _)| !seen.insert((*t, n.clone())))
        .map(|(t, n, _)| (*t, n.clone()))
        .collect();
    let mut answers = Vec::with_capacity(resources.len());
    for (kind, name, ops) in resources {
        let outcome = match ops {
            _ if dupes.contains(&(kind, name.clone())) => {
                Err((ResponseError::InvalidRequest, "duplicate resource".into()))
            }
            _ if !may_alter(broker, call, kind, &name) => {
                let denied = if kind == TOPIC {
                    ResponseError::TopicAuthorizationFailed
                } else {
                    ResponseError::ClusterAuthorizationFailed
                };
                Err((denied, "Authorization failed.".into()))
            }
            Ok(ops) => alter(broker, kind, &name, ops, replace, validate_only).await,
            Err(refusal) => Err(refusal),
        };
        answers.push(match outcome {
            Ok(()) => answer(kind, name, 0, None),
            Err((e, why)) => answer(kind, name, e.code(), Some(StrBytes::from_string(why))),
        });
    }
    answers
}

/// ALTER_CONFIGS on the topic, or on the cluster for anything else.
fn may_alter(broker: &Broker, call: &Call, resource_type: i8, name: &str) -> bool {
    if resource_type == TOPIC {
        call.may(
            broker,
            AclOperation::AlterConfigs,
            ResourceType::Topic,
            name,
        )
    } else {
        call.may_on_cluster(broker, AclOperation::AlterConfigs)
    }
}

/// The `answer` for [`alter_all`] in AlterConfigs' and IncrementalAlterConfigs' response
/// types, which are distinct but alike.
macro_rules! resource_answer {
    ($response:ty) => {
        |kind, name, code, message| {
            <$response>::default()
                .with_resource_type(kind)
                .with_resource_name(name)
                .with_error_code(code)
                .with_error_message(message)
        }
    };
}
pub(super) use resource_answer;

/// Applies `ops` to one resource (from no configs at all when `replace`), or only checks them
/// when `validate_only`.
async fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    ops: Vec<(String, Op)>,
    replace: bool,
    validate_only: bool,
) -> Result<(), Refusal> {
    match resource_type {
        TOPIC => {}
        BROKER | BROKER_LOGGER => {
            return Err((
                ResponseError::InvalidRequest,
                "broker configs cannot be changed at run time in brook; set them in the \
                 node's configuration"
                    .into(),
            ))
        }
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} has no configs to alter"),
            ))
        }
    }
    let mut names = BTreeSet::new();
    if let Some((dup, _)) = ops.iter().find(|(n, _)| !names.insert(n.as_str())) {
        return Err((
            ResponseError::InvalidRequest,
            format!("config `{dup}` is named more than once"),
        ));
    }
    let image = broker.image();
    let Some(topic) = image.topic(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("topic `{name}` does not exist"),
        ));
    };
    let values = &broker.config.values;
    let mut set = BTreeMap::new();
    let mut delete = Vec::new();
    for (config, op) in ops {
        if !is_topic_config(&config) {
            return Err((
                ResponseError::InvalidConfig,
                format!("unknown topic config `{config}`"),
            ));
        }
        let list_op = matches!(op, Op::Append(_) | Op::Subtract(_));
        if list_op && !is_list_config(&config) {
            return Err((
                ResponseError::InvalidRequest,
                format!("`{config}` is not a list: values cannot be appended or subtracted"),
            ));
        }
        let current = || value_in_force(values, &topic.configs, &config);
        let list = |v: &str| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        };
        match op {
            Op::Set(v) => {
                set.insert(config, v);
            }
            Op::Delete => delete.push(config),
            Op::Append(v) => {
                let mut items = list(&current());
                for item in list(&v) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                set.insert(config, items.join(","));
            }
            Op::Subtract(v) => {
                let remove = list(&v);
                let items: Vec<String> = list(&current())
                    .into_iter()
                    .filter(|i| !remove.contains(i))
                    .collect();
                set.insert(config, items.join(","));
            }
        }
    }
    let mut merged = if replace {
        BTreeMap::new()
    } else {
        topic.configs.clone()
    };
    for k in &delete {
        merged.remove(k);
    }
    merged.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    TopicConfig::resolve(values, &merged).map_err(|why| (ResponseError::InvalidConfig, why))?;
    if validate_only {
        return Ok(());
    }
    let cmd = MetadataCommand::AlterTopicConfigs {
        name: name.to_string(),
        set,
        delete,
        replace,
    };
    match broker.metadata.write(cmd).await {
        Ok(_) => {
            tracing::info!(topic = name, "topic configs changed");
            Ok(())
        }
        Err(e) => Err((meta_error(&e), e.to_string())),
    }
}
