//! The `/metrics` endpoint: a small HTTP/1.1 server on `brook.metrics.listener`, answering
//! `GET /metrics` (and `/`) with the metrics and anything else with 404, one request per
//! connection. A request must arrive within 10 s and fit in 8 KiB; at most 16 scrapes are
//! served at once (more wait to be accepted), so a stranger cannot tie the node up through it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::RaftView;
use crate::broker::Broker;

const MAX_REQUEST_BYTES: usize = 8 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_SCRAPES: usize = 16;
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) async fn serve(listener: TcpListener, broker: Arc<Broker>) {
    let mut shutdown = broker.shutdown.clone();
    let slots = Arc::new(Semaphore::new(MAX_SCRAPES));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let broker = broker.clone();
                    tokio::spawn(async move {
                        if let Err(e) = answer(stream, &broker).await {
                            tracing::debug!(error = %e, "metrics request failed");
                        }
                        drop(slot);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics listener accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = shutdown.recv() => return,
        }
    }
}

async fn answer(mut stream: TcpStream, broker: &Broker) -> std::io::Result<()> {
    let head = tokio::time::timeout(REQUEST_TIMEOUT, read_head(&mut stream))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request too slow"))??;
    let (status, content_type, body) = match request_path(&head) {
        Some("/metrics" | "/") => ("200 OK", CONTENT_TYPE, render(broker)),
        Some(_) => (
            "404 Not Found",
            "text/plain",
            "not found: try /metrics\n".to_string(),
        ),
        None => ("400 Bad Request", "text/plain", "bad request\n".to_string()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The request line and headers, up to the blank line.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_REQUEST_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request headers over 8 KiB",
            ));
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// The path of a `GET` request (its query string dropped).
fn request_path(head: &str) -> Option<&str> {
    let mut parts = head.lines().next()?.split_whitespace();
    if parts.next()? != "GET" {
        return None;
    }
    let target = parts.next()?;
    Some(target.split('?').next().unwrap_or(target))
}

fn render(broker: &Broker) -> String {
    let metrics = broker.metadata.raft().metrics();
    let membership = metrics.membership_config.membership();
    let raft = RaftView {
        term: metrics.current_term,
        last_log_index: metrics.last_log_index,
        applied_index: metrics.last_applied.map(|l| l.index),
        leader: metrics.current_leader,
        voters: membership.voter_ids().count(),
        learners: membership.learner_ids().count(),
    };
    broker
        .metrics
        .encode(broker.node_id(), &broker.image(), &raft)
}

#[cfg(test)]
mod tests {
    use super::request_path;

    #[test]
    fn only_get_requests_have_a_path() {
        assert_eq!(
            request_path("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(
            request_path("GET /metrics?x=1 HTTP/1.1\r\n\r\n"),
            Some("/metrics")
        );
        assert_eq!(request_path("POST /metrics HTTP/1.1\r\n\r\n"), None);
        assert_eq!(request_path(""), None);
    }
}
