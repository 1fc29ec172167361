//! Opens the provider adapter of a plan, driven by what the adapter declares, not by its name.
//!
//! 1. Find it: `--plugin FILE.wasm`, else a first-party adapter of that name, else an installed
//!    one ([`crate::plugin::installed`]). Its declared name must be the experiment's `Provider`.
//! 2. Check the experiment's `Stellar.ProviderSettings` against its declared options; URL
//!    options widen exactly the hosts they name (API calls, or timed requests).
//! 3. Hand it the credentials it declares: automatically for first-party adapters, only when
//!    granted (`--grant`) for third-party ones; else stop before anything is deployed.
//! 4. Start its companion (the embedded local runtime), then instantiate and `configure` it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use stellar_config::Plan;
use stellar_local::{LocalRuntime, LocalRuntimeConfig};

use crate::credentials::{self, CredentialSources};
use crate::embedded::{self, Companion};
use crate::plugin::declaration::{self, CheckedOptions};
use crate::plugin::{
    CredentialKind, LoadedPlugin, PluginInstance, PluginRuntime, PluginSource, SandboxLimits,
    installed,
};

/// Command-line choices about the adapter.
#[derive(Debug, Clone, Default)]
pub struct AdapterOptions {
    /// A third-party adapter to use instead of looking the provider up.
    pub plugin_file: Option<PathBuf>,
    /// Credentials the user grants a third-party adapter.
    pub grants: Vec<CredentialKind>,
    /// Sandbox limits (deadlines, CPU budget, memory).
    pub limits: SandboxLimits,
}

/// A configured adapter and what it needs to stay alive.
pub struct OpenAdapter {
    pub runtime: PluginRuntime,
    pub plugin: LoadedPlugin,
    pub instance: PluginInstance,
    pub companion: Companion,
    /// The embedded local runtime, when the companion is [`Companion::LocalRuntime`].
    pub local: Option<LocalRuntime>,
    /// Hosts the user's options add to the declared endpoint hosts.
    pub extra_endpoint_hosts: Vec<String>,
}

/// The built-in or installed adapter named `provider`, and the companion it needs.
pub fn find(provider: &str) -> Option<(PluginSource, Companion)> {
    if let Some(first) = embedded::first_party(provider) {
        return Some((first.source(), first.companion));
    }
    installed::find(provider).map(|path| (PluginSource::File(path), Companion::None))
}

/// Where the adapter of `provider` comes from: `plugin_file`, else [`find`]; an error that
/// says how to add one when there is none.
pub fn resolve(
    provider: &str,
    plugin_file: Option<&PathBuf>,
) -> anyhow::Result<(PluginSource, Companion)> {
    if let Some(path) = plugin_file {
        return Ok((PluginSource::File(path.clone()), Companion::None));
    }
    if let Some(found) = find(provider) {
        return Ok(found);
    }
    let installed_names: Vec<String> = installed::list()
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    anyhow::bail!(
        "provider `{provider}` has no adapter: built in are {}; installed are {} (in {}). Pass a \
         third-party adapter with --plugin FILE.wasm, install one with `stellar plugins install \
         FILE.wasm`, or give a URL to benchmark directly",
        embedded::first_party_names().join(", "),
        if installed_names.is_empty() {
            "none".to_owned()
        } else {
            installed_names.join(", ")
        },
        installed::plugins_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|e| e.to_string()),
    )
}

/// The adapter of `provider` loaded and checked against the plan, not yet instantiated.
pub struct CheckedAdapter {
    pub runtime: PluginRuntime,
    pub plugin: LoadedPlugin,
    pub companion: Companion,
    pub options: CheckedOptions,
}

/// Steps 1 and 2, and the grant check of step 3 (no credential is read): what `--dry-run`
/// does too.
pub async fn check(
    plan: &Plan,
    provider: &str,
    options: &AdapterOptions,
) -> anyhow::Result<CheckedAdapter> {
    check_settings(
        &plan.settings.provider_settings,
        &plan.source_path,
        provider,
        options,
    )
    .await
}

