//! [`MetadataRaft`]: one node's membership in the metadata Raft group, the handle `node` holds.
//!
//! It owns the openraft instance, the sled storage and the Raft port's server task, and offers
//! what the broker needs: [`MetadataRaft::write`] (propose a command from any node; a follower
//! forwards it to the leader and waits until its own image shows the result) and
//! [`MetadataRaft::reader`] (the local, read-only metadata image).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::auth::{ClusterSecret, Identity};
use crate::codes;
use crate::command::{CommandOutput, MetadataCommand, Rejection};
use crate::error::{Error, Result};
use crate::membership::{JoinReply, DEFAULT_MAX_VOTERS};
use crate::network::{CallError, PeerClient, TcpNetworkFactory};
use crate::rpc::{RaftReply, RaftRequest, TransportConfig};
use crate::server::serve_raft_with;
use crate::state_machine::MetadataReader;
use crate::store::open_stores;
use crate::typ::{ClientWriteResponse, Node, NodeId, Raft, RaftMetrics};

/// Largest encoded command [`MetadataRaft::write`] accepts: well below the transport's frame
/// cap, so any single entry can always be replicated (an entry too large to send would stall
/// every follower behind it for good).
pub const MAX_COMMAND_BYTES: u64 = 4 * 1024 * 1024;

/// How to start a node's part of the group.
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// This node's id (its broker id).
    pub node_id: NodeId,
    /// Directory of the Raft sled database.
    pub data_dir: PathBuf,
    /// openraft's settings (timeouts, snapshot policy, ...).
    pub raft: openraft::Config,
    pub transport: TransportConfig,
    /// How long [`MetadataRaft::write`] keeps trying (waiting for a leader, forwarding).
    pub write_timeout: Duration,
    /// Voters the group keeps as nodes join through this node (see [`crate::membership`]).
    pub max_voters: usize,
    /// The secret every node of the cluster holds; the Raft port admits only peers that prove
    /// they hold it (see [`crate::auth`]).
    pub secret: ClusterSecret,
}

impl GroupConfig {
    pub fn new(node_id: NodeId, data_dir: impl Into<PathBuf>, secret: ClusterSecret) -> Self {
        GroupConfig {
            secret,
            node_id,
            data_dir: data_dir.into(),
            raft: openraft::Config {
                cluster_name: "brook-metadata".into(),
                ..Default::default()
            },
            transport: TransportConfig::default(),
            write_timeout: Duration::from_secs(10),
            max_voters: DEFAULT_MAX_VOTERS,
        }
    }
}

/// A running member of the metadata group.
pub struct MetadataRaft {
    id: NodeId,
    raft: Raft,
    reader: MetadataReader,
    transport: TransportConfig,
    identity: Identity,
    write_timeout: Duration,
    stop_server: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<JoinHandle<std::io::Result<()>>>>,
    /// Dangling once openraft released the storage.
    storage: Weak<()>,
}

