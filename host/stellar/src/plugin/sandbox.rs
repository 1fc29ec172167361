//! What a plugin may touch: the per-store state that backs its WASI imports, the outgoing-host
//! allow-list, the memory cap and the captured stderr.
//!
//! A plugin gets no preopened directories, no environment, no arguments, no sockets (WASI's
//! defaults) and no stdin; its stderr goes to a bounded in-memory pipe ([`CappedOutput`]) whose
//! tail the host shows when the plugin crashes. The only way out is wasi:http, and every
//! request passes [`HostPolicy::send_request`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::budget::{CpuMeter, LogBudget};

/// Bytes of plugin stderr kept (the most recent ones) for error messages.
const STDERR_CAPACITY: usize = 64 * 1024;

/// One host pattern: `host`, `host:port`, or `*.suffix` where `*` labels inside the suffix
/// match exactly one label (`*.lambda-url.*.on.aws`). The leading `*.` matches one or more
/// labels. Used for the allow-list of outgoing plugin requests and for endpoint hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPattern(String);

impl HostPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        Self(pattern.trim().to_ascii_lowercase())
    }

    /// Whether a request to `host` (and `port`, if the URI had one) is allowed by this entry.
    pub(crate) fn matches(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Some(suffix) = self.0.strip_prefix("*.") {
            let wanted: Vec<&str> = suffix.split('.').collect();
            let labels: Vec<&str> = host.split('.').collect();
            if labels.len() <= wanted.len() || labels.iter().any(|l| l.is_empty()) {
                return false;
            }
            let tail = &labels[labels.len() - wanted.len()..];
            return wanted.iter().zip(tail).all(|(w, l)| *w == "*" || w == l);
        }
        match self.0.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => {
                h == host && port.map(|x| x.to_string()).as_deref() == Some(p)
            }
            _ => self.0 == host,
        }
    }
}

/// Whether any of `patterns` admits `host` / `port`.
pub(crate) fn any_matches(patterns: &[String], host: &str, port: Option<u16>) -> bool {
    patterns
        .iter()
        .any(|p| HostPattern::new(p).matches(host, port))
}

/// A plugin's stderr: accepts every write (a plugin never fails or traps because its stderr
/// is full), keeps the last [`STDERR_CAPACITY`] bytes and counts the rest.
#[derive(Debug, Clone, Default)]
pub(crate) struct CappedOutput {
    inner: Arc<Mutex<CappedInner>>,
}

#[derive(Debug, Default)]
struct CappedInner {
    tail: VecDeque<u8>,
    total: u64,
}

impl CappedOutput {
    fn push(&self, bytes: &[u8]) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        inner.total += bytes.len() as u64;
        let keep = &bytes[bytes.len().saturating_sub(STDERR_CAPACITY)..];
        inner.tail.extend(keep);
        let excess = inner.tail.len().saturating_sub(STDERR_CAPACITY);
        inner.tail.drain(..excess);
    }

    /// The kept tail and how many earlier bytes were dropped.
    pub(crate) fn tail(&self) -> (Vec<u8>, u64) {
        self.inner
            .lock()
            .map(|i| {
                let kept: Vec<u8> = i.tail.iter().copied().collect();
                let dropped = i.total - kept.len() as u64;
                (kept, dropped)
            })
            .unwrap_or_default()
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(STDERR_CAPACITY)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// Outgoing-request policy of one plugin instance.
pub(crate) struct HostPolicy {
    allowed: Vec<HostPattern>,
    /// Every refused destination, so the host can name it in the error it reports.
    denied: Arc<Mutex<Vec<String>>>,
    plugin: String,
}

impl HostPolicy {
    pub(crate) fn new(plugin: &str, allowed: &[String]) -> Self {
        Self {
            allowed: allowed.iter().map(|h| HostPattern::new(h)).collect(),
            denied: Arc::default(),
            plugin: plugin.to_owned(),
        }
    }

    pub(crate) fn denied_log(&self) -> Arc<Mutex<Vec<String>>> {
        Arc::clone(&self.denied)
    }
}

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;

impl WasiHttpHooks for HostPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: IoFuture,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (http::Response<wasmtime_wasi_http::WasiBody>, IoFuture),
                    wasmtime_wasi_http::Error,
                >,
            > + Send,
    > {
        drop(fut);
        let host = request.uri().host().unwrap_or_default().to_owned();
        let port = request.uri().port_u16();
        if !self.allowed.iter().any(|p| p.matches(&host, port)) {
            let dest = super::budget::cut(
                &match port {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                },
                256,
            );
            tracing::warn!(target: "stellar::plugin", plugin = %self.plugin, destination = %dest,
                "refused an outgoing request to an undeclared host");
            if let Ok(mut denied) = self.denied.lock() {
                denied.push(dest);
            }
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        tracing::debug!(target: "stellar::plugin", plugin = %self.plugin, method = %request.method(),
            uri = %request.uri(), "plugin request");
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as IoFuture,
            ))
        })
    }
}

