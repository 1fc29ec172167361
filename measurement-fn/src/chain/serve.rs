//! The HTTP side of a chain (feature `http-server`): answering hop requests and calling the
//! successor.
//!
//! Why a module of its own: the plain measurement request is answered from a small body the
//! server reads whole; a chain hop instead streams megabytes in and out, hashing as it goes,
//! and waits for its successor. [`crate::http`] hands every request to [`serve`] when the
//! process was started as a chain member ([`init_from_env`]).

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::http::{error_response, json_response};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{CONTENT_LENGTH, HOST};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use super::payload::{self, CHUNK_BYTES, PayloadStream};
use super::{
    ChainConfig, ChainHop, ChainReply, ChainReport, ReceiveSide, SendSide, Transfer, keys,
};
use crate::{Invocation, unix_ns_now};

/// Longest a hop waits for its successor (connect, transfer and the rest of the chain).
const HOP_TIMEOUT: Duration = Duration::from_secs(600);
/// Largest successor reply read (hop records are a few hundred bytes each).
const MAX_REPLY_BYTES: usize = 4 << 20;

static CONFIG: OnceLock<Option<ChainConfig>> = OnceLock::new();

/// Reads the chain variables once (call at start, before serving).
///
/// # Errors
/// A malformed chain variable (see [`ChainConfig::from_env`]).
pub fn init_from_env() -> crate::Result<()> {
    let config = ChainConfig::from_env(|v| std::env::var(v).ok())?;
    CONFIG.get_or_init(|| config);
    Ok(())
}

/// The process's chain configuration, when it is a chain member.
#[must_use]
pub fn configured() -> Option<&'static ChainConfig> {
    CONFIG.get().and_then(Option::as_ref)
}

/// What every hop request carries.
#[derive(Debug, Clone)]
struct HopContext {
    request_id: String,
    length: u64,
    seed: u64,
    sha256: String,
    /// Tests only: the hop whose sender finds its successor down.
    fault_down_hop: Option<u32>,
}

/// A failed chain step, already worded for the error row.
#[derive(Debug)]
struct HopError(String);

