//! The timed HTTP client: sends one benchmark request and measures it.
//!
//! Built on hyper's connection API (not a pooled high-level client) so that connection set-up
//! is timed apart from the request: `connect` covers DNS, TCP and (for https) TLS; the request
//! itself is timed from the moment it is handed to the connection. Two documented modes:
//! - `fresh` (default): every request opens its own connection, so every sample carries the
//!   same kind of set-up cost, recorded in its own column, and no hidden pool state.
//! - `reuse`: keep-alive connections are pooled per host; a request that finds an idle one
//!   records no connect time.
//! - `preconnect`: like `fresh`, but the connection is opened before the burst is due
//!   ([`TimedClient::prepare`]), so a large burst leaves at once; the connect time is
//!   recorded and the latency runs from the send on the ready connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub use stellar_config::ConnectionMode;

/// Largest response body kept; the rest is read and counted but dropped.
const MAX_BODY_KEPT: usize = 1 << 20;

/// A request target: scheme, authority and path-and-query, parsed once.
#[derive(Debug, Clone)]
pub struct Target {
    https: bool,
    host: String,
    port: u16,
    authority: String,
    path_and_query: String,
    /// The endpoint speaks gRPC (its adapter said `protocol: grpc`): see [`super::grpc`].
    grpc: bool,
}

impl Target {
    /// Parses an absolute `http://` or `https://` URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(format!("URL {url:?} must start with http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL {url:?} has no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Ok(Self {
            https,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            grpc: false,
        })
    }

    /// The same target, called with gRPC ([`super::grpc`]) instead of HTTP.
    pub fn with_grpc(mut self) -> Self {
        self.grpc = true;
        self
    }

    /// Whether requests to this target are gRPC calls.
    pub fn is_grpc(&self) -> bool {
        self.grpc
    }

    pub(super) fn is_https(&self) -> bool {
        self.https
    }

    pub(super) fn authority(&self) -> &str {
        &self.authority
    }

    /// The URL's path without the query and without a trailing `/` (`""` for `/`).
    pub(super) fn path_prefix(&self) -> &str {
        let path = self
            .path_and_query
            .split_once('?')
            .map_or(self.path_and_query.as_str(), |(p, _)| p);
        path.trim_end_matches('/')
    }

    /// The query string (without `?`), `""` when there is none.
    pub(super) fn query(&self) -> &str {
        self.path_and_query.split_once('?').map_or("", |(_, q)| q)
    }

    /// The same target with `query` appended (`query` without the leading `?`).
    pub fn with_query(&self, query: &str) -> Self {
        let mut t = self.clone();
        if !query.is_empty() {
            let sep = if t.path_and_query.contains('?') {
                '&'
            } else {
                '?'
            };
            t.path_and_query = format!("{}{sep}{query}", t.path_and_query);
        }
        t
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port requests go to (the scheme's default when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub(super) fn pool_key(&self) -> String {
        format!(
            "{}://{}:{}",
            if self.https { "https" } else { "http" },
            self.host,
            self.port
        )
    }
}

/// A completed exchange (any HTTP status).
#[derive(Debug)]
pub struct Exchange {
    /// Time spent opening the connection; `None` when a pooled one was reused.
    pub connect: Option<Duration>,
    /// From the actual send (before connecting) to the response headers.
    pub to_headers: Duration,
    /// From the connection being ready to the response headers.
    pub after_connect_to_headers: Duration,
    /// From the actual send to the end of the body.
    pub to_end: Duration,
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub body_len: u64,
    /// gRPC calls only: the non-OK status the server answered (its message is the body).
    pub grpc_status: Option<tonic::Code>,
}

/// Why a request produced no response.
#[derive(Debug, thiserror::Error)]
pub enum RequestFailure {
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("connect: {0}")]
    Connect(String),
    #[error("protocol: {0}")]
    Protocol(String),
    /// The peer aborted an open connection (TCP RST) before the response was complete.
    #[error("connection reset: {0}")]
    Reset(String),
}

