//! `histograms.{png,svg}`: latency histograms, one panel per burst size (or one per burst when
//! a run has a single burst size and only a few bursts), with cold requests stacked in red on
//! top of warm ones in blue.
//!
//! Panels make burst-size effects visible side by side: a second mode appearing at larger
//! bursts is queuing or extra cold starts. STeLLAR wrote one file per burst under
//! `histograms/`; one figure is easier to read and to embed in a report.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::draw::{self, DrawResult, FONT_FAMILY, Figure, GRID, Scale};
use super::{NO_DATA_TEXT, PlotFiles, PlotInput, Temperature};
use crate::error::Result;
use crate::record::LatencyRecord;

/// File name of the plots without extension.
pub const HISTOGRAMS_STEM: &str = "histograms";
/// At most this many panels are drawn; the subtitle says when some were left out.
const MAX_PANELS: usize = 12;
/// With one burst size, bursts get their own panels when there are at most this many.
const PER_BURST_MAX: usize = 12;
/// Bins grow logarithmically when latencies span more than this ratio. Lower than the other
/// plots' 100x: warm and cold modes often differ by 20-50x, and linear bins would put the
/// whole warm mode into one bar.
const LOG_RATIO: f64 = 20.0;

/// The requests of one histogram panel.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramPanel {
    /// Panel title, e.g. `burst size 100` or `burst 3 (size 1)`.
    pub label: String,
    /// Latency (ms) and temperature of each successful request.
    pub samples: Vec<(f64, Temperature)>,
    /// Failed requests in this panel's group (not drawn, counted in the title).
    pub failed: usize,
}

/// One bar of a histogram: the requests with `lo <= latency < hi` (the last bar also holds
/// `latency == hi`), split by temperature.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramBin {
    /// Lower edge, in ms.
    pub lo: f64,
    /// Upper edge, in ms.
    pub hi: f64,
    /// Warm requests in the bin.
    pub warm: usize,
    /// Cold requests in the bin.
    pub cold: usize,
    /// Requests of unknown temperature in the bin.
    pub unknown: usize,
}

impl HistogramBin {
    /// All requests in the bin.
    pub fn total(&self) -> usize {
        self.warm + self.cold + self.unknown
    }
}

/// Groups the rows into panels: by burst size, or by burst when there is one burst size and
/// between 2 and 12 bursts. Panels are ordered by size (or burst index); groups whose
/// requests all failed still get a panel, so the failure is visible.
pub fn histogram_panels<R: LatencyRecord>(input: &PlotInput<'_, R>) -> Vec<HistogramPanel> {
    let sizes: BTreeSet<u32> = input.rows.iter().map(|r| r.burst_size()).collect();
    let bursts: BTreeSet<u64> = input.rows.iter().map(|r| r.burst_id()).collect();
    let per_burst = sizes.len() <= 1 && (2..=PER_BURST_MAX).contains(&bursts.len());
    let mut groups: BTreeMap<(u64, u32), HistogramPanel> = BTreeMap::new();
    for row in input.rows {
        let key = if per_burst {
            (row.burst_id(), row.burst_size())
        } else {
            (0, row.burst_size())
        };
        let panel = groups.entry(key).or_insert_with(|| HistogramPanel {
            label: if per_burst {
                format!("burst {} (size {})", row.burst_id(), row.burst_size())
            } else {
                format!("burst size {}", row.burst_size())
            },
            samples: Vec::new(),
            failed: 0,
        });
        if let Some(latency) = row.ok_latency_ms() {
            panel.samples.push((latency, input.temperature(row)));
        } else if !row.is_ok() {
            panel.failed += 1;
        }
    }
    groups.into_values().collect()
}

