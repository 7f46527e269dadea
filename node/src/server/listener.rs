//! A Kafka listener: accepts connections up to `max.connections` and serves each on its own
//! task; on shutdown it stops accepting and waits for connections to finish their requests.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::connection;
use crate::broker::{Broker, Listener};

/// Serves one listener; `limit` holds `max.connections` for all of them together.
pub(super) async fn run(
    socket: TcpListener,
    listener: Arc<Listener>,
    limit: Arc<Semaphore>,
    broker: Arc<Broker>,
) {
    let mut shutdown = broker.shutdown.clone();
    let mut connections = JoinSet::new();
    let mut backoff = Duration::from_millis(10);
    loop {
        tokio::select! {
            accepted = socket.accept() => match accepted {
                Ok((stream, peer)) => {
                    backoff = Duration::from_millis(10);
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        tracing::warn!(%peer, limit = broker.config.max_connections, "max.connections reached; closing new connection");
                        drop(stream);
                        continue;
                    };
                    let (broker, listener) = (broker.clone(), listener.clone());
                    connections.spawn(async move {
                        connection::serve(broker, listener, stream, peer).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::error!(error = %e, "accept failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = shutdown.recv() => break,
        }
    }
    drop(socket);
    let drained = tokio::time::timeout(Duration::from_secs(30), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "connections still open after 30 s; closing them"
        );
        connections.abort_all();
    }
}