/// The data of one plugin store.
pub(crate) struct PluginState {
    pub(crate) plugin: String,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    policy: HostPolicy,
    pub(crate) limits: StoreLimits,
    pub(crate) stderr: CappedOutput,
    pub(crate) cpu: CpuMeter,
    pub(crate) log_budget: LogBudget,
}

impl PluginState {
    pub(crate) fn new(
        plugin: &str,
        policy: HostPolicy,
        limits: StoreLimits,
        cpu: CpuMeter,
        log_budget: LogBudget,
    ) -> Self {
        let stderr = CappedOutput::default();
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_blocking_current_thread(false)
            .build();
        Self {
            plugin: plugin.to_owned(),
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            policy,
            limits,
            stderr,
            cpu,
            log_budget,
        }
    }

    /// The tail of what the plugin wrote to stderr (at most 2000 characters), for error
    /// messages, with a note of how much came before it.
    pub(crate) fn stderr_tail(&self) -> String {
        let (bytes, mut dropped) = self.stderr.tail();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let start = text
            .char_indices()
            .rev()
            .nth(2000)
            .map(|(i, _)| i)
            .unwrap_or(0);
        dropped += start as u64;
        if dropped > 0 && !text.is_empty() {
            format!(
                "[{dropped} earlier bytes of stderr dropped]\n{}",
                &text[start..]
            )
        } else {
            text[start..].to_owned()
        }
    }

    pub(crate) fn denied_log(&self) -> Arc<Mutex<Vec<String>>> {
        self.policy.denied_log()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_patterns() {
        let any_port = HostPattern::new("127.0.0.1");
        assert!(any_port.matches("127.0.0.1", Some(8080)));
        assert!(any_port.matches("127.0.0.1", None));
        assert!(!any_port.matches("127.0.0.2", Some(8080)));
        assert!(!any_port.matches("localhost", Some(8080)));

        let with_port = HostPattern::new("127.0.0.1:5000");
        assert!(with_port.matches("127.0.0.1", Some(5000)));
        assert!(!with_port.matches("127.0.0.1", Some(5001)));
        assert!(!with_port.matches("127.0.0.1", None));

        let lambda_url = HostPattern::new("*.lambda-url.*.on.aws");
        assert!(lambda_url.matches("abc123.lambda-url.eu-west-1.on.aws", Some(443)));
        assert!(!lambda_url.matches("lambda-url.eu-west-1.on.aws", None));
        assert!(!lambda_url.matches("abc.lambda-url.on.aws", None));
        assert!(!lambda_url.matches("abc.evil.eu-west-1.on.aws", None));
        assert!(!lambda_url.matches("abc.lambda-url.eu-west-1.on.aws.evil.net", None));

        let wildcard = HostPattern::new("*.amazonaws.com");
        assert!(wildcard.matches("lambda.us-east-1.amazonaws.com", None));
        assert!(wildcard.matches("LAMBDA.us-east-1.AmazonAWS.com", Some(443)));
        assert!(!wildcard.matches("amazonaws.com", None));
        assert!(!wildcard.matches("evilamazonaws.com", None));
        assert!(!wildcard.matches("amazonaws.com.evil.net", None));
        assert!(!wildcard.matches(".amazonaws.com", None));
    }

    #[test]
    fn stderr_keeps_the_tail_and_counts_the_rest() {
        let out = CappedOutput::default();
        out.push(&vec![b'a'; STDERR_CAPACITY]);
        out.push(b"the end");
        let (kept, dropped) = out.tail();
        assert_eq!(kept.len(), STDERR_CAPACITY);
        assert!(kept.ends_with(b"the end"));
        assert_eq!(dropped, 7);
        out.push(&vec![b'b'; 3 * STDERR_CAPACITY]);
        let (kept, dropped) = out.tail();
        assert_eq!(kept.len(), STDERR_CAPACITY);
        assert_eq!(dropped, 3 * STDERR_CAPACITY as u64 + 7);
    }
}
