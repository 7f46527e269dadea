//! `brook group delete`: DeleteGroups at each group's coordinator, one line per group.

use std::collections::BTreeMap;

use anyhow::bail;
use kafka_protocol::messages::{ApiKey, DeleteGroupsRequest, GroupId, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::client::{backoff, is_coordinator_error, Cluster, ATTEMPTS};
use crate::cli::output::error_name;

/// DeleteGroups at each group's coordinator; prints one line per group and fails if any failed.
pub async fn delete(cluster: &mut Cluster, groups: &[String]) -> anyhow::Result<()> {
    let results = delete_groups(cluster, groups).await?;
    let mut failed = 0;
    for (group, result) in &results {
        match result {
            Ok(()) => println!("Deletion of group '{group}': succeeded"),
            Err(e) => {
                failed += 1;
                println!("Deletion of group '{group}': failed: {e}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} group deletion(s) failed", results.len());
    }
    Ok(())
}

/// The outcome for each group: deleted, or Kafka's name for the error (or why no answer came).
/// Groups whose coordinator moved are looked up again and retried.
pub async fn delete_groups(
    cluster: &mut Cluster,
    groups: &[String],
) -> anyhow::Result<BTreeMap<String, Result<(), String>>> {
    cluster.check_supported(ApiKey::DeleteGroups, 2)?;
    let mut results: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    let mut pending: Vec<String> = groups.to_vec();
    pending.sort();
    pending.dedup();
    for attempt in 0..ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            backoff(attempt).await;
        }
        let coordinators = cluster.find_coordinators(&pending).await?;
        let mut by_coordinator: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (group, found) in coordinators {
            match found {
                Ok(node) => by_coordinator.entry(node.addr()).or_default().push(group),
                Err(code) => {
                    results.insert(group, Err(error_name(code)));
                }
            }
        }
        let mut retry = Vec::new();
        for (addr, batch) in by_coordinator {
            let request = DeleteGroupsRequest::default().with_groups_names(
                batch
                    .iter()
                    .map(|g| GroupId(StrBytes::from_string(g.clone())))
                    .collect(),
            );
            let response = match cluster
                .call(
                    &addr,
                    ApiKey::DeleteGroups,
                    2,
                    RequestKind::DeleteGroups(request),
                )
                .await
            {
                Ok(ResponseKind::DeleteGroups(r)) => r,
                Ok(other) => bail!("unexpected answer to DeleteGroups: {other:?}"),
                Err(e) => {
                    for g in batch {
                        results.insert(g.clone(), Err(format!("{e:#}")));
                        retry.push(g);
                    }
                    continue;
                }
            };
            for r in response.results {
                let group = r.group_id.to_string();
                if !batch.contains(&group) {
                    continue;
                }
                if r.error_code == 0 {
                    results.insert(group, Ok(()));
                } else {
                    if is_coordinator_error(r.error_code) {
                        retry.push(group.clone());
                    }
                    results.insert(group, Err(error_name(r.error_code)));
                }
            }
            for g in batch {
                if !results.contains_key(&g) {
                    results.insert(g.clone(), Err("no answer".to_string()));
                }
            }
        }
        pending = retry;
    }
    Ok(results)
}
