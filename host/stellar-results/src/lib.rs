//! Turns request outcomes into result files: the streamed per-request `latencies.csv`,
//! `statistics.csv`, empirical-CDF plots and a summary table for the terminal.
//!
//! Everything here works both while a run streams rows in ([`LatencyWriter`]) and afterwards
//! from the CSV alone ([`read_latencies`] gives back the same [`LatencyRow`]s), so a report can
//! be rebuilt without re-running the benchmark. The crate has no async or wasm dependencies.
//!
//! # Layout
//! - [`row`]: the [`LatencyRow`] schema of `latencies.csv` (STeLLAR's columns first).
//! - [`writer`]: crash-safe streaming writer and the reader.
//! - [`record`]: what analyses read of a row, and the 40-byte [`CompactRow`] a run is analysed from.
//! - [`stats`]: [`Summary`] statistics with a documented percentile method; `statistics.csv`.
//! - [`plot`]: `empirical_CDF.png` / `.svg`.
//! - [`summary`]: [`SubExperimentSummary`] and the terminal table.
//! - [`uncertainty`]: percentiles with bootstrap CIs and the tail-to-median ratio, per group.
//! - [`fidelity`]: planned vs actual send times, gaps vs the IAT model, client saturation.
//! - [`compare`]: two runs' medians and tails, bootstrap CIs, Mann-Whitney U and a verdict.
//! - [`transfers`]: `data-transfers.csv` of data-transfer chains (one row per hop) and the
//!   transfer-time-versus-payload points.
//! - [`cold`] and [`labels`]: cold/warm labels from three signals, and per-request start
//!   labels (`cold-natural` ... `warm`) from the function's receipt signals.
#![deny(missing_docs)]

use std::path::Path;

pub mod cold;
pub mod compare;
pub mod error;
pub mod fidelity;
pub mod labels;
pub mod plot;
pub mod record;
pub mod report;
pub mod row;
pub mod segments;
pub mod stats;
pub mod summary;
pub mod transfers;
pub mod uncertainty;
pub mod writer;

pub use error::{Result, ResultsError};
pub use record::{CompactRow, CompactRows, LatencyRecord, read_compact};
pub use row::{ErrorKind, LATENCY_HEADERS, LatencyRow};
pub use stats::{STATISTICS_HEADERS, Summary};
pub use summary::{SubExperimentSummary, render_table};
pub use writer::{LatencyWriter, for_each_latency, read_latencies};

/// File name of the per-request CSV (the name Go STeLLAR used).
pub const LATENCIES_CSV: &str = "latencies.csv";
/// File name of the statistics CSV (the name Go STeLLAR used).
pub const STATISTICS_CSV: &str = "statistics.csv";

/// Writes a finished sub-experiment's `statistics.csv` into `dir` (created if missing) and
/// returns its summary (plots: [`plot::write_all_plots`]). `latencies.csv` is not written here: the
/// [`LatencyWriter`] streams it during the run.
///
/// The first line of `title_line` (`\n` separates lines) becomes the summary's title. The slug is the rows' `Sub-experiment` value, or `dir`'s name when there are no rows.
pub fn write_sub_experiment_outputs(
    dir: impl AsRef<Path>,
    title_line: &str,
    rows: &[impl LatencyRecord],
) -> Result<SubExperimentSummary> {
    let dir = dir.as_ref();
    fs_err::create_dir_all(dir).map_err(|e| ResultsError::io(dir, "create directory", e))?;
    stats::write_statistics(dir.join(STATISTICS_CSV), rows)?;
    let slug = rows
        .first()
        .map(|r| r.sub_experiment().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_default();
    let title = title_line.lines().next().unwrap_or_default();
    Ok(SubExperimentSummary::from_rows(slug, title, rows))
}
