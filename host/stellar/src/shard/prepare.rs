//! `stellar prepare EXPERIMENT -o RUN_DIR`: plan and deploy once, for shards to send later.
//!
//! Deploying belongs to no shard: it needs the credentials, and done N times it would create N
//! sets of functions. So the run is planned and deployed here, once, and everything a shard
//! needs is frozen into `RUN_DIR/plan.json` ([`super::prepared`]): the validated plan with
//! its seed and full schedule, the endpoint URLs and a content hash. The functions stay
//! deployed when this process exits (`resources.jsonl` lists them; `stellar cleanup RUN_DIR`
//! removes them after the merge). An adapter whose companion is the embedded local runtime
//! needs a standalone `stellar local serve` for that, since the embedded one ends with this
//! process.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use stellar_config::ProviderKind;

use super::prepared::{PREPARED_SCHEMA, Prepared, PreparedRun};
use crate::embedded::Companion;
use crate::provision::{AdapterOptions, Provisioned};
use crate::resume::RunManifest;
use crate::run::RunArgs;

/// Command-line choices of `stellar prepare`.
#[derive(Debug, Clone)]
pub struct PrepareArgs {
    /// The experiment, seed and sub-experiment selection, as for `stellar run`.
    pub run: RunArgs,
    /// The run directory to create.
    pub run_dir: PathBuf,
    /// For a sequential plan: the pause between one sub-experiment's last burst and the next
    /// one's first, on every shard's common schedule.
    pub sequential_gap: Duration,
    /// A running `stellar local serve` (control URL, token) for adapters whose companion is
    /// the local runtime.
    pub local_runtime: Option<(String, String)>,
}

/// What `stellar prepare` made.
#[derive(Debug)]
pub struct PrepareOutcome {
    pub run_dir: PathBuf,
    pub run_id: String,
    pub plan_sha256: String,
    pub endpoints: usize,
    pub requests: u64,
}

/// Plans, deploys and freezes the run.
pub async fn prepare(args: &PrepareArgs) -> anyhow::Result<PrepareOutcome> {
    let plan = crate::run::plan(&args.run)?;
    if args.run_dir.exists() && fs_err::read_dir(&args.run_dir)?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not empty: `stellar prepare` writes a new run directory",
            args.run_dir.display()
        );
    }
    if let ProviderKind::Named(provider) = &plan.provider {
        let checked = crate::provision::adapter::check(&plan, provider, &args.run.adapter).await?;
        if checked.companion == Companion::LocalRuntime && args.local_runtime.is_none() {
            anyhow::bail!(
                "the `{provider}` adapter deploys into the embedded local runtime, which ends \
                 with this process; start `stellar local serve` and pass its control URL with \
                 --local-control-url (its token in STELLAR_LOCAL_TOKEN)"
            );
        }
    }
    fs_err::create_dir_all(&args.run_dir)?;
    let run_id = crate::run::run_id();
    RunManifest::start(&run_id, &args.run.experiment)?.write(&args.run_dir)?;
    let options: &AdapterOptions = &args.run.adapter;
    let provisioned = Provisioned::new_detached(
        &plan,
        &run_id,
        &args.run_dir,
        options,
        args.local_runtime.clone(),
    )
    .await
    .context("deploying the prepared run's functions")?;
    let prepared = Prepared {
        schema: PREPARED_SCHEMA.into(),
        run_id: run_id.clone(),
        prepared_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        endpoints: provisioned
            .endpoints
            .iter()
            .map(|sub| sub.iter().map(|e| e.url.clone()).collect())
            .collect(),
        measurement_function: provisioned.measurement_function,
        extra_query: provisioned.fault_query(&plan).map(str::to_owned),
        sub_start_ms: super::prepared::sub_start_offsets(
            &plan,
            args.sequential_gap.as_secs_f64() * 1e3,
        ),
        plan_sha256: String::new(),
    };
    let endpoints = prepared.endpoints.iter().map(Vec::len).sum();
    let plan_sha256 = PreparedRun::write(&plan, prepared, &args.run_dir)?;
    // The functions stay deployed for the shards: dropped, not torn down.
    drop(provisioned);
    Ok(PrepareOutcome {
        run_dir: args.run_dir.clone(),
        run_id,
        plan_sha256,
        endpoints,
        requests: plan.total_requests(),
    })
}