/// Bins `samples` into between 8 and 50 bars (about `2 sqrt(n)`), linearly or, when `log` is
/// set and every value is positive, with logarithmically growing widths. A single distinct
/// value gets one bar around it; no finite sample gives no bars.
pub fn histogram_bins(samples: &[(f64, Temperature)], log: bool) -> Vec<HistogramBin> {
    let finite: Vec<(f64, Temperature)> = samples
        .iter()
        .copied()
        .filter(|(v, _)| v.is_finite())
        .collect();
    let Some((lo, hi)) = draw::min_max(finite.iter().map(|p| p.0)) else {
        return Vec::new();
    };
    let log = log && lo > 0.0;
    let (edges, k): (Vec<f64>, usize) = if lo == hi {
        let half = if log { lo * 0.1 } else { 0.5 };
        (vec![lo - half, hi + half], 1)
    } else {
        let k = ((2.0 * (finite.len() as f64).sqrt()).ceil() as usize).clamp(8, 50);
        let edges = (0..=k)
            .map(|i| {
                let t = i as f64 / k as f64;
                if log {
                    lo * (hi / lo).powf(t)
                } else {
                    lo + (hi - lo) * t
                }
            })
            .collect();
        (edges, k)
    };
    let mut bins: Vec<HistogramBin> = edges
        .windows(2)
        .map(|w| HistogramBin {
            lo: w[0],
            hi: w[1],
            warm: 0,
            cold: 0,
            unknown: 0,
        })
        .collect();
    for (v, t) in finite {
        // By the drawn edges, so a value on an edge lands in the bar that starts there.
        let i = edges
            .partition_point(|e| *e <= v)
            .saturating_sub(1)
            .min(k - 1);
        let bin = &mut bins[i];
        match t {
            Temperature::Warm => bin.warm += 1,
            Temperature::Cold => bin.cold += 1,
            Temperature::Unknown => bin.unknown += 1,
        }
    }
    bins
}

/// Draws `histograms.png` and `histograms.svg` into `dir` (which must exist).
///
/// With no successful request, the plots carry a notice and [`PlotFiles::note`] is set.
pub fn write_histograms<R: LatencyRecord>(
    dir: impl AsRef<Path>,
    input: &PlotInput<'_, R>,
) -> Result<PlotFiles> {
    let mut panels = histogram_panels(input);
    let mut subtitle = input.counts_text();
    if panels.len() > MAX_PANELS {
        subtitle.push_str(&format!("; first {MAX_PANELS} of {} groups", panels.len()));
        panels.truncate(MAX_PANELS);
    }
    let has_data = panels.iter().any(|p| !p.samples.is_empty());
    let titles = input.title_lines();
    let figure = HistogramsFigure {
        titles,
        subtitle,
        panels: if has_data { panels } else { Vec::new() },
    };
    let size = figure.size();
    let (png, svg) = draw::write_figure(dir.as_ref(), HISTOGRAMS_STEM, size, &figure)?;
    Ok(PlotFiles {
        png,
        svg,
        note: (!has_data).then(|| format!("{NO_DATA_TEXT}: the histograms show a notice only")),
    })
}

struct HistogramsFigure<'a> {
    titles: Vec<&'a str>,
    subtitle: String,
    panels: Vec<HistogramPanel>,
}

impl HistogramsFigure<'_> {
    /// Columns of the panel grid.
    fn columns(&self) -> usize {
        match self.panels.len() {
            0 | 1 => 1,
            2 | 4 => 2,
            _ => 3,
        }
    }

    /// Figure size: wide enough for the grid, tall enough for its rows plus the header.
    fn size(&self) -> (u32, u32) {
        let cols = self.columns();
        let rows = self.panels.len().div_ceil(cols).max(1);
        let header = 14 + 30 * self.titles.len().max(1) + 38;
        let (width, panel_h) = match (cols, rows) {
            (1, 1) => (900, 560),
            (2, _) => (1100, 400),
            _ => (1260, 360),
        };
        let height = header + rows * panel_h;
        (width, u32::try_from(height).unwrap_or(4000).min(4000))
    }
}

