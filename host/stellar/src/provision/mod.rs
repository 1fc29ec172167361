//! Provisioning: turns a plan into endpoints the driver can hit, and takes them down again.
//!
//! For a named provider the adapter plugin deploys one function per sub-experiment and
//! parallelism index; every creation is journaled before it happens. For STeLLAR's external
//! mode (a URL as provider) nothing is deployed. For `local` the embedded runtime is started
//! in-process first, and its instance records are collected before teardown as ground truth.

pub mod adapter;
pub mod artifact;

use std::path::{Path, PathBuf};

use anyhow::Context;
use stellar_config::{Architecture, Plan, ProviderKind};
use stellar_local::{InstanceRecord, LocalRuntime};

use crate::drive::Target;
use crate::journal::{Journal, JournalEvent};
use crate::plugin::{DeployRequest, LoadedPlugin, PluginInstance, PluginRuntime};
use artifact::FunctionArtifacts;

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
        // Per-run working directory for the local runtime and the function artifacts.
        let work_dir = std::env::temp_dir().join(format!("stellar-{run_id}"));
        fs_err::create_dir_all(&work_dir)?;
        let adapter::OpenAdapter {
            runtime,
            plugin,
            mut instance,
            local,
        } = adapter::open(plan, provider, options.plugin_file.as_ref(), &work_dir).await?;
        let mut me = Self {
            endpoints: Vec::new(),
            measurement_function: true,
            provider: provider.to_owned(),
            plugin: None,
            local,
            journal: None,
            work_dir: Some(work_dir.clone()),
            _runtime: None,
        };
        let result = async {
            let artifacts = FunctionArtifacts::prepare(plan, plugin.info().artifact, &work_dir)?;
            let mut journal = Journal::create(&run_dir.join("resources.jsonl"))?;
            let endpoints = deploy_all(
                plan,
                &plugin,
                &mut instance,
                &mut journal,
                run_id,
                &artifacts,
                provider,
            )
            .await;
            me.journal = Some(journal);
            endpoints
        }
        .await;
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
    artifacts: &FunctionArtifacts,
    provider: &str,
) -> anyhow::Result<Vec<Vec<DeployedEndpoint>>> {
    let local = &plan.settings.local;
    let mut all = Vec::new();
    for (position, sub) in plan.sub_experiments.iter().enumerate() {
        let mut endpoints = Vec::new();
        for par in 0..sub.parallelism {
            let name = format!("st-{run_id}-{:02}-{par:02}", sub.index);
            let request = DeployRequest {
                name: name.clone(),
                memory_mb: u32::try_from(sub.function_memory_mb).unwrap_or(u32::MAX),
                timeout_s: u32::try_from(plan.settings.request_timeout_ms.div_ceil(1000))
                    .unwrap_or(u32::MAX),
                arm64: plan.settings.architecture == Architecture::Arm64,
                env: vec![("STELLAR_PROVIDER".into(), provider.to_owned())],
                tags: vec![
                    ("stellar-run".into(), run_id.to_owned()),
                    ("stellar-sub-experiment".into(), sub.slug.clone()),
                ],
                instance_concurrency: if provider == "local" {
                    local.instance_concurrency
                } else {
                    0
                },
                options: if provider == "local" {
                    vec![
                        ("keep-alive-ms".into(), local.keep_alive_ms.to_string()),
                        ("max-instances".into(), local.max_instances.to_string()),
                    ]
                } else {
                    Vec::new()
                },
                artifact: Some(artifacts.for_sub_experiment(position).to_owned()),
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
