//! A small blocking HTTP/1 client over wasi:http, for provider control-plane calls.
//!
//! The host decides which hosts an adapter may reach (its `allowed-hosts`); a request to any
//! other host fails with [`HttpError::Denied`], whose message names the host and the reason.
//! Request bodies are bytes, an [`Artifact`], or an artifact base64-embedded between a prefix
//! and a suffix ([`Body::Base64Artifact`], for APIs that take code inline in JSON). Artifacts
//! are streamed from the host in chunks of at most [`ARTIFACT_CHUNK_BYTES`] straight into the
//! request body, so a 100+ MB artifact never sits whole in guest memory; a body can also be
//! walked without sending it ([`Body::for_each_chunk`]), e.g. to hash it for a signature. Every body is sent with `content-length`
//! (chunked uploads confuse some servers). Responses are read whole, up to
//! [`Request::max_response_bytes`].
//!
//! ```ignore
//! let base = BaseUrl::parse("http://127.0.0.1:41234")?;
//! let response = base
//!     .request(Method::Get, "/v1/functions")
//!     .bearer(&token)
//!     .send()?
//!     .error_for_status()?;
//! let list: MyList = response.json()?;
//! ```

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, OutgoingBody,
    OutgoingRequest, RequestOptions,
};
use wasip2::io::streams::{OutputStream, StreamError};

use crate::{Artifact, ProviderError, base64, errors};

/// Largest artifact chunk read from the host and written to the request body at once.
pub const ARTIFACT_CHUNK_BYTES: u32 = 1 << 20;

/// Default cap on a response body; larger responses fail with [`HttpError::ResponseTooLarge`].
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Bytes asked for per read of a response body.
const READ_CHUNK_BYTES: u64 = 64 << 10;

/// An HTTP request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn to_wasi(self) -> wasip2::http::types::Method {
        use wasip2::http::types::Method as M;
        match self {
            Self::Get => M::Get,
            Self::Head => M::Head,
            Self::Post => M::Post,
            Self::Put => M::Put,
            Self::Patch => M::Patch,
            Self::Delete => M::Delete,
        }
    }

    /// Methods whose requests normally carry a body (an empty one is sent with
    /// `content-length: 0`).
    fn expects_body(self) -> bool {
        matches!(self, Self::Post | Self::Put | Self::Patch)
    }

    /// The method's name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn to_wasi(self) -> wasip2::http::types::Scheme {
        match self {
            Self::Http => wasip2::http::types::Scheme::Http,
            Self::Https => wasip2::http::types::Scheme::Https,
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }

    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Default)]
pub enum Body<'a> {
    /// No body (`PUT`/`POST`/`PATCH` still send `content-length: 0`).
    #[default]
    None,
    /// Bytes already in memory.
    Bytes(Vec<u8>),
    /// A host-owned artifact, streamed from its first byte in chunks of at most
    /// [`ARTIFACT_CHUNK_BYTES`]; `content-length` is the artifact's size.
    Artifact(&'a Artifact),
    /// `prefix`, then the artifact base64-encoded (standard alphabet, padded), then `suffix`:
    /// an artifact embedded in a JSON (or form) document, e.g. `{"ZipFile":"` + b64 + `"}`.
    /// Streamed like [`Body::Artifact`]; `content-length` is computed up front
    /// (`prefix + 4 * ceil(size / 3) + suffix`).
    Base64Artifact {
        prefix: Vec<u8>,
        artifact: &'a Artifact,
        suffix: Vec<u8>,
    },
    /// Bytes the caller produces while the request is sent (e.g. one blob of an archive,
    /// read from the artifact's current position), see [`StreamBody`].
    Stream(StreamBody<'a>),
}

/// The writer behind a [`StreamBody`]: it hands every piece of the body to the sink it gets.
pub type BodyWriter<'a> =
    dyn FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), HttpError>) -> Result<(), HttpError> + 'a;

/// A body of a known length produced by a caller-supplied writer, in pieces, while the
/// request is sent: nothing is buffered. It can be sent once (a second attempt fails with
/// [`HttpError::ArtifactSize`] reporting 0 bytes); the writer must yield exactly `len` bytes.
#[derive(Clone)]
pub struct StreamBody<'a> {
    len: u64,
    writer: std::rc::Rc<std::cell::RefCell<Option<Box<BodyWriter<'a>>>>>,
}

