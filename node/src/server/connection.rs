//! One client connection: read frames, dispatch them, write responses in request order.
//!
//! Every read is bounded: a request's bytes count against the node-wide
//! `queued.max.request.bytes` from the moment its length is known until it is answered (reading
//! pauses while the budget is spent), a frame must arrive within
//! `brook.request.receive.timeout.ms`, and a connection idle for `connections.max.idle.ms` is
//! closed.
//!
//! Requests are read ahead up to `brook.max.inflight.requests.per.connection` and run
//! concurrently (a long-polling Fetch does not hold up a Produce behind it), while a
//! `FuturesOrdered` keeps the responses in the order the requests came, as Kafka requires.
//! Only framing errors and requests that cannot be decoded close the connection; everything
//! else is answered with a Kafka error code.
//!
//! On a TLS listener the handshake comes first and must finish within the receive timeout;
//! nothing is read or written in plaintext. A client certificate names the principal.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use brook_wire::request::{decode_body, decode_header, peek_header, HeaderPeek};
use brook_wire::response::encode_response;
use bytes::{Bytes, BytesMut};
use futures::future::{BoxFuture, FutureExt};
use futures::stream::{FuturesOrdered, StreamExt};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;

use crate::broker::{Broker, Listener};
use crate::handlers::{self, api_versions};
use crate::security::sasl::ConnectionAuth;
use crate::security::Principal;

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// A response waiting to be written, with what is needed to encode it.
struct Answer {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    /// `None`: nothing is written back (Produce with acks=0).
    body: Option<ResponseKind>,
    /// Close the connection once this is written (a failed authentication).
    close: bool,
    /// A bare SASL message to write instead of a response (after SaslHandshake v0).
    raw: Option<Bytes>,
}

pub(super) async fn serve(
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    socket: TcpStream,
    peer: SocketAddr,
) {
    let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
    let span =
        tracing::info_span!("conn", node = broker.node_id(), listener = %listener.name, id, %peer);
    async move {
        // Per connection, so at debug as Kafka logs it: a busy node opens thousands.
        tracing::debug!("connection opened");
        broker.metrics.connection_opened();
        let closed = open(&broker, &listener, socket, peer).await;
        broker.metrics.connection_closed(closed.is_err());
        match closed {
            Ok(()) => tracing::debug!("connection closed"),
            Err(reason) => tracing::warn!(%reason, "connection closed by broker"),
        }
    }
    .instrument(span)
    .await
}

/// Serves the connection, after its TLS handshake on a TLS listener.
async fn open(
    broker: &Arc<Broker>,
    listener: &Arc<Listener>,
    socket: TcpStream,
    peer: SocketAddr,
) -> Result<(), String> {
    let _ = socket.set_nodelay(true);
    let Some(tls) = &listener.tls else {
        return run(broker, listener, socket, peer, Principal::Anonymous).await;
    };
    let limit = Duration::from_millis(broker.config.request_receive_timeout_ms);
    let stream = match tokio::time::timeout(limit, tls.acceptor().accept(socket)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(format!("TLS handshake failed: {e}")),
        Err(_) => {
            return Err(format!(
                "TLS handshake not finished within {} ms (brook.request.receive.timeout.ms)",
                limit.as_millis()
            ))
        }
    };
    let principal = match stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        Some(certificate) => Principal::User(
            tls.principal_name(certificate)
                .map_err(|e| format!("client certificate: {e:#}"))?,
        ),
        None => Principal::Anonymous,
    };
    run(broker, listener, stream, peer, principal).await
}

