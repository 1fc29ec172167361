//! `bursts_characterization.{png,svg}`: the latency of every successful request against the
//! index of the burst it was sent in, cold requests as red crosses over warm blue dots.
//!
//! This is where a run's story over time shows: whether cold starts cluster in the first
//! bursts, recur after every long IAT, or grow with burst size. STeLLAR's plot of the same name
//! counted warm and cold requests per burst with a latency threshold; drawing the latencies
//! keeps that split visible and adds the tail.

use std::collections::BTreeMap;
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
use crate::stats::quantile;

/// File name of the plots without extension (the name Go STeLLAR used).
pub const BURSTS_STEM: &str = "bursts_characterization";
/// Size of the plots, in pixels.
const SIZE: (u32, u32) = (1100, 650);

/// One successful request in the bursts plot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstPoint {
    /// Burst index (the `Burst ID` column).
    pub burst: u64,
    /// Client latency, in ms.
    pub latency_ms: f64,
    /// Cold, warm or unknown under the input's rule.
    pub temperature: Temperature,
}

/// The points of the bursts plot: successful requests only, in row order.
pub fn burst_points<R: LatencyRecord>(input: &PlotInput<'_, R>) -> Vec<BurstPoint> {
    input
        .rows
        .iter()
        .filter_map(|row| {
            row.ok_latency_ms().map(|latency_ms| BurstPoint {
                burst: row.burst_id(),
                latency_ms,
                temperature: input.temperature(row),
            })
        })
        .collect()
}

/// The median latency of each burst, by burst index.
fn burst_medians(points: &[BurstPoint]) -> Vec<(f64, f64)> {
    let mut by_burst: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for p in points {
        by_burst.entry(p.burst).or_default().push(p.latency_ms);
    }
    by_burst
        .into_iter()
        .filter_map(|(b, v)| quantile(&v, 0.5).map(|m| (b as f64, m)))
        .collect()
}

/// Draws `bursts_characterization.png` and `.svg` into `dir` (which must exist).
///
/// With no successful request, the plots carry a notice and [`PlotFiles::note`] is set.
pub fn write_bursts_characterization<R: LatencyRecord>(
    dir: impl AsRef<Path>,
    input: &PlotInput<'_, R>,
) -> Result<PlotFiles> {
    let points = burst_points(input);
    let bursts = points
        .iter()
        .map(|p| p.burst)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut subtitle = input.counts_text();
    if bursts > 0 {
        subtitle.push_str(&format!(" in {}", draw::plural(bursts, "burst")));
    }
    let figure = BurstsFigure {
        titles: input.title_lines(),
        subtitle,
        points,
    };
    let (png, svg) = draw::write_figure(dir.as_ref(), BURSTS_STEM, SIZE, &figure)?;
    Ok(PlotFiles {
        png,
        svg,
        note: figure
            .points
            .is_empty()
            .then(|| format!("{NO_DATA_TEXT}: the bursts plots show a notice only")),
    })
}

struct BurstsFigure<'a> {
    titles: Vec<&'a str>,
    subtitle: String,
    points: Vec<BurstPoint>,
}

impl Figure for BurstsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = draw::draw_header(root, &self.titles, &self.subtitle)?;
        let Some((lo, hi)) = draw::min_max(self.points.iter().map(|p| p.latency_ms)) else {
            return draw::draw_notice(&body, NO_DATA_TEXT);
        };
        let scale = draw::latency_scale(lo, hi);
        let y_desc = format!("Client latency (ms{})", scale.suffix());
        match scale {
            Scale::Linear(r) => self.chart(&body, r, &y_desc),
            Scale::Log(r) => self.chart(&body, draw::log_axis(r), &y_desc),
        }
    }
}

