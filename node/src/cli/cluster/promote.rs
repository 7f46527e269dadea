//! `brook cluster promote --node N` and `brook cluster demote --node N`: an operator's consent
//! for node N, which joined the metadata group as a learner (an observer), to become a voter,
//! and taking the vote away again. They send Kafka's AddRaftVoter and RemoveRaftVoter
//! (KIP-853), as `kafka-metadata-quorum add-controller` and `remove-controller` do.

use std::time::Duration;

use anyhow::{bail, Context};
use kafka_protocol::messages::{
    AddRaftVoterRequest, ApiKey, RemoveRaftVoterRequest, RequestKind, ResponseKind,
};

use crate::cli::output::error_text;
use crate::client::Client;

pub async fn promote(bootstrap: &str, node: i32, timeout: Duration) -> anyhow::Result<()> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_voter_id(node)
        .with_timeout_ms(timeout_ms);
    let response = send(
        bootstrap,
        ApiKey::AddRaftVoter,
        RequestKind::AddRaftVoter(request),
    )
    .await?;
    let ResponseKind::AddRaftVoter(r) = response else {
        bail!("unexpected answer to AddRaftVoter");
    };
    if r.error_code != 0 {
        bail!(
            "node {node} was not promoted: {}",
            error_text(r.error_code, r.error_message.as_ref())
        );
    }
    println!("node {node} is a voter of the metadata quorum");
    Ok(())
}

pub async fn demote(bootstrap: &str, node: i32) -> anyhow::Result<()> {
    let request = RemoveRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_voter_id(node);
    let response = send(
        bootstrap,
        ApiKey::RemoveRaftVoter,
        RequestKind::RemoveRaftVoter(request),
    )
    .await?;
    let ResponseKind::RemoveRaftVoter(r) = response else {
        bail!("unexpected answer to RemoveRaftVoter");
    };
    if r.error_code != 0 {
        bail!(
            "node {node} was not demoted: {}",
            error_text(r.error_code, r.error_message.as_ref())
        );
    }
    println!("node {node} is an observer of the metadata quorum");
    Ok(())
}

async fn send(bootstrap: &str, key: ApiKey, request: RequestKind) -> anyhow::Result<ResponseKind> {
    let mut client = Client::admin(bootstrap).await?;
    client
        .call(key, 0, request)
        .await
        .with_context(|| format!("{key:?}"))
}
