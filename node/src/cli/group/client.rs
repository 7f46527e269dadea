//! The cluster as `brook group` sees it: Metadata from the bootstrap node, one connection per
//! broker, group coordinators found with FindCoordinator (retried while they move or load); the
//! log offsets are in [`super::offsets`].

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{bail, Context};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FindCoordinatorRequest, MetadataRequest, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::cli::output::error_name;
use crate::client::Client;

/// How often a retriable failure is tried again, and the pause before the first retry (it grows).
pub const ATTEMPTS: u32 = 6;
const BACKOFF: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A broker from Metadata or a coordinator from FindCoordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub id: i32,
    pub host: String,
    pub port: i32,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}:{})", self.id, self.host, self.port)
    }
}

/// The errors after which the group's coordinator is looked up again.
pub fn is_coordinator_error(code: i16) -> bool {
    code == ResponseError::CoordinatorLoadInProgress.code()
        || code == ResponseError::CoordinatorNotAvailable.code()
        || code == ResponseError::NotCoordinator.code()
}

pub fn is_retriable(code: i16) -> bool {
    ResponseError::try_from_code(code).is_some_and(|e| e.is_retriable())
}

pub async fn backoff(attempt: u32) {
    tokio::time::sleep(BACKOFF * (attempt + 1)).await;
}

pub struct Cluster {
    bootstrap: String,
    /// Live brokers by id.
    pub brokers: BTreeMap<i32, Node>,
    /// Topic -> partition -> leader id (-1: no leader now).
    pub topics: BTreeMap<String, BTreeMap<i32, i32>>,
    connections: HashMap<String, Client>,
    /// The bootstrap node's ApiVersions answer: api key -> (min, max). Nodes of a cluster run
    /// the same binary, so one answer stands for all.
    versions: HashMap<i16, (i16, i16)>,
}

impl Cluster {
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Self> {
        let mut cluster = Cluster {
            bootstrap: bootstrap.to_string(),
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            connections: HashMap::new(),
            versions: HashMap::new(),
        };
        cluster.read_versions().await?;
        cluster.refresh_metadata().await?;
        Ok(cluster)
    }

