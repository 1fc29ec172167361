//! The plugin host: loads provider adapters (wasm components implementing
//! `stellar:provider/provider@0.2.0`) into a wasmtime sandbox and calls them.
//!
//! Each call runs with a wall-clock deadline (a few seconds for `describe` and `configure`,
//! long enough for a cloud deploy otherwise) and a guest-CPU budget (time in guest code only,
//! enforced on epoch ticks, see [`budget`]), under a memory cap, with outgoing HTTP limited to the
//! hosts the plugin declared and its log volume capped. Whatever it returns is checked: its
//! declaration at load ([`declaration`]), its endpoints' strings here. A plugin that traps or
//! times out is poisoned: later calls fail fast instead of re-entering a broken instance.
//! Timed benchmark requests never go through a plugin.

mod artifact;
mod bindings;
pub mod budget;
mod cache;
pub mod declaration;
mod imports;
pub mod installed;
mod sandbox;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

pub use artifact::ArtifactHandle;
pub use bindings::{
    ArtifactKind, ColdStartScope, Credential, CredentialKind, Endpoint, OptionDecl, OptionType,
    Protocol, ProviderError, ProviderInfo,
};
pub use cache::LoadPath;

use bindings::{Adapter, AdapterPre};
use budget::{CpuBudgetExceeded, CpuMeter, LogBudget, shown};
use sandbox::{HostPolicy, PluginState};

/// How often the engine's epoch advances; the granularity of deadlines and CPU metering.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The export every adapter of this contract version provides.
const PROVIDER_EXPORT: &str = "stellar:provider/provider@0.2.0";
/// Longest endpoint URL an adapter may return.
const MAX_URL: usize = 2048;
/// Longest endpoint id, meta key or meta value an adapter may return.
const MAX_ENDPOINT_FIELD: usize = 1024;
/// Most meta entries per endpoint, and most endpoints per `list-apis`.
const MAX_ENDPOINT_ITEMS: usize = 10_000;

/// Resource limits applied to every plugin store.
#[derive(Debug, Clone)]
pub struct SandboxLimits {
    /// Largest linear memory a plugin may grow to.
    pub memory_bytes: usize,
    /// Wall-clock deadline of `list-apis`, `deploy-function`, `update-function` and
    /// `remove-function`.
    pub call_timeout: Duration,
    /// Wall-clock deadline of `describe` and `configure` (no network, just declarations).
    pub setup_timeout: Duration,
    /// Guest CPU time one call may use, whatever its wall-clock deadline.
    pub cpu_budget: Duration,
    /// Bytes of `host-log` messages one plugin may write over a run.
    pub log_bytes: usize,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 128 << 20,
            // A cloud deploy waits for the function to become active (the aws adapter polls
            // for up to its `wait-timeout-s`, 300 s by default, after role-propagation retries).
            call_timeout: Duration::from_secs(900),
            setup_timeout: Duration::from_secs(5),
            // Hashing and base64-encoding a 50 MB zip takes well under a second of guest CPU.
            cpu_budget: Duration::from_secs(10),
            log_bytes: 1 << 20,
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
        "plugin {source_label} could not be loaded: {reason}\n(a provider plugin must be a wasm component exporting stellar:provider/provider@0.2.0; rebuild it against this stellar's wit/)"
    )]
    Load {
        source_label: String,
        reason: String,
    },
    #[error(
        "plugin {source_label} was built for the plugin contract {found}; this stellar loads \
         stellar:provider@0.2.0 adapters only (0.2.0 added declared credentials, endpoint \
         hosts, artifact kinds and typed options; rebuild the adapter against this stellar's \
         wit/provider.wit)"
    )]
    OldContract { source_label: String, found: String },
    #[error("plugin {source_label} declares itself wrongly: {reason}")]
    BadDeclaration {
        source_label: String,
        reason: String,
    },
    #[error("plugin `{plugin}`: {call} returned {problem}")]
    BadReply {
        plugin: String,
        call: &'static str,
        problem: String,
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
    #[error(
        "plugin `{plugin}`: {call} used more than {budget:?} of CPU time; the plugin was stopped \
         (raise the budget with --plugin-cpu-budget if the adapter really needs more)"
    )]
    CpuBudget {
        plugin: String,
        call: &'static str,
        budget: Duration,
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
        write!(f, "{kind}: {}", shown(msg))
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
    /// How messages name it: `` `aws` (embedded) `` or the file's path.
    pub fn label(&self) -> String {
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
        check_contract_version(&self.engine, &component, &label)?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| load_err(format!("{e:#}")))?;
        let pre = AdapterPre::new(pre).map_err(|e| load_err(format!("{e:#}")))?;
        let load_time = started.elapsed();

        // Describe in a throwaway instance that may not reach any host.
        let log_budget = LogBudget::new(&label, self.limits.log_bytes);
        let mut probe = PluginInstance::create(self, &pre, &label, &[], log_budget.clone()).await?;
        let info = probe.describe().await?;
        declaration::validate(&info).map_err(|e| PluginError::BadDeclaration {
            source_label: label.clone(),
            reason: e.to_string(),
        })?;
        Ok(LoadedPlugin {
            source,
            pre,
            info,
            load_time,
            load_path: path,
            log_budget,
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
        PluginInstance::create(
            self,
            &plugin.pre,
            &plugin.info.name,
            &hosts,
            plugin.log_budget.clone(),
        )
        .await
    }
}

/// Refuses a component that is not a 0.2.0 adapter before linking it, naming the contract
/// version it was built for when it is an older stellar adapter.
fn check_contract_version(
    engine: &Engine,
    component: &Component,
    label: &str,
) -> Result<(), PluginError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_owned()).collect();
    if exports.iter().any(|n| n == PROVIDER_EXPORT) {
        return Ok(());
    }
    if let Some(old) = exports
        .iter()
        .find(|n| n.starts_with("stellar:provider/provider@"))
    {
        let version = old.rsplit('@').next().unwrap_or(old);
        return Err(PluginError::OldContract {
            source_label: label.to_owned(),
            found: format!("stellar:provider@{}", shown(version)),
        });
    }
    Err(PluginError::Load {
        source_label: label.to_owned(),
        reason: format!(
            "it does not export {PROVIDER_EXPORT} (its exports: {})",
            shown(&if exports.is_empty() {
                "none".to_owned()
            } else {
                exports.join(", ")
            })
        ),
    })
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
    log_budget: LogBudget,
}

