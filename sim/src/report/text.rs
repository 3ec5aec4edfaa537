//! The report people read, and the snapshot tests compare.
//!
//! Everything here is a pure function of the [`Report`]: fixed decimals, times relative to the
//! start of the run, no wall clock and no absolute paths, so the same run renders the same bytes.

use std::fmt::Write as _;

use cellwarden_core::{Counters, Duration};

use super::{Extreme, FaultCount, LogEntry, Outcome, Report, Source, clock};

/// Width the description is wrapped to, indentation included.
const WRAP_COLUMNS: usize = 100;
/// Indentation of everything under a section heading.
const INDENT: &str = "  ";
/// Width of the label column of the summary.
const LABEL_WIDTH: usize = 22;
/// Energies at or above this many Wh are shown in kWh.
const KWH_FROM_WH: f64 = 10_000.0;

impl Report {
    /// The full readable report: header, event log, expectations, summary and verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_header(&mut out);
        out.push('\n');
        self.render_log(&mut out);
        out.push('\n');
        self.render_outcomes(&mut out);
        out.push('\n');
        self.render_summary(&mut out);
        out.push('\n');
        out.push_str(&self.verdict());
        out.push('\n');
        out
    }

    /// One line for listings of many runs: verdict, passed/total expectations, the file's stem,
    /// the simulated duration and the scenario's name.
    pub fn render_summary_line(&self) -> String {
        let total = self.outcomes.len();
        let passed = self.outcomes.iter().filter(|o| o.passed).count();
        let verdict = if self.passed() { "PASS" } else { "FAIL" };
        let line = format!(
            "{verdict}  {:>5}  {:<32}  {:>8}  {}",
            format!("{passed}/{total}"),
            self.stem(),
            format_span(self.duration),
            self.name
        );
        line.trim_end().to_owned()
    }

    /// The last line of the report: `PASSED (n/n expectations)` or
    /// `FAILED (k of n expectations failed)`.
    pub fn verdict(&self) -> String {
        let total = self.outcomes.len();
        let failed = self.outcomes.iter().filter(|o| !o.passed).count();
        if failed == 0 {
            format!("PASSED ({total}/{total} {})", plural(total, "expectation", "expectations"))
        } else {
            format!(
                "FAILED ({failed} of {total} {} failed)",
                plural(total, "expectation", "expectations")
            )
        }
    }

    /// The source file's name without directory and extension (the source itself if it has
    /// none).
    pub fn stem(&self) -> &str {
        let name = self.source.rsplit(['/', '\\']).next().unwrap_or(&self.source);
        match name.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => name,
        }
    }

    fn render_header(&self, out: &mut String) {
        field(out, "", "Scenario", &self.name);
        field(out, "", "Source", &self.source);
        field(out, "", "Seed", &self.seed.to_string());
        field(out, "", "Duration", &format_span(self.duration));
        let description = self.description.trim();
        if !description.is_empty() {
            out.push('\n');
            for line in wrap(description, WRAP_COLUMNS - INDENT.len()) {
                if line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{INDENT}{line}");
                }
            }
        }
    }

    fn render_log(&self, out: &mut String) {
        out.push_str("Event log\n");
        if self.log.is_empty() {
            let _ = writeln!(out, "{INDENT}(empty)");
            return;
        }
        let times: Vec<String> = self.log.iter().map(|e| clock(e.at)).collect();
        let time_width = times.iter().map(String::len).max().unwrap_or(0);
        let tag_width = [Source::Timeline, Source::Core, Source::Plant]
            .iter()
            .map(|s| s.tag().len())
            .max()
            .unwrap_or(0);
        for (entry, time) in self.log.iter().zip(&times) {
            let LogEntry { source, text, .. } = entry;
            let prefix = format!("{INDENT}{time:>time_width$}  {:<tag_width$}  ", source.tag());
            let continuation = " ".repeat(prefix.len());
            let mut lines = text.lines();
            let first = lines.next().unwrap_or("");
            let _ = writeln!(out, "{}", format!("{prefix}{first}").trim_end());
            for line in lines {
                let _ = writeln!(out, "{}", format!("{continuation}{line}").trim_end());
            }
        }
    }

    fn render_outcomes(&self, out: &mut String) {
        out.push_str("Expectations\n");
        if self.outcomes.is_empty() {
            let _ = writeln!(out, "{INDENT}(none)");
            return;
        }
        for Outcome { label, line, passed, detail } in &self.outcomes {
            let verdict = if *passed { "PASS" } else { "FAIL" };
            let _ = writeln!(out, "{INDENT}{verdict}  {label}  (line {line})");
            for detail_line in detail.lines() {
                let detail_line = detail_line.trim_end();
                if detail_line.is_empty() {
                    out.push('\n');
                } else {
                    let _ = writeln!(out, "{INDENT}      {detail_line}");
                }
            }
        }
    }

    fn render_summary(&self, out: &mut String) {
        let s = &self.summary;
        out.push_str("Summary\n");
        field(out, INDENT, "Cell voltage max", &cell_extreme(&s.cell_v_max, 3, "V"));
        field(out, INDENT, "Cell voltage min", &cell_extreme(&s.cell_v_min, 3, "V"));
        field(out, INDENT, "Temperature max", &cell_extreme(&s.temp_c_max, 1, "°C"));
        field(out, INDENT, "Temperature min", &cell_extreme(&s.temp_c_min, 1, "°C"));
        field(out, INDENT, "Charge current max", &current_extreme(&s.charge_a_max));
        field(out, INDENT, "Discharge current max", &current_extreme(&s.discharge_a_max));
        field(
            out,
            INDENT,
            "SoC",
            &format!("{} % → {} %", fixed(s.soc_start_pct, 1), fixed(s.soc_end_pct, 1)),
        );
        field(out, INDENT, "Energy charged", &energy(s.energy.charged_wh));
        field(out, INDENT, "Energy discharged", &energy(s.energy.discharged_wh));
        field(out, INDENT, "Heat", &energy(s.energy.heat_wh));
        render_faults(out, &s.faults);
        field(out, INDENT, "Final state", &s.final_state);
        field(out, INDENT, "Latched fault", s.latched_at_end.map_or("none", |rule| rule.name()));
        if let Some(spread) = &s.spread {
            let below = match spread.below_target_at {
                Some(at) => format!(
                    "first below {} mV at {}",
                    fixed(super::SPREAD_TARGET_MV, 0),
                    format_span(at)
                ),
                None => format!("never below {} mV", fixed(super::SPREAD_TARGET_MV, 0)),
            };
            field(
                out,
                INDENT,
                "Cell spread",
                &format!(
                    "{} mV → {} mV; {below}; bleeding for {}",
                    fixed(spread.start_mv, 1),
                    fixed(spread.end_mv, 1),
                    format_span(spread.bleeding)
                ),
            );
        }
        if let Some(bus) = &s.bus {
            field(
                out,
                INDENT,
                "Board bus",
                &format!(
                    "{} boards, {} cycles of {} ms mean / {} ms max, {} readings missed",
                    bus.boards,
                    bus.cycles,
                    fixed(bus.cycle_mean.as_micros() as f64 / 1e3, 2),
                    fixed(bus.cycle_max.as_micros() as f64 / 1e3, 2),
                    bus.missed
                ),
            );
            field(
                out,
                INDENT,
                "Bus errors",
                &format!(
                    "{} CRC errors, {} timeouts, {} retries, {} enumerations",
                    bus.crc_errors, bus.timeouts, bus.retries, bus.enumerations
                ),
            );
        }
        if let Some(system) = &s.system {
            render_system(out, system);
        }
        if let Some(soc) = &s.soc {
            render_soc(out, soc);
        }
        field(out, INDENT, "Core counters", &counters(&s.counters));
        field(out, INDENT, "Plant steps", &s.plant_steps.to_string());
        field(out, INDENT, "Core calls", &s.core_calls.to_string());
        if s.trace_rows_left_out > 0 {
            let line = format!(
                "{} rows at events left out; {} kept besides the periodic ones",
                s.trace_rows_left_out, s.trace_event_rows
            );
            field(out, INDENT, "Trace", &line);
        }
    }
}