impl Figure for HistogramsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = draw::draw_header(root, &self.titles, &self.subtitle)?;
        if self.panels.is_empty() {
            return draw::draw_notice(&body, NO_DATA_TEXT);
        }
        let cols = self.columns();
        let rows = self.panels.len().div_ceil(cols);
        let areas = body.split_evenly((rows, cols));
        for (panel, area) in self.panels.iter().zip(&areas) {
            draw_panel(&area.margin(12, 4, 4, 4), panel)?;
        }
        Ok(())
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &HistogramPanel,
) -> DrawResult<DB> {
    let mut title = format!("{} · n={}", panel.label, panel.samples.len());
    if panel.failed > 0 {
        title.push_str(&format!(", {} failed", panel.failed));
    }
    let inner = area.titled(&title, (FONT_FAMILY, 18))?;
    let Some((lo, hi)) = draw::min_max(panel.samples.iter().map(|s| s.0)) else {
        return draw::draw_notice(&inner, NO_DATA_TEXT);
    };
    let scale = draw::latency_scale_above(lo, hi, LOG_RATIO);
    let log = matches!(scale, Scale::Log(_));
    let bins = histogram_bins(&panel.samples, log);
    let (Some(first), Some(last)) = (bins.first(), bins.last()) else {
        return draw::draw_notice(&inner, NO_DATA_TEXT);
    };
    let x = first.lo..last.hi;
    let x_desc = format!("Latency (ms{})", scale.suffix());
    if log {
        panel_chart(&inner, draw::log_axis(x), &bins, &x_desc)
    } else {
        panel_chart(&inner, x, &bins, &x_desc)
    }
}

fn panel_chart<DB, X>(
    area: &DrawingArea<DB, Shift>,
    x: X,
    bins: &[HistogramBin],
    x_desc: &str,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
{
    // Counts are whole numbers, so an integer axis never shows fractional ticks.
    let highest = bins
        .iter()
        .map(HistogramBin::total)
        .max()
        .unwrap_or(0)
        .max(1);
    let top = u32::try_from(highest + highest.div_ceil(6)).unwrap_or(u32::MAX);
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut chart = ChartBuilder::on(area)
        .margin_left(10)
        .margin_right(20)
        .margin_bottom(6)
        .x_label_area_size(48)
        .y_label_area_size(58)
        .build_cartesian_2d(x, 0u32..top)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("Requests")
        .axis_desc_style((FONT_FAMILY, 16))
        .label_style((FONT_FAMILY, 13))
        .x_labels(6)
        .x_label_formatter(&|v| draw::tick_label(*v))
        .y_labels(6)
        .light_line_style(GRID)
        .max_light_lines(1)
        .draw()?;
    // Stacked from the bottom: warm, unknown, cold.
    let layers: [(Temperature, RGBColor); 3] = [
        (Temperature::Warm, draw::WARM),
        (Temperature::Unknown, draw::UNKNOWN),
        (Temperature::Cold, draw::COLD),
    ];
    for (layer, (t, color)) in layers.into_iter().enumerate() {
        let n: usize = bins.iter().map(|b| layer_count(b, t)).sum();
        if n == 0 {
            continue;
        }
        let rects = bins.iter().filter(|b| layer_count(b, t) > 0).map(move |b| {
            let below: usize = layers[..layer]
                .iter()
                .map(|(t, _)| layer_count(b, *t))
                .sum();
            let y0 = count(below);
            let y1 = count(below + layer_count(b, t));
            Rectangle::new([(b.lo, y0), (b.hi, y1)], color.mix(0.85).filled())
        });
        chart
            .draw_series(rects)?
            .label(format!("{} (n={n})", t.as_str()))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled()));
    }
    // Thin white outlines keep neighbouring bars apart.
    chart.draw_series(
        bins.iter()
            .filter(|b| b.total() > 0)
            .map(|b| Rectangle::new([(b.lo, 0), (b.hi, count(b.total()))], WHITE.stroke_width(1))),
    )?;
    draw::draw_legend(&mut chart, SeriesLabelPosition::UpperRight, 14)
}