impl<'a> StreamBody<'a> {
    /// A body of `len` bytes written by `writer`.
    pub fn new(
        len: u64,
        writer: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), HttpError>) -> Result<(), HttpError>
        + 'a,
    ) -> Self {
        Self {
            len,
            writer: std::rc::Rc::new(std::cell::RefCell::new(Some(Box::new(writer)))),
        }
    }

    /// Runs the writer (once), checking it yields exactly the declared length.
    fn write(&self, sink: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>) -> Result<(), HttpError> {
        let size_error = |read: u64| HttpError::ArtifactSize {
            file_name: "streamed request body".to_string(),
            read,
            size: self.len,
        };
        let Some(writer) = self.writer.borrow_mut().take() else {
            return Err(size_error(0));
        };
        let mut written = 0_u64;
        writer(&mut |piece: &[u8]| {
            written += piece.len() as u64;
            if written > self.len {
                return Err(size_error(written));
            }
            sink(piece)
        })?;
        if written != self.len {
            return Err(size_error(written));
        }
        Ok(())
    }
}

impl fmt::Debug for StreamBody<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamBody")
            .field("len", &self.len)
            .finish()
    }
}

impl Body<'_> {
    /// The exact number of bytes the body yields (an artifact's declared size is trusted here
    /// and checked while streaming).
    pub fn content_length(&self) -> u64 {
        match self {
            Body::None => 0,
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::Artifact(artifact) => artifact.size(),
            Body::Base64Artifact {
                prefix,
                artifact,
                suffix,
            } => prefix.len() as u64 + base64::encoded_len(artifact.size()) + suffix.len() as u64,
            Body::Stream(stream) => stream.len,
        }
    }

    /// Feeds the body to `sink` in order, one bounded chunk at a time; artifacts are read
    /// from their first byte, so this can run more than once (e.g. to hash a body for a
    /// request signature, then to send it). Fails with [`HttpError::ArtifactSize`] when an
    /// artifact yields a different number of bytes than it declares, or with the first error
    /// of `sink`.
    pub fn for_each_chunk(
        &self,
        mut sink: impl FnMut(&[u8]) -> Result<(), HttpError>,
    ) -> Result<(), HttpError> {
        match self {
            Body::None => Ok(()),
            Body::Bytes(bytes) => sink(bytes),
            Body::Artifact(artifact) => stream_artifact(artifact, &mut sink),
            Body::Base64Artifact {
                prefix,
                artifact,
                suffix,
            } => {
                sink(prefix)?;
                let mut encoder = base64::Encoder::new();
                // Room for one chunk plus the (at most 2) bytes carried over, reserved once:
                // growing it later would briefly hold two buffers.
                let mut encoded = Vec::with_capacity(
                    usize::try_from(base64::encoded_len(u64::from(ARTIFACT_CHUNK_BYTES) + 2))
                        .unwrap_or(0),
                );
                stream_artifact(artifact, &mut |chunk| {
                    encoded.clear();
                    encoder.update(chunk, &mut encoded);
                    sink(&encoded)
                })?;
                encoded.clear();
                encoder.finish(&mut encoded);
                sink(&encoded)?;
                sink(suffix)
            }
            Body::Stream(stream) => stream.write(&mut sink),
        }
    }
}

/// Why an HTTP exchange failed (before any HTTP status was received).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The host refused the request: the destination is not in the adapter's allow-list.
    #[error("request to {authority} was denied by the host (not in allowed-hosts)")]
    Denied { authority: String },
    /// The destination could not be reached or did not answer in time (worth retrying).
    #[error("request to {authority} failed: {reason}")]
    Unreachable { authority: String, reason: String },
    /// The exchange broke in a way retrying will not fix.
    #[error("request to {authority} failed: {reason}")]
    Protocol { authority: String, reason: String },
    /// The request itself is malformed (bad header, URL, ...).
    #[error("invalid request to {authority}: {reason}")]
    InvalidRequest { authority: String, reason: String },
    /// The response body is larger than the request's cap.
    #[error("response from {authority} is larger than the limit of {limit} bytes")]
    ResponseTooLarge { authority: String, limit: usize },
    /// The artifact yielded a different number of bytes than its declared size.
    #[error("artifact `{file_name}` yielded {read} bytes but declares a size of {size} bytes")]
    ArtifactSize {
        file_name: String,
        read: u64,
        size: u64,
    },
    /// A URL given to [`BaseUrl::parse`] is not usable.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl From<HttpError> for ProviderError {
    fn from(e: HttpError) -> Self {
        let message = e.to_string();
        match e {
            HttpError::Unreachable { .. } => ProviderError::Transient(message),
            HttpError::InvalidRequest { .. } | HttpError::InvalidUrl { .. } => {
                ProviderError::Invalid(message)
            }
            HttpError::Denied { .. }
            | HttpError::Protocol { .. }
            | HttpError::ResponseTooLarge { .. }
            | HttpError::ArtifactSize { .. } => ProviderError::Other(message),
        }
    }
}

