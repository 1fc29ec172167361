//! Plots of a sub-experiment's requests, each written as PNG (for the HTML report and STeLLAR
//! users) and SVG (for papers and browsers):
//!
//! | plot | files | shows |
//! |---|---|---|
//! | [`write_empirical_cdf`] | `empirical_CDF.{png,svg}` (STeLLAR's name) | latency ECDF, cold and warm, with 95 % DKW bands |
//! | [`write_bursts_characterization`] | `bursts_characterization.{png,svg}` (STeLLAR's name) | latency of every request against its burst |
//! | [`write_histograms`] | `histograms.{png,svg}` | latency histograms, one panel per burst size (or per burst) |
//! | [`write_send_lag`] | `send_lag.{png,svg}` | how late each request left compared with its schedule |
//! | [`write_transfer_plot`] | `data-transfers.{png,svg}` (run level) | data-transfer chains: transfer time per hop against payload, with CIs |
//!
//! STeLLAR's `bursts_characterization.png` counted warm and cold requests per burst, and its
//! histograms were one file per burst under `histograms/`; stellar keeps the file names where
//! it can but draws the latencies themselves, so one picture shows both the split and the tail.
//!
//! Every plot takes a [`PlotInput`]: the rows, a title, and the rule that says whether a
//! request was cold (by default the function's own `Cold` column, see [`reported_cold`]).
//! Failed requests never contribute a latency but are counted in the subtitles. With nothing to
//! draw, a plot still gets written, carrying a notice, and [`PlotFiles::note`] says so: callers
//! never have to special-case empty runs.
//!
//! The data behind each plot is computed by pure functions tested on their own; drawing only
//! turns those numbers into pixels. Text uses DejaVu Sans, bundled in `assets/` (its licence is
//! beside it), so plots look the same on every machine and need no system fonts.

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::record::LatencyRecord;
use crate::row::LatencyRow;

mod bursts;
mod draw;
mod ecdf;
mod histograms;
mod send_lag;
mod transfers;

pub use bursts::{BURSTS_STEM, BurstPoint, burst_points, write_bursts_characterization};
pub use ecdf::{
    ECDF_PNG, ECDF_STEM, ECDF_SVG, EcdfSeries, PLOT_SIZE, dkw_band, dkw_epsilon, ecdf_points,
    ecdf_series, ecdf_series_by, step_line, write_ecdf_plots, write_empirical_cdf, x_range,
};
pub use histograms::{
    HISTOGRAMS_STEM, HistogramBin, HistogramPanel, histogram_bins, histogram_panels,
    write_histograms,
};
pub use send_lag::{SEND_LAG_STEM, SendLagPoint, send_lag_points, write_send_lag};
pub use transfers::{TRANSFERS_STEM, write_transfer_plot};

/// Text drawn instead of curves when no request succeeded.
pub const NO_DATA_TEXT: &str = "no successful requests";

/// The row's cold label (`Cold Label`, else the function's `Cold` flag): the default rule.
pub fn reported_cold<R: LatencyRecord>(row: &R) -> Option<bool> {
    row.is_cold()
}

/// STeLLAR's rule (`Visualization: "bar-<ms>"`, default 300 ms): a successful request is cold
/// when its client latency is at least `threshold_ms`. Useful for providers whose functions
/// cannot report their own temperature.
pub fn cold_at_or_above<R: LatencyRecord>(threshold_ms: f64) -> impl Fn(&R) -> Option<bool> {
    move |row| row.ok_latency_ms().map(|l| l >= threshold_ms)
}

/// Whether a request was served cold, warm, or nobody knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Temperature {
    /// Served by a freshly started instance.
    Cold,
    /// Served by an instance that had served before.
    Warm,
    /// The cold rule gave no answer for this request.
    Unknown,
}

impl Temperature {
    /// From a cold rule's answer.
    pub fn from_flag(cold: Option<bool>) -> Self {
        match cold {
            Some(true) => Self::Cold,
            Some(false) => Self::Warm,
            None => Self::Unknown,
        }
    }

    /// Lower-case name, as used in legends.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cold => "cold",
            Self::Warm => "warm",
            Self::Unknown => "unknown",
        }
    }
}

/// What every plot is drawn from.
#[derive(Clone, Copy)]
pub struct PlotInput<'a, R: LatencyRecord = LatencyRow> {
    /// Plot title; `\n` starts a new line (STeLLAR used `"<Title>\nIAT ~<IAT>s, Burst sizes [..]"`).
    pub title: &'a str,
    /// All rows of the sub-experiment, failed ones included.
    pub rows: &'a [R],
    /// Says whether a row was cold (`Some(true)`), warm (`Some(false)`) or unknown (`None`).
    pub cold: &'a dyn Fn(&R) -> Option<bool>,
}