impl RequestFailure {
    /// The `Error Kind` of the row.
    pub fn kind(&self) -> stellar_results::ErrorKind {
        use stellar_results::ErrorKind;
        match self {
            RequestFailure::Timeout(_) => ErrorKind::Timeout,
            RequestFailure::Connect(_) => ErrorKind::Connect,
            RequestFailure::Protocol(_) => ErrorKind::Protocol,
            RequestFailure::Reset(_) => ErrorKind::ConnectionReset,
        }
    }
}

/// An open connection and how long opening it took.
type Opened = (SendRequest<Empty<Bytes>>, Duration);

/// A connection being opened ahead of its request (`preconnect`), with how long that took.
#[derive(Debug)]
pub struct Prepared(tokio::task::JoinHandle<Result<Opened, RequestFailure>>);

/// Sends benchmark requests; cheap to share behind an `Arc`.
pub struct TimedClient {
    mode: ConnectionMode,
    timeout: Duration,
    tls: tokio_rustls::TlsConnector,
    pool: Mutex<HashMap<String, Vec<SendRequest<Empty<Bytes>>>>>,
    grpc_timeout: Duration,
    grpc_pool: super::grpc::GrpcPool,
}

impl TimedClient {
    pub fn new(mode: ConnectionMode, timeout: Duration) -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth())
            .unwrap_or_else(|_| {
                // The ring provider supports the default versions; this branch is unreachable in
                // practice but keeps construction infallible.
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_protocol_versions(&[&rustls::version::TLS13])
                .expect("TLS 1.3 is supported by ring")
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth()
            });
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            mode,
            timeout,
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            pool: Mutex::new(HashMap::new()),
            grpc_timeout: timeout,
            grpc_pool: super::grpc::GrpcPool::default(),
        }
    }

    /// The timeout of gRPC calls (`Stellar.GrpcRequestTimeoutSeconds`; without this, the
    /// HTTP timeout).
    pub fn with_grpc_timeout(mut self, timeout: Duration) -> Self {
        self.grpc_timeout = timeout;
        self
    }

    pub fn mode(&self) -> ConnectionMode {
        self.mode
    }

    /// Starts opening a connection to `target` now, for a request sent later with
    /// [`TimedClient::get`]; the connect is bounded by the request timeout.
    pub fn prepare(self: &Arc<Self>, target: &Target) -> Prepared {
        let client = Arc::clone(self);
        let target = target.clone();
        Prepared(tokio::spawn(async move {
            let started = Instant::now();
            match tokio::time::timeout(client.timeout, client.connect(&target)).await {
                Ok(sender) => Ok((sender?, started.elapsed())),
                Err(_) => Err(RequestFailure::Timeout(client.timeout)),
            }
        }))
    }

    /// Sends a GET to `target`, on `prepared` when given. `sent` is taken by the caller right
    /// before this call and is the origin of every duration in the result.
    /// A gRPC target gets a unary `InvokeNext` call instead ([`super::grpc`]), timed alike; its
    /// connections are never opened ahead (the driver prepares none for it).
    pub async fn get(
        &self,
        target: &Target,
        sent: Instant,
        prepared: Option<Prepared>,
    ) -> Result<Exchange, RequestFailure> {
        let (timeout, outcome) = if target.is_grpc() {
            let call = super::grpc::exchange(&self.grpc_pool, self.mode, target, sent);
            (
                self.grpc_timeout,
                tokio::time::timeout(self.grpc_timeout, call).await,
            )
        } else {
            let exchange = self.exchange(target, sent, prepared);
            (
                self.timeout,
                tokio::time::timeout(self.timeout, exchange).await,
            )
        };
        outcome.unwrap_or(Err(RequestFailure::Timeout(timeout)))
    }

    async fn exchange(
        &self,
        target: &Target,
        sent: Instant,
        prepared: Option<Prepared>,
    ) -> Result<Exchange, RequestFailure> {
        let (mut sender, connect) = match (prepared, self.take_pooled(target)) {
            (Some(Prepared(opening)), _) => {
                let (s, took) = opening.await.map_err(|e| {
                    RequestFailure::Connect(format!("opening the connection ahead: {e}"))
                })??;
                (s, Some(took))
            }
            (None, Some(s)) => (s, None),
            (None, None) => {
                let s = self.connect(target).await?;
                (s, Some(sent.elapsed()))
            }
        };
        let ready = Instant::now();
        let request = http::Request::get(&target.path_and_query)
            .header(http::header::HOST, &target.authority)
            .header(
                http::header::USER_AGENT,
                concat!("stellar/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| RequestFailure::Protocol(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| exchange_failure(&e))?;
        let headers_at = Instant::now();
        let status = response.status().as_u16();
        let (parts, mut body) = response.into_parts();
        let mut kept = Vec::new();
        let mut body_len = 0u64;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| exchange_failure(&e))?;
            if let Ok(data) = frame.into_data() {
                body_len += data.len() as u64;
                if kept.len() < MAX_BODY_KEPT {
                    let room = MAX_BODY_KEPT - kept.len();
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
        }
        let end = Instant::now();
        if self.mode == ConnectionMode::Reuse {
            self.give_back(target, sender);
        }
        Ok(Exchange {
            connect,
            to_headers: headers_at - sent,
            after_connect_to_headers: headers_at - ready,
            to_end: end - sent,
            status,
            headers: parts.headers,
            body: Bytes::from(kept),
            body_len,
            grpc_status: None,
        })
    }

    fn take_pooled(&self, target: &Target) -> Option<SendRequest<Empty<Bytes>>> {
        if self.mode != ConnectionMode::Reuse {
            return None;
        }
        let mut pool = self.pool.lock().ok()?;
        let idle = pool.get_mut(&target.pool_key())?;
        while let Some(s) = idle.pop() {
            if !s.is_closed() && s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    fn give_back(&self, target: &Target, sender: SendRequest<Empty<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut pool) = self.pool.lock() {
            pool.entry(target.pool_key()).or_default().push(sender);
        }
    }

    async fn connect(&self, target: &Target) -> Result<SendRequest<Empty<Bytes>>, RequestFailure> {
        let tcp = TcpStream::connect((target.host.as_str(), target.port))
            .await
            .map_err(|e| {
                RequestFailure::Connect(format!("{}:{}: {e}", target.host, target.port))
            })?;
        let _ = tcp.set_nodelay(true);
        if target.https {
            let name = rustls::pki_types::ServerName::try_from(target.host.clone())
                .map_err(|e| RequestFailure::Connect(format!("TLS name {}: {e}", target.host)))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| {
                RequestFailure::Connect(format!("TLS handshake with {}: {e}", target.host))
            })?;
            handshake(TokioIo::new(tls)).await
        } else {
            handshake(TokioIo::new(tcp)).await
        }
    }
}

async fn handshake<I>(io: I) -> Result<SendRequest<Empty<Bytes>>, RequestFailure>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| RequestFailure::Connect(error_chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "benchmark connection closed with an error");
        }
    });
    Ok(sender)
}

/// A failure on an open connection: a reset by the peer, else a protocol error.
pub(super) fn exchange_failure(e: &(dyn std::error::Error + 'static)) -> RequestFailure {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionReset
        {
            return RequestFailure::Reset(error_chain(e));
        }
        cur = err.source();
    }
    RequestFailure::Protocol(error_chain(e))
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:8080/fn").unwrap();
        assert_eq!((t.host(), t.port, t.https), ("127.0.0.1", 8080, false));
        assert_eq!(t.with_query("a=1").path_and_query, "/fn?a=1");
        let t = Target::parse("https://www.google.com").unwrap();
        assert_eq!(
            (t.port, t.https, t.path_and_query.as_str()),
            (443, true, "/")
        );
        assert_eq!(
            t.with_query("a=1").with_query("b=2").path_and_query,
            "/?a=1&b=2"
        );
        assert!(Target::parse("ftp://x").is_err());
        assert!(Target::parse("not a url").is_err());
    }
}