/// A base URL (`scheme://authority[/prefix]`) that requests are made relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    scheme: Scheme,
    authority: String,
    host: String,
    port: Option<u16>,
    prefix: String,
}

impl BaseUrl {
    /// Parses `http://host[:port][/prefix]` or `https://...`; a query, fragment or user info
    /// is refused.
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = |reason: &str| HttpError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else {
            return Err(bad("expected a URL starting with http:// or https://"));
        };
        if rest.contains(['?', '#']) {
            return Err(bad("a query or fragment is not allowed"));
        }
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(bad("the host is missing"));
        }
        if authority.contains('@') {
            return Err(bad("user info is not allowed"));
        }
        let (host, port) = split_host_port(authority).map_err(|r| bad(&r))?;
        Ok(Self {
            scheme,
            authority: authority.to_string(),
            host: host.to_string(),
            port,
            prefix: prefix.to_string(),
        })
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host without the port (IPv6 literals keep their brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if the URL has one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host[:port]` as written in the URL.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// A request for `path` (which should start with `/`) below this base URL.
    pub fn request(&self, method: Method, path: &str) -> Request<'static> {
        let path = if path.starts_with('/') {
            format!("{}{path}", self.prefix)
        } else {
            format!("{}/{path}", self.prefix)
        };
        Request::new(method, self.scheme, &self.authority, &path)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.prefix
        )
    }
}

/// Splits `host[:port]` (`[v6]:port` included); the port must be a number.
fn split_host_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let after = &authority[end + 1..];
                match after.strip_prefix(':') {
                    Some(port) => (&authority[..=end], Some(port)),
                    None if after.is_empty() => (authority, None),
                    None => return Err("junk after the IPv6 address".to_string()),
                }
            }
            None => return Err("unterminated IPv6 address".to_string()),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("the host is missing".to_string());
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| format!("port {p:?} is not a number from 0 to 65535"))
        })
        .transpose()?;
    Ok((host, port))
}

/// An outgoing HTTP request. Build it with [`Request::new`] or [`BaseUrl::request`], then
/// [`send`](Request::send) it.
#[derive(Debug)]
pub struct Request<'a> {
    pub method: Method,
    pub scheme: Scheme,
    /// `host[:port]`.
    pub authority: String,
    /// Path plus optional `?query`, starting with `/`.
    pub path_and_query: String,
    /// Extra headers. `content-length` is always computed from the body and must not be set.
    pub headers: Vec<(String, String)>,
    pub body: Body<'a>,
    /// Cap on the response body, [`DEFAULT_MAX_RESPONSE_BYTES`] by default.
    pub max_response_bytes: usize,
    /// Connect, first-byte and between-bytes timeout, if any (the host's per-call deadline
    /// applies regardless).
    pub timeout: Option<Duration>,
}

impl<'a> Request<'a> {
    /// A request with no headers and no body.
    pub fn new(method: Method, scheme: Scheme, authority: &str, path_and_query: &str) -> Self {
        Self {
            method,
            scheme,
            authority: authority.to_string(),
            path_and_query: path_and_query.to_string(),
            headers: Vec::new(),
            body: Body::None,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            timeout: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds `authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Sets the body.
    pub fn body<'b>(self, body: Body<'b>) -> Request<'b> {
        Request {
            method: self.method,
            scheme: self.scheme,
            authority: self.authority,
            path_and_query: self.path_and_query,
            headers: self.headers,
            body,
            max_response_bytes: self.max_response_bytes,
            timeout: self.timeout,
        }
    }

    /// Streams `artifact` as the body, with `content-type: application/octet-stream`.
    pub fn artifact<'b>(self, artifact: &'b Artifact) -> Request<'b> {
        self.header("content-type", "application/octet-stream")
            .body(Body::Artifact(artifact))
    }

    /// Serializes `value` as the JSON body, with `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self, HttpError> {
        let bytes = serde_json::to_vec(value).map_err(|e| HttpError::InvalidRequest {
            authority: self.authority.clone(),
            reason: format!("cannot encode the JSON body: {e}"),
        })?;
        Ok(self
            .header("content-type", "application/json")
            .body(Body::Bytes(bytes)))
    }

    /// Sets the response size cap.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Sets the connect / first-byte / between-bytes timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// `host:port`, with the scheme's default port filled in, for messages.
    fn shown_authority(&self) -> String {
        match split_host_port(&self.authority) {
            Ok((_, Some(_))) | Err(_) => self.authority.clone(),
            Ok((host, None)) => format!("{host}:{}", self.scheme.default_port()),
        }
    }

    /// Sends the request and reads the whole response. Any HTTP status is a successful
    /// exchange; use [`Response::error_for_status`] to turn 4xx/5xx into a provider error.
    pub fn send(self) -> Result<Response, HttpError> {
        let authority = self.shown_authority();
        let invalid = |reason: String| HttpError::InvalidRequest {
            authority: authority.clone(),
            reason,
        };

        let content_length = match &self.body {
            Body::None if !self.method.expects_body() => None,
            body => Some(body.content_length()),
        };
        let fields = Fields::new();
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-length") {
                return Err(invalid(
                    "`content-length` is computed from the body and must not be set".to_string(),
                ));
            }
            fields
                .append(name, value.as_bytes())
                .map_err(|e| invalid(format!("header `{name}` is not allowed: {e:?}")))?;
        }
        if let Some(length) = content_length {
            fields
                .append("content-length", length.to_string().as_bytes())
                .map_err(|e| invalid(format!("cannot set `content-length`: {e:?}")))?;
        }

        let request = OutgoingRequest::new(fields);
        request
            .set_method(&self.method.to_wasi())
            .map_err(|()| invalid(format!("method {} refused", self.method)))?;
        request
            .set_scheme(Some(&self.scheme.to_wasi()))
            .map_err(|()| invalid("scheme refused".to_string()))?;
        request
            .set_authority(Some(&self.authority))
            .map_err(|()| invalid(format!("authority {:?} refused", self.authority)))?;
        request
            .set_path_with_query(Some(&self.path_and_query))
            .map_err(|()| invalid(format!("path {:?} refused", self.path_and_query)))?;

        // Order matters: take the body handle, start the request, then write the body, so a
        // large body is never buffered before the connection exists.
        let outgoing_body = match content_length {
            Some(_) => Some(
                request
                    .body()
                    .map_err(|()| invalid("the request body was already taken".to_string()))?,
            ),
            None => None,
        };
        let options = self.timeout.map(request_options);
        let future = outgoing_handler::handle(request, options)
            .map_err(|code| classify(&code, &authority))?;

        let written = match outgoing_body {
            Some(body) => write_body(body, &self.body, &authority),
            None => Ok(()),
        };
        let response = match written {
            Ok(()) => wait_for_response(&future, &authority)?,
            // Our side broke (artifact shorter than declared): the request was abandoned.
            Err(e @ HttpError::ArtifactSize { .. }) => return Err(e),
            // The body stream broke. Either the server answered early (e.g. 401 before
            // reading the body) or the request failed (e.g. the host denied it): both say
            // more than the write error does.
            Err(write_error) => match wait_for_response(&future, &authority) {
                Ok(response) => response,
                Err(HttpError::Protocol { .. }) => return Err(write_error),
                Err(request_error) => return Err(request_error),
            },
        };
        drop(future);
        read_response(
            &response,
            self.method,
            self.scheme,
            &self.authority,
            &self.path_and_query,
            self.max_response_bytes,
        )
    }
}

