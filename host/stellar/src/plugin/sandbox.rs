//! What a plugin may touch: the per-store state that backs its WASI imports, the outgoing-host
//! allow-list, the memory cap and the captured stderr.
//!
//! A plugin gets no preopened directories, no environment, no arguments, no sockets (WASI's
//! defaults) and no stdin; its stderr goes to a bounded in-memory pipe the host logs. The only
//! way out is wasi:http, and every request passes [`HostPolicy::send_request`].

use std::future::Future;
use std::sync::{Arc, Mutex};

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// Bytes of plugin stderr kept for error messages and logs.
const STDERR_CAPACITY: usize = 64 * 1024;

/// One allow-list entry: `host`, `host:port` or `*.suffix`.
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
            return host.ends_with(&format!(".{suffix}"));
        }
        match self.0.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && p.parse::<u16>().is_ok() => {
                h == host && port.map(|x| x.to_string()).as_deref() == Some(p)
            }
            _ => self.0 == host,
        }
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
            let dest = match port {
                Some(p) => format!("{host}:{p}"),
                None => host,
            };
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
    pub(crate) stderr: MemoryOutputPipe,
}

impl PluginState {
    pub(crate) fn new(plugin: &str, policy: HostPolicy, limits: StoreLimits) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPACITY);
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
        }
    }

    /// The tail of what the plugin wrote to stderr, for error messages.
    pub(crate) fn stderr_tail(&self) -> String {
        let bytes = self.stderr.contents();
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        let start = text
            .char_indices()
            .rev()
            .nth(2000)
            .map(|(i, _)| i)
            .unwrap_or(0);
        text[start..].to_owned()
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
    use super::HostPattern;

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

        let wildcard = HostPattern::new("*.amazonaws.com");
        assert!(wildcard.matches("lambda.us-east-1.amazonaws.com", None));
        assert!(wildcard.matches("LAMBDA.us-east-1.AmazonAWS.com", Some(443)));
        assert!(!wildcard.matches("amazonaws.com", None));
        assert!(!wildcard.matches("evilamazonaws.com", None));
        assert!(!wildcard.matches("amazonaws.com.evil.net", None));
    }
}
