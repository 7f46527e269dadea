//! `brook cluster status`: the Raft quorum (DescribeQuorum, as `kafka-metadata-quorum.sh` asks
//! it) and the brokers (Metadata) as one node sees them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::future::Future;
use std::time::Duration;

use anyhow::{anyhow, bail};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, DescribeQuorumRequest, DescribeQuorumResponse, MetadataRequest,
    MetadataResponse, RequestKind, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::cli::output::error_text;
use crate::client::Client;

/// The Raft topic-partition Kafka names its metadata log by.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Longest wait for a connection or an answer; a node that takes longer is treated as down.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The Raft group as the node that was asked reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quorum {
    pub leader_id: i32,
    pub term: i32,
    pub committed: i64,
    /// (node id, log end offset, -1 when unknown)
    pub voters: Vec<(i32, i64)>,
    pub learners: Vec<(i32, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raft {
    Known(Quorum),
    /// The node cannot describe its quorum; the reason.
    Unknown(String),
}

/// Everything the status table is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub raft: Raft,
    /// Live brokers (Metadata), by id: host:port.
    pub brokers: BTreeMap<i32, String>,
    pub controller_id: i32,
    /// Partitions each node leads.
    pub leaders: BTreeMap<i32, usize>,
}

/// Prints the status of the cluster `bootstrap` belongs to.
pub async fn status(bootstrap: &str) -> anyhow::Result<()> {
    let view = collect(bootstrap).await?;
    print!("{}", render(&view));
    Ok(())
}

async fn timed<T>(
    what: &str,
    bootstrap: &str,
    call: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .map_err(|_| anyhow!("{what}: {bootstrap} did not answer within {CALL_TIMEOUT:?}"))?
}

pub async fn connect(bootstrap: &str) -> anyhow::Result<Client> {
    timed("connecting", bootstrap, Client::admin(bootstrap))
        .await
        .map_err(|e| {
            anyhow!(
                "cannot reach a brook node at {bootstrap}: {}",
                e.root_cause()
            )
        })
}

/// Metadata v12 for every topic, without creating any.
pub async fn metadata(client: &mut Client, bootstrap: &str) -> anyhow::Result<MetadataResponse> {
    let request = MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false);
    let call = client.call(ApiKey::Metadata, 12, RequestKind::Metadata(request));
    match timed("Metadata", bootstrap, call).await? {
        ResponseKind::Metadata(r) => Ok(r),
        other => bail!("unexpected answer to Metadata: {other:?}"),
    }
}

/// Asks `bootstrap` for its view of the cluster.
pub async fn collect(bootstrap: &str) -> anyhow::Result<ClusterView> {
    let mut client = connect(bootstrap).await?;
    let versions = timed(
        "ApiVersions",
        bootstrap,
        client.call(
            ApiKey::ApiVersions,
            0,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ),
    )
    .await?;
    let quorum_version = match versions {
        ResponseKind::ApiVersions(r) if r.error_code == 0 => describe_quorum_version(
            r.api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version)),
        ),
        _ => None,
    };
    // Metadata goes first: a node may close the connection on a request it cannot handle.
    let metadata = metadata(&mut client, bootstrap).await?;
    let raft = match quorum_version {
        None => Raft::Unknown(format!("{bootstrap} does not support DescribeQuorum")),
        Some(version) => {
            let request = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
                .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
            let call = client.call(
                ApiKey::DescribeQuorum,
                version,
                RequestKind::DescribeQuorum(request),
            );
            match timed("DescribeQuorum", bootstrap, call).await {
                Ok(ResponseKind::DescribeQuorum(r)) => quorum(&r),
                Ok(other) => {
                    Raft::Unknown(format!("unexpected answer to DescribeQuorum: {other:?}"))
                }
                Err(e) => Raft::Unknown(format!("DescribeQuorum failed: {e:#}")),
            }
        }
    };
    Ok(view(raft, &metadata))
}