fn request_options(timeout: Duration) -> RequestOptions {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    let options = RequestOptions::new();
    // A host that does not support a timeout refuses it; the per-call deadline still holds.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));
    options
}

/// Writes the whole body, then finishes it (which checks the `content-length`).
fn write_body(body: OutgoingBody, source: &Body<'_>, authority: &str) -> Result<(), HttpError> {
    let stream = body.write().map_err(|()| HttpError::Protocol {
        authority: authority.to_string(),
        reason: "the request body stream was already taken".to_string(),
    })?;
    let written = source
        .for_each_chunk(|chunk| write_all(&stream, chunk, authority))
        .and_then(|()| {
            stream
                .blocking_flush()
                .map_err(|e| stream_error(e, authority, "writing the request body"))
        });
    // The stream is a child of the body: it must be gone before `finish`.
    drop(stream);
    match written {
        // Dropping an unfinished body tells the host the request is broken.
        Err(e) => Err(e),
        Ok(()) => OutgoingBody::finish(body, None).map_err(|code| classify(&code, authority)),
    }
}

/// Reads an artifact from its first byte and hands each chunk to `sink`, one chunk in memory
/// at a time; checks that the artifact yields exactly its declared size.
fn stream_artifact(
    artifact: &Artifact,
    sink: &mut dyn FnMut(&[u8]) -> Result<(), HttpError>,
) -> Result<(), HttpError> {
    let size = artifact.size();
    let size_error = |read: u64| HttpError::ArtifactSize {
        file_name: artifact.file_name(),
        read,
        size,
    };
    artifact.rewind();
    let mut sent: u64 = 0;
    loop {
        let chunk = artifact.read(ARTIFACT_CHUNK_BYTES);
        if chunk.is_empty() {
            break;
        }
        sent += chunk.len() as u64;
        if sent > size {
            return Err(size_error(sent));
        }
        sink(&chunk)?;
    }
    if sent != size {
        return Err(size_error(sent));
    }
    Ok(())
}

