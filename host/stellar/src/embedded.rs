//! Artifacts compiled into the `stellar` binary by build.rs: the first-party provider plugins
//! and the HTTP measurement function the local provider runs.

use crate::plugin::PluginSource;

/// The `local` provider adapter (wasm component).
pub const LOCAL_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_LOCAL_WASM"));

/// The `aws` provider adapter (wasm component): AWS Lambda with function URLs.
pub const AWS_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_AWS_WASM"));

/// The native HTTP measurement function (release build for this machine).
pub const MEASURE_HTTP_BIN: &[u8] = include_bytes!(env!("STELLAR_MEASURE_HTTP_BIN"));

/// First-party plugins, by provider name.
pub fn first_party_plugins() -> Vec<PluginSource> {
    vec![
        PluginSource::Embedded {
            name: "local",
            wasm: LOCAL_PLUGIN_WASM,
        },
        PluginSource::Embedded {
            name: "aws",
            wasm: AWS_PLUGIN_WASM,
        },
    ]
}

/// The embedded plugin for `provider`, if this build has one.
pub fn plugin_for(provider: &str) -> Option<PluginSource> {
    first_party_plugins()
        .into_iter()
        .find(|p| matches!(p, PluginSource::Embedded { name, .. } if *name == provider))
}
