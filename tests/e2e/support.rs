//! Helpers every end-to-end module needs (paths, ports, plugin answers), kept once here so the
//! per-provider modules hold only what is particular to their cloud.

use std::path::{Path, PathBuf};

use stellar::plugin::{Endpoint, PluginError, ProviderError};

/// The repository root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A loopback port that was free a moment ago (for programs that take a port, not port 0).
pub(crate) fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    probe.local_addr().expect("local address").port()
}

/// The one directory inside `dir` (a results directory holds one run).
pub(crate) fn only_subdir(dir: &Path) -> PathBuf {
    let entries: Vec<_> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    entries.into_iter().next().unwrap()
}

/// Owned `(key, value)` pairs, as settings, env and tags travel.
pub(crate) fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The value of meta `key` an adapter attached to `endpoint`.
pub(crate) fn meta<'e>(endpoint: &'e Endpoint, key: &str) -> &'e str {
    endpoint
        .meta
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no meta `{key}` in {:?}", endpoint.meta))
}

/// The adapter's own error inside a plugin call's failure.
pub(crate) fn provider_error(err: &PluginError) -> &ProviderError {
    err.provider_error()
        .unwrap_or_else(|| panic!("expected a provider error, got: {err}"))
}