/// Writes all of `data`, waiting for the host to accept more whenever its buffer is full.
fn write_all(stream: &OutputStream, mut data: &[u8], authority: &str) -> Result<(), HttpError> {
    let ready = stream.subscribe();
    let result = loop {
        if data.is_empty() {
            break Ok(());
        }
        let permitted = match stream.check_write() {
            Ok(n) => n,
            Err(e) => break Err(e),
        };
        if permitted == 0 {
            ready.block();
            continue;
        }
        let n = data
            .len()
            .min(usize::try_from(permitted).unwrap_or(usize::MAX));
        if let Err(e) = stream.write(&data[..n]) {
            break Err(e);
        }
        data = &data[n..];
    };
    // The pollable is a child of the stream and must be dropped first.
    drop(ready);
    result.map_err(|e| stream_error(e, authority, "writing the request body"))
}

fn wait_for_response(
    future: &FutureIncomingResponse,
    authority: &str,
) -> Result<IncomingResponse, HttpError> {
    let ready = future.subscribe();
    ready.block();
    drop(ready);
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response),
        Some(Ok(Err(code))) => Err(classify(&code, authority)),
        Some(Err(())) | None => Err(HttpError::Protocol {
            authority: authority.to_string(),
            reason: "the response was not available".to_string(),
        }),
    }
}