async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    broker: &Arc<Broker>,
    listener: &Arc<Listener>,
    mut socket: S,
    peer: SocketAddr,
    principal: Principal,
) -> Result<(), String> {
    let mut shutdown = broker.shutdown.clone();
    let config = &broker.config;
    let max_frame = config.socket_request_max_bytes;
    let max_inflight = config.max_inflight_per_connection;
    let idle = Duration::from_millis(config.connections_max_idle_ms);
    let receive_timeout = Duration::from_millis(config.request_receive_timeout_ms);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut inflight: FuturesOrdered<BoxFuture<'static, Answer>> = FuturesOrdered::new();
    let mut reading = true;
    // The node-wide budget held for the frame at the head of `buf`, once its length is known.
    let mut reserved: Option<OwnedSemaphorePermit> = None;
    // When the frame at the head of `buf` began to arrive.
    let mut frame_started: Option<Instant> = None;
    let mut last_activity = Instant::now();
    let mut auth = ConnectionAuth::new(principal);
    loop {
        let mut wants_budget = None;
        while inflight.len() < max_inflight {
            if reserved.is_none() {
                if let Some(len) = announced_len(&buf) {
                    if len > max_frame {
                        return Err(format!(
                            "frame of {len} bytes exceeds socket.request.max.bytes ({max_frame})"
                        ));
                    }
                    match reserve(&broker.request_budget, len) {
                        Ok(permit) => reserved = Some(permit),
                        Err(()) => {
                            wants_budget = Some(len);
                            break;
                        }
                    }
                }
            }
            match brook_wire::frame::take_frame(&mut buf, max_frame).map_err(|e| e.to_string())? {
                Some(frame) => {
                    let answer = accept(broker, listener, peer, &mut auth, frame, reserved.take())?;
                    inflight.push_back(answer);
                    frame_started = None;
                }
                None => break,
            }
        }
        if !reading && inflight.is_empty() {
            return Ok(());
        }
        if buf.is_empty() {
            frame_started = None;
        } else if frame_started.is_none() {
            frame_started = Some(Instant::now());
        }
        let room = reading && inflight.len() < max_inflight && wants_budget.is_none();
        // A frame must arrive within the receive timeout once it started, while this side is
        // reading; a connection with nothing in flight and nothing arriving is closed once idle.
        let frame_deadline = frame_started.filter(|_| room).map(|t| t + receive_timeout);
        let idle_deadline = (inflight.is_empty() && buf.is_empty()).then(|| last_activity + idle);
        let budget = broker.request_budget.clone();
        tokio::select! {
            Some(answer) = inflight.next(), if !inflight.is_empty() => {
                let close = answer.close;
                write_answer(&mut socket, answer).await?;
                if close {
                    return Err("authentication failed".into());
                }
                last_activity = Instant::now();
            }
            read = socket.read_buf(&mut buf), if room => match read {
                Ok(0) => {
                    if !buf.is_empty() {
                        tracing::warn!(bytes = buf.len(), "peer closed mid-frame");
                    }
                    reading = false;
                }
                Ok(_) => last_activity = Instant::now(),
                // A TLS client that closes without close_notify (most do) has simply left.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => reading = false,
                Err(e) => return Err(format!("read: {e}")),
            },
            permit = acquire(budget, wants_budget.unwrap_or(0)), if wants_budget.is_some() => {
                reserved = Some(permit?);
            }
            () = sleep_until_some(frame_deadline), if frame_deadline.is_some() => {
                return Err(format!(
                    "request not received within {} ms (brook.request.receive.timeout.ms)",
                    receive_timeout.as_millis()
                ));
            }
            () = sleep_until_some(idle_deadline), if idle_deadline.is_some() && reading => {
                tracing::info!(idle_ms = idle.as_millis(), "closing an idle connection (connections.max.idle.ms)");
                return Ok(());
            }
            () = shutdown.recv(), if reading => {
                // Stop taking requests; answer the ones in flight, then close.
                reading = false;
                buf.clear();
                reserved = None;
            }
        }
    }
}

/// The body length a frame at the head of `buf` announces, once its prefix is in.
fn announced_len(buf: &[u8]) -> Option<usize> {
    let prefix = buf.first_chunk::<4>()?;
    usize::try_from(i32::from_be_bytes(*prefix)).ok()
}

/// Takes `len` bytes of the node's request budget (`queued.max.request.bytes`) if free now.
fn reserve(budget: &Arc<Semaphore>, len: usize) -> Result<OwnedSemaphorePermit, ()> {
    let permits = u32::try_from(len).map_err(|_| ())?;
    budget
        .clone()
        .try_acquire_many_owned(permits)
        .map_err(|_| ())
}