/// The DescribeQuorum version to send, given the node's (key, min, max) versions: 1 (what
/// `kafka-metadata-quorum.sh` needs) unless the node also has 2; `None` when it has neither.
pub fn describe_quorum_version(api_keys: impl Iterator<Item = (i16, i16, i16)>) -> Option<i16> {
    let (_, min, max) = api_keys
        .into_iter()
        .find(|&(key, _, _)| key == ApiKey::DescribeQuorum as i16)?;
    [2, 1, 0].into_iter().find(|v| (min..=max).contains(v))
}

/// The quorum of the metadata partition in a DescribeQuorum answer.
pub fn quorum(response: &DescribeQuorumResponse) -> Raft {
    if response.error_code != 0 {
        return Raft::Unknown(error_text(
            response.error_code,
            response.error_message.as_ref(),
        ));
    }
    let partition = response
        .topics
        .iter()
        .filter(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
        .flat_map(|t| t.partitions.iter())
        .find(|p| p.partition_index == 0);
    let Some(p) = partition else {
        return Raft::Unknown(format!("no {METADATA_TOPIC} partition in the answer"));
    };
    if p.error_code != 0 {
        return Raft::Unknown(error_text(p.error_code, p.error_message.as_ref()));
    }
    let replicas =
        |states: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
            states
                .iter()
                .map(|r| (r.replica_id.0, r.log_end_offset))
                .collect()
        };
    Raft::Known(Quorum {
        leader_id: p.leader_id.0,
        term: p.leader_epoch,
        committed: p.high_watermark,
        voters: replicas(&p.current_voters),
        learners: replicas(&p.observers),
    })
}

/// Combines the quorum with what Metadata says.
pub fn view(raft: Raft, metadata: &MetadataResponse) -> ClusterView {
    let brokers = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
        .collect();
    let mut leaders = BTreeMap::new();
    for p in metadata
        .topics
        .iter()
        .filter(|t| t.error_code == 0)
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.leader_id.0 >= 0)
    {
        *leaders.entry(p.leader_id.0).or_insert(0) += 1;
    }
    ClusterView {
        raft,
        brokers,
        controller_id: metadata.controller_id.0,
        leaders,
    }
}