fn read_response(
    response: &IncomingResponse,
    method: Method,
    scheme: Scheme,
    authority: &str,
    path_and_query: &str,
    limit: usize,
) -> Result<Response, HttpError> {
    let too_large = || HttpError::ResponseTooLarge {
        authority: authority.to_string(),
        limit,
    };
    let status = response.status();
    let headers: Vec<(String, String)> = {
        let fields = response.headers();
        let entries = fields.entries();
        drop(fields);
        entries
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect()
    };
    let declared = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<u64>().ok());
    // A HEAD response declares the length of a body it does not send (e.g. a registry blob).
    if method != Method::Head && declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }

    let broken = |reason: &str| HttpError::Protocol {
        authority: authority.to_string(),
        reason: reason.to_string(),
    };
    let incoming = response
        .consume()
        .map_err(|()| broken("the response body was already taken"))?;
    let stream = incoming
        .stream()
        .map_err(|()| broken("the response body stream was already taken"))?;
    let mut body = Vec::new();
    let read = loop {
        match stream.blocking_read(READ_CHUNK_BYTES) {
            Ok(chunk) => {
                let needed = body.len() + chunk.len();
                if needed > limit {
                    break Err(too_large());
                }
                let declared = declared.filter(|_| method != Method::Head);
                if let Err(e) = grow(&mut body, needed, declared, limit) {
                    break Err(broken(&format!(
                        "cannot hold a {needed}-byte response in memory: {e}"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break Ok(()),
            Err(e) => break Err(stream_error(e, authority, "reading the response body")),
        }
    };
    drop(stream);
    drop(IncomingBody::finish(incoming));
    read?;
    Ok(Response {
        status,
        headers,
        body,
        request: format!("{method} {}://{authority}{path_and_query}", scheme.as_str()),
    })
}

/// Makes room for `needed` bytes without overshooting `limit`: the declared length is
/// reserved exactly, otherwise capacity doubles but stops at the limit, so a body near the
/// limit never costs twice the limit. Failure is an error, not an abort.
fn grow(
    body: &mut Vec<u8>,
    needed: usize,
    declared: Option<u64>,
    limit: usize,
) -> Result<(), std::collections::TryReserveError> {
    if needed <= body.capacity() {
        return Ok(());
    }
    let declared = declared.and_then(|n| usize::try_from(n).ok());
    let target = match declared {
        Some(n) if n >= needed => n,
        _ => body.capacity().saturating_mul(2).max(needed).min(limit),
    };
    body.try_reserve_exact(target - body.len())
}

fn stream_error(e: StreamError, authority: &str, doing: &str) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Unreachable {
            authority: authority.to_string(),
            reason: format!("the connection closed while {doing}"),
        },
        StreamError::LastOperationFailed(io) => match wasip2::http::types::http_error_code(&io) {
            Some(code) => classify(&code, authority),
            None => HttpError::Unreachable {
                authority: authority.to_string(),
                reason: format!("{doing}: {}", io.to_debug_string()),
            },
        },
    }
}

/// Maps a wasi:http error code onto [`HttpError`], with a readable reason.
fn classify(code: &ErrorCode, authority: &str) -> HttpError {
    let authority = authority.to_string();
    let unreachable = |reason: &str| HttpError::Unreachable {
        authority: authority.clone(),
        reason: reason.to_string(),
    };
    let invalid = |reason: String| HttpError::InvalidRequest {
        authority: authority.clone(),
        reason,
    };
    match code {
        ErrorCode::HttpRequestDenied | ErrorCode::DestinationIpProhibited => {
            HttpError::Denied { authority }
        }
        ErrorCode::DnsTimeout => unreachable("DNS lookup timed out"),
        ErrorCode::DnsError(p) => unreachable(&format!(
            "DNS error{}",
            p.rcode
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )),
        ErrorCode::DestinationNotFound => unreachable("destination not found"),
        ErrorCode::DestinationUnavailable => unreachable("destination unavailable"),
        ErrorCode::DestinationIpUnroutable => unreachable("destination IP unroutable"),
        ErrorCode::ConnectionRefused => unreachable("connection refused"),
        ErrorCode::ConnectionTerminated => unreachable("connection terminated"),
        ErrorCode::ConnectionTimeout => unreachable("connect timed out"),
        ErrorCode::ConnectionReadTimeout => unreachable("read timed out"),
        ErrorCode::ConnectionWriteTimeout => unreachable("write timed out"),
        ErrorCode::ConnectionLimitReached => unreachable("connection limit reached"),
        ErrorCode::HttpResponseTimeout => unreachable("response timed out"),
        ErrorCode::HttpResponseIncomplete => unreachable("the response was incomplete"),
        ErrorCode::HttpRequestMethodInvalid => invalid("invalid method".to_string()),
        ErrorCode::HttpRequestUriInvalid => invalid("invalid URI".to_string()),
        ErrorCode::HttpRequestUriTooLong => invalid("URI too long".to_string()),
        ErrorCode::HttpRequestLengthRequired => invalid("content-length required".to_string()),
        ErrorCode::HttpRequestBodySize(n) => invalid(format!(
            "the body size does not match content-length (sent {})",
            n.map(|n| n.to_string()).unwrap_or_else(|| "?".to_string())
        )),
        ErrorCode::HttpRequestHeaderSectionSize(_) | ErrorCode::HttpRequestHeaderSize(_) => {
            invalid("request headers too large".to_string())
        }
        ErrorCode::InternalError(Some(message)) => HttpError::Protocol {
            authority,
            reason: format!("host error: {message}"),
        },
        other => HttpError::Protocol {
            authority,
            reason: format!("{other:?}"),
        },
    }
}

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header names in lower case, values decoded lossily as UTF-8.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The request line, e.g. `PUT http://127.0.0.1:41234/v1/functions/f`, for messages.
    pub request: String,
}

impl Response {
    /// True for 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Decodes the body as JSON; a bad body is a provider error naming the request.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ProviderError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ProviderError::Other(format!(
                "{}: HTTP {}: unexpected response body: {e}",
                self.request, self.status
            ))
        })
    }

    /// `Ok(self)` for 2xx, otherwise the matching provider error (see
    /// [`errors::from_response`]).
    pub fn error_for_status(self) -> Result<Self, ProviderError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(errors::from_response(&self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_parses_and_joins_paths() {
        let base = BaseUrl::parse("http://127.0.0.1:41234").unwrap();
        assert_eq!(base.host(), "127.0.0.1");
        assert_eq!(base.port(), Some(41234));
        assert_eq!(base.scheme(), Scheme::Http);
        let r = base.request(Method::Get, "/v1/functions");
        assert_eq!(r.authority, "127.0.0.1:41234");
        assert_eq!(r.path_and_query, "/v1/functions");

        let base = BaseUrl::parse("https://api.example.com/prefix/").unwrap();
        assert_eq!(base.port(), None);
        assert_eq!(base.to_string(), "https://api.example.com/prefix");
        let r = base.request(Method::Put, "v1/x?y=1");
        assert_eq!(r.path_and_query, "/prefix/v1/x?y=1");

        let base = BaseUrl::parse("http://[::1]:8080").unwrap();
        assert_eq!(base.host(), "[::1]");
        assert_eq!(base.port(), Some(8080));
    }

    #[test]
    fn base_url_rejects_bad_urls() {
        for url in [
            "127.0.0.1:80",
            "ftp://x",
            "http://",
            "http://:80",
            "http://h:port",
            "http://h:70000",
            "http://u@h",
            "http://h/?q",
            "http://[::1",
        ] {
            assert!(
                matches!(BaseUrl::parse(url), Err(HttpError::InvalidUrl { .. })),
                "{url}"
            );
        }
    }

    #[test]
    fn denial_message_names_host_and_default_port() {
        let r = Request::new(Method::Get, Scheme::Http, "127.0.0.2", "/");
        let e = HttpError::Denied {
            authority: r.shown_authority(),
        };
        assert_eq!(
            e.to_string(),
            "request to 127.0.0.2:80 was denied by the host (not in allowed-hosts)"
        );
        assert!(matches!(ProviderError::from(e), ProviderError::Other(_)));
        let r = Request::new(Method::Get, Scheme::Https, "example.invalid:8443", "/");
        assert_eq!(r.shown_authority(), "example.invalid:8443");
    }

    #[test]
    fn http_errors_map_to_provider_errors() {
        let unreachable = classify(&ErrorCode::ConnectionRefused, "127.0.0.1:9");
        assert_eq!(
            unreachable.to_string(),
            "request to 127.0.0.1:9 failed: connection refused"
        );
        assert!(matches!(
            ProviderError::from(unreachable),
            ProviderError::Transient(_)
        ));
        assert!(matches!(
            ProviderError::from(classify(&ErrorCode::HttpRequestUriInvalid, "h:1")),
            ProviderError::Invalid(_)
        ));
        assert!(matches!(
            classify(&ErrorCode::HttpRequestDenied, "h:1"),
            HttpError::Denied { .. }
        ));
    }

    #[test]
    fn response_buffer_never_outgrows_the_limit() {
        let mut body = Vec::new();
        grow(&mut body, 10, Some(100), 1000).unwrap();
        assert_eq!(body.capacity(), 100);

        let mut body = Vec::new();
        let mut len = 0;
        while len < 1000 {
            len = (len + 64).min(1000);
            grow(&mut body, len, None, 1000).unwrap();
            assert!(body.capacity() >= len && body.capacity() <= 1000);
            body.resize(len, 0);
        }
        assert_eq!(body.capacity(), 1000);
    }

    #[test]
    fn response_helpers() {
        let r = Response {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into())],
            body: br#"{"a":1}"#.to_vec(),
            request: "PUT http://h:1/x".into(),
        };
        assert!(r.is_success());
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let v: serde_json::Value = r.json().unwrap();
        assert_eq!(v["a"], 1);
        let bad = Response {
            status: 200,
            body: b"nope".to_vec(),
            ..r.clone()
        };
        let err = bad.json::<serde_json::Value>().unwrap_err();
        assert!(
            matches!(&err, ProviderError::Other(m) if m.starts_with("PUT http://h:1/x: HTTP 200: unexpected response body")),
            "{err:?}"
        );
        assert!(r.error_for_status().is_ok());
    }
}