/// [`check`] for provider settings that come from `source` (an experiment file, or the
/// command line for `stellar cleanup --provider`).
pub async fn check_settings(
    provider_settings: &std::collections::BTreeMap<String, String>,
    source: &Path,
    provider: &str,
    options: &AdapterOptions,
) -> anyhow::Result<CheckedAdapter> {
    let (source_path, settings_in) = (source, provider_settings);
    let (source, companion) = resolve(provider, options.plugin_file.as_ref())?;
    let runtime = PluginRuntime::new(options.limits.clone())?;
    let plugin = runtime.load(source).await?;
    tracing::info!(plugin = %plugin.info().name, load_ms = plugin.load_time().as_secs_f64() * 1e3,
        path = ?plugin.load_path(), "loaded provider plugin");
    let info = plugin.info();
    if info.name != provider {
        anyhow::bail!(
            "{} declares the provider `{}`, but {} says \"Provider\": \"{provider}\"; use the \
             adapter's name as the Provider",
            plugin.source().label(),
            info.name,
            source_path.display()
        );
    }
    let checked = declaration::check_options(info, settings_in)
        .map_err(|e| anyhow::anyhow!("{}: {e}", source_path.display()))?;
    credentials::check_grants(
        info,
        &plugin.source().label(),
        plugin.is_first_party(),
        &options.grants,
    )?;
    Ok(CheckedAdapter {
        runtime,
        plugin,
        companion,
        options: checked,
    })
}

/// Loads, checks and configures the adapter of `provider`. `work_dir` is where a companion
/// keeps its files.
pub async fn open(
    plan: &Plan,
    provider: &str,
    options: &AdapterOptions,
    work_dir: &Path,
) -> anyhow::Result<OpenAdapter> {
    open_settings(
        &plan.settings.provider_settings,
        &plan.source_path,
        provider,
        options,
        Companionship::Start { work_dir },
    )
    .await
}

/// How [`open_settings`] provides the adapter's companion (the embedded local runtime).
pub enum Companionship<'a> {
    /// Start it in-process, keeping its files under `work_dir`.
    Start { work_dir: &'a Path },
    /// Use one that is already running (`stellar local serve`): its control URL and token.
    Running { control_url: String, token: String },
}

/// [`open`] for provider settings that come from `source` (see [`check_settings`]).
pub async fn open_settings(
    provider_settings: &std::collections::BTreeMap<String, String>,
    source: &Path,
    provider: &str,
    options: &AdapterOptions,
    companionship: Companionship<'_>,
) -> anyhow::Result<OpenAdapter> {
    let CheckedAdapter {
        runtime,
        plugin,
        companion,
        options: checked,
    } = check_settings(provider_settings, source, provider, options).await?;
    let granted = credentials::for_adapter(
        plugin.info(),
        &plugin.source().label(),
        plugin.is_first_party(),
        &options.grants,
        &CredentialSources::from_process(),
    )?;
    tracing::info!(plugin = %plugin.info().name, credentials = ?granted.kinds(),
        "credentials handed to the adapter");

    let mut settings: Vec<(String, String)> = provider_settings
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let local = match (companion, companionship) {
        (Companion::LocalRuntime, Companionship::Start { work_dir }) => {
            let rt = LocalRuntime::start(LocalRuntimeConfig::new(work_dir.join("runtime")))
                .await
                .context("starting the embedded local provider")?;
            settings.push(("control-url".to_owned(), rt.control_url()));
            settings.push(("token".to_owned(), rt.token().to_owned()));
            Some(rt)
        }
        (Companion::LocalRuntime, Companionship::Running { control_url, token }) => {
            settings.push(("control-url".to_owned(), control_url));
            settings.push(("token".to_owned(), token));
            None
        }
        (Companion::None, _) => None,
    };

    // Adapters have no filesystem: the host reads endpoints files and hands over the content.
    let mut extra_endpoint_hosts = checked.extra_endpoint_hosts.clone();
    let base_dir = source.parent().unwrap_or(Path::new("."));
    for (key, path) in &checked.endpoints_files {
        let (content, hosts) = crate::plugin::declaration::read_endpoints_file(key, path, base_dir)
            .map_err(|e| anyhow::anyhow!("{}: {e}", source.display()))?;
        settings.retain(|(k, _)| k != key);
        settings.push((key.clone(), content));
        settings.push((
            format!("{key}.path"),
            base_dir.join(path).display().to_string(),
        ));
        extra_endpoint_hosts.extend(hosts);
    }

    let source_path_label = source;
    let mut instance = runtime
        .instantiate(&plugin, &checked.extra_api_hosts)
        .await?;
    instance
        .configure(&settings, granted.as_slice())
        .await
        .with_context(|| {
            format!(
                "configuring the `{}` adapter (Stellar.ProviderSettings in {})",
                plugin.info().name,
                source_path_label.display()
            )
        })?;
    Ok(OpenAdapter {
        runtime,
        plugin,
        instance,
        companion,
        local,
        extra_endpoint_hosts,
    })
}
