//! Artifact kind `fc-custom-zip`: the code package of an Alibaba Cloud Function Compute 3.0
//! custom runtime (`custom.debian12`).
//!
//! FC unpacks the zip into `/code` and runs `customRuntimeConfig.command`, `/code/bootstrap` by
//! default, which must serve HTTP on `0.0.0.0:9000` (`FC_SERVER_PORT`). That is exactly the
//! plain-HTTP measurement function (`stellar-measure-http`), so the `bootstrap` here is the one
//! embedded in this binary (a release build for this machine; Debian 12 runtimes match a
//! Debian 12 / glibc ≤ 2.36 build host) or `Stellar.FunctionBinary`. The zip itself, with
//! `bootstrap` at the root (mode 0755) and the padding to `FunctionImageSizeMB`, is the Lambda
//! packager's ([`lambda_zip::lambda_zip`], [`lambda_zip::per_image_size`]): the same format.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use stellar_config::{Architecture, Plan};

use super::lambda_zip::{self, BOOTSTRAP, PackagedArtifact};
use super::native_binary;

/// Default output of `stellar build` for this kind.
pub const DEFAULT_OUTPUT: &str = "fc-code.zip";

/// The `bootstrap` to package: `function_binary` when given, else the embedded HTTP
/// measurement function written to `<work_dir>/bootstrap`. FC custom runtimes run x86_64
/// Linux, which the embedded build only is on an x86_64 Linux machine.
pub fn bootstrap(
    function_binary: Option<&Path>,
    arch: Architecture,
    work_dir: &Path,
) -> anyhow::Result<PathBuf> {
    if arch != Architecture::X86_64 {
        bail!(
            "Stellar.Architecture: {} is not available for Function Compute custom runtimes; \
             expected x86_64",
            arch.as_str()
        );
    }
    if let Some(path) = function_binary {
        if !path.is_file() {
            bail!(
                "Stellar.FunctionBinary: {} is not a file (expected the plain-HTTP measurement \
                 function for x86_64 Linux, e.g. from `stellar build --provider aliyun`)",
                path.display()
            );
        }
        return Ok(path.to_owned());
    }
    if std::env::consts::ARCH != "x86_64" || std::env::consts::OS != "linux" {
        bail!(
            "the measurement function embedded in this stellar binary is built for {}-{}, but \
             Function Compute runs x86_64 Linux; build `stellar-measure-http` for \
             x86_64-unknown-linux-gnu and set Stellar.FunctionBinary to it",
            std::env::consts::ARCH,
            std::env::consts::OS
        );
    }
    fs_err::create_dir_all(work_dir)?;
    let path = work_dir.join(BOOTSTRAP);
    native_binary::write_to(&path).context("writing the measurement function as `bootstrap`")?;
    Ok(path)
}

/// One code zip per sub-experiment of `plan` (shared between equal `FunctionImageSizeMB`).
pub fn for_plan(plan: &Plan, work_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let bootstrap = bootstrap(
        plan.settings.function_binary.as_deref(),
        plan.settings.architecture,
        work_dir,
    )?;
    lambda_zip::per_image_size(
        plan,
        work_dir,
        "fc-code",
        "the Function Compute code zip",
        |out, pad| {
            lambda_zip::lambda_zip(&bootstrap, out, pad, plan.seed)
                .with_context(|| format!("packaging {}", bootstrap.display()))
        },
    )
}

/// `stellar build` for this kind: the zip at `output`, padded to `pad_to_bytes`.
pub fn build(
    arch: Architecture,
    pad_to_bytes: Option<u64>,
    seed: u64,
    output: &Path,
) -> anyhow::Result<PackagedArtifact> {
    let work = tempfile::tempdir().context("creating a temporary directory")?;
    let bootstrap = bootstrap(None, arch, work.path())?;
    Ok(lambda_zip::lambda_zip(
        &bootstrap,
        output,
        pad_to_bytes,
        seed,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn the_zip_holds_the_embedded_http_function_as_bootstrap() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("code.zip");
        let zip = build(Architecture::X86_64, Some(3 << 20), 1, &out).unwrap();
        assert!(
            zip.size >= 3 << 20 && zip.size <= (3 << 20) + 1024,
            "{}",
            zip.size
        );
        let mut archive = zip::ZipArchive::new(fs_err::File::open(&out).unwrap()).unwrap();
        let mut entry = archive.by_name(BOOTSTRAP).unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o7777), Some(0o755));
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, crate::embedded::MEASURE_HTTP_BIN);
    }

    #[test]
    fn arm64_and_missing_binaries_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = bootstrap(None, Architecture::Arm64, dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("Stellar.Architecture: arm64"),
            "{err}"
        );
        let missing = dir.path().join("nope");
        let err = bootstrap(Some(&missing), Architecture::X86_64, dir.path()).unwrap_err();
        assert!(err.to_string().contains("Stellar.FunctionBinary"), "{err}");
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
    }
}
