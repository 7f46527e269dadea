//! DescribeLogDirs: the node's one log directory (`log.dirs`), the partition replicas it holds
//! (leaders and followers) with their size and lag, and at v4 the space of the filesystem it is
//! on. What `kafka-log-dirs.sh` and admin clients' `describeLogDirs` show. Needs DESCRIBE on
//! the cluster.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use brook_actors::{ask, DescribeLog};
use futures::future::join_all;
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use brook_raft::acl::AclOperation;

use super::Call;
use crate::broker::Broker;

pub(crate) async fn handle(
    broker: Arc<Broker>,
    call: Call,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // Kafka answers a caller that may not DESCRIBE the cluster with no directories.
    if !call.may_on_cluster(&broker, AclOperation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let configured = &broker.config.log_dirs;
    // Kafka names its directories by absolute path.
    let dir = std::path::absolute(configured).unwrap_or_else(|_| configured.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()));
    let statted = dir.clone();
    let space = tokio::task::spawn_blocking(move || volume_bytes(&statted)).await;
    let result = match space {
        // A store whose flush failed takes no more writes: the directory is offline, as Kafka
        // reports a directory after an I/O error (no topics, no space figures).
        Ok(Ok(_)) if broker.store.is_failed() => {
            result.with_error_code(ResponseError::KafkaStorageError.code())
        }
        Ok(Ok((total, usable))) => result
            .with_topics(hosted(&broker, request.topics).await)
            .with_total_bytes(total)
            .with_usable_bytes(usable),
        Ok(Err(e)) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot stat the log directory");
            result.with_error_code(ResponseError::KafkaStorageError.code())
        }
        Err(e) => {
            tracing::error!(error = %e, "statvfs task failed");
            result.with_error_code(ResponseError::KafkaStorageError.code())
        }
    };
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// The replicas this node holds, by topic name, limited to `wanted` (`None`: all). A named
/// partition this node does not hold is left out, as Kafka does.
async fn hosted(
    broker: &Broker,
    wanted: Option<Vec<DescribableLogDirTopic>>,
) -> Vec<DescribeLogDirsTopic> {
    let image = broker.image();
    let names: HashMap<[u8; 16], &str> = image
        .topics()
        .map(|t| (t.id.into_bytes(), t.name.as_str()))
        .collect();
    // Sized by what the request holds (bounded by the frame), never by a count it claims.
    let wanted: Option<HashMap<String, HashSet<i32>>> = wanted.map(|topics| {
        let mut by_name: HashMap<String, HashSet<i32>> = HashMap::new();
        for t in topics {
            by_name
                .entry(t.topic.0.to_string())
                .or_default()
                .extend(t.partitions);
        }
        by_name
    });
    let asks = broker.partitions.keys().into_iter().filter_map(|key| {
        // A replica whose topic is gone from the metadata is being deleted.
        let name = *names.get(&key.topic_id)?;
        if let Some(wanted) = &wanted {
            if !wanted.get(name).is_some_and(|p| p.contains(&key.partition)) {
                return None;
            }
        }
        let handle = broker.partitions.get(key)?;
        Some(async move {
            let described = ask(&handle.addr, |reply| DescribeLog { reply }).await;
            (name, key.partition, described)
        })
    });
    let mut topics: BTreeMap<&str, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (name, partition, described) in join_all(asks).await {
        // The only failure is an actor that stopped meanwhile (its topic was deleted).
        let Ok(log) = described else { continue };
        // `partition_size` is the bytes of the record batches the log holds as stored (the
        // per-segment totals the log keeps, also what `retention.bytes` counts): what Kafka's
        // `.log` segment files hold. brook's few bytes of per-batch prefix and sled's own
        // overhead are left out, as Kafka leaves out its index files.
        topics.entry(name).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(partition)
                .with_partition_size(i64::try_from(log.size_bytes).unwrap_or(i64::MAX))
                .with_offset_lag(i64::try_from(log.offset_lag).unwrap_or(i64::MAX))
                .with_is_future_key(false),
        );
    }
    topics
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                .with_partitions(partitions)
        })
        .collect()
}

/// (total, usable) bytes of the filesystem holding `dir`, as Kafka's `FileStore` total and
/// usable space: usable is what an unprivileged writer may still use (`f_bavail`).
fn volume_bytes(dir: &Path) -> nix::Result<(i64, i64)> {
    let stat = nix::sys::statvfs::statvfs(dir)?;
    let fragment = stat.fragment_size() as u64;
    let bytes = |blocks: u64| i64::try_from(blocks.saturating_mul(fragment)).unwrap_or(i64::MAX);
    Ok((
        bytes(stat.blocks() as u64),
        bytes(stat.blocks_available() as u64),
    ))
}
