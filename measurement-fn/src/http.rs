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
use std::io::{self, Write as _};
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
/// Platforms whose runtime contract fixes the port when no port variable is set, recognised by
/// a variable they always set: Alibaba FC custom runtimes listen on 9000
/// (`customRuntimeConfig.port`'s default).
pub const PLATFORM_PORTS: [(&str, u16); 2] = [("FC_FUNCTION_NAME", 9000), ("FC_INSTANCE_ID", 9000)];
/// Request headers whose value becomes `RequestID` when the query has none: the platform's own
/// request id (Alibaba FC's `x-fc-request-id`), so rows can be matched with the platform's logs.
pub const REQUEST_ID_HEADERS: [&str; 1] = ["x-fc-request-id"];
/// Path of an event (non-HTTP) invocation: Alibaba FC custom runtimes get `POST /invoke` with
/// the event as the body; a JSON object there carries the parameters (as the Lambda flavour's
/// direct invoke).
pub const EVENT_INVOKE_PATH: &str = "/invoke";
/// Largest POST body kept (an event, or an Azure invocation envelope); the rest is read and
/// dropped.
const MAX_EVENT_BYTES: usize = 1 << 20;
/// Address when `STELLAR_LISTEN_ADDR` is unset.
pub const DEFAULT_LISTEN_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// The port from the first non-empty variable of [`PORT_ENV_VARS`], else the port of the first
/// platform of [`PLATFORM_PORTS`] that is recognised, else [`DEFAULT_PORT`].
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
    let platform = PLATFORM_PORTS
        .iter()
        .find(|(var, _)| env(var).is_some_and(|v| !v.trim().is_empty()));
    Ok(platform.map_or(DEFAULT_PORT, |(_, port)| *port))
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
/// resets, malformed HTTP) only end that connection. The fault knobs are off.
///
/// # Errors
/// A non-transient `accept` error (e.g. out of file descriptors).
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    serve_with(listener, shutdown, false).await
}

/// [`serve`], with the [`crate::fault`] knobs honoured when `faults` is true (the entry point
/// passes [`crate::fault::enabled`]).
///
/// # Errors
/// A non-transient `accept` error (e.g. out of file descriptors).
pub async fn serve_with(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    faults: bool,
) -> io::Result<()> {
    accept_until(listener, shutdown, |stream| {
        if faults {
            tokio::spawn(serve_connection_with_faults(stream));
            return;
        }
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
    })
    .await
}

/// Accepts connections on `listener` until `shutdown` completes and hands each one, with Nagle
/// off (replies are small; never let it delay them), to `handle`. Transient `accept` errors
/// are skipped; the HTTP and gRPC servers share this loop.
///
/// # Errors
/// A non-transient `accept` error (e.g. out of file descriptors).
pub(crate) async fn accept_until(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut handle: impl FnMut(tokio::net::TcpStream),
) -> io::Result<()> {
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
        stream.set_nodelay(true).ok();
        handle(stream);
    }
}

/// One connection with the fault knobs honoured. A `reset` fault needs the socket itself, which
/// hyper owns: a duplicate of its descriptor is kept so the socket can be set to linger 0 and
/// closed, which sends a TCP RST instead of a reply.
async fn serve_connection_with_faults(stream: tokio::net::TcpStream) {
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let Ok(duplicate) = std_stream.try_clone() else {
        return;
    };
    let Ok(stream) = tokio::net::TcpStream::from_std(std_stream) else {
        return;
    };
    let reset = std::sync::Arc::new(tokio::sync::Notify::new());
    let service = {
        let reset = std::sync::Arc::clone(&reset);
        service_fn(move |req| serve_request_with_faults(req, std::sync::Arc::clone(&reset)))
    };
    let conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        () = reset.notified() => {
            // Linger 0: closing the last descriptor (hyper's, dropped with `conn`, and this
            // duplicate) aborts the connection with RST.
            socket2::SockRef::from(&duplicate).set_linger(Some(std::time::Duration::ZERO)).ok();
        }
    }
}

