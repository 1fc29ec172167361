//! Packaging: what the host builds for an adapter, chosen by the artifact kinds the adapter
//! declares (one module per kind), never by the provider's name.
//!
//! The adapter lists the kinds it accepts, most preferred first; the host builds the first one
//! it can produce. `none` means the adapter needs nothing built: its functions are not
//! stellar's measurement function.

pub mod custom_handler_zip;
pub mod fc_custom_zip;
pub mod lambda_zip;
pub mod native_binary;
pub mod oci_image;

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use stellar_config::Plan;

use crate::plugin::ArtifactKind;
use crate::plugin::declaration::artifact_words;

/// Artifact kinds this build of stellar can produce.
pub const PRODUCIBLE: [ArtifactKind; 6] = [
    ArtifactKind::NativeBinary,
    ArtifactKind::LambdaZip,
    ArtifactKind::CustomHandlerZip,
    ArtifactKind::FcCustomZip,
    ArtifactKind::OciImage,
    ArtifactKind::None,
];

/// The first of `accepted` this build can produce.
pub fn choose_kind(accepted: &[ArtifactKind]) -> anyhow::Result<ArtifactKind> {
    accepted
        .iter()
        .copied()
        .find(|k| PRODUCIBLE.contains(k))
        .with_context(|| {
            let wanted: Vec<&str> = accepted.iter().map(|k| artifact_words(*k)).collect();
            format!(
                "the adapter deploys {}, which this build of stellar cannot produce yet \
                 (it builds: the local executable, a Lambda zip, an Azure custom-handler zip, a \
                 Function Compute custom-runtime zip, an OCI image, or nothing)",
                wanted.join("; or ")
            )
        })
}

/// The artifact of each sub-experiment of a plan.
#[derive(Debug, Clone)]
pub struct FunctionArtifacts {
    kind: ArtifactKind,
    per_sub_experiment: Vec<Option<PathBuf>>,
}

impl FunctionArtifacts {
    /// Builds (or finds) what the adapter accepts for every sub-experiment of `plan`, in
    /// `work_dir`.
    pub fn prepare(
        plan: &Plan,
        accepted: &[ArtifactKind],
        work_dir: &Path,
    ) -> anyhow::Result<Self> {
        let kind = choose_kind(accepted)?;
        let count = plan.sub_experiments.len();
        let per_sub_experiment = match kind {
            ArtifactKind::NativeBinary => {
                let binary = native_binary::write(work_dir)
                    .context("writing the measurement function for the local provider")?;
                vec![Some(binary); count]
            }
            ArtifactKind::LambdaZip => lambda_zip::for_plan(plan, work_dir)?
                .into_iter()
                .map(Some)
                .collect(),
            ArtifactKind::CustomHandlerZip => custom_handler_zip::for_plan(plan, work_dir)?
                .into_iter()
                .map(Some)
                .collect(),
            ArtifactKind::FcCustomZip => fc_custom_zip::for_plan(plan, work_dir)?
                .into_iter()
                .map(Some)
                .collect(),
            ArtifactKind::OciImage => oci_image::for_plan(plan, work_dir)?
                .into_iter()
                .map(Some)
                .collect(),
            ArtifactKind::None => vec![None; count],
        };
        Ok(Self {
            kind,
            per_sub_experiment,
        })
    }

    /// What was built.
    pub fn kind(&self) -> ArtifactKind {
        self.kind
    }

    /// Whether the deployed functions run stellar's measurement function.
    pub fn is_measurement_function(&self) -> bool {
        self.kind != ArtifactKind::None
    }

    /// The artifact to deploy for the sub-experiment at `position` in the plan.
    pub fn for_sub_experiment(&self, position: usize) -> Option<(PathBuf, ArtifactKind)> {
        self.per_sub_experiment
            .get(position)
            .cloned()
            .flatten()
            .map(|p| (p, self.kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_producible_kind_wins() {
        assert_eq!(
            choose_kind(&[ArtifactKind::OciImage, ArtifactKind::LambdaZip]).unwrap(),
            ArtifactKind::OciImage
        );
        assert_eq!(
            choose_kind(&[ArtifactKind::None]).unwrap(),
            ArtifactKind::None
        );
        // Every kind of the contract is producible now; an adapter declaring none is refused.
        assert!(choose_kind(&[]).is_err());
    }
}
