//! `send_lag.{png,svg}`: for every request, how much later than planned it actually left the
//! client (ms), against when it was planned (s since the run started).
//!
//! This is the client's self-check. stellar schedules bursts on an absolute timeline; if the
//! client host is overloaded (too many concurrent requests, CPU contention, a slow DNS
//! resolver), requests leave late and the measured latencies describe a different workload
//! from the one the experiment asked for. A flat line near zero means the schedule was kept.
//! Failed requests are drawn too (as orange crosses): they were sent, so their lag counts.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::draw::{self, AXIS_DESC_PX, DrawResult, FONT_FAMILY, Figure, GRID, LEGEND_PX, TICK_PX};
use super::{PlotFiles, PlotInput};
use crate::error::Result;
use crate::record::LatencyRecord;
use crate::stats::quantile;

/// File name of the plots without extension.
pub const SEND_LAG_STEM: &str = "send_lag";
/// Size of the plots, in pixels.
const SIZE: (u32, u32) = (1100, 650);
/// Notice drawn when there is no request at all.
const NO_REQUESTS: &str = "no requests were sent";

/// One request of the send-lag plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SendLagPoint {
    /// Planned send time, in seconds since the run's start.
    pub planned_s: f64,
    /// Actual minus planned send time, in ms (negative if it left early).
    pub lag_ms: f64,
    /// Whether the request failed.
    pub failed: bool,
}

/// The points of the send-lag plot: every row with finite planned and actual send times,
/// failed ones included, lag computed as `actual - planned`.
pub fn send_lag_points<R: LatencyRecord>(input: &PlotInput<'_, R>) -> Vec<SendLagPoint> {
    input
        .rows
        .iter()
        .filter(|r| r.planned_send_ms().is_finite() && r.actual_send_ms().is_finite())
        .map(|r| SendLagPoint {
            planned_s: r.planned_send_ms() / 1000.0,
            lag_ms: r.actual_send_ms() - r.planned_send_ms(),
            failed: !r.is_ok(),
        })
        .collect()
}

/// Draws `send_lag.png` and `send_lag.svg` into `dir` (which must exist).
///
/// With no request at all, the plots carry a notice and [`PlotFiles::note`] is set.
pub fn write_send_lag<R: LatencyRecord>(
    dir: impl AsRef<Path>,
    input: &PlotInput<'_, R>,
) -> Result<PlotFiles> {
    let points = send_lag_points(input);
    let lags: Vec<f64> = points.iter().map(|p| p.lag_ms).collect();
    let subtitle = match (
        quantile(&lags, 0.5),
        quantile(&lags, 0.99),
        quantile(&lags, 1.0),
    ) {
        (Some(p50), Some(p99), Some(max)) => format!(
            "{}: lag p50 {} ms, p99 {} ms, max {} ms",
            draw::plural(points.len(), "request"),
            draw::tick_label(p50),
            draw::tick_label(p99),
            draw::tick_label(max)
        ),
        _ => "0 requests".to_owned(),
    };
    let figure = SendLagFigure {
        titles: input.title_lines(),
        subtitle,
        points,
    };
    let (png, svg) = draw::write_figure(dir.as_ref(), SEND_LAG_STEM, SIZE, &figure)?;
    Ok(PlotFiles {
        png,
        svg,
        note: figure
            .points
            .is_empty()
            .then(|| format!("{NO_REQUESTS}: the send-lag plots show a notice only")),
    })
}

struct SendLagFigure<'a> {
    titles: Vec<&'a str>,
    subtitle: String,
    points: Vec<SendLagPoint>,
}

/// A padded, non-empty range around `lo..=hi`.
fn padded(lo: f64, hi: f64, frac: f64) -> std::ops::Range<f64> {
    let span = hi - lo;
    if span > 0.0 {
        lo - span * frac..hi + span * frac
    } else {
        lo - 1.0..hi + 1.0
    }
}

