//! `stellar-local`: the embedded `local` serverless provider, so all of stellar runs with no
//! cloud.
//!
//! It is a real scale-to-zero runtime on loopback. A *control API* (bearer-token guarded)
//! stores executables and deploys functions; a *gateway* routes `/<function>` to instances.
//! An instance is a child process of the function's executable (normally the
//! `stellar-measure-http` measurement function) on its own ephemeral port. A request that finds
//! no free instance spawns one, a real cold start; an instance idle for the function's
//! keep-alive is stopped, so later requests are cold again; a `max_instances` cap answers 429.
//! Platform-like behaviours, each behind a function option, give every cold-start label a
//! ground truth on one machine: `min_instances` always-ready instances started ahead of
//! requests, `instance_concurrency` above 1 with requests queued behind a starting instance,
//! `restart_on_crash` (a crashed process is replaced in the same slot) and the keep-alive
//! (idle retention). The gateway says how it served each request (`x-stellar-start-label`).
//! Every instance ever started is recorded ([`InstanceRecord`]) as ground truth for cold-start
//! labels.
//!
//! `stellar run` starts it in-process; `stellar local serve` runs it standalone.
//!
//! # Layout
//! - `api`: the JSON documents of the control API (public).
//! - `state`: functions, instance slots, records and the scheduling policy.
//! - `instance`: one supervisor task per child process (spawn, READY, keep-alive, stop).
//! - `control`, `gateway`, `server`: the two HTTP/1.1 servers.
//! - `artifacts`: the content-addressed executable store.
//!
//! # Instance protocol
//! The executable is started with a clean environment holding the function's `env` plus
//! `PORT=0`, `STELLAR_LISTEN_ADDR=127.0.0.1`, `STELLAR_EXIT_ON_STDIN_EOF=1`,
//! `STELLAR_PROVIDER=local`, `STELLAR_MEMORY_MB` and `STELLAR_FUNCTION_NAME`. It must print
//! `STELLAR-READY {"port":<port>,"instance_id":"<id>","pid":<pid>}` on stdout once listening;
//! spawn to that line is its init time. Its stdin stays open for its whole life; it must exit
//! when stdin closes, so instances die with the runtime even if the runtime is SIGKILLed.
//! `memory_mb` is informational (not enforced).
//!
//! # Examples
//! 1. Start the runtime. 2. Upload an executable. 3. Deploy it. 4. Invoke it.
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use stellar_local::{LocalRuntime, LocalRuntimeConfig};
//!
//! let runtime = LocalRuntime::start(LocalRuntimeConfig::new("/tmp/stellar-local")).await?;
//! // PUT {control_url}/v1/artifacts/<sha256> with the executable as body, then
//! // PUT {control_url}/v1/functions/hello with {"artifact_sha256":"<sha256>"},
//! // both with `Authorization: Bearer {token}`; then invoke {gateway_url}/hello.
//! let (_control, _gateway, _token) = (runtime.control_url(), runtime.gateway_url(), runtime.token());
//! runtime.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod api;
mod artifacts;
mod body;
mod control;
mod error;
mod gateway;
mod instance;
mod server;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use api::{
    ArtifactInfo, DEFAULT_INSTANCE_CONCURRENCY, DEFAULT_KEEP_ALIVE_MS, DEFAULT_MAX_INSTANCES,
    DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, ErrorBody, ErrorDetail, ErrorKind, FunctionInfo,
    FunctionList, FunctionSpec, InstanceList, InstanceOrigin, InstanceRecord, StartTruth,
    StopReason,
};
pub use artifacts::MAX_ARTIFACT_BYTES;
pub use error::LocalError;
pub use gateway::{COLD_START_HEADER, INIT_MS_HEADER, INSTANCE_ID_HEADER, START_LABEL_HEADER};

use crate::artifacts::ArtifactStore;
use crate::server::Role;
use crate::state::Shared;

/// Default longest wait for an instance's READY line before its cold start counts as failed.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long idle upstream connections to instances are kept in the pool.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// How to start a [`LocalRuntime`]. [`LocalRuntimeConfig::new`] fills in loopback, port 0 and a
/// random token.
#[derive(Debug, Clone)]
pub struct LocalRuntimeConfig {
    /// Artifacts are stored in `<work_dir>/artifacts/`; instances run with it as their cwd.
    pub work_dir: PathBuf,
    /// Where the control API listens (port 0 = ephemeral).
    pub control_addr: SocketAddr,
    /// Where the gateway listens (port 0 = ephemeral).
    pub gateway_addr: SocketAddr,
    /// Bearer token of the control API; `None` = 32 random hex characters.
    pub token: Option<String>,
    /// Longest wait for an instance's READY line.
    pub ready_timeout: Duration,
}

impl LocalRuntimeConfig {
    /// Both servers on `127.0.0.1:0`, a random token, [`DEFAULT_READY_TIMEOUT`].
    pub fn new(work_dir: impl Into<PathBuf>) -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            work_dir: work_dir.into(),
            control_addr: loopback,
            gateway_addr: loopback,
            token: None,
            ready_timeout: DEFAULT_READY_TIMEOUT,
        }
    }
}

/// A running local runtime. Dropping it (or [`LocalRuntime::shutdown`]) stops its servers and
/// every instance; no instance outlives it.
pub struct LocalRuntime {
    shared: Arc<Shared>,
    control_addr: SocketAddr,
    gateway_addr: SocketAddr,
    servers: Vec<JoinHandle<()>>,
    shut_down: bool,
}

