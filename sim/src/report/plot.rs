//! The trace as an SVG plot: five stacked panels sharing the time axis.
//!
//! 1. cell voltage envelope (min, mean, max),
//! 2. pack current, true and measured, with the charge limit (positive) and the discharge limit
//!    (negative),
//! 3. state of charge (min, mean, max),
//! 4. temperatures (min, max),
//! 5. contactor positions as steps, one band per contactor, shaded where a safety fault is
//!    latched.
//!
//! Text goes into the SVG as `<text>` elements, so no font library is needed; plotters only
//! estimates text sizes for the layout.

use std::ops::Range;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{Report, TraceRow};

const WIDTH: u32 = 1200;
const PANEL_HEIGHT: u32 = 280;
const TITLE_HEIGHT: u32 = 50;
const PANELS: usize = 5;
const FONT: &str = "sans-serif";

const MIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const MEAN_COLOR: RGBColor = RGBColor(44, 160, 44);
const MAX_COLOR: RGBColor = RGBColor(214, 39, 40);
const MEASURED_COLOR: RGBColor = RGBColor(255, 127, 14);
const CHARGE_LIMIT_COLOR: RGBColor = RGBColor(148, 103, 189);
const DISCHARGE_LIMIT_COLOR: RGBColor = RGBColor(140, 86, 75);
const LATCHED_COLOR: RGBColor = RGBColor(255, 0, 0);

/// Draws the trace of `report` and writes it to `path` as SVG. An empty or one-row trace gives
/// empty panels (or single markers), never an error.
pub fn write_plot_svg(report: &Report, path: &Path) -> Result<(), String> {
    let svg = render_plot_svg(report)?;
    std::fs::write(path, svg).map_err(|err| format!("{}: {err}", path.display()))
}

/// The SVG document for the trace of `report`.
pub fn render_plot_svg(report: &Report) -> Result<String, String> {
    let mut svg = String::new();
    {
        let height = TITLE_HEIGHT + PANEL_HEIGHT * PANELS as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        draw(report, &root).map_err(|err| format!("plot: {err}"))?;
        root.present().map_err(|err| format!("plot: {err}"))?;
    }
    Ok(svg)
}

/// Errors of the drawing calls, as text.
type DrawResult = Result<(), String>;

fn draw<DB: DrawingBackend>(report: &Report, root: &DrawingArea<DB, Shift>) -> DrawResult {
    root.fill(&WHITE).map_err(text)?;
    let title = if report.trace.is_empty() {
        format!("{} (empty trace)", report.name)
    } else {
        report.name.clone()
    };
    let body = root.titled(&title, (FONT, 22)).map_err(text)?;
    let panels = body.split_evenly((PANELS, 1));
    let axis = TimeAxis::new(report);
    let trace = &report.trace;
    let latched = latched_spans(trace, &axis);

    let series = |label, color, dashed, value: fn(&TraceRow) -> f64| Line {
        label,
        color,
        dashed,
        thin: dashed,
        points: trace.iter().map(|row| (axis.x(row), value(row))).collect(),
    };

    let voltage = [
        series("max", MAX_COLOR, false, |r| r.cell_v_max),
        series("mean", MEAN_COLOR, false, |r| r.cell_v_mean),
        series("min", MIN_COLOR, false, |r| r.cell_v_min),
    ];
    line_panel(&panels[0], &axis, "Cell voltage", "cell voltage (V)", &voltage, &latched, 3)?;

    let current = [
        series("current", BLACK, false, |r| r.current_a),
        Line { thin: true, ..series("measured", MEASURED_COLOR, false, |r| r.current_measured_a) },
        series("charge limit", CHARGE_LIMIT_COLOR, true, |r| r.charge_limit_a),
        series("discharge limit", DISCHARGE_LIMIT_COLOR, true, |r| -r.discharge_limit_a),
    ];
    line_panel(
        &panels[1],
        &axis,
        "Pack current (positive: charging)",
        "current (A)",
        &current,
        &latched,
        1,
    )?;

    let soc = [
        series("max", MAX_COLOR, false, |r| r.soc_max_pct),
        series("mean", MEAN_COLOR, false, |r| r.soc_mean_pct),
        series("min", MIN_COLOR, false, |r| r.soc_min_pct),
    ];
    line_panel(&panels[2], &axis, "State of charge", "SoC (%)", &soc, &latched, 1)?;

    let temperature = [
        series("max", MAX_COLOR, false, |r| r.temp_c_max),
        series("min", MIN_COLOR, false, |r| r.temp_c_min),
    ];
    line_panel(
        &panels[3],
        &axis,
        "Cell temperature",
        "temperature (°C)",
        &temperature,
        &latched,
        1,
    )?;

    contactor_panel(&panels[4], &axis, trace, &latched)
}

