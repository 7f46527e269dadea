//! DescribeUserScramCredentials v0 (KIP-554): which SCRAM mechanisms each user has credentials
//! for, with their iterations; never salts or keys. No user list means every user. Needs
//! DESCRIBE on the cluster with an authorizer; without one, while `super.users` is set, only
//! they may describe credentials.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let response = DescribeUserScramCredentialsResponse::default();
    if !call.manages_credentials(&broker, AclOperation::Describe) {
        // Kafka's error response: the error at the top and once per user asked about.
        let code = ResponseError::ClusterAuthorizationFailed.code();
        let message = Some(StrBytes::from_static_str("Cluster authorization failed."));
        let per_user = request.users.unwrap_or_default().into_iter().map(|_| {
            DescribeUserScramCredentialsResult::default()
                .with_error_code(code)
                .with_error_message(message.clone())
        });
        return response
            .with_error_code(code)
            .with_error_message(message.clone())
            .with_results(per_user.collect());
    }
    let users = broker.metadata.scram_users();
    let info = |mechanisms: &[(u8, u32)]| {
        mechanisms
            .iter()
            .map(|&(m, iterations)| {
                CredentialInfo::default()
                    .with_mechanism(m as i8)
                    .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
            })
            .collect()
    };
    let results = match request.users.filter(|u| !u.is_empty()) {
        None => users
            .iter()
            .map(|(user, mechanisms)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user.clone()))
                    .with_credential_infos(info(mechanisms))
            })
            .collect(),
        Some(asked) => {
            let mut seen = BTreeSet::new();
            let duplicates: BTreeSet<&str> = asked
                .iter()
                .filter(|u| !seen.insert(u.name.as_str()))
                .map(|u| u.name.as_str())
                .collect();
            let mut answered = BTreeSet::new();
            asked
                .iter()
                .filter(|u| answered.insert(u.name.as_str()))
                .map(|u| {
                    let result = DescribeUserScramCredentialsResult::default()
                        .with_user(u.name.clone());
                    let found = users.iter().find(|(name, _)| name == u.name.as_str());
                    match found {
                        _ if duplicates.contains(u.name.as_str()) => result
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(StrBytes::from_static_str(
                                "Cannot describe SCRAM credentials for the same user twice in a single request",
                            ))),
                        Some((_, mechanisms)) => result.with_credential_infos(info(mechanisms)),
                        None => result
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "Attempt to describe a user credential that does not exist: {}",
                                u.name.as_str()
                            )))),
                    }
                })
                .collect()
        }
    };
    response.with_results(results)
}