/// A goal's verdict, the same words whether it is met or not.
fn goal(text: &str, met: bool) -> String {
    format!("goal {text}: {}", if met { "met" } else { "NOT met" })
}

fn error_figures(f: &super::ErrorFigures) -> String {
    format!(
        "RMS {} %, max {} % at {}",
        fixed(f.rms_pct, 2),
        signed(f.max_pct, 2),
        format_span(f.max_at)
    )
}

fn signed(value: f64, decimals: usize) -> String {
    let text = fixed(value, decimals);
    if text.starts_with('-') || text.trim_start_matches(['0', '.']).is_empty() {
        text
    } else {
        format!("+{text}")
    }
}

/// The SoC and capacity estimates against the truth, with the goals of issue 6 and whether
/// they were met. A goal that is not met says so here.
fn render_soc(out: &mut String, a: &super::SocAccuracy) {
    use super::{CONVERGED_PCT, LFP_PLATEAU_PCT};
    let band = fixed(CONVERGED_PCT, 0);
    let mut settled = match a.settled_at {
        Some(at) => format!("error within {band} % from {}", format_span(at)),
        None => format!("error not within {band} % at the end"),
    };
    // The first estimate, the truth then and the difference: each number says what it is.
    let first = format!(
        "{} % at {}, true {} % (error {} %)",
        fixed(a.start_estimate_pct, 1),
        format_span(a.start_at),
        fixed(a.start_true_pct, 1),
        signed(a.start_error_pct, 1),
    );
    field(out, INDENT, "SoC estimate, first", &first);
    // From a badly wrong start, the filter must find the SoC under load (NCA only: the LFP
    // plateau does not allow it).
    if !a.lfp && a.start_error_pct.abs() >= 10.0 {
        let limit = Duration::from_secs(600);
        let met = a.settled_at.is_some_and(|at| at.saturating_sub(a.start_at) <= limit);
        settled.push_str(&format!("; {}", goal("10m", met)));
    }
    field(out, INDENT, "SoC settled", &settled);
    let (label, figures) = match (&a.after_settling, a.start_error_pct.abs() > CONVERGED_PCT) {
        (Some(f), true) => ("SoC error, settled", f),
        (Some(f), false) => ("SoC error", f),
        (None, _) => ("SoC error", &a.all),
    };
    let settled_ok = a.after_settling.is_some();
    let verdict = if a.lfp {
        goal("max < 5 %", settled_ok && figures.max_pct.abs() < 5.0)
    } else {
        goal(
            "RMS < 1 %, max < 3 %",
            settled_ok && figures.rms_pct < 1.0 && figures.max_pct.abs() < 3.0,
        )
    };
    field(out, INDENT, label, &format!("{}; {verdict}", error_figures(figures)));
    if let Some(p) = &a.plateau {
        let (lo, hi) = LFP_PLATEAU_PCT;
        field(
            out,
            INDENT,
            "SoC error, plateau",
            &format!("{} (true SoC {}–{} %)", error_figures(p), fixed(lo, 0), fixed(hi, 0)),
        );
    }
    let capacity = learned_against_true(
        (a.capacity_learned_ah, a.capacity_true_ah),
        1,
        "Ah",
        a.capacity_samples,
    );
    field(out, INDENT, "Capacity", &capacity);
    if let Some(at_check) = a.capacity_error_at_check_pct {
        let verdict = goal("within 3 %", at_check.abs() <= 3.0);
        let line = format!("error {} %; {verdict}", signed(at_check, 1));
        field(out, INDENT, "Capacity after 10d", &line);
    }
    let resistance = format!(
        "R0 at 25 °C {}",
        learned_against_true(
            (a.resistance_learned_uohm, a.resistance_true_uohm),
            0,
            "µΩ",
            a.resistance_samples,
        )
    );
    field(out, INDENT, "Resistance", &resistance);
}

