//! The server side of the Raft transport: accepts peers on the Raft port, reads framed
//! requests, hands them to the local [`Raft`], and writes the replies back.
//!
//! Each connection is served by its own task, one request at a time (the client side sends one
//! at a time). It opens with the handshake of [`crate::auth`]: a peer that does not prove it
//! holds the cluster secret, or belongs to another cluster, is refused before openraft sees
//! anything. A malformed, oversized, unauthenticated or out-of-range frame closes only that
//! connection, with a log line.
//! Connection tasks live in a `JoinSet` owned by the serving future, so dropping or aborting it
//! closes every connection too.

use std::future::Future;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::auth::{self, Identity, TAG_BYTES};
use crate::bounds;
use crate::error::Error;
use crate::membership::{self, JoinReply};
use crate::rpc::{self, RaftReply, RaftRequest, TransportConfig};
use crate::slots::{SlotGuard, Slots};
use crate::state_machine::MetadataReader;
use crate::stream::Stream;
use crate::typ::{NodeId, Raft};

/// Serve Raft RPCs on `listener` until `shutdown` completes; then every connection is closed.
/// Nodes that join through this server are promoted to voters up to `max_voters`; `reader`
/// (this node's image) gives the stamp for liveness commands forwarded to this node as leader.
pub async fn serve_raft_with(
    listener: TcpListener,
    raft: Raft,
    reader: MetadataReader,
    config: TransportConfig,
    identity: Identity,
    max_voters: usize,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let node_id = raft.metrics().borrow().id;
    let slots = Slots::new(config.max_connections);
    let mut conns = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let served = Served {
                    raft: raft.clone(),
                    reader: reader.clone(),
                    config: config.clone(),
                    identity: identity.clone(),
                    max_voters,
                };
                let slot = slots.admit();
                let span = tracing::info_span!("raft_conn", node = node_id, %peer);
                conns.spawn(
                    async move {
                        tokio::select! {
                            _ = serve_connection(stream, served, &slot) => {}
                            _ = slot.evicted() => {}
                        }
                    }
                    .instrument(span),
                );
            }
            Err(e) => {
                // Out of file descriptors and the like: wait and try again rather than spin.
                tracing::warn!(error = %e, "raft accept failed; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
    conns.shutdown().await;
    Ok(())
}

/// What a connection task serves with.
struct Served {
    raft: Raft,
    reader: MetadataReader,
    config: TransportConfig,
    identity: Identity,
    max_voters: usize,
}

async fn serve_connection(tcp: TcpStream, served: Served, slot: &SlotGuard) {
    tracing::debug!("raft connection opened");
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    // The layer (TLS) first, promptly: a peer that does not finish it holds no slot.
    let limit = served.config.request_timeout;
    let mut stream = match tokio::time::timeout(limit, served.config.layer.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "refused a raft peer: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::warn!("refused a raft peer: TLS handshake not finished within {limit:?}");
            return;
        }
    };
    match connection_loop(&mut stream, &served, slot).await {
        Ok(()) => tracing::debug!("raft connection closed by peer"),
        Err(Error::Io(e)) => tracing::debug!(error = %e, "raft connection i/o error"),
        Err(e @ Error::Auth(_)) => tracing::warn!(error = %e, "refused a raft peer"),
        Err(e) => tracing::warn!(error = %e, "closing raft connection"),
    }
}

async fn connection_loop(
    stream: &mut Stream,
    served: &Served,
    slot: &SlotGuard,
) -> Result<(), Error> {
    let config = &served.config;
    let max = config.max_frame_bytes;
    // A peer that does not finish the handshake promptly holds its slot no longer.
    let mut session = tokio::time::timeout(
        config.request_timeout,
        auth::server(stream, &served.identity),
    )
    .await
    .map_err(|_| Error::Timeout(config.request_timeout))??;
    loop {
        let next = rpc::read_frame_len(stream, max + TAG_BYTES);
        let len = match tokio::time::timeout(config.idle_timeout, next).await {
            Err(_) => return Err(Error::Timeout(config.idle_timeout)),
            Ok(Ok(None)) => return Ok(()),
            Ok(Ok(Some(len))) => len,
            Ok(Err(e)) => return Err(e),
        };
        // Once a frame has started, its body must follow promptly.
        let body = tokio::time::timeout(config.request_timeout, rpc::read_frame_body(stream, len))
            .await
            .map_err(|_| Error::Timeout(config.request_timeout))??;
        slot.touch();
        let body = session.open(body)?;
        let req: RaftRequest = rpc::decode(&body, max)?;
        bounds::check(&req)?;
        let reply = dispatch(served, req, session.peer).await;
        let bytes = session.seal(rpc::encode(&reply, max)?);
        rpc::write_frame(stream, &bytes).await?;
    }
}

/// Answer one request from `peer` (the node id it authenticated with).
async fn dispatch(served: &Served, req: RaftRequest, peer: NodeId) -> RaftReply {
    let raft = &served.raft;
    match req {
        RaftRequest::AppendEntries(r) => RaftReply::AppendEntries(raft.append_entries(r).await),
        RaftRequest::Vote(r) => RaftReply::Vote(raft.vote(r).await),
        RaftRequest::InstallSnapshot(r) => {
            RaftReply::InstallSnapshot(raft.install_snapshot(r).await)
        }
        // Executed here and not forwarded again: if this node is not the leader either, the
        // ForwardToLeader error goes back to the caller, who retries with the leader it names.
        // Forwarded to this node as the leader: stamped with its clock before it is appended.
        RaftRequest::ClientWrite(cmd) => {
            let cmd = cmd.stamped(served.reader.stamp_ms());
            RaftReply::ClientWrite(raft.client_write(cmd).await)
        }
        RaftRequest::Join { id, .. } if id != peer => RaftReply::Join(JoinReply::Refused(format!(
            "node {peer} may join as itself only, not as node {id}"
        ))),
        RaftRequest::Join { id, addr } => {
            RaftReply::Join(membership::add_node(raft, id, addr).await)
        }
        RaftRequest::Promote { id } => {
            RaftReply::Join(membership::add_voter(raft, id, served.max_voters).await)
        }
        RaftRequest::Demote { id } => RaftReply::Join(membership::remove_voter(raft, id).await),
    }
}
