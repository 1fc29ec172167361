//! `stellar merge RUN_DIR [--allow-partial]`: the shards' raw rows become one run.
//!
//! Exact percentiles and the labels that look at whole bursts (`scale-out`, `cold-queued`)
//! need every row of a burst, and a burst is spread over all shards. So nothing is summarised
//! per shard: merge checks that every shard ran this very plan (hash), that each shard index
//! appears once, that every row belongs to the shard that wrote it and appears once, and that
//! a shard that says it finished has exactly the rows it owns; then it concatenates the rows
//! (ordered by planned send, burst, request) into `RUN_DIR/<NN-title>/latencies.csv` and
//! reruns the whole analysis ([`crate::analysis`]). A missing, killed or late shard makes the
//! run partial: refused unless `--allow-partial`, and then the report says so, naming the
//! shards and the requests they owned. `merge.json` records the shards and the cross-shard
//! spread of every burst's release.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use stellar_results::report::{Section, Table};
use stellar_results::writer::read_latencies_tolerating_torn_tail;
use stellar_results::{LatencyRow, LatencyWriter};

use super::Shard;
use super::prepared::PreparedRun;
use super::send::{SHARD_JSON, ShardOutcome, ShardRecord};
use crate::analysis::RunAnalysis;

/// File name of the merge's record.
pub const MERGE_JSON: &str = "merge.json";

/// Why shards could not be merged (each message names the directory or file at fault).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}: no shard directories with {SHARD_JSON} (expected RUN_DIR/shards/<I>/)")]
    NoShards(PathBuf),
    #[error(
        "{dir}: {SHARD_JSON} says plan_sha256 {found} but {run_dir}/plan.json hashes to \
         {expected}: this shard ran another plan; it cannot be merged into this run"
    )]
    PlanHash {
        dir: PathBuf,
        run_dir: PathBuf,
        found: String,
        expected: String,
    },
    #[error("shard {shard} appears twice: {first} and {second}; each index must be run once")]
    DuplicateIndex {
        shard: Shard,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{dir} is shard {shard} but {other} is shard {other_shard}: the shard counts differ")]
    ShardCount {
        dir: PathBuf,
        shard: Shard,
        other: PathBuf,
        other_shard: Shard,
    },
    #[error(
        "{path}: request {request_index} (burst {burst_id}) belongs to shard {owner}, not to \
         shard {shard} that wrote it"
    )]
    ForeignRow {
        path: PathBuf,
        request_index: u64,
        burst_id: u64,
        owner: u32,
        shard: Shard,
    },
    #[error("{path}: request {request_index} of {slug} has a row in two shards (or twice)")]
    DuplicateRow {
        path: PathBuf,
        slug: String,
        request_index: u64,
    },
    #[error(
        "{path}: shard {shard} says it finished but has {rows} rows for {slug}, where it owns \
         {planned} requests"
    )]
    RowCount {
        path: PathBuf,
        shard: Shard,
        slug: String,
        rows: u64,
        planned: u64,
    },
    #[error(
        "the run is partial, so it was not merged: {}. Pass --allow-partial to merge what there \
         is (the report then says the run is partial)",
        .0.join("; ")
    )]
    Partial(Vec<String>),
}

/// One shard as the merge saw it.
#[derive(Debug, Clone, Serialize)]
pub struct MergedShard {
    pub shard: Shard,
    pub dir: Option<PathBuf>,
    pub host: Option<String>,
    pub outcome: Option<ShardOutcome>,
    pub planned_requests: u64,
    pub rows: u64,
    pub max_clock_error_ms: Option<f64>,
    pub clock_synchronised: Option<bool>,
    pub ready_before_start_ms: Option<f64>,
}

/// The spread of one burst's release across shards: the latest shard's first send minus the
/// earliest shard's (each on its own clock anchored at `T0`).
#[derive(Debug, Clone, Serialize)]
pub struct BurstSpread {
    pub sub_experiment: String,
    pub burst_id: u64,
    pub shards: usize,
    pub spread_ms: f64,
}

/// `merge.json`.
#[derive(Debug, Clone, Serialize)]
pub struct MergeRecord {
    pub plan_sha256: String,
    pub shard_count: u32,
    pub partial: bool,
    /// Plain words for each shard that is missing or did not finish.
    pub partial_reasons: Vec<String>,
    pub shards: Vec<MergedShard>,
    pub rows: u64,
    pub planned_requests: u64,
    /// Sum of the shards' kernel maximum clock errors at start (ms): the bound on how far
    /// the spreads may be off.
    pub clock_error_bound_ms: Option<f64>,
    pub spread_p50_ms: Option<f64>,
    pub spread_p99_ms: Option<f64>,
    pub spread_max_ms: Option<f64>,
    pub bursts: Vec<BurstSpread>,
}

