//! On-disk cache of compiled components, so loading a plugin a second time costs a
//! deserialisation (sub-millisecond) instead of a Cranelift compile (100+ ms).
//!
//! The key covers the component bytes and the engine's compatibility hash (wasmtime version,
//! configuration, CPU features), so a stale or foreign artifact is never loaded. Only files
//! this host wrote itself are deserialised.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where compiled components are kept: `$STELLAR_CACHE_DIR`, else `$XDG_CACHE_HOME/stellar`,
/// else `$HOME/.cache/stellar`, else none (compile every time).
pub(crate) fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("STELLAR_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("stellar"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("stellar"))
}

/// How a component was obtained, for logs and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPath {
    /// Compiled with Cranelift (and written to the cache if there is one).
    Compiled,
    /// Deserialised from the cache.
    Cached,
}

pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    fn entry_path(&self, engine: &Engine, wasm: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut h = Sha256::new();
        h.update(wasm);
        h.update(engine_hash.finish().to_le_bytes());
        Some(
            dir.join("components")
                .join(format!("{}.cwasm", hex::encode(h.finalize()))),
        )
    }

    /// Returns the compiled component for `wasm`, from the cache when possible.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
    ) -> wasmtime::Result<(Component, LoadPath)> {
        let entry = self.entry_path(engine, wasm);
        if let Some(path) = entry.as_deref().filter(|p| p.is_file()) {
            match deserialize_own_artifact(engine, path) {
                Ok(component) => return Ok((component, LoadPath::Cached)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "ignoring unusable compiled-component cache entry")
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        if let Some(path) = entry
            && let Err(e) = store_artifact(&component, &path)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not cache the compiled component");
        }
        Ok((component, LoadPath::Compiled))
    }
}

#[allow(
    unsafe_code,
    reason = "deserialising a compiled component is unsafe; the cache only holds files this host \
              serialised itself, keyed by content hash and engine compatibility hash"
)]
fn deserialize_own_artifact(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: see the reason above; wasmtime also checks the header's version and config.
    unsafe { Component::deserialize_file(engine, path) }
}

fn store_artifact(component: &Component, path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let bytes = component.serialize()?;
    let dir = path.parent().ok_or("cache path has no parent")?;
    fs_err::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    fs_err::write(&tmp, bytes)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}
