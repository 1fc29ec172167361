//! The end-of-run summary printed to the terminal: one line per sub-experiment.
//!
//! The table is plain text (no colour codes) and fully determined by its input, so the CLI can
//! print it as is and tests can compare it with an expected string.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::LatencyRecord;
#[cfg(test)]
use crate::row::LatencyRow;
use crate::stats::{Subset, Summary, subset_summary};

/// Outcome of one sub-experiment, computed from its rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubExperimentSummary {
    /// Sub-experiment slug (its directory name).
    pub slug: String,
    /// Human-readable title.
    pub title: String,
    /// Number of requests sent (rows, successful or not).
    pub requests: u64,
    /// Number of failed requests.
    pub errors: u64,
    /// Failed requests per `Error Kind`.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Client latency of every successful request.
    pub all: Summary,
    /// Client latency of successful requests served cold.
    pub cold: Summary,
    /// Client latency of successful requests served warm.
    pub warm: Summary,
}

impl SubExperimentSummary {
    /// Summarises `rows` (all belonging to one sub-experiment).
    pub fn from_rows<R: LatencyRecord>(
        slug: impl Into<String>,
        title: impl Into<String>,
        rows: &[R],
    ) -> Self {
        let mut errors_by_kind = BTreeMap::new();
        for row in rows.iter().filter(|r| !r.is_ok()) {
            *errors_by_kind
                .entry(row.error_kind().to_owned())
                .or_insert(0) += 1;
        }
        Self {
            slug: slug.into(),
            title: title.into(),
            requests: rows.len() as u64,
            errors: errors_by_kind.values().sum(),
            errors_by_kind,
            all: subset_summary(rows, Subset::All),
            cold: subset_summary(rows, Subset::Cold),
            warm: subset_summary(rows, Subset::Warm),
        }
    }
}

const TABLE_HEADERS: [&str; 10] = [
    "sub-experiment",
    "requests",
    "errors",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "cold n",
    "cold p50 ms",
    "warm n",
    "warm p50 ms",
];

/// A latency cell: two decimals, or `-` when there is no value.
fn ms(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.2}")
    } else {
        "-".to_owned()
    }
}

/// Renders the summaries as an aligned plain-text table, one line per sub-experiment.
///
/// Columns: sub-experiment, requests, errors, p50 / p95 / p99 of all successful requests (ms),
/// then count and p50 of the cold and warm subsets. The first column is left-aligned, the others
/// right-aligned; columns are separated by two spaces, lines carry no trailing spaces and the
/// text ends with a newline. Missing values are shown as `-`.
pub fn render_table(summaries: &[SubExperimentSummary]) -> String {
    let mut rows: Vec<[String; 10]> = vec![TABLE_HEADERS.map(str::to_owned)];
    for s in summaries {
        rows.push([
            s.slug.clone(),
            s.requests.to_string(),
            s.errors.to_string(),
            ms(s.all.p50),
            ms(s.all.p95),
            ms(s.all.p99),
            s.cold.count.to_string(),
            ms(s.cold.p50),
            s.warm.count.to_string(),
            ms(s.warm.p50),
        ]);
    }
    align_columns(&rows)
}

/// Lays out rows of cells as plain text: the first column left-aligned, the others
/// right-aligned, two spaces between columns, no trailing spaces, one `\n` after each line.
pub(crate) fn align_columns<R: AsRef<[String]>>(rows: &[R]) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (i, cell) in row.as_ref().iter().enumerate() {
            let len = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(len),
                None => widths.push(len),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, (cell, &w)) in row.as_ref().iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            if i == 0 {
                line.push_str(cell);
                line.push_str(&pad);
            } else {
                line.push_str("  ");
                line.push_str(&pad);
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::tests::sample_row;

    fn row(lat: f64, cold: Option<bool>, err: &str) -> LatencyRow {
        LatencyRow {
            client_latency_ms: Some(lat),
            cold,
            error_kind: err.into(),
            ..sample_row()
        }
    }

    fn fixture() -> Vec<SubExperimentSummary> {
        let warm_cold: Vec<LatencyRow> = (1..=100)
            .map(|i| row(f64::from(i), Some(i > 90), ""))
            .chain([
                row(0.0, None, "timeout"),
                row(0.0, None, "http-status"),
                row(0.0, None, "timeout"),
            ])
            .collect();
        let failed = vec![row(0.0, None, "connect")];
        vec![
            SubExperimentSummary::from_rows("warm-cold-iat3s-burst1", "Warm and cold", &warm_cold),
            SubExperimentSummary::from_rows("all-failed", "Nothing worked", &failed),
            SubExperimentSummary::from_rows::<LatencyRow>("empty", "No rows", &[]),
        ]
    }

    #[test]
    fn counts_and_errors_by_kind() {
        let s = &fixture()[0];
        assert_eq!((s.requests, s.errors), (103, 3));
        assert_eq!(
            s.errors_by_kind,
            BTreeMap::from([("http-status".to_owned(), 1), ("timeout".to_owned(), 2)])
        );
        assert_eq!((s.all.count, s.cold.count, s.warm.count), (100, 10, 90));
        assert_eq!((s.all.p50, s.cold.p50, s.warm.p50), (50.0, 95.0, 45.0));
    }

    #[test]
    fn table_snapshot() {
        let expected = "\
sub-experiment          requests  errors  p50 ms  p95 ms  p99 ms  cold n  cold p50 ms  warm n  warm p50 ms
warm-cold-iat3s-burst1       103       3   50.00   95.00   99.00      10        95.00      90        45.00
all-failed                     1       1       -       -       -       0            -       0            -
empty                          0       0       -       -       -       0            -       0            -
";
        assert_eq!(render_table(&fixture()), expected);
    }

    #[test]
    fn empty_input_renders_the_header_only() {
        assert_eq!(
            render_table(&[]),
            "sub-experiment  requests  errors  p50 ms  p95 ms  p99 ms  cold n  cold p50 ms  warm n  warm p50 ms\n"
        );
    }
}
