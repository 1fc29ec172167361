//! `stellar cleanup RUN_DIR...`: removes what earlier runs created and did not remove.
//!
//! A run journals every function before creating it (`resources.jsonl`) and tears everything
//! down at its end; a run that crashed, was killed or lost its network leaves functions behind,
//! and they cost money. This reads each run's journal and its `plan.json` (for the provider and
//! its settings), opens the same adapter, and removes whatever may still exist. A function the
//! provider no longer knows counts as removed. Every outcome is appended to the journal, so
//! cleanup can be repeated until nothing is left.

use std::path::{Path, PathBuf};

use anyhow::Context;
use stellar_config::{Plan, ProviderKind};

use crate::embedded::{self, Companion};
use crate::journal::{self, Journal, JournalEvent};
use crate::provision::adapter::{self, AdapterOptions};

/// What cleanup did for one run directory.
#[derive(Debug, Default)]
pub struct CleanupOutcome {
    pub run_dir: PathBuf,
    pub removed: Vec<String>,
    pub already_gone: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Removes the outstanding functions of the run in `run_dir`, and the scratch directory a
/// killed run left there; `options.plugin_file` must be given when the run used a third-party
/// adapter that is not installed, with the same grants.
pub async fn cleanup_run(
    run_dir: &Path,
    options: &AdapterOptions,
) -> anyhow::Result<CleanupOutcome> {
    crate::provision::remove_stale_work_dirs(run_dir)
        .with_context(|| format!("removing the scratch directory in {}", run_dir.display()))?;
    let journal_path = run_dir.join("resources.jsonl");
    let mut outcome = CleanupOutcome {
        run_dir: run_dir.to_owned(),
        ..CleanupOutcome::default()
    };
    if !journal_path.is_file() {
        return Ok(outcome);
    }
    let outstanding = journal::outstanding_in(&journal_path)?;
    if outstanding.is_empty() {
        return Ok(outcome);
    }
    let plan_path = run_dir.join("plan.json");
    let plan: Plan = serde_json::from_str(&fs_err::read_to_string(&plan_path)?)
        .with_context(|| format!("{} is not a stellar plan", plan_path.display()))?;
    let ProviderKind::Named(provider) = &plan.provider else {
        return Ok(outcome);
    };
    let mut journal = Journal::create(&journal_path)?;
    let companion = match options.plugin_file {
        Some(_) => Companion::None,
        None => embedded::first_party(provider).map_or(Companion::None, |p| p.companion),
    };
    if companion == Companion::LocalRuntime {
        // Local functions live in the stellar process that ran them and end with it.
        for resource in outstanding {
            journal.record(
                JournalEvent::Removed,
                &resource.provider,
                &resource.function,
                None,
                Some("local functions end with the run's process"),
            )?;
            outcome.already_gone.push(resource.function);
        }
        return Ok(outcome);
    }
    let work_dir = tempfile::Builder::new()
        .prefix("stellar-cleanup-")
        .tempdir()
        .context("creating cleanup's temporary directory")?;
    let mut open = adapter::open(&plan, provider, options, work_dir.path()).await?;
    for resource in outstanding {
        let function = resource.function;
        match open.instance.remove_function(&function).await {
            Ok(()) => {
                journal.record(JournalEvent::Removed, provider, &function, None, None)?;
                outcome.removed.push(function);
            }
            Err(e) if e.is_not_found() => {
                journal.record(
                    JournalEvent::Removed,
                    provider,
                    &function,
                    None,
                    Some("the provider no longer knows it"),
                )?;
                outcome.already_gone.push(function);
            }
            Err(e) => {
                let message = format!("{e}");
                journal.record(
                    JournalEvent::RemoveFailed,
                    provider,
                    &function,
                    None,
                    Some(&message),
                )?;
                outcome.failed.push((function, message));
            }
        }
    }
    Ok(outcome)
}
