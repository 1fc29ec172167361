//! The gateway: `ANY /<name>[/rest][?query]` is forwarded to an instance of function `<name>`
//! as `/<rest>[?query]`, and the response is streamed back with three extra headers. A gRPC
//! call (h2c, `application/grpc`) to `/<name>/<package.Service>/<Method>` is forwarded the same
//! way over HTTP/2 to a gRPC instance (`STELLAR_PROTOCOL=grpc`), trailers included; the
//! headers below are then response metadata.
//!
//! - `x-stellar-instance-id`: the instance that answered;
//! - `x-stellar-cold-start`: `true` iff this request caused that instance to be spawned;
//! - `x-stellar-init-ms`: the instance's spawn-to-READY time, only on cold starts;
//! - `x-stellar-start-label`: how the runtime served the request, from its own bookkeeping
//!   (`cold-natural`, `cold-scaleout`, `cold-queued`, `prewarmed`, `process-restart`, `warm`;
//!   see [`crate::StartTruth`]): the ground truth stellar's labels are checked against.
//!
//! A request queued behind a starting instance (instance concurrency above 1) is forwarded
//! [`QUEUE_DISPATCH_DELAY`] after the instance is ready, so the request that started it is
//! the instance's first, as a platform's queue releases requests in arrival order.
//!
//! Errors: unknown function 404, every instance busy at `max_instances` 429 (`Retry-After: 1`),
//! spawn failure / READY timeout / instance crash 502, no response head within the function's
//! `timeout_s` 504 (the instance is then stopped, as a cloud would end the invocation),
//! shutting down 503. Upstream connections come from a shared keep-alive pool keyed by the
//! instance's port (see `Shared::client`).

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::sync::Arc;

use crate::api::StopReason;
use crate::body::{self, GuardedBody, ResBody};
use crate::error::ApiError;
use crate::state::{Admission, Shared};

/// Header naming the instance that answered.
pub const INSTANCE_ID_HEADER: &str = "x-stellar-instance-id";
/// Header saying whether the request caused a cold start.
pub const COLD_START_HEADER: &str = "x-stellar-cold-start";
/// Header with the instance's init time (ms), on cold starts only.
pub const INIT_MS_HEADER: &str = "x-stellar-init-ms";
/// Header with the runtime's own label of the request ([`crate::StartTruth`]).
pub const START_LABEL_HEADER: &str = "x-stellar-start-label";
/// How long requests queued behind a starting instance wait after it is ready, so the request
/// that started it reaches it first.
pub(crate) const QUEUE_DISPATCH_DELAY: std::time::Duration = std::time::Duration::from_millis(25);

/// Waits until a starting instance is ready (or failed).
async fn wait_ready(
    mut watch: crate::state::ReadyWatch,
) -> Result<crate::state::ReadyInfo, Option<String>> {
    match watch.wait_for(Option::is_some).await {
        Ok(outcome) => match outcome.as_ref() {
            Some(Ok(info)) => Ok(info.clone()),
            Some(Err(msg)) => Err(Some(msg.clone())),
            None => Err(None),
        },
        // The supervisor went away without a word: stopped while starting.
        Err(_) => Err(None),
    }
}

/// Answers one gateway request.
pub(crate) async fn handle(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<ResBody> {
    match forward(shared, req).await {
        Ok(res) => res,
        Err(err) => body::error(&err),
    }
}

/// Splits `/<name>[/rest]` into the name and the path to forward (`/` + rest).
fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    match trimmed.find('/') {
        Some(i) => (&trimmed[..i], &trimmed[i..]),
        None => (trimmed, "/"),
    }
}

/// A gRPC call: HTTP/2 with an `application/grpc` content type (gRPC over HTTP/2, "Requests").
fn is_grpc<B>(req: &Request<B>) -> bool {
    req.version() == Version::HTTP_2
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"))
}

/// Removes hop-by-hop headers (RFC 9110 section 7.6.1), including those named by `Connection`.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
}

