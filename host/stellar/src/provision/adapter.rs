//! Opens a provider adapter for a plan: load the plugin, give it its settings (the experiment's
//! `Stellar.ProviderSettings`, plus what only the host can supply: credentials for the
//! first-party adapter they belong to, the local runtime's address), and widen its allow-list by
//! exactly the endpoint the user configured.

use std::path::PathBuf;

use anyhow::Context;
use stellar_config::Plan;
use stellar_local::{LocalRuntime, LocalRuntimeConfig};

use crate::credentials::{AwsCredentials, CredentialSources, aws_default_region};
use crate::embedded;
use crate::plugin::{LoadedPlugin, PluginInstance, PluginRuntime, PluginSource, SandboxLimits};

/// A configured adapter and what it needs to stay alive.
pub struct OpenAdapter {
    pub runtime: PluginRuntime,
    pub plugin: LoadedPlugin,
    pub instance: PluginInstance,
    /// The embedded local runtime, when the provider is `local`.
    pub local: Option<LocalRuntime>,
}

/// Loads and configures the adapter of `provider` (or `plugin_file`, a third-party one).
/// `work_dir` is where the local runtime keeps its files.
pub async fn open(
    plan: &Plan,
    provider: &str,
    plugin_file: Option<&PathBuf>,
    work_dir: &std::path::Path,
) -> anyhow::Result<OpenAdapter> {
    let first_party = plugin_file.is_none();
    let source = match plugin_file {
        Some(path) => PluginSource::File(path.clone()),
        None => embedded::plugin_for(provider).with_context(|| {
            format!(
                "provider `{provider}` has no adapter in this build yet (available: local, aws, \
                 or a URL); pass a third-party adapter with --plugin FILE.wasm"
            )
        })?,
    };
    let runtime = PluginRuntime::new(SandboxLimits::default())?;
    let plugin = runtime.load(source).await?;
    tracing::info!(plugin = %plugin.info().name, load_ms = plugin.load_time().as_secs_f64() * 1e3,
        path = ?plugin.load_path(), "loaded provider plugin");

    let mut settings: Vec<(String, String)> = plan
        .settings
        .provider_settings
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let extra_hosts = match plan.settings.provider_settings.get("endpoint") {
        Some(url) => vec![authority_of(url).with_context(|| {
            format!("Stellar.ProviderSettings.endpoint: {url:?} is not an http(s) URL")
        })?],
        None => Vec::new(),
    };

    let mut local = None;
    if first_party && provider == "local" {
        let rt = LocalRuntime::start(LocalRuntimeConfig::new(work_dir.join("runtime")))
            .await
            .context("starting the embedded local provider")?;
        settings.push(("control-url".to_owned(), rt.control_url()));
        settings.push(("token".to_owned(), rt.token().to_owned()));
        local = Some(rt);
    } else if first_party && provider == "aws" {
        let sources = CredentialSources::from_process();
        if !plan.settings.provider_settings.contains_key("region") {
            let region = aws_default_region(&sources)?.context(
                "no AWS region: set Stellar.ProviderSettings.region, AWS_REGION, or `region` in ~/.aws/config",
            )?;
            settings.push(("region".to_owned(), region));
        }
        let credentials = AwsCredentials::load(&sources)?;
        tracing::info!(access_key_id = %credentials.access_key_id, origin = %credentials.origin,
            "using AWS credentials");
        settings.extend(credentials.into_settings());
    }

    let mut instance = runtime.instantiate(&plugin, &extra_hosts).await?;
    instance.configure(&settings).await.with_context(|| {
        format!(
            "configuring the `{}` adapter (Stellar.ProviderSettings in {})",
            plugin.info().name,
            plan.source_path.display()
        )
    })?;
    Ok(OpenAdapter {
        runtime,
        plugin,
        instance,
        local,
    })
}

/// `host[:port]` of an http(s) URL: the one extra host a configured endpoint may be reached on.
fn authority_of(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty() && !authority.contains('@')).then(|| authority.to_owned())
}

#[cfg(test)]
mod tests {
    use super::authority_of;

    #[test]
    fn endpoint_authority() {
        assert_eq!(
            authority_of("http://127.0.0.1:5000").as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(
            authority_of("https://lambda.eu-west-1.amazonaws.com/").as_deref(),
            Some("lambda.eu-west-1.amazonaws.com")
        );
        assert_eq!(authority_of("ftp://x"), None);
        assert_eq!(authority_of("http://user@evil.example"), None);
        assert_eq!(authority_of("http://"), None);
    }
}
