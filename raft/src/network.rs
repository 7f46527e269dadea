//! The client side of the Raft transport: openraft's `RaftNetworkFactory` / `RaftNetwork` over
//! TCP, one connection per peer and replication stream.
//!
//! A connection is opened lazily, authenticated with the handshake of [`crate::auth`], used for
//! one request at a time, and dropped on any error so the next RPC reconnects. Errors are mapped to what openraft expects: a failed connect is
//! `Unreachable` (openraft backs off), a slow answer is `Timeout`, a broken connection is
//! `Network` (retried at once), and a Raft error from the peer is `RemoteError`.

use std::time::Duration;

use openraft::error::{NetworkError, PayloadTooLarge, RemoteError, Timeout, Unreachable};
use openraft::network::{RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use tokio::net::TcpStream;

use crate::auth::{self, Identity, Session, TAG_BYTES};
use crate::error::Error;
use crate::rpc::{self, RaftReply, RaftRequest, TransportConfig};
use crate::stream::Stream;
use crate::typ::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotError, InstallSnapshotRequest,
    InstallSnapshotResponse, Node, NodeId, RPCError, TypeConfig, VoteRequest, VoteResponse,
};

/// Why an RPC failed before a reply arrived.
#[derive(Debug)]
pub(crate) enum CallError {
    /// Could not connect: the request was certainly not delivered.
    Connect(std::io::Error),
    /// The peer refused our credentials or could not prove its own: nothing was delivered.
    Auth(Error),
    /// No reply within the time limit; the request may or may not have been processed.
    Timeout(Duration),
    /// The request could not be encoded within the frame limit: nothing was sent.
    TooLarge(Error),
    /// The connection broke or the reply was malformed; the request may have been processed.
    Broken(Error),
}

/// One TCP connection to a peer's Raft port, reopened on demand.
pub(crate) struct PeerClient {
    addr: String,
    config: TransportConfig,
    identity: Identity,
    stream: Option<(Stream, Session)>,
}

impl PeerClient {
    pub(crate) fn new(addr: String, config: TransportConfig, identity: Identity) -> Self {
        PeerClient {
            addr,
            config,
            identity,
            stream: None,
        }
    }

    /// Send `req` and wait at most `timeout` for the reply.
    pub(crate) async fn call(
        &mut self,
        req: &RaftRequest,
        timeout: Duration,
    ) -> Result<RaftReply, CallError> {
        let max = self.config.max_frame_bytes;
        let body = rpc::encode(req, max).map_err(CallError::TooLarge)?;
        let (mut stream, mut session) = match self.stream.take() {
            Some(s) => s,
            None => self.connect(timeout).await?,
        };
        let exchange = async {
            rpc::write_frame(&mut stream, &session.seal(body)).await?;
            let len = rpc::read_frame_len(&mut stream, max + TAG_BYTES)
                .await?
                .ok_or_else(|| Error::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
            let reply = session.open(rpc::read_frame_body(&mut stream, len).await?)?;
            rpc::decode::<RaftReply>(&reply, max)
        };
        let reply = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => return Err(CallError::Timeout(timeout)),
            Ok(Err(e)) => return Err(CallError::Broken(e)),
            Ok(Ok(reply)) => reply,
        };
        // Only a connection that completed an exchange is kept for the next request.
        self.stream = Some((stream, session));
        Ok(reply)
    }