/// Waits for `len` bytes of the request budget: reading from this connection pauses until
/// other requests are answered.
async fn acquire(budget: Arc<Semaphore>, len: usize) -> Result<OwnedSemaphorePermit, String> {
    let permits = u32::try_from(len).map_err(|_| format!("frame of {len} bytes"))?;
    budget
        .acquire_many_owned(permits)
        .await
        .map_err(|_| "request budget closed".to_string())
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Decodes one frame and starts its handler. An error closes the connection.
fn accept(
    broker: &Arc<Broker>,
    listener: &Arc<Listener>,
    peer: SocketAddr,
    auth: &mut ConnectionAuth,
    frame: Bytes,
    budget: Option<OwnedSemaphorePermit>,
) -> Result<BoxFuture<'static, Answer>, String> {
    if auth.takes_raw_tokens() {
        let raw = handlers::sasl_authenticate::raw(auth, broker, &frame);
        let close = raw.is_none();
        let answer = Answer {
            api_key: ApiKey::SaslAuthenticate,
            version: 0,
            correlation_id: 0,
            body: None,
            close,
            raw,
        };
        return Ok(delayed_if_failed(broker, answer));
    }
    let HeaderPeek {
        api_key,
        api_version: version,
        correlation_id,
    } = peek_header(&frame).map_err(|e| format!("bad request header: {e}"))?;
    let key = ApiKey::try_from(api_key).map_err(|_| format!("unknown API key {api_key}"))?;
    let range =
        handlers::supported(key).ok_or_else(|| format!("API {key:?} is not implemented"))?;
    // From here on a refusal counts against the API.
    let failed = |why: String| {
        broker.metrics.failed(key);
        why
    };
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
                close: false,
                raw: None,
            }));
        }
        return Err(failed(format!(
            "{key:?} v{version} is not supported (v{}-v{})",
            range.min, range.max
        )));
    }
    let (_, header, body) =
        decode_header(frame).map_err(|e| failed(format!("{key:?} v{version}: {e}")))?;
    let request =
        decode_body(key, version, body).map_err(|e| failed(format!("{key:?} v{version}: {e}")))?;
    tracing::debug!(api = ?key, version, correlation_id, client = ?header.client_id.as_deref(), "request");
    if handlers::is_connection_api(key) {
        let (body, close) =
            authenticate(broker, listener, auth, version, request).map_err(failed)?;
        broker.metrics.answered(key, std::time::Duration::ZERO);
        let answer = Answer {
            api_key: key,
            version,
            correlation_id,
            body: Some(body),
            close,
            raw: None,
        };
        return Ok(delayed_if_failed(broker, answer));
    }
    // KIP-152: on a SASL listener nothing but ApiVersions and the SASL APIs is answered
    // before the connection authenticated.
    if listener.protocol.is_sasl() && !auth.is_authenticated() && key != ApiKey::ApiVersions {
        return Err(failed(format!(
            "{key:?} before SASL authentication on a SASL listener"
        )));
    }
    // KIP-368: past its lifetime a session answers nothing but a re-authentication.
    if auth.is_expired(std::time::Instant::now()) {
        return Err(failed(format!(
            "{key:?} after the SASL session expired (connections.max.reauth.ms) without re-authentication"
        )));
    }
    let call = handlers::Call {
        version,
        client_id: header.client_id.as_deref().unwrap_or_default().to_owned(),
        client_host: format!("/{}", peer.ip()),
        principal: auth.principal.clone(),
        listener: listener.name.clone(),
    };
    // A producer with acks=0 reads no responses, so none is written (Kafka's rule).
    let silent = matches!(&request, RequestKind::Produce(p) if p.acks == 0);
    let started = Instant::now();
    let counted = broker.clone();
    let reply = handlers::dispatch(broker, call, request)
        .ok_or_else(|| failed(format!("API {key:?} has no handler")))?;
    Ok(reply
        .map(move |body| {
            // The request's share of the budget is given back once it is answered.
            drop(budget);
            counted.metrics.answered(key, started.elapsed());
            Answer {
                api_key: key,
                version,
                correlation_id,
                body: (!silent).then_some(body),
                close: false,
                raw: None,
            }
        })
        .boxed())
}

/// The SASL APIs, answered at once so the next request is read in the state they leave;
/// also returns whether the connection closes after the answer.
fn authenticate(
    broker: &Broker,
    listener: &Listener,
    auth: &mut ConnectionAuth,
    version: i16,
    request: RequestKind,
) -> Result<(ResponseKind, bool), String> {
    match request {
        RequestKind::SaslHandshake(r) => Ok((
            ResponseKind::SaslHandshake(handlers::sasl_handshake::answer(
                auth,
                &listener.sasl_mechanisms,
                version,
                r,
            )),
            false,
        )),
        RequestKind::SaslAuthenticate(r) => {
            let (response, close) = handlers::sasl_authenticate::answer(auth, broker, r);
            Ok((ResponseKind::SaslAuthenticate(response), close))
        }
        _ => Err("a request the connection does not answer itself".into()),
    }
}

/// A failed authentication is answered late (Kafka's
/// `connection.failed.authentication.delay.ms`), so guessing passwords is slow.
fn delayed_if_failed(broker: &Broker, answer: Answer) -> BoxFuture<'static, Answer> {
    if !answer.close {
        return ready(answer);
    }
    let delay = Duration::from_millis(broker.config.failed_auth_delay_ms);
    tokio::time::sleep(delay).map(move |()| answer).boxed()
}

fn ready(answer: Answer) -> BoxFuture<'static, Answer> {
    futures::future::ready(answer).boxed()
}

async fn write_answer<S: AsyncWrite + Unpin>(socket: &mut S, answer: Answer) -> Result<(), String> {
    if let Some(raw) = answer.raw {
        let len = u32::try_from(raw.len()).map_err(|_| "SASL message too large".to_string())?;
        let mut frame = len.to_be_bytes().to_vec();
        frame.extend_from_slice(&raw);
        return write_all(socket, &frame).await;
    }
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
    write_all(socket, &bytes).await
}

/// Writes and flushes: TLS holds what it encrypted until flushed (TCP's flush is free).
async fn write_all<S: AsyncWrite + Unpin>(socket: &mut S, bytes: &[u8]) -> Result<(), String> {
    socket
        .write_all(bytes)
        .await
        .map_err(|e| format!("write: {e}"))?;
    socket.flush().await.map_err(|e| format!("write: {e}"))
}
