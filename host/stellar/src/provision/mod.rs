//! Provisioning: turns a plan into endpoints the driver can hit, and takes them down again.
//!
//! For a named provider the adapter plugin deploys one function per sub-experiment and
//! parallelism index; every creation is journaled before it happens, and every endpoint it
//! returns must be on a host it declared (or one the user configured) before the driver may
//! send it a single request. For STeLLAR's external mode (a URL as provider) nothing is
//! deployed. When the adapter's companion is the embedded local runtime, it is started
//! in-process first, and its instance records are collected before teardown as ground truth.

pub mod adapter;

use std::path::Path;

use anyhow::Context;
use stellar_config::{Architecture, Plan, ProviderKind};
use stellar_local::{InstanceRecord, LocalRuntime};

use crate::drive::Target;
use crate::embedded::Companion;
use crate::journal::{Journal, JournalEvent};
use crate::package::FunctionArtifacts;
use crate::plugin::declaration::endpoint_allowed;
use crate::plugin::{DeployRequest, LoadedPlugin, PluginInstance, PluginRuntime};
pub use adapter::AdapterOptions;

/// A deployed (or external) endpoint of one sub-experiment.
#[derive(Debug, Clone)]
pub struct DeployedEndpoint {
    pub function: Option<String>,
    pub url: String,
    pub target: Target,
}

/// Everything provisioned for a run; call [`Provisioned::teardown`] at the end.
pub struct Provisioned {
    /// Per sub-experiment (plan order), per parallelism index.
    pub endpoints: Vec<Vec<DeployedEndpoint>>,
    /// Whether the endpoints run stellar's measurement function.
    pub measurement_function: bool,
    provider: String,
    plugin: Option<PluginInstance>,
    local: Option<LocalRuntime>,
    journal: Option<Journal>,
    /// The run's scratch directory (artifacts, the local runtime's files); removed when
    /// dropped, also when provisioning fails before anything is deployed.
    work_dir: Option<tempfile::TempDir>,
    _runtime: Option<PluginRuntime>,
}

impl Provisioned {
    pub async fn new(
        plan: &Plan,
        run_id: &str,
        run_dir: &Path,
        options: &AdapterOptions,
    ) -> anyhow::Result<Self> {
        match &plan.provider {
            ProviderKind::External { url } => {
                let target = Target::parse(url).map_err(anyhow::Error::msg)?;
                let endpoints = plan
                    .sub_experiments
                    .iter()
                    .map(|sub| {
                        (0..sub.parallelism)
                            .map(|_| DeployedEndpoint {
                                function: None,
                                url: url.clone(),
                                target: target.clone(),
                            })
                            .collect()
                    })
                    .collect();
                Ok(Self {
                    endpoints,
                    measurement_function: false,
                    provider: "external".into(),
                    plugin: None,
                    local: None,
                    journal: None,
                    work_dir: None,
                    _runtime: None,
                })
            }
            ProviderKind::Named(name) => {
                Self::deploy_named(plan, name, run_id, run_dir, options, None).await
            }
        }
    }

    /// [`Provisioned::new`] for a prepared run whose functions must outlive this process:
    /// with `running` (control URL, token), an adapter whose companion is the local runtime
    /// deploys into that already running `stellar local serve` instead of starting one.
    pub async fn new_detached(
        plan: &Plan,
        run_id: &str,
        run_dir: &Path,
        options: &AdapterOptions,
        running: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        match &plan.provider {
            ProviderKind::Named(name) => {
                Self::deploy_named(plan, name, run_id, run_dir, options, running).await
            }
            ProviderKind::External { .. } => Self::new(plan, run_id, run_dir, options).await,
        }
    }

