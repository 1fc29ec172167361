//! The plain-HTTP server behind `stellar-measure-http` (feature `http-server`).
//!
//! Azure custom handlers, Cloud Run, Knative/vHive, Alibaba FC custom runtimes and stellar's
//! local runtime all forward requests to a port inside the instance; this module serves that
//! port with hyper (HTTP/1.1, keep-alive) and maps each request onto the core: query string ->
//! [`Invocation`] -> [`crate::handle_received_at`] on a blocking thread -> JSON. It lives in the
//! library (not the binary) so it can be tested in-process, and it is feature-gated so the host
//! and the Lambda entry point do not compile hyper's server.

use crate::{Error, Invocation, Result, unix_ns_now};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::TcpListener;

/// Port variables, in priority order: Azure custom handler, Alibaba FC, everyone else.
pub const PORT_ENV_VARS: [&str; 3] = ["FUNCTIONS_CUSTOMHANDLER_PORT", "FC_SERVER_PORT", "PORT"];
/// The listen address variable.
pub const LISTEN_ADDR_ENV: &str = "STELLAR_LISTEN_ADDR";
/// Set to `1` to exit when stdin reaches EOF.
pub const EXIT_ON_STDIN_EOF_ENV: &str = "STELLAR_EXIT_ON_STDIN_EOF";
/// Port when no port variable is set.
pub const DEFAULT_PORT: u16 = 8080;
/// Address when `STELLAR_LISTEN_ADDR` is unset.
pub const DEFAULT_LISTEN_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The port from the first non-empty variable of [`PORT_ENV_VARS`], else [`DEFAULT_PORT`].
/// `0` means an ephemeral port.
///
/// # Errors
/// [`Error::InvalidEnv`] if that variable is not a port number.
pub fn port_from_env(env: impl Fn(&str) -> Option<String>) -> Result<u16> {
    for var in PORT_ENV_VARS {
        if let Some(value) = env(var).filter(|v| !v.trim().is_empty()) {
            return value.trim().parse().map_err(|_| Error::InvalidEnv {
                var,
                expected: "a port number (0-65535)",
                value,
            });
        }
    }
    Ok(DEFAULT_PORT)
}

/// The address from `STELLAR_LISTEN_ADDR`, else [`DEFAULT_LISTEN_ADDR`].
///
/// # Errors
/// [`Error::InvalidEnv`] if it is set but not an IP address.
pub fn listen_addr_from_env(env: impl Fn(&str) -> Option<String>) -> Result<IpAddr> {
    match env(LISTEN_ADDR_ENV).filter(|v| !v.trim().is_empty()) {
        None => Ok(DEFAULT_LISTEN_ADDR),
        Some(value) => value.trim().parse().map_err(|_| Error::InvalidEnv {
            var: LISTEN_ADDR_ENV,
            expected: "an IP address such as 0.0.0.0 or 127.0.0.1",
            value,
        }),
    }
}

/// Serves HTTP/1.1 on `listener` until `shutdown` completes. Each connection gets its own task;
/// requests on one connection are served in order (keep-alive), requests on different
/// connections spin in parallel on tokio's blocking pool. Errors on one connection (client
/// resets, malformed HTTP) only end that connection.
///
/// # Errors
/// A non-transient `accept` error (e.g. out of file descriptors).
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e),
            },
        };
        // Responses are small; never let Nagle delay them.
        stream.set_nodelay(true).ok();
        tokio::spawn(async move {
            // No header-read timeout: hyper would start it on idle keep-alive connections too and
            // close them after 30 s, racing the gateway's next request on a pooled connection.
            // Idle connections live until the client closes them or the instance exits.
            let conn = http1::Builder::new()
                .header_read_timeout(None)
                .serve_connection(TokioIo::new(stream), service_fn(serve_request));
            // The peer went away or spoke bad HTTP: nothing to do but drop the connection.
            conn.await.ok();
        });
    }
}

/// Errors that concern one pending connection, not the listener.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

async fn serve_request(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let received = unix_ns_now();
    let (parts, mut body) = req.into_parts();
    // Read (and drop) any body so the connection can be reused for the next request.
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    Ok(respond(parts.uri.query(), received).await)
}

/// The response to a request with this query string, received at `received_unix_ns`: `200`
/// with a [`crate::MeasurementResponse`], `400` with `{"error": ..}` for a bad parameter,
/// `500` if the handler panicked. The spin runs on tokio's blocking pool.
pub async fn respond(query: Option<&str>, received_unix_ns: u64) -> Response<Full<Bytes>> {
    let inv = match Invocation::from_query(query.unwrap_or("")) {
        Ok(inv) => inv,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let handled =
        tokio::task::spawn_blocking(move || crate::handle_received_at(&inv, received_unix_ns))
            .await;
    match handled {
        Ok(resp) => match serde_json::to_vec(&resp) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(e) => error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("serializing response: {e}"),
            ),
        },
        Err(e) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("handler failed: {e}"),
        ),
    }
}

fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message }).to_string();
    json_response(status, body.into_bytes())
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MeasurementResponse;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn port_priority_and_default() {
        assert_eq!(port_from_env(env_of(&[])).unwrap(), 8080);
        assert_eq!(port_from_env(env_of(&[("PORT", "9000")])).unwrap(), 9000);
        assert_eq!(
            port_from_env(env_of(&[("PORT", "1"), ("FC_SERVER_PORT", "2")])).unwrap(),
            2
        );
        assert_eq!(
            port_from_env(env_of(&[
                ("PORT", "1"),
                ("FC_SERVER_PORT", "2"),
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "3")
            ]))
            .unwrap(),
            3
        );
        assert_eq!(
            port_from_env(env_of(&[
                ("FUNCTIONS_CUSTOMHANDLER_PORT", ""),
                ("PORT", "0")
            ]))
            .unwrap(),
            0
        );
        let err = port_from_env(env_of(&[("PORT", "99999")])).unwrap_err();
        assert!(err.to_string().contains("`PORT`"), "{err}");
    }

    #[test]
    fn listen_addr_default_and_parse() {
        assert_eq!(
            listen_addr_from_env(env_of(&[])).unwrap(),
            DEFAULT_LISTEN_ADDR
        );
        assert_eq!(
            listen_addr_from_env(env_of(&[("STELLAR_LISTEN_ADDR", "127.0.0.1")])).unwrap(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        let err =
            listen_addr_from_env(env_of(&[("STELLAR_LISTEN_ADDR", "localhost")])).unwrap_err();
        assert!(err.to_string().contains(LISTEN_ADDR_ENV), "{err}");
    }

    async fn body_json(resp: Response<Full<Bytes>>) -> serde_json::Value {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn good_query_is_200_json() {
        let resp = respond(Some("IncrementLimit=5&RequestID=q"), unix_ns_now()).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers().get(CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let v = body_json(resp).await;
        let r: MeasurementResponse = serde_json::from_value(v).unwrap();
        assert_eq!(r.request_id, "q");
        assert_eq!(r.increments, 5);
    }

    #[tokio::test]
    async fn bad_parameter_is_400_naming_key() {
        let resp = respond(Some("SpinMs=abc"), unix_ns_now()).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let v = body_json(resp).await;
        let msg = v.get("error").and_then(|e| e.as_str()).unwrap();
        assert!(msg.contains("SpinMs"), "{msg}");
    }
}
