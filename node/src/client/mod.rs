//! The one Kafka client brook uses to talk to itself: the replica fetchers and the admin CLI.
//!
//! One request at a time over one connection, and every answer read is bounded: a response
//! larger than the cap given at connect time is refused before anything is allocated for it.
//!
//! - [`security`]: the admin CLI's TLS and SASL settings (Kafka's `--command-config` file).
//! - [`login`]: the client side of SASL PLAIN and SCRAM.

pub mod login;
pub mod security;

use anyhow::{bail, Context};
use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, RequestKind, ResponseKind,
    SaslAuthenticateRequest, SaslHandshakeRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// The response cap of the admin CLI: Metadata of a large cluster fits with room to spare.
pub const ADMIN_RESPONSE_MAX_BYTES: usize = 256 << 20;

/// A byte stream to a node: TCP, or TLS over TCP.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A connection to one node, sending one request at a time.
pub struct Client {
    stream: Box<dyn Stream>,
    correlation_id: i32,
    max_response: usize,
}

impl Client {
    /// Connects to `addr`; answers over `max_response` bytes end the call with an error.
    pub async fn connect(addr: &str, max_response: usize) -> anyhow::Result<Self> {
        let stream = tcp(addr).await?;
        Ok(Self::over(Box::new(stream), max_response))
    }

    /// Connects to `addr` over TLS, checking that its certificate names `host`.
    pub async fn connect_tls(
        addr: &str,
        host: &str,
        tls: &tokio_rustls::TlsConnector,
        max_response: usize,
    ) -> anyhow::Result<Self> {
        let stream = tcp(addr).await?;
        let name = crate::security::tls::server_name(host)?;
        let stream = match tls.connect(name, stream).await {
            Ok(stream) => stream,
            Err(e) => {
                // Reachable but refused, or not trusted: a configuration problem to see.
                tracing::warn!(%addr, %host, error = %e, "TLS handshake failed");
                bail!("TLS handshake with {addr}: {e}");
            }
        };
        Ok(Self::over(Box::new(stream), max_response))
    }

    pub(crate) fn over(stream: Box<dyn Stream>, max_response: usize) -> Self {
        Client {
            stream,
            correlation_id: 0,
            max_response,
        }
    }

    /// A connection for the admin CLI ([`ADMIN_RESPONSE_MAX_BYTES`]) to the first reachable
    /// broker of `bootstrap`, a comma-separated list as Kafka's tools take, with the process's
    /// [`security::admin`] settings (TLS, SASL).
    pub async fn admin(bootstrap: &str) -> anyhow::Result<Self> {
        let mut failures = Vec::new();
        for addr in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match security::admin()
                .connect(addr, ADMIN_RESPONSE_MAX_BYTES)
                .await
            {
                Ok(client) => return Ok(client),
                Err(e) => failures.push(format!("{addr}: {e:#}")),
            }
        }
        if failures.is_empty() {
            bail!("no bootstrap server given");
        }
        bail!("no bootstrap server reachable ({})", failures.join("; "))
    }

    pub async fn call(
        &mut self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> anyhow::Result<ResponseKind> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("brook-admin")));
        let frame = brook_wire::response::encode_request(&header, &body)?;
        self.stream.write_all(&frame).await?;
        // TLS buffers what it encrypts; TCP's flush is free.
        self.stream.flush().await?;
        let len = self.stream.read_i32().await.context("reading response")?;
        if matches!(len.to_be_bytes(), [0x15 | 0x16, 3, ..]) {
            bail!("the node answered with TLS: give its security.protocol (SSL or SASL_SSL) in --command-config");
        }
        let len = usize::try_from(len).context("negative response length")?;
        if len > self.max_response {
            bail!(
                "a {len}-byte response exceeds this client's cap of {} bytes",
                self.max_response
            );
        }
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await?;
        let (correlation_id, response) =
            brook_wire::response::decode_response(key, version, bytes::Bytes::from(buf))?;
        if correlation_id != self.correlation_id {
            bail!(
                "response to request {correlation_id}, expected {}",
                self.correlation_id
            );
        }
        Ok(response)
    }

    /// SaslHandshake v1: start `mechanism`'s exchange.
    pub async fn sasl_handshake(&mut self, mechanism: &str) -> anyhow::Result<()> {
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_string(mechanism.to_owned()));
        match self
            .call(
                ApiKey::SaslHandshake,
                1,
                RequestKind::SaslHandshake(handshake),
            )
            .await?
        {
            ResponseKind::SaslHandshake(r) if r.error_code == 0 => Ok(()),
            ResponseKind::SaslHandshake(r) => bail!(
                "SaslHandshake for {mechanism} refused: error {} (the node offers {:?})",
                r.error_code,
                r.mechanisms
            ),
            other => bail!("unexpected response {other:?}"),
        }
    }

    /// One SaslAuthenticate round: send `bytes`, return the answer's.
    pub async fn sasl_round(&mut self, bytes: Vec<u8>) -> anyhow::Result<Bytes> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(bytes));
        match self
            .call(
                ApiKey::SaslAuthenticate,
                2,
                RequestKind::SaslAuthenticate(request),
            )
            .await?
        {
            ResponseKind::SaslAuthenticate(r) if r.error_code == 0 => Ok(r.auth_bytes),
            ResponseKind::SaslAuthenticate(r) => bail!(
                "authentication refused: error {}: {}",
                r.error_code,
                r.error_message.as_deref().unwrap_or("")
            ),
            other => bail!("unexpected response {other:?}"),
        }
    }

    pub async fn metadata(
        &mut self,
        topics: Option<Vec<String>>,
    ) -> anyhow::Result<MetadataResponse> {
        let topics = topics.map(|names| {
            names
                .into_iter()
                .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(&n))))
                .collect()
        });
        let request = MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false);
        match self
            .call(ApiKey::Metadata, 12, RequestKind::Metadata(request))
            .await?
        {
            ResponseKind::Metadata(r) => Ok(r),
            other => bail!("unexpected response {other:?}"),
        }
    }
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}

pub(crate) async fn tcp(addr: &str) -> anyhow::Result<TcpStream> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
