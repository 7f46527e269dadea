//! Who may talk on the Raft port: every connection opens with a mutual challenge-response over
//! the cluster secret, and every frame after it carries a MAC under keys derived from that
//! exchange.
//!
//! 1. The client sends [`Hello`]: its node id, the cluster id it knows (none before it joined)
//!    and a fresh 32-byte nonce.
//! 2. The server refuses a different cluster id, else answers [`Challenge`]: its cluster id, its
//!    own nonce and a proof that it holds the secret (an HMAC of the transcript).
//! 3. The client checks that proof (so a stranger posing as a peer learns nothing and gets
//!    nothing) and sends its own proof under a different label, so neither side's proof can be
//!    replayed as the other's, and a fresh nonce on each side means no earlier exchange replays.
//! 4. The server answers [`Verdict`]. From then on each frame ends with an HMAC-SHA256 tag over a
//!    per-direction sequence number and the body, under a key only this exchange knows: a frame
//!    injected, replayed, reordered or altered on the wire closes the connection.
//!
//! The secret never crosses the wire. It gives integrity and authentication, not privacy: the
//! metadata is readable by whoever can watch the network between nodes.

use std::sync::Arc;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::error::Error;
use crate::rpc;
use crate::typ::NodeId;

/// Shortest secret accepted, in bytes: 128 bits, so it cannot be guessed.
pub const MIN_SECRET_BYTES: usize = 16;
/// Bytes of the MAC that ends every frame after the handshake.
pub const TAG_BYTES: usize = 32;
/// Largest handshake frame: a cluster id and a nonce fit many times over.
const MAX_HANDSHAKE_BYTES: usize = 1024;
const NONCE_BYTES: usize = 32;

/// The cluster's shared secret, held as an HMAC key (the bytes are not kept around).
#[derive(Clone)]
pub struct ClusterSecret(Arc<hmac::Key>);

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(..)")
    }
}

impl ClusterSecret {
    /// A secret from its bytes; at least [`MIN_SECRET_BYTES`] of them.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(Error::Auth(format!(
                "the cluster secret has {} bytes; at least {MIN_SECRET_BYTES} are required",
                bytes.len()
            )));
        }
        Ok(ClusterSecret(Arc::new(hmac::Key::new(
            hmac::HMAC_SHA256,
            bytes,
        ))))
    }

    /// New random secret text (64 hex digits), for a new cluster's configuration.
    pub fn generate() -> Result<String, Error> {
        let bytes = random_bytes::<32>()?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// An HMAC-SHA256 proof of holding the secret, bound to `label` and `transcript` (also
    /// used by the Kafka port's node authentication).
    pub fn prove(&self, label: &[u8], transcript: &[u8]) -> Vec<u8> {
        self.sign(label, transcript).as_ref().to_vec()
    }

    /// Whether `proof` is [`ClusterSecret::prove`] of `label` and `transcript`, compared in
    /// constant time.
    pub fn check(&self, label: &[u8], transcript: &[u8], proof: &[u8]) -> bool {
        self.verify(label, transcript, proof)
    }

    fn sign(&self, label: &[u8], transcript: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(label);
        ctx.update(transcript);
        ctx.sign()
    }

    fn verify(&self, label: &[u8], transcript: &[u8], proof: &[u8]) -> bool {
        let mut msg = Vec::with_capacity(label.len() + transcript.len());
        msg.extend_from_slice(label);
        msg.extend_from_slice(transcript);
        // Constant time: a wrong proof takes as long to refuse whatever its first bytes.
        hmac::verify(&self.0, &msg, proof).is_ok()
    }

    fn session_key(&self, label: &[u8], transcript: &[u8]) -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, self.sign(label, transcript).as_ref())
    }
}

/// What a node says about itself when it connects or is connected to.
#[derive(Clone)]
pub struct Identity {
    pub secret: ClusterSecret,
    pub node_id: NodeId,
    /// The cluster id this node belongs to, once it knows it (read at each handshake).
    pub cluster_id: Arc<dyn Fn() -> Option<String> + Send + Sync>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &self.node_id)
            .field("cluster_id", &(self.cluster_id)())
            .finish()
    }
}

