//! DeleteTopics: by name (v0-v5) or by name or id (v6+). Each topic needs DELETE
//! (TOPIC_AUTHORIZATION_FAILED otherwise); a topic named by id is not named back to a caller
//! that may not DESCRIBE it.

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use brook_raft::acl::{AclOperation, ResourceType};

use super::Call;
use crate::broker::Broker;
use crate::errors::meta_error;
use crate::partitions;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let broker = &broker;
    let version = call.version;
    let wanted: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        // By name, the Raft log decides whether the topic exists: this node's image may be
        // stale (cut off from the majority, say), and a definite UNKNOWN_TOPIC_OR_PARTITION
        // from it could deny a topic that was created meanwhile. By id, the image must know it.
        let target = match &name {
            Some(n) => Ok(n.to_string()),
            None => broker
                .image()
                .topic_by_id(id)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicId),
        };
        let mut result = DeletableTopicResult::default()
            .with_name(name.clone())
            .with_topic_id(id);
        let may = |op, t: &String| call.may(broker, op, ResourceType::Topic, t);
        let target = match target {
            Ok(t) if name.is_none() && !may(AclOperation::Describe, &t) => {
                Err(ResponseError::TopicAuthorizationFailed)
            }
            Ok(t) if !may(AclOperation::Delete, &t) => {
                if name.is_none() {
                    result = result.with_name(Some(TopicName(StrBytes::from_string(t))));
                }
                Err(ResponseError::TopicAuthorizationFailed)
            }
            other => other,
        };
        let outcome = match target {
            Ok(target) => partitions::delete_topic(broker, &target)
                .await
                .map(|seen| match seen {
                    Some(t) => (t.name.clone(), t.id),
                    None => (target, id),
                })
                .map_err(|e| meta_error(&e)),
            Err(e) => Err(e),
        };
        responses.push(match outcome {
            Ok((deleted, deleted_id)) => {
                tracing::info!(topic = %deleted, "deleted topic");
                let result = result.with_name(Some(TopicName(StrBytes::from_string(deleted))));
                // Topic ids exist from v6.
                if version >= 6 {
                    result.with_topic_id(deleted_id)
                } else {
                    result
                }
            }
            // Error messages exist from v5.
            Err(e) if version >= 5 => result
                .with_error_code(e.code())
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            Err(e) => result.with_error_code(e.code()),
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
