//! Changing a topic's configs at run time, shared by AlterConfigs (the whole set at once) and
//! IncrementalAlterConfigs (one operation per config). A change is checked as CreateTopics
//! checks configs, then written through Raft; every node's partitions take it from there
//! without a restart.
//!
//! Broker configs change at run time where Kafka's are cluster-wide dynamic configs: the broker
//! defaults of topic configs (`log.retention.ms`, `log.segment.bytes`, `message.max.bytes`,
//! ...), for the whole cluster (resource name "") or one broker (its id). They are kept in Raft,
//! so every node applies them without a restart, and they outlive restarts. A change to any
//! other broker setting is refused with INVALID_REQUEST, as Kafka refuses a config that is not
//! dynamic.
//! A topic needs ALTER_CONFIGS on it (TOPIC_AUTHORIZATION_FAILED), a broker ALTER_CONFIGS on the
//! cluster (CLUSTER_AUTHORIZATION_FAILED), checked before anything else about the change.

use std::collections::{BTreeMap, BTreeSet};

use brook_raft::acl::{AclOperation, ResourceType};
use brook_raft::MetadataCommand;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::Call;
use crate::broker::Broker;
use crate::config::topic::{
    is_dynamic_broker_config, is_list_config, is_topic_config, value_in_force, TopicConfig,
};
use crate::config::Source;
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
    let mut names = BTreeSet::new();
    if let Some((dup, _)) = ops.iter().find(|(n, _)| !names.insert(n.as_str())) {
        return Err((
            ResponseError::InvalidRequest,
            format!("config `{dup}` is named more than once"),
        ));
    }
    let image = broker.image();
    let defaults = image.defaults();
    let (cmd, what) = match resource_type {
        TOPIC => {
            let Some(topic) = image.topic(name) else {
                return Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic `{name}` does not exist"),
                ));
            };
            let known = |config: &str| {
                is_topic_config(config).then_some(()).ok_or_else(|| {
                    (
                        ResponseError::InvalidConfig,
                        format!("unknown topic config `{config}`"),
                    )
                })
            };
            let current = |config: &str| value_in_force(defaults, &topic.configs, config);
            let (set, delete) = changes(ops, known, current)?;
            let merged = merge(&topic.configs, &set, &delete, replace);
            TopicConfig::resolve(defaults, &merged)
                .map_err(|why| (ResponseError::InvalidConfig, why))?;
            let cmd = MetadataCommand::AlterTopicConfigs {
                name: name.to_string(),
                set,
                delete,
                replace,
            };
            (cmd, format!("topic {name}"))
        }
        BROKER => {
            // "" is the cluster-wide default, a number one broker's own (Kafka's names).
            let target = match name {
                "" => None,
                id => Some(id.parse::<u64>().map_err(|_| {
                    (
                        ResponseError::InvalidRequest,
                        format!("`{id}` is not a broker id"),
                    )
                })?),
            };
            let stored = image.dynamic_configs(target).cloned().unwrap_or_default();
            let known = |config: &str| {
                is_dynamic_broker_config(config)
                    .then_some(())
                    .ok_or_else(|| {
                        (
                            ResponseError::InvalidRequest,
                            format!(
                            "cannot update `{config}` dynamically: only the broker defaults of \
                             topic configs change at run time; set it in the node's configuration"
                        ),
                        )
                    })
            };
            let current = |config: &str| {
                stored
                    .get(config)
                    .or_else(|| defaults.get(config).map(|(v, _)| v))
                    .cloned()
                    .unwrap_or_default()
            };
            let (set, mut delete) = changes(ops, known, current)?;
            if replace {
                delete.extend(stored.keys().filter(|k| !set.contains_key(*k)).cloned());
            }
            // The values must make valid topic defaults, on top of the settings in force here.
            let mut check = defaults.clone();
            for (k, v) in merge(&stored, &set, &delete, replace) {
                check.insert(k, (v, Source::DynamicBroker));
            }
            TopicConfig::resolve(&check, &BTreeMap::new())
                .map_err(|why| (ResponseError::InvalidConfig, why))?;
            let what = match target {
                None => "the cluster-wide broker defaults".to_string(),
                Some(id) => format!("broker {id}"),
            };
            let cmd = MetadataCommand::AlterBrokerConfigs {
                broker: target,
                set,
                delete,
            };
            (cmd, what)
        }
        BROKER_LOGGER => {
            return Err((
                ResponseError::InvalidRequest,
                "broker log levels are set with BROOK_LOG when the node starts".into(),
            ))
        }
        other => {
            return Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} has no configs to alter"),
            ))
        }
    };
    if validate_only {
        return Ok(());
    }
    match broker.metadata.write(cmd).await {
        Ok(_) => {
            tracing::info!("configs of {what} changed");
            Ok(())
        }
        Err(e) => Err((meta_error(&e), e.to_string())),
    }
}

/// The configs `ops` set and delete, each name checked by `known`; `current` gives a list
/// config's value before the change, for appends and subtractions.
fn changes(
    ops: Vec<(String, Op)>,
    known: impl Fn(&str) -> Result<(), Refusal>,
    current: impl Fn(&str) -> String,
) -> Result<(BTreeMap<String, String>, Vec<String>), Refusal> {
    let mut set = BTreeMap::new();
    let mut delete = Vec::new();
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (config, op) in ops {
        known(&config)?;
        let list_op = matches!(op, Op::Append(_) | Op::Subtract(_));
        if list_op && !is_list_config(&config) {
            return Err((
                ResponseError::InvalidRequest,
                format!("`{config}` is not a list: values cannot be appended or subtracted"),
            ));
        }
        match op {
            Op::Set(v) => {
                set.insert(config, v);
            }
            Op::Delete => delete.push(config),
            Op::Append(v) => {
                let mut items = list(&current(&config));
                for item in list(&v) {
                    if !items.contains(&item) {
                        items.push(item);
                    }
                }
                set.insert(config, items.join(","));
            }
            Op::Subtract(v) => {
                let remove = list(&v);
                let items: Vec<String> = list(&current(&config))
                    .into_iter()
                    .filter(|i| !remove.contains(i))
                    .collect();
                set.insert(config, items.join(","));
            }
        }
    }
    Ok((set, delete))
}

/// `stored` (or nothing, when `replace`) with `delete` removed and `set` applied.
fn merge(
    stored: &BTreeMap<String, String>,
    set: &BTreeMap<String, String>,
    delete: &[String],
    replace: bool,
) -> BTreeMap<String, String> {
    let mut merged = if replace {
        BTreeMap::new()
    } else {
        stored.clone()
    };
    for k in delete {
        merged.remove(k);
    }
    merged.extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}
