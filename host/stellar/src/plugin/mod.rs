//! The plugin host: loads provider adapters (wasm components implementing
//! `stellar:provider/provider@0.1.0`) into a wasmtime sandbox and calls them.
//!
//! Each call runs with a wall-clock deadline (epoch interruption lets a spinning guest yield,
//! a tokio timeout drops it), under a memory cap, with outgoing HTTP limited to the hosts the
//! plugin declared. A plugin that traps or times out is poisoned: later calls fail fast instead
//! of re-entering a broken instance. Timed benchmark requests never go through a plugin.

mod artifact;
mod bindings;
mod cache;
mod imports;
mod sandbox;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

pub use artifact::ArtifactHandle;
pub use bindings::{ArtifactKind, ColdStartScope, Endpoint, Protocol, ProviderError, ProviderInfo};
pub use cache::LoadPath;

use bindings::{Adapter, AdapterPre};
use sandbox::{HostPolicy, PluginState};

/// How often the engine's epoch advances; the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Resource limits applied to every plugin store.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Largest linear memory a plugin may grow to.
    pub memory_bytes: usize,
    /// Wall-clock deadline of one call (describe, deploy, ...).
    pub call_timeout: Duration,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            // A cloud deploy waits for the function to become active (the aws adapter polls
            // for up to its `wait-timeout-s`, 300 s by default, after role-propagation retries).
            call_timeout: Duration::from_secs(900),
        }
    }
}

/// Errors of the plugin host. Messages name the plugin and the call.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("reading plugin {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "plugin {source_label} could not be loaded: {reason}\n(a provider plugin must be a wasm component exporting stellar:provider/provider@0.1.0; rebuild it against this stellar's wit/)"
    )]
    Load {
        source_label: String,
        reason: String,
    },
    #[error("plugin `{plugin}`: {call} failed: {error}")]
    Provider {
        plugin: String,
        call: &'static str,
        error: ProviderErrorDisplay,
    },
    #[error(
        "plugin `{plugin}`: {call} tried to reach {host}, which the plugin did not declare (allowed-hosts: {allowed}); the request was refused"
    )]
    UndeclaredHost {
        plugin: String,
        call: &'static str,
        host: String,
        allowed: String,
    },
    #[error("plugin `{plugin}`: {call} crashed: {message}{stderr}")]
    Trap {
        plugin: String,
        call: &'static str,
        message: String,
        stderr: String,
    },
    #[error("plugin `{plugin}`: {call} did not finish within {after:?}; the plugin was stopped")]
    Timeout {
        plugin: String,
        call: &'static str,
        after: Duration,
    },
    #[error("plugin `{plugin}` is unusable after an earlier crash or timeout; start a new run")]
    Poisoned { plugin: String },
    #[error("plugin `{plugin}`: opening artifact {path}: {source}")]
    Artifact {
        plugin: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("starting the plugin engine: {0}")]
    Engine(String),
}

impl PluginError {
    /// The provider-side error, when the plugin returned one (not a crash or refusal).
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            PluginError::Provider { error, .. } => Some(&error.0),
            _ => None,
        }
    }

    /// Whether the provider said the resource does not exist (e.g. already removed).
    pub fn is_not_found(&self) -> bool {
        matches!(self.provider_error(), Some(ProviderError::NotFound(_)))
    }
}

/// Display wrapper for the WIT `provider-error` variant.
#[derive(Debug)]
pub struct ProviderErrorDisplay(pub ProviderError);

impl std::fmt::Display for ProviderErrorDisplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, msg) = match &self.0 {
            ProviderError::Unauthorized(m) => ("unauthorized", m),
            ProviderError::NotFound(m) => ("not found", m),
            ProviderError::Throttled(m) => ("throttled", m),
            ProviderError::Quota(m) => ("quota exceeded", m),
            ProviderError::Invalid(m) => ("invalid request", m),
            ProviderError::Transient(m) => ("transient error", m),
            ProviderError::Other(m) => ("error", m),
        };
        write!(f, "{kind}: {msg}")
    }
}

/// Where a plugin comes from.
#[derive(Debug, Clone)]
pub enum PluginSource {
    /// Built from this repository and embedded in the binary.
    Embedded {
        name: &'static str,
        wasm: &'static [u8],
    },
    /// A third-party component file (`--plugin FILE.wasm`).
    File(PathBuf),
}

impl PluginSource {
    fn label(&self) -> String {
        match self {
            PluginSource::Embedded { name, .. } => format!("`{name}` (embedded)"),
            PluginSource::File(p) => p.display().to_string(),
        }
    }
}

/// Owns the wasmtime engine, the linker and the epoch ticker.
pub struct PluginRuntime {
    engine: Engine,
    linker: Arc<Linker<PluginState>>,
    cache: cache::ComponentCache,
    limits: SandboxLimits,
    ticker: Option<std::thread::JoinHandle<()>>,
    stop_ticker: Arc<std::sync::atomic::AtomicBool>,
}

impl PluginRuntime {
    /// A runtime with the given limits, caching compiled components in the default cache dir.
    pub fn new(limits: SandboxLimits) -> Result<Self, PluginError> {
        Self::with_cache_dir(limits, cache::default_cache_dir())
    }

