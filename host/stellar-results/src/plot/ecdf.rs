//! The empirical CDF of client latency (`empirical_CDF.png`, STeLLAR's file name, plus
//! `empirical_CDF.svg`): one curve for cold and one for warm requests, each inside a 95 %
//! confidence band, so a reader can tell a real difference between curves from sampling noise.
//!
//! The band is the Dvoretzky–Kiefer–Wolfowitz (DKW) band: with probability at least
//! `1 - alpha`, the true CDF lies within `eps = sqrt(ln(2 / alpha) / (2 n))` of the empirical
//! one everywhere at once. It needs no assumption about the latency distribution, which suits
//! heavy-tailed serverless latencies.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::draw::{
    self, AXIS_DESC_PX, DrawResult, FONT_FAMILY, Figure, GRID, LEGEND_PX, Scale, TICK_PX,
};
use super::{NO_DATA_TEXT, PlotFiles, PlotInput, Temperature};
use crate::error::Result;
use crate::record::LatencyRecord;
#[cfg(test)]
use crate::row::LatencyRow;
use crate::stats::{Subset, sorted_finite};

/// File name of the plots without extension (the name Go STeLLAR used).
pub const ECDF_STEM: &str = "empirical_CDF";
/// File name of the PNG plot (the name Go STeLLAR used).
pub const ECDF_PNG: &str = "empirical_CDF.png";
/// File name of the SVG copy of the plot.
pub const ECDF_SVG: &str = "empirical_CDF.svg";
/// Size of both ECDF plots, in pixels.
pub const PLOT_SIZE: (u32, u32) = (900, 700);
/// Confidence level of the bands is `1 - BAND_ALPHA`.
const BAND_ALPHA: f64 = 0.05;
/// The latency axis turns logarithmic when latencies span more than this ratio: warm and cold
/// modes often differ by 20-50x, and on a linear axis the warm curve becomes a vertical line.
const LOG_RATIO: f64 = 20.0;

/// The empirical CDF of a sample: one `(x, F(x))` point per distinct finite value `x`, in
/// ascending order, where `F(x)` is the fraction of samples `<= x`. The last point has
/// `F = 1`. Empty (or all non-finite) input gives no points.
pub fn ecdf_points(samples: &[f64]) -> Vec<(f64, f64)> {
    let sorted = sorted_finite(samples);
    let n = sorted.len() as f64;
    let mut points: Vec<(f64, f64)> = Vec::new();
    for (i, &x) in sorted.iter().enumerate() {
        let f = (i + 1) as f64 / n;
        match points.last_mut() {
            Some(last) if last.0 == x => last.1 = f,
            _ => points.push((x, f)),
        }
    }
    points
}

/// Turns ECDF points into the vertices of a step line: it starts at `(x0, 0)`, rises
/// vertically at each sample value and runs horizontally between them.
pub fn step_line(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut line = Vec::with_capacity(points.len() * 2);
    let mut prev_f = 0.0;
    for &(x, f) in points {
        line.push((x, prev_f));
        line.push((x, f));
        prev_f = f;
    }
    line
}

/// Half-width of the DKW confidence band at level `1 - alpha` for `n` samples:
/// `sqrt(ln(2 / alpha) / (2 n))`. Infinite for `n = 0` or an `alpha` outside `(0, 1)`
/// (no information, the band is all of `[0, 1]`).
pub fn dkw_epsilon(n: usize, alpha: f64) -> f64 {
    if n == 0 || !(alpha > 0.0 && alpha < 1.0) {
        return f64::INFINITY;
    }
    ((2.0 / alpha).ln() / (2.0 * n as f64)).sqrt()
}

/// The DKW band around ECDF `points` as a closed polygon: the upper step line
/// `min(F + eps, 1)` from the first sample to `x_end`, then the lower one `max(F - eps, 0)`
/// back. Empty for no points.
pub fn dkw_band(points: &[(f64, f64)], eps: f64, x_end: f64) -> Vec<(f64, f64)> {
    let Some(&(last_x, last_f)) = points.last() else {
        return Vec::new();
    };
    let up = |f: f64| (f + eps).min(1.0);
    let down = |f: f64| (f - eps).max(0.0);
    let mut poly = Vec::with_capacity(points.len() * 4 + 2);
    let mut prev = 0.0;
    for &(x, f) in points {
        poly.push((x, up(prev)));
        poly.push((x, up(f)));
        prev = f;
    }
    let end = x_end.max(last_x);
    poly.push((end, up(last_f)));
    poly.push((end, down(last_f)));
    for (i, &(x, f)) in points.iter().enumerate().rev() {
        let before = if i == 0 { 0.0 } else { points[i - 1].1 };
        poly.push((x, down(f)));
        poly.push((x, down(before)));
    }
    poly
}