fn layer_count(b: &HistogramBin, t: Temperature) -> usize {
    match t {
        Temperature::Warm => b.warm,
        Temperature::Cold => b.cold,
        Temperature::Unknown => b.unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_png, assert_svg, failed_row, synthetic_rows};
    use super::*;
    use crate::row::LatencyRow;
    use crate::row::tests::sample_row;

    const W: Temperature = Temperature::Warm;
    const C: Temperature = Temperature::Cold;

    #[test]
    fn bins_cover_every_sample_once() {
        let samples: Vec<(f64, Temperature)> = (0..100)
            .map(|i| (f64::from(i), if i % 10 == 0 { C } else { W }))
            .collect();
        let bins = histogram_bins(&samples, false);
        assert_eq!(bins.len(), 20);
        assert_eq!(bins.iter().map(HistogramBin::total).sum::<usize>(), 100);
        assert_eq!(bins.iter().map(|b| b.cold).sum::<usize>(), 10);
        assert_eq!((bins[0].lo, bins[19].hi), (0.0, 99.0));
        // The maximum lands in the last bin, not past it.
        assert!(bins[19].total() > 0);
    }

    #[test]
    fn log_bins_grow_geometrically() {
        let samples = [(1.0, W), (20.0, W), (150.0, C), (1500.0, C), (10000.0, C)];
        let bins = histogram_bins(&samples, true);
        assert_eq!(bins.len(), 8);
        for b in &bins {
            assert!((b.hi / b.lo - 10f64.sqrt()).abs() < 1e-9, "{b:?}");
        }
        let totals: Vec<usize> = bins.iter().map(HistogramBin::total).collect();
        assert_eq!(totals, [1, 0, 1, 0, 1, 0, 1, 1]);
        // Without `log`, or with a non-positive value, bins are linear.
        let linear = histogram_bins(&[(0.0, W), (10.0, W)], true);
        assert!((linear[1].lo - 1.25).abs() < 1e-12);
    }

    #[test]
    fn degenerate_samples() {
        assert!(histogram_bins(&[], false).is_empty());
        assert!(histogram_bins(&[(f64::NAN, W)], false).is_empty());
        let one = histogram_bins(&[(7.0, W), (7.0, C)], false);
        assert_eq!(one.len(), 1);
        assert_eq!(
            (one[0].lo, one[0].hi, one[0].warm, one[0].cold),
            (6.5, 7.5, 1, 1)
        );
    }

    #[test]
    fn panels_per_burst_size_or_per_burst() {
        let rows = synthetic_rows();
        let panels = histogram_panels(&PlotInput::new("t", &rows));
        let labels: Vec<&str> = panels.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["burst size 1", "burst size 4", "burst size 8"]);
        let total: usize = panels.iter().map(|p| p.samples.len() + p.failed).sum();
        assert_eq!(total, rows.len());

        let few: Vec<LatencyRow> = (0..3u64)
            .map(|b| LatencyRow {
                burst_id: b,
                burst_size: 2,
                ..sample_row()
            })
            .chain([LatencyRow {
                burst_id: 1,
                burst_size: 2,
                ..failed_row()
            }])
            .collect();
        let panels = histogram_panels(&PlotInput::new("t", &few));
        let labels: Vec<&str> = panels.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            ["burst 0 (size 2)", "burst 1 (size 2)", "burst 2 (size 2)"]
        );
        assert_eq!(panels[1].failed, 1);
    }

    #[test]
    fn synthetic_run_draws_one_panel_per_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = synthetic_rows();
        let files =
            write_histograms(dir.path(), &PlotInput::new("Histo", &rows)).expect("histograms");
        assert_eq!(files.note, None);
        assert_png(&files.png);
        assert_svg(
            &files.svg,
            &[
                "Histo",
                "burst size 1",
                "burst size 4",
                "burst size 8",
                "Latency (ms",
                "Requests",
                "cold (n=",
            ],
        );
    }

    #[test]
    fn empty_and_all_failed_inputs_draw_a_notice() {
        let dir = tempfile::tempdir().expect("tempdir");
        for rows in [vec![], vec![failed_row()]] {
            let files = write_histograms(dir.path(), &PlotInput::new("t", &rows)).expect("plot");
            assert!(files.note.is_some());
            assert_svg(&files.svg, &[NO_DATA_TEXT]);
            assert_png(&files.png);
        }
        let files =
            write_histograms(dir.path(), &PlotInput::new("t", &[sample_row()])).expect("plot");
        assert_eq!(files.note, None);
        assert_svg(&files.svg, &["burst size 5", "warm (n=1)"]);
    }
}
