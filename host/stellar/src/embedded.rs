//! Artifacts compiled into the `stellar` binary by build.rs: the first-party provider plugins
//! and the HTTP measurement function the local provider runs.
//!
//! This table is the only place that knows first-party adapters by name; everything else
//! works from what an adapter declares, plus the [`Companion`] a first-party adapter may need
//! the host to run beside it.

use crate::plugin::PluginSource;

/// The `local` provider adapter (wasm component).
pub const LOCAL_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_LOCAL_WASM"));

/// The `aws` provider adapter (wasm component): AWS Lambda with function URLs.
pub const AWS_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_AWS_WASM"));

/// The `azure` provider adapter (wasm component): Azure Functions Flex Consumption.
pub const AZURE_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_AZURE_WASM"));
/// The `aliyun` provider adapter (wasm component): Alibaba Cloud Function Compute 3.0 with
/// anonymous HTTP triggers.
pub const ALIYUN_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_ALIYUN_WASM"));
/// The `gcr` provider adapter (wasm component): Google Cloud Run (Admin API v2) with the image
/// pushed to Artifact Registry.
pub const GCR_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_GCR_WASM"));

/// The `vhive` provider adapter (wasm component): vHive / Knative endpoints listed in
/// STeLLAR's or vHive's endpoints file, called with gRPC.
pub const VHIVE_PLUGIN_WASM: &[u8] = include_bytes!(env!("STELLAR_PLUGIN_VHIVE_WASM"));

/// The native HTTP measurement function (release build for this machine).
pub const MEASURE_HTTP_BIN: &[u8] = include_bytes!(env!("STELLAR_MEASURE_HTTP_BIN"));

/// A service the host runs in-process for a first-party adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Companion {
    /// Nothing: the adapter talks to a cloud.
    None,
    /// The embedded local runtime: started before `configure` (whose settings get its
    /// `control-url` and `token`), its per-function options come from `Stellar.Local`, its
    /// instance records are ground truth, and its functions end with the stellar process.
    LocalRuntime,
}

/// One first-party adapter.
#[derive(Debug, Clone, Copy)]
pub struct FirstParty {
    pub name: &'static str,
    pub wasm: &'static [u8],
    pub companion: Companion,
}

impl FirstParty {
    pub fn source(&self) -> PluginSource {
        PluginSource::Embedded {
            name: self.name,
            wasm: self.wasm,
        }
    }
}

/// The first-party adapters, by provider name.
pub const FIRST_PARTY: [FirstParty; 6] = [
    FirstParty {
        name: "local",
        wasm: LOCAL_PLUGIN_WASM,
        companion: Companion::LocalRuntime,
    },
    FirstParty {
        name: "aws",
        wasm: AWS_PLUGIN_WASM,
        companion: Companion::None,
    },
    FirstParty {
        name: "azure",
        wasm: AZURE_PLUGIN_WASM,
        companion: Companion::None,
    },
    FirstParty {
        name: "aliyun",
        wasm: ALIYUN_PLUGIN_WASM,
        companion: Companion::None,
    },
    FirstParty {
        name: "gcr",
        wasm: GCR_PLUGIN_WASM,
        companion: Companion::None,
    },
    FirstParty {
        name: "vhive",
        wasm: VHIVE_PLUGIN_WASM,
        companion: Companion::None,
    },
];

/// The first-party adapter for `provider`, if this build has one.
pub fn first_party(provider: &str) -> Option<FirstParty> {
    FIRST_PARTY.iter().copied().find(|p| p.name == provider)
}

/// The embedded plugin for `provider`, if this build has one.
pub fn plugin_for(provider: &str) -> Option<PluginSource> {
    first_party(provider).map(|p| p.source())
}

/// Names of the first-party adapters, for messages.
pub fn first_party_names() -> Vec<&'static str> {
    FIRST_PARTY.iter().map(|p| p.name).collect()
}
