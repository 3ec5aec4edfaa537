//! The trace as CSV: one header line, then one line per [`TraceRow`] with fixed decimals, so the
//! same run writes the same bytes.

use std::io::{self, Write};

use super::text::fixed;
use super::{Report, TraceRow};

/// The header line's columns, in order.
pub const COLUMNS: [&str; 21] = [
    "t_s",
    "current_a",
    "current_measured_a",
    "pack_v",
    "bus_v",
    "cell_v_min",
    "cell_v_mean",
    "cell_v_max",
    "soc_min_pct",
    "soc_mean_pct",
    "soc_max_pct",
    "soc_estimate_pct",
    "temp_c_min",
    "temp_c_max",
    "charge_limit_a",
    "discharge_limit_a",
    "negative",
    "precharge",
    "positive",
    "state",
    "latched",
];

// Decimals per quantity (time always has 3: milliseconds).
const VOLTS: usize = 4;
const AMPS: usize = 3;
const PERCENT: usize = 3;
const CELSIUS: usize = 2;

/// Writes the header and every trace row of `report` to `out` (time in s with 3 decimals, volts
/// with 4, amps and percent with 3, °C with 2, contactors and `latched` as 0/1; the SoC estimate
/// empty while the core has none).
pub fn write_trace_csv(report: &Report, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", COLUMNS.join(","))?;
    for row in &report.trace {
        writeln!(out, "{}", row_line(row))?;
    }
    Ok(())
}

/// One CSV line (without the newline) for `row`.
pub fn row_line(row: &TraceRow) -> String {
    let micros = row.at.as_micros();
    // Integer arithmetic for the time: exact whatever the run's length (microseconds truncated).
    let t = format!("{}.{:03}", micros / 1_000_000, (micros % 1_000_000) / 1_000);
    let fields = [
        t,
        fixed(row.current_a, AMPS),
        fixed(row.current_measured_a, AMPS),
        fixed(row.pack_v, VOLTS),
        fixed(row.bus_v, VOLTS),
        fixed(row.cell_v_min, VOLTS),
        fixed(row.cell_v_mean, VOLTS),
        fixed(row.cell_v_max, VOLTS),
        fixed(row.soc_min_pct, PERCENT),
        fixed(row.soc_mean_pct, PERCENT),
        fixed(row.soc_max_pct, PERCENT),
        row.soc_estimate_pct.map_or_else(String::new, |p| fixed(p, PERCENT)),
        fixed(row.temp_c_min, CELSIUS),
        fixed(row.temp_c_max, CELSIUS),
        fixed(row.charge_limit_a, AMPS),
        fixed(row.discharge_limit_a, AMPS),
        bit(row.contactors[0]),
        bit(row.contactors[1]),
        bit(row.contactors[2]),
        text_field(row.state),
        bit(row.latched),
    ];
    fields.join(",")
}

fn bit(on: bool) -> String {
    if on { "1" } else { "0" }.to_owned()
}

/// A text field, quoted only if it needs to be.
fn text_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}
