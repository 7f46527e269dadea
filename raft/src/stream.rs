//! What a Raft connection runs over: plain TCP, or a layer the node adds around it (mutual TLS
//! with the cluster's CA, in brook's node). The layer is applied before the cluster-secret
//! handshake of [`crate::auth`], which runs inside it either way, so a peer must pass both.
//!
//! The raft crate knows no TLS library: the node provides the layer as a [`StreamLayer`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A byte stream a Raft connection runs over.
pub trait RaftStream: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> RaftStream for T {}

/// A connection, once its layer is set up.
pub type Stream = Box<dyn RaftStream>;

/// Setting up a layer: a handshake, which may fail.
pub type Upgrade = Pin<Box<dyn Future<Output = std::io::Result<Stream>> + Send>>;

/// A layer around every Raft connection, both ways.
pub trait StreamLayer: Send + Sync {
    /// A connection a peer opened to this node's Raft port.
    fn accept(&self, tcp: TcpStream) -> Upgrade;
    /// A connection this node opened to `addr` (`host:port`, the peer's Raft address).
    fn connect(&self, tcp: TcpStream, addr: &str) -> Upgrade;
}

/// The layer of a transport, if any (a newtype so the transport settings stay `Debug`).
#[derive(Clone, Default)]
pub struct Layer(pub Option<Arc<dyn StreamLayer>>);

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Layer(..)"
        } else {
            "Layer(none)"
        })
    }
}

impl Layer {
    pub(crate) async fn accept(&self, tcp: TcpStream) -> std::io::Result<Stream> {
        match &self.0 {
            Some(layer) => layer.accept(tcp).await,
            None => Ok(Box::new(tcp)),
        }
    }

    pub(crate) async fn connect(&self, tcp: TcpStream, addr: &str) -> std::io::Result<Stream> {
        match &self.0 {
            Some(layer) => layer.connect(tcp, addr).await,
            None => Ok(Box::new(tcp)),
        }
    }
}