impl std::fmt::Debug for LocalRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: leave it out.
        f.debug_struct("LocalRuntime")
            .field("control_addr", &self.control_addr)
            .field("gateway_addr", &self.gateway_addr)
            .field("work_dir", &self.shared.work_dir)
            .finish_non_exhaustive()
    }
}

fn valid_token(token: &str) -> bool {
    (1..=256).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, LocalError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| LocalError::Bind { addr, source })
}

impl LocalRuntime {
    /// Binds both servers and starts serving. Must be called within a tokio runtime with I/O
    /// and time enabled.
    pub async fn start(cfg: LocalRuntimeConfig) -> Result<Self, LocalError> {
        let token = match cfg.token {
            Some(token) if valid_token(&token) => token,
            Some(_) => return Err(LocalError::InvalidToken),
            None => hex::encode(rand::random::<[u8; 16]>()),
        };
        fs_err::create_dir_all(&cfg.work_dir).map_err(LocalError::WorkDir)?;
        let artifacts =
            ArtifactStore::open(cfg.work_dir.join("artifacts")).map_err(LocalError::WorkDir)?;
        let control = bind(cfg.control_addr).await?;
        let gateway = bind(cfg.gateway_addr).await?;
        let local_addr = |listener: &TcpListener, addr| {
            listener
                .local_addr()
                .map_err(|source| LocalError::Bind { addr, source })
        };
        let control_addr = local_addr(&control, cfg.control_addr)?;
        let gateway_addr = local_addr(&gateway, cfg.gateway_addr)?;

        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build(connector);
        let shared = Arc::new(Shared::new(
            token,
            format!("http://{gateway_addr}"),
            cfg.work_dir,
            artifacts,
            cfg.ready_timeout,
            client,
        ));
        let servers = vec![
            tokio::spawn(server::accept_loop(
                control,
                Arc::clone(&shared),
                Role::Control,
            )),
            tokio::spawn(server::accept_loop(
                gateway,
                Arc::clone(&shared),
                Role::Gateway,
            )),
        ];
        tracing::info!(%control_addr, %gateway_addr, "local runtime started");
        Ok(Self {
            shared,
            control_addr,
            gateway_addr,
            servers,
            shut_down: false,
        })
    }

    /// Base URL of the control API, `http://127.0.0.1:<port>`.
    pub fn control_url(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// Base URL of the gateway; function `f` is invoked at `<gateway_url>/f`.
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url.clone()
    }

    /// Bearer token of the control API.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The work directory (artifacts live in its `artifacts/` subdirectory).
    pub fn work_dir(&self) -> &Path {
        &self.shared.work_dir
    }

    /// Every deployed function, ordered by name (as `GET /v1/functions`).
    pub fn functions(&self) -> Vec<FunctionInfo> {
        self.shared.functions()
    }

    /// Every instance ever started under `name`, in spawn order (as
    /// `GET /v1/functions/<name>/instances`); `None` if `name` was never deployed.
    pub fn instances(&self, name: &str) -> Option<Vec<InstanceRecord>> {
        self.shared.instances(name)
    }

    /// Stops both servers, then stops every instance and waits until each process has been
    /// killed and reaped.
    pub async fn shutdown(mut self) {
        for server in &self.servers {
            server.abort();
        }
        for server in self.servers.drain(..) {
            // Aborted on purpose: the only error is the cancellation.
            let _ = server.await;
        }
        for supervisor in self.shared.begin_shutdown() {
            if let Err(e) = supervisor.await {
                tracing::warn!("instance supervisor failed: {e}");
            }
        }
        self.shut_down = true;
        tracing::info!("local runtime stopped");
    }
}

impl Drop for LocalRuntime {
    /// Without [`LocalRuntime::shutdown`]: stop the servers and tell every supervisor to kill
    /// its process (they finish on the tokio runtime). If the tokio runtime is gone too, each
    /// process is still killed by `kill_on_drop`, and in any case exits when its stdin closes.
    fn drop(&mut self) {
        if self.shut_down {
            return;
        }
        for server in &self.servers {
            server.abort();
        }
        drop(self.shared.begin_shutdown());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_visible_ascii() {
        assert!(valid_token("abc-123_XYZ"));
        assert!(!valid_token(""));
        assert!(!valid_token("has space"));
        assert!(!valid_token(&"x".repeat(257)));
    }

    #[tokio::test]
    async fn starts_on_ephemeral_loopback_ports_with_a_random_token() {
        let dir = tempfile::tempdir().unwrap();
        let rt = LocalRuntime::start(LocalRuntimeConfig::new(dir.path()))
            .await
            .unwrap();
        assert!(rt.control_url().starts_with("http://127.0.0.1:"));
        assert!(rt.gateway_url().starts_with("http://127.0.0.1:"));
        assert_ne!(rt.control_url(), rt.gateway_url());
        assert_eq!(rt.token().len(), 32);
        assert!(rt.token().bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(dir.path().join("artifacts").is_dir());
        assert!(!format!("{rt:?}").contains(rt.token()));
        rt.shutdown().await;
    }

    #[tokio::test]
    async fn rejects_a_bad_token() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = LocalRuntimeConfig::new(dir.path());
        cfg.token = Some(String::new());
        assert!(matches!(
            LocalRuntime::start(cfg).await,
            Err(LocalError::InvalidToken)
        ));
    }
}