/// One curve of the plot.
#[derive(Debug, Clone, PartialEq)]
pub struct EcdfSeries {
    /// Which requests the curve covers.
    pub subset: Subset,
    /// Number of samples behind the curve.
    pub count: usize,
    /// The ECDF points (see [`ecdf_points`]).
    pub points: Vec<(f64, f64)>,
}

impl EcdfSeries {
    /// The legend label, e.g. `cold (n=12)`.
    pub fn label(&self) -> String {
        format!("{} (n={})", self.subset.as_str(), self.count)
    }

    /// Half-width of this curve's 95 % DKW band.
    pub fn band_epsilon(&self) -> f64 {
        dkw_epsilon(self.count, BAND_ALPHA)
    }
}

/// [`ecdf_series_by`] with the reported `Cold` column as the rule.
pub fn ecdf_series<R: LatencyRecord>(rows: &[R]) -> Vec<EcdfSeries> {
    ecdf_series_by(rows, &super::reported_cold::<R>)
}

/// The curves to draw for `rows` (successful requests only), with `cold` saying which were
/// cold: `cold` and `warm` when the rule knows any row (each only if non-empty), plus `all`
/// when it knows none or not all of them (so no request is left out of the picture).
pub fn ecdf_series_by<R: LatencyRecord>(
    rows: &[R],
    cold: &dyn Fn(&R) -> Option<bool>,
) -> Vec<EcdfSeries> {
    let mut samples: [Vec<f64>; 3] = Default::default();
    let mut unknown = 0usize;
    for row in rows {
        let Some(latency) = row.ok_latency_ms() else {
            continue;
        };
        match Temperature::from_flag(cold(row)) {
            Temperature::Cold => samples[1].push(latency),
            Temperature::Warm => samples[2].push(latency),
            Temperature::Unknown => unknown += 1,
        }
        samples[0].push(latency);
    }
    let known = samples[0].len() - unknown;
    let mut wanted = Vec::new();
    if known > 0 {
        wanted.extend([(Subset::Cold, 1), (Subset::Warm, 2)]);
    }
    if unknown > 0 {
        wanted.push((Subset::All, 0));
    }
    wanted
        .into_iter()
        .filter(|&(_, i)| !samples[i].is_empty())
        .map(|(subset, i)| EcdfSeries {
            subset,
            count: samples[i].len(),
            points: ecdf_points(&samples[i]),
        })
        .collect()
}

/// The X axis range: from 0 (or the smallest value, if negative) to 5 % past the largest; or,
/// when positive latencies span more than 20x and the axis is logarithmic, from 80 % of the
/// smallest to 125 % of the largest.
pub fn x_range(series: &[EcdfSeries]) -> Range<f64> {
    match x_scale(series) {
        Scale::Linear(r) | Scale::Log(r) => r,
    }
}

/// Linear, or logarithmic when latencies span more than [`LOG_RATIO`].
fn x_scale(series: &[EcdfSeries]) -> Scale {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (lo, hi) = draw::min_max(xs).unwrap_or((0.0, 0.0));
    draw::latency_scale_above(lo, hi, LOG_RATIO)
}

/// Draws `empirical_CDF.png` and `empirical_CDF.svg` into `dir` (which must exist), using the
/// reported `Cold` column. Kept for callers that have only a title and rows; see
/// [`write_empirical_cdf`].
pub fn write_ecdf_plots<R: LatencyRecord>(
    dir: impl AsRef<Path>,
    title_line: &str,
    rows: &[R],
) -> Result<PlotFiles> {
    write_empirical_cdf(dir, &PlotInput::new(title_line, rows))
}

/// Draws `empirical_CDF.png` and `empirical_CDF.svg` into `dir` (which must exist).
///
/// With no successful request, the plots say so instead of drawing curves, and
/// [`PlotFiles::note`] is set.
pub fn write_empirical_cdf<R: LatencyRecord>(
    dir: impl AsRef<Path>,
    input: &PlotInput<'_, R>,
) -> Result<PlotFiles> {
    let series = ecdf_series_by(input.rows, input.cold);
    let figure = EcdfFigure {
        titles: input.title_lines(),
        subtitle: input.counts_text(),
        series,
    };
    let (png, svg) = draw::write_figure(dir.as_ref(), ECDF_STEM, PLOT_SIZE, &figure)?;
    Ok(PlotFiles {
        png,
        svg,
        note: figure
            .series
            .is_empty()
            .then(|| format!("{NO_DATA_TEXT}: the ECDF plots show a notice only")),
    })
}

fn series_color(subset: Subset) -> RGBColor {
    match subset {
        Subset::Cold => draw::COLD,
        Subset::Warm => draw::WARM,
        Subset::All => draw::UNKNOWN,
    }
}