impl<R: LatencyRecord> std::fmt::Debug for PlotInput<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlotInput")
            .field("title", &self.title)
            .field("rows", &self.rows.len())
            .finish_non_exhaustive()
    }
}

impl<'a, R: LatencyRecord> PlotInput<'a, R> {
    /// Plots `rows` under `title`, classifying requests with [`reported_cold`].
    pub fn new(title: &'a str, rows: &'a [R]) -> Self {
        Self {
            title,
            rows,
            cold: &reported_cold::<R>,
        }
    }

    /// Uses `cold` instead of the reported flag (e.g. [`cold_at_or_above`]).
    pub fn with_cold(self, cold: &'a dyn Fn(&R) -> Option<bool>) -> Self {
        Self { cold, ..self }
    }

    /// The temperature of `row` under this input's cold rule.
    pub fn temperature(&self, row: &R) -> Temperature {
        Temperature::from_flag((self.cold)(row))
    }

    /// Number of successful requests (with a latency) and of failed ones.
    pub fn ok_and_failed(&self) -> (usize, usize) {
        let ok = self
            .rows
            .iter()
            .filter(|r| r.ok_latency_ms().is_some())
            .count();
        let failed = self.rows.iter().filter(|r| !r.is_ok()).count();
        (ok, failed)
    }

    /// The title split into lines.
    pub(crate) fn title_lines(&self) -> Vec<&'a str> {
        self.title.lines().collect()
    }

    /// `"196 successful requests, 4 failed (not shown)"`.
    pub(crate) fn counts_text(&self) -> String {
        let (ok, failed) = self.ok_and_failed();
        let mut s = draw::plural(ok, "successful request");
        if failed > 0 {
            s.push_str(&format!(", {failed} failed (not shown)"));
        }
        s
    }
}

/// The files one plot function produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotFiles {
    /// The PNG file.
    pub png: PathBuf,
    /// The SVG file (same picture).
    pub svg: PathBuf,
    /// Set when the plots carry a notice instead of data (e.g. no successful requests).
    pub note: Option<String>,
}

/// The plots [`write_all_plots`] draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlotKind {
    /// `empirical_CDF`.
    EmpiricalCdf,
    /// `bursts_characterization`.
    BurstsCharacterization,
    /// `histograms`.
    Histograms,
    /// `send_lag`.
    SendLag,
}

impl PlotKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 4] = [
        Self::EmpiricalCdf,
        Self::BurstsCharacterization,
        Self::Histograms,
        Self::SendLag,
    ];

    /// File name without extension.
    pub fn stem(self) -> &'static str {
        match self {
            Self::EmpiricalCdf => ECDF_STEM,
            Self::BurstsCharacterization => BURSTS_STEM,
            Self::Histograms => HISTOGRAMS_STEM,
            Self::SendLag => SEND_LAG_STEM,
        }
    }

    /// A one-sentence caption for reports.
    pub fn caption(self) -> &'static str {
        match self {
            Self::EmpiricalCdf => {
                "Empirical CDF of client latency, cold and warm requests separately; shaded \
                 bands are 95 % confidence bands (Dvoretzky–Kiefer–Wolfowitz)."
            }
            Self::BurstsCharacterization => {
                "Client latency of every successful request against the burst it belonged to; \
                 cold requests are red crosses, warm ones blue dots."
            }
            Self::Histograms => {
                "Latency histograms, one panel per burst size (or per burst when there are \
                 few); cold requests stacked in red on top of warm ones in blue."
            }
            Self::SendLag => {
                "Send lag: how much later than planned each request actually left the client. \
                 Large or growing lag means the client, not the provider, shaped the schedule."
            }
        }
    }
}

/// The four plots of a sub-experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllPlots {
    /// `empirical_CDF.{png,svg}`.
    pub empirical_cdf: PlotFiles,
    /// `bursts_characterization.{png,svg}`.
    pub bursts_characterization: PlotFiles,
    /// `histograms.{png,svg}`.
    pub histograms: PlotFiles,
    /// `send_lag.{png,svg}`.
    pub send_lag: PlotFiles,
}

impl AllPlots {
    /// Each plot with its kind, in report order.
    pub fn entries(&self) -> [(PlotKind, &PlotFiles); 4] {
        [
            (PlotKind::EmpiricalCdf, &self.empirical_cdf),
            (
                PlotKind::BurstsCharacterization,
                &self.bursts_characterization,
            ),
            (PlotKind::Histograms, &self.histograms),
            (PlotKind::SendLag, &self.send_lag),
        ]
    }
}