/// What merging did.
#[derive(Debug)]
pub struct MergeOutcome {
    pub record: MergeRecord,
    pub analysis: RunAnalysis,
}

/// Merges the shards of the prepared run in `run_dir`.
pub fn merge(run_dir: &Path, allow_partial: bool) -> anyhow::Result<MergeOutcome> {
    let started = std::time::Instant::now();
    let prepared = PreparedRun::read(run_dir)?;
    let plan = &prepared.plan;
    let found = find_shards(run_dir)?;
    let Some((first_dir, first)) = found.first() else {
        return Err(MergeError::NoShards(run_dir.to_owned()).into());
    };
    let count = first.shard.count;
    let mut by_index: BTreeMap<u32, (PathBuf, ShardRecord)> = BTreeMap::new();
    for (dir, record) in &found {
        if record.plan_sha256 != prepared.hash() {
            return Err(MergeError::PlanHash {
                dir: dir.clone(),
                run_dir: run_dir.to_owned(),
                found: record.plan_sha256.clone(),
                expected: prepared.hash().to_owned(),
            }
            .into());
        }
        if record.shard.count != count {
            return Err(MergeError::ShardCount {
                dir: dir.clone(),
                shard: record.shard,
                other: first_dir.clone(),
                other_shard: first.shard,
            }
            .into());
        }
        if let Some((other, _)) = by_index.get(&record.shard.index) {
            return Err(MergeError::DuplicateIndex {
                shard: record.shard,
                first: other.clone(),
                second: dir.clone(),
            }
            .into());
        }
        by_index.insert(record.shard.index, (dir.clone(), record.clone()));
    }

    let bases = super::burst_ordinal_bases(plan);
    let mut partial_reasons = Vec::new();
    let mut shards = Vec::new();
    let mut merged: Vec<Vec<LatencyRow>> = vec![Vec::new(); plan.sub_experiments.len()];
    // Per sub-experiment, per burst: each shard's first send (ms after T0).
    let mut releases: Vec<HashMap<u64, BTreeMap<u32, f64>>> =
        vec![HashMap::new(); plan.sub_experiments.len()];
    for index in 0..count {
        let shard = Shard { index, count };
        let planned = super::planned_requests(plan, shard);
        let planned_total: u64 = planned.iter().sum();
        let Some((dir, record)) = by_index.get(&index) else {
            partial_reasons.push(format!(
                "shard {shard} is missing ({planned_total} planned requests)"
            ));
            shards.push(MergedShard {
                shard,
                dir: None,
                host: None,
                outcome: None,
                planned_requests: planned_total,
                rows: 0,
                max_clock_error_ms: None,
                clock_synchronised: None,
                ready_before_start_ms: None,
            });
            continue;
        };
        let mut rows_total = 0;
        for (position, sub) in plan.sub_experiments.iter().enumerate() {
            let path = dir.join(&sub.slug).join(stellar_results::LATENCIES_CSV);
            let rows = if path.is_file() {
                let (rows, torn) = read_latencies_tolerating_torn_tail(&path)?;
                if torn {
                    tracing::warn!(path = %path.display(), "dropped a row torn when the shard stopped");
                }
                rows
            } else {
                Vec::new()
            };
            let firsts = crate::drive::first_request_indices(&sub.bursts);
            for row in &rows {
                let first = firsts
                    .get(row.burst_id as usize)
                    .copied()
                    .unwrap_or(u64::MAX);
                let in_burst = row.request_index.wrapping_sub(first);
                let owner = shard.owner(bases[position] + row.burst_id, in_burst);
                if first == u64::MAX || in_burst >= u64::from(row.burst_size) || owner != index {
                    return Err(MergeError::ForeignRow {
                        path,
                        request_index: row.request_index,
                        burst_id: row.burst_id,
                        owner,
                        shard,
                    }
                    .into());
                }
                releases[position]
                    .entry(row.burst_id)
                    .or_default()
                    .entry(index)
                    .and_modify(|t| *t = t.min(row.actual_send_ms))
                    .or_insert(row.actual_send_ms);
            }
            let n = rows.len() as u64;
            if record.outcome == ShardOutcome::Complete && n != planned[position] {
                return Err(MergeError::RowCount {
                    path,
                    shard,
                    slug: sub.slug.clone(),
                    rows: n,
                    planned: planned[position],
                }
                .into());
            }
            rows_total += n;
            merged[position].extend(rows);
        }
        if record.outcome != ShardOutcome::Complete {
            let what = match record.outcome {
                ShardOutcome::Running => "did not finish (killed or lost)",
                ShardOutcome::StoppedEarly => "stopped early",
                ShardOutcome::MissedStart => "missed its start and sent nothing",
                ShardOutcome::ClockRefused => "refused its clock and sent nothing",
                ShardOutcome::Complete => "",
            };
            partial_reasons.push(format!(
                "shard {shard} ({}) {what}: {rows_total} of {planned_total} planned requests \
                 have rows",
                dir.display()
            ));
        }
        shards.push(MergedShard {
            shard,
            dir: Some(dir.clone()),
            host: Some(record.host.clone()),
            outcome: Some(record.outcome),
            planned_requests: planned_total,
            rows: rows_total,
            max_clock_error_ms: record.clock_at_start.map(|c| c.max_error_us as f64 / 1e3),
            clock_synchronised: record.clock_at_start.map(|c| c.synchronised),
            ready_before_start_ms: record.ready_before_start_ms,
        });
    }
    if !partial_reasons.is_empty() && !allow_partial {
        return Err(MergeError::Partial(partial_reasons).into());
    }

    // Each request once, over all shards.
    for (sub, rows) in plan.sub_experiments.iter().zip(&mut merged) {
        rows.sort_by(|a, b| {
            a.planned_send_ms
                .total_cmp(&b.planned_send_ms)
                .then(a.burst_id.cmp(&b.burst_id))
                .then(a.request_index.cmp(&b.request_index))
        });
        let mut seen = std::collections::HashSet::with_capacity(rows.len());
        for row in rows.iter() {
            if !seen.insert(row.request_index) {
                return Err(MergeError::DuplicateRow {
                    path: run_dir.join("shards"),
                    slug: sub.slug.clone(),
                    request_index: row.request_index,
                }
                .into());
            }
        }
    }

    let mut bursts = Vec::new();
    for (sub, per_burst) in plan.sub_experiments.iter().zip(&releases) {
        let mut ids: Vec<_> = per_burst.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let times = &per_burst[&id];
            if times.len() < 2 {
                continue;
            }
            let lo = times.values().copied().fold(f64::INFINITY, f64::min);
            let hi = times.values().copied().fold(f64::NEG_INFINITY, f64::max);
            bursts.push(BurstSpread {
                sub_experiment: sub.slug.clone(),
                burst_id: id,
                shards: times.len(),
                spread_ms: hi - lo,
            });
        }
    }
    let mut spreads: Vec<f64> = bursts.iter().map(|b| b.spread_ms).collect();
    spreads.sort_by(f64::total_cmp);
    let clock_errors: Vec<f64> = shards.iter().filter_map(|s| s.max_clock_error_ms).collect();
    let record = MergeRecord {
        plan_sha256: prepared.hash().to_owned(),
        shard_count: count,
        partial: !partial_reasons.is_empty(),
        partial_reasons,
        rows: merged.iter().map(|r| r.len() as u64).sum(),
        planned_requests: plan.total_requests(),
        clock_error_bound_ms: (!clock_errors.is_empty()).then(|| clock_errors.iter().sum()),
        spread_p50_ms: nearest_rank(&spreads, 0.5),
        spread_p99_ms: nearest_rank(&spreads, 0.99),
        spread_max_ms: spreads.last().copied(),
        shards,
        bursts,
    };

    let checked_s = started.elapsed().as_secs_f64();
    tracing::info!(
        seconds = checked_s,
        rows = record.rows,
        "shards read, checked and concatenated"
    );
    let mut subs = Vec::new();
    for (sub, rows) in plan.sub_experiments.iter().zip(merged) {
        let dir = run_dir.join(&sub.slug);
        fs_err::create_dir_all(&dir)?;
        let mut writer = LatencyWriter::create(dir.join(stellar_results::LATENCIES_CSV))?;
        for row in &rows {
            writer.write(row)?;
        }
        writer.finish()?;
        // The analysis reads the file back in compact form; the full rows can go.
        drop(rows);
        subs.push(
            crate::analysis::analyse_sub_experiment(plan, sub, &dir)
                .with_context(|| format!("analysing the merged rows of {}", sub.slug))?,
        );
    }
    tracing::info!(
        seconds = started.elapsed().as_secs_f64() - checked_s,
        "merged rows written and analysed"
    );
    fs_err::write(
        run_dir.join(MERGE_JSON),
        serde_json::to_string_pretty(&record)? + "\n",
    )?;
    let warnings = record
        .partial_reasons
        .iter()
        .map(|r| format!("This run is partial: {r}."))
        .collect();
    let analysis = crate::analysis::finish_run_with(
        plan,
        run_dir,
        subs,
        warnings,
        vec![shards_section(&record)],
    )?;
    Ok(MergeOutcome { record, analysis })
}