    /// Like [`PluginRuntime::new`] with an explicit cache directory (`None` = no cache).
    pub fn with_cache_dir(
        limits: SandboxLimits,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, PluginError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| PluginError::Engine(format!("{e:#}")))?;
        let mut linker: Linker<PluginState> = Linker::new(&engine);
        let link = |linker: &mut Linker<PluginState>| -> wasmtime::Result<()> {
            wasmtime_wasi::p2::add_to_linker_async(linker)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
            Adapter::add_to_linker::<_, wasmtime::component::HasSelf<_>>(linker, |s| s)?;
            Ok(())
        };
        link(&mut linker).map_err(|e| PluginError::Engine(format!("{e:#}")))?;

        let stop_ticker = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = Arc::clone(&stop_ticker);
            std::thread::Builder::new()
                .name("stellar-epoch".into())
                .spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| PluginError::Engine(format!("epoch ticker: {e}")))?
        };
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache: cache::ComponentCache::new(cache_dir),
            limits,
            ticker: Some(ticker),
            stop_ticker,
        })
    }

    /// Compiles (or loads from cache) a plugin and asks it to describe itself.
    pub async fn load(&self, source: PluginSource) -> Result<LoadedPlugin, PluginError> {
        let label = source.label();
        let started = Instant::now();
        let owned;
        let wasm: &[u8] = match &source {
            PluginSource::Embedded { wasm, .. } => wasm,
            PluginSource::File(path) => {
                owned = fs_err::read(path).map_err(|e| PluginError::Read {
                    path: path.clone(),
                    source: e,
                })?;
                &owned
            }
        };
        let load_err = |reason: String| PluginError::Load {
            source_label: label.clone(),
            reason,
        };
        let (component, path): (Component, LoadPath) = self
            .cache
            .load(&self.engine, wasm)
            .map_err(|e| load_err(format!("{e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_err(format!("{e:#}")))?;
        let pre = AdapterPre::new(pre).map_err(|e| load_err(format!("{e:#}")))?;
        let load_time = started.elapsed();

        // Describe in a throwaway instance that may not reach any host.
        let mut probe = PluginInstance::create(self, &pre, "(loading)", &[]).await?;
        let info = probe.describe().await?;
        if info.name.is_empty() {
            return Err(load_err("describe() returned an empty name".into()));
        }
        Ok(LoadedPlugin {
            source,
            pre,
            info,
            load_time,
            load_path: path,
        })
    }

    /// A fresh, sandboxed instance of `plugin`, allowed to reach its declared hosts plus
    /// `extra_hosts` (e.g. a user-configured endpoint override).
    pub async fn instantiate(
        &self,
        plugin: &LoadedPlugin,
        extra_hosts: &[String],
    ) -> Result<PluginInstance, PluginError> {
        let mut hosts = plugin.info.allowed_hosts.clone();
        hosts.extend(extra_hosts.iter().cloned());
        PluginInstance::create(self, &plugin.pre, &plugin.info.name, &hosts).await
    }
}

impl Drop for PluginRuntime {
    fn drop(&mut self) {
        self.stop_ticker
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

/// A compiled plugin and what it declared.
pub struct LoadedPlugin {
    source: PluginSource,
    pre: AdapterPre<PluginState>,
    info: ProviderInfo,
    load_time: Duration,
    load_path: LoadPath,
}

impl LoadedPlugin {
    pub fn info(&self) -> &ProviderInfo {
        &self.info
    }
    pub fn source(&self) -> &PluginSource {
        &self.source
    }
    /// Time to compile or deserialise and pre-link the component.
    pub fn load_time(&self) -> Duration {
        self.load_time
    }
    pub fn load_path(&self) -> LoadPath {
        self.load_path
    }
}

/// What the host asks a plugin to deploy; the artifact is a file the plugin streams from.
#[derive(Debug, Clone)]
pub struct DeployRequest {
    pub name: String,
    pub memory_mb: u32,
    pub timeout_s: u32,
    pub arm64: bool,
    pub env: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub instance_concurrency: u32,
    pub options: Vec<(String, String)>,
    pub artifact: Option<PathBuf>,
}

/// One live plugin instance with its own store; calls are serialised.
pub struct PluginInstance {
    name: String,
    store: Store<PluginState>,
    adapter: Option<Adapter>,
    call_timeout: Duration,
    allowed: Vec<String>,
}

impl PluginInstance {
    async fn create(
        runtime: &PluginRuntime,
        pre: &AdapterPre<PluginState>,
        name: &str,
        allowed_hosts: &[String],
    ) -> Result<Self, PluginError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(runtime.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .instances(64)
            .build();
        let state = PluginState::new(name, HostPolicy::new(name, allowed_hosts), limits);
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_async_yield_and_update(1);
        let adapter = pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| PluginError::Trap {
                plugin: name.to_owned(),
                call: "instantiate",
                message: format!("{e:#}"),
                stderr: String::new(),
            })?;
        Ok(Self {
            name: name.to_owned(),
            store,
            adapter: Some(adapter),
            call_timeout: runtime.limits.call_timeout,
            allowed: allowed_hosts.to_vec(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs one export call under the deadline and turns every failure into a [`PluginError`].
    async fn call<T>(
        &mut self,
        call: &'static str,
        f: impl AsyncFnOnce(
            &Adapter,
            &mut Store<PluginState>,
        ) -> wasmtime::Result<Result<T, ProviderError>>,
    ) -> Result<T, PluginError> {
        let Some(adapter) = self.adapter.take() else {
            return Err(PluginError::Poisoned {
                plugin: self.name.clone(),
            });
        };
        let denied = self.store.data().denied_log();
        let before = denied.lock().map(|d| d.len()).unwrap_or(0);
        let outcome = tokio::time::timeout(self.call_timeout, f(&adapter, &mut self.store)).await;
        let refused: Option<String> = denied
            .lock()
            .ok()
            .and_then(|d| d.get(before..).and_then(|new| new.first().cloned()));
        match outcome {
            Err(_) => Err(PluginError::Timeout {
                plugin: self.name.clone(),
                call,
                after: self.call_timeout,
            }),
            Ok(Err(trap)) => {
                let tail = self.store.data().stderr_tail();
                Err(PluginError::Trap {
                    plugin: self.name.clone(),
                    call,
                    message: format!("{trap:#}"),
                    stderr: if tail.is_empty() {
                        String::new()
                    } else {
                        format!("\nplugin stderr:\n{tail}")
                    },
                })
            }
            Ok(Ok(result)) => {
                self.adapter = Some(adapter);
                match (result, refused) {
                    (Err(_), Some(host)) => Err(PluginError::UndeclaredHost {
                        plugin: self.name.clone(),
                        call,
                        host,
                        allowed: if self.allowed.is_empty() {
                            "none".into()
                        } else {
                            self.allowed.join(", ")
                        },
                    }),
                    (Err(e), None) => Err(PluginError::Provider {
                        plugin: self.name.clone(),
                        call,
                        error: ProviderErrorDisplay(e),
                    }),
                    (Ok(v), _) => Ok(v),
                }
            }
        }
    }

    pub async fn describe(&mut self) -> Result<ProviderInfo, PluginError> {
        self.call("describe", async |a, s| {
            Ok(Ok(a.stellar_provider_provider().call_describe(s).await?))
        })
        .await
    }

    pub async fn configure(&mut self, settings: &[(String, String)]) -> Result<(), PluginError> {
        let settings = settings.to_vec();
        self.call("configure", async move |a, s| {
            a.stellar_provider_provider()
                .call_configure(s, &settings)
                .await
        })
        .await
    }

    pub async fn list_apis(&mut self) -> Result<Vec<Endpoint>, PluginError> {
        self.call("list-apis", async |a, s| {
            a.stellar_provider_provider().call_list_apis(s).await
        })
        .await
    }

    pub async fn deploy_function(&mut self, req: &DeployRequest) -> Result<Endpoint, PluginError> {
        let spec = self.spec(req)?;
        self.call("deploy-function", async move |a, s| {
            a.stellar_provider_provider()
                .call_deploy_function(s, &spec)
                .await
        })
        .await
    }

    pub async fn update_function(
        &mut self,
        id: &str,
        req: &DeployRequest,
    ) -> Result<Endpoint, PluginError> {
        let spec = self.spec(req)?;
        let id = id.to_owned();
        self.call("update-function", async move |a, s| {
            a.stellar_provider_provider()
                .call_update_function(s, &id, &spec)
                .await
        })
        .await
    }

    pub async fn remove_function(&mut self, id: &str) -> Result<(), PluginError> {
        let id = id.to_owned();
        self.call("remove-function", async move |a, s| {
            a.stellar_provider_provider()
                .call_remove_function(s, &id)
                .await
        })
        .await
    }

    fn spec(&mut self, req: &DeployRequest) -> Result<bindings::FunctionSpec, PluginError> {
        let artifact = match &req.artifact {
            None => None,
            Some(path) => Some(self.open_artifact(path)?),
        };
        Ok(bindings::FunctionSpec {
            name: req.name.clone(),
            memory_mb: req.memory_mb,
            timeout_s: req.timeout_s,
            arch: if req.arm64 {
                bindings::Arch::Arm64
            } else {
                bindings::Arch::X8664
            },
            env: req.env.clone(),
            tags: req.tags.clone(),
            instance_concurrency: req.instance_concurrency,
            options: req.options.clone(),
            artifact,
        })
    }

    fn open_artifact(
        &mut self,
        path: &Path,
    ) -> Result<wasmtime::component::Resource<ArtifactHandle>, PluginError> {
        let handle = ArtifactHandle::open(path).map_err(|e| PluginError::Artifact {
            plugin: self.name.clone(),
            path: path.to_owned(),
            source: e,
        })?;
        self.store
            .data_mut()
            .table
            .push(handle)
            .map_err(|e| PluginError::Artifact {
                plugin: self.name.clone(),
                path: path.to_owned(),
                source: std::io::Error::other(e.to_string()),
            })
    }
}