impl BurstsFigure<'_> {
    fn chart<DB, Y>(&self, area: &DrawingArea<DB, Shift>, y: Y, y_desc: &str) -> DrawResult<DB>
    where
        DB: DrawingBackend,
        Y: AsRangedCoord<Value = f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let (first, last) = self.points.iter().fold((u64::MAX, 0), |(lo, hi), p| {
            (lo.min(p.burst), hi.max(p.burst))
        });
        let pad = ((last - first) as f64 * 0.02).max(0.5);
        let x = first as f64 - pad..last as f64 + pad;
        let mut chart = ChartBuilder::on(area)
            .margin_left(20)
            .margin_right(30)
            .margin_bottom(10)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc("Burst index")
            .y_desc(y_desc)
            .axis_desc_style((FONT_FAMILY, AXIS_DESC_PX))
            .label_style((FONT_FAMILY, TICK_PX))
            // Bursts are whole numbers: leave fractional ticks unlabelled.
            .x_label_formatter(&|v| {
                if v.fract() == 0.0 {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| draw::tick_label(*v))
            .light_line_style(GRID)
            .max_light_lines(1)
            .draw()?;

        let count = |t: Temperature| self.points.iter().filter(|p| p.temperature == t).count();
        let of = |t: Temperature| {
            self.points
                .iter()
                .filter(move |p| p.temperature == t)
                .map(|p| (p.burst as f64, p.latency_ms))
        };
        for t in [Temperature::Warm, Temperature::Unknown] {
            let n = count(t);
            if n == 0 {
                continue;
            }
            let color = if t == Temperature::Warm {
                draw::WARM
            } else {
                draw::UNKNOWN
            };
            chart
                .draw_series(of(t).map(|p| Circle::new(p, 3, color.mix(0.7).filled())))?
                .label(format!("{} (n={n})", t.as_str()))
                .legend(move |(x, y)| Circle::new((x + 12, y), 4, color.filled()));
        }
        let n_cold = count(Temperature::Cold);
        if n_cold > 0 {
            chart
                .draw_series(
                    of(Temperature::Cold).map(|p| Cross::new(p, 5, draw::COLD.stroke_width(2))),
                )?
                .label(format!("cold (n={n_cold})"))
                .legend(|(x, y)| Cross::new((x + 12, y), 5, draw::COLD.stroke_width(2)));
        }
        // A per-burst median only says something when bursts hold several requests.
        let medians = burst_medians(&self.points);
        if medians.len() > 1 && self.points.len() >= 3 * medians.len() {
            chart
                .draw_series(LineSeries::new(medians, BLACK.mix(0.6).stroke_width(1)))?
                .label("per-burst median")
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], BLACK.mix(0.6).stroke_width(2))
                });
        }
        draw::draw_legend(&mut chart, SeriesLabelPosition::UpperRight, LEGEND_PX)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_png, assert_svg, failed_row, synthetic_rows};
    use super::*;
    use crate::row::LatencyRow;
    use crate::row::tests::sample_row;

    #[test]
    fn points_skip_failures_and_follow_the_rule() {
        let rows = [
            LatencyRow {
                burst_id: 2,
                client_latency_ms: Some(400.0),
                cold: None,
                ..sample_row()
            },
            failed_row(),
        ];
        let rule = super::super::cold_at_or_above(300.0);
        let pts = burst_points(&PlotInput::new("t", &rows).with_cold(&rule));
        assert_eq!(
            pts,
            [BurstPoint {
                burst: 2,
                latency_ms: 400.0,
                temperature: Temperature::Cold
            }]
        );
        let pts = burst_points(&PlotInput::new("t", &rows));
        assert_eq!(pts[0].temperature, Temperature::Unknown);
    }

    #[test]
    fn medians_per_burst() {
        let p = |burst, latency_ms| BurstPoint {
            burst,
            latency_ms,
            temperature: Temperature::Warm,
        };
        let m = burst_medians(&[p(1, 30.0), p(0, 5.0), p(1, 10.0), p(1, 20.0)]);
        assert_eq!(m, vec![(0.0, 5.0), (1.0, 20.0)]);
    }

    #[test]
    fn synthetic_run_is_drawn_with_both_temperatures() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = synthetic_rows();
        let files = write_bursts_characterization(dir.path(), &PlotInput::new("Bursty", &rows))
            .expect("plot");
        assert_eq!(files.note, None);
        assert_png(&files.png);
        assert_svg(
            &files.svg,
            &[
                "Bursty",
                "Burst index",
                "Client latency (ms)",
                "cold (n=",
                "warm (n=",
                "in 24 bursts",
                "failed (not shown)",
            ],
        );
    }

    #[test]
    fn wide_latency_range_switches_to_log_scale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rows = [
            LatencyRow {
                client_latency_ms: Some(2.0),
                ..sample_row()
            },
            LatencyRow {
                client_latency_ms: Some(5000.0),
                cold: Some(true),
                burst_id: 4,
                ..sample_row()
            },
        ];
        let files =
            write_bursts_characterization(dir.path(), &PlotInput::new("t", &rows)).expect("plot");
        assert_svg(&files.svg, &["Client latency (ms, log scale)"]);
    }

    #[test]
    fn empty_and_single_inputs_draw_without_panicking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files =
            write_bursts_characterization(dir.path(), &PlotInput::<LatencyRow>::new("t", &[]))
                .expect("plot");
        assert!(files.note.is_some());
        assert_svg(&files.svg, &[NO_DATA_TEXT, "0 successful requests"]);
        assert_png(&files.png);
        let one = [sample_row()];
        let files =
            write_bursts_characterization(dir.path(), &PlotInput::new("t", &one)).expect("plot");
        assert_eq!(files.note, None);
        assert_svg(&files.svg, &["Burst index", "warm (n=1)"]);
    }
}
