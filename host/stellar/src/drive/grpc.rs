//! Timed gRPC calls: endpoints whose adapter says `protocol: grpc` (vHive / Knative, the
//! local runtime's gRPC functions) get STeLLAR's `ProducerConsumer.InvokeNext`
//! (`measurement-fn/proto/chainfunction.proto`) instead of an HTTP GET.
//!
//! Why its own module: the timing contract is the HTTP one ([`super::client`]), only the
//! exchange differs. The connection is opened here over plain TCP (h2c with prior knowledge,
//! as STeLLAR's `grpc.WithInsecure()` client), so the connect time is measured apart, then
//! tonic's client core (framing, `grpc-status` trailers, the prost codec) runs the call over
//! hyper's HTTP/2 connection. Connection modes are the HTTP ones: `fresh` opens a connection
//! per call (STeLLAR dialled per request), `reuse` keeps idle connections per host and uses
//! each for one call at a time, so the two protocols are compared like for like.
//!
//! What maps to what: the measurement query (`IncrementLimit=..&SpinMs=..`) goes whole into
//! `stellarQuery` and STeLLAR's own fields are filled from it (so a STeLLAR function
//! understands the call too); a URL path is a prefix of the method path (the local gateway
//! routes `/<function>/proto_gen.ProducerConsumer/InvokeNext`); the reply's `stellarReply`
//! JSON becomes the row's body, exactly as an HTTP body would, and the response metadata its
//! headers (the local gateway's `x-stellar-*` ground truth). `Client Latency` runs from
//! the actual send to the whole reply (a unary reply is one message; STeLLAR timed the same
//! span); `Time To Headers` excludes the connection set-up. A non-OK status the server sent
//! is a row with its code in the `Error` column ([`Exchange::grpc_status`]); an answer that is
//! not gRPC at all (a gateway's 429 or 502) is an HTTP status row as for HTTP; a broken
//! connection is a `protocol` / `connection-reset` failure as for HTTP.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stellar_measure::chain_proto::{INVOKE_NEXT_PATH, InvokeChainReply, InvokeChainRequest};
use tokio::net::TcpStream;

use super::client::{ConnectionMode, Exchange, RequestFailure, Target, error_chain};

type Sender = http2::SendRequest<tonic::body::Body>;

/// Idle gRPC connections per host (`reuse` mode).
#[derive(Default)]
pub(super) struct GrpcPool {
    idle: Mutex<HashMap<String, Vec<Sender>>>,
}

/// One timed unary call to `target`; `sent` is the origin of every duration.
pub(super) async fn exchange(
    pool: &GrpcPool,
    mode: ConnectionMode,
    target: &Target,
    sent: Instant,
) -> Result<Exchange, RequestFailure> {
    let pooled = if mode == ConnectionMode::Reuse {
        pool.take(target)
    } else {
        None
    };
    let (sender, connect) = match pooled {
        Some(s) => (s, None),
        None => (connect(target).await?, Some(sent.elapsed())),
    };
    let ready = Instant::now();
    let origin: http::Uri = format!("http://{}", target.authority())
        .parse()
        .map_err(|e| RequestFailure::Protocol(format!("bad authority: {e}")))?;
    let path: http::uri::PathAndQuery = format!("{}{INVOKE_NEXT_PATH}", target.path_prefix())
        .parse()
        .map_err(|e| RequestFailure::Protocol(format!("bad gRPC path: {e}")))?;
    let http_answer = Arc::new(Mutex::new(None));
    let service = H2 {
        sender: sender.clone(),
        http_answer: Arc::clone(&http_answer),
    };
    let mut client = tonic::client::Grpc::with_origin(service, origin);
    client
        .ready()
        .await
        .map_err(|e| super::client::exchange_failure(&e))?;
    let codec = tonic_prost::ProstCodec::<InvokeChainRequest, InvokeChainReply>::default();
    let mut request = tonic::Request::new(chain_request(target.query()));
    request.metadata_mut().insert(
        "user-agent",
        tonic::metadata::MetadataValue::from_static(concat!("stellar/", env!("CARGO_PKG_VERSION"))),
    );
    let result = client.unary(request, path, codec).await;
    let done = Instant::now();
    let (reply, headers) = match result {
        Ok(reply) => {
            let (metadata, reply, _) = reply.into_parts();
            (reply, metadata.into_headers())
        }
        Err(status) => {
            // A status with a source is a transport failure tonic wrapped, not the server's.
            if let Some(source) = std::error::Error::source(&status) {
                return Err(super::client::exchange_failure(source));
            }
            if mode == ConnectionMode::Reuse {
                pool.give_back(target, sender);
            }
            let message = status.message().to_owned();
            // Not a gRPC answer at all (a gateway's 429 or 502): an HTTP status row, exactly
            // as for HTTP endpoints (throttling and `Retry-After` included).
            if let Some((http_status, headers)) = http_answer.lock().ok().and_then(|mut a| a.take())
            {
                return Ok(Exchange {
                    connect,
                    to_headers: done - sent,
                    after_connect_to_headers: done - ready,
                    to_end: done - sent,
                    status: http_status,
                    headers,
                    body_len: message.len() as u64,
                    body: Bytes::from(message),
                    grpc_status: None,
                });
            }
            return Ok(Exchange {
                connect,
                to_headers: done - sent,
                after_connect_to_headers: done - ready,
                to_end: done - sent,
                status: 200,
                headers: status.metadata().clone().into_headers(),
                body_len: message.len() as u64,
                body: Bytes::from(message),
                grpc_status: Some(status.code()),
            });
        }
    };
    if mode == ConnectionMode::Reuse {
        pool.give_back(target, sender);
    }
    let body = Bytes::from(reply.stellar_reply);
    Ok(Exchange {
        connect,
        to_headers: done - sent,
        after_connect_to_headers: done - ready,
        to_end: done - sent,
        status: 200,
        headers,
        body_len: (body.len() + reply.timestamp_chain.len()) as u64,
        body,
        grpc_status: None,
    })
}

