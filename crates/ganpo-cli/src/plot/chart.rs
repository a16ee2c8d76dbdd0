//! A line chart written as a PNG: a title, axis labels, and named series of `(x, y)` points with
//! a legend. Non-finite points are gaps: the line breaks there instead of diving to a sentinel.

use std::path::Path;

use ganpo::train::checkpoint_dir::write_file_atomically;
use ganpo::{Error, Result};
use plotters::prelude::*;

use super::font::{FONT_FAMILY, register_embedded_font};

/// Width of every chart, in pixels.
pub const WIDTH: u32 = 900;
/// Height of every chart, in pixels.
pub const HEIGHT: u32 = 560;

/// Series with at most this many points get a marker on each point (temperature sweeps, eval
/// curves); denser training curves stay plain lines.
const MARKER_LIMIT: usize = 40;

/// Matplotlib's `tab10` colors: distinguishable, and familiar to readers of TRL's plots.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Points in drawing order; a point with a non-finite coordinate is a gap.
    pub points: Vec<(f64, f64)>,
    /// Palette index of its colour (default: its position among the drawn series), so one
    /// quantity keeps its colour across figures.
    pub color: Option<usize>,
}

impl Series {
    /// A series from points (non-finite coordinates are gaps).
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            color: None,
        }
    }

    /// The same series drawn in palette colour `index` (Matplotlib's `tab10` order).
    pub fn with_color(mut self, index: usize) -> Self {
        self.color = Some(index);
        self
    }

    /// A series from optional values: `None` is a gap.
    pub fn from_options(
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, Option<f64>)>,
    ) -> Self {
        let points = points
            .into_iter()
            .map(|(x, y)| (x, y.unwrap_or(f64::NAN)))
            .collect();
        Series::new(name, points)
    }

    fn finite(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }

    /// Whether the series has at least one drawable point.
    pub fn has_data(&self) -> bool {
        self.finite().next().is_some()
    }

    /// Runs of consecutive finite points; each run is drawn as one line.
    fn segments(&self) -> Vec<Vec<(f64, f64)>> {
        let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut current = Vec::new();
        for &(x, y) in &self.points {
            if x.is_finite() && y.is_finite() {
                current.push((x, y));
            } else if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

/// A titled chart of several series.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Caption above the plot.
    pub title: String,
    /// Horizontal axis label.
    pub x_label: String,
    /// Vertical axis label.
    pub y_label: String,
    /// The lines, in legend order; series without drawable points are left out of the legend.
    pub series: Vec<Series>,
}

impl LineChart {
    /// An empty chart.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        LineChart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series: Vec::new(),
        }
    }

    /// Adds a series.
    pub fn with_series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// Whether any series has a drawable point (a chart without one is not worth a file).
    pub fn has_data(&self) -> bool {
        self.series.iter().any(Series::has_data)
    }

    /// Axis ranges covering every finite point, padded so lines clear the frame.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let points: Vec<(f64, f64)> = self.series.iter().flat_map(Series::finite).collect();
        let span = |values: &mut dyn Iterator<Item = f64>| {
            let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            if lo > hi {
                return (0.0, 1.0);
            }
            // A flat line (accuracy stuck at 1, a single eval point) still needs a visible range.
            let pad = if hi - lo > f64::EPSILON * hi.abs().max(1.0) {
                (hi - lo) * 0.05
            } else {
                (hi.abs() * 0.1).max(1e-3)
            };
            (lo - pad, hi + pad)
        };
        (
            span(&mut points.iter().map(|p| p.0)),
            span(&mut points.iter().map(|p| p.1)),
        )
    }

    /// Puts the legend in the corner with the fewest points under it (a corner box of 45% of
    /// the width and 35% of the height), preferring top right, then bottom right, top left,
    /// bottom left.
    fn legend_position(&self, x_range: (f64, f64), y_range: (f64, f64)) -> SeriesLabelPosition {
        let unit = |v: f64, (lo, hi): (f64, f64)| (v - lo) / (hi - lo);
        let points: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(Series::finite)
            .map(|(x, y)| (unit(x, x_range), unit(y, y_range)))
            .collect();
        let corners = [
            (SeriesLabelPosition::UpperRight, true, true),
            (SeriesLabelPosition::LowerRight, true, false),
            (SeriesLabelPosition::UpperLeft, false, true),
            (SeriesLabelPosition::LowerLeft, false, false),
        ];
        let covered = |right: bool, top: bool| {
            points
                .iter()
                .filter(|&&(x, y)| {
                    (if right { x >= 0.55 } else { x <= 0.45 })
                        && (if top { y >= 0.65 } else { y <= 0.35 })
                })
                .count()
        };
        corners
            .into_iter()
            .min_by_key(|&(_, right, top)| covered(right, top))
            .map_or(SeriesLabelPosition::UpperRight, |(position, _, _)| position)
    }

    /// Draws the chart into a `WIDTH`×`HEIGHT` PNG at `path` (its directory must exist), written
    /// atomically: the file is complete or absent.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        register_embedded_font()?;
        let failed = |message: String| {
            Error::io(
                format!("drawing plot {}", path.display()),
                std::io::Error::other(message),
            )
        };
        let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
        self.draw(&mut rgb).map_err(failed)?;
        let png = encode_png(&rgb).map_err(|e| failed(e.to_string()))?;
        write_file_atomically(path, &png)
    }

    fn draw(&self, rgb: &mut [u8]) -> std::result::Result<(), String> {
        let fail = |e: &dyn std::fmt::Display| e.to_string();
        let root = BitMapBackend::with_buffer(rgb, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(&e))?;
        let (x_range, y_range) = self.ranges();
        let x_span = x_range.1 - x_range.0;
        let y_span = y_range.1 - y_range.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, (FONT_FAMILY, 26))
            .margin(18)
            .x_label_area_size(52)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style((FONT_FAMILY, 15))
            .x_label_formatter(&|v| tick_label(*v, x_span))
            .y_label_formatter(&|v| tick_label(*v, y_span))
            .axis_desc_style((FONT_FAMILY, 18))
            .light_line_style(RGBColor(238, 238, 238))
            .bold_line_style(RGBColor(215, 215, 215))
            .draw()
            .map_err(|e| fail(&e))?;
        let drawn = self.series.iter().filter(|s| s.has_data());
        for (i, series) in drawn.enumerate() {
            let color = PALETTE[series.color.unwrap_or(i) % PALETTE.len()];
            let line = color.stroke_width(2);
            let markers = series.finite().count() <= MARKER_LIMIT;
            for (j, segment) in series.segments().into_iter().enumerate() {
                let anno = chart
                    .draw_series(LineSeries::new(segment.iter().copied(), line))
                    .map_err(|e| fail(&e))?;
                if j == 0 {
                    anno.label(series.name.clone()).legend(move |(x, y)| {
                        EmptyElement::at((x, y))
                            + PathElement::new(vec![(0, 0), (24, 0)], line)
                            + Circle::new((12, 0), if markers { 3 } else { 0 }, color.filled())
                    });
                }
                // A lone point between gaps has no line to show it: always mark it.
                if markers || segment.len() == 1 {
                    chart
                        .draw_series(segment.iter().map(|&p| Circle::new(p, 3, color.filled())))
                        .map_err(|e| fail(&e))?;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(self.legend_position(x_range, y_range))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font((FONT_FAMILY, 15))
            .draw()
            .map_err(|e| fail(&e))?;
        root.present().map_err(|e| fail(&e))
    }
}

/// A tick label with as many decimals as ticks `span / 10` apart need, trailing zeros dropped
/// (`20` for step 20, not `20.0`), and scientific notation for tiny scales (learning rates).
fn tick_label(value: f64, span: f64) -> String {
    if value == 0.0 {
        return "0".into();
    }
    if !value.is_finite() {
        return value.to_string();
    }
    if span < 1e-3 || value.abs() >= 1e6 {
        let s = format!("{value:.2e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    let decimals = (-(span / 10.0).log10()).ceil().clamp(0.0, 6.0) as usize;
    match trim_zeros(&format!("{value:.decimals$}")) {
        // A tick at -1e-17 (floating-point tick arithmetic) is zero.
        "-0" => "0".into(),
        label => label.into(),
    }
}

/// `"0.50"` → `"0.5"`, `"20.0"` → `"20"`; integers are left alone.
fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// An 8-bit RGB image of the chart's size as PNG bytes.
fn encode_png(rgb: &[u8]) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(rgb)?;
    writer.finish()?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick_label(20.0, 200.0), "20");
        assert_eq!(tick_label(0.0, 0.7), "0");
        assert_eq!(tick_label(0.1, 0.7), "0.1");
        assert_eq!(tick_label(-1e-17, 0.4), "0");
        assert_eq!(tick_label(0.25, 0.7), "0.25");
        assert_eq!(tick_label(-1.5, 4.0), "-1.5");
        assert_eq!(tick_label(5e-6, 1e-5), "5e-6");
        assert_eq!(tick_label(1.25e-5, 1e-5), "1.25e-5");
        assert_eq!(tick_label(3e6, 4e6), "3e6");
    }

    #[test]
    fn gaps_split_a_series_into_segments() {
        let s = Series::from_options(
            "s",
            [
                (0.0, Some(1.0)),
                (1.0, None),
                (2.0, Some(2.0)),
                (3.0, Some(f64::INFINITY)),
            ],
        );
        assert_eq!(s.segments(), vec![vec![(0.0, 1.0)], vec![(2.0, 2.0)]]);
        assert!(s.has_data());
        assert!(!Series::from_options("e", [(0.0, None)]).has_data());
    }

    #[test]
    fn the_legend_avoids_the_data() {
        let rising = (0..50).map(|i| (i as f64, i as f64)).collect();
        let chart = LineChart::new("t", "x", "y").with_series(Series::new("up", rising));
        let (x, y) = chart.ranges();
        assert_eq!(chart.legend_position(x, y), SeriesLabelPosition::LowerRight);
        let falling = (0..50).map(|i| (i as f64, -(i as f64))).collect();
        let chart = LineChart::new("t", "x", "y").with_series(Series::new("down", falling));
        let (x, y) = chart.ranges();
        assert_eq!(chart.legend_position(x, y), SeriesLabelPosition::UpperRight);
    }

    #[test]
    fn flat_and_empty_charts_get_a_visible_range() {
        let flat = LineChart::new("t", "x", "y").with_series(Series::new("a", vec![(5.0, 1.0)]));
        let ((x0, x1), (y0, y1)) = flat.ranges();
        assert!(x0 < 5.0 && 5.0 < x1 && y0 < 1.0 && 1.0 < y1);
        assert_eq!(
            LineChart::new("t", "x", "y").ranges(),
            ((0.0, 1.0), (0.0, 1.0))
        );
    }
}
