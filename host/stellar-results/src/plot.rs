//! Empirical-CDF plots of client latency (`empirical_CDF.png`, STeLLAR's file name, plus an
//! `empirical_CDF.svg` for papers and browsers).
//!
//! The data behind a plot ([`ecdf_points`], [`step_line`], [`ecdf_series`]) is computed by pure
//! functions and tested on its own; drawing only turns those points into pixels. Text is drawn
//! with DejaVu Sans, bundled in `assets/` (its licence is beside it), so plots look the same on
//! every machine and need no system fonts.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Result, ResultsError};
use crate::row::LatencyRow;
use crate::stats::{Subset, sorted_finite, subset_latencies};

/// File name of the PNG plot (the name Go STeLLAR used).
pub const ECDF_PNG: &str = "empirical_CDF.png";
/// File name of the SVG copy of the plot.
pub const ECDF_SVG: &str = "empirical_CDF.svg";
/// Size of both plots, in pixels.
pub const PLOT_SIZE: (u32, u32) = (900, 700);
/// Text drawn instead of curves when no request succeeded.
pub const NO_DATA_TEXT: &str = "no successful requests";

const FONT_FAMILY: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the bundled font with plotters, once per process.
fn ensure_font() -> std::result::Result<(), &'static str> {
    static REGISTERED: OnceLock<std::result::Result<(), &'static str>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| "the bundled DejaVu Sans font could not be parsed")
    })
}

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
}

/// The curves to draw for `rows` (successful requests only):
/// `cold` and `warm` when any row knows its cold flag (each only if non-empty), plus `all`
/// when no row knows it or some rows do not (so no request is left out of the picture).
pub fn ecdf_series(rows: &[LatencyRow]) -> Vec<EcdfSeries> {
    let ok: Vec<&LatencyRow> = rows
        .iter()
        .filter(|r| r.ok_latency_ms().is_some())
        .collect();
    let flagged = ok.iter().filter(|r| r.cold.is_some()).count();
    let mut subsets = Vec::new();
    if flagged > 0 {
        subsets.extend([Subset::Cold, Subset::Warm]);
    }
    if flagged < ok.len() {
        subsets.push(Subset::All);
    }
    subsets
        .into_iter()
        .filter_map(|subset| {
            let samples = subset_latencies(rows, subset);
            (!samples.is_empty()).then(|| {
                let points = ecdf_points(&samples);
                EcdfSeries {
                    subset,
                    count: samples.len(),
                    points,
                }
            })
        })
        .collect()
}

/// The X axis range: from 0 (or the smallest value, if negative) to 5 % past the largest.
pub fn x_range(series: &[EcdfSeries]) -> Range<f64> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (lo, hi) = xs.fold((0.0f64, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let span = hi - lo;
    if span > 0.0 {
        lo..hi + span * 0.05
    } else {
        lo..lo + 1.0
    }
}

/// The files [`write_ecdf_plots`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlotFiles {
    /// `empirical_CDF.png`.
    pub png: PathBuf,
    /// `empirical_CDF.svg`.
    pub svg: PathBuf,
    /// Set when the plots carry a notice instead of curves (e.g. no successful requests).
    pub note: Option<String>,
}

/// Draws `empirical_CDF.png` and `empirical_CDF.svg` into `dir` (which must exist).
///
/// `title_line` is the plot title; a `\n` starts a new title line (STeLLAR used
/// `"<Title>\nIAT ~<IAT>s, Burst sizes [..]"`). With no successful request, the plots say so
/// instead of drawing curves, and [`PlotFiles::note`] is set.
pub fn write_ecdf_plots(
    dir: impl AsRef<Path>,
    title_line: &str,
    rows: &[LatencyRow],
) -> Result<PlotFiles> {
    let dir = dir.as_ref();
    let png = dir.join(ECDF_PNG);
    let svg = dir.join(ECDF_SVG);
    let series = ecdf_series(rows);
    let titles: Vec<&str> = title_line.lines().collect();

    let plot_err = |path: &Path, message: String| ResultsError::Plot {
        path: path.to_path_buf(),
        message,
    };
    ensure_font().map_err(|m| plot_err(&png, m.to_owned()))?;

    let root = BitMapBackend::new(&png, PLOT_SIZE).into_drawing_area();
    draw_ecdf(&root, &titles, &series).map_err(|e| plot_err(&png, e.to_string()))?;
    drop(root);

    let root = SVGBackend::new(&svg, PLOT_SIZE).into_drawing_area();
    draw_ecdf(&root, &titles, &series).map_err(|e| plot_err(&svg, e.to_string()))?;
    drop(root);

    Ok(PlotFiles {
        png,
        svg,
        note: series
            .is_empty()
            .then(|| format!("{NO_DATA_TEXT}: the ECDF plots show a notice only")),
    })
}

