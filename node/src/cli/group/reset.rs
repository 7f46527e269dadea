//! `brook group reset-offsets`: plan new offsets for an inactive group (clamped to each log's
//! start and end), print the plan, and with `--execute` commit it with OffsetCommit.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{ApiKey, GroupId, OffsetCommitRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use super::client::Cluster;
use super::describe::{describe_group, fetch_offsets};
use super::offsets::{Tp, EARLIEST, LATEST};
use super::plan::{plan_offset, PartitionState, ResetStrategy, TopicSpec};
use crate::cli::output::{error_name, render_table};
use crate::client::topic_name;

/// Which partitions to reset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Topics(Vec<TopicSpec>),
    /// The partitions the group has committed offsets for.
    AllTopics,
}

/// The partitions a scope names: `T` means every partition of T from Metadata, `T:0,1` those
/// (each must exist), `--all-topics` the partitions the group has committed offsets for.
pub fn resolve_scope(
    scope: &Scope,
    topics: &BTreeMap<String, BTreeMap<i32, i32>>,
    committed: &BTreeMap<Tp, i64>,
) -> anyhow::Result<Vec<Tp>> {
    let mut out = BTreeSet::new();
    match scope {
        // As Kafka does: the partitions the group has committed offsets for.
        Scope::AllTopics => out.extend(committed.keys().cloned()),
        Scope::Topics(specs) => {
            for spec in specs {
                let Some(partitions) = topics.get(&spec.topic) else {
                    bail!("topic '{}' does not exist", spec.topic);
                };
                match &spec.partitions {
                    None => out.extend(partitions.keys().map(|p| (spec.topic.clone(), *p))),
                    Some(list) => {
                        for p in list {
                            if !partitions.contains_key(p) {
                                bail!(
                                    "topic '{}' has no partition {p} (it has {})",
                                    spec.topic,
                                    partitions.len()
                                );
                            }
                            out.insert((spec.topic.clone(), *p));
                        }
                    }
                }
            }
        }
    }
    Ok(out.into_iter().collect())
}

fn offset_of(what: &str, tp: &Tp, offsets: &BTreeMap<Tp, Result<i64, i16>>) -> anyhow::Result<i64> {
    match offsets.get(tp) {
        Some(Ok(offset)) => Ok(*offset),
        Some(Err(code)) => bail!(
            "no {what} offset for {}-{}: {}",
            tp.0,
            tp.1,
            error_name(*code)
        ),
        None => bail!("no {what} offset for {}-{}", tp.0, tp.1),
    }
}

pub fn render_plan(group: &str, plan: &[(Tp, i64)]) -> String {
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|((topic, partition), offset)| {
            vec![
                group.to_string(),
                topic.clone(),
                partition.to_string(),
                offset.to_string(),
            ]
        })
        .collect();
    render_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows)
}

pub async fn run(
    cluster: &mut Cluster,
    group: &str,
    scope: &Scope,
    strategy: ResetStrategy,
    execute: bool,
) -> anyhow::Result<()> {
    if let Some(description) = describe_group(cluster, group).await? {
        if !description.is_inactive() {
            bail!(
                "Assignments can only be reset if the group '{group}' is inactive, but the \
                 current state is {}.",
                description.state
            );
        }
    }
    let committed = fetch_offsets(cluster, group).await?;
    let partitions = resolve_scope(scope, &cluster.topics, &committed)?;
    if partitions.is_empty() {
        bail!("no partitions to reset (group '{group}' has no committed offsets)");
    }
    let starts = cluster.list_offsets(&partitions, EARLIEST).await?;
    let ends = cluster.list_offsets(&partitions, LATEST).await?;
    let by_time = match strategy {
        ResetStrategy::Datetime(ms) => Some(cluster.list_offsets(&partitions, ms).await?),
        _ => None,
    };
    let mut plan = Vec::with_capacity(partitions.len());
    for tp in &partitions {
        let state = PartitionState {
            log_start: offset_of("log start", tp, &starts)?,
            log_end: offset_of("log end", tp, &ends)?,
            committed: committed.get(tp).copied(),
            by_time: match &by_time {
                Some(found) => Some(offset_of("timestamp", tp, found)?),
                None => None,
            },
        };
        let offset =
            plan_offset(strategy, &state).map_err(|e| anyhow::anyhow!("{}-{}: {e}", tp.0, tp.1))?;
        plan.push((tp.clone(), offset));
    }
    if !execute {
        eprintln!(
            "WARN: No action will be performed as the --execute option is missing. \
             Add --execute to commit these offsets."
        );
        print!("{}", render_plan(group, &plan));
        return Ok(());
    }
    commit(cluster, group, &plan).await?;
    print!("{}", render_plan(group, &plan));
    Ok(())
}

