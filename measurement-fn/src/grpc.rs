//! The gRPC flavour of the function (feature `http-server`): STeLLAR's
//! `ProducerConsumer.InvokeNext` over h2c (HTTP/2 without TLS, as Knative and vHive route it).
//!
//! Why: vHive is the platform STeLLAR measured over gRPC, and its Knative services are
//! reached with h2c on `$PORT`. `stellar-measure-http` serves this instead of HTTP/1.1 when
//! [`PROTOCOL_ENV`]` = grpc`. The request is turned into the same query string the HTTP
//! flavour takes ([`InvokeChainRequest::to_query`]), handled by the same core (counted at
//! receipt, spun on the blocking pool), and the reply carries STeLLAR's `timestampChain`
//! plus the HTTP flavour's whole JSON reply in `stellarReply` (instance id, cold flag, spin,
//! facts), so STeLLAR clients keep working and stellar's analysis is the same for both.
//!
//! tonic provides the gRPC framing and status handling (`tonic::server::Grpc` with the prost
//! codec); hyper's HTTP/2 server carries the connections, so tonic's transport (and axum) are
//! not compiled. Errors are gRPC statuses: a malformed parameter is `INVALID_ARGUMENT`, an
//! unknown method `UNIMPLEMENTED`, an injected `status:<code>` fault (tests only, see
//! [`crate::fault`]) the code gRPC's HTTP-to-gRPC mapping gives, except 429, which is
//! `RESOURCE_EXHAUSTED` (the code of a throttled gRPC call).

use crate::chain_proto::{INVOKE_NEXT_PATH, InvokeChainReply, InvokeChainRequest, go_list};
use crate::{Invocation, unix_ns_now};
use hyper::body::Incoming;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::future::Future;
use std::io::{self, Write as _};
use std::pin::Pin;
use tokio::net::TcpListener;
use tonic::{Code, Status};
use tonic_prost::ProstCodec;

/// Selects the protocol of `stellar-measure-http`: `http` (default) or `grpc`.
pub const PROTOCOL_ENV: &str = "STELLAR_PROTOCOL";

/// The protocol the entry point serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with the JSON reply ([`crate::http`]).
    Http,
    /// gRPC over h2c (this module).
    Grpc,
}

/// The protocol from [`PROTOCOL_ENV`] (unset or empty: HTTP).
///
/// # Errors
/// [`crate::Error::InvalidEnv`] for any other value than `http` or `grpc`.
pub fn protocol_from_env(env: impl Fn(&str) -> Option<String>) -> crate::Result<Protocol> {
    match env(PROTOCOL_ENV).as_deref().map(str::trim) {
        None | Some("" | "http") => Ok(Protocol::Http),
        Some("grpc") => Ok(Protocol::Grpc),
        Some(other) => Err(crate::Error::InvalidEnv {
            var: PROTOCOL_ENV,
            expected: "http or grpc",
            value: other.to_owned(),
        }),
    }
}

/// Serves gRPC over h2c on `listener` until `shutdown` completes; each connection gets its own
/// task, calls on one connection are multiplexed and spin in parallel on the blocking pool.
/// With `faults`, the [`crate::fault`] knobs in `stellarQuery` are honoured (`reset` is
/// answered `UNAVAILABLE`: hyper's HTTP/2 connection cannot be aborted per call).
///
/// # Errors
/// A non-transient `accept` error.
pub async fn serve_with(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    faults: bool,
) -> io::Result<()> {
    crate::http::accept_until(listener, shutdown, |stream| {
        tokio::spawn(async move {
            let service = service_fn(move |req| route(req, faults));
            let conn = http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service);
            // A peer that goes away or speaks bad HTTP/2 only ends its connection.
            conn.await.ok();
        });
    })
    .await
}

