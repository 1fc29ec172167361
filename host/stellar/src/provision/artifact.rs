//! The function artifacts a run deploys, built for what the adapter declares it needs.
//!
//! `native-binary` (the local provider) is the embedded HTTP measurement function written to
//! disk. `lambda-zip` (AWS) is a zip with the Lambda `bootstrap`: from `Stellar.FunctionBinary`
//! when given, else built from this checkout by [`crate::package`]; one zip per distinct
//! `FunctionImageSizeMB`, padded to that size with incompressible filler (what STeLLAR's image
//! size experiments measure).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use stellar_config::{Architecture, Plan, SubExperimentPlan};

use crate::embedded;
use crate::package::{self, LambdaArch, LambdaBuild, PackagedArtifact};
use crate::plugin::ArtifactKind;

/// The artifact of each sub-experiment (plan order).
#[derive(Debug, Clone)]
pub struct FunctionArtifacts {
    per_sub_experiment: Vec<PathBuf>,
}

impl FunctionArtifacts {
    /// Builds (or finds) what `kind` needs for every sub-experiment of `plan`, in `work_dir`.
    pub fn prepare(plan: &Plan, kind: ArtifactKind, work_dir: &Path) -> anyhow::Result<Self> {
        let per_sub_experiment = match kind {
            ArtifactKind::NativeBinary => {
                let binary = write_function_binary(work_dir)?;
                vec![binary; plan.sub_experiments.len()]
            }
            ArtifactKind::LambdaZip => lambda_zips(plan, work_dir)?,
            other => bail!(
                "the adapter needs a {other:?} artifact, which this build of stellar cannot produce yet"
            ),
        };
        Ok(Self { per_sub_experiment })
    }

    /// The artifact to deploy for the sub-experiment at `position` in the plan.
    pub fn for_sub_experiment(&self, position: usize) -> &Path {
        &self.per_sub_experiment[position]
    }
}

/// Writes the embedded measurement function where the local runtime can read it.
fn write_function_binary(work_dir: &Path) -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = work_dir.join("stellar-measure-http");
    fs_err::write(&path, embedded::MEASURE_HTTP_BIN)?;
    fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    Ok(path)
}

fn lambda_zips(plan: &Plan, work_dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let bootstrap = match &plan.settings.function_binary {
        Some(path) => {
            if !path.is_file() {
                bail!(
                    "Stellar.FunctionBinary: {} is not a file (expected the Lambda `bootstrap` \
                     executable, e.g. from `stellar build --provider aws`)",
                    path.display()
                );
            }
            path.clone()
        }
        None => build_bootstrap(plan.settings.architecture)?,
    };
    let mut by_size: BTreeMap<u64, PackagedArtifact> = BTreeMap::new();
    let mut zips = Vec::new();
    for sub in &plan.sub_experiments {
        let pad = pad_bytes(sub);
        let zip = match by_size.entry(pad.unwrap_or(0)) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                let out = work_dir.join(format!("bootstrap-{}.zip", e.key()));
                let zip = package::lambda_zip(&bootstrap, &out, pad, plan.seed)
                    .with_context(|| format!("packaging {}", bootstrap.display()))?;
                if let Some(pad) = pad
                    && zip.size > pad + 1024
                {
                    tracing::warn!(
                        sub_experiment = %sub.slug,
                        requested_mb = sub.function_image_size_mb,
                        actual_bytes = zip.size,
                        "the function package is already larger than FunctionImageSizeMB"
                    );
                }
                tracing::info!(path = %zip.path.display(), bytes = zip.size, sha256 = %zip.sha256,
                    "packaged the Lambda function");
                e.insert(zip)
            }
        };
        zips.push(zip.path.clone());
    }
    Ok(zips)
}

/// `FunctionImageSizeMB` in bytes, when the sub-experiment asks for padding.
fn pad_bytes(sub: &SubExperimentPlan) -> Option<u64> {
    let mb = sub.function_image_size_mb;
    (mb.is_finite() && mb > 0.0).then(|| (mb * 1024.0 * 1024.0).round() as u64)
}

/// The checkout this binary was built from, which holds the measurement function's source.
fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the Lambda `bootstrap` for `arch` from this checkout with cargo-lambda.
pub fn build_bootstrap(arch: Architecture) -> anyhow::Result<PathBuf> {
    let source_dir = source_dir();
    if !source_dir.join("measurement-fn/Cargo.toml").is_file() {
        bail!(
            "this stellar binary was moved away from its source checkout ({}), so it cannot build \
             the Lambda function; build one with `stellar build` where the source is, and set \
             Stellar.FunctionBinary to it",
            source_dir.display()
        );
    }
    let build = LambdaBuild {
        arch: match arch {
            Architecture::X86_64 => LambdaArch::X86_64,
            Architecture::Arm64 => LambdaArch::Arm64,
        },
        target_dir: source_dir.join("target"),
        source_dir,
    };
    tracing::info!(
        arch = arch.as_str(),
        "building the Lambda function with cargo-lambda"
    );
    Ok(package::build_bootstrap(&build)?)
}
