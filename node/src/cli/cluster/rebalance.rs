//! `brook cluster rebalance`: spreads replicas evenly over the live brokers (moving them onto a
//! node that just joined), and off the brokers being decommissioned. It plans from Metadata,
//! prints the moves, and with `--execute` sends them as AlterPartitionReassignments, then
//! waits until ListPartitionReassignments shows none left. Clients keep working throughout:
//! the new replicas copy the log as followers before the old ones are dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, ApiKey, BrokerId, ListPartitionReassignmentsRequest,
    RequestKind, ResponseKind,
};

use crate::client::topic_name;
use crate::client::Client;

/// A partition and its replica set (preferred leader first).
pub type Assignment = BTreeMap<(String, i32), Vec<i32>>;

/// Moves replicas so that only `brokers` hold them and each holds about as many as the
/// others, changing as few replicas as it can. Each partition keeps its replication factor
/// (capped at the broker count) and a replica that stays keeps its position, so leaders stay
/// put where they can. Returns the partitions whose replica set changes, with the new set.
pub fn plan(current: &Assignment, brokers: &[i32]) -> Assignment {
    let allowed: BTreeSet<i32> = brokers.iter().copied().collect();
    let mut load: BTreeMap<i32, usize> = brokers.iter().map(|&b| (b, 0)).collect();
    for replicas in current.values() {
        for r in replicas.iter().filter(|r| allowed.contains(r)) {
            *load.entry(*r).or_default() += 1;
        }
    }
    // Replace each replica on a broker that may not hold one, in place, with the least loaded
    // broker the partition does not use yet.
    let mut target = Assignment::new();
    for (k, replicas) in current {
        let rf = replicas.len().min(brokers.len());
        let mut placed: Vec<i32> = Vec::with_capacity(rf);
        for (i, r) in replicas.iter().enumerate() {
            if allowed.contains(r) {
                placed.push(*r);
                continue;
            }
            let taken: Vec<i32> = placed.iter().chain(&replicas[i + 1..]).copied().collect();
            if placed.len()
                + replicas[i + 1..]
                    .iter()
                    .filter(|r| allowed.contains(r))
                    .count()
                >= rf
            {
                continue;
            }
            if let Some(b) = least_loaded(&load, &taken) {
                placed.push(b);
                *load.entry(b).or_default() += 1;
            }
        }
        target.insert(k.clone(), placed);
    }
    // Then move replicas from the most to the least loaded broker while that evens them out.
    while let (Some((&most, &high)), Some((&least, &low))) = (
        load.iter().max_by_key(|(_, &n)| n),
        load.iter().min_by_key(|(_, &n)| n),
    ) {
        if high <= low + 1 {
            break;
        }
        let movable = target
            .iter_mut()
            .find(|(_, r)| r.contains(&most) && !r.contains(&least));
        let Some((_, replicas)) = movable else { break };
        if let Some(slot) = replicas.iter_mut().find(|r| **r == most) {
            *slot = least;
        }
        *load.entry(most).or_default() -= 1;
        *load.entry(least).or_default() += 1;
    }
    target
        .into_iter()
        .filter(|(k, replicas)| current.get(k) != Some(replicas))
        .collect()
}

fn least_loaded(load: &BTreeMap<i32, usize>, exclude: &[i32]) -> Option<i32> {
    load.iter()
        .filter(|(b, _)| !exclude.contains(b))
        .min_by_key(|(_, &n)| n)
        .map(|(&b, _)| b)
}

