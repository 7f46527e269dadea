//! The server side of the Raft transport: accepts peers on the Raft port, reads framed
//! requests, hands them to the local [`Raft`], and writes the replies back.
//!
//! Each connection is served by its own task, one request at a time (the client side sends one
//! at a time). A malformed or oversized frame closes only that connection, with a log line.
//! Connection tasks live in a `JoinSet` owned by the serving future, so dropping or aborting it
//! closes every connection too.

use std::future::Future;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::error::Error;
use crate::membership::{self, DEFAULT_MAX_VOTERS};
use crate::rpc::{self, RaftReply, RaftRequest, TransportConfig};
use crate::slots::{SlotGuard, Slots};
use crate::typ::Raft;

/// Serve Raft RPCs on `listener` with the default limits, until the future is dropped.
pub async fn serve_raft(listener: TcpListener, raft: Raft) -> std::io::Result<()> {
    serve_raft_with(
        listener,
        raft,
        TransportConfig::default(),
        DEFAULT_MAX_VOTERS,
        std::future::pending(),
    )
    .await
}

/// Serve Raft RPCs on `listener` until `shutdown` completes; then every connection is closed.
/// Nodes that join through this server are promoted to voters up to `max_voters`.
pub async fn serve_raft_with(
    listener: TcpListener,
    raft: Raft,
    config: TransportConfig,
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
                let raft = raft.clone();
                let config = config.clone();
                let slot = slots.admit();
                let span = tracing::info_span!("raft_conn", node = node_id, %peer);
                conns.spawn(
                    async move {
                        tokio::select! {
                            _ = serve_connection(stream, raft, config, max_voters, &slot) => {}
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

async fn serve_connection(
    mut stream: TcpStream,
    raft: Raft,
    config: TransportConfig,
    max_voters: usize,
    slot: &SlotGuard,
) {
    tracing::debug!("raft connection opened");
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set_nodelay failed");
    }
    match connection_loop(&mut stream, &raft, &config, max_voters, slot).await {
        Ok(()) => tracing::debug!("raft connection closed by peer"),
        Err(Error::Io(e)) => tracing::debug!(error = %e, "raft connection i/o error"),
        Err(e) => tracing::warn!(error = %e, "closing raft connection"),
    }
}

async fn connection_loop(
    stream: &mut TcpStream,
    raft: &Raft,
    config: &TransportConfig,
    max_voters: usize,
    slot: &SlotGuard,
) -> Result<(), Error> {
    let max = config.max_frame_bytes;
    loop {
        let len = match tokio::time::timeout(config.idle_timeout, rpc::read_frame_len(stream, max))
            .await
        {
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
        let req: RaftRequest = rpc::decode(&body, max)?;
        let reply = dispatch(raft, req, max_voters).await;
        let bytes = rpc::encode(&reply, max)?;
        rpc::write_frame(stream, &bytes).await?;
    }
}

async fn dispatch(raft: &Raft, req: RaftRequest, max_voters: usize) -> RaftReply {
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
            let cmd = cmd.stamped(crate::clock::now_ms());
            RaftReply::ClientWrite(raft.client_write(cmd).await)
        }
        RaftRequest::Join { id, addr } => {
            RaftReply::Join(membership::add_node(raft, id, addr, max_voters).await)
        }
    }
}
