//! The report's renderings on a hand-made report: the text report, the summary line, the CSV
//! trace and the SVG plot.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use cellwarden_core::{Counters, Duration, RuleId, Tier};
use cellwarden_sim::plant::Energy;
use cellwarden_sim::report::csv::write_trace_csv;
use cellwarden_sim::report::plot::write_plot_svg;
use cellwarden_sim::report::{
    BusSummary, ErrorFigures, Extreme, FaultCount, InverterSummary, LogEntry, Outcome, PackSummary,
    Report, SocAccuracy, Source, SpreadSummary, Summary, SystemSummary, TraceRow,
};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn entry(at: Duration, source: Source, text: &str) -> LogEntry {
    LogEntry { at, source, text: text.to_owned() }
}

fn row(at: Duration, current_a: f64, closed: bool, latched: bool) -> TraceRow {
    TraceRow {
        at,
        current_a,
        current_measured_a: current_a + 0.25,
        pack_v: 385.123_44,
        bus_v: if closed { 385.0 } else { 0.0 },
        cell_v_min: 3.912_34,
        cell_v_mean: 3.95,
        cell_v_max: 4.000_06,
        soc_min_pct: 60.0,
        soc_mean_pct: 61.234_5,
        soc_max_pct: 62.5,
        soc_estimate_pct: closed.then_some(58.75),
        temp_c_min: -0.001,
        temp_c_max: 25.555,
        charge_limit_a: 120.0,
        discharge_limit_a: 300.0,
        contactors: [closed, false, closed],
        state: if closed { "closed" } else { "open" },
        latched,
    }
}

/// A small report: three log lines (one past 24 h), one passing and one failing expectation,
/// a fault, a latched rule and a non-zero counter.
fn sample() -> Report {
    Report {
        name: "Cell over-voltage while charging opens the contactors".to_owned(),
        source: "scenarios/cell_overvoltage.toml".to_owned(),
        description: "A runaway cell climbs by 20 mV a minute while the pack charges at 60 A. \
            The core must warn, stop charging and finally open the contactors and latch the \
            fault before the cell passes its maximum safety limit; nothing may close them again \
            until the fault is cleared."
            .to_owned(),
        seed: 7,
        duration: Duration::from_secs(2 * 86_400),
        log: vec![
            entry(Duration::ZERO, Source::Timeline, "command start (line 21)"),
            entry(ms(1_500), Source::Core, "contactor negative closed"),
            entry(ms(3_723_004), Source::Plant, "contactor positive welded"),
            entry(ms(93_784_000), Source::Plant, "contactor positive did not move\nsecond line"),
        ],
        outcomes: vec![
            Outcome {
                label: "contactors open within 250 ms of the first cell above 4250 mV".to_owned(),
                line: 40,
                passed: true,
                detail: "first cell above 4250 mV at 00:10:31.900; contactors open at \
                    00:10:32.020 (120 ms)"
                    .to_owned(),
            },
            Outcome {
                label: "no cell above 4.30 V".to_owned(),
                line: 46,
                passed: false,
                detail: "cell 17 at 4.312 V at 00:10:40.000".to_owned(),
            },
        ],
        summary: Summary {
            cell_v_max: Extreme { value: 4.312_4, at: ms(640_000), index: 17 },
            cell_v_min: Extreme { value: 3.9, at: Duration::ZERO, index: 0 },
            temp_c_max: Extreme { value: 31.25, at: ms(7_200_000), index: 5 },
            temp_c_min: Extreme { value: -0.04, at: Duration::ZERO, index: 2 },
            charge_a_max: Extreme { value: 60.04, at: ms(60_000), index: 0 },
            discharge_a_max: Extreme { value: 0.0, at: Duration::ZERO, index: 0 },
            soc_start_pct: 92.0,
            soc_end_pct: 95.06,
            energy: Energy { charged_wh: 1_234.56, discharged_wh: -0.0, heat_wh: 12_345.6 },
            faults: vec![
                FaultCount {
                    rule: RuleId::CellOverVoltage,
                    tier: Tier::Operating,
                    raised: 1,
                    first_at: ms(600_000),
                },
                FaultCount {
                    rule: RuleId::CellOverVoltage,
                    tier: Tier::Maximum,
                    raised: 12,
                    first_at: ms(631_900),
                },
            ],
            final_state: "open".to_owned(),
            latched_at_end: Some(RuleId::CellOverVoltage),
            counters: Counters { dropped_events: 3, ..Counters::default() },
            core_calls: 123_456,
            plant_steps: 7_200_000,
            spread: Some(SpreadSummary {
                start_mv: 55.56,
                end_mv: 4.04,
                bleeding: ms(3_600_000),
                below_target_at: Some(ms(7_000_000)),
            }),
            bus: Some(BusSummary {
                boards: 16,
                cycles: 72_000,
                cycle_mean: Duration::from_micros(16_094),
                cycle_max: Duration::from_micros(25_540),
                missed: 9,
                crc_errors: 27,
                timeouts: 9,
                retries: 27,
                enumerations: 1,
            }),
            system: Some(SystemSummary {
                packs: vec![
                    PackSummary {
                        name: "rack A".into(),
                        kind: "pylontech".into(),
                        soc_start_pct: 45.0,
                        soc_end_pct: 52.64,
                        charge_a_max: 14.2,
                        discharge_a_max: 8.4,
                        over_limit_a_max: -10.85,
                        connected: ms(2_399_990),
                        final_phase: "joined".into(),
                    },
                    PackSummary {
                        name: "rack C (empty)".into(),
                        kind: "pylontech".into(),
                        soc_start_pct: 3.0,
                        soc_end_pct: 3.0,
                        over_limit_a_max: f64::NAN,
                        final_phase: "refused".into(),
                        ..PackSummary::default()
                    },
                ],
                inverters: vec![InverterSummary {
                    name: "Victron GX".into(),
                    protocol: "victron".into(),
                    frames_from: 7203,
                    frames_to: 19199,
                    charge_a_max: 80.0,
                    discharge_a_max: 40.0,
                    over_limit_a_max: 35.0,
                    final_stage: "opened the system".into(),
                }],
            }),
            soc: Some(SocAccuracy {
                lfp: false,
                start_at: ms(100),
                start_estimate_pct: 40.0,
                start_true_pct: 60.04,
                start_error_pct: -20.04,
                settled_at: Some(ms(700_100)),
                all: ErrorFigures { rms_pct: 5.0, max_pct: -20.04, max_at: ms(100), samples: 9 },
                after_settling: Some(ErrorFigures {
                    rms_pct: 0.456,
                    max_pct: 3.21,
                    max_at: ms(90_000_000),
                    samples: 7,
                }),
                plateau: None,
                capacity_learned_ah: 228.04,
                capacity_true_ah: 233.0,
                capacity_samples: 1,
                capacity_error_at_check_pct: Some(-2.13),
                resistance_learned_uohm: 431.0,
                resistance_true_uohm: 424.6,
                resistance_samples: 2,
            }),
            trace_event_rows: 3,
            trace_rows_left_out: 0,
        },
        trace: vec![
            row(Duration::ZERO, 0.0, false, false),
            row(ms(60_000), 60.0, true, false),
            row(ms(631_900), -0.0004, false, true),
            row(ms(7_200_000), 0.0, false, true),
        ],
    }
}