pub async fn rebalance(
    bootstrap: &str,
    decommission: &[i32],
    execute: bool,
    timeout: Duration,
) -> anyhow::Result<()> {
    let mut client = Client::admin(bootstrap).await?;
    let metadata = client.metadata(None).await?;
    let brokers: Vec<i32> = metadata
        .brokers
        .iter()
        .map(|b| b.node_id.0)
        .filter(|b| !decommission.contains(b))
        .collect();
    if brokers.is_empty() {
        bail!("no live broker would be left to hold the replicas");
    }
    let mut current = Assignment::new();
    for topic in &metadata.topics {
        let Some(name) = &topic.name else { continue };
        for p in &topic.partitions {
            let replicas = p.replica_nodes.iter().map(|b| b.0).collect();
            current.insert((name.to_string(), p.partition_index), replicas);
        }
    }
    if !ongoing(&mut client).await?.is_empty() {
        bail!("reassignments are in progress; wait for them (or cancel them) first");
    }
    let moves = plan(&current, &brokers);
    if moves.is_empty() {
        println!("Replicas are balanced over brokers {brokers:?}; nothing to move.");
        return Ok(());
    }
    for ((topic, partition), replicas) in &moves {
        let from = current
            .get(&(topic.clone(), *partition))
            .cloned()
            .unwrap_or_default();
        println!("{topic}-{partition}: {from:?} -> {replicas:?}");
    }
    if !execute {
        println!(
            "{} partitions would move; run again with --execute to move them.",
            moves.len()
        );
        return Ok(());
    }
    send(&mut client, &moves).await?;
    println!("Moving {} partitions...", moves.len());
    let deadline = Instant::now() + timeout;
    loop {
        let left = ongoing(&mut client).await?;
        if left.is_empty() {
            println!("Done: every move completed.");
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{} partitions are still moving after {timeout:?}",
                left.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn send(client: &mut Client, moves: &Assignment) -> anyhow::Result<()> {
    let mut topics: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
    for ((topic, partition), replicas) in moves {
        topics.entry(topic).or_default().push(
            ReassignablePartition::default()
                .with_partition_index(*partition)
                .with_replicas(Some(replicas.iter().copied().map(BrokerId).collect())),
        );
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    ReassignableTopic::default()
                        .with_name(topic_name(name))
                        .with_partitions(partitions)
                })
                .collect(),
        );
    let response = match client
        .call(
            ApiKey::AlterPartitionReassignments,
            0,
            RequestKind::AlterPartitionReassignments(request),
        )
        .await?
    {
        ResponseKind::AlterPartitionReassignments(r) => r,
        other => bail!("unexpected answer to AlterPartitionReassignments: {other:?}"),
    };
    let refused: Vec<String> = response
        .responses
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| p.error_code != 0)
                .map(move |p| {
                    format!(
                        "{}-{}: error {}",
                        t.name.as_str(),
                        p.partition_index,
                        p.error_code
                    )
                })
        })
        .collect();
    if !refused.is_empty() {
        bail!("moves refused: {}", refused.join(", "));
    }
    Ok(())
}

/// The partitions still moving.
async fn ongoing(client: &mut Client) -> anyhow::Result<Vec<(String, i32)>> {
    let request = ListPartitionReassignmentsRequest::default().with_timeout_ms(30_000);
    let response = client
        .call(
            ApiKey::ListPartitionReassignments,
            0,
            RequestKind::ListPartitionReassignments(request),
        )
        .await
        .context("listing reassignments")?;
    let ResponseKind::ListPartitionReassignments(response) = response else {
        bail!("unexpected answer to ListPartitionReassignments");
    };
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (t.name.to_string(), p.partition_index))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignment(sets: &[&[i32]]) -> Assignment {
        sets.iter()
            .enumerate()
            .map(|(p, r)| (("t".to_string(), p as i32), r.to_vec()))
            .collect()
    }

    fn loads(a: &Assignment, moved: &Assignment) -> BTreeMap<i32, usize> {
        let mut load = BTreeMap::new();
        for (k, r) in a {
            for b in moved.get(k).unwrap_or(r) {
                *load.entry(*b).or_default() += 1;
            }
        }
        load
    }

    #[test]
    fn a_new_broker_gets_its_share() {
        let current = assignment(&[&[1, 2], &[2, 3], &[3, 1], &[1, 2], &[2, 3], &[3, 1]]);
        let moves = plan(&current, &[1, 2, 3, 4]);
        let load = loads(&current, &moves);
        assert_eq!(load.values().sum::<usize>(), 12);
        assert!(load.values().all(|&n| n == 3), "{load:?}");
        // Few moves: only the three replicas the new broker takes.
        assert_eq!(moves.len(), 3);
    }

    #[test]
    fn a_decommissioned_broker_is_emptied() {
        let current = assignment(&[&[1, 2, 3], &[2, 3, 1], &[3, 1, 2]]);
        let moves = plan(&current, &[2, 3, 4]);
        let load = loads(&current, &moves);
        assert_eq!(load.get(&1), None);
        assert_eq!(load, BTreeMap::from([(2, 3), (3, 3), (4, 3)]));
        // The replacement takes the removed replica's position.
        assert_eq!(moves[&("t".to_string(), 0)], vec![4, 2, 3]);
    }

    #[test]
    fn balanced_is_left_alone() {
        let current = assignment(&[&[1, 2], &[2, 3], &[3, 1]]);
        assert!(plan(&current, &[1, 2, 3]).is_empty());
    }
}
