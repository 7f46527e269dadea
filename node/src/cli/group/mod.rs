//! `brook group list|describe|delete|reset-offsets`: consumer-group administration over the Kafka
//! protocol, as Kafka's `kafka-consumer-groups.sh` does it.
//!
//! - [`client`]: Metadata, connections per broker, coordinator lookup with retries.
//! - [`offsets`]: ListOffsets at each partition's leader.
//! - [`describe`]: DescribeGroups + OffsetFetch + log ends, rendered as Kafka's tables.
//! - [`reset`]: reset-offsets planning (dry run by default) and OffsetCommit.
//! - [`list`]: ListGroups at every broker (each lists only the groups it coordinates).
//! - [`delete`]: DeleteGroups at each group's coordinator.
//! - [`plan`]: the pure parts (argument parsing, planning, lag, tables, assignment decoding).

pub mod client;
pub mod delete;
pub mod describe;
#[cfg(test)]
mod fake_broker;
pub mod list;
pub mod offsets;
pub mod plan;
pub mod reset;

use anyhow::bail;
use clap::{ArgGroup, Args, Subcommand};

use client::Cluster;
use plan::{parse_topic_spec, ResetStrategy, TopicSpec};
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
        /// The groups to describe.
        groups: Vec<String>,
        /// Describe every group of the cluster.
        #[arg(long, conflicts_with = "groups")]
        all_groups: bool,
    },
    /// Delete groups (they must have no members).
    Delete {
        /// The groups to delete.
        #[arg(required = true)]
        groups: Vec<String>,
    },
    /// Move an inactive group's committed offsets (a dry run unless --execute).
    ResetOffsets(ResetArgs),
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("scope").required(true).args(["topics", "all_topics"])))]
pub struct ResetArgs {
    /// The group whose offsets to reset.
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
        GroupCommand::List { states } => list::list(&mut cluster, &states).await,
        GroupCommand::Describe { groups, all_groups } => {
            let groups = if all_groups {
                let (listed, errors) = list::list_groups(&mut cluster, &[]).await?;
                list::report_list_errors(&errors)?;
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
        GroupCommand::Delete { groups } => delete::delete(&mut cluster, &groups).await,
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
        let canonical: Vec<String> = states.iter().map(|s| list::canonical_state(s)).collect();
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
}