impl Figure for SendLagFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = draw::draw_header(root, &self.titles, &self.subtitle)?;
        let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (
            draw::min_max(self.points.iter().map(|p| p.planned_s)),
            draw::min_max(self.points.iter().map(|p| p.lag_ms)),
        ) else {
            return draw::draw_notice(&body, NO_REQUESTS);
        };
        // Zero lag is the goal, so keep it in view.
        let y = padded(y_lo.min(0.0), y_hi.max(0.0), 0.06);
        let x = padded(x_lo, x_hi, 0.02);
        let mut chart = ChartBuilder::on(&body)
            .margin_left(20)
            .margin_right(30)
            .margin_bottom(10)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(x.clone(), y)?;
        chart
            .configure_mesh()
            .x_desc("Planned send time (s since start)")
            .y_desc("Send lag: actual − planned (ms)")
            .axis_desc_style((FONT_FAMILY, AXIS_DESC_PX))
            .label_style((FONT_FAMILY, TICK_PX))
            .x_label_formatter(&|v| draw::tick_label(*v))
            .y_label_formatter(&|v| draw::tick_label(*v))
            .light_line_style(GRID)
            .max_light_lines(1)
            .draw()?;
        chart.draw_series(LineSeries::new(
            [(x.start, 0.0), (x.end, 0.0)],
            BLACK.mix(0.5).stroke_width(1),
        ))?;
        let ok: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| !p.failed)
            .map(|p| (p.planned_s, p.lag_ms))
            .collect();
        let failed: Vec<(f64, f64)> = self
            .points
            .iter()
            .filter(|p| p.failed)
            .map(|p| (p.planned_s, p.lag_ms))
            .collect();
        if !ok.is_empty() {
            chart
                .draw_series(
                    ok.iter()
                        .map(|&p| Circle::new(p, 3, draw::WARM.mix(0.6).filled())),
                )?
                .label(format!("succeeded (n={})", ok.len()))
                .legend(|(x, y)| Circle::new((x + 12, y), 4, draw::WARM.filled()));
        }
        if !failed.is_empty() {
            chart
                .draw_series(
                    failed
                        .iter()
                        .map(|&p| Cross::new(p, 5, draw::FAILED.stroke_width(2))),
                )?
                .label(format!("failed (n={})", failed.len()))
                .legend(|(x, y)| Cross::new((x + 12, y), 5, draw::FAILED.stroke_width(2)));
        }
        draw::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, LEGEND_PX)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_png, assert_svg, failed_row, synthetic_rows};
    use super::*;
    use crate::row::LatencyRow;
    use crate::row::tests::sample_row;

    #[test]
    fn points_use_actual_minus_planned_and_keep_failures() {
        let rows = [
            LatencyRow {
                planned_send_ms: 1500.0,
                actual_send_ms: 1502.5,
                // The column is ignored: lag is recomputed from the two times.
                send_lag_ms: 99.0,
                ..sample_row()
            },
            failed_row(),
            LatencyRow {
                actual_send_ms: f64::NAN,
                ..sample_row()
            },
        ];
        let pts = send_lag_points(&PlotInput::new("t", &rows));
        assert_eq!(pts.len(), 2);
        assert_eq!(
            pts[0],
            SendLagPoint {
                planned_s: 1.5,
                lag_ms: 2.5,
                failed: false
            }
        );
        assert!(pts[1].failed);
    }

    #[test]
    fn padded_ranges_are_never_empty() {
        assert_eq!(padded(0.0, 10.0, 0.1), -1.0..11.0);
        assert_eq!(padded(3.0, 3.0, 0.1), 2.0..4.0);
    }

    #[test]
    fn synthetic_run_is_drawn() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = synthetic_rows();
        let files = write_send_lag(dir.path(), &PlotInput::new("Lag", &rows)).expect("plot");
        assert_eq!(files.note, None);
        assert_png(&files.png);
        assert_svg(
            &files.svg,
            &[
                "Lag",
                "Planned send time (s since start)",
                "Send lag: actual − planned (ms)",
                "succeeded (n=",
                "failed (n=",
                "lag p50",
            ],
        );
    }

    #[test]
    fn empty_and_single_inputs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            write_send_lag(dir.path(), &PlotInput::<LatencyRow>::new("t", &[])).expect("plot");
        assert!(files.note.is_some());
        assert_svg(&files.svg, &[NO_REQUESTS]);
        assert_png(&files.png);
        let files =
            write_send_lag(dir.path(), &PlotInput::new("t", &[failed_row()])).expect("plot");
        assert_eq!(files.note, None);
        assert_svg(&files.svg, &["failed (n=1)", "1 request: lag p50"]);
    }
}
