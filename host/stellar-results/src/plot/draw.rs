//! Drawing helpers shared by every plot: the bundled font, the title block, the "no data"
//! notice, tick labels, colours, and writing one figure as both PNG and SVG.
//!
//! Keeping these in one place makes all plots look alike (same fonts, sizes and colours), and
//! lets each plot module describe only its chart.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::combinators::{BindKeyPoints, LogCoord, WithKeyPoints};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Result, ResultsError};

/// Font family name under which the bundled font is registered.
pub(crate) const FONT_FAMILY: &str = "sans-serif";
const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Colour of warm requests.
pub(crate) const WARM: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
/// Colour of cold requests.
pub(crate) const COLD: RGBColor = RGBColor(0xd6, 0x27, 0x28);
/// Colour of requests whose temperature is unknown (and of "all requests").
pub(crate) const UNKNOWN: RGBColor = RGBColor(0x55, 0x55, 0x55);
/// Colour of failed requests (send-lag plot).
pub(crate) const FAILED: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
/// Light grid lines.
pub(crate) const GRID: RGBColor = RGBColor(0xe8, 0xe8, 0xe8);
/// Subtitle text.
const SUBTITLE: RGBColor = RGBColor(0x44, 0x44, 0x44);

/// Axis description font size, in pixels.
pub(crate) const AXIS_DESC_PX: u32 = 19;
/// Tick label font size, in pixels.
pub(crate) const TICK_PX: u32 = 15;
/// Legend font size, in pixels.
pub(crate) const LEGEND_PX: u32 = 16;

/// Result of drawing on a backend.
pub(crate) type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// Draws the series legend in the house style: the bundled font at `font_px`, on a
/// translucent white box with a grey border, at `position`.
pub(crate) fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
    font_px: u32,
) -> DrawResult<DB> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT_FAMILY, font_px))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.5))
        .draw()
}

/// Registers the bundled font with plotters, once per process.
fn ensure_font() -> std::result::Result<(), &'static str> {
    static REGISTERED: OnceLock<std::result::Result<(), &'static str>> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| "the bundled DejaVu Sans font could not be parsed")
    })
}

/// A figure that can be drawn on any plotters backend.
pub(crate) trait Figure {
    /// Draws the whole figure on `root` (without presenting it).
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
}

/// Draws `figure` into `<dir>/<stem>.png` and `<dir>/<stem>.svg` (`dir` must exist).
pub(crate) fn write_figure(
    dir: &Path,
    stem: &str,
    size: (u32, u32),
    figure: &impl Figure,
) -> Result<(PathBuf, PathBuf)> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    let plot_err = |path: &Path, message: String| ResultsError::Plot {
        path: path.to_path_buf(),
        message,
    };
    ensure_font().map_err(|m| plot_err(&png, m.to_owned()))?;

    let root = BitMapBackend::new(&png, size).into_drawing_area();
    figure
        .draw(&root)
        .and_then(|()| root.present())
        .map_err(|e| plot_err(&png, e.to_string()))?;
    drop(root);

    let root = SVGBackend::new(&svg, size).into_drawing_area();
    figure
        .draw(&root)
        .and_then(|()| root.present())
        .map_err(|e| plot_err(&svg, e.to_string()))?;
    drop(root);
    Ok((png, svg))
}

fn px(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Fills `root` white, draws the title lines (24 px, centred) and a smaller grey subtitle, and
/// returns the area below them.
pub(crate) fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    titles: &[&str],
    subtitle: &str,
) -> std::result::Result<DrawingArea<DB, Shift>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (width, height) = root.dim_in_pixel();
    let line = 30u32;
    let lines = u32::try_from(titles.len()).unwrap_or(1);
    let sub = if subtitle.is_empty() { 0 } else { 26 };
    let header = (14 + line * lines + sub + 6).min(height / 2);
    let (top, body) = root.split_vertically(header);
    let center_x = px(width / 2);
    let title_style = TextStyle::from((FONT_FAMILY, 24).into_font())
        .pos(Pos::new(HPos::Center, VPos::Top))
        .color(&BLACK);
    let mut y = 12;
    for text in titles {
        top.draw(&Text::new(*text, (center_x, y), title_style.clone()))?;
        y += px(line);
    }
    if !subtitle.is_empty() {
        let style = TextStyle::from((FONT_FAMILY, 17).into_font())
            .pos(Pos::new(HPos::Center, VPos::Top))
            .color(&SUBTITLE);
        top.draw(&Text::new(subtitle, (center_x, y + 2), style))?;
    }
    Ok(body)
}

/// Draws `text` centred on `area` (used instead of a chart when there is nothing to plot).
pub(crate) fn draw_notice<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
) -> DrawResult<DB> {
    let (w, h) = area.dim_in_pixel();
    let style = TextStyle::from((FONT_FAMILY, 26).into_font())
        .pos(Pos::new(HPos::Center, VPos::Center))
        .color(&BLACK);
    area.draw(&Text::new(text, (px(w / 2), px(h / 2)), style))
}