/// Answers one request to a chain member received at `received_unix_ns` / `received`.
pub async fn serve(
    config: &'static ChainConfig,
    req: Request<Incoming>,
    received_unix_ns: u64,
    received: Instant,
) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or("").to_owned();
    let inv = match Invocation::from_query(&query) {
        Ok(inv) => inv,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let seed = match query_value(&query, keys::PAYLOAD_SEED).map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(seed)) => Some(seed),
        Some(Err(_)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "parameter `PayloadSeed`: expected an unsigned integer",
            );
        }
    };
    let faults = crate::fault::enabled(|v| std::env::var(v).ok());
    let fault_down_hop = faults
        .then(|| query_value(&query, keys::FAULT_CHAIN_DOWN_HOP))
        .flatten()
        .and_then(|v| v.parse().ok());
    let instance = crate::instance::global();
    let seq = instance.begin_invocation();
    let _ended = EndOnDrop { instance, seq };
    if config.hop == 0 {
        let request_id = inv.request_id.clone().unwrap_or_else(crate::random_hex_id);
        let seed = seed.unwrap_or_else(|| payload::seed_from_request_id(&request_id));
        let length = inv.payload_length_bytes;
        let mut inv = inv;
        inv.request_id = Some(request_id.clone());
        let measured = tokio::task::spawn_blocking(move || {
            let resp = crate::handle_begun(
                instance,
                crate::facts::global(),
                &inv,
                received_unix_ns,
                seq,
            );
            (resp, payload::sha256_hex(seed, length))
        })
        .await;
        let Ok((mut resp, sha256)) = measured else {
            return error_response(StatusCode::INTERNAL_SERVER_ERROR, "handler failed");
        };
        let ctx = HopContext {
            request_id,
            length,
            seed,
            sha256: sha256.clone(),
            fault_down_hop,
        };
        let (send, rest) = match pass_on(config, &ctx).await {
            Ok(sent) => sent,
            Err(HopError(message)) => return error_response(StatusCode::BAD_GATEWAY, &message),
        };
        let mut hops = vec![own_hop(
            config,
            seq.cold,
            received_unix_ns,
            received,
            None,
            send,
        )];
        hops.extend(rest);
        resp.chain = Some(ChainReport {
            transfer: config.transfer,
            length: config.length,
            payload_length_bytes: length,
            payload_seed: seed,
            payload_sha256: sha256,
            hops,
        });
        return match serde_json::to_vec(&resp) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    }

    // A receiver.
    let Some(seed) = seed else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "a chain hop request needs `PayloadSeed`",
        );
    };
    let expected_sha = req
        .headers()
        .get(super::SHA256_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let ctx = HopContext {
        request_id: inv.request_id.clone().unwrap_or_default(),
        length: inv.payload_length_bytes,
        seed,
        sha256: expected_sha,
        fault_down_hop,
    };
    let received_payload = match config.transfer {
        Transfer::Inline => receive_inline(req.into_body(), received, received_unix_ns).await,
        Transfer::S3 | Transfer::AzureBlob => {
            let Some(key) = query_value(&query, keys::OBJECT_KEY) else {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "a storage chain hop request needs `ObjectKey`",
                );
            };
            match super::storage::download_and_delete(config.transfer, &key).await {
                Ok(r) => r,
                Err(e) => {
                    return error_response(
                        StatusCode::BAD_GATEWAY,
                        &format!(
                            "chain hop {} -> {}: downloading {key}: {e}",
                            config.hop - 1,
                            config.hop
                        ),
                    );
                }
            }
        }
    };
    let receive = ReceiveSide {
        start_unix_ns: received_unix_ns,
        sha256_ok: received_payload.bytes == ctx.length && received_payload.sha256 == ctx.sha256,
        ..received_payload
    };
    let (send, rest) = if config.next_url.is_some() {
        match pass_on(config, &ctx).await {
            Ok((send, rest)) => (send, rest),
            Err(HopError(message)) => return error_response(StatusCode::BAD_GATEWAY, &message),
        }
    } else {
        (None, Vec::new())
    };
    let mut hops = vec![own_hop(
        config,
        seq.cold,
        received_unix_ns,
        received,
        Some(receive),
        send,
    )];
    hops.extend(rest);
    match serde_json::to_vec(&ChainReply { hops }) {
        Ok(body) => json_response(StatusCode::OK, body),
        Err(e) => error_response(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

fn own_hop(
    config: &ChainConfig,
    cold: bool,
    received_unix_ns: u64,
    received: Instant,
    receive: Option<ReceiveSide>,
    send: Option<SendSide>,
) -> ChainHop {
    ChainHop {
        hop: config.hop,
        instance_id: crate::instance::global().id().to_owned(),
        boot_id: crate::facts::global().boot_id.clone(),
        cold,
        received_unix_ns,
        handled_ns: nanos(received.elapsed()),
        receive,
        send,
    }
}

/// Reads an inline payload, hashing it; nothing is kept.
async fn receive_inline(
    mut body: Incoming,
    received: Instant,
    received_unix_ns: u64,
) -> ReceiveSide {
    let mut hasher = Sha256::new();
    let mut bytes = 0_u64;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref() {
            hasher.update(data);
            bytes += data.len() as u64;
        }
    }
    ReceiveSide {
        start_unix_ns: received_unix_ns,
        end_unix_ns: unix_ns_now(),
        duration_ns: nanos(received.elapsed()),
        bytes,
        sha256: hex::encode(hasher.finalize()),
        sha256_ok: false,
        delete_ns: None,
    }
}

/// Sends the payload to the successor and returns this hop's send record and the successors'
/// records.
async fn pass_on(
    config: &ChainConfig,
    ctx: &HopContext,
) -> Result<(Option<SendSide>, Vec<ChainHop>), HopError> {
    let from = config.hop;
    let to = from + 1;
    let Some(next) = config.next_url.as_deref() else {
        return Ok((None, Vec::new()));
    };
    let dead;
    let url = if ctx.fault_down_hop == Some(to) {
        dead = dead_url();
        dead.as_str()
    } else {
        next
    };
    let fail = |what: String| HopError(format!("chain hop {from} -> {to} ({url}): {what}"));
    let mut query = format!(
        "RequestID={}&PayloadLengthBytes={}&{}={}&{}={to}",
        ctx.request_id,
        ctx.length,
        keys::PAYLOAD_SEED,
        ctx.seed,
        keys::CHAIN_HOP,
    );
    if let Some(down) = ctx.fault_down_hop {
        query.push_str(&format!("&{}={down}", keys::FAULT_CHAIN_DOWN_HOP));
    }
    let start = Instant::now();
    let start_unix_ns = unix_ns_now();
    let (body, payload_sent_at) = match config.transfer {
        Transfer::Inline => {
            let sent_at = Arc::new(Mutex::new(None));
            let body = PayloadBody::new(ctx.seed, ctx.length, Arc::clone(&sent_at));
            (HopBody::Payload(body), sent_at)
        }
        Transfer::S3 | Transfer::AzureBlob => {
            let key = super::storage::object_key(&ctx.request_id, to);
            super::storage::upload(config.transfer, &key, ctx.seed, ctx.length, &ctx.sha256)
                .await
                .map_err(|e| fail(format!("uploading {key}: {e}")))?;
            query.push_str(&format!("&{}={key}", keys::OBJECT_KEY));
            (HopBody::Empty, Arc::new(Mutex::new(Some(Instant::now()))))
        }
    };
    let exchange = tokio::time::timeout(
        HOP_TIMEOUT,
        post(url, &query, &ctx.sha256, ctx.length, body),
    )
    .await
    .map_err(|_| fail(format!("no reply within {HOP_TIMEOUT:?}")))?
    .map_err(fail)?;
    let (status, init_ms, reply) = exchange;
    let headers_at = reply.headers_at;
    if status != StatusCode::OK {
        let text = String::from_utf8_lossy(&reply.body);
        // A successor's own chain error already names the failing hop: pass it on as is.
        let inner = serde_json::from_slice::<serde_json::Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .filter(|m| m.starts_with("chain hop "));
        return Err(match inner {
            Some(message) => HopError(message),
            None => fail(format!("HTTP {}: {}", status.as_u16(), cut(&text, 300))),
        });
    }
    let rest: ChainReply = serde_json::from_slice(&reply.body)
        .map_err(|e| fail(format!("the successor's reply is not a chain reply: {e}")))?;
    let sent_at = payload_sent_at
        .lock()
        .map_or(None, |g| *g)
        .unwrap_or(headers_at);
    Ok((
        Some(SendSide {
            start_unix_ns,
            payload_sent_ns: nanos(sent_at.saturating_duration_since(start)),
            round_trip_ns: nanos(headers_at.saturating_duration_since(start)),
            successor_init_ms: init_ms,
        }),
        rest.hops,
    ))
}

/// A URL nobody listens on: a port the OS just handed out and took back (connection refused).
fn dead_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(9, |a| a.port());
    format!("http://127.0.0.1:{port}/down")
}