impl Identity {
    /// An identity that knows no cluster id yet (a node before it joined, a tool).
    pub fn new(secret: ClusterSecret, node_id: NodeId) -> Self {
        Identity {
            secret,
            node_id,
            cluster_id: Arc::new(|| None),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Hello {
    version: u8,
    node_id: NodeId,
    cluster_id: Option<String>,
    nonce: [u8; NONCE_BYTES],
}

#[derive(Debug, Serialize, Deserialize)]
enum ServerHello {
    Challenge {
        cluster_id: Option<String>,
        nonce: [u8; NONCE_BYTES],
        proof: Vec<u8>,
    },
    Refused(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct ClientProof {
    proof: Vec<u8>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Verdict {
    Accepted,
    Refused(String),
}

const VERSION: u8 = 1;
const SERVER_PROOF: &[u8] = b"brook-raft server proof";
const CLIENT_PROOF: &[u8] = b"brook-raft client proof";
const CLIENT_TO_SERVER: &[u8] = b"brook-raft client to server";
const SERVER_TO_CLIENT: &[u8] = b"brook-raft server to client";

/// The MAC state of one direction of an authenticated connection.
struct Direction {
    key: hmac::Key,
    seq: u64,
}

impl Direction {
    fn tag(&mut self, body: &[u8]) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&self.seq.to_be_bytes());
        ctx.update(body);
        self.seq = self.seq.wrapping_add(1);
        ctx.sign()
    }
}

/// An authenticated connection's MAC keys: [`Session::seal`] what is sent, [`Session::open`]
/// what is received.
pub(crate) struct Session {
    send: Direction,
    recv: Direction,
    /// The peer's node id, as it said in its hello (it proved it holds the secret).
    pub(crate) peer: NodeId,
}

impl Session {
    /// Append the tag of the next outgoing frame to `body`.
    pub(crate) fn seal(&mut self, mut body: Vec<u8>) -> Vec<u8> {
        let tag = self.send.tag(&body);
        body.extend_from_slice(tag.as_ref());
        body
    }

    /// Check and strip the tag of the next incoming frame.
    pub(crate) fn open(&mut self, mut frame: Vec<u8>) -> Result<Vec<u8>, Error> {
        let Some(split) = frame.len().checked_sub(TAG_BYTES) else {
            return Err(Error::Auth("a frame too short to carry its MAC".into()));
        };
        let tag = frame.split_off(split);
        // Tagged in place (no copy of the frame), compared in constant time.
        let expected = self.recv.tag(&frame);
        let differ = expected
            .as_ref()
            .iter()
            .zip(&tag)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if std::hint::black_box(differ) != 0 {
            return Err(Error::Auth("a frame's MAC does not match".into()));
        }
        Ok(frame)
    }
}

/// The client side of the handshake, on a fresh connection.
pub(crate) async fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    me: &Identity,
) -> Result<Session, Error> {
    let hello = Hello {
        version: VERSION,
        node_id: me.node_id,
        cluster_id: (me.cluster_id)(),
        nonce: random_bytes()?,
    };
    let hello_bytes = send(stream, &hello).await?;
    let (cluster_id, nonce, proof) = match receive::<ServerHello, _>(stream).await? {
        ServerHello::Refused(why) => return Err(Error::Auth(format!("refused by peer: {why}"))),
        ServerHello::Challenge {
            cluster_id,
            nonce,
            proof,
        } => (cluster_id, nonce, proof),
    };
    let transcript = transcript(&hello_bytes, &cluster_id, &nonce)?;
    if !me.secret.verify(SERVER_PROOF, &transcript, &proof) {
        return Err(Error::Auth(
            "the peer does not hold this cluster's secret".into(),
        ));
    }
    if let Some(why) = other_cluster(hello.cluster_id.as_deref(), cluster_id.as_deref()) {
        return Err(Error::Auth(why));
    }
    let proof = me.secret.sign(CLIENT_PROOF, &transcript).as_ref().to_vec();
    send(stream, &ClientProof { proof }).await?;
    match receive::<Verdict, _>(stream).await? {
        Verdict::Refused(why) => Err(Error::Auth(format!("refused by peer: {why}"))),
        Verdict::Accepted => Ok(Session {
            send: direction(&me.secret, CLIENT_TO_SERVER, &transcript),
            recv: direction(&me.secret, SERVER_TO_CLIENT, &transcript),
            peer: 0,
        }),
    }
}

/// The server side of the handshake; a refused peer is told why before the error returns.
pub(crate) async fn server<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    me: &Identity,
) -> Result<Session, Error> {
    let (hello, hello_bytes) = receive_raw::<Hello, _>(stream).await?;
    let ours = (me.cluster_id)();
    let refusal = if hello.version != VERSION {
        Some(format!(
            "handshake version {} is not {VERSION}",
            hello.version
        ))
    } else {
        other_cluster(ours.as_deref(), hello.cluster_id.as_deref())
    };
    if let Some(why) = refusal {
        send(stream, &ServerHello::Refused(why.clone())).await?;
        return Err(Error::Auth(why));
    }
    let nonce = random_bytes()?;
    let transcript = transcript(&hello_bytes, &ours, &nonce)?;
    let proof = me.secret.sign(SERVER_PROOF, &transcript).as_ref().to_vec();
    let challenge = ServerHello::Challenge {
        cluster_id: ours,
        nonce,
        proof,
    };
    send(stream, &challenge).await?;
    let answer = receive::<ClientProof, _>(stream).await?;
    if !me.secret.verify(CLIENT_PROOF, &transcript, &answer.proof) {
        let why = "wrong proof: the peer does not hold this cluster's secret".to_string();
        send(stream, &Verdict::Refused(why.clone())).await?;
        return Err(Error::Auth(why));
    }
    send(stream, &Verdict::Accepted).await?;
    Ok(Session {
        send: direction(&me.secret, SERVER_TO_CLIENT, &transcript),
        recv: direction(&me.secret, CLIENT_TO_SERVER, &transcript),
        peer: hello.node_id,
    })
}

/// Why two cluster ids cannot talk, if they cannot: both known and different.
fn other_cluster(a: Option<&str>, b: Option<&str>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) if a != b => Some(format!(
            "cluster id {b} is not this cluster's ({a}): a node of another cluster"
        )),
        _ => None,
    }
}