struct EcdfFigure<'a> {
    titles: Vec<&'a str>,
    subtitle: String,
    series: Vec<EcdfSeries>,
}

impl Figure for EcdfFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = draw::draw_header(root, &self.titles, &self.subtitle)?;
        if self.series.is_empty() {
            return draw::draw_notice(&body, NO_DATA_TEXT);
        }
        let scale = x_scale(&self.series);
        let x_desc = format!("Latency (ms{})", scale.suffix());
        match scale {
            Scale::Linear(r) => self.chart(&body, r.end, r, &x_desc),
            Scale::Log(r) => self.chart(&body, r.end, draw::log_axis(r), &x_desc),
        }
    }
}

impl EcdfFigure<'_> {
    fn chart<DB, X>(
        &self,
        area: &DrawingArea<DB, Shift>,
        x_end: f64,
        x: X,
        x_desc: &str,
    ) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        X: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(area)
            .margin_left(20)
            .margin_right(30)
            .margin_bottom(10)
            .x_label_area_size(55)
            .y_label_area_size(70)
            .build_cartesian_2d(x, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("Portion of requests")
            .axis_desc_style((FONT_FAMILY, AXIS_DESC_PX))
            .label_style((FONT_FAMILY, TICK_PX))
            .x_label_formatter(&|v| draw::tick_label(*v))
            .y_label_formatter(&|v| draw::tick_label(*v))
            .light_line_style(GRID)
            .max_light_lines(1)
            .draw()?;
        // Bands first, so every curve stays visible on top of them.
        for s in &self.series {
            let color = series_color(s.subset);
            let band = dkw_band(&s.points, s.band_epsilon(), x_end);
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.15).filled(),
            )))?;
        }
        for s in &self.series {
            let color = series_color(s.subset);
            let mut line = step_line(&s.points);
            if let Some(&(_, f)) = s.points.last() {
                line.push((x_end, f));
            }
            let eps = s.band_epsilon().min(1.0);
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(format!("{}, band ±{eps:.2}", s.label()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
        chart
            .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
            .label("shaded: 95% confidence band (DKW)")
            .legend(|(x, y)| {
                Rectangle::new(
                    [(x, y - 6), (x + 24, y + 6)],
                    draw::UNKNOWN.mix(0.25).filled(),
                )
            });
        draw::draw_legend(&mut chart, SeriesLabelPosition::LowerRight, LEGEND_PX)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_png, assert_svg, failed_row, synthetic_rows};
    use super::*;
    use crate::error::ResultsError;
    use crate::row::tests::sample_row;

    fn row(lat: f64, cold: Option<bool>) -> LatencyRow {
        LatencyRow {
            client_latency_ms: Some(lat),
            cold,
            ..sample_row()
        }
    }

    #[test]
    fn ecdf_points_merge_ties_and_end_at_one() {
        assert_eq!(
            ecdf_points(&[3.0, 1.0, 2.0, 2.0, f64::NAN]),
            vec![(1.0, 0.25), (2.0, 0.75), (3.0, 1.0)]
        );
        assert!(ecdf_points(&[]).is_empty());
        assert_eq!(ecdf_points(&[5.0]), vec![(5.0, 1.0)]);
    }

    #[test]
    fn step_line_rises_at_each_value() {
        let line = step_line(&[(1.0, 0.25), (2.0, 0.75), (3.0, 1.0)]);
        assert_eq!(
            line,
            vec![
                (1.0, 0.0),
                (1.0, 0.25),
                (2.0, 0.25),
                (2.0, 0.75),
                (3.0, 0.75),
                (3.0, 1.0)
            ]
        );
    }

    #[test]
    fn dkw_epsilon_matches_the_formula() {
        // ln(40) / 200 = 0.018444..., sqrt = 0.135810...
        assert!((dkw_epsilon(100, 0.05) - 0.135_810).abs() < 1e-6);
        assert!((dkw_epsilon(1, 0.05) - 1.358_102).abs() < 1e-6);
        assert!(dkw_epsilon(0, 0.05).is_infinite());
        assert!(dkw_epsilon(10, 0.0).is_infinite());
        // Four times the samples halve the band.
        let ratio = dkw_epsilon(400, 0.05) / dkw_epsilon(100, 0.05);
        assert!((ratio - 0.5).abs() < 1e-12);
    }

    #[test]
    fn dkw_band_is_clamped_and_closed() {
        let band = dkw_band(&[(1.0, 0.5), (2.0, 1.0)], 0.1, 3.0);
        let expected = [
            (1.0, 0.1),
            (1.0, 0.6),
            (2.0, 0.6),
            (2.0, 1.0),
            (3.0, 1.0),
            (3.0, 0.9),
            (2.0, 0.9),
            (2.0, 0.4),
            (1.0, 0.4),
            (1.0, 0.0),
        ];
        assert_eq!(band.len(), expected.len());
        for (got, want) in band.iter().zip(expected) {
            assert!(
                (got.0 - want.0).abs() < 1e-12 && (got.1 - want.1).abs() < 1e-12,
                "{band:?}"
            );
        }
        assert!(dkw_band(&[], 0.1, 3.0).is_empty());
        // An infinite epsilon covers everything.
        let all = dkw_band(&[(5.0, 1.0)], f64::INFINITY, 6.0);
        assert!(all.iter().all(|p| p.1 == 0.0 || p.1 == 1.0));
    }

    #[test]
    fn series_split_by_cold_flag() {
        let failed = LatencyRow {
            error_kind: "timeout".into(),
            ..row(1.0, Some(true))
        };
        let rows = [
            row(100.0, Some(true)),
            row(10.0, Some(false)),
            row(20.0, Some(false)),
            failed,
        ];
        let series = ecdf_series(&rows);
        let labels: Vec<String> = series.iter().map(EcdfSeries::label).collect();
        assert_eq!(labels, ["cold (n=1)", "warm (n=2)"]);
        assert_eq!(series[0].points, vec![(100.0, 1.0)]);
        assert_eq!(series[1].points, vec![(10.0, 0.5), (20.0, 1.0)]);
    }

    #[test]
    fn series_follow_the_callers_cold_rule() {
        let rows = [row(100.0, None), row(10.0, None), row(400.0, None)];
        let rule = super::super::cold_at_or_above(300.0);
        let labels: Vec<String> = ecdf_series_by(&rows, &rule)
            .iter()
            .map(EcdfSeries::label)
            .collect();
        assert_eq!(labels, ["cold (n=1)", "warm (n=2)"]);
    }

    #[test]
    fn series_all_when_flags_unknown() {
        let series = ecdf_series(&[row(10.0, None), row(30.0, None)]);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].label(), "all (n=2)");
        // Mixed: known and unknown flags show cold/warm and all.
        let series = ecdf_series(&[row(10.0, None), row(30.0, Some(false))]);
        let labels: Vec<String> = series.iter().map(EcdfSeries::label).collect();
        assert_eq!(labels, ["warm (n=1)", "all (n=2)"]);
        assert!(ecdf_series::<LatencyRow>(&[]).is_empty());
    }

    #[test]
    fn x_range_starts_at_zero_with_headroom() {
        let s = ecdf_series(&[row(10.0, None), row(200.0, None)]);
        assert_eq!(x_range(&s), 0.0..210.0);
        assert_eq!(x_range(&[]), 0.0..1.0);
        let zero = ecdf_series(&[row(0.0, None)]);
        assert_eq!(x_range(&zero), 0.0..1.0);
        // More than 20x apart: logarithmic, with room on both sides.
        let wide = ecdf_series(&[row(2.0, None), row(1000.0, None)]);
        assert_eq!(x_scale(&wide), Scale::Log(1.6..1250.0));
    }

    #[test]
    fn svg_contains_title_axes_legend_and_bands() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = [row(10.0, Some(false)), row(150.0, Some(true)), failed_row()];
        let files = write_ecdf_plots(dir.path(), "warm-cold\nIAT ~3s, Burst sizes [1]", &rows)
            .expect("plot");
        assert_eq!(files.note, None);
        assert_png(&files.png);
        assert_svg(
            &files.svg,
            &[
                "warm-cold",
                "IAT ~3s, Burst sizes [1]",
                "Latency (ms)",
                "Portion of requests",
                "cold (n=1)",
                "warm (n=1)",
                "95% confidence band (DKW)",
                "1 failed (not shown)",
                "<polygon",
            ],
        );
    }

    #[test]
    fn synthetic_run_uses_a_log_axis() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows: Vec<LatencyRow> = synthetic_rows()
            .into_iter()
            .chain([row(1.0, Some(false))])
            .collect();
        let files =
            write_empirical_cdf(dir.path(), &PlotInput::new("synthetic", &rows)).expect("plot");
        assert_png(&files.png);
        assert_svg(&files.svg, &["Latency (ms, log scale)", "cold (n="]);
    }

    #[test]
    fn no_successful_requests_draws_a_notice() {
        let dir = tempfile::tempdir().expect("tempdir");
        for rows in [vec![], vec![failed_row()]] {
            let files = write_ecdf_plots(dir.path(), "t", &rows).expect("plot");
            assert!(files.note.is_some());
            assert_svg(&files.svg, &[NO_DATA_TEXT]);
            assert_png(&files.png);
        }
    }

    #[test]
    fn missing_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let err = write_ecdf_plots(&missing, "t", &[row(1.0, None)]).expect_err("must fail");
        assert!(matches!(err, ResultsError::Plot { .. }), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");
    }
}
