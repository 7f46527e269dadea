//! `brook cluster promote --node N`: an operator's consent for node N, which joined the
//! metadata group as a learner (an observer), to become a voter. Sends Kafka's AddRaftVoter
//! (KIP-853), as `kafka-metadata-quorum add-controller` does.

use std::time::Duration;

use anyhow::{bail, Context};
use kafka_protocol::messages::{AddRaftVoterRequest, ApiKey, RequestKind, ResponseKind};

use crate::cli::output::error_text;
use crate::client::Client;

pub async fn promote(bootstrap: &str, node: i32, timeout: Duration) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let request = AddRaftVoterRequest::default()
        .with_cluster_id(None)
        .with_voter_id(node)
        .with_timeout_ms(timeout_ms);
    let response = client
        .call(ApiKey::AddRaftVoter, 0, RequestKind::AddRaftVoter(request))
        .await
        .context("AddRaftVoter")?;
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