fn passing(mut report: Report) -> Report {
    for outcome in &mut report.outcomes {
        outcome.passed = true;
    }
    report
}

#[test]
fn render_shows_header_log_expectations_summary_and_verdict() {
    let text = sample().render();
    println!("{text}");

    assert!(text.starts_with(
        "Scenario               Cell over-voltage while charging opens the contactors\n\
         Source                 scenarios/cell_overvoltage.toml\n\
         Seed                   7\n\
         Duration               2d\n"
    ));
    // The description is wrapped at 100 columns.
    assert!(text.lines().all(|line| line.chars().count() <= 100), "{text}");
    assert!(text.contains("\n  A runaway cell climbs by 20 mV a minute"));
    assert!(text.contains("\n  Pack rack C (empty)    pylontech, SoC 3.0 % → 3.0 %, on the bus 0s, refused at the end\n                         max 0.0 A in / 0.0 A out, carried no current\n"), "{text}");
    assert!(
        text.contains("max 14.2 A in / 8.4 A out, within its own limits by 10.8 A\n"),
        "{text}"
    );
    // The SoC figures, and a goal that is missed says so.
    // The first estimate, the truth and the error are each named.
    assert!(text.contains("\n  SoC estimate, first    40.0 % at 100ms, true 60.0 % (error -20.0 %)\n  SoC settled            error within 3 % from 11m 40.1s; goal 10m: NOT met\n"), "{text}");
    assert!(text.contains("\n  SoC error, settled     RMS 0.46 %, max +3.21 % at 1d 1h; goal RMS < 1 %, max < 3 %: NOT met\n"), "{text}");
    assert!(text.contains("\n  Capacity               learned 228.0 Ah from 1 sample, true 233.0 Ah (-2.1 %)\n  Capacity after 10d     error -2.1 %; goal within 3 %: met\n  Resistance             R0 at 25 °C learned 431 µΩ from 2 samples, true 425 µΩ (+1.5 %)\n"), "{text}");
    assert!(text.contains("\n  Inverter Victron GX    victron, 7203 frames sent / 19199 received, opened the system at the end\n"), "{text}");

    // Times as HH:MM:SS.mmm, right-aligned against the longest (a day count), tags padded.
    assert!(text.contains("\n     00:00:00.000  timeline  command start (line 21)\n"), "{text}");
    assert!(text.contains("\n     00:00:01.500  core      contactor negative closed\n"));
    assert!(text.contains("\n     01:02:03.004  plant     contactor positive welded\n"));
    assert!(text.contains("\n  1d 02:03:04.000  plant     contactor positive did not move\n"));
    assert!(text.contains("\n                             second line\n"), "{text}");

    assert!(text.contains(
        "\n  PASS  contactors open within 250 ms of the first cell above 4250 mV  (line 40)\n\
         \x20       first cell above 4250 mV at 00:10:31.900; contactors open at 00:10:32.020 \
         (120 ms)\n"
    ));
    assert!(text.contains(
        "\n  FAIL  no cell above 4.30 V  (line 46)\n        cell 17 at 4.312 V at 00:10:40.000\n"
    ));

    assert!(text.contains("Cell voltage max         4.312 V   cell 17   at 00:10:40.000\n"));
    assert!(text.contains("Cell voltage min         3.900 V   cell 0    at 00:00:00.000\n"));
    assert!(text.contains("Temperature max           31.2 °C  cell 5    at 02:00:00.000\n"));
    assert!(text.contains("Temperature min            0.0 °C  cell 2    at 00:00:00.000\n"));
    assert!(text.contains("Charge current max        60.0 A             at 00:01:00.000\n"));
    assert!(text.contains("Discharge current max  none\n"));
    assert!(text.contains("SoC                    92.0 % → 95.1 %\n"));
    assert!(text.contains("Energy charged         1234.6 Wh\n"));
    assert!(text.contains("Energy discharged      0.0 Wh\n"));
    assert!(text.contains("Heat                   12.35 kWh\n"));
    assert!(text.contains(
        "  Faults\n    rule               tier         count  first at\n    \
         cell_over_voltage  operating        1  00:10:00.000\n    \
         cell_over_voltage  maximum         12  00:10:31.900\n"
    ));
    assert!(text.contains("Final state            open\n"));
    assert!(text.contains("Latched fault          cell_over_voltage\n"));
    assert!(text.contains(
        "Cell spread            55.6 mV → 4.0 mV; first below 10 mV at 1h 56m 40s; \
         bleeding for 1h\n"
    ));
    assert!(text.contains(
        "Board bus              16 boards, 72000 cycles of 16.09 ms mean / 25.54 ms max, \
         9 readings missed\n"
    ));
    assert!(text.contains(
        "Bus errors             27 CRC errors, 9 timeouts, 27 retries, 1 enumerations\n"
    ));
    assert!(text.contains("Core counters          dropped_events 3\n"));
    assert!(text.contains("Plant steps            7200000\n"));
    assert!(text.contains("Core calls             123456\n"));

    assert!(!text.contains("-0.0"), "negative zero rendered: {text}");
    assert!(text.ends_with("\nFAILED (1 of 2 expectations failed)\n"));
    assert_eq!(text, sample().render(), "rendering is deterministic");
}