/// The time axis: its unit follows the run's length.
struct TimeAxis {
    /// Seconds per unit.
    seconds_per_unit: f64,
    /// `s`, `min` or `h`.
    unit: &'static str,
    /// The axis end, in units (positive).
    end: f64,
}

impl TimeAxis {
    fn new(report: &Report) -> TimeAxis {
        let last_row = report.trace.last().map_or(0, |row| row.at.as_micros());
        let span_s = report.duration.as_micros().max(last_row) as f64 / 1e6;
        let (seconds_per_unit, unit) = if span_s <= 120.0 {
            (1.0, "s")
        } else if span_s <= 2.0 * 3_600.0 {
            (60.0, "min")
        } else {
            (3_600.0, "h")
        };
        let end = span_s / seconds_per_unit;
        TimeAxis { seconds_per_unit, unit, end: if end > 0.0 { end } else { 1.0 } }
    }

    fn x(&self, row: &TraceRow) -> f64 {
        row.at.as_micros() as f64 / 1e6 / self.seconds_per_unit
    }

    fn range(&self) -> Range<f64> {
        0.0..self.end
    }

    fn desc(&self) -> String {
        format!("time ({})", self.unit)
    }
}

/// One line of a panel.
struct Line {
    label: &'static str,
    color: RGBColor,
    /// Dashed, thin: a limit rather than a measurement.
    dashed: bool,
    /// Drawn thin (a noisy signal on top of a clean one).
    thin: bool,
    points: Vec<(f64, f64)>,
}

fn line_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    axis: &TimeAxis,
    caption: &str,
    y_desc: &str,
    lines: &[Line],
    latched: &[Range<f64>],
    decimals: usize,
) -> DrawResult {
    let y_range = y_range(lines.iter().flat_map(|line| line.points.iter().map(|p| p.1)));
    // Enough decimals that ticks about a tenth of the range apart print differently (a
    // temperature that moves 0.3 °C needs two), never fewer than the panel asks for.
    let step = (y_range.end - y_range.start) / 10.0;
    let needed = if step > 0.0 && step.is_finite() { (-step.log10()).ceil().max(0.0) } else { 0.0 };
    let decimals = decimals.max(needed as usize).min(4);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(axis.range(), y_range.clone())
        .map_err(text)?;
    chart
        .configure_mesh()
        .x_desc(axis.desc())
        .y_desc(y_desc)
        .x_label_formatter(&|x| trim_number(*x))
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text)?;
    shade_latched(&mut chart, latched, &y_range)?;
    for line in lines {
        let style = line.color.stroke_width(if line.thin { 1 } else { 2 });
        let legend = move |(x, y): (i32, i32)| PathElement::new(vec![(x, y), (x + 20, y)], style);
        let points = finite(&line.points);
        if line.dashed {
            chart
                .draw_series(DashedLineSeries::new(points, 6, 4, style))
                .map_err(text)?
                .label(line.label)
                .legend(legend);
        } else {
            let marker = if points.len() == 1 { 3 } else { 0 };
            chart
                .draw_series(LineSeries::new(points, style).point_size(marker))
                .map_err(text)?
                .label(line.label)
                .legend(legend);
        }
    }
    legend_box(&mut chart)
}

