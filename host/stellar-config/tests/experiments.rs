//! Every experiment file shipped in the repository's `experiments/` directory must load and
//! plan, so the examples cannot rot; the quickstart must also stay quick.

use std::path::{Path, PathBuf};
use std::time::Duration;

use stellar_config::{Plan, PlanOptions, ProviderKind, SeedSource};

fn experiments_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../experiments")
}

/// All `*.json` files under `dir`, recursively, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs_err::read_dir(&dir).expect("readable directory") {
            let path = entry.expect("readable directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

fn plan(path: &Path) -> Plan {
    Plan::from_file(
        path,
        &PlanOptions {
            now_unix_ms: 1,
            ..PlanOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_experiment_file_plans() {
    let files = json_files(&experiments_dir());
    assert!(files.len() >= 5, "found only {files:?}");
    for file in &files {
        let plan = plan(file);
        assert!(plan.total_requests() > 0, "{}", file.display());
        for sub in &plan.sub_experiments {
            assert!(!sub.bursts.is_empty(), "{}: {}", file.display(), sub.slug);
        }
    }
}

#[test]
fn local_experiments_are_seeded() {
    for file in json_files(&experiments_dir()) {
        let plan = plan(&file);
        if plan.provider.is_local() {
            assert_eq!(
                plan.seed_source,
                SeedSource::File,
                "{} needs a Stellar.Seed",
                file.display()
            );
        }
    }
}

#[test]
fn quickstart_is_quick_and_shows_warm_and_cold() {
    let plan = plan(&experiments_dir().join("quickstart.json"));
    assert_eq!(plan.provider, ProviderKind::Named("local".into()));
    assert!(plan.sequential);
    assert!(
        plan.duration_estimate() < Duration::from_secs(30),
        "{:?}",
        plan.duration_estimate()
    );
    let keep_alive_ms = plan.settings.local.keep_alive_ms as f64;
    // Some sub-experiment revisits its endpoints sooner than the keep-alive (warm) ...
    let min_gap = |sub: &stellar_config::SubExperimentPlan| {
        let mut gaps = Vec::new();
        for endpoint in 0..sub.parallelism {
            let mut offsets: Vec<f64> = sub
                .bursts
                .iter()
                .filter(|b| b.endpoint == endpoint)
                .map(|b| b.offset_ms)
                .collect();
            offsets.sort_by(f64::total_cmp);
            gaps.extend(offsets.windows(2).map(|w| w[1] - w[0]));
        }
        gaps.into_iter().fold(f64::INFINITY, f64::min)
    };
    assert!(
        plan.sub_experiments
            .iter()
            .any(|s| min_gap(s) < keep_alive_ms)
    );
    // ... and some only after it expired (cold again), with bursts larger than one request.
    assert!(
        plan.sub_experiments
            .iter()
            .any(|s| min_gap(s) > keep_alive_ms && s.bursts.iter().any(|b| b.size > 1))
    );
}

#[test]
fn stellar_compat_files_plan_with_ignored_field_notes() {
    let dir = experiments_dir().join("stellar-compat");
    let files = json_files(&dir);
    assert!(files.len() >= 2, "found only {files:?}");
    for file in files {
        let plan = plan(&file);
        assert!(
            !plan.ignored.is_empty(),
            "{} should list ignored fields",
            file.display()
        );
    }
}
