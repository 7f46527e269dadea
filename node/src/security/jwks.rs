//! Where OAUTHBEARER's key set comes from: a file, or an HTTPS endpoint fetched with one
//! bounded GET (`Connection: close`, a body of at most [`MAX_JWKS_BYTES`] with a
//! `Content-Length` or chunked encoding, [`FETCH_TIMEOUT`] in all). Plain `http://` is refused:
//! whoever could change the key set in transit could sign any token.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest key set read, from a file or an endpoint.
pub const MAX_JWKS_BYTES: usize = 1 << 20;
/// How long one fetch may take, connection and TLS handshake included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Headers beyond this are refused.
const MAX_HEADER_BYTES: usize = 16 << 10;

/// Where the key set is read from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    File(PathBuf),
    Https(HttpsUrl),
}

/// An `https://host[:port]/path` URL, and the CA bundle its server's certificate must chain to.
#[derive(Debug, Clone)]
pub struct HttpsUrl {
    pub url: String,
    host: String,
    port: u16,
    path: String,
    pub ca: PathBuf,
}

impl JwksSource {
    /// Parses `sasl.oauthbearer.jwks.endpoint.url`: a path, a `file://` URL or an `https://`
    /// URL (checked against the PEM bundle `ca`).
    pub fn parse(url: &str, ca: PathBuf) -> anyhow::Result<Self> {
        if url.starts_with("http://") {
            bail!("{url}: the JWKS must come over https:// (or from a file), never plain http");
        }
        let Some(rest) = url.strip_prefix("https://") else {
            return Ok(JwksSource::File(PathBuf::from(
                url.strip_prefix("file://").unwrap_or(url),
            )));
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let port = |text: &str| -> anyhow::Result<u16> {
            text.parse().with_context(|| format!("the port of {url}"))
        };
        let (host, port) = match authority.strip_prefix('[') {
            // An IPv6 literal: [addr] or [addr]:port.
            Some(v6) => {
                let (host, after) = v6.split_once(']').context("an unclosed `[` in the host")?;
                (host, after.strip_prefix(':').map_or(Ok(443), port)?)
            }
            None => match authority.rsplit_once(':') {
                Some((host, p)) => (host, port(p)?),
                None => (authority, 443),
            },
        };
        ensure!(!host.is_empty(), "{url} names no host");
        Ok(JwksSource::Https(HttpsUrl {
            url: url.to_string(),
            host: host.to_string(),
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            ca,
        }))
    }

    /// The key set's bytes.
    pub async fn read(&self) -> anyhow::Result<Vec<u8>> {
        match self {
            JwksSource::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    super::read_bounded(&path, MAX_JWKS_BYTES as u64)
                })
                .await?
            }
            JwksSource::Https(url) => tokio::time::timeout(FETCH_TIMEOUT, get(url))
                .await
                .with_context(|| format!("fetching {} took over {FETCH_TIMEOUT:?}", url.url))?
                .with_context(|| format!("fetching {}", url.url)),
        }
    }
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(path) => write!(f, "{}", path.display()),
            JwksSource::Https(url) => f.write_str(&url.url),
        }
    }
}

async fn get(url: &HttpsUrl) -> anyhow::Result<Vec<u8>> {
    let ca = url.ca.clone();
    let pem = tokio::task::spawn_blocking(move || super::read_bounded(&ca, 4 << 20)).await??;
    let roots = super::tls::root_store(&pem, "the JWKS endpoint's CA bundle")?;
    let config = rustls::ClientConfig::builder_with_provider(super::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect((url.host.as_str(), url.port)).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut stream = connector
        .connect(super::tls::server_name(&url.host)?, tcp)
        .await?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
        url.path, url.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    let limit = (MAX_JWKS_BYTES + MAX_HEADER_BYTES) as u64;
    match (&mut stream)
        .take(limit + 1)
        .read_to_end(&mut response)
        .await
    {
        // A server may close without close_notify; the body's own length says whether it
        // is whole.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {}
        other => {
            other?;
        }
    }
    ensure!(
        response.len() as u64 <= limit,
        "the response is larger than {MAX_JWKS_BYTES} bytes"
    );
    body(&response)
}

/// The body of a whole `200` response: by its `Content-Length`, or chunked.
fn body(response: &[u8]) -> anyhow::Result<Vec<u8>> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no complete response header")?;
    let head = std::str::from_utf8(&response[..end]).context("a header that is not UTF-8")?;
    let rest = &response[end + 4..];
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status.split(' ').nth(1).unwrap_or_default();
    ensure!(code == "200", "the endpoint answered `{status}`");
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        return dechunk(rest);
    }
    let length: usize = header("content-length")
        .context("neither Content-Length nor chunked encoding")?
        .parse()
        .context("a Content-Length that is not a number")?;
    ensure!(length <= MAX_JWKS_BYTES, "a body of {length} bytes");
    ensure!(
        rest.len() >= length,
        "the body ends after {} of {length} bytes",
        rest.len()
    );
    Ok(rest[..length].to_vec())
}

/// Decodes a chunked body, which must end with its zero-length chunk.
fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("a chunk without its size line")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).context("a chunk size")?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        ensure!(body.len() + size <= MAX_JWKS_BYTES, "the body is too large");
        ensure!(rest.len() >= size + 2, "the body ends inside a chunk");
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_bodies_parse_and_plain_http_is_refused() {
        let ca = PathBuf::from("ca.pem");
        assert!(JwksSource::parse("http://idp/keys", ca.clone()).is_err());
        let JwksSource::Https(u) =
            JwksSource::parse("https://idp.test:8443/k", ca.clone()).unwrap()
        else {
            panic!("not https")
        };
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("idp.test", 8443, "/k")
        );
        let JwksSource::Https(u) = JwksSource::parse("https://idp.test", ca.clone()).unwrap()
        else {
            panic!("not https")
        };
        assert_eq!((u.port, u.path.as_str()), (443, "/"));
        let JwksSource::Https(u) = JwksSource::parse("https://[::1]:9/j", ca.clone()).unwrap()
        else {
            panic!("not https")
        };
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert!(matches!(
            JwksSource::parse("file:///etc/jwks.json", ca).unwrap(),
            JwksSource::File(p) if p == std::path::Path::new("/etc/jwks.json")
        ));
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(body(plain).unwrap(), b"{}");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1;x\r\n}\r\n0\r\n\r\n";
        assert_eq!(body(chunked).unwrap(), b"{}");
        assert!(
            body(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}").is_err(),
            "truncated"
        );
        assert!(body(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n").is_err());
        assert!(body(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").is_err());
        assert!(body(b"HTTP/1.1 200 OK\r\n\r\n{}").is_err(), "no length");
    }
}