/// `learned 228.0 Ah from 1 sample, true 233.0 Ah (-2.1 %)`: the core's figure against the
/// truth, with `decimals` and the relative error. Before its first sample the core has learned
/// nothing and its figure is the configured one, which the line then says:
/// `configured 233.0 Ah, none learned; true 233.0 Ah (0.0 %)`.
fn learned_against_true(
    (figure, truth): (f64, f64),
    decimals: usize,
    unit: &str,
    samples: u32,
) -> String {
    let error = if truth > 0.0 { (figure / truth - 1.0) * 100.0 } else { 0.0 };
    let figure = fixed(figure, decimals);
    let truth = format!("true {} {unit} ({} %)", fixed(truth, decimals), signed(error, 1));
    if samples == 0 {
        format!("configured {figure} {unit}, none learned; {truth}")
    } else {
        let samples = format!("{samples} {}", plural(samples as usize, "sample", "samples"));
        format!("learned {figure} {unit} from {samples}, {truth}")
    }
}

/// Per pack and per inverter of a parallel system, two lines each.
fn render_system(out: &mut String, system: &super::SystemSummary) {
    for p in &system.packs {
        let limits = if p.over_limit_a_max.is_nan() {
            "carried no current".to_string()
        } else if p.over_limit_a_max > 0.0 {
            format!("over its own limit by up to {} A", fixed(p.over_limit_a_max, 1))
        } else {
            format!("within its own limits by {} A", fixed(-p.over_limit_a_max, 1))
        };
        let first = format!(
            "{}, SoC {} % → {} %, on the bus {}, {} at the end",
            p.kind,
            fixed(p.soc_start_pct, 1),
            fixed(p.soc_end_pct, 1),
            format_span(p.connected),
            p.final_phase
        );
        field(out, INDENT, &format!("Pack {}", p.name), &first);
        let second = format!(
            "max {} A in / {} A out, {limits}",
            fixed(p.charge_a_max, 1),
            fixed(p.discharge_a_max, 1)
        );
        field(out, INDENT, "", &second);
    }
    for i in &system.inverters {
        let first = format!(
            "{}, {} frames sent / {} received, {} at the end",
            i.protocol, i.frames_from, i.frames_to, i.final_stage
        );
        field(out, INDENT, &format!("Inverter {}", i.name), &first);
        let second = format!(
            "max {} A in / {} A out, at most {} A over its limits",
            fixed(i.charge_a_max, 1),
            fixed(i.discharge_a_max, 1),
            fixed(i.over_limit_a_max.max(0.0), 1)
        );
        field(out, INDENT, "", &second);
    }
}