/// Every `shards/<dir>/shard.json` under the run, sorted by directory.
fn find_shards(run_dir: &Path) -> anyhow::Result<Vec<(PathBuf, ShardRecord)>> {
    let root = run_dir.join("shards");
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs = Vec::new();
    for entry in fs_err::read_dir(&root)? {
        let path = entry?.path();
        if path.join(SHARD_JSON).is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    dirs.into_iter()
        .map(|dir| Ok((dir.clone(), ShardRecord::read(&dir)?)))
        .collect()
}

fn nearest_rank(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3}"))
}

/// The report's section about the shards.
fn shards_section(record: &MergeRecord) -> Section {
    let shard_rows = record
        .shards
        .iter()
        .map(|s| {
            vec![
                s.shard.to_string(),
                s.host.clone().unwrap_or_else(|| "-".into()),
                s.outcome.map_or_else(
                    || "missing".into(),
                    |o| {
                        serde_json::to_value(o)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                            .unwrap_or_default()
                    },
                ),
                format!("{} / {}", s.rows, s.planned_requests),
                ms(s.ready_before_start_ms),
                match (s.clock_synchronised, s.max_clock_error_ms) {
                    (Some(sync), Some(err)) => format!(
                        "{}, max error {err:.3} ms",
                        if sync {
                            "synchronised"
                        } else {
                            "NOT synchronised"
                        }
                    ),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let spread_rows = vec![
        vec![
            "bursts sent by two or more shards".into(),
            record.bursts.len().to_string(),
        ],
        vec!["spread p50 (ms)".into(), ms(record.spread_p50_ms)],
        vec!["spread p99 (ms)".into(), ms(record.spread_p99_ms)],
        vec!["spread max (ms)".into(), ms(record.spread_max_ms)],
        vec![
            "± clock error bound (sum of the shards' kernel max error, ms)".into(),
            ms(record.clock_error_bound_ms),
        ],
    ];
    let mut tables = shard_tables(shard_rows, spread_rows);
    let mut paragraphs = vec![format!(
        "{} rows of {} planned requests, from {} shards of plan {}.",
        record.rows,
        record.planned_requests,
        record.shard_count,
        &record.plan_sha256[..record.plan_sha256.len().min(16)]
    )];
    if record.partial {
        paragraphs.push(
            "This run is PARTIAL: the requests of the shards listed above as missing or \
             unfinished were never sent, and were not resent late."
                .into(),
        );
    }
    let listed = record.bursts.len().min(MAX_BURSTS_LISTED);
    if listed > 0 {
        tables.push(Table {
            caption: format!(
                "Release spread of each burst ({listed} of {} bursts sent by two or more shards)",
                record.bursts.len()
            ),
            header: ["sub-experiment", "burst", "shards", "spread (ms)"]
                .map(String::from)
                .to_vec(),
            rows: record.bursts[..listed]
                .iter()
                .map(|b| {
                    vec![
                        b.sub_experiment.clone(),
                        b.burst_id.to_string(),
                        b.shards.to_string(),
                        format!("{:.3}", b.spread_ms),
                    ]
                })
                .collect(),
        });
    }
    Section {
        heading: "Shards".into(),
        warnings: Vec::new(),
        paragraphs,
        tables,
        plots: Vec::new(),
    }
}

/// The report lists at most this many bursts' spreads (merge.json has them all).
const MAX_BURSTS_LISTED: usize = 200;

/// The shards table and the spread summary of [`shards_section`].
fn shard_tables(shard_rows: Vec<Vec<String>>, spread_rows: Vec<Vec<String>>) -> Vec<Table> {
    vec![
        Table {
            caption: "Shards (rows / planned requests; ready = ms before T0)".into(),
            header: ["shard", "host", "outcome", "rows", "ready (ms)", "clock"]
                .map(String::from)
                .to_vec(),
            rows: shard_rows,
        },
        Table {
            caption: "Cross-shard release spread per burst: latest minus earliest shard's \
                          first send, each on its own clock anchored at T0 (every burst in \
                          merge.json)"
                .into(),
            header: ["measure", "value"].map(String::from).to_vec(),
            rows: spread_rows,
        },
    ]
}
