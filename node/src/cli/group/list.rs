//! `brook group list`: ListGroups at every broker (each lists only the groups it coordinates,
//! as in Kafka), merged by group id.

use std::collections::BTreeMap;

use anyhow::bail;
use kafka_protocol::messages::{ApiKey, ListGroupsRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::client::{backoff, is_coordinator_error, Cluster, Node, ATTEMPTS};
use crate::cli::output::{error_name, or_dash, render_table};

/// A group as ListGroups tells it, with the broker that listed it (its coordinator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    pub state: String,
    pub protocol_type: String,
    pub coordinator: Node,
}

/// Kafka's spelling of a group state given in any case; unknown names pass through.
pub fn canonical_state(state: &str) -> String {
    const STATES: [&str; 8] = [
        "Unknown",
        "PreparingRebalance",
        "CompletingRebalance",
        "Stable",
        "Dead",
        "Empty",
        "Assigning",
        "Reconciling",
    ];
    let trimmed = state.trim();
    STATES
        .iter()
        .find(|s| s.eq_ignore_ascii_case(trimmed))
        .map_or_else(|| trimmed.to_string(), |s| s.to_string())
}

/// ListGroups (v4, with the states filter) at every broker, merged by group id. Brokers that
/// could not answer are returned as errors beside the groups the others listed.
pub async fn list_groups(
    cluster: &mut Cluster,
    states: &[String],
) -> anyhow::Result<(BTreeMap<String, Listed>, Vec<String>)> {
    cluster.check_supported(ApiKey::ListGroups, 4)?;
    let states: Vec<String> = states.iter().map(|s| canonical_state(s)).collect();
    let mut groups = BTreeMap::new();
    let mut errors = Vec::new();
    let brokers: Vec<Node> = cluster.brokers.values().cloned().collect();
    for broker in brokers {
        let mut answer = None;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let request = ListGroupsRequest::default().with_states_filter(
                states
                    .iter()
                    .map(|s| StrBytes::from_string(s.clone()))
                    .collect(),
            );
            match cluster
                .call(
                    &broker.addr(),
                    ApiKey::ListGroups,
                    4,
                    RequestKind::ListGroups(request),
                )
                .await
            {
                Ok(ResponseKind::ListGroups(r)) if is_coordinator_error(r.error_code) => {
                    answer = Some(Err(error_name(r.error_code)));
                }
                Ok(ResponseKind::ListGroups(r)) if r.error_code != 0 => {
                    answer = Some(Err(error_name(r.error_code)));
                    break;
                }
                Ok(ResponseKind::ListGroups(r)) => {
                    answer = Some(Ok(r.groups));
                    break;
                }
                Ok(other) => bail!("unexpected answer to ListGroups: {other:?}"),
                Err(e) => answer = Some(Err(format!("{e:#}"))),
            }
        }
        match answer {
            Some(Ok(listed)) => {
                for g in listed {
                    let state = g.group_state.to_string();
                    // Filter here too, should a broker not apply the filter.
                    if !states.is_empty() && !states.contains(&state) {
                        continue;
                    }
                    groups.entry(g.group_id.to_string()).or_insert(Listed {
                        state,
                        protocol_type: g.protocol_type.to_string(),
                        coordinator: broker.clone(),
                    });
                }
            }
            Some(Err(e)) => errors.push(format!("broker {broker}: {e}")),
            None => errors.push(format!("broker {broker}: no answer")),
        }
    }
    Ok((groups, errors))
}

pub fn report_list_errors(errors: &[String]) -> anyhow::Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    for e in errors {
        eprintln!("Error: listing groups at {e}");
    }
    bail!("{} broker(s) could not list their groups", errors.len())
}

pub fn render_list(groups: &BTreeMap<String, Listed>) -> String {
    let rows: Vec<Vec<String>> = groups
        .iter()
        .map(|(id, g)| {
            vec![
                id.clone(),
                g.state.clone(),
                or_dash(Some(&g.protocol_type).filter(|s| !s.is_empty())),
                g.coordinator.to_string(),
            ]
        })
        .collect();
    render_table(&["GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"], &rows)
}

pub async fn list(cluster: &mut Cluster, states: &[String]) -> anyhow::Result<()> {
    let (groups, errors) = list_groups(cluster, states).await?;
    print!("{}", render_list(&groups));
    report_list_errors(&errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_table() {
        let node = Node {
            id: 1,
            host: "127.0.0.1".into(),
            port: 9092,
        };
        let groups: BTreeMap<String, Listed> = [
            (
                "g1".to_string(),
                Listed {
                    state: "Stable".into(),
                    protocol_type: "consumer".into(),
                    coordinator: node.clone(),
                },
            ),
            (
                "g2".to_string(),
                Listed {
                    state: "Empty".into(),
                    protocol_type: String::new(),
                    coordinator: node,
                },
            ),
        ]
        .into();
        assert_eq!(
            render_list(&groups),
            "GROUP  STATE   PROTOCOL-TYPE  COORDINATOR\n\
             g1     Stable  consumer       1 (127.0.0.1:9092)\n\
             g2     Empty   -              1 (127.0.0.1:9092)\n"
        );
    }
}
