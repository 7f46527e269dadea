//! `brook group describe`: DescribeGroups and OffsetFetch at the group's coordinator, log-end
//! offsets from each partition's leader, one table of members and one of partitions.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, DescribeGroupsRequest, GroupId, OffsetFetchRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::client::{Cluster, Node};
use super::offsets::{Tp, LATEST};
use super::plan::{decode_assignment, format_assignment, lag};
use crate::cli::output::{error_name, or_dash, render_table};

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// `(topic, partitions)`; empty when the group is not a consumer group or not yet synced.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A group as DescribeGroups tells it.
#[derive(Clone, Debug)]
pub struct Group {
    pub group_id: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub coordinator: Node,
    pub members: Vec<Member>,
}

impl Group {
    /// Kafka resets offsets only of groups without members.
    pub fn is_inactive(&self) -> bool {
        self.state == "Empty" || self.state == "Dead"
    }
}

fn group_id(name: &str) -> GroupId {
    GroupId(StrBytes::from_string(name.to_string()))
}

/// DescribeGroups (v5) at the coordinator. `None`: the group does not exist.
pub async fn describe_group(cluster: &mut Cluster, group: &str) -> anyhow::Result<Option<Group>> {
    let request = || {
        RequestKind::DescribeGroups(
            DescribeGroupsRequest::default()
                .with_groups(vec![group_id(group)])
                .with_include_authorized_operations(false),
        )
    };
    let error_of = |r: &ResponseKind| match r {
        ResponseKind::DescribeGroups(r) => r.groups.first().map_or(0, |g| g.error_code),
        _ => 0,
    };
    let (coordinator, response) = cluster
        .at_coordinator(group, ApiKey::DescribeGroups, 5, request, error_of)
        .await?;
    let ResponseKind::DescribeGroups(response) = response else {
        bail!("unexpected answer to DescribeGroups");
    };
    let Some(described) = response.groups.into_iter().next() else {
        bail!("DescribeGroups for '{group}': empty answer");
    };
    if described.error_code == ResponseError::GroupIdNotFound.code() {
        return Ok(None);
    }
    if described.error_code != 0 {
        bail!(
            "describing group '{group}': {}",
            error_name(described.error_code)
        );
    }
    if described.group_state.as_str() == "Dead" && described.members.is_empty() {
        return Ok(None);
    }
    let consumer = described.protocol_type.as_str() == "consumer";
    let members = described
        .members
        .into_iter()
        .map(|m| {
            let assignment = if consumer {
                decode_assignment(&m.member_assignment).unwrap_or_else(|e| {
                    tracing::warn!("member {}: {e}", m.member_id.as_str());
                    Vec::new()
                })
            } else {
                Vec::new()
            };
            Member {
                member_id: m.member_id.to_string(),
                instance_id: m.group_instance_id.map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                host: m.client_host.to_string(),
                assignment,
            }
        })
        .collect();
    Ok(Some(Group {
        group_id: group.to_string(),
        state: described.group_state.to_string(),
        protocol_type: described.protocol_type.to_string(),
        protocol: described.protocol_data.to_string(),
        coordinator,
        members,
    }))
}

/// The group's committed offsets, all topics (OffsetFetch v8 at the coordinator). Partitions
/// without a commit are left out.
pub async fn fetch_offsets(
    cluster: &mut Cluster,
    group: &str,
) -> anyhow::Result<BTreeMap<Tp, i64>> {
    let request = || {
        RequestKind::OffsetFetch(
            OffsetFetchRequest::default()
                .with_groups(vec![OffsetFetchRequestGroup::default()
                    .with_group_id(group_id(group))
                    .with_topics(None)])
                .with_require_stable(false),
        )
    };
    let error_of = |r: &ResponseKind| match r {
        ResponseKind::OffsetFetch(r) => r.groups.first().map_or(r.error_code, |g| g.error_code),
        _ => 0,
    };
    let (_, response) = cluster
        .at_coordinator(group, ApiKey::OffsetFetch, 8, request, error_of)
        .await?;
    let ResponseKind::OffsetFetch(response) = response else {
        bail!("unexpected answer to OffsetFetch");
    };
    let Some(answer) = response.groups.into_iter().next() else {
        bail!("OffsetFetch for '{group}': empty answer");
    };
    if answer.error_code != 0 && answer.error_code != ResponseError::GroupIdNotFound.code() {
        bail!(
            "fetching the offsets of group '{group}': {}",
            error_name(answer.error_code)
        );
    }
    let mut offsets = BTreeMap::new();
    for topic in answer.topics {
        for p in topic.partitions {
            if p.error_code != 0 {
                bail!(
                    "fetching the offset of {}-{} for group '{group}': {}",
                    topic.name.as_str(),
                    p.partition_index,
                    error_name(p.error_code)
                );
            }
            if p.committed_offset >= 0 {
                offsets.insert(
                    (topic.name.to_string(), p.partition_index),
                    p.committed_offset,
                );
            }
        }
    }
    Ok(offsets)
}

/// One row of the partitions table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionRow {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub log_end: Option<i64>,
    pub member: Option<Member>,
}

/// Rows for every partition that is committed or assigned, in topic and partition order.
pub fn partition_rows(
    members: &[Member],
    committed: &BTreeMap<Tp, i64>,
    log_ends: &BTreeMap<Tp, Result<i64, i16>>,
) -> Vec<PartitionRow> {
    let mut owner: BTreeMap<Tp, &Member> = BTreeMap::new();
    for m in members {
        for (topic, partitions) in &m.assignment {
            for p in partitions {
                owner.insert((topic.clone(), *p), m);
            }
        }
    }
    let all: BTreeSet<Tp> = committed.keys().chain(owner.keys()).cloned().collect();
    all.into_iter()
        .map(|tp| PartitionRow {
            committed: committed.get(&tp).copied(),
            log_end: log_ends.get(&tp).and_then(|r| r.ok()),
            member: owner.get(&tp).map(|m| (*m).clone()),
            topic: tp.0,
            partition: tp.1,
        })
        .collect()
}