/// A span the way scenario files write it: `2h`, `1h 30m`, `10m 5.5s`, `250ms`, `0s`.
pub fn format_span(span: Duration) -> String {
    let micros = span.as_micros();
    if micros == 0 {
        return "0s".to_owned();
    }
    if micros < 1_000_000 {
        return if micros % 1_000 == 0 {
            format!("{}ms", micros / 1_000)
        } else {
            format!("{micros}us")
        };
    }
    let secs = micros / 1_000_000;
    let sub = micros % 1_000_000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hours, rest) = (rest / 3_600, rest % 3_600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    let mut parts = Vec::new();
    if days > 0 {
        parts.push(format!("{days}d"));
    }
    if hours > 0 {
        parts.push(format!("{hours}h"));
    }
    if minutes > 0 {
        parts.push(format!("{minutes}m"));
    }
    if sub != 0 {
        let fraction = format!("{sub:06}");
        parts.push(format!("{seconds}.{}s", fraction.trim_end_matches('0')));
    } else if seconds > 0 {
        parts.push(format!("{seconds}s"));
    }
    parts.join(" ")
}

/// `value` with exactly `decimals` decimals; a value that rounds to zero never shows a minus
/// sign.
pub fn fixed(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    match text.strip_prefix('-') {
        Some(magnitude) if magnitude.bytes().all(|b| b == b'0' || b == b'.') => {
            magnitude.to_owned()
        }
        _ => text,
    }
}

/// Energy in Wh with one decimal, or in kWh with two from 10 kWh on.
pub fn energy(wh: f64) -> String {
    if wh.abs() >= KWH_FROM_WH {
        format!("{} kWh", fixed(wh / 1_000.0, 2))
    } else {
        format!("{} Wh", fixed(wh, 1))
    }
}

fn cell_extreme(extreme: &Extreme, decimals: usize, unit: &str) -> String {
    format!(
        "{:>7} {unit:<3} cell {:<4} at {}",
        fixed(extreme.value, decimals),
        extreme.index,
        clock(extreme.at)
    )
}