fn direction(secret: &ClusterSecret, label: &[u8], transcript: &[u8]) -> Direction {
    Direction {
        key: secret.session_key(label, transcript),
        seq: 0,
    }
}

/// Everything both proofs and the session keys are bound to.
fn transcript(
    hello: &[u8],
    server_cluster_id: &Option<String>,
    server_nonce: &[u8; NONCE_BYTES],
) -> Result<Vec<u8>, Error> {
    let mut t = hello.to_vec();
    t.extend_from_slice(&rpc::encode(
        &(server_cluster_id, server_nonce),
        MAX_HANDSHAKE_BYTES,
    )?);
    Ok(t)
}

async fn send<T: Serialize, S: AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &T,
) -> Result<Vec<u8>, Error> {
    let body = rpc::encode(msg, MAX_HANDSHAKE_BYTES)?;
    rpc::write_frame(stream, &body).await?;
    Ok(body)
}

async fn receive<T: serde::de::DeserializeOwned, S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<T, Error> {
    Ok(receive_raw(stream).await?.0)
}

async fn receive_raw<T: serde::de::DeserializeOwned, S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(T, Vec<u8>), Error> {
    let len = rpc::read_frame_len(stream, MAX_HANDSHAKE_BYTES)
        .await?
        .ok_or_else(|| Error::Io(std::io::ErrorKind::UnexpectedEof.into()))?;
    let body = rpc::read_frame_body(stream, len).await?;
    Ok((rpc::decode(&body, MAX_HANDSHAKE_BYTES)?, body))
}

/// `N` bytes from the system's secure random generator.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], Error> {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::Auth("the system random generator failed".into()))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(secret: &[u8], node_id: NodeId, cluster: Option<&'static str>) -> Identity {
        Identity {
            secret: ClusterSecret::new(secret).unwrap(),
            node_id,
            cluster_id: Arc::new(move || cluster.map(str::to_owned)),
        }
    }

    async fn handshake(
        client_id: Identity,
        server_id: Identity,
    ) -> (Result<Session, Error>, Result<Session, Error>) {
        let (mut a, mut b) = tokio::io::duplex(4096);
        // Each side closes its end when it is done, as a connection task would.
        let c = async move { client(&mut a, &client_id).await };
        let s = async move { server(&mut b, &server_id).await };
        tokio::join!(c, s)
    }

    #[tokio::test]
    async fn same_secret_authenticates_and_frames_verify() {
        let secret = b"0123456789abcdef0123";
        let (c, s) = handshake(identity(secret, 2, None), identity(secret, 1, Some("c1"))).await;
        let (mut c, mut s) = (c.unwrap(), s.unwrap());
        assert_eq!(s.peer, 2);
        let sealed = c.seal(b"hello".to_vec());
        assert_eq!(s.open(sealed.clone()).unwrap(), b"hello");
        // The same frame again (a replay) no longer verifies: the sequence moved on.
        assert!(s.open(sealed).is_err());
        // An altered frame is refused.
        let mut sealed = s.seal(b"reply".to_vec());
        sealed[0] ^= 1;
        assert!(c.open(sealed).is_err());
    }

    #[tokio::test]
    async fn wrong_secret_is_refused_on_both_sides() {
        let (c, s) = handshake(
            identity(b"0123456789abcdef", 2, None),
            identity(b"fedcba9876543210", 1, None),
        )
        .await;
        assert!(matches!(c, Err(Error::Auth(_))), "{:?}", c.err());
        assert!(s.is_err());
    }

    #[tokio::test]
    async fn another_cluster_id_is_refused() {
        let secret = b"0123456789abcdef";
        let (c, s) = handshake(
            identity(secret, 2, Some("other")),
            identity(secret, 1, Some("c1")),
        )
        .await;
        let err = c.err().unwrap().to_string();
        assert!(err.contains("another cluster"), "{err}");
        assert!(s.is_err());
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(ClusterSecret::new(b"short").is_err());
        assert_eq!(ClusterSecret::generate().unwrap().len(), 64);
    }
}