async fn serve_request_with_faults(
    req: Request<Incoming>,
    reset: std::sync::Arc<tokio::sync::Notify>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let fault = match crate::fault::for_request(req.uri().query().unwrap_or("")) {
        Ok(fault) => fault,
        Err(e) => return Ok(error_response(StatusCode::BAD_REQUEST, &e.to_string())),
    };
    match fault {
        None => serve_request(req).await,
        Some(crate::fault::Fault::Crash) => {
            // stderr may be closed; the exit is the point.
            let _ = writeln!(io::stderr(), "stellar-measure-http: injected crash");
            std::process::exit(crate::fault::CRASH_EXIT_CODE)
        }
        Some(crate::fault::Fault::Hang) => std::future::pending().await,
        Some(crate::fault::Fault::Reset) => {
            reset.notify_one();
            std::future::pending().await
        }
        Some(crate::fault::Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = error_response(status, &format!("injected fault: status {code}"));
            if status == StatusCode::TOO_MANY_REQUESTS {
                resp.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    HeaderValue::from(crate::fault::RETRY_AFTER_SECONDS),
                );
            }
            Ok(resp)
        }
    }
}

/// Errors that concern one pending connection, not the listener.
pub(crate) fn is_transient(e: &io::Error) -> bool {
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
    if let Some(chain) = crate::chain::serve::configured() {
        let at = std::time::Instant::now();
        return Ok(crate::chain::serve::serve(chain, req, received, at).await);
    }
    let (parts, mut body) = req.into_parts();
    let platform_request_id = REQUEST_ID_HEADERS.iter().find_map(|name| {
        parts
            .headers
            .get(*name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.trim().is_empty())
            .map(str::to_owned)
    });
    let post = parts.method == hyper::Method::POST;
    let event = post && parts.uri.path() == EVENT_INVOKE_PATH;
    // Read the body so the connection can be reused; a POST's start is kept: an event
    // invocation, or an Azure custom handler's invocation envelope.
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let Some(data) = frame.data_ref()
            && post
            && kept.len() + data.len() <= MAX_EVENT_BYTES
        {
            kept.extend_from_slice(data);
        }
    }
    if !event
        && post
        && let Some(query) = crate::azure::envelope_query(&kept)
    {
        let inner = respond(Some(&query), received).await;
        let status = inner.status().as_u16();
        let bytes = match inner.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        return Ok(json_response(
            StatusCode::OK,
            crate::azure::envelope_reply(status, &bytes),
        ));
    }
    let params = if event && !kept.iter().all(u8::is_ascii_whitespace) {
        match serde_json::from_slice::<serde_json::Value>(&kept)
            .map_err(|e| e.to_string())
            .and_then(|v| Invocation::from_json_value(&v).map_err(|e| e.to_string()))
        {
            Ok(inv) => Params::Parsed(inv),
            Err(e) => {
                return Ok(error_response(
                    StatusCode::BAD_REQUEST,
                    &format!("event body: {e}"),
                ));
            }
        }
    } else {
        Params::Query(parts.uri.query().map(str::to_owned))
    };
    Ok(respond_to(params, platform_request_id, received).await)
}

/// Where an invocation's parameters come from.
enum Params {
    /// The query string (HTTP requests).
    Query(Option<String>),
    /// Already parsed (an event body).
    Parsed(Invocation),
}

/// The response to a request with this query string, received at `received_unix_ns`: `200`
/// with a [`crate::MeasurementResponse`], `400` with `{"error": ..}` for a bad parameter,
/// `500` if the handler panicked. The spin runs on tokio's blocking pool.
pub async fn respond(query: Option<&str>, received_unix_ns: u64) -> Response<Full<Bytes>> {
    respond_to(
        Params::Query(query.map(str::to_owned)),
        None,
        received_unix_ns,
    )
    .await
}