/// Negative, precharge and positive as 0/1 steps in bands of their own: 0/1, 2/3 and 4/5.
fn contactor_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    axis: &TimeAxis,
    trace: &[TraceRow],
    latched: &[Range<f64>],
) -> DrawResult {
    const NAMES: [&str; 3] = ["negative", "precharge", "positive"];
    const SHORT: [&str; 3] = ["neg", "pre", "pos"];
    const COLORS: [RGBColor; 3] = [MIN_COLOR, MEASURED_COLOR, MAX_COLOR];
    let y_range = -0.5..5.5;
    let mut chart = ChartBuilder::on(area)
        .caption("Contactors (shaded: safety fault latched)", (FONT, 16))
        .margin(8)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(axis.range(), y_range.clone())
        .map_err(text)?;
    let y_label = |y: &f64| {
        let level = y.round();
        if (y - level).abs() > 1e-6 || !(0.0..=5.0).contains(&level) {
            return String::new();
        }
        let level = level as usize;
        let position = if level % 2 == 0 { "open" } else { "closed" };
        format!("{} {position}", SHORT[level / 2])
    };
    chart
        .configure_mesh()
        .x_desc(axis.desc())
        .x_label_formatter(&|x| trim_number(*x))
        .y_labels(7)
        .y_label_formatter(&y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(text)?;
    shade_latched(&mut chart, latched, &y_range)?;
    for (index, name) in NAMES.into_iter().enumerate() {
        let offset = 2.0 * index as f64;
        let style = COLORS[index].stroke_width(2);
        let mut points = Vec::with_capacity(trace.len() * 2);
        for row in trace {
            let y = offset + if row.contactors[index] { 1.0 } else { 0.0 };
            let x = axis.x(row);
            if let Some(&(_, previous)) = points.last() {
                if previous != y {
                    points.push((x, previous));
                }
            }
            points.push((x, y));
        }
        let marker = if trace.len() == 1 { 3 } else { 0 };
        chart
            .draw_series(LineSeries::new(points, style).point_size(marker))
            .map_err(text)?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    legend_box(&mut chart)
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn shade_latched<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    latched: &[Range<f64>],
    y_range: &Range<f64>,
) -> DrawResult {
    let fill = LATCHED_COLOR.mix(0.12).filled();
    chart
        .draw_series(latched.iter().map(|span| {
            Rectangle::new([(span.start, y_range.start), (span.end, y_range.end)], fill)
        }))
        .map_err(text)?;
    Ok(())
}

fn legend_box<'a, DB: DrawingBackend + 'a>(chart: &mut Chart<'a, DB>) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.5))
        .label_font((FONT, 12))
        .draw()
        .map_err(text)
}

/// The times (in axis units) during which a safety fault was latched: from each latched row to
/// the next row that is not, or to the axis end.
fn latched_spans(trace: &[TraceRow], axis: &TimeAxis) -> Vec<Range<f64>> {
    let mut spans = Vec::new();
    let mut start = None;
    for row in trace {
        match (row.latched, start) {
            (true, None) => start = Some(axis.x(row)),
            (false, Some(from)) => {
                spans.push(from..axis.x(row));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        spans.push(from..axis.end.max(from));
    }
    spans
}

/// A y range holding every finite value with a margin; `0..1` when there is none.
fn y_range(values: impl Iterator<Item = f64>) -> Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for value in values.filter(|v| v.is_finite()) {
        lo = lo.min(value);
        hi = hi.max(value);
    }
    if lo > hi {
        return 0.0..1.0;
    }
    let span = hi - lo;
    let margin = if span > 1e-9 { span * 0.08 } else { (hi.abs() * 0.05).max(0.5) };
    (lo - margin)..(hi + margin)
}

/// The points with finite coordinates (plotters cannot place the others).
fn finite(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points.iter().copied().filter(|(x, y)| x.is_finite() && y.is_finite()).collect()
}

/// An axis tick without trailing zeros: `0`, `2.5`, `10`.
fn trim_number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { "0".to_owned() } else { text.to_owned() }
}

fn text(err: impl std::fmt::Display) -> String {
    err.to_string()
}
