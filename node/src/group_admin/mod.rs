//! `brook group list|describe|delete|reset-offsets`: consumer-group administration over the Kafka
//! protocol, as Kafka's `kafka-consumer-groups.sh` does it.
//!
//! - [`client`]: Metadata, connections per broker, coordinator lookup with retries, ListOffsets.
//! - [`describe`]: DescribeGroups + OffsetFetch + log ends, rendered as Kafka's tables.
//! - [`reset`]: reset-offsets planning (dry run by default) and OffsetCommit.
//! - [`plan`]: the pure parts (argument parsing, planning, lag, tables, assignment decoding).
//!
//! `list` asks every broker (each lists only the groups it coordinates); `delete` sends
//! DeleteGroups to each group's coordinator.

pub mod client;
pub mod describe;
pub mod plan;
pub mod reset;

use std::collections::BTreeMap;

use anyhow::bail;
use clap::{ArgGroup, Args, Subcommand};
use kafka_protocol::messages::{
    ApiKey, DeleteGroupsRequest, GroupId, ListGroupsRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use client::{backoff, is_coordinator_error, Cluster, Node, ATTEMPTS};
use plan::{error_name, parse_topic_spec, render_table, ResetStrategy, TopicSpec};
use reset::Scope;

#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// List the groups of every broker.
    List {
        /// Only groups in these states, e.g. --state Stable,Empty (repeatable; any case).
        #[arg(long = "state", value_name = "STATE", value_delimiter = ',')]
        states: Vec<String>,
    },
    /// Show groups' state, members, committed offsets and lag.
    Describe {
        groups: Vec<String>,
        /// Describe every group of the cluster.
        #[arg(long, conflicts_with = "groups")]
        all_groups: bool,
    },
    /// Delete groups (they must have no members).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move an inactive group's committed offsets (a dry run unless --execute).
    ResetOffsets(ResetArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
pub struct ResetArgs {
    pub group: String,
    /// A topic, or some of its partitions: T or T:0,1,2 (repeatable).
    #[arg(long = "topic", value_name = "TOPIC[:P,P...]", value_parser = parse_topic_spec)]
    pub topics: Vec<TopicSpec>,
    /// The partitions the group has committed offsets for.
    #[arg(long)]
    pub all_topics: bool,
    #[command(flatten)]
    pub to: ResetTo,
    /// Commit the new offsets (without it, only print the plan).
    #[arg(long, conflicts_with = "dry_run")]
    pub execute: bool,
    /// Only print the plan (the default).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct ResetTo {
    /// The log start of each partition.
    #[arg(long)]
    pub to_earliest: bool,
    /// The log end of each partition.
    #[arg(long)]
    pub to_latest: bool,
    /// This offset (clamped to each log).
    #[arg(long, value_name = "OFFSET")]
    pub to_offset: Option<i64>,
    /// The committed offset plus N (N may be negative).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub shift_by: Option<i64>,
    /// The first offset whose timestamp is at or after this one (ms since the epoch).
    #[arg(long, value_name = "MS_SINCE_EPOCH")]
    pub to_datetime: Option<i64>,
}

impl ResetTo {
    pub fn strategy(&self) -> anyhow::Result<ResetStrategy> {
        Ok(if self.to_earliest {
            ResetStrategy::Earliest
        } else if self.to_latest {
            ResetStrategy::Latest
        } else if let Some(n) = self.to_offset {
            ResetStrategy::Offset(n)
        } else if let Some(n) = self.shift_by {
            ResetStrategy::ShiftBy(n)
        } else if let Some(ms) = self.to_datetime {
            ResetStrategy::Datetime(ms)
        } else {
            bail!("one of --to-earliest, --to-latest, --to-offset, --shift-by, --to-datetime is required")
        })
    }
}

pub async fn run(command: GroupCommand, bootstrap: &str) -> anyhow::Result<()> {
    let mut cluster = Cluster::connect(bootstrap).await?;
    match command {
        GroupCommand::List { states } => list(&mut cluster, &states).await,
        GroupCommand::Describe { groups, all_groups } => {
            let groups = if all_groups {
                let (listed, errors) = list_groups(&mut cluster, &[]).await?;
                report_list_errors(&errors)?;
                listed.into_keys().collect()
            } else if groups.is_empty() {
                bail!("name the groups to describe, or pass --all-groups");
            } else {
                groups
            };
            if groups.is_empty() {
                println!("No groups.");
                return Ok(());
            }
            describe::run(&mut cluster, &groups).await
        }
        GroupCommand::Delete { groups } => delete(&mut cluster, &groups).await,
        GroupCommand::ResetOffsets(args) => {
            let scope = if args.all_topics {
                Scope::AllTopics
            } else {
                Scope::Topics(args.topics.clone())
            };
            let strategy = args.to.strategy()?;
            reset::run(&mut cluster, &args.group, &scope, strategy, args.execute).await
        }
    }
}

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
async fn list_groups(
    cluster: &mut Cluster,
    states: &[String],
) -> anyhow::Result<(BTreeMap<String, Listed>, Vec<String>)> {
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

fn report_list_errors(errors: &[String]) -> anyhow::Result<()> {
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
                plan::or_dash(Some(&g.protocol_type).filter(|s| !s.is_empty())),
                g.coordinator.to_string(),
            ]
        })
        .collect();
    render_table(&["GROUP", "STATE", "PROTOCOL-TYPE", "COORDINATOR"], &rows)
}