async fn forward(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, ApiError> {
    let (name, rest) = split_path(req.uri().path());
    if name.is_empty() {
        return Err(ApiError::not_found(
            "no function in the path: invoke /<function>[/path]",
        ));
    }
    let name = name.to_owned();
    let target = match req.uri().query() {
        Some(query) => format!("{rest}?{query}"),
        None => rest.to_owned(),
    };
    let (admission, mut in_flight) = shared.admit(&name)?;
    let (ready, cold) = match admission {
        Admission::Warm(info) => (Ok(info), false),
        Admission::Cold(watch) => (wait_ready(watch).await, true),
        Admission::Queued(watch) => {
            let ready = wait_ready(watch).await;
            tokio::time::sleep(QUEUE_DISPATCH_DELAY).await;
            (ready, false)
        }
    };
    let info = match ready {
        Ok(info) => info,
        Err(Some(msg)) => {
            return Err(ApiError::other(
                StatusCode::BAD_GATEWAY,
                format!("instance of `{name}` failed to start: {msg}"),
            ));
        }
        Err(None) => {
            return Err(ApiError::other(
                StatusCode::BAD_GATEWAY,
                format!("instance of `{name}` was stopped before it was ready"),
            ));
        }
    };

    let uri: Uri = format!("http://127.0.0.1:{}{target}", info.port)
        .parse()
        .map_err(|e| ApiError::invalid(format!("bad request target {target:?}: {e}")))?;
    let grpc = is_grpc(&req);
    let (parts, req_body) = req.into_parts();
    let mut upstream = Request::new(req_body);
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = uri;
    *upstream.headers_mut() = parts.headers;
    strip_hop_by_hop(upstream.headers_mut());
    let client = if grpc {
        // gRPC needs HTTP/2 end to end, and `te: trailers` (the one TE value HTTP/2 allows).
        *upstream.version_mut() = Version::HTTP_2;
        upstream
            .headers_mut()
            .insert(header::TE, HeaderValue::from_static("trailers"));
        &shared.grpc_client
    } else {
        *upstream.version_mut() = Version::HTTP_11;
        &shared.client
    };

    let timeout = in_flight.timeout();
    let response = tokio::time::timeout(timeout, client.request(upstream)).await;
    let response = match response {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            return Err(ApiError::other(
                StatusCode::BAD_GATEWAY,
                format!("instance {} of `{name}` failed: {e}", info.instance_id),
            ));
        }
        Err(_) => {
            shared.stop_instance(in_flight.slot(), StopReason::Timeout);
            return Err(ApiError::other(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "instance {} of `{name}` did not answer within {} s; it was stopped",
                    info.instance_id,
                    timeout.as_secs()
                ),
            ));
        }
    };
    in_flight.mark_served();

    let (mut parts, res_body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let headers = &mut parts.headers;
    if let Ok(id) = HeaderValue::from_str(&info.instance_id) {
        headers.insert(INSTANCE_ID_HEADER, id);
    }
    headers.insert(
        COLD_START_HEADER,
        HeaderValue::from_static(if cold { "true" } else { "false" }),
    );
    if cold && let Ok(ms) = HeaderValue::from_str(&format!("{:.3}", info.init_ms)) {
        headers.insert(INIT_MS_HEADER, ms);
    }
    headers.insert(
        START_LABEL_HEADER,
        HeaderValue::from_static(in_flight.truth().as_str()),
    );
    let res_body = GuardedBody::new(res_body, in_flight).boxed();
    Ok(Response::from_parts(parts, res_body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_function_name_from_the_forwarded_path() {
        assert_eq!(split_path("/f"), ("f", "/"));
        assert_eq!(split_path("/f/"), ("f", "/"));
        assert_eq!(split_path("/f/a/b"), ("f", "/a/b"));
        assert_eq!(split_path("/"), ("", "/"));
        assert_eq!(split_path(""), ("", "/"));
    }

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-foo"),
        );
        h.insert("x-foo", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::CONTENT_TYPE));
    }
}
