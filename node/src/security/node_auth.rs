//! `BROOK-NODE`: how a brook node proves on another node's Kafka port that it is broker N of
//! the same cluster, before it fetches as replica N.
//!
//! Two SaslAuthenticate round trips, the same challenge-response as the Raft port's handshake
//! (`brook_raft::ClusterSecret`): the client sends its broker id and a nonce; the server
//! answers its own nonce and a proof that it holds the cluster secret; the client checks it and
//! answers its proof. Both proofs cover the cluster id, the broker id and both nonces, under
//! different labels, so nothing from one exchange or one side replays in another. The secret
//! never crosses the wire. Without TLS the connection itself is not protected afterwards.

use anyhow::{bail, Context};
use brook_raft::ClusterSecret;
use bytes::Bytes;

use crate::client::Client;

/// The mechanism's name in SaslHandshake. Not listed to clients: it is brook's own.
pub const MECHANISM: &str = "BROOK-NODE";
const NONCE: usize = 32;
const FIRST_BYTES: usize = 4 + NONCE;
const SERVER: &[u8] = b"brook-node server proof";
const CLIENT: &[u8] = b"brook-node client proof";

/// The server's state between the two rounds.
#[derive(Debug)]
pub struct Exchange {
    node_id: i32,
    transcript: Vec<u8>,
}

/// Round one on the server: `first` is the client's broker id and nonce. Returns the bytes to
/// answer (the server's nonce and proof) and what round two needs.
pub fn server_first(
    secret: &ClusterSecret,
    cluster_id: &str,
    first: &[u8],
) -> Result<(Bytes, Exchange), String> {
    let (id, nonce) = match first.split_first_chunk::<4>() {
        Some((id, nonce)) if first.len() == FIRST_BYTES => (i32::from_be_bytes(*id), nonce),
        _ => {
            return Err(format!(
                "{MECHANISM}: the first message must be {FIRST_BYTES} bytes"
            ))
        }
    };
    if id < 0 {
        return Err(format!("{MECHANISM}: broker id {id} is negative"));
    }
    let ours: [u8; NONCE] = brook_raft::random_bytes().map_err(|e| e.to_string())?;
    let transcript = transcript(cluster_id, id, nonce, &ours);
    let mut answer = ours.to_vec();
    answer.extend(secret.prove(SERVER, &transcript));
    Ok((
        Bytes::from(answer),
        Exchange {
            node_id: id,
            transcript,
        },
    ))
}

/// Round two on the server: the broker id the client proved, if its proof holds.
pub fn server_final(
    secret: &ClusterSecret,
    exchange: &Exchange,
    proof: &[u8],
) -> Result<i32, String> {
    if secret.check(CLIENT, &exchange.transcript, proof) {
        Ok(exchange.node_id)
    } else {
        Err(format!(
            "{MECHANISM}: wrong proof for broker {}",
            exchange.node_id
        ))
    }
}

/// The client side, on a fresh connection: authenticate as broker `node_id` of `cluster_id`.
pub async fn authenticate(
    client: &mut Client,
    secret: &ClusterSecret,
    cluster_id: &str,
    node_id: i32,
) -> anyhow::Result<()> {
    client.sasl_handshake(MECHANISM).await?;
    let nonce: [u8; NONCE] = brook_raft::random_bytes()?;
    let mut first = node_id.to_be_bytes().to_vec();
    first.extend_from_slice(&nonce);
    let challenge = client.sasl_round(first).await?;
    let (theirs, proof) = challenge
        .split_first_chunk::<NONCE>()
        .context("a short server challenge")?;
    let transcript = transcript(cluster_id, node_id, &nonce, theirs);
    if !secret.check(SERVER, &transcript, proof) {
        bail!("the node does not hold this cluster's secret");
    }
    client.sasl_round(secret.prove(CLIENT, &transcript)).await?;
    Ok(())
}

fn transcript(cluster_id: &str, node_id: i32, client: &[u8], server: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(cluster_id.len() + 12 + client.len() + server.len());
    t.extend_from_slice(&(cluster_id.len() as u64).to_be_bytes());
    t.extend_from_slice(cluster_id.as_bytes());
    t.extend_from_slice(&node_id.to_be_bytes());
    t.extend_from_slice(client);
    t.extend_from_slice(server);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> ClusterSecret {
        ClusterSecret::new(text.as_bytes()).unwrap()
    }

    /// The client's side of both rounds, without a connection.
    fn client_rounds(
        secret: &ClusterSecret,
        cluster: &str,
        id: i32,
        challenge: &[u8],
        nonce: &[u8],
    ) -> Vec<u8> {
        let (theirs, proof) = challenge.split_first_chunk::<NONCE>().unwrap();
        let t = transcript(cluster, id, nonce, theirs);
        assert!(secret.check(SERVER, &t, proof), "server proof");
        secret.prove(CLIENT, &t)
    }

    #[test]
    fn the_right_secret_proves_the_broker_id() {
        let s = secret("0123456789abcdef0123");
        let nonce = [7u8; NONCE];
        let mut first = 3i32.to_be_bytes().to_vec();
        first.extend_from_slice(&nonce);
        let (challenge, exchange) = server_first(&s, "c1", &first).unwrap();
        let proof = client_rounds(&s, "c1", 3, &challenge, &nonce);
        assert_eq!(server_final(&s, &exchange, &proof), Ok(3));
        // A proof over another nonce, or with another secret, does not hold.
        let (theirs, _) = challenge.split_first_chunk::<NONCE>().unwrap();
        let other = s.prove(CLIENT, &transcript("c1", 3, &[8u8; NONCE], theirs));
        assert!(server_final(&s, &exchange, &other).is_err());
        let forged = secret("fedcba9876543210fedc").prove(CLIENT, &exchange.transcript);
        assert!(server_final(&s, &exchange, &forged).is_err());
        assert!(server_final(&s, &exchange, b"").is_err());
    }

    #[test]
    fn malformed_first_messages_are_refused() {
        let s = secret("0123456789abcdef0123");
        assert!(server_first(&s, "c1", b"").is_err());
        assert!(server_first(&s, "c1", &[0u8; FIRST_BYTES + 1]).is_err());
        let mut negative = (-1i32).to_be_bytes().to_vec();
        negative.extend_from_slice(&[0u8; NONCE]);
        assert!(server_first(&s, "c1", &negative).is_err());
    }
}
