//! Provisioning: turns a plan into endpoints the driver can hit, and takes them down again.
//!
//! For a named provider the adapter plugin deploys one function per sub-experiment and
//! parallelism index; every creation is journaled before it happens. For STeLLAR's external
//! mode (a URL as provider) nothing is deployed. For `local` the embedded runtime is started
//! in-process first, and its instance records are collected before teardown as ground truth.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stellar_config::{Plan, ProviderKind};
use stellar_local::{InstanceRecord, LocalRuntime, LocalRuntimeConfig};

use crate::drive::Target;
use crate::embedded;
use crate::journal::{Journal, JournalEvent};
use crate::plugin::{
    ArtifactKind, DeployRequest, LoadedPlugin, PluginInstance, PluginRuntime, PluginSource,
    SandboxLimits,
};

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
    work_dir: Option<PathBuf>,
    _runtime: Option<PluginRuntime>,
}

/// Options that come from the command line rather than the experiment file.
#[derive(Debug, Clone, Default)]
pub struct ProvisionOptions {
    /// A third-party adapter to use instead of the embedded one.
    pub plugin_file: Option<PathBuf>,
}

impl Provisioned {
    pub async fn new(
        plan: &Plan,
        run_id: &str,
        run_dir: &Path,
        options: &ProvisionOptions,
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
                Self::deploy_named(plan, name, run_id, run_dir, options).await
            }
        }
    }

    async fn deploy_named(
        plan: &Plan,
        provider: &str,
        run_id: &str,
        run_dir: &Path,
        options: &ProvisionOptions,
    ) -> anyhow::Result<Self> {
        let source = match &options.plugin_file {
            Some(path) => PluginSource::File(path.clone()),
            None => embedded::plugin_for(provider).with_context(|| {
                format!(
                    "provider `{provider}` has no adapter in this build yet (available: local, or a URL); \
                     pass a third-party adapter with --plugin FILE.wasm"
                )
            })?,
        };
        let runtime = PluginRuntime::new(SandboxLimits::default())?;
        let plugin = runtime.load(source).await?;
        tracing::info!(plugin = %plugin.info().name, load_ms = plugin.load_time().as_secs_f64() * 1e3,
            path = ?plugin.load_path(), "loaded provider plugin");
        if plugin.info().artifact != ArtifactKind::NativeBinary {
            bail!(
                "plugin `{}` needs a {:?} artifact, which this build of stellar cannot produce yet",
                plugin.info().name,
                plugin.info().artifact
            );
        }

        // Per-run working directory for the local runtime and the function artifact.
        let work_dir = std::env::temp_dir().join(format!("stellar-{run_id}"));
        fs_err::create_dir_all(&work_dir)?;
        let artifact = write_function_binary(&work_dir)?;

        let mut settings = Vec::new();
        let local = if provider == "local" {
            let rt = LocalRuntime::start(LocalRuntimeConfig::new(work_dir.join("runtime")))
                .await
                .context("starting the embedded local provider")?;
            settings.push(("control-url".to_owned(), rt.control_url()));
            settings.push(("token".to_owned(), rt.token().to_owned()));
            Some(rt)
        } else {
            None
        };
        let mut instance = runtime.instantiate(&plugin, &[]).await?;
        instance.configure(&settings).await?;

        let mut journal = Journal::create(&run_dir.join("resources.jsonl"))?;
        let mut me = Self {
            endpoints: Vec::new(),
            measurement_function: true,
            provider: provider.to_owned(),
            plugin: None,
            local,
            journal: None,
            work_dir: Some(work_dir),
            _runtime: None,
        };
        let result = deploy_all(
            plan,
            &plugin,
            &mut instance,
            &mut journal,
            run_id,
            &artifact,
            provider,
        )
        .await;
        me.plugin = Some(instance);
        me.journal = Some(journal);
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

    /// Every instance the local runtime started for `function` (ground truth), if local.
    pub fn local_instances(&self, function: &str) -> Option<Vec<InstanceRecord>> {
        self.local.as_ref()?.instances(function)
    }

    /// Removes every function this run created (journaled) and stops the local runtime.
    pub async fn teardown(mut self) {
        if let Some(plugin) = self.plugin.as_mut() {
            let functions: Vec<String> = self
                .endpoints
                .iter()
                .flatten()
                .filter_map(|e| e.function.clone())
                .collect();
            for function in functions {
                let result = plugin.remove_function(&function).await;
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
            && let Err(e) = fs_err::remove_dir_all(&dir)
        {
            tracing::debug!(error = %e, "could not remove the run's work directory");
        }
    }
}

async fn deploy_all(
    plan: &Plan,
    plugin: &LoadedPlugin,
    instance: &mut PluginInstance,
    journal: &mut Journal,
    run_id: &str,
    artifact: &Path,
    provider: &str,
) -> anyhow::Result<Vec<Vec<DeployedEndpoint>>> {
    let local = &plan.settings.local;
    let mut all = Vec::new();
    for sub in &plan.sub_experiments {
        let mut endpoints = Vec::new();
        for par in 0..sub.parallelism {
            let name = format!("st-{run_id}-{:02}-{par:02}", sub.index);
            let request = DeployRequest {
                name: name.clone(),
                memory_mb: u32::try_from(sub.function_memory_mb).unwrap_or(u32::MAX),
                timeout_s: u32::try_from(plan.settings.request_timeout_ms.div_ceil(1000))
                    .unwrap_or(u32::MAX),
                arm64: false,
                env: vec![("STELLAR_PROVIDER".into(), provider.to_owned())],
                tags: vec![
                    ("stellar-run".into(), run_id.to_owned()),
                    ("stellar-sub-experiment".into(), sub.slug.clone()),
                ],
                instance_concurrency: local.instance_concurrency,
                options: vec![
                    ("keep-alive-ms".into(), local.keep_alive_ms.to_string()),
                    ("max-instances".into(), local.max_instances.to_string()),
                ],
                artifact: Some(artifact.to_owned()),
            };
            journal.record(JournalEvent::Creating, provider, &name, None, None)?;
            let endpoint = instance.deploy_function(&request).await.with_context(|| {
                format!("deploying `{name}` with plugin `{}`", plugin.info().name)
            })?;
            journal.record(
                JournalEvent::Created,
                provider,
                &name,
                Some(&endpoint.url),
                None,
            )?;
            let target = Target::parse(&endpoint.url).map_err(|e| {
                anyhow::anyhow!(
                    "plugin `{}` returned a bad endpoint: {e}",
                    plugin.info().name
                )
            })?;
            endpoints.push(DeployedEndpoint {
                function: Some(endpoint.id),
                url: endpoint.url,
                target,
            });
        }
        all.push(endpoints);
    }
    Ok(all)
}

/// Writes the embedded measurement function where the local runtime can read it.
fn write_function_binary(work_dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = work_dir.join("stellar-measure-http");
    fs_err::write(&path, embedded::MEASURE_HTTP_BIN)?;
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}
