//! `data-transfers.{png,svg}`: median transfer time per hop against payload size, one series
//! per transfer kind (inline, S3, Azure Blob), with 95 % bootstrap intervals as error bars.
//!
//! Both axes are logarithmic: STeLLAR's payloads span 1 KiB to 1 GiB. The points come from
//! [`crate::transfers::transfer_points`] (intact payloads, warm receivers).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::PlotFiles;
use super::draw::{self, AXIS_DESC_PX, DrawResult, FONT_FAMILY, Figure, LEGEND_PX, TICK_PX};
use crate::error::Result;
use crate::transfers::TransferPoint;

/// File name of the plots without extension.
pub const TRANSFERS_STEM: &str = "data-transfers";
const SIZE: (u32, u32) = (1100, 650);
const NO_TRANSFERS: &str = "no intact transfer to a warm receiver";
const COLOURS: [RGBColor; 4] = [
    draw::WARM,
    draw::COLD,
    RGBColor(0x2c, 0xa0, 0x2c),
    draw::UNKNOWN,
];

/// Draws `data-transfers.png` and `.svg` into `dir` (which must exist).
pub fn write_transfer_plot(
    dir: impl AsRef<Path>,
    title: &str,
    points: &[TransferPoint],
) -> Result<PlotFiles> {
    let figure = TransferFigure {
        title,
        subtitle: format!(
            "median transfer time per hop (one-clock durations), 95 % bootstrap CI; {}",
            draw::plural(points.iter().map(|p| p.n).sum(), "hop")
        ),
        points,
    };
    let (png, svg) = draw::write_figure(dir.as_ref(), TRANSFERS_STEM, SIZE, &figure)?;
    Ok(PlotFiles {
        png,
        svg,
        note: points
            .is_empty()
            .then(|| format!("{NO_TRANSFERS}: the transfer plot shows a notice only")),
    })
}

struct TransferFigure<'a> {
    title: &'a str,
    subtitle: String,
    points: &'a [TransferPoint],
}

impl Figure for TransferFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        let body = draw::draw_header(root, &[self.title], &self.subtitle)?;
        let ys = self.points.iter().flat_map(|p| {
            [
                p.median_ms,
                p.ci.map_or(p.median_ms, |c| c.lower),
                p.ci.map_or(p.median_ms, |c| c.upper),
            ]
        });
        let (Some((x_lo, x_hi)), Some((y_lo, y_hi))) = (
            draw::min_max(self.points.iter().map(|p| p.payload_bytes as f64)),
            draw::min_max(ys.filter(|v| *v > 0.0)),
        ) else {
            return draw::draw_notice(&body, NO_TRANSFERS);
        };
        let x = (x_lo.max(1.0) / 2.0)..(x_hi.max(1.0) * 2.0);
        let y = (y_lo / 1.5)..(y_hi * 1.5);
        let mut chart = ChartBuilder::on(&body)
            .margin_left(20)
            .margin_right(30)
            .margin_bottom(10)
            .x_label_area_size(55)
            .y_label_area_size(80)
            .build_cartesian_2d(draw::log_axis(x), draw::log_axis(y))?;
        chart
            .configure_mesh()
            .x_desc("Payload (bytes)")
            .y_desc("Transfer time per hop (ms)")
            .axis_desc_style((FONT_FAMILY, AXIS_DESC_PX))
            .label_style((FONT_FAMILY, TICK_PX))
            .x_label_formatter(&|v| draw::tick_label(*v))
            .y_label_formatter(&|v| draw::tick_label(*v))
            .draw()?;
        let mut kinds: Vec<&str> = self.points.iter().map(|p| p.transfer.as_str()).collect();
        kinds.dedup();
        for (i, kind) in kinds.into_iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let series: Vec<&TransferPoint> =
                self.points.iter().filter(|p| p.transfer == kind).collect();
            // Error bars: the interval as a vertical line with short caps (multiplicative
            // on the log x axis).
            for p in &series {
                let Some(c) = p.ci else { continue };
                let x = p.payload_bytes as f64;
                let lower = c.lower.max(f64::MIN_POSITIVE);
                let style = colour.stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(x, lower), (x, c.upper)], style),
                    PathElement::new(vec![(x / 1.08, lower), (x * 1.08, lower)], style),
                    PathElement::new(vec![(x / 1.08, c.upper), (x * 1.08, c.upper)], style),
                ])?;
            }
            chart.draw_series(LineSeries::new(
                series.iter().map(|p| (p.payload_bytes as f64, p.median_ms)),
                colour.stroke_width(1),
            ))?;
            chart
                .draw_series(series.iter().map(|p| {
                    Circle::new((p.payload_bytes as f64, p.median_ms), 4, colour.filled())
                }))?
                .label(format!(
                    "{kind} (n={})",
                    series.iter().map(|p| p.n).sum::<usize>()
                ))
                .legend(move |(x, y)| Circle::new((x + 12, y), 4, colour.filled()));
        }
        draw::draw_legend(&mut chart, SeriesLabelPosition::UpperLeft, LEGEND_PX)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_png, assert_svg};
    use super::*;
    use crate::uncertainty::Interval;

    #[test]
    fn draws_points_and_an_empty_notice() {
        let dir = tempfile::tempdir().unwrap();
        let point = |transfer: &str, payload_bytes, median_ms| TransferPoint {
            transfer: transfer.into(),
            payload_bytes,
            n: 5,
            median_ms,
            ci: Some(Interval {
                lower: median_ms * 0.8,
                upper: median_ms * 1.3,
                confidence: 0.95,
            }),
        };
        let points = [
            point("inline", 1024, 0.4),
            point("inline", 1 << 20, 2.0),
            point("s3", 1024, 5.0),
            point("s3", 1 << 20, 30.0),
        ];
        let files = write_transfer_plot(dir.path(), "transfers", &points).unwrap();
        assert!(files.note.is_none());
        assert_png(&files.png);
        assert_svg(&files.svg, &["inline"]);
        let empty = tempfile::tempdir().unwrap();
        let files = write_transfer_plot(empty.path(), "transfers", &[]).unwrap();
        assert!(files.note.is_some());
        assert_png(&files.png);
    }
}