/// Draws every plot of `input` into `dir` (which must exist).
pub fn write_all_plots<R: LatencyRecord>(
    dir: impl AsRef<Path>,
    input: &PlotInput<'_, R>,
) -> Result<AllPlots> {
    let dir = dir.as_ref();
    Ok(AllPlots {
        empirical_cdf: write_empirical_cdf(dir, input)?,
        bursts_characterization: write_bursts_characterization(dir, input)?,
        histograms: write_histograms(dir, input)?,
        send_lag: write_send_lag(dir, input)?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::row::tests::sample_row;

    /// A synthetic run: 3 burst sizes (1, 4, 8), warm latencies around 20 ms, one cold start
    /// at ~600 ms every 10 requests, a failure every 25, and send lag growing with time.
    pub(crate) fn synthetic_rows() -> Vec<LatencyRow> {
        let sizes = [1u32, 4, 8];
        let mut rows = Vec::new();
        let mut index = 0u64;
        for burst in 0..24u64 {
            let size = sizes[(burst % 3) as usize];
            for _ in 0..size {
                let i = index;
                index += 1;
                let failed = i % 25 == 24;
                let cold = i.is_multiple_of(10);
                let jitter = ((i * 37) % 17) as f64;
                let latency = if cold {
                    550.0 + jitter * 9.0
                } else {
                    15.0 + jitter
                };
                let planned = burst as f64 * 3000.0;
                let lag = 0.2 + (i % 7) as f64 * 0.3 + burst as f64 * 0.05;
                rows.push(LatencyRow {
                    client_latency_ms: (!failed).then_some(latency),
                    burst_id: burst,
                    burst_size: size,
                    request_index: i,
                    planned_send_ms: planned,
                    actual_send_ms: planned + lag,
                    send_lag_ms: lag,
                    error_kind: if failed {
                        "timeout".into()
                    } else {
                        String::new()
                    },
                    cold: (!failed).then_some(cold),
                    ..sample_row()
                });
            }
        }
        rows
    }

    pub(crate) fn failed_row() -> LatencyRow {
        LatencyRow {
            error_kind: "connect".into(),
            client_latency_ms: None,
            cold: None,
            ..sample_row()
        }
    }

    pub(crate) fn assert_png(path: &Path) {
        let bytes = fs_err::read(path).expect("png");
        assert!(bytes.len() > 1000, "PNG too small: {} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    }

    pub(crate) fn assert_svg(path: &Path, needles: &[&str]) -> String {
        let svg = fs_err::read_to_string(path).expect("svg");
        assert!(svg.contains("<svg"), "not an SVG");
        assert!(svg.trim_end().ends_with("</svg>"), "SVG not closed");
        for needle in needles {
            assert!(svg.contains(needle), "SVG lacks {needle:?}");
        }
        svg
    }

    #[test]
    fn cold_rules() {
        let warm = LatencyRow {
            client_latency_ms: Some(299.0),
            cold: Some(true),
            ..sample_row()
        };
        let rule = cold_at_or_above(300.0);
        assert_eq!(rule(&warm), Some(false));
        assert_eq!(reported_cold(&warm), Some(true));
        let slow = LatencyRow {
            client_latency_ms: Some(300.0),
            ..warm.clone()
        };
        assert_eq!(rule(&slow), Some(true));
        assert_eq!(rule(&failed_row()), None);
        let input = PlotInput::new("t", std::slice::from_ref(&warm)).with_cold(&rule);
        assert_eq!(input.temperature(&warm), Temperature::Warm);
    }

    #[test]
    fn counts_text_mentions_failures() {
        let rows = [sample_row(), failed_row(), failed_row()];
        let input = PlotInput::new("t", &rows);
        assert_eq!(input.ok_and_failed(), (1, 2));
        assert_eq!(
            input.counts_text(),
            "1 successful request, 2 failed (not shown)"
        );
        assert_eq!(
            PlotInput::<LatencyRow>::new("t", &[]).counts_text(),
            "0 successful requests"
        );
    }

    #[test]
    fn all_plots_are_written_with_distinct_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = synthetic_rows();
        let all = write_all_plots(dir.path(), &PlotInput::new("Synthetic", &rows)).expect("plots");
        let mut names = std::collections::BTreeSet::new();
        for (kind, files) in all.entries() {
            assert_eq!(files.note, None, "{kind:?}");
            assert_png(&files.png);
            assert_svg(&files.svg, &["Synthetic"]);
            assert_eq!(
                files.png.file_name().and_then(|n| n.to_str()),
                Some(format!("{}.png", kind.stem()).as_str())
            );
            names.insert(files.png.clone());
            assert!(!kind.caption().is_empty());
        }
        assert_eq!(names.len(), 4);
    }

    #[test]
    fn all_plots_survive_empty_and_single_inputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let one = [sample_row()];
        let failed = [failed_row()];
        for rows in [&[][..], &one[..], &failed[..]] {
            let all = write_all_plots(dir.path(), &PlotInput::new("t", rows)).expect("plots");
            for (_, files) in all.entries() {
                assert_png(&files.png);
                assert_svg(&files.svg, &[]);
            }
        }
    }
}
