//! One client connection: read frames, dispatch them, write responses in request order.
//!
//! Requests are read ahead up to `brook.max.inflight.requests.per.connection` and run
//! concurrently (a long-polling Fetch does not hold up a Produce behind it), while a
//! `FuturesOrdered` keeps the responses in the order the requests came, as Kafka requires.
//! Only framing errors and requests that cannot be decoded close the connection; everything
//! else is answered with a Kafka error code.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use brook_wire::request::{decode_body, decode_header, peek_header, HeaderPeek};
use brook_wire::response::encode_response;
use bytes::{Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::broker::Broker;
use crate::handlers::{self, api_versions};

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// A response waiting to be written, with what is needed to encode it.
struct Answer {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    /// `None`: nothing is written back (Produce with acks=0).
    body: Option<ResponseKind>,
}

pub(super) async fn serve(broker: Arc<Broker>, socket: TcpStream, peer: SocketAddr) {
    let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let span = tracing::info_span!("conn", node = broker.node_id(), id, %peer);
    async move {
        tracing::info!("connection opened");
        match run(&broker, socket, peer).await {
            Ok(()) => tracing::info!("connection closed"),
            Err(reason) => tracing::warn!(%reason, "connection closed by broker"),
        }
    }
    .instrument(span)
    .await
}

async fn run(broker: &Arc<Broker>, mut socket: TcpStream, peer: SocketAddr) -> Result<(), String> {
    let mut shutdown = broker.shutdown.clone();
    let _ = socket.set_nodelay(true);
    let max_frame = broker.config.socket_request_max_bytes;
    let max_inflight = broker.config.max_inflight_per_connection;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut inflight: FuturesOrdered<BoxFuture<'static, Answer>> = FuturesOrdered::new();
    let mut reading = true;
    loop {
        while inflight.len() < max_inflight {
            match brook_wire::frame::take_frame(&mut buf, max_frame).map_err(|e| e.to_string())? {
                Some(frame) => inflight.push_back(accept(broker, peer, frame)?),
                None => break,
            }
        }
        if !reading && inflight.is_empty() {
            return Ok(());
        }
        let room = reading && inflight.len() < max_inflight;
        tokio::select! {
            Some(answer) = inflight.next(), if !inflight.is_empty() => {
                write_answer(&mut socket, answer).await?;
            }
            read = socket.read_buf(&mut buf), if room => match read {
                Ok(0) => {
                    if !buf.is_empty() {
                        tracing::warn!(bytes = buf.len(), "peer closed mid-frame");
                    }
                    reading = false;
                }
                Ok(_) => {}
                Err(e) => return Err(format!("read: {e}")),
            },
            () = shutdown.recv(), if reading => {
                // Stop taking requests; answer the ones in flight, then close.
                reading = false;
                buf.clear();
            }
        }
    }
}

/// Decodes one frame and starts its handler. An error closes the connection.
fn accept(
    broker: &Arc<Broker>,
    peer: SocketAddr,
    frame: Bytes,
) -> Result<BoxFuture<'static, Answer>, String> {
    let HeaderPeek {
        api_key,
        api_version: version,
        correlation_id,
    } = peek_header(&frame).map_err(|e| format!("bad request header: {e}"))?;
    let key = ApiKey::try_from(api_key).map_err(|_| format!("unknown API key {api_key}"))?;
    let range =
        handlers::supported(key).ok_or_else(|| format!("API {key:?} is not implemented"))?;
    if version < range.min || version > range.max {
        if key == ApiKey::ApiVersions {
            // KIP-511: tell the client what we support, in a v0 response it can always read.
            let body = Some(ResponseKind::ApiVersions(
                api_versions::unsupported_version(),
            ));
            return Ok(ready(Answer {
                api_key: key,
                version: 0,
                correlation_id,
                body,
            }));
        }
        return Err(format!(
            "{key:?} v{version} is not supported (v{}-v{})",
            range.min, range.max
        ));
    }
    let (_, header, body) = decode_header(frame).map_err(|e| format!("{key:?} v{version}: {e}"))?;
    let request =
        decode_body(key, version, body).map_err(|e| format!("{key:?} v{version}: {e}"))?;
    tracing::debug!(api = ?key, version, correlation_id, client = ?header.client_id.as_deref(), "request");
    let call = handlers::Call {
        version,
        client_id: header.client_id.as_deref().unwrap_or_default().to_owned(),
        client_host: format!("/{}", peer.ip()),
    };
    // A producer with acks=0 reads no responses, so none is written (Kafka's rule).
    let silent = matches!(&request, RequestKind::Produce(p) if p.acks == 0);
    let reply = handlers::dispatch(broker, call, request)
        .ok_or_else(|| format!("API {key:?} has no handler"))?;
    Ok(reply
        .map(move |body| Answer {
            api_key: key,
            version,
            correlation_id,
            body: (!silent).then_some(body),
        })
        .boxed())
}

fn ready(answer: Answer) -> BoxFuture<'static, Answer> {
    futures::future::ready(answer).boxed()
}

async fn write_answer(socket: &mut TcpStream, answer: Answer) -> Result<(), String> {
    let Some(body) = answer.body else {
        return Ok(());
    };
    let bytes = encode_response(answer.api_key, answer.version, answer.correlation_id, &body)
        .map_err(|e| {
            format!(
                "encoding {:?} v{} response: {e}",
                answer.api_key, answer.version
            )
        })?;
    socket
        .write_all(&bytes)
        .await
        .map_err(|e| format!("write: {e}"))
}
