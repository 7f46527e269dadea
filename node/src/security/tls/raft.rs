//! Mutual TLS on the Raft port (`brook.raft.security.protocol=SSL`): every node presents its
//! keystore certificate and accepts only peers whose certificate chains to the truststore. The
//! cluster-secret handshake then runs inside the TLS session, so a peer needs both the
//! cluster's CA and its secret, and nothing on the Raft port travels in the clear.

use std::sync::Arc;

use brook_raft::stream::{Stream, StreamLayer, Upgrade};
use tokio::net::TcpStream;

use super::{server_name, Tls};

/// The Raft transport's TLS layer, over key material reloaded like a listener's.
pub struct RaftTls(pub Arc<Tls>);

impl StreamLayer for RaftTls {
    fn accept(&self, tcp: TcpStream) -> Upgrade {
        let acceptor = self.0.acceptor();
        Box::pin(async move { Ok(Box::new(acceptor.accept(tcp).await?) as Stream) })
    }

    fn connect(&self, tcp: TcpStream, addr: &str) -> Upgrade {
        let connector = self.0.connector();
        // The peer's certificate must name the host of its Raft address.
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let name = server_name(host.trim_matches(['[', ']']));
        Box::pin(async move {
            let (connector, name) = match (connector, name) {
                (Ok(connector), Ok(name)) => (connector, name),
                (Err(e), _) | (_, Err(e)) => return Err(std::io::Error::other(format!("{e:#}"))),
            };
            Ok(Box::new(connector.connect(name, tcp).await?) as Stream)
        })
    }
}