#[test]
fn render_of_a_passing_quiet_report() {
    let mut report = passing(sample());
    report.log.clear();
    report.description.clear();
    report.summary.faults.clear();
    report.summary.latched_at_end = None;
    report.summary.counters = Counters::default();
    report.summary.spread = None;
    report.summary.bus = None;
    let text = report.render();
    assert!(!text.contains("Cell spread") && !text.contains("Board bus"), "{text}");
    // Every row at an event was kept: no Trace line.
    assert!(!text.contains("\n  Trace "), "{text}");
    assert!(text.contains("Event log\n  (empty)\n"), "{text}");
    assert!(text.contains("  Faults                 none\n"));
    assert!(text.contains("Latched fault          none\n"));
    assert!(text.contains("Core counters          none\n"));
    assert!(text.ends_with("\nPASSED (2/2 expectations)\n"));

    report.outcomes.clear();
    let text = report.render();
    assert!(text.contains("Expectations\n  (none)\n"));
    assert!(text.ends_with("\nPASSED (0/0 expectations)\n"));
}

#[test]
fn soc_lines_say_when_nothing_was_learned_and_what_the_first_estimate_was() {
    let mut report = sample();
    let soc = report.summary.soc.as_mut().expect("soc figures");
    // A good start: no goal on the settling time, and the error is the plain one.
    soc.start_estimate_pct = 60.0;
    soc.start_true_pct = 60.04;
    soc.start_error_pct = -0.04;
    soc.settled_at = None;
    // Nothing learned: the figures are the configured ones and the lines say so.
    soc.capacity_learned_ah = 233.0;
    soc.capacity_samples = 0;
    soc.capacity_error_at_check_pct = None;
    soc.resistance_learned_uohm = 350.0;
    soc.resistance_samples = 0;
    let text = report.render();
    assert!(text.contains("\n  SoC estimate, first    60.0 % at 100ms, true 60.0 % (error 0.0 %)\n  SoC settled            error not within 3 % at the end\n"), "{text}");
    assert!(text.contains("\n  Capacity               configured 233.0 Ah, none learned; true 233.0 Ah (0.0 %)\n  Resistance             R0 at 25 °C configured 350 µΩ, none learned; true 425 µΩ (-17.6 %)\n"), "{text}");
    assert!(!text.contains("learned 233.0") && !text.contains("Capacity after 10d"), "{text}");
}