fn current_extreme(extreme: &Extreme) -> String {
    if extreme.value == 0.0 {
        "none".to_owned()
    } else {
        format!("{:>7} {:<3} {:<9} at {}", fixed(extreme.value, 1), "A", "", clock(extreme.at))
    }
}

fn counters(counters: &Counters) -> String {
    let Counters { out_of_range, out_of_order, from_the_future, clock_went_back, dropped_events } =
        *counters;
    let named = [
        ("out_of_range", out_of_range),
        ("out_of_order", out_of_order),
        ("from_the_future", from_the_future),
        ("clock_went_back", clock_went_back),
        ("dropped_events", dropped_events),
    ];
    let non_zero: Vec<String> =
        named.iter().filter(|(_, n)| *n != 0).map(|(name, n)| format!("{name} {n}")).collect();
    if non_zero.is_empty() { "none".to_owned() } else { non_zero.join(", ") }
}

fn render_faults(out: &mut String, faults: &[FaultCount]) {
    if faults.is_empty() {
        field(out, INDENT, "Faults", "none");
        return;
    }
    let rule_width = faults.iter().map(|f| f.rule.name().len()).max().unwrap_or(0).max(4);
    let _ = writeln!(out, "{INDENT}Faults");
    let _ = writeln!(
        out,
        "{INDENT}{INDENT}{:<rule_width$}  {:<11}  {:>5}  first at",
        "rule", "tier", "count"
    );
    for fault in faults {
        let _ = writeln!(
            out,
            "{INDENT}{INDENT}{:<rule_width$}  {:<11}  {:>5}  {}",
            fault.rule.name(),
            fault.tier.name(),
            fault.raised,
            clock(fault.first_at)
        );
    }
}

/// One `label  value` line, the label padded to a fixed column.
fn field(out: &mut String, indent: &str, label: &str, value: &str) {
    let line = format!("{indent}{label:<LABEL_WIDTH$} {value}");
    let _ = writeln!(out, "{}", line.trim_end());
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// Greedy word wrap to `width` columns (counted in characters); blank lines separate paragraphs
/// and come out as empty strings; a word longer than `width` gets a line of its own.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for (index, paragraph) in text.split("\n\n").enumerate() {
        if index > 0 {
            lines.push(String::new());
        }
        let mut line = String::new();
        let mut line_chars = 0;
        for word in paragraph.split_whitespace() {
            let word_chars = word.chars().count();
            if line_chars > 0 && line_chars + 1 + word_chars > width {
                lines.push(std::mem::take(&mut line));
                line_chars = 0;
            }
            if line_chars > 0 {
                line.push(' ');
                line_chars += 1;
            }
            line.push_str(word);
            line_chars += word_chars;
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_scenario_files() {
        assert_eq!(format_span(Duration::ZERO), "0s");
        assert_eq!(format_span(Duration::from_millis(250)), "250ms");
        assert_eq!(format_span(Duration::from_micros(15)), "15us");
        assert_eq!(format_span(Duration::from_secs(7_200)), "2h");
        assert_eq!(format_span(Duration::from_secs(5_400)), "1h 30m");
        assert_eq!(format_span(Duration::from_millis(605_500)), "10m 5.5s");
        assert_eq!(format_span(Duration::from_secs(90_061)), "1d 1h 1m 1s");
    }

    #[test]
    fn fixed_never_shows_negative_zero() {
        assert_eq!(fixed(-0.0, 1), "0.0");
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(fixed(-0.05001, 1), "-0.1");
        assert_eq!(fixed(1.23456, 3), "1.235");
        assert_eq!(fixed(-0.0, 0), "0");
    }

    #[test]
    fn energy_switches_to_kwh_at_ten() {
        assert_eq!(energy(9_999.94), "9999.9 Wh");
        assert_eq!(energy(12_346.0), "12.35 kWh");
        assert_eq!(energy(-0.0), "0.0 Wh");
    }

    #[test]
    fn wrap_keeps_paragraphs_and_width() {
        let lines = wrap("aa bb cc\n\ndd", 5);
        assert_eq!(lines, ["aa bb", "cc", "", "dd"]);
        assert_eq!(wrap("averyveryverylongword x", 5), ["averyveryverylongword", "x"]);
    }
}