    async fn read_versions(&mut self) -> anyhow::Result<()> {
        let bootstrap = self.bootstrap.clone();
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("brook"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response = match self
            .call(
                &bootstrap,
                ApiKey::ApiVersions,
                3,
                RequestKind::ApiVersions(request),
            )
            .await?
        {
            ResponseKind::ApiVersions(r) => r,
            other => bail!("unexpected answer to ApiVersions: {other:?}"),
        };
        if response.error_code != 0 {
            bail!(
                "ApiVersions at {bootstrap}: {}",
                error_name(response.error_code)
            );
        }
        self.versions = response
            .api_keys
            .into_iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    /// Refuses a request the brokers do not support, with a clear message, before sending it.
    pub fn check_supported(&self, key: ApiKey, version: i16) -> anyhow::Result<()> {
        if key == ApiKey::ApiVersions || self.versions.is_empty() {
            return Ok(());
        }
        match self.versions.get(&(key as i16)) {
            Some((min, max)) if (*min..=*max).contains(&version) => Ok(()),
            Some((min, max)) => bail!(
                "the brokers support {key:?} v{min}-v{max}, not v{version}, which this command needs"
            ),
            None => bail!("the brokers do not support {key:?}, which this command needs"),
        }
    }

    /// Sends one request to `addr` (connecting first if need be). A failed or timed-out call
    /// drops the connection, so the next call starts afresh.
    pub async fn call(
        &mut self,
        addr: &str,
        key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> anyhow::Result<ResponseKind> {
        self.check_supported(key, version)?;
        if !self.connections.contains_key(addr) {
            let client = tokio::time::timeout(CONNECT_TIMEOUT, Client::admin(addr))
                .await
                .with_context(|| format!("connecting to {addr}: timed out"))??;
            self.connections.insert(addr.to_string(), client);
        }
        let Some(client) = self.connections.get_mut(addr) else {
            bail!("no connection to {addr}");
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, client.call(key, version, body)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => {
                self.connections.remove(addr);
                Err(e.context(format!("{key:?} to {addr}")))
            }
            Err(_) => {
                self.connections.remove(addr);
                bail!("{key:?} to {addr}: no answer within {REQUEST_TIMEOUT:?}")
            }
        }
    }

    /// Reads brokers and all topics from the bootstrap node.
    pub async fn refresh_metadata(&mut self) -> anyhow::Result<()> {
        let request = MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false);
        let bootstrap = self.bootstrap.clone();
        let response = match self
            .call(
                &bootstrap,
                ApiKey::Metadata,
                12,
                RequestKind::Metadata(request),
            )
            .await?
        {
            ResponseKind::Metadata(r) => r,
            other => bail!("unexpected answer to Metadata: {other:?}"),
        };
        self.brokers = response
            .brokers
            .into_iter()
            .map(|b| {
                let node = Node {
                    id: b.node_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                };
                (node.id, node)
            })
            .collect();
        self.topics = response
            .topics
            .into_iter()
            .filter(|t| t.error_code == 0)
            .filter_map(|t| {
                let name = t.name?.0.to_string();
                let partitions = t
                    .partitions
                    .into_iter()
                    .map(|p| (p.partition_index, p.leader_id.0))
                    .collect();
                Some((name, partitions))
            })
            .collect();
        Ok(())
    }

    /// The coordinator of each group (FindCoordinator v4, keys batched), or the error code of
    /// the last answer for groups whose coordinator could not be found. Retries while the
    /// answer is retriable.
    pub async fn find_coordinators(
        &mut self,
        groups: &[String],
    ) -> anyhow::Result<BTreeMap<String, Result<Node, i16>>> {
        self.check_supported(ApiKey::FindCoordinator, 4)?;
        let mut found = BTreeMap::new();
        let mut pending: Vec<String> = groups.to_vec();
        pending.sort();
        pending.dedup();
        let bootstrap = self.bootstrap.clone();
        for attempt in 0..ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                backoff(attempt).await;
            }
            let request = FindCoordinatorRequest::default()
                .with_key_type(0)
                .with_coordinator_keys(
                    pending
                        .iter()
                        .map(|g| StrBytes::from_string(g.clone()))
                        .collect(),
                );
            let response = match self
                .call(
                    &bootstrap,
                    ApiKey::FindCoordinator,
                    4,
                    RequestKind::FindCoordinator(request),
                )
                .await
            {
                Ok(ResponseKind::FindCoordinator(r)) => r,
                Ok(other) => bail!("unexpected answer to FindCoordinator: {other:?}"),
                Err(e) if attempt + 1 < ATTEMPTS => {
                    tracing::debug!("FindCoordinator failed, retrying: {e:#}");
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut retry = Vec::new();
            for c in response.coordinators {
                let group = c.key.to_string();
                if !pending.contains(&group) {
                    continue;
                }
                if c.error_code == 0 {
                    let node = Node {
                        id: c.node_id.0,
                        host: c.host.to_string(),
                        port: c.port,
                    };
                    found.insert(group, Ok(node));
                } else {
                    if is_retriable(c.error_code) {
                        retry.push(group.clone());
                    }
                    found.insert(group, Err(c.error_code));
                }
            }
            // A key the answer left out is asked again.
            for group in &pending {
                if !found.contains_key(group) {
                    retry.push(group.clone());
                    found.insert(
                        group.clone(),
                        Err(ResponseError::CoordinatorNotAvailable.code()),
                    );
                }
            }
            pending = retry;
        }
        Ok(found)
    }

    /// Sends a request about one group to its coordinator. `error_of` reads the group-level error
    /// code from the answer; coordinator errors (and lost connections) find the coordinator
    /// again and retry, a few times with a growing pause.
    pub async fn at_coordinator(
        &mut self,
        group: &str,
        key: ApiKey,
        version: i16,
        request: impl Fn() -> RequestKind,
        error_of: impl Fn(&ResponseKind) -> i16,
    ) -> anyhow::Result<(Node, ResponseKind)> {
        self.check_supported(key, version)?;
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                backoff(attempt).await;
            }
            let coordinators = self.find_coordinators(&[group.to_string()]).await?;
            let coordinator = match coordinators.get(group) {
                Some(Ok(node)) => node.clone(),
                Some(Err(code)) => bail!(
                    "finding the coordinator of group '{group}': {}",
                    error_name(*code)
                ),
                None => bail!("finding the coordinator of group '{group}': no answer"),
            };
            match self
                .call(&coordinator.addr(), key, version, request())
                .await
            {
                Ok(response) => {
                    let code = error_of(&response);
                    if is_coordinator_error(code) {
                        last = format!("{} from {coordinator}", error_name(code));
                        continue;
                    }
                    return Ok((coordinator, response));
                }
                Err(e) => last = format!("{e:#}"),
            }
        }
        bail!("{key:?} for group '{group}' failed after {ATTEMPTS} attempts: {last}")
    }
}