#[test]
fn summary_line_names_verdict_counts_file_and_scenario() {
    assert_eq!(
        sample().render_summary_line(),
        "FAIL    1/2  cell_overvoltage                        2d  \
         Cell over-voltage while charging opens the contactors"
    );
    assert!(passing(sample()).render_summary_line().starts_with("PASS    2/2  cell_overvoltage  "));
}

#[test]
fn csv_has_the_header_and_fixed_decimals() {
    let mut out = Vec::new();
    write_trace_csv(&sample(), &mut out).expect("writing to a Vec");
    let csv = String::from_utf8(out).expect("utf-8");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "t_s,current_a,current_measured_a,pack_v,bus_v,cell_v_min,cell_v_mean,cell_v_max,\
         soc_min_pct,soc_mean_pct,soc_max_pct,soc_estimate_pct,temp_c_min,temp_c_max,charge_limit_a,\
         discharge_limit_a,negative,precharge,positive,state,latched"
    );
    assert_eq!(lines.len(), 5);
    assert_eq!(
        lines[2],
        "60.000,60.000,60.250,385.1234,385.0000,3.9123,3.9500,4.0001,60.000,61.234,62.500,58.750,0.00,\
         25.55,120.000,300.000,1,0,1,closed,0"
    );
    // -0.0004 A rounds to zero and is written without a sign.
    assert!(lines[3].starts_with("631.900,0.000,0.250,"), "{}", lines[3]);
    assert!(lines[4].ends_with(",0,0,0,open,1"));
    // No SoC estimate yet: an empty field.
    assert!(lines[4].contains(",62.500,,0.00,"), "{}", lines[4]);
    assert!(!csv.contains("-0.0"));
    assert!(csv.ends_with('\n'));
}

fn temp_svg(name: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cellwarden-report-render-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir.join(name)
}

fn assert_plot(report: &Report, name: &str) {
    let path = temp_svg(name);
    write_plot_svg(report, &path).expect("plot written");
    let svg = std::fs::read_to_string(&path).expect("plot readable");
    assert!(svg.contains("<svg"), "{name}: no <svg in {svg}");
    assert!(svg.contains("Cell over-voltage while charging opens the contactors"));
    assert!(svg.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(path.parent().expect("temp dir"));
}

#[test]
fn plot_of_a_normal_trace() {
    assert_plot(&sample(), "normal.svg");
}

#[test]
fn plot_of_an_empty_trace() {
    let mut report = sample();
    report.trace.clear();
    assert_plot(&report, "empty.svg");
    report.duration = Duration::ZERO;
    assert_plot(&report, "empty_zero_duration.svg");
}

#[test]
fn plot_of_a_single_row() {
    let mut report = sample();
    report.trace.truncate(1);
    report.duration = Duration::ZERO;
    assert_plot(&report, "one_row.svg");
}

#[test]
fn plot_to_an_unwritable_path_is_an_error() {
    let path = temp_svg("missing").join("no such dir").join("plot.svg");
    let err = write_plot_svg(&sample(), &path).expect_err("parent directory does not exist");
    assert!(err.contains("plot.svg"), "{err}");
}
