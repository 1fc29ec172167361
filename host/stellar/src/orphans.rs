//! `stellar cleanup --provider P --older-than AGE [--dry-run]`: finds and removes the functions
//! stellar left behind when no results directory (and so no journal) is left to say what they
//! are.
//!
//! Why: `cleanup RUN_DIR` needs the run's `resources.jsonl`; a deleted or lost results
//! directory, or a machine that died, leaves functions that keep costing money. This asks the
//! adapter what exists (`list-apis`) and keeps only what stellar created and what is old enough:
//! - the name is one stellar gives (`st-<run id>-<NN>-<PP>`, [`crate::provision::function_name`]),
//!   and if the adapter reports a `stellar-run` label it agrees with the name;
//! - the adapter reports when it was created (`created-unix-ms` in the endpoint's meta; the aws
//!   adapter reports Lambda's `LastModified`), and that is at least `--older-than` ago.
//!
//! A function of unknown age is never removed (it is listed as such). `--dry-run` lists and
//! removes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;

use crate::provision::adapter::{self, AdapterOptions, Companionship};

/// Meta key adapters use for a function's creation time (Unix milliseconds).
pub const CREATED_META: &str = "created-unix-ms";
/// Meta key adapters use for the run label stellar attached.
pub const RUN_META: &str = "stellar-run";

/// What to look for and where.
#[derive(Debug, Clone)]
pub struct OrphanQuery {
    pub provider: String,
    pub older_than: Duration,
    pub dry_run: bool,
    /// The adapter's settings (as `Stellar.ProviderSettings` would give them).
    pub settings: BTreeMap<String, String>,
    /// For a provider whose companion is the local runtime: the running one to ask.
    pub local_runtime: Option<(String, String)>,
}

/// One function stellar created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub function: String,
    pub run_id: String,
    /// `None` when the adapter does not report a creation time.
    pub age: Option<Duration>,
}

/// What the listing found and what was done.
#[derive(Debug, Default)]
pub struct OrphanOutcome {
    /// Stellar's functions at least `older_than` old (removed unless a dry run).
    pub orphans: Vec<Found>,
    /// Stellar's functions younger than the threshold, or of unknown age: kept.
    pub kept: Vec<Found>,
    /// Functions that stellar did not create: never touched.
    pub foreign: usize,
    pub removed: Vec<String>,
    pub failed: Vec<(String, String)>,
    /// Set when the provider's companion runtime was started just for this listing (so it
    /// cannot hold anything): what to do instead.
    pub note: Option<String>,
}

/// Classifies one listed function: `None` when stellar did not create it.
pub fn classify(id: &str, meta: &[(String, String)], now: SystemTime) -> Option<Found> {
    let run_id = crate::provision::run_id_of(id)?;
    let get = |key: &str| meta.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if get(RUN_META).is_some_and(|label| label != run_id) {
        return None;
    }
    let age = get(CREATED_META)
        .and_then(|v| v.parse::<u64>().ok())
        .and_then(|ms| {
            now.duration_since(UNIX_EPOCH + Duration::from_millis(ms))
                .ok()
                .or(Some(Duration::ZERO))
        });
    Some(Found {
        function: id.to_owned(),
        run_id: run_id.to_owned(),
        age,
    })
}

/// Lists the provider's functions and removes stellar's old ones (see the module docs).
pub async fn cleanup_orphans(
    query: &OrphanQuery,
    options: &AdapterOptions,
) -> anyhow::Result<OrphanOutcome> {
    let work_dir = tempfile::Builder::new()
        .prefix("stellar-cleanup-")
        .tempdir()
        .context("creating cleanup's temporary directory")?;
    let companionship = match &query.local_runtime {
        Some((control_url, token)) => Companionship::Running {
            control_url: control_url.clone(),
            token: token.clone(),
        },
        None => Companionship::Start {
            work_dir: work_dir.path(),
        },
    };
    let mut open = adapter::open_settings(
        &query.settings,
        Path::new("the command line (--setting)"),
        &query.provider,
        options,
        companionship,
    )
    .await?;
    let listed = open
        .instance
        .list_apis()
        .await
        .with_context(|| format!("listing the functions of `{}`", query.provider))?;
    let now = SystemTime::now();
    let mut outcome = OrphanOutcome::default();
    for endpoint in listed {
        match classify(&endpoint.id, &endpoint.meta, now) {
            None => outcome.foreign += 1,
            Some(found) if found.age.is_some_and(|age| age >= query.older_than) => {
                outcome.orphans.push(found);
            }
            Some(found) => outcome.kept.push(found),
        }
    }
    if !query.dry_run {
        for found in &outcome.orphans {
            match open.instance.remove_function(&found.function).await {
                Ok(()) => outcome.removed.push(found.function.clone()),
                Err(e) if e.is_not_found() => outcome.removed.push(found.function.clone()),
                Err(e) => outcome.failed.push((found.function.clone(), e.to_string())),
            }
        }
    }
    if let Some(local) = open.local.take() {
        outcome.note = Some(format!(
            "`{}` functions run in the runtime of the stellar process that created them and end \
             with it; to clean up a running `stellar local serve`, pass --local-control-url URL \
             and its token in STELLAR_LOCAL_TOKEN",
            query.provider
        ));
        local.shutdown().await;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn only_stellar_names_with_a_matching_label_count() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let created = meta(&[(CREATED_META, "4000000")]);
        let found = classify("st-0a1b2c-00-01", &created, now).unwrap();
        assert_eq!(found.run_id, "0a1b2c");
        assert_eq!(found.age, Some(Duration::from_secs(6000)));
        for foreign in [
            "my-function",
            "st-0a1b2c",
            "st-0a1b2c-00",
            "st-0A1B2C-00-01",
            "st-0a1b2-00-01",
            "st-0a1b2c-0-01",
            "st-0a1b2c-00-01-x",
            "xst-0a1b2c-00-01",
        ] {
            assert_eq!(classify(foreign, &created, now), None, "{foreign}");
        }
        // A label that contradicts the name: not ours.
        let other = meta(&[(RUN_META, "ffffff"), (CREATED_META, "1")]);
        assert_eq!(classify("st-0a1b2c-00-01", &other, now), None);
        let same = meta(&[(RUN_META, "0a1b2c")]);
        let found = classify("st-0a1b2c-12-345", &same, now).unwrap();
        assert_eq!(found.age, None, "no creation time: unknown age");
        // Every name stellar gives is recognised, with its run id.
        let name = crate::provision::function_name("0a1b2c", 3, 112);
        assert_eq!(crate::provision::run_id_of(&name), Some("0a1b2c"));
        let member = crate::chain::member_name(&name, 7);
        assert_eq!(crate::provision::run_id_of(&member), Some("0a1b2c"));
        assert_eq!(crate::provision::run_id_of("st-0a1b2c-00-01-02-03"), None);
        // A clock behind the provider's: age zero, never negative.
        let future = meta(&[(CREATED_META, "20000000")]);
        assert_eq!(
            classify("st-0a1b2c-00-00", &future, now).unwrap().age,
            Some(Duration::ZERO)
        );
    }
}