/// [`respond`] for parsed or query parameters; `platform_request_id` is the `RequestID` when
/// the parameters have none.
async fn respond_to(
    params: Params,
    platform_request_id: Option<String>,
    received_unix_ns: u64,
) -> Response<Full<Bytes>> {
    let parsed = match params {
        Params::Parsed(inv) => Ok(inv),
        Params::Query(query) => Invocation::from_query(query.as_deref().unwrap_or("")),
    };
    let mut inv = match parsed {
        Ok(inv) => inv,
        Err(e) => return error_response(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if inv.request_id.is_none() {
        inv.request_id = platform_request_id;
    }
    // Counted at receipt, in arrival order (this task runs on the server's single I/O
    // thread), not when the blocking pool gets round to it.
    let instance = crate::instance::global();
    let seq = instance.begin_invocation();
    // Ends the invocation even if the caller goes away and this future is dropped.
    let _ended = EndOnDrop { instance, seq };
    let handled = tokio::task::spawn_blocking(move || {
        crate::handle_begun(
            instance,
            crate::facts::global(),
            &inv,
            received_unix_ns,
            seq,
        )
    })
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

/// Ends an invocation counted at receipt when dropped.
pub(crate) struct EndOnDrop {
    pub(crate) instance: &'static crate::Instance,
    pub(crate) seq: crate::instance::InvocationSeq,
}

impl Drop for EndOnDrop {
    fn drop(&mut self) {
        self.instance.end_invocation(self.seq);
    }
}

/// A JSON `{"error": message}` reply.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message }).to_string();
    json_response(status, body.into_bytes())
}

/// A reply with a JSON body.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
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

    use crate::test_env::env_of;

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
    fn function_compute_defaults_to_9000() {
        assert_eq!(
            port_from_env(env_of(&[("FC_FUNCTION_NAME", "st-r-00-00")])).unwrap(),
            9000
        );
        assert_eq!(
            port_from_env(env_of(&[("FC_INSTANCE_ID", "c-1")])).unwrap(),
            9000
        );
        assert_eq!(
            port_from_env(env_of(&[
                ("FC_INSTANCE_ID", "c-1"),
                ("FC_SERVER_PORT", "9001")
            ]))
            .unwrap(),
            9001
        );
        assert_eq!(
            port_from_env(env_of(&[("FC_INSTANCE_ID", " ")])).unwrap(),
            8080
        );
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
    async fn azure_envelope_is_answered_in_outputs_res() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, std::future::pending()));
        let envelope = br#"{"Data":{"req":{"Url":"http://h/api/measure?IncrementLimit=4&RequestID=env","Method":"GET"}},"Metadata":{}}"#;
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let resp = send
            .send_request(
                Request::post("/measure")
                    .header(CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from_static(envelope)))
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["Outputs"]["res"]["statusCode"], 200);
        let inner: MeasurementResponse =
            serde_json::from_str(v["Outputs"]["res"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(inner.request_id, "env");
        assert_eq!(inner.increments, 4);
        server.abort();
    }

    #[tokio::test]
    async fn platform_request_id_fills_in_a_missing_request_id() {
        let parsed = |q: &str| Params::Query(Some(q.to_owned()));
        let v = body_json(respond_to(parsed("SpinMs=0"), Some("fc-req-1".into()), 1).await).await;
        assert_eq!(v["RequestID"], "fc-req-1");
        let v =
            body_json(respond_to(parsed("RequestID=mine"), Some("fc-req-1".into()), 1).await).await;
        assert_eq!(v["RequestID"], "mine");
        let inv = Invocation::from_json_value(&serde_json::json!({"IncrementLimit": 3})).unwrap();
        let v = body_json(respond_to(Params::Parsed(inv), Some("e".into()), 1).await).await;
        assert_eq!(
            (v["increments"].as_u64(), v["RequestID"].as_str()),
            (Some(3), Some("e"))
        );
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
