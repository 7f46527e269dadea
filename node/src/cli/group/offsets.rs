//! Log offsets for `brook group`: ListOffsets to each partition's leader from Metadata.

use std::collections::BTreeMap;

use anyhow::bail;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, ListOffsetsRequest, RequestKind, ResponseKind};
use kafka_protocol::ResponseError;

use super::client::{backoff, is_retriable, Cluster, ATTEMPTS};
use crate::client::topic_name;

/// ListOffsets timestamps for the earliest and the latest offset.
pub const EARLIEST: i64 = -2;
pub const LATEST: i64 = -1;

/// A topic and partition.
pub type Tp = (String, i32);

impl Cluster {
    /// ListOffsets (v7) at `timestamp` for each partition, sent to its leader. Retriable errors
    /// (leader moved or down) refresh Metadata and retry; the result holds the offset or the
    /// last error code of each partition.
    pub async fn list_offsets(
        &mut self,
        partitions: &[Tp],
        timestamp: i64,
    ) -> anyhow::Result<BTreeMap<Tp, Result<i64, i16>>> {
        self.check_supported(ApiKey::ListOffsets, 7)?;
        let mut result: BTreeMap<Tp, Result<i64, i16>> = BTreeMap::new();
        let mut pending: Vec<Tp> = partitions.to_vec();
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                backoff(attempt).await;
                self.refresh_metadata().await?;
            }
            let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
            let mut retry = Vec::new();
            for (topic, partition) in &pending {
                let leader = self
                    .topics
                    .get(topic)
                    .and_then(|ps| ps.get(partition))
                    .copied();
                match leader {
                    None => {
                        result.insert(
                            (topic.clone(), *partition),
                            Err(ResponseError::UnknownTopicOrPartition.code()),
                        );
                    }
                    Some(leader) if !self.brokers.contains_key(&leader) => {
                        result.insert(
                            (topic.clone(), *partition),
                            Err(ResponseError::LeaderNotAvailable.code()),
                        );
                        retry.push((topic.clone(), *partition));
                    }
                    Some(leader) => by_leader
                        .entry(leader)
                        .or_default()
                        .entry(topic.clone())
                        .or_default()
                        .push(*partition),
                }
            }
            for (leader, topics) in by_leader {
                let Some(node) = self.brokers.get(&leader).cloned() else {
                    continue;
                };
                let asked: Vec<Tp> = topics
                    .iter()
                    .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
                    .collect();
                let request = ListOffsetsRequest::default()
                    .with_replica_id(BrokerId(-1))
                    .with_isolation_level(0)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                ListOffsetsTopic::default()
                                    .with_name(topic_name(&t))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|p| {
                                                ListOffsetsPartition::default()
                                                    .with_partition_index(p)
                                                    .with_timestamp(timestamp)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    );
                let response = match self
                    .call(
                        &node.addr(),
                        ApiKey::ListOffsets,
                        7,
                        RequestKind::ListOffsets(request),
                    )
                    .await
                {
                    Ok(ResponseKind::ListOffsets(r)) => r,
                    Ok(other) => bail!("unexpected answer to ListOffsets: {other:?}"),
                    Err(e) => {
                        tracing::debug!("ListOffsets to {node} failed: {e:#}");
                        for tp in asked {
                            result.insert(tp.clone(), Err(ResponseError::NetworkException.code()));
                            retry.push(tp);
                        }
                        continue;
                    }
                };
                let mut answered = Vec::new();
                for t in response.topics {
                    let topic = t.name.0.to_string();
                    for p in t.partitions {
                        let tp = (topic.clone(), p.partition_index);
                        if !asked.contains(&tp) {
                            continue;
                        }
                        answered.push(tp.clone());
                        if p.error_code == 0 {
                            result.insert(tp, Ok(p.offset));
                        } else {
                            if is_retriable(p.error_code) {
                                retry.push(tp.clone());
                            }
                            result.insert(tp, Err(p.error_code));
                        }
                    }
                }
                for tp in asked {
                    if !answered.contains(&tp) {
                        result.insert(tp.clone(), Err(ResponseError::UnknownServerError.code()));
                    }
                }
            }
            pending = retry;
        }
        Ok(result)
    }
}