pub fn render_partitions(rows: &[PartitionRow]) -> String {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.topic.clone(),
                r.partition.to_string(),
                or_dash(r.committed),
                or_dash(r.log_end),
                or_dash(lag(r.committed, r.log_end)),
                or_dash(r.member.as_ref().map(|m| m.member_id.clone())),
                or_dash(r.member.as_ref().map(|m| m.host.clone())),
                or_dash(r.member.as_ref().map(|m| m.client_id.clone())),
            ]
        })
        .collect();
    render_table(
        &[
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &cells,
    )
}

pub fn render_members(members: &[Member]) -> String {
    let cells: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.member_id.clone(),
                or_dash(m.instance_id.clone()),
                m.client_id.clone(),
                m.host.clone(),
                format_assignment(&m.assignment),
            ]
        })
        .collect();
    render_table(
        &[
            "CONSUMER-ID",
            "GROUP-INSTANCE-ID",
            "CLIENT-ID",
            "HOST",
            "ASSIGNMENT",
        ],
        &cells,
    )
}

/// Describes each group; a group that does not exist or cannot be described is reported and
/// makes the command fail after the others are shown.
pub async fn run(cluster: &mut Cluster, groups: &[String]) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for (i, group) in groups.iter().enumerate() {
        if i > 0 {
            println!();
        }
        match describe_one(cluster, group).await {
            Ok(true) => {}
            Ok(false) => {
                eprintln!("Consumer group '{group}' does not exist.");
                failed.push(group.clone());
            }
            Err(e) => {
                eprintln!("Error: group '{group}': {e:#}");
                failed.push(group.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("could not describe {}", failed.join(", "));
    }
    Ok(())
}

async fn describe_one(cluster: &mut Cluster, group: &str) -> anyhow::Result<bool> {
    let Some(description) = describe_group(cluster, group).await? else {
        return Ok(false);
    };
    let committed = fetch_offsets(cluster, group).await?;
    let mut partitions: BTreeSet<Tp> = committed.keys().cloned().collect();
    for m in &description.members {
        for (topic, ps) in &m.assignment {
            partitions.extend(ps.iter().map(|p| (topic.clone(), *p)));
        }
    }
    let partitions: Vec<Tp> = partitions.into_iter().collect();
    let log_ends = cluster.list_offsets(&partitions, LATEST).await?;
    for ((topic, partition), result) in &log_ends {
        if let Err(code) = result {
            eprintln!(
                "Warning: no log-end offset for {topic}-{partition}: {}",
                error_name(*code)
            );
        }
    }
    println!("GROUP {}", description.group_id);
    println!(
        "state: {}  protocol type: {}  protocol: {}  coordinator: {}",
        description.state,
        or_dash(Some(&description.protocol_type).filter(|s| !s.is_empty())),
        or_dash(Some(&description.protocol).filter(|s| !s.is_empty())),
        description.coordinator
    );
    println!();
    if description.members.is_empty() {
        println!("Consumer group '{group}' has no active members.");
    } else {
        print!("{}", render_members(&description.members));
    }
    println!();
    let rows = partition_rows(&description.members, &committed, &log_ends);
    print!("{}", render_partitions(&rows));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, assignment: Vec<(&str, Vec<i32>)>) -> Member {
        Member {
            member_id: id.into(),
            instance_id: None,
            client_id: format!("client-{id}"),
            host: "/127.0.0.1".into(),
            assignment: assignment
                .into_iter()
                .map(|(t, ps)| (t.to_string(), ps))
                .collect(),
        }
    }

    #[test]
    fn rows_join_commits_assignments_and_log_ends() {
        let members = vec![member("m1", vec![("t", vec![0, 1])])];
        let committed: BTreeMap<Tp, i64> =
            [(("t".to_string(), 0), 5), (("u".to_string(), 0), 2)].into();
        let log_ends: BTreeMap<Tp, Result<i64, i16>> = [
            (("t".to_string(), 0), Ok(10)),
            (("t".to_string(), 1), Ok(7)),
            (("u".to_string(), 0), Err(5)),
        ]
        .into();
        let rows = partition_rows(&members, &committed, &log_ends);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].committed, Some(5));
        assert_eq!(rows[1].committed, None);
        assert_eq!(rows[2].log_end, None);
        let table = render_partitions(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "TOPIC  PARTITION  CURRENT-OFFSET  LOG-END-OFFSET  LAG  CONSUMER-ID  HOST        CLIENT-ID"
        );
        assert_eq!(
            lines[1],
            "t      0          5               10              5    m1           /127.0.0.1  client-m1"
        );
        assert_eq!(
            lines[2],
            "t      1          -               7               -    m1           /127.0.0.1  client-m1"
        );
        assert_eq!(
            lines[3],
            "u      0          2               -               -    -            -           -"
        );
    }

    #[test]
    fn members_table() {
        let mut m = member("m1", vec![("t", vec![0, 1]), ("u", vec![3])]);
        m.instance_id = Some("i1".into());
        let table = render_members(&[m, member("m2", vec![])]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("m1           i1"));
        assert!(lines[1].ends_with("t:0,1 u:3"));
        assert!(lines[2].ends_with("-"));
    }
}