/// A tick label: integers for large values, up to three significant decimals for small ones,
/// no trailing zeros (`1500`, `12.5`, `0.25`).
pub(crate) fn tick_label(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        let t = s.trim_end_matches('0').trim_end_matches('.');
        if t == "-0" {
            "0".to_owned()
        } else {
            t.to_owned()
        }
    } else if s == "-0" {
        "0".to_owned()
    } else {
        s
    }
}

/// How to scale a latency axis.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scale {
    /// Linear over the range.
    Linear(Range<f64>),
    /// Base-10 logarithmic over the (strictly positive) range.
    Log(Range<f64>),
}

impl Scale {
    /// The axis description suffix, e.g. `" (log scale)"`.
    pub(crate) fn suffix(&self) -> &'static str {
        match self {
            Self::Linear(_) => "",
            Self::Log(_) => ", log scale",
        }
    }
}

/// Chooses the scale for latencies spanning `lo..=hi`: logarithmic when all values are
/// positive and `hi / lo > 100`, else linear from 0 (or `lo` if negative) with 5 % headroom.
/// Always returns a non-empty range.
pub(crate) fn latency_scale(lo: f64, hi: f64) -> Scale {
    latency_scale_above(lo, hi, 100.0)
}

/// [`latency_scale`] with the ratio above which the scale turns logarithmic.
pub(crate) fn latency_scale_above(lo: f64, hi: f64, log_ratio: f64) -> Scale {
    if lo > 0.0 && hi / lo > log_ratio {
        return Scale::Log(lo / 1.25..hi * 1.25);
    }
    let start = lo.min(0.0);
    let span = hi - start;
    if span > 0.0 {
        Scale::Linear(start..hi + span * 0.05)
    } else {
        Scale::Linear(start..start + 1.0)
    }
}

/// Tick positions for a logarithmic axis over `lo..hi` (both positive): the 1-2-5 values of
/// each decade as labelled ticks (only powers of ten when that would exceed 10 ticks), and
/// every other integer multiple of a power of ten as light grid lines.
pub(crate) fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let first = lo.log10().floor() as i32;
    let last = hi.log10().floor() as i32;
    let within = |v: &f64| *v >= lo && *v <= hi;
    let multiples = |ms: &[f64]| -> Vec<f64> {
        (first..=last)
            .flat_map(|d| ms.iter().map(move |m| m * 10f64.powi(d)))
            .filter(within)
            .collect()
    };
    let all = multiples(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let mut bold = multiples(&[1.0, 2.0, 5.0]);
    if bold.len() > 10 {
        bold = multiples(&[1.0]);
    }
    if bold.len() < 2 {
        bold = all.clone();
    }
    let light = all.into_iter().filter(|v| !bold.contains(v)).collect();
    (bold, light)
}

/// A logarithmic axis over `range` with [`log_ticks`] as its ticks and grid.
pub(crate) fn log_axis(range: Range<f64>) -> WithKeyPoints<LogCoord<f64>> {
    let (bold, light) = log_ticks(range.start, range.end);
    range
        .log_scale()
        .with_key_points(bold)
        .with_light_points(light)
}

/// `(min, max)` of the finite values, or `None` when there are none.
pub(crate) fn min_max(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// `n` with a singular or plural noun: `1 request`, `3 requests`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("{n} {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(1500.0), "1500");
        assert_eq!(tick_label(12.5), "12.5");
        assert_eq!(tick_label(20.0), "20");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(0.0), "0");
        assert_eq!(tick_label(-0.0001), "0");
        assert_eq!(tick_label(-2.5), "-2.5");
    }

    #[test]
    fn log_scale_only_for_wide_positive_ranges() {
        assert_eq!(latency_scale(1.0, 50.0), Scale::Linear(0.0..52.5));
        assert!(matches!(latency_scale(1.0, 1000.0), Scale::Log(_)));
        assert!(matches!(latency_scale(0.0, 1000.0), Scale::Linear(_)));
        assert_eq!(latency_scale(0.0, 0.0), Scale::Linear(0.0..1.0));
        assert_eq!(latency_scale(-2.0, 2.0), Scale::Linear(-2.0..2.2));
    }

    #[test]
    fn log_threshold_is_configurable() {
        assert!(matches!(
            latency_scale_above(10.0, 500.0, 20.0),
            Scale::Log(_)
        ));
        assert!(matches!(
            latency_scale_above(10.0, 150.0, 20.0),
            Scale::Linear(_)
        ));
    }

    #[test]
    fn log_ticks_follow_1_2_5() {
        let (bold, light) = log_ticks(9.6, 1125.0);
        assert_eq!(bold, [10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
        assert!(light.contains(&30.0) && light.contains(&900.0) && !light.contains(&20.0));
        let (bold, _) = log_ticks(0.8, 250_000.0);
        assert_eq!(bold, [1.0, 10.0, 100.0, 1000.0, 10_000.0, 100_000.0]);
        assert_eq!(log_ticks(0.0, 10.0), (vec![], vec![]));
    }

    #[test]
    fn min_max_skips_non_finite() {
        assert_eq!(
            min_max([3.0, f64::NAN, 1.0, f64::INFINITY]),
            Some((1.0, 3.0))
        );
        assert_eq!(min_max([f64::NAN]), None);
    }
}