struct Reply {
    headers_at: Instant,
    body: Bytes,
}

/// One POST over a fresh HTTP/1.1 connection; returns status, the front end's cold-start time
/// header and the body.
async fn post(
    url: &str,
    query: &str,
    sha256: &str,
    length: u64,
    body: HopBody,
) -> Result<(StatusCode, Option<f64>, Reply), String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad successor URL: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// successors are supported".into());
    }
    let authority = uri
        .authority()
        .ok_or_else(|| "the successor URL has no host".to_owned())?
        .clone();
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let path = uri.path();
    let path_and_query = match uri.query() {
        Some(q) if !q.is_empty() => format!("{path}?{q}&{query}"),
        _ => format!("{path}?{query}"),
    };
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connecting: {e}"))?;
    stream.set_nodelay(true).ok();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    tokio::spawn(conn);
    let content_length = match &body {
        HopBody::Payload(_) => length,
        HopBody::Empty => 0,
    };
    let req = Request::post(path_and_query)
        .header(HOST, authority.as_str())
        .header(super::SHA256_HEADER, sha256)
        .header(CONTENT_LENGTH, content_length)
        .body(body)
        .map_err(|e| format!("building the request: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("sending: {e}"))?;
    let headers_at = Instant::now();
    let status = resp.status();
    let init_ms = resp
        .headers()
        .get("x-stellar-init-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let mut body = resp.into_body();
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("reading the reply: {e}"))?;
        if let Some(data) = frame.data_ref()
            && kept.len() + data.len() <= MAX_REPLY_BYTES
        {
            kept.extend_from_slice(data);
        }
    }
    Ok((
        status,
        init_ms,
        Reply {
            headers_at,
            body: Bytes::from(kept),
        },
    ))
}

/// The request body of a hop: the payload (inline) or nothing (storage).
pub(super) enum HopBody {
    Payload(PayloadBody),
    Empty,
}

impl Body for HopBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Payload(p) => Pin::new(p).poll_frame(cx),
            Self::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Payload(p) => p.is_end_stream(),
            Self::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Payload(p) => p.size_hint(),
            Self::Empty => SizeHint::with_exact(0),
        }
    }
}

/// The payload generated chunk by chunk as hyper asks for it; records when the last chunk
/// was handed over.
pub(super) struct PayloadBody {
    stream: PayloadStream,
    sent_at: Arc<Mutex<Option<Instant>>>,
}

impl PayloadBody {
    /// The payload for `seed`/`length`; `sent_at` receives the time the last chunk was
    /// handed over.
    pub(super) fn new(seed: u64, length: u64, sent_at: Arc<Mutex<Option<Instant>>>) -> Self {
        Self {
            stream: PayloadStream::new(seed, length),
            sent_at,
        }
    }

    fn mark_sent(&self) {
        if let Ok(mut at) = self.sent_at.lock() {
            *at = Some(Instant::now());
        }
    }
}

impl Body for PayloadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        match this.stream.next_chunk(CHUNK_BYTES) {
            Some(chunk) => {
                if this.stream.remaining() == 0 {
                    this.mark_sent();
                }
                Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
            }
            None => {
                this.mark_sent();
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.remaining() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.stream.remaining())
    }
}

/// Ends an invocation counted at receipt when dropped.
struct EndOnDrop {
    instance: &'static crate::Instance,
    seq: crate::instance::InvocationSeq,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.instance.end_invocation(self.seq);
    }
}

/// The first value of `key` in a raw query (values stellar writes need no decoding).
fn query_value(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == key).then(|| v.to_owned())
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_value_takes_the_first() {
        assert_eq!(query_value("a=1&b=2&a=3", "a").as_deref(), Some("1"));
        assert_eq!(query_value("a=1", "b"), None);
    }

    #[test]
    fn dead_url_refuses_connections() {
        let url = dead_url();
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/down")
            .to_owned();
        assert!(std::net::TcpStream::connect(addr).is_err());
    }
}
