//! `stellar compare RUN_A RUN_B [RUN_C ...]`: is B really faster or slower than A, or is the
//! difference within run-to-run noise?
//!
//! Sub-experiments are matched by their slug (same experiment file, or files with the same
//! titles). For each group (all, cold, warm, each burst size) the medians and p99s are compared
//! with bootstrap confidence intervals of the difference and a Mann–Whitney U test
//! ([`stellar_results::compare`]); a difference counts only when both say so and it exceeds
//! the noise threshold (`--noise-threshold`, 5 % of the baseline's median by default). Every
//! run after the first is compared with the first.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use stellar_results::compare::{GroupComparison, compare_rows, render_comparison};
use stellar_results::read_latencies;

use crate::analysis::read_plan;

/// One sub-experiment present in both runs.
#[derive(Debug, Clone, Serialize)]
pub struct SubComparison {
    pub slug: String,
    pub groups: Vec<GroupComparison>,
}

/// The comparison of `other` against `baseline`.
#[derive(Debug, Clone, Serialize)]
pub struct RunComparison {
    pub baseline: PathBuf,
    pub other: PathBuf,
    pub sub_experiments: Vec<SubComparison>,
    /// Sub-experiments found in only one of the runs.
    pub unmatched: Vec<String>,
}

/// Compares the run in `other` with the one in `baseline`; `seed` seeds the bootstraps and
/// `noise_threshold` (a fraction of the baseline's median) is the smallest change that counts.
pub fn compare_runs(
    baseline: &Path,
    other: &Path,
    seed: u64,
    noise_threshold: f64,
) -> anyhow::Result<RunComparison> {
    let a = sub_dirs(baseline)?;
    let b = sub_dirs(other)?;
    let mut subs = Vec::new();
    let mut unmatched = Vec::new();
    for (slug, dir_a) in &a {
        let Some((_, dir_b)) = b.iter().find(|(s, _)| s == slug) else {
            unmatched.push(slug.clone());
            continue;
        };
        let rows_a = read_latencies(dir_a.join(stellar_results::LATENCIES_CSV))?;
        let rows_b = read_latencies(dir_b.join(stellar_results::LATENCIES_CSV))?;
        subs.push(SubComparison {
            slug: slug.clone(),
            groups: compare_rows(&rows_a, &rows_b, seed, noise_threshold),
        });
    }
    unmatched.extend(
        b.iter()
            .filter(|(s, _)| !a.iter().any(|(sa, _)| sa == s))
            .map(|(s, _)| s.clone()),
    );
    Ok(RunComparison {
        baseline: baseline.to_owned(),
        other: other.to_owned(),
        sub_experiments: subs,
        unmatched,
    })
}

/// The comparison as text for the terminal.
pub fn render(comparison: &RunComparison) -> String {
    let a = short_name(&comparison.baseline);
    let b = short_name(&comparison.other);
    let mut text = format!("A = {a}\nB = {b}\n");
    for sub in &comparison.sub_experiments {
        text.push_str(&format!("\n{}\n", sub.slug));
        text.push_str(&render_comparison("A", "B", &sub.groups));
    }
    if comparison.sub_experiments.is_empty() {
        text.push_str("\nno sub-experiment appears in both runs\n");
    }
    for slug in &comparison.unmatched {
        text.push_str(&format!("(only in one run: {slug})\n"));
    }
    text
}

/// `(slug, directory)` of every sub-experiment of a run that has a `latencies.csv`, in plan order.
fn sub_dirs(run_dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let plan = read_plan(run_dir).with_context(|| format!("comparing {}", run_dir.display()))?;
    Ok(plan
        .sub_experiments
        .iter()
        .map(|s| (s.slug.clone(), run_dir.join(&s.slug)))
        .filter(|(_, dir)| dir.join(stellar_results::LATENCIES_CSV).is_file())
        .collect())
}

fn short_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