async fn route(
    req: hyper::Request<Incoming>,
    faults: bool,
) -> Result<hyper::Response<tonic::body::Body>, Infallible> {
    let received = unix_ns_now();
    if req.uri().path() != INVOKE_NEXT_PATH {
        let status = Status::unimplemented(format!(
            "unknown method {}; this function serves {INVOKE_NEXT_PATH}",
            req.uri().path()
        ));
        return Ok(status.into_http());
    }
    let mut grpc =
        tonic::server::Grpc::new(ProstCodec::<InvokeChainReply, InvokeChainRequest>::default());
    Ok(grpc.unary(InvokeNext { received, faults }, req).await)
}

/// The `InvokeNext` handler for one call.
struct InvokeNext {
    received: u64,
    faults: bool,
}

type ReplyFuture =
    Pin<Box<dyn Future<Output = Result<tonic::Response<InvokeChainReply>, Status>> + Send>>;

impl tonic::server::UnaryService<InvokeChainRequest> for InvokeNext {
    type Response = InvokeChainReply;
    type Future = ReplyFuture;

    fn call(&mut self, request: tonic::Request<InvokeChainRequest>) -> Self::Future {
        let (received, faults) = (self.received, self.faults);
        Box::pin(async move {
            invoke(request.into_inner(), received, faults)
                .await
                .map(tonic::Response::new)
        })
    }
}

/// Handles one call: faults (when enabled), parameters, the spin, the reply.
async fn invoke(
    request: InvokeChainRequest,
    received_unix_ns: u64,
    faults: bool,
) -> Result<InvokeChainReply, Status> {
    let query = request.to_query();
    if faults {
        match crate::fault::for_request(&query) {
            Err(e) => return Err(Status::invalid_argument(e.to_string())),
            Ok(None) => {}
            Ok(Some(crate::fault::Fault::Crash)) => {
                let _ = writeln!(io::stderr(), "stellar-measure-http: injected crash");
                std::process::exit(crate::fault::CRASH_EXIT_CODE)
            }
            Ok(Some(crate::fault::Fault::Hang)) => std::future::pending().await,
            Ok(Some(crate::fault::Fault::Reset)) => {
                return Err(Status::unavailable(
                    "injected fault: reset is not supported over gRPC",
                ));
            }
            Ok(Some(crate::fault::Fault::Status(code))) => {
                return Err(Status::new(
                    code_for_http_status(code),
                    format!("injected fault: status {code}"),
                ));
            }
        }
    }
    let inv =
        Invocation::from_query(&query).map_err(|e| Status::invalid_argument(e.to_string()))?;
    let instance = crate::instance::global();
    let seq = instance.begin_invocation();
    let _ended = crate::http::EndOnDrop { instance, seq };
    let handled = tokio::task::spawn_blocking(move || {
        crate::handle_begun(
            instance,
            crate::facts::global(),
            &inv,
            received_unix_ns,
            seq,
        )
    })
    .await
    .map_err(|e| Status::internal(format!("handler failed: {e}")))?;
    let json = serde_json::to_string(&handled)
        .map_err(|e| Status::internal(format!("serializing the reply: {e}")))?;
    Ok(InvokeChainReply {
        timestamp_chain: go_list(&handled.timestamp_chain),
        stellar_reply: json,
    })
}

/// gRPC's HTTP-to-gRPC status mapping (grpc/grpc `doc/http-grpc-status-mapping.md`), except
/// 429 → `RESOURCE_EXHAUSTED`, the code a throttled gRPC call gets.
#[must_use]
pub fn code_for_http_status(status: u16) -> Code {
    match status {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 => Code::ResourceExhausted,
        502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_env() {
        let of = |v: Option<&str>| protocol_from_env(|_| v.map(str::to_owned));
        assert_eq!(of(None).unwrap(), Protocol::Http);
        assert_eq!(of(Some("grpc")).unwrap(), Protocol::Grpc);
        let err = of(Some("h2")).unwrap_err().to_string();
        assert!(
            err.contains("STELLAR_PROTOCOL") && err.contains("http or grpc"),
            "{err}"
        );
    }

    #[test]
    fn http_status_mapping() {
        assert_eq!(code_for_http_status(429), Code::ResourceExhausted);
        assert_eq!(code_for_http_status(503), Code::Unavailable);
        assert_eq!(code_for_http_status(500), Code::Unknown);
    }
}