    async fn deploy_named(
        plan: &Plan,
        provider: &str,
        run_id: &str,
        run_dir: &Path,
        options: &AdapterOptions,
        running: Option<(String, String)>,
    ) -> anyhow::Result<Self> {
        // Per-run scratch directory for the local runtime and the function artifacts, inside
        // the run directory so a killed run leaves nothing elsewhere (`--resume` and
        // `cleanup` remove it: see [`remove_stale_work_dirs`]).
        let work_dir = tempfile::Builder::new()
            .prefix(WORK_DIR_PREFIX)
            .tempdir_in(run_dir)
            .context("creating the run's temporary directory")?;
        let adapter::OpenAdapter {
            runtime,
            plugin,
            mut instance,
            companion,
            local,
            extra_endpoint_hosts,
        } = match running {
            None => adapter::open(plan, provider, options, work_dir.path()).await?,
            Some((control_url, token)) => {
                adapter::open_settings(
                    &plan.settings.provider_settings,
                    &plan.source_path,
                    provider,
                    options,
                    adapter::Companionship::Running { control_url, token },
                )
                .await?
            }
        };
        let mut me = Self {
            endpoints: Vec::new(),
            measurement_function: true,
            provider: provider.to_owned(),
            plugin: None,
            local,
            journal: None,
            work_dir: None,
            _runtime: None,
        };
        let result = async {
            let artifacts =
                FunctionArtifacts::prepare(plan, &plugin.info().artifacts, work_dir.path())?;
            me.measurement_function = artifacts.is_measurement_function();
            let mut journal = Journal::create(&run_dir.join("resources.jsonl"))?;
            let endpoints = deploy_all(
                plan,
                &Deployer {
                    plugin: &plugin,
                    companion,
                    extra_endpoint_hosts: &extra_endpoint_hosts,
                    artifacts: &artifacts,
                    provider,
                    run_id,
                },
                &mut instance,
                &mut journal,
            )
            .await;
            me.journal = Some(journal);
            endpoints
        }
        .await;
        me.work_dir = Some(work_dir);
        me.plugin = Some(instance);
        me._runtime = Some(runtime);
        match result {
            Ok(endpoints) => {
                me.endpoints = endpoints;
                Ok(me)
            }
            Err(e) => {
                me.teardown().await;
                Err(e)
            }
        }
    }

    /// Extra query parameters for every timed request: the fault-injection knobs of a test
    /// (`Stellar.Local.FaultQuery`), only when the functions run in the embedded local runtime.
    pub fn fault_query<'p>(&self, plan: &'p Plan) -> Option<&'p str> {
        self.local.as_ref()?;
        plan.settings.local.fault_query.as_deref()
    }

    /// Every instance the local runtime started for `function` (ground truth), if local.
    pub fn local_instances(&self, function: &str) -> Option<Vec<InstanceRecord>> {
        self.local.as_ref()?.instances(function)
    }

    /// Removes every function this run created (journaled) and stops the local runtime.
    pub async fn teardown(mut self) {
        if let Some(plugin) = self.plugin.as_mut() {
            let functions: Vec<String> = match self.journal.as_ref() {
                Some(journal) => journal.outstanding(),
                None => Vec::new(),
            };
            for function in functions {
                let result = match plugin.remove_function(&function).await {
                    Err(e) if e.is_not_found() => Ok(()),
                    other => other,
                };
                if let Some(journal) = self.journal.as_mut() {
                    let (event, err) = match &result {
                        Ok(()) => (JournalEvent::Removed, None),
                        Err(e) => (JournalEvent::RemoveFailed, Some(format!("{e}"))),
                    };
                    if let Err(e) =
                        journal.record(event, &self.provider, &function, None, err.as_deref())
                    {
                        tracing::warn!(error = %e, "could not write the resource journal");
                    }
                }
                if let Err(e) = result {
                    tracing::warn!(function, error = %e, "could not remove a function");
                }
            }
        }
        if let Some(local) = self.local.take() {
            local.shutdown().await;
        }
        if let Some(dir) = self.work_dir.take()
            && let Err(e) = dir.close()
        {
            tracing::debug!(error = %e, "could not remove the run's work directory");
        }
    }
}

