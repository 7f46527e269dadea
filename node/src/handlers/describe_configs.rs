//! DescribeConfigs: the settings in force for topics and for this broker (dynamic ones
//! included), or the cluster-wide dynamic defaults (broker ""), with where each value came from
//! and, when asked, its synonyms and documentation. A topic needs DESCRIBE_CONFIGS on
//! it (TOPIC_AUTHORIZATION_FAILED), a broker DESCRIBE_CONFIGS on the cluster
//! (CLUSTER_AUTHORIZATION_FAILED).

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;
use crate::config::topic::{
    describe_broker, describe_topic, is_dynamic_broker_config, ConfigEntry,
};
use crate::config::{Kind, Source, Values};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let broker = &broker;
    let version = call.version;
    let mut results = Vec::with_capacity(request.resources.len());
    let image = broker.image();
    for resource in request.resources {
        let result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        let denied = |e: ResponseError| Err((e, "Authorization failed.".to_string()));
        let entries = match resource.resource_type {
            TOPIC
                if !call.may(
                    broker,
                    AclOperation::DescribeConfigs,
                    ResourceType::Topic,
                    &resource.resource_name,
                ) =>
            {
                denied(ResponseError::TopicAuthorizationFailed)
            }
            BROKER if !call.may_on_cluster(broker, AclOperation::DescribeConfigs) => {
                denied(ResponseError::ClusterAuthorizationFailed)
            }
            TOPIC => match image.topic(&resource.resource_name) {
                Some(t) => Ok(describe_topic(image.defaults(), &t.configs)),
                None => Err((
                    ResponseError::UnknownTopicOrPartition,
                    format!("topic `{}` does not exist", resource.resource_name.as_str()),
                )),
            },
            // An empty name means the cluster-wide dynamic defaults: only those set.
            BROKER if resource.resource_name.is_empty() => {
                let set: Values = image
                    .dynamic_configs(None)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), (v.clone(), Source::DynamicDefault)))
                    .collect();
                Ok(describe_broker(&set)
                    .into_iter()
                    .filter(|e| e.source == Source::DynamicDefault.code())
                    .collect())
            }
            BROKER if resource.resource_name.as_str() == broker.node_id().to_string() => {
                Ok(describe_broker(image.defaults()))
            }
            BROKER => Err((
                ResponseError::InvalidRequest,
                format!(
                    "broker `{}` is not this node",
                    resource.resource_name.as_str()
                ),
            )),
            other => Err((
                ResponseError::InvalidRequest,
                format!("resource type {other} is not supported"),
            )),
        };
        results.push(match entries {
            Ok(entries) => {
                // Null (or an empty list) asks for every config.
                let keys = resource
                    .configuration_keys
                    .as_ref()
                    .filter(|k| !k.is_empty());
                let configs = entries
                    .into_iter()
                    .filter(|e| keys.is_none_or(|k| k.iter().any(|k| k.as_str() == e.name)))
                    .map(|e| {
                        // Topic configs and the broker defaults of topic configs change at run
                        // time (AlterConfigs); other broker settings are static.
                        let read_only =
                            resource.resource_type != TOPIC && !is_dynamic_broker_config(&e.name);
                        entry(
                            e,
                            read_only,
                            version,
                            request.include_synonyms,
                            request.include_documentation,
                        )
                    })
                    .collect();
                result.with_configs(configs)
            }
            Err((e, why)) => result
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(why))),
        });
    }
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    e: ConfigEntry,
    read_only: bool,
    version: i16,
    synonyms: bool,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    // Kafka never returns a password's value, only that it is sensitive.
    let sensitive = e.kind == Kind::Password;
    let shown = |value: String| (!sensitive).then(|| StrBytes::from_string(value));
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(shown(e.value))
        .with_is_sensitive(sensitive)
        .with_read_only(read_only)
        .with_config_source(e.source);
    // Config types exist from v3.
    if version >= 3 {
        out = out.with_config_type(e.kind as i8);
    }
    if synonyms && version >= 1 {
        out = out.with_synonyms(
            e.synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_string(name))
                        .with_value(shown(value))
                        .with_source(source)
                })
                .collect(),
        );
    }
    if documentation && version >= 3 {
        out = out.with_documentation(Some(StrBytes::from_static_str(e.doc)));
    }
    out
}
