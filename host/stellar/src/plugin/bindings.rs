//! The one place that generates host bindings for the `adapter` world (wit/provider.wit).
//!
//! Generated code is fenced in this module; the rest of the host uses the re-exports.

#[allow(missing_docs, unreachable_pub, reason = "bindgen-generated code")]
mod generated {
    wasmtime::component::bindgen!({
        world: "adapter",
        path: "../../wit",
        exports: { default: async },
        imports: { default: trappable },
        with: {
            "stellar:provider/types.artifact": crate::plugin::artifact::ArtifactHandle,
        },
    });
}

pub(crate) use generated::Adapter;
pub(crate) use generated::AdapterPre;
pub(crate) use generated::stellar::provider::host_log;
pub(crate) use generated::stellar::provider::types::{
    Arch, FunctionSpec, Host as TypesHost, HostArtifact,
};
pub use generated::stellar::provider::types::{
    ArtifactKind, ColdStartScope, Credential, CredentialKind, Endpoint, OptionDecl, OptionType,
    Protocol, ProviderError, ProviderInfo,
};