/// Name prefix of the scratch directory a run keeps inside its run directory while it runs.
pub const WORK_DIR_PREFIX: &str = ".work-";

/// Removes scratch directories a killed run left in `run_dir`; returns how many.
pub fn remove_stale_work_dirs(run_dir: &Path) -> anyhow::Result<usize> {
    let mut removed = 0;
    for entry in fs_err::read_dir(run_dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(WORK_DIR_PREFIX)
            && entry.file_type()?.is_dir()
        {
            fs_err::remove_dir_all(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// What deploying needs beside the plan and the adapter instance.
struct Deployer<'a> {
    plugin: &'a LoadedPlugin,
    companion: Companion,
    extra_endpoint_hosts: &'a [String],
    artifacts: &'a FunctionArtifacts,
    provider: &'a str,
    run_id: &'a str,
}

impl Deployer<'_> {
    /// The endpoint as a driver target, if the adapter may send timed requests there.
    fn target(&self, url: &str) -> anyhow::Result<Target> {
        let name = &self.plugin.info().name;
        let target = Target::parse(url)
            .map_err(|e| anyhow::anyhow!("plugin `{name}` returned a bad endpoint: {e}"))?;
        if !endpoint_allowed(
            self.plugin.info(),
            self.extra_endpoint_hosts,
            target.host(),
            Some(target.port()),
        ) {
            let declared = &self.plugin.info().endpoint_hosts;
            anyhow::bail!(
                "plugin `{name}` ({}) returned the endpoint {}, whose host is not among the \
                 endpoint hosts it declared ({}) nor an endpoint URL set in \
                 Stellar.ProviderSettings; no request was sent to it",
                self.plugin.source().label(),
                crate::plugin::budget::cut(url, 200),
                if declared.is_empty() {
                    "none".to_owned()
                } else {
                    declared.join(", ")
                }
            );
        }
        Ok(target)
    }
}

/// The name stellar gives the function of sub-experiment `sub`, parallelism index `par`:
/// `st-<run id>-<NN>-<PP>` (short: provider name limits; recognisable by [`run_id_of`]).
pub fn function_name(run_id: &str, sub: usize, par: u32) -> String {
    format!("st-{run_id}-{sub:02}-{par:02}")
}

/// The run id in a name [`function_name`] made (`st-` + 6 lower-case hex + `-NN-PP`, at least
/// two digits each, and `-HH` for a data-transfer chain's later hops, see
/// [`crate::chain::member_name`]), else `None`: how `stellar cleanup --provider` tells
/// stellar's functions from everyone else's.
pub fn run_id_of(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("st-")?;
    let mut parts = rest.split('-');
    let (run_id, sub, par) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| s.len() >= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(hop) = parts.next()
        && !digits(hop)
    {
        return None;
    }
    let hex = run_id.len() == 6
        && run_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (parts.next().is_none() && hex && digits(sub) && digits(par)).then_some(run_id)
}

/// The environment of deployed functions. Fault injection (tests only) is switched on for the
/// embedded local runtime's functions alone, never for a cloud deployment.
fn function_env(
    provider: &str,
    companion: Companion,
    local: &stellar_config::LocalSettings,
) -> Vec<(String, String)> {
    let mut env = vec![("STELLAR_PROVIDER".into(), provider.to_owned())];
    if companion == Companion::LocalRuntime && local.faults_enabled() {
        env.push((stellar_measure::fault::ENABLE_ENV.into(), "1".into()));
        if let Some(ms) = local.fault_ready_delay_ms {
            env.push((
                stellar_measure::fault::READY_DELAY_ENV.into(),
                ms.to_string(),
            ));
        }
    }
    env
}

/// The local runtime's function options from the `Local` settings (the platform-like
/// behaviours are only sent when asked for, so older runtimes keep working).
fn local_options(local: &stellar_config::LocalSettings) -> Vec<(String, String)> {
    let mut options = vec![
        ("keep-alive-ms".into(), local.keep_alive_ms.to_string()),
        ("max-instances".into(), local.max_instances.to_string()),
    ];
    if local.min_instances > 0 {
        options.push(("min-instances".into(), local.min_instances.to_string()));
    }
    if local.restart_on_crash {
        options.push(("restart-on-crash".into(), "true".into()));
    }
    if local.protocol == stellar_config::FunctionProtocol::Grpc {
        options.push(("protocol".into(), "grpc".into()));
    }
    options
}

async fn deploy_all(
    plan: &Plan,
    deployer: &Deployer<'_>,
    instance: &mut PluginInstance,
    journal: &mut Journal,
) -> anyhow::Result<Vec<Vec<DeployedEndpoint>>> {
    let local = &plan.settings.local;
    let provider = deployer.provider;
    let mut all = Vec::new();
    // Storage for chains that transfer through it, read once and only when asked for.
    let storage = if plan
        .sub_experiments
        .iter()
        .any(|s| s.storage_transfer && s.data_transfer_chain_length > 1)
    {
        Some(crate::chain::ChainStorage::from_env(|k| {
            std::env::var(k).ok()
        })?)
    } else {
        None
    };
    for (position, sub) in plan.sub_experiments.iter().enumerate() {
        let mut endpoints = Vec::new();
        for par in 0..sub.parallelism {
            let name = function_name(deployer.run_id, sub.index, par);
            let (instance_concurrency, options) = match deployer.companion {
                Companion::LocalRuntime => (local.instance_concurrency, local_options(local)),
                Companion::None => (0, Vec::new()),
            };
            let mut options = options;
            if sub.cpu_boost {
                // The plan keeps STeLLAR's CPUBoostEnabled only where the provider has it.
                options.push(("cpu-boost".into(), "true".into()));
            }
            // A chain is deployed last hop first, so each function learns its successor's URL;
            // hop 0 (the producer, named like any single function) is the endpoint.
            let chain_length = sub.data_transfer_chain_length.max(1);
            let mut successor: Option<String> = None;
            for hop in (0..chain_length).rev() {
                let member = crate::chain::member_name(&name, hop);
                let mut env = function_env(provider, deployer.companion, local);
                if chain_length > 1 {
                    env.extend(crate::chain::member_env(
                        sub,
                        hop,
                        successor.as_deref(),
                        storage.as_ref(),
                    ));
                }
                let request = DeployRequest {
                    name: member.clone(),
                    memory_mb: u32::try_from(sub.function_memory_mb).unwrap_or(u32::MAX),
                    timeout_s: u32::try_from(plan.settings.request_timeout_ms.div_ceil(1000))
                        .unwrap_or(u32::MAX),
                    arm64: plan.settings.architecture == Architecture::Arm64,
                    env,
                    tags: vec![
                        ("stellar-run".into(), deployer.run_id.to_owned()),
                        ("stellar-sub-experiment".into(), sub.slug.clone()),
                    ],
                    instance_concurrency,
                    options: options.clone(),
                    artifact: deployer.artifacts.for_sub_experiment(position),
                };
                journal.record(JournalEvent::Creating, provider, &member, None, None)?;
                let endpoint = instance.deploy_function(&request).await.with_context(|| {
                    format!(
                        "deploying `{member}` with plugin `{}`",
                        deployer.plugin.info().name
                    )
                })?;
                journal.record(
                    JournalEvent::Created,
                    provider,
                    &member,
                    Some(&endpoint.url),
                    None,
                )?;
                // Also a successor's URL must be where the adapter declared its functions live:
                // the chain's functions call it.
                let mut target = deployer.target(&endpoint.url)?;
                if matches!(endpoint.protocol, crate::plugin::Protocol::Grpc) {
                    target = target.with_grpc();
                }
                if hop > 0 {
                    successor = Some(endpoint.url);
                    continue;
                }
                endpoints.push(DeployedEndpoint {
                    function: Some(endpoint.id),
                    url: endpoint.url,
                    target,
                });
            }
        }
        all.push(endpoints);
    }
    Ok(all)
}