impl MetadataRaft {
    /// Open the storage, start openraft and serve the Raft port on `listener`. The node waits
    /// for [`MetadataRaft::initialize`] (on one node of a new cluster) or for a leader to
    /// contact it.
    pub async fn start(config: GroupConfig, listener: TcpListener) -> Result<Self> {
        let raft_config = Arc::new(config.raft.validate()?);
        let (log_store, sm) = open_stores(&config.data_dir)?;
        let storage = log_store.alive();
        let reader = sm.reader();
        let known = reader.clone();
        let identity = Identity {
            secret: config.secret.clone(),
            node_id: config.node_id,
            cluster_id: Arc::new(move || known.read(|s| s.cluster_id().map(str::to_owned))),
        };
        let network = TcpNetworkFactory::new(identity.clone(), config.transport.clone());
        let raft = Raft::new(config.node_id, raft_config, network, log_store, sm).await?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_raft_with(
            listener,
            raft.clone(),
            reader.clone(),
            config.transport.clone(),
            identity.clone(),
            config.max_voters,
            async move {
                let _ = stop_rx.await;
            },
        ));
        Ok(MetadataRaft {
            id: config.node_id,
            raft,
            reader,
            transport: config.transport,
            identity,
            write_timeout: config.write_timeout,
            stop_server: Mutex::new(Some(stop_tx)),
            server: Mutex::new(Some(server)),
            storage,
        })
    }

    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The openraft instance, for membership changes and anything not wrapped here.
    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    /// The local metadata image.
    pub fn reader(&self) -> MetadataReader {
        self.reader.clone()
    }

    /// Raft's view of this node: state, term, leader, applied index, membership.
    pub fn metrics(&self) -> RaftMetrics {
        self.raft.metrics().borrow().clone()
    }

    /// The leader this node knows of, if any.
    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Form a new cluster of `members` (id -> Raft address). Call it on one node, once; calling
    /// it on a node that is already part of a cluster is a harmless no-op.
    pub async fn initialize(&self, members: BTreeMap<NodeId, Node>) -> Result<()> {
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(reason = %e, "raft group already initialized");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether this node's storage already belongs to a group (it was initialized, joined, or
    /// contacted by a leader before).
    pub async fn is_initialized(&self) -> Result<bool> {
        Ok(self.raft.is_initialized().await?)
    }

    /// Ask a running group to add this node, whose Raft address is `addr`, trying each of
    /// `seeds` (Raft addresses of members) and following the leader they name, until `timeout`.
    /// Returns whether this node is a voter (a new node joins as a learner).
    pub async fn join(&self, seeds: &[String], addr: &str, timeout: Duration) -> Result<bool> {
        let request = RaftRequest::Join {
            id: self.id,
            addr: addr.to_owned(),
        };
        self.ask_leader(&request, seeds.to_vec(), timeout).await
    }

    /// Make learner `id` a voter (an operator's consent), asking the leader through the
    /// members this node knows, until `timeout`.
    pub async fn promote(&self, id: NodeId, timeout: Duration) -> Result<bool> {
        self.ask_leader(
            &RaftRequest::Promote { id },
            self.members_leader_first(),
            timeout,
        )
        .await
    }

    /// Whether node `id` votes in the group, as this node last saw it.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id)
    }

    /// Make voter `id` a learner again (an operator's request), asking the leader as
    /// [`Self::promote`] does.
    pub async fn demote(&self, id: NodeId, timeout: Duration) -> Result<bool> {
        self.ask_leader(
            &RaftRequest::Demote { id },
            self.members_leader_first(),
            timeout,
        )
        .await
    }

    /// Every member's Raft address, the leader's first.
    fn members_leader_first(&self) -> Vec<String> {
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let mut members: Vec<(bool, String)> = membership
            .nodes()
            .map(|(n, node)| (Some(*n) != metrics.current_leader, node.addr.clone()))
            .collect();
        members.sort();
        members.into_iter().map(|(_, addr)| addr).collect()
    }

    /// Sends a membership request to `seeds` in turn, following the leader they name, until
    /// one answers it or `timeout` passes.
    async fn ask_leader(
        &self,
        request: &RaftRequest,
        mut targets: Vec<String>,
        timeout: Duration,
    ) -> Result<bool> {
        let deadline = Instant::now() + timeout;
        let mut next = 0;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() || targets.is_empty() {
                return Err(Error::Timeout(timeout));
            }
            let target = targets[next % targets.len()].clone();
            next += 1;
            let mut client = PeerClient::new(
                target.clone(),
                self.transport.clone(),
                self.identity.clone(),
            );
            match client.call(request, remaining).await {
                Ok(RaftReply::Join(JoinReply::Joined { voter })) => return Ok(voter),
                Ok(RaftReply::Join(JoinReply::Refused(why))) => return Err(Error::Write(why)),
                Ok(RaftReply::Join(JoinReply::NotLeader {
                    leader: Some((_, leader)),
                })) if leader != target => {
                    tracing::debug!(%target, %leader, "membership change: following the leader");
                    targets.insert(0, leader);
                    next = 0;
                    continue;
                }
                Ok(RaftReply::Join(JoinReply::NotLeader { .. })) => {}
                Ok(_) => return Err(Error::UnexpectedReply(0)),
                Err(e) => {
                    tracing::debug!(%target, error = ?e, "membership change: member not reachable")
                }
            }
            tokio::time::sleep(Duration::from_millis(200).min(remaining)).await;
        }
    }

    /// Propose `cmd` and wait until it is committed and applied. From a follower the command is
    /// forwarded to the leader, and the call returns once this node's own image includes it
    /// (read-your-writes for the caller). A command the state machine rejects comes back as
    /// [`Error::Rejected`].
    ///
    /// Only failures that certainly did not deliver the command (no leader known, leader
    /// unreachable, leader changed) are retried, so a command is never applied twice; an
    /// ambiguous failure (a timeout after sending) is returned as an error.
    pub async fn write(&self, cmd: MetadataCommand) -> Result<CommandOutput> {
        self.write_indexed(cmd).await.map(|(output, _)| output)
    }

    /// [`MetadataRaft::write`], also returning the log index the command was applied at, for
    /// callers that must know when their image includes it.
    pub async fn write_indexed(&self, cmd: MetadataCommand) -> Result<(CommandOutput, u64)> {
        let size = bincode::serialized_size(&cmd).unwrap_or(u64::MAX);
        if size > MAX_COMMAND_BYTES {
            return Err(Error::Rejected(Rejection::new(
                codes::MESSAGE_TOO_LARGE,
                format!("a {size}-byte metadata command exceeds {MAX_COMMAND_BYTES} bytes"),
            )));
        }
        let deadline = Instant::now() + self.write_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(Error::NoLeader);
            }
            // Appended here only if this node leads, so its clock stamps liveness; otherwise
            // the leader stamps the forwarded command again.
            let stamped = cmd.clone().stamped(self.reader.stamp_ms());
            let local = tokio::time::timeout(remaining, self.raft.client_write(stamped))
                .await
                .map_err(|_| Error::Timeout(self.write_timeout))?;
            let leader = match local {
                Ok(resp) => {
                    let index = resp.log_id.index;
                    return resp.data.map(|out| (out, index)).map_err(Error::Rejected);
                }
                Err(RaftError::Fatal(f)) => return Err(f.into()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                    return Err(Error::Write(e.to_string()))
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                    match (f.leader_id, f.leader_node) {
                        (Some(id), Some(node)) if id != self.id => Some((id, node)),
                        _ => None,
                    }
                }
            };
            if let Some((leader, node)) = leader {
                match self.forward(leader, &node, &cmd, remaining).await {
                    Ok(Some(resp)) => {
                        let index = resp.log_id.index;
                        self.await_applied(index, deadline).await;
                        return resp.data.map(|out| (out, index)).map_err(Error::Rejected);
                    }
                    // Not delivered (unreachable, or no longer the leader): try again.
                    Ok(None) => {}
                    Err(e) => return Err(e),
                }
            }
            tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Send `cmd` to `leader`. `Ok(None)` means it was certainly not applied and may be retried.
    async fn forward(
        &self,
        leader: NodeId,
        node: &Node,
        cmd: &MetadataCommand,
        timeout: Duration,
    ) -> Result<Option<ClientWriteResponse>> {
        tracing::debug!(leader, addr = %node.addr, "forwarding metadata write to the leader");
        // A fresh connection per forwarded write: writes are rare, and this keeps concurrent
        // writes from queueing behind each other on one connection.
        let mut client = PeerClient::new(
            node.addr.clone(),
            self.transport.clone(),
            self.identity.clone(),
        );
        let req = RaftRequest::ClientWrite(cmd.clone());
        match client.call(&req, timeout).await {
            Ok(RaftReply::ClientWrite(Ok(resp))) => Ok(Some(resp)),
            Ok(RaftReply::ClientWrite(Err(RaftError::APIError(
                ClientWriteError::ForwardToLeader(_),
            )))) => Ok(None),
            Ok(RaftReply::ClientWrite(Err(RaftError::APIError(
                ClientWriteError::ChangeMembershipError(e),
            )))) => Err(Error::Write(e.to_string())),
            // The leader stopped: the entry may already be replicated and get committed by
            // the next leader, so retrying could apply it twice.
            Ok(RaftReply::ClientWrite(Err(RaftError::Fatal(e)))) => Err(e.into()),
            Ok(_) => Err(Error::UnexpectedReply(leader)),
            Err(CallError::Connect(e)) => {
                tracing::debug!(leader, error = %e, "leader unreachable; retrying");
                Ok(None)
            }
            Err(CallError::TooLarge(e) | CallError::Auth(e)) => Err(e),
            Err(CallError::Timeout(t)) => Err(Error::Timeout(t)),
            Err(CallError::Broken(e)) => Err(e),
        }
    }

    /// Wait (until `deadline` at most) for the local image to include log index `index`.
    async fn await_applied(&self, index: u64, deadline: Instant) {
        let timeout = deadline.saturating_duration_since(Instant::now());
        if let Err(e) = self
            .raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "forwarded write applied locally")
            .await
        {
            // The write is committed; only this node's image lags. Not an error for the caller.
            tracing::debug!(index, error = %e, "local image did not catch up in time");
        }
    }

    /// Stop serving the Raft port, shut openraft down, and wait (up to 5 s) until its tasks
    /// released the storage, so the same directory can be opened again at once.
    pub async fn shutdown(&self) -> Result<()> {
        if let Some(stop) = lock(&self.stop_server).take() {
            let _ = stop.send(());
        }
        let server = lock(&self.server).take();
        if let Some(server) = server {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "raft server failed"),
                Err(e) => tracing::warn!(error = %e, "raft server task failed"),
            }
        }
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown failed");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.storage.strong_count() > 0 {
            if Instant::now() >= deadline {
                tracing::warn!("raft storage still in use after shutdown");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }
}

impl Drop for MetadataRaft {
    fn drop(&mut self) {
        // Dropped without shutdown(): at least stop answering on the Raft port.
        if let Some(server) = lock(&self.server).take() {
            server.abort();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
