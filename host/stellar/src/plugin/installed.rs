//! Installed third-party adapters: `stellar plugins install FILE.wasm` copies a component into
//! the user's data directory under its declared provider name, so `"Provider": "<name>"`
//! finds it without `--plugin`. Installed adapters are third-party: they get credentials only
//! when granted.
//!
//! The directory is `$STELLAR_DATA_DIR/plugins`, else `$XDG_DATA_HOME/stellar/plugins`, else
//! `~/.local/share/stellar/plugins`; each adapter is `<name>.wasm`.

use std::path::{Path, PathBuf};

use super::{PluginError, PluginRuntime, PluginSource};
use crate::embedded;

/// Errors of the installed-plugin directory.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("no data directory: set STELLAR_DATA_DIR, XDG_DATA_HOME or HOME")]
    NoDataDir,
    #[error(
        "{file} declares the provider `{name}`, which is a built-in adapter of stellar; an \
         installed adapter may not replace it (pass the file explicitly with --plugin to use it \
         for one run)"
    )]
    ClashesWithBuiltIn { file: PathBuf, name: String },
    #[error("no installed adapter `{name}` in {dir}")]
    NotInstalled { name: String, dir: PathBuf },
    #[error(transparent)]
    Plugin(#[from] PluginError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Where installed adapters live.
pub fn plugins_dir() -> Result<PathBuf, InstallError> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = if let Some(dir) = var("STELLAR_DATA_DIR") {
        PathBuf::from(dir)
    } else if let Some(dir) = var("XDG_DATA_HOME") {
        PathBuf::from(dir).join("stellar")
    } else if let Some(home) = var("HOME") {
        PathBuf::from(home).join(".local/share/stellar")
    } else {
        return Err(InstallError::NoDataDir);
    };
    Ok(base.join("plugins"))
}

/// The installed adapter for `provider`, if any.
pub fn find(provider: &str) -> Option<PathBuf> {
    if !stellar_config::is_provider_name(provider) {
        return None;
    }
    let path = plugins_dir().ok()?.join(format!("{provider}.wasm"));
    path.is_file().then_some(path)
}

/// Every installed adapter file, sorted by name.
pub fn list() -> Result<Vec<PathBuf>, InstallError> {
    let dir = plugins_dir()?;
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = fs_err::read_dir(&dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads `file` (which checks its contract version and declaration) and copies it to
/// `<plugins dir>/<name>.wasm`, replacing an earlier install of the same name. Returns the
/// provider name and the installed path.
pub async fn install(
    runtime: &PluginRuntime,
    file: &Path,
) -> Result<(String, PathBuf), InstallError> {
    let plugin = runtime.load(PluginSource::File(file.to_owned())).await?;
    let name = plugin.info().name.clone();
    if embedded::first_party(&name).is_some() {
        return Err(InstallError::ClashesWithBuiltIn {
            file: file.to_owned(),
            name,
        });
    }
    let dir = plugins_dir()?;
    fs_err::create_dir_all(&dir)?;
    let target = dir.join(format!("{name}.wasm"));
    let partial = dir.join(format!(".{name}.wasm.partial"));
    fs_err::copy(file, &partial)?;
    fs_err::rename(&partial, &target)?;
    Ok((name, target))
}

/// Removes the installed adapter `name`.
pub fn remove(name: &str) -> Result<PathBuf, InstallError> {
    let dir = plugins_dir()?;
    let path = dir.join(format!("{name}.wasm"));
    if !stellar_config::is_provider_name(name) || !path.is_file() {
        return Err(InstallError::NotInstalled {
            name: name.to_owned(),
            dir,
        });
    }
    fs_err::remove_file(&path)?;
    Ok(path)
}