fn series_color(subset: Subset) -> RGBColor {
    match subset {
        Subset::Cold => RGBColor(0xd6, 0x27, 0x28),
        Subset::Warm => RGBColor(0x1f, 0x77, 0xb4),
        Subset::All => RGBColor(0x20, 0x20, 0x20),
    }
}

/// Draws the whole figure on `root` and presents it (writes the file).
fn draw_ecdf<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    titles: &[&str],
    series: &[EcdfSeries],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (width, height) = root.dim_in_pixel();
    let line_height = 30u32;
    let title_height = 16 + line_height * u32::try_from(titles.len()).unwrap_or(1).max(1);
    let (top, body) = root.split_vertically(title_height.min(height / 2));

    let title_style = TextStyle::from((FONT_FAMILY, 24).into_font())
        .pos(Pos::new(HPos::Center, VPos::Top))
        .color(&BLACK);
    let center_x = i32::try_from(width / 2).unwrap_or(0);
    for (i, line) in titles.iter().enumerate() {
        let y = 12 + i32::try_from(i).unwrap_or(0) * line_height as i32;
        top.draw(&Text::new(*line, (center_x, y), title_style.clone()))?;
    }

    if series.is_empty() {
        let (w, h) = body.dim_in_pixel();
        let style = TextStyle::from((FONT_FAMILY, 28).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center))
            .color(&BLACK);
        let at = (
            i32::try_from(w / 2).unwrap_or(0),
            i32::try_from(h / 2).unwrap_or(0),
        );
        body.draw(&Text::new(NO_DATA_TEXT, at, style))?;
        return root.present();
    }

    let mut chart = ChartBuilder::on(&body)
        .margin_left(20)
        .margin_right(30)
        .margin_bottom(10)
        .x_label_area_size(55)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range(series), 0f64..1f64)?;
    chart
        .configure_mesh()
        .x_desc("Latency (ms)")
        .y_desc("Portion of requests")
        .axis_desc_style((FONT_FAMILY, 20))
        .label_style((FONT_FAMILY, 16))
        .light_line_style(RGBColor(0xee, 0xee, 0xee))
        .draw()?;
    for s in series {
        let color = series_color(s.subset);
        chart
            .draw_series(LineSeries::new(step_line(&s.points), color.stroke_width(2)))?
            .label(s.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FONT_FAMILY, 18))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn series_all_when_flags_unknown() {
        let series = ecdf_series(&[row(10.0, None), row(30.0, None)]);
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].label(), "all (n=2)");
        // Mixed: known and unknown flags show cold/warm and all.
        let series = ecdf_series(&[row(10.0, None), row(30.0, Some(false))]);
        let labels: Vec<String> = series.iter().map(EcdfSeries::label).collect();
        assert_eq!(labels, ["warm (n=1)", "all (n=2)"]);
        assert!(ecdf_series(&[]).is_empty());
    }

    #[test]
    fn x_range_starts_at_zero_with_headroom() {
        let s = ecdf_series(&[row(10.0, None), row(200.0, None)]);
        assert_eq!(x_range(&s), 0.0..210.0);
        assert_eq!(x_range(&[]), 0.0..1.0);
        let zero = ecdf_series(&[row(0.0, None)]);
        assert_eq!(x_range(&zero), 0.0..1.0);
    }

    #[test]
    fn svg_contains_title_axes_and_legend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = [row(10.0, Some(false)), row(250.0, Some(true))];
        let files = write_ecdf_plots(dir.path(), "warm-cold\nIAT ~3s, Burst sizes [1]", &rows)
            .expect("plot");
        assert_eq!(files.note, None);
        let svg = fs_err::read_to_string(&files.svg).expect("svg");
        for needle in [
            "warm-cold",
            "IAT ~3s, Burst sizes [1]",
            "Latency (ms)",
            "Portion of requests",
            "cold (n=1)",
            "warm (n=1)",
        ] {
            assert!(svg.contains(needle), "missing {needle:?}");
        }
    }

    #[test]
    fn no_successful_requests_draws_a_notice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let failed = LatencyRow {
            error_kind: "connect".into(),
            client_latency_ms: None,
            ..sample_row()
        };
        for rows in [vec![], vec![failed]] {
            let files = write_ecdf_plots(dir.path(), "t", &rows).expect("plot");
            assert!(files.note.is_some());
            let svg = fs_err::read_to_string(&files.svg).expect("svg");
            assert!(svg.contains(NO_DATA_TEXT));
            assert!(files.png.is_file());
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