/// OffsetCommit (v8) as an admin: no generation, no member; each partition's error is checked.
pub async fn commit(cluster: &mut Cluster, group: &str, plan: &[(Tp, i64)]) -> anyhow::Result<()> {
    let mut by_topic: BTreeMap<&str, Vec<(i32, i64)>> = BTreeMap::new();
    for ((topic, partition), offset) in plan {
        by_topic
            .entry(topic)
            .or_default()
            .push((*partition, *offset));
    }
    let request = || {
        RequestKind::OffsetCommit(
            OffsetCommitRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
                .with_generation_id_or_member_epoch(-1)
                .with_member_id(StrBytes::default())
                .with_group_instance_id(None)
                .with_topics(
                    by_topic
                        .iter()
                        .map(|(topic, partitions)| {
                            OffsetCommitRequestTopic::default()
                                .with_name(topic_name(topic))
                                .with_partitions(
                                    partitions
                                        .iter()
                                        .map(|(p, offset)| {
                                            OffsetCommitRequestPartition::default()
                                                .with_partition_index(*p)
                                                .with_committed_offset(*offset)
                                                .with_committed_leader_epoch(-1)
                                                .with_committed_metadata(Some(StrBytes::default()))
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
        )
    };
    // Coordinator errors come per partition; the first one stands for the request.
    let error_of = |r: &ResponseKind| match r {
        ResponseKind::OffsetCommit(r) => r
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0),
        _ => 0,
    };
    let (_, response) = cluster
        .at_coordinator(group, ApiKey::OffsetCommit, 8, request, error_of)
        .await?;
    let ResponseKind::OffsetCommit(response) = response else {
        bail!("unexpected answer to OffsetCommit");
    };
    let mut failures = Vec::new();
    let mut answered = 0usize;
    for topic in &response.topics {
        for p in &topic.partitions {
            answered += 1;
            if p.error_code != 0 {
                failures.push(format!(
                    "{}-{}: {}",
                    topic.name.as_str(),
                    p.partition_index,
                    error_name(p.error_code)
                ));
            }
        }
    }
    if !failures.is_empty() {
        bail!(
            "committing offsets for group '{group}' failed: {}",
            failures.join(", ")
        );
    }
    if answered != plan.len() {
        bail!(
            "committing offsets for group '{group}': {answered} of {} partitions answered",
            plan.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> BTreeMap<String, BTreeMap<i32, i32>> {
        [
            ("a".to_string(), [(0, 1), (1, 1), (2, 2)].into()),
            ("b".to_string(), [(0, 1)].into()),
        ]
        .into()
    }

    fn tp(t: &str, p: i32) -> Tp {
        (t.to_string(), p)
    }

    #[test]
    fn scopes_resolve_against_metadata() {
        let committed: BTreeMap<Tp, i64> = [(tp("b", 0), 3)].into();
        let all = Scope::Topics(vec![TopicSpec {
            topic: "a".into(),
            partitions: None,
        }]);
        assert_eq!(
            resolve_scope(&all, &topics(), &committed).ok(),
            Some(vec![tp("a", 0), tp("a", 1), tp("a", 2)])
        );
        let some = Scope::Topics(vec![
            TopicSpec {
                topic: "a".into(),
                partitions: Some(vec![2]),
            },
            TopicSpec {
                topic: "b".into(),
                partitions: None,
            },
        ]);
        assert_eq!(
            resolve_scope(&some, &topics(), &committed).ok(),
            Some(vec![tp("a", 2), tp("b", 0)])
        );
        assert_eq!(
            resolve_scope(&Scope::AllTopics, &topics(), &committed).ok(),
            Some(vec![tp("b", 0)])
        );
        let missing = Scope::Topics(vec![TopicSpec {
            topic: "a".into(),
            partitions: Some(vec![3]),
        }]);
        assert!(resolve_scope(&missing, &topics(), &committed).is_err());
        let unknown = Scope::Topics(vec![TopicSpec {
            topic: "zz".into(),
            partitions: None,
        }]);
        assert!(resolve_scope(&unknown, &topics(), &committed).is_err());
    }

    #[test]
    fn plan_table() {
        assert_eq!(
            render_plan("g", &[(tp("a", 0), 0), (tp("a", 10), 1234)]),
            "GROUP  TOPIC  PARTITION  NEW-OFFSET\n\
             g      a      0          0\n\
             g      a      10         1234\n"
        );
    }
}