impl Drop for LoadedPlugin {
    fn drop(&mut self) {
        self.log_budget.report_dropped();
    }
}

impl LoadedPlugin {
    pub fn info(&self) -> &ProviderInfo {
        &self.info
    }
    pub fn source(&self) -> &PluginSource {
        &self.source
    }
    /// Whether it was built from this repository (and gets its declared credentials).
    pub fn is_first_party(&self) -> bool {
        matches!(self.source, PluginSource::Embedded { .. })
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
    /// The built artifact and its kind (`None` for adapters that declare `none`).
    pub artifact: Option<(PathBuf, ArtifactKind)>,
}

/// One live plugin instance with its own store; calls are serialised.
pub struct PluginInstance {
    name: String,
    store: Store<PluginState>,
    adapter: Option<Adapter>,
    call_timeout: Duration,
    setup_timeout: Duration,
    allowed: Vec<String>,
}

impl PluginInstance {
    async fn create(
        runtime: &PluginRuntime,
        pre: &AdapterPre<PluginState>,
        name: &str,
        allowed_hosts: &[String],
        log_budget: LogBudget,
    ) -> Result<Self, PluginError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(runtime.limits.memory_bytes)
            .trap_on_grow_failure(true)
            .instances(64)
            .build();
        let state = PluginState::new(
            name,
            HostPolicy::new(name, allowed_hosts),
            limits,
            CpuMeter::new(runtime.limits.cpu_budget),
            log_budget,
        );
        let mut store = Store::new(&runtime.engine, state);
        store.limiter(|s| &mut s.limits);
        // Guest time is the time between entering guest code and leaving it for the host; on
        // every epoch tick running guest code checks it against the budget, then yields to
        // tokio so the wall-clock deadline can fire too.
        store.call_hook(|mut ctx, hook| {
            let now = Instant::now();
            let cpu = &mut ctx.data_mut().cpu;
            if hook.entering_host() {
                cpu.leave_guest(now);
            } else {
                cpu.enter_guest(now);
            }
            Ok(())
        });
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            ctx.data_mut().cpu.on_tick(Instant::now())?;
            Ok(wasmtime::UpdateDeadline::Yield(1))
        });
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
            setup_timeout: runtime.limits.setup_timeout,
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
        let deadline = match call {
            "describe" | "configure" => self.setup_timeout,
            _ => self.call_timeout,
        };
        self.store.data_mut().cpu.start_call();
        self.store.set_epoch_deadline(1);
        let outcome = tokio::time::timeout(deadline, f(&adapter, &mut self.store)).await;
        tracing::debug!(target: "stellar::plugin", plugin = %self.name, call,
            cpu_ms = self.store.data().cpu.charged(Instant::now()).as_secs_f64() * 1e3,
            "plugin call finished");
        let refused: Option<String> = denied
            .lock()
            .ok()
            .and_then(|d| d.get(before..).and_then(|new| new.first().cloned()));
        match outcome {
            Err(_) => Err(PluginError::Timeout {
                plugin: self.name.clone(),
                call,
                after: deadline,
            }),
            Ok(Err(trap)) if trap.downcast_ref::<CpuBudgetExceeded>().is_some() => {
                Err(PluginError::CpuBudget {
                    plugin: self.name.clone(),
                    call,
                    budget: self.store.data().cpu.budget(),
                })
            }
            Ok(Err(trap)) => {
                let tail = self.store.data().stderr_tail();
                Err(PluginError::Trap {
                    plugin: self.name.clone(),
                    call,
                    message: shown(&format!("{trap:#}")),
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

    /// Hands the adapter its settings and the credentials granted to it.
    pub async fn configure(
        &mut self,
        settings: &[(String, String)],
        credentials: &[Credential],
    ) -> Result<(), PluginError> {
        let settings = settings.to_vec();
        let credentials = credentials.to_vec();
        self.call("configure", async move |a, s| {
            a.stellar_provider_provider()
                .call_configure(s, &settings, &credentials)
                .await
        })
        .await
    }

    pub async fn list_apis(&mut self) -> Result<Vec<Endpoint>, PluginError> {
        let endpoints = self
            .call("list-apis", async |a, s| {
                a.stellar_provider_provider().call_list_apis(s).await
            })
            .await?;
        if endpoints.len() > MAX_ENDPOINT_ITEMS {
            return Err(self.bad_reply(
                "list-apis",
                format!(
                    "{} endpoints (at most {MAX_ENDPOINT_ITEMS})",
                    endpoints.len()
                ),
            ));
        }
        for endpoint in &endpoints {
            self.check_endpoint("list-apis", endpoint)?;
        }
        Ok(endpoints)
    }

    pub async fn deploy_function(&mut self, req: &DeployRequest) -> Result<Endpoint, PluginError> {
        let spec = self.spec(req)?;
        let endpoint = self
            .call("deploy-function", async move |a, s| {
                a.stellar_provider_provider()
                    .call_deploy_function(s, &spec)
                    .await
            })
            .await?;
        self.check_endpoint("deploy-function", &endpoint)?;
        Ok(endpoint)
    }

    fn bad_reply(&self, call: &'static str, problem: String) -> PluginError {
        PluginError::BadReply {
            plugin: self.name.clone(),
            call,
            problem,
        }
    }

    /// Bounds every string of an endpoint the adapter returned.
    fn check_endpoint(&self, call: &'static str, endpoint: &Endpoint) -> Result<(), PluginError> {
        let too_long = |what: &str, value: &str, max: usize| {
            (value.len() > max).then(|| {
                self.bad_reply(
                    call,
                    format!(
                        "an endpoint {what} of {} bytes (at most {max}): {}",
                        value.len(),
                        budget::cut(value, 200)
                    ),
                )
            })
        };
        if let Some(e) = too_long("url", &endpoint.url, MAX_URL)
            .or_else(|| too_long("id", &endpoint.id, MAX_ENDPOINT_FIELD))
        {
            return Err(e);
        }
        if endpoint.id.is_empty() || endpoint.id.chars().any(char::is_control) {
            return Err(self.bad_reply(call, format!("the endpoint id {:?}", endpoint.id)));
        }
        if endpoint.meta.len() > MAX_ENDPOINT_ITEMS {
            return Err(self.bad_reply(
                call,
                format!(
                    "{} meta entries (at most {MAX_ENDPOINT_ITEMS})",
                    endpoint.meta.len()
                ),
            ));
        }
        for (key, value) in &endpoint.meta {
            if let Some(e) = too_long("meta key", key, MAX_ENDPOINT_FIELD)
                .or_else(|| too_long("meta value", value, MAX_ENDPOINT_FIELD))
            {
                return Err(e);
            }
        }
        Ok(())
    }

    pub async fn update_function(
        &mut self,
        id: &str,
        req: &DeployRequest,
    ) -> Result<Endpoint, PluginError> {
        let spec = self.spec(req)?;
        let id = id.to_owned();
        let endpoint = self
            .call("update-function", async move |a, s| {
                a.stellar_provider_provider()
                    .call_update_function(s, &id, &spec)
                    .await
            })
            .await?;
        self.check_endpoint("update-function", &endpoint)?;
        Ok(endpoint)
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
            Some((path, kind)) => Some(self.open_artifact(path, *kind)?),
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
        kind: ArtifactKind,
    ) -> Result<wasmtime::component::Resource<ArtifactHandle>, PluginError> {
        let handle = ArtifactHandle::open(path, kind).map_err(|e| PluginError::Artifact {
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
