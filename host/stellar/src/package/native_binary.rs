//! Artifact kind `native-binary`: the HTTP measurement function built for this machine and
//! embedded in the `stellar` binary (the local provider runs it as a child process).

use std::path::{Path, PathBuf};

use crate::embedded;

/// The file name of the written executable.
pub const FILE_NAME: &str = "stellar-measure-http";

/// Writes the embedded measurement function into `work_dir` as an executable.
pub fn write(work_dir: &Path) -> std::io::Result<PathBuf> {
    let path = work_dir.join(FILE_NAME);
    write_to(&path)?;
    Ok(path)
}

/// Writes the embedded measurement function to `path` as an executable.
pub fn write_to(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs_err::write(path, embedded::MEASURE_HTTP_BIN)?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}