    /// Connect, set up the transport's layer (TLS) and authenticate, all within `timeout`.
    async fn connect(&self, timeout: Duration) -> Result<(Stream, Session), CallError> {
        let started = tokio::time::Instant::now();
        let tcp = self.connect_tcp(timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let layered = tokio::time::timeout(left, self.config.layer.connect(tcp, &self.addr));
        let mut stream = match layered.await {
            Ok(Ok(stream)) => stream,
            // Nothing was sent yet: as good as a failed connect.
            Ok(Err(e)) => {
                tracing::warn!(addr = %self.addr, error = %e, "raft peer TLS handshake failed");
                return Err(CallError::Connect(e));
            }
            Err(_) => {
                return Err(CallError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("TLS handshake with {} timed out", self.addr),
                )))
            }
        };
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, auth::client(&mut stream, &self.identity)).await {
            // Nothing was sent yet: as good as a failed connect.
            Err(_) => Err(CallError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("handshake with {} timed out", self.addr),
            ))),
            Ok(Err(e @ Error::Auth(_))) => {
                tracing::warn!(addr = %self.addr, error = %e, "raft peer handshake failed");
                Err(CallError::Auth(e))
            }
            Ok(Err(e)) => Err(CallError::Broken(e)),
            Ok(Ok(session)) => Ok((stream, session)),
        }
    }

    async fn connect_tcp(&self, timeout: Duration) -> Result<TcpStream, CallError> {
        let limit = self.config.connect_timeout.min(timeout);
        let stream = match tokio::time::timeout(limit, TcpStream::connect(&self.addr)).await {
            Err(_) => {
                return Err(CallError::Connect(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect to {} timed out after {limit:?}", self.addr),
                )))
            }
            Ok(Err(e)) => return Err(CallError::Connect(e)),
            Ok(Ok(s)) => s,
        };
        stream.set_nodelay(true).map_err(CallError::Connect)?;
        tracing::debug!(addr = %self.addr, "connected to raft peer");
        Ok(stream)
    }
}

/// Builds a [`TcpNetwork`] per peer for openraft.
#[derive(Clone)]
pub struct TcpNetworkFactory {
    identity: Identity,
    config: TransportConfig,
}

impl TcpNetworkFactory {
    /// `identity` is this node's: its id and the cluster secret it authenticates with.
    pub fn new(identity: Identity, config: TransportConfig) -> Self {
        TcpNetworkFactory { identity, config }
    }
}

impl RaftNetworkFactory<TypeConfig> for TcpNetworkFactory {
    type Network = TcpNetwork;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> TcpNetwork {
        TcpNetwork {
            id: self.identity.node_id,
            target,
            node: node.clone(),
            client: PeerClient::new(
                node.addr.clone(),
                self.config.clone(),
                self.identity.clone(),
            ),
            request_timeout: self.config.request_timeout,
        }
    }
}

/// openraft's client to one peer.
pub struct TcpNetwork {
    id: NodeId,
    target: NodeId,
    node: Node,
    client: PeerClient,
    request_timeout: Duration,
}

impl TcpNetwork {
    async fn call<E: std::error::Error>(
        &mut self,
        action: RPCTypes,
        req: RaftRequest,
        option: &RPCOption,
    ) -> Result<RaftReply, RPCError<E>> {
        let timeout = option.hard_ttl().min(self.request_timeout);
        let entries = match &req {
            RaftRequest::AppendEntries(r) => r.entries.len() as u64,
            _ => 0,
        };
        self.client.call(&req, timeout).await.map_err(|e| match e {
            CallError::Connect(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Timeout(timeout) => RPCError::Timeout(Timeout {
                action,
                id: self.id,
                target: self.target,
                timeout,
            }),
            CallError::TooLarge(_) if entries > 1 => {
                RPCError::PayloadTooLarge(PayloadTooLarge::new_entries_hint(entries / 2))
            }
            // openraft backs off from an unreachable peer; one that refuses us is as good as
            // unreachable until an operator fixes the secret.
            CallError::Auth(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::TooLarge(e) | CallError::Broken(e) => {
                RPCError::Network(NetworkError::new(&e))
            }
        })
    }

    fn unexpected<E: std::error::Error>(&self) -> RPCError<E> {
        RPCError::Network(NetworkError::new(&Error::UnexpectedReply(self.target)))
    }

    fn remote<E: std::error::Error>(&self, e: crate::typ::RaftError<E>) -> RPCError<E> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            e,
        ))
    }
}

impl RaftNetwork<TypeConfig> for TcpNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse, RPCError> {
        let req = RaftRequest::AppendEntries(rpc);
        match self.call(RPCTypes::AppendEntries, req, &option).await? {
            RaftReply::AppendEntries(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse, RPCError<InstallSnapshotError>> {
        let req = RaftRequest::InstallSnapshot(rpc);
        match self.call(RPCTypes::InstallSnapshot, req, &option).await? {
            RaftReply::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest,
        option: RPCOption,
    ) -> Result<VoteResponse, RPCError> {
        let req = RaftRequest::Vote(rpc);
        match self.call(RPCTypes::Vote, req, &option).await? {
            RaftReply::Vote(r) => r.map_err(|e| self.remote(e)),
            _ => Err(self.unexpected()),
        }
    }
}
