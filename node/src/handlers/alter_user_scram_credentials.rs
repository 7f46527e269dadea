//! AlterUserScramCredentials v0 (KIP-554): set or remove users' SCRAM credentials. The client
//! sends a salt and the salted password, never the password; the node derives the stored and
//! server keys and writes them through Raft, one command per change.
//!
//! Results are per user, in the order users first appear. A user named twice for the same
//! mechanism gets DUPLICATE_RESOURCE and nothing of it changes, as in Kafka. Needs ALTER on the
//! cluster with an authorizer; without one, while `super.users` is set, only they may change
//! credentials (CLUSTER_AUTHORIZATION_FAILED otherwise).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use brook_raft::{MetadataCommand, MAX_ITERATIONS, MIN_ITERATIONS};
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;
use crate::security::scram;

/// One requested change, or why it is refused (code and message).
type Change = Result<MetadataCommand, (ResponseError, String)>;

/// The largest salted password or salt accepted: a SHA-512 digest is 64 bytes.
const MAX_INPUT_BYTES: usize = 128;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    let mut changes: BTreeMap<String, Vec<Change>> = BTreeMap::new();
    let mut order = Vec::new();
    let mut seen = BTreeSet::new();
    let mut pairs: BTreeMap<(String, i8), usize> = BTreeMap::new();
    let mut note = |user: &str, mechanism: i8| {
        if seen.insert(user.to_owned()) {
            order.push(user.to_owned());
        }
        *pairs.entry((user.to_owned(), mechanism)).or_default() += 1;
    };
    for d in &request.deletions {
        note(&d.name, d.mechanism);
    }
    for u in &request.upsertions {
        note(&u.name, u.mechanism);
    }
    for d in request.deletions {
        let change = u8::try_from(d.mechanism)
            .ok()
            .filter(|m| scram::by_id(*m).is_some())
            .map(|mechanism| MetadataCommand::DeleteScramCredential {
                user: d.name.to_string(),
                mechanism,
            })
            .ok_or_else(unsupported);
        changes.entry(d.name.to_string()).or_default().push(change);
    }
    for u in request.upsertions {
        let change = upsertion(&u);
        changes.entry(u.name.to_string()).or_default().push(change);
    }
    let allowed = call.manages_credentials(&broker, AclOperation::Alter);
    let mut results = Vec::with_capacity(order.len());
    for user in order {
        let duplicate = pairs.iter().any(|((u, _), n)| *u == user && *n > 1);
        let outcome = if !allowed {
            Err((
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.".to_string(),
            ))
        } else if duplicate {
            Err((
                ResponseError::DuplicateResource,
                "A user credential cannot be altered twice in the same request".to_string(),
            ))
        } else {
            apply(&broker, changes.remove(&user).unwrap_or_default()).await
        };
        let mut result =
            AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
        if let Err((code, message)) = outcome {
            result = result
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)));
        }
        results.push(result);
    }
    AlterUserScramCredentialsResponse::default().with_results(results)
}

fn unsupported() -> (ResponseError, String) {
    (
        ResponseError::UnsupportedSaslMechanism,
        "Unknown SCRAM mechanism".to_string(),
    )
}

fn upsertion(
    u: &kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion,
) -> Change {
    let mechanism = u8::try_from(u.mechanism)
        .ok()
        .and_then(scram::by_id)
        .ok_or_else(unsupported)?;
    let unacceptable = |message: String| (ResponseError::UnacceptableCredential, message);
    let iterations = u32::try_from(u.iterations)
        .ok()
        .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
        .ok_or_else(|| {
            unacceptable(format!(
                "iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}, got {}",
                u.iterations
            ))
        })?;
    if u.name.is_empty() {
        return Err(unacceptable("Username must not be empty".into()));
    }
    for (what, bytes) in [("salt", &u.salt), ("salted password", &u.salted_password)] {
        if bytes.is_empty() || bytes.len() > MAX_INPUT_BYTES {
            return Err(unacceptable(format!(
                "the {what} must have 1 to {MAX_INPUT_BYTES} bytes"
            )));
        }
    }
    Ok(MetadataCommand::UpsertScramCredential {
        user: u.name.to_string(),
        mechanism: mechanism.id,
        credential: mechanism.credential(&u.salted_password, &u.salt, iterations),
    })
}

/// Write one user's changes in order; the first failure is the user's result.
async fn apply(broker: &Broker, changes: Vec<Change>) -> Result<(), (ResponseError, String)> {
    let commands = changes.into_iter().collect::<Result<Vec<_>, _>>()?;
    for command in commands {
        broker
            .metadata
            .write(command)
            .await
            .map_err(|e| (crate::errors::meta_error(&e), e.to_string()))?;
    }
    Ok(())
}