/// The status report: the quorum line, then one row per node.
pub fn render(view: &ClusterView) -> String {
    let mut out = String::new();
    let (quorum, ids) = match &view.raft {
        Raft::Known(q) => {
            let _ = writeln!(
                out,
                "raft leader: {}  term: {}  committed index: {}",
                q.leader_id, q.term, q.committed
            );
            let ids: BTreeSet<i32> = q.voters.iter().chain(&q.learners).map(|r| r.0).collect();
            (Some(q), ids)
        }
        Raft::Unknown(why) => {
            let _ = writeln!(out, "raft: unknown ({why})");
            (None, BTreeSet::new())
        }
    };
    let ids: BTreeSet<i32> = ids
        .into_iter()
        .chain(view.brokers.keys().copied())
        .collect();
    let mut rows = vec![["NODE", "ADDRESS", "ROLE", "STATE", "LEADS", "LOG-END"].map(String::from)];
    for id in ids {
        let find = |list: &[(i32, i64)]| list.iter().find(|r| r.0 == id).map(|r| r.1);
        let (role, log_end) = match quorum {
            Some(q) if q.leader_id == id => ("leader", find(&q.voters)),
            Some(q) => match (find(&q.voters), find(&q.learners)) {
                (Some(end), _) => ("voter", Some(end)),
                (None, Some(end)) => ("learner", Some(end)),
                (None, None) => ("-", None),
            },
            None => ("-", None),
        };
        let address = view.brokers.get(&id);
        rows.push([
            id.to_string(),
            address.map_or_else(|| "-".to_string(), Clone::clone),
            role.to_string(),
            if address.is_some() { "up" } else { "down" }.to_string(),
            view.leaders.get(&id).copied().unwrap_or(0).to_string(),
            log_end
                .filter(|&end| end >= 0)
                .map_or_else(|| "-".to_string(), |end| end.to_string()),
        ]);
    }
    out.push_str(&table(&rows));
    out
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(widths) {
            let _ = write!(line, "{cell:<w$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::describe_quorum_response::{self as dq, ReplicaState};
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::BrokerId;

    fn metadata(brokers: &[i32], leaders: &[i32]) -> MetadataResponse {
        MetadataResponse::default()
            .with_controller_id(BrokerId(1))
            .with_brokers(
                brokers
                    .iter()
                    .map(|&id| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(id))
                            .with_host(StrBytes::from_static_str("127.0.0.1"))
                            .with_port(9091 + id)
                    })
                    .collect(),
            )
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("t"))))
                .with_partitions(
                    leaders
                        .iter()
                        .zip(0..)
                        .map(|(&leader, index)| {
                            MetadataResponsePartition::default()
                                .with_partition_index(index)
                                .with_leader_id(BrokerId(leader))
                        })
                        .collect(),
                )])
    }

    fn replica(id: i32, end: i64) -> ReplicaState {
        ReplicaState::default()
            .with_replica_id(BrokerId(id))
            .with_log_end_offset(end)
    }

    fn describe_quorum(topic: &'static str, error_code: i16) -> DescribeQuorumResponse {
        DescribeQuorumResponse::default().with_topics(vec![dq::TopicData::default()
            .with_topic_name(TopicName(StrBytes::from_static_str(topic)))
            .with_partitions(vec![dq::PartitionData::default()
                .with_error_code(error_code)
                .with_leader_id(BrokerId(2))
                .with_leader_epoch(7)
                .with_high_watermark(42)
                .with_current_voters(vec![replica(1, 40), replica(2, 42), replica(3, -1)])
                .with_observers(vec![replica(4, 12)])])])
    }

    #[test]
    fn picks_the_describe_quorum_version() {
        let key = ApiKey::DescribeQuorum as i16;
        let pick = |keys: &[(i16, i16, i16)]| describe_quorum_version(keys.iter().copied());
        assert_eq!(pick(&[(3, 0, 12), (key, 0, 2)]), Some(2));
        assert_eq!(pick(&[(key, 0, 1)]), Some(1));
        assert_eq!(pick(&[(key, 0, 0)]), Some(0));
        assert_eq!(pick(&[(3, 0, 12)]), None);
    }

    #[test]
    fn reads_the_metadata_partition() {
        let Raft::Known(q) = quorum(&describe_quorum(METADATA_TOPIC, 0)) else {
            panic!("expected a known quorum");
        };
        assert_eq!((q.leader_id, q.term, q.committed), (2, 7, 42));
        assert_eq!(q.voters, vec![(1, 40), (2, 42), (3, -1)]);
        assert_eq!(q.learners, vec![(4, 12)]);
        assert!(matches!(
            quorum(&describe_quorum("other", 0)),
            Raft::Unknown(_)
        ));
        let Raft::Unknown(why) = quorum(&describe_quorum(METADATA_TOPIC, 6)) else {
            panic!("an error code means unknown");
        };
        assert!(why.contains("NOT_LEADER_OR_FOLLOWER"), "{why}");
    }

    #[test]
    fn renders_quorum_and_brokers() {
        let raft = quorum(&describe_quorum(METADATA_TOPIC, 0));
        // Node 3 is a voter that is down; node 4 a learner.
        let v = view(raft, &metadata(&[1, 2, 4], &[1, 2, 2, 4, -1]));
        assert_eq!(
            render(&v),
            "raft leader: 2  term: 7  committed index: 42\n\
             NODE  ADDRESS         ROLE     STATE  LEADS  LOG-END\n\
             1     127.0.0.1:9092  voter    up     1      40\n\
             2     127.0.0.1:9093  leader   up     2      42\n\
             3     -               voter    down   0      -\n\
             4     127.0.0.1:9095  learner  up     1      12\n"
        );
    }

    #[test]
    fn renders_brokers_when_raft_is_unknown() {
        let v = view(
            Raft::Unknown("127.0.0.1:9092 does not support DescribeQuorum".into()),
            &metadata(&[1], &[1, 1]),
        );
        assert_eq!(
            render(&v),
            "raft: unknown (127.0.0.1:9092 does not support DescribeQuorum)\n\
             NODE  ADDRESS         ROLE  STATE  LEADS  LOG-END\n\
             1     127.0.0.1:9092  -     up     2      -\n"
        );
    }
}