async fn list(cluster: &mut Cluster, states: &[String]) -> anyhow::Result<()> {
    let (groups, errors) = list_groups(cluster, states).await?;
    print!("{}", render_list(&groups));
    report_list_errors(&errors)
}

/// DeleteGroups at each group's coordinator; prints one line per group and fails if any failed.
async fn delete(cluster: &mut Cluster, groups: &[String]) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(subcommand)]
        command: GroupCommand,
    }

    fn parse(args: &[&str]) -> Result<GroupCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("group").chain(args.iter().copied())).map(|c| c.command)
    }

    #[test]
    fn reset_arguments() {
        let Ok(GroupCommand::ResetOffsets(args)) = parse(&[
            "reset-offsets",
            "g",
            "--topic",
            "t:0,1",
            "--topic",
            "u",
            "--shift-by",
            "-5",
        ]) else {
            panic!("did not parse");
        };
        assert_eq!(args.group, "g");
        assert_eq!(args.topics.len(), 2);
        assert_eq!(args.topics[0].partitions, Some(vec![0, 1]));
        assert_eq!(args.topics[1].partitions, None);
        assert_eq!(args.to.strategy().ok(), Some(ResetStrategy::ShiftBy(-5)));
        assert!(!args.execute);

        let Ok(GroupCommand::ResetOffsets(args)) = parse(&[
            "reset-offsets",
            "g",
            "--all-topics",
            "--to-earliest",
            "--execute",
        ]) else {
            panic!("did not parse");
        };
        assert!(args.all_topics && args.execute);
        assert_eq!(args.to.strategy().ok(), Some(ResetStrategy::Earliest));

        // A scope and exactly one strategy are required.
        assert!(parse(&["reset-offsets", "g", "--to-earliest"]).is_err());
        assert!(parse(&["reset-offsets", "g", "--all-topics"]).is_err());
        assert!(parse(&[
            "reset-offsets",
            "g",
            "--all-topics",
            "--to-earliest",
            "--to-latest"
        ])
        .is_err());
        assert!(parse(&[
            "reset-offsets",
            "g",
            "--all-topics",
            "--topic",
            "t",
            "--to-earliest"
        ])
        .is_err());
        assert!(parse(&["reset-offsets", "g", "--topic", "t:x", "--to-earliest"]).is_err());
        assert!(parse(&[
            "reset-offsets",
            "g",
            "--all-topics",
            "--to-latest",
            "--execute",
            "--dry-run"
        ])
        .is_err());
    }

    #[test]
    fn other_arguments() {
        let Ok(GroupCommand::List { states }) =
            parse(&["list", "--state", "stable,Empty", "--state", "dead"])
        else {
            panic!("did not parse");
        };
        assert_eq!(states, ["stable", "Empty", "dead"]);
        let canonical: Vec<String> = states.iter().map(|s| canonical_state(s)).collect();
        assert_eq!(canonical, ["Stable", "Empty", "Dead"]);
        assert!(parse(&["delete"]).is_err());
        assert!(parse(&["describe", "g", "--all-groups"]).is_err());
        assert!(matches!(
            parse(&["describe", "--all-groups"]),
            Ok(GroupCommand::Describe {
                all_groups: true,
                ..
            })
        ));
    }

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