/// The request for a measurement query: the whole query in `stellarQuery`, STeLLAR's fields
/// from it, with STeLLAR's values when the query has none (`0`, `0`, `[]`: STeLLAR's Go
/// functions exit on a number field they cannot parse, an empty one included). A query that
/// does not parse is still sent whole: the function answers it.
fn chain_request(query: &str) -> InvokeChainRequest {
    let mut request = InvokeChainRequest {
        stellar_query: query.to_owned(),
        ..Default::default()
    };
    if let Ok(inv) = stellar_measure::Invocation::from_query(query) {
        request.increment_limit = inv.increment_limit.to_string();
        request.payload_length_bytes = inv.payload_length_bytes.to_string();
        request.data_transfer_chain_ids = inv
            .data_transfer_chain_ids
            .unwrap_or_else(|| "[]".to_owned());
    }
    request
}

async fn connect(target: &Target) -> Result<Sender, RequestFailure> {
    if target.is_https() {
        return Err(RequestFailure::Connect(format!(
            "gRPC over TLS is not supported (endpoint {}): STeLLAR's vHive endpoints are plain h2c",
            target.authority()
        )));
    }
    let tcp = TcpStream::connect((target.host(), target.port()))
        .await
        .map_err(|e| {
            RequestFailure::Connect(format!("{}:{}: {e}", target.host(), target.port()))
        })?;
    let _ = tcp.set_nodelay(true);
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .map_err(|e| RequestFailure::Connect(error_chain(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "gRPC benchmark connection closed with an error");
        }
    });
    Ok(sender)
}

impl GrpcPool {
    fn take(&self, target: &Target) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(&target.pool_key())?;
        while let Some(s) = list.pop() {
            if !s.is_closed() && s.is_ready() {
                return Some(s);
            }
        }
        None
    }

    fn give_back(&self, target: &Target, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.entry(target.pool_key()).or_default().push(sender);
        }
    }
}

/// An HTTP status and headers of a response that was not a gRPC one.
type HttpAnswer = Arc<Mutex<Option<(u16, http::HeaderMap)>>>;

/// hyper's HTTP/2 sender as the tower service tonic's client drives; it notes a response that
/// is not gRPC (status other than 200 without a `grpc-status`), which tonic only reports as a
/// code mapped from the HTTP status.
struct H2 {
    sender: Sender,
    http_answer: HttpAnswer,
}

impl tower_service::Service<http::Request<tonic::body::Body>> for H2 {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = hyper::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, hyper::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), hyper::Error>> {
        self.sender.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let response = self.sender.send_request(request);
        let http_answer = Arc::clone(&self.http_answer);
        Box::pin(async move {
            let response = response.await?;
            if response.status() != http::StatusCode::OK
                && !response.headers().contains_key("grpc-status")
                && let Ok(mut answer) = http_answer.lock()
            {
                *answer = Some((response.status().as_u16(), response.headers().clone()));
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stellar_fields_are_filled_from_the_query() {
        let q = "IncrementLimit=5&SpinMs=2.5&PayloadLengthBytes=7&DataTransferChainIDs=%5B%5D";
        let r = chain_request(q);
        assert_eq!(r.stellar_query, q);
        assert_eq!(
            (r.increment_limit.as_str(), r.payload_length_bytes.as_str()),
            ("5", "7")
        );
        assert_eq!(r.data_transfer_chain_ids, "[]");
        let none = chain_request("");
        assert_eq!(
            (
                none.increment_limit.as_str(),
                none.payload_length_bytes.as_str(),
                none.data_transfer_chain_ids.as_str()
            ),
            ("0", "0", "[]")
        );
        let bad = chain_request("SpinMs=x");
        assert_eq!(
            (bad.stellar_query.as_str(), bad.increment_limit.as_str()),
            ("SpinMs=x", "")
        );
    }
}
