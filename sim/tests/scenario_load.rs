//! Loading and checking scenario files: a good file gives the right scenario; every kind of
//! mistake gives a message with the file, the right line and the field path; no text panics.
//! Also the demand profiles, through their public API.

use std::path::{Path, PathBuf};

use cellwarden_core::{Command, Duration, MilliVolts, RuleId, Tier};
use cellwarden_sim::plant::Chemistry;
use cellwarden_sim::profile::{Demand, Profile, ProfileSpec};
use cellwarden_sim::scenario::schema::{EventName, FaultSpec, OpenHow, Signal, StateName};
use cellwarden_sim::scenario::{
    Check, Compare, Condition, EventFilter, LoadError, Scenario, Trigger, load, load_str,
};

const FILE: &str = "scenarios/test.toml";

/// A scenario that uses most of the format.
const GOOD: &str = r#"
name = "Everything at once"
description = """
Two lines
of description.
"""
seed = 7
duration = "2h"

[system]
preset = "tesla_model_s"
modules = 16

[system.overrides]
protection.cell_over_voltage_mv.maximum = 4300
contactors.feedback.positive = true

[plant]
ambient_c = 25
initial_soc = 0.9
spread = { capacity_pct = 2.0, resistance_pct = 5.0, soc_pct = 1.0 }
cell = { r0_mohm = 1.2, self_discharge_pct_per_month = 3.0, coulombic_efficiency = 0.99 }
bus = { capacitance_uf = 1500, short_ohm = 2.5 }

[sensors]
measure_period = "200ms"
current_noise_a = 0.1

[inverter]
obeys_limits = false

[output]
trace_interval = "10s"

[[timeline]]
at = "10m"
fault = { kind = "cell_runaway_is_not_a_kind_so_this_is_replaced_below" }

[[timeline]]
at = "0s"
command = "start"

[[timeline]]
at = "1m"
load = { kind = "constant", amps = 60 }

[[timeline]]
at = "10m"
note = "second entry at 10m, after the fault in file order"
ambient_c = 30

[[expect]]
kind = "within"
event = "contactors_open"
how = "emergency"
after = { signal = "cell_mv_max", above = 4300 }
limit = "500ms"

[[expect]]
kind = "never"
name = "No closing with a latched fault"
signal = "closed_with_latched_fault"
above = 0.5
from = "1m"

[[expect]]
kind = "never"
event = "fault_raised"
rule = "cell_over_voltage"
tier = "maximum"
until = "30m"

[[expect]]
kind = "by"
event = "contactors_closed"
by = "30s"

[[expect]]
kind = "count"
event = "command"
command = "start"
count = 1

[[expect]]
kind = "count"
event = "precharge_started"
min = 1
max = 3

[[expect]]
kind = "at_end"
state = "open"

[[expect]]
kind = "at_end"
latched = "none"

[[expect]]
kind = "at_end"
latched = "cell_over_voltage"

[[expect]]
kind = "at_end"
signal = "soc_pct_min"
below = 99.5

[[expect]]
kind = "within"
event = "fault_raised"
rule = "contactor_welded"
after = { event = "contactors_open", how = "graceful" }
limit = "400ms"
"#;

fn good() -> String {
    GOOD.replace(
        r#"{ kind = "cell_runaway_is_not_a_kind_so_this_is_replaced_below" }"#,
        r#"{ kind = "cell_leak", cell = 95, amps = 0.5 }"#,
    )
}

fn ok(text: &str) -> Scenario {
    match load_str(Path::new(FILE), text) {
        Ok(scenario) => scenario,
        Err(e) => panic!("expected the scenario to load: {e}"),
    }
}

fn err(text: &str) -> LoadError {
    match load_str(Path::new(FILE), text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e,
    }
}

/// Line (from 1) of the first line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("`{needle}` is not in the text"))
}

/// The error for `text` names the file, the line of `line_with`, the field `field`, and says
/// something containing `says`.
fn assert_error(text: &str, line_with: &str, field: &str, says: &str) -> LoadError {
    assert_error_at(text, line_of(text, line_with), field, says)
}

/// As [`assert_error`], with the line given by its number.
fn assert_error_at(text: &str, line: usize, field: &str, says: &str) -> LoadError {
    let e = err(text);
    assert!(
        e.message.starts_with(&format!("{FILE}:{line}:")),
        "expected {FILE}:{line}: in\n  {}",
        e.message
    );
    assert_eq!(e.line, Some(line), "{}", e.message);
    assert!(e.column.is_some_and(|c| c >= 1), "{}", e.message);
    assert_eq!(e.field, field, "{}", e.message);
    assert!(e.message.contains(&format!(": {field}: ")), "{}", e.message);
    assert!(e.message.contains(says), "expected `{says}` in\n  {}", e.message);
    assert_eq!(e.to_string(), e.message);
    e
}

/// `GOOD` plus `extra` at the end.
fn with(extra: &str) -> String {
    format!("{}\n{extra}", good())
}

/// `GOOD` with `from` replaced by `to` (which must occur).
fn replaced(from: &str, to: &str) -> String {
    let text = good();
    assert!(text.contains(from), "`{from}` is not in GOOD");
    text.replacen(from, to, 1)
}

// -------------------------------------------------------------------------------------------
// A good file

#[test]
fn a_good_scenario_loads_with_everything_in_place() {
    let text = good();
    let s = ok(&text);
    assert_eq!(s.source, PathBuf::from(FILE));
    assert_eq!(s.name, "Everything at once");
    assert_eq!(s.description, "Two lines\nof description.");
    assert_eq!(s.seed, 7);
    assert_eq!(s.duration, Duration::from_secs(7_200));
    assert_eq!(s.trace_interval, Duration::from_secs(10));

    // Config: the preset with the overrides.
    assert_eq!(s.config.cell_count, 96);
    assert_eq!(s.config.temperature_count, 32);
    assert_eq!(s.config.protection.cell_over_voltage_mv.maximum, Some(MilliVolts(4300)));
    assert_eq!(s.config.protection.cell_over_voltage_mv.recommended, Some(MilliVolts(4200)));
    assert!(s.config.contactors.feedback.positive);
    assert!(!s.config.contactors.feedback.negative);
    assert_eq!(s.config.validate(), Ok(()));

    // Plant: the Tesla group with the overrides, in SI units.
    let p = &s.plant;
    assert_eq!(p.cell.chemistry, Chemistry::Nca);
    assert_eq!((p.series_per_module, p.modules, p.strings, p.sensors_per_module), (6, 16, 1, 2));
    assert!((p.cell.r0_ohm - 0.0012).abs() < 1e-12);
    assert!((p.cell.self_discharge_per_day - 0.001).abs() < 1e-12);
    assert_eq!(p.cell.coulombic_efficiency, 0.99);
    assert_eq!(p.initial_soc, 0.9);
    assert_eq!((p.ambient_c, p.initial_temp_c), (25.0, 25.0));
    assert_eq!((p.spread.capacity_pct, p.spread.resistance_pct, p.spread.soc_pct), (2.0, 5.0, 1.0));
    assert!((p.bus.capacitance_f - 1.5e-3).abs() < 1e-12);
    assert_eq!(p.bus.short_ohm, Some(2.5));
    assert_eq!(p.bus.precharge_ohm, 50.0); // default

    assert_eq!(s.sensors.measure_period.0, Duration::from_millis(200));
    assert_eq!(s.sensors.cell_noise_mv, 1.0); // default
    assert!(!s.inverter.obeys_limits);

    // Timeline: sorted by time, entries at the same time in file order, with their lines.
    let at: Vec<u64> = s.timeline.iter().map(|m| m.at.as_micros() / 1_000_000).collect();
    assert_eq!(at, [0, 60, 600, 600]);
    assert_eq!(s.timeline[0].command, Some(Command::Start));
    assert_eq!(s.timeline[0].line, line_of(&text, "[[timeline]]") + 4);
    let load = s.timeline[1].load.as_ref().expect("a load");
    assert_eq!(load.demand(Duration::from_secs(5)), Demand::Amps(60.0));
    assert_eq!(s.timeline[2].fault, Some(FaultSpec::CellLeak { cell: 95, amps: 0.5 }));
    assert_eq!(s.timeline[2].line, line_of(&text, "[[timeline]]"));
    assert_eq!(s.timeline[3].ambient_c, Some(30.0));
    assert!(s.timeline[3].note.as_deref().is_some_and(|n| n.starts_with("second entry")));

    // Expectations, with labels made up from their fields unless named.
    let e = &s.expectations;
    assert_eq!(e.len(), 11);
    assert_eq!(e[0].line, line_of(&text, "[[expect]]"));
    let filter = |event| EventFilter {
        event,
        rule: None,
        tier: None,
        how: None,
        cause: None,
        command: None,
    };
    assert_eq!(
        e[0].check,
        Check::Within {
            after: Trigger::Signal(Condition {
                signal: Signal::CellMvMax,
                compare: Compare::Above(4300.0)
            }),
            event: EventFilter {
                how: Some(OpenHow::Emergency),
                ..filter(EventName::ContactorsOpen)
            },
            limit: Duration::from_millis(500),
        }
    );
    assert_eq!(
        e[0].label,
        "contactors_open (how = emergency) within 500ms after cell_mv_max > 4300"
    );
    assert_eq!(e[1].label, "No closing with a latched fault");
    assert_eq!(
        e[1].check,
        Check::NeverSignal {
            condition: Condition {
                signal: Signal::ClosedWithLatchedFault,
                compare: Compare::Above(0.5)
            },
            from: Duration::from_secs(60),
            until: None,
        }
    );
    assert_eq!(
        e[2].check,
        Check::NeverEvent {
            event: EventFilter {
                rule: Some(RuleId::CellOverVoltage),
                tier: Some(Tier::Maximum),
                ..filter(EventName::FaultRaised)
            },
            from: Duration::ZERO,
            until: Some(Duration::from_secs(1_800)),
        }
    );
    assert_eq!(
        e[2].label,
        "never fault_raised (rule = cell_over_voltage, tier = maximum) until 30m"
    );
    assert_eq!(
        e[3].check,
        Check::By { event: filter(EventName::ContactorsClosed), by: Duration::from_secs(30) }
    );
    assert_eq!(e[3].label, "contactors_closed by 30s");
    assert_eq!(
        e[4].check,
        Check::Count {
            event: EventFilter { command: Some(Command::Start), ..filter(EventName::Command) },
            min: 1,
            max: 1
        }
    );
    assert_eq!(e[4].label, "command (command = start) exactly 1 time");
    assert_eq!(
        e[5].check,
        Check::Count { event: filter(EventName::PrechargeStarted), min: 1, max: 3 }
    );
    assert_eq!(e[5].label, "precharge_started between 1 and 3 times");
    assert_eq!(e[6].check, Check::AtEndState(StateName::Open));
    assert_eq!(e[7].check, Check::AtEndLatched(None));
    assert_eq!(e[7].label, "at end: no fault latched");
    assert_eq!(e[8].check, Check::AtEndLatched(Some(RuleId::CellOverVoltage)));
    assert_eq!(
        e[9].check,
        Check::AtEndSignal(Condition { signal: Signal::SocPctMin, compare: Compare::Below(99.5) })
    );
    assert_eq!(e[9].label, "at end: soc_pct_min < 99.5");
    assert_eq!(
        e[10].check,
        Check::Within {
            after: Trigger::Event(EventFilter {
                how: Some(OpenHow::Graceful),
                ..filter(EventName::ContactorsOpen)
            }),
            event: EventFilter {
                rule: Some(RuleId::ContactorWelded),
                ..filter(EventName::FaultRaised)
            },
            limit: Duration::from_millis(400),
        }
    );
}

#[test]
fn a_minimal_lfp_scenario_gets_the_defaults() {
    let text = r#"
name = "LFP"
seed = 1
duration = "1h"
[system]
preset = "lfp_16s"
capacity_ah = 280
"#;
    let s = ok(text);
    assert_eq!(s.config.cell_count, 16);
    assert_eq!(s.config.temperature_count, 4);
    assert_eq!(s.plant.cell.chemistry, Chemistry::Lfp);
    assert_eq!(s.plant.cell.capacity_ah, 280.0);
    assert_eq!(
        (s.plant.series_per_module, s.plant.modules, s.plant.sensors_per_module),
        (16, 1, 4)
    );
    assert_eq!((s.plant.initial_soc, s.plant.ambient_c, s.plant.initial_temp_c), (0.5, 20.0, 20.0));
    assert!((s.plant.bus.capacitance_f - 2e-3).abs() < 1e-12);
    assert_eq!(s.trace_interval, Duration::from_secs(1));
    assert!(s.timeline.is_empty() && s.expectations.is_empty());
}

#[test]
fn every_shipped_scenario_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("scenarios/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = load(&path) {
                panic!("{e}");
            }
            count += 1;
        }
    }
    assert!(count > 0);
}

// -------------------------------------------------------------------------------------------
// Errors: syntax, unknown keys, types

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let text = with("[[timeline]]\nat = \"1m\"\ncommand = = \"start\"\n");
    let e = assert_error(&text, "command = = ", "timeline[4].command", "TOML syntax");
    assert_eq!(e.column, Some(11), "{}", e.message);
    let text = with("[plant.bus\n");
    assert_error(&text, "[plant.bus", "plant.bus", "TOML syntax");
}

#[test]
fn unknown_keys_are_refused_at_the_top_and_nested() {
    let text = replaced("seed = 7", "seed = 7\nsed = 8");
    assert_error(&text, "sed = 8", "sed", "unknown field `sed`");
    let text = replaced("capacitance_uf = 1500", "capacitance_pf = 1500");
    assert_error(
        &text,
        "capacitance_pf",
        "plant.bus.capacitance_pf",
        "unknown field `capacitance_pf`",
    );
    let text = replaced("current_noise_a = 0.1", "current_noise = 0.1");
    assert_error(&text, "current_noise = 0.1", "sensors.current_noise", "expected one of");
    let text = replaced("limit = \"500ms\"", "limit = \"500ms\"\nwithin = \"1s\"");
    assert_error(&text, "within = \"1s\"", "expect[0].within", "unknown field `within`");
}

#[test]
fn a_bad_duration_is_refused() {
    let text = replaced("duration = \"2h\"", "duration = \"2 hours\"");
    assert_error(&text, "duration = ", "duration", "needs a unit");
    let text = replaced("at = \"1m\"", "at = 60");
    assert_error(&text, "at = 60", "timeline[2].at", "expected a duration string");
    let text = replaced("by = \"30s\"", "by = \"30s1m\"");
    assert_error(&text, "by = \"30s1m\"", "expect[3].by", "largest first");
}

#[test]
fn a_bad_enum_value_lists_the_valid_ones() {
    let text = replaced("kind = \"cell_leak\"", "kind = \"cell_leek\"");
    assert_error(
        &text,
        "cell_leek",
        "timeline[0].fault.kind",
        "unknown variant `cell_leek`, expected one of",
    );
    let text = replaced("command = \"start\"", "command = \"go\"");
    assert_error(&text, "command = \"go\"", "timeline[1].command", "unknown variant `go`");
    let text = replaced("preset = \"tesla_model_s\"", "preset = \"tesla\"");
    assert_error(&text, "preset = ", "system.preset", "`tesla_model_s` or `lfp_16s`");
    let text = replaced("signal = \"soc_pct_min\"", "signal = \"soc\"");
    assert_error(&text, "signal = \"soc\"", "expect[9].signal", "unknown variant `soc`");
}

#[test]
fn a_missing_required_field_is_named() {
    let text = replaced("seed = 7\n", "");
    let e = err(&text);
    assert_eq!(e.line, Some(1));
    assert!(e.message.starts_with(&format!("{FILE}:1:1: missing field `seed`")), "{}", e.message);
    let text = replaced("at = \"1m\"\n", "");
    let header = line_of(&text, "load = {") - 1; // the entry's [[timeline]]
    assert_error_at(&text, header, "timeline[2]", "missing field `at`");
}

// -------------------------------------------------------------------------------------------
// Errors: system and overrides

#[test]
fn an_override_of_a_missing_config_field_lists_the_valid_ones() {
    let text = replaced("cell_over_voltage_mv.maximum", "cell_over_voltage_mv.maximun");
    assert_error(
        &text,
        "maximun",
        "system.overrides.protection.cell_over_voltage_mv.maximun",
        "unknown config field `maximun`; valid here: debounce_ms, hysteresis, maximum, operating, recommended",
    );
    let text = replaced("contactors.feedback.positive", "contactor.feedback.positive");
    assert_error(
        &text,
        "contactor.feedback",
        "system.overrides.contactor",
        "valid here: balance, cell_count,",
    );
}

#[test]
fn an_override_of_the_wrong_type_is_refused() {
    let text = replaced("contactors.feedback.positive = true", "contactors.feedback.positive = 1");
    assert_error(
        &text,
        "feedback.positive",
        "system.overrides.contactors.feedback.positive",
        "expected a boolean (the preset has false), found an integer",
    );
    let text = replaced("contactors.feedback.positive = true", "contactors.feedback = true");
    assert_error(
        &text,
        "contactors.feedback",
        "system.overrides.contactors.feedback",
        "is a table",
    );
    let text = replaced("contactors.feedback.positive = true", "freshness.current_ms = -5");
    assert_error(&text, "current_ms", "system.overrides.freshness.current_ms", "expected u32");
}

#[test]
fn an_override_that_makes_the_config_invalid_is_refused() {
    let text =
        replaced("cell_over_voltage_mv.maximum = 4300", "cell_over_voltage_mv.maximum = 4100");
    assert_error(
        &text,
        "cell_over_voltage_mv.maximum",
        "system.overrides.protection.cell_over_voltage_mv.maximum",
        "4100 must be greater than recommended (4200)",
    );
    // A problem between two fields of one table is reported at the overridden one.
    let text = r#"
name = "x"
seed = 1
duration = "1h"
[system]
preset = "tesla_model_s"
modules = 4
[system.overrides.contactors]
precharge_rise_check_ms = 60000
"#;
    assert_error(
        text,
        "precharge_rise_check_ms",
        "system.overrides.contactors.precharge_rise_check_ms",
        "must be less than contactors.precharge_timeout_ms",
    );
}

#[test]
fn an_override_that_switches_protection_off_is_refused_with_field_value_and_range() {
    // Issue 14: an over-voltage maximum no cell can reach used to pass.
    let text = replaced(
        "cell_over_voltage_mv.maximum = 4300",
        "cell_over_voltage_mv.maximum = 2147483647",
    );
    assert_error(
        &text,
        "cell_over_voltage_mv.maximum",
        "system.overrides.protection.cell_over_voltage_mv.maximum",
        "2147483647 is out of range, allowed 2500..=4300 (the limits of an NCA/NMC cell, \
         chemistry = \"nca\")",
    );
    // ...and so did a charge ceiling far above protection, or just above its maximum tier.
    for (mv, says) in [
        ("10000", "10000 is out of range, allowed 3201..=4150"),
        ("4400", "4400 is out of range, allowed 3201..=4150"),
    ] {
        let text =
            replaced("contactors.feedback.positive = true", &format!("charge.cell_max_mv = {mv}"));
        let e =
            assert_error(&text, "charge.cell_max_mv", "system.overrides.charge.cell_max_mv", says);
        assert!(
            e.message.ends_with("(set by protection.cell_over_voltage_mv.operating = 4150)"),
            "{}",
            e.message
        );
    }
    // The chemistry can be overridden, and the preset's tiers are then checked against it.
    // The rule's table is not in the file: the error points at the nearest override of it.
    let text = replaced("contactors.feedback.positive = true", "chemistry = \"lfp\"");
    assert_error(
        &text,
        "cell_over_voltage_mv.maximum",
        "system.overrides.protection.cell_over_voltage_mv.operating",
        "4150 is out of range, allowed 2000..=3800 (the limits of an LFP cell",
    );
}

#[test]
fn check_refuses_a_scenario_whose_override_switches_protection_off() {
    let dir = scratch_dir("check-envelope");
    let file = dir.join("ceiling.toml");
    let text = replaced("contactors.feedback.positive = true", "charge.cell_max_mv = 4400");
    std::fs::write(&file, &text).expect("write scenario");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cellwarden-sim"))
        .arg("check")
        .arg(&file)
        .output()
        .expect("cannot start cellwarden-sim");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let line = line_of(&text, "charge.cell_max_mv");
    assert!(stdout.contains(&format!("ceiling.toml:{line}:")), "{stdout}");
    assert!(
        stdout.contains(
            ": system.overrides.charge.cell_max_mv: 4400 is out of range, allowed 3201..=4150 \
             (set by protection.cell_over_voltage_mv.operating = 4150)\n"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 1 file invalid"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_tier_the_preset_leaves_out_can_be_added() {
    // The presets have no recommended tier for the pack voltage plausibility check.
    let text = replaced(
        "contactors.feedback.positive = true",
        "protection.pack_voltage_mismatch_mv.recommended = 5000",
    );
    let s = ok(&text);
    let mismatch = s.config.protection.pack_voltage_mismatch_mv;
    assert_eq!(mismatch.recommended, Some(MilliVolts(5000)));
    assert_eq!(mismatch.maximum, Some(MilliVolts(9600)));
    // ...and is checked like the others.
    let text = replaced(
        "contactors.feedback.positive = true",
        "protection.pack_voltage_mismatch_mv.recommended = 10000",
    );
    assert_error(
        &text,
        "mismatch_mv.recommended",
        "system.overrides.protection.pack_voltage_mismatch_mv.maximum",
        "9600 must be greater than recommended (10000)",
    );
    let text = replaced(
        "contactors.feedback.positive = true",
        "protection.pack_voltage_mismatch_mv.recommended = 5000.5",
    );
    assert_error(
        &text,
        "mismatch_mv.recommended",
        "system.overrides.protection.pack_voltage_mismatch_mv.recommended",
        "expected an integer, found a float",
    );
}

#[test]
fn an_override_that_changes_the_pack_size_is_refused() {
    let text = replaced("contactors.feedback.positive = true", "cell_count = 95");
    assert_error(&text, "cell_count = 95", "system.overrides.cell_count", "series groups");
    let text = replaced("contactors.feedback.positive = true", "temperature_count = 3");
    assert_error(&text, "temperature_count = 3", "system.overrides.temperature_count", "sensors");
}

#[test]
fn preset_size_keys_must_match_the_preset() {
    let text = replaced("modules = 16", "modules = 40");
    assert_error(&text, "modules = 40", "system.modules", "40 is outside 1..=32");
    let text = replaced("modules = 16", "capacity_ah = 100");
    assert_error(&text, "capacity_ah = 100", "system.capacity_ah", "belongs to the lfp_16s preset");
    let text = replaced("modules = 16\n", "");
    assert_error(&text, "[system]", "system.modules", "missing");
}

// -------------------------------------------------------------------------------------------
// Errors: plant

#[test]
fn plant_values_are_checked() {
    let text = replaced("initial_soc = 0.9", "initial_soc = 1.5");
    let e = assert_error(&text, "initial_soc", "plant.initial_soc", "1.5 is outside 0..=1");
    assert_eq!(e.column, Some(15)); // the value
    let text = replaced("capacitance_uf = 1500", "capacitance_uf = 0");
    assert_error(&text, "capacitance_uf", "plant.bus.capacitance_uf", "must be greater than 0");
    let text = replaced("r0_mohm = 1.2", "r0_mohm = nan");
    assert_error(&text, "r0_mohm", "plant.cell.r0_mohm", "not a finite number");
    let text = replaced("coulombic_efficiency = 0.99", "coulombic_efficiency = 1.2");
    assert_error(&text, "coulombic_efficiency", "plant.cell.coulombic_efficiency", "at most 1");
}

#[test]
fn a_bus_source_needs_both_keys_and_a_shared_link_needs_feedback() {
    let text = replaced("short_ohm = 2.5", "short_ohm = 2.5, source_v = 380, source_ohm = 0.5");
    let s = ok(&text);
    let source = s.plant.bus.source.expect("the source");
    assert_eq!((source.volts, source.ohms), (380.0, 0.5));
    assert_eq!(ok(&good()).plant.bus.source, None);
    let text = replaced("short_ohm = 2.5", "short_ohm = 2.5, source_v = 380");
    assert_error(&text, "source_v", "plant.bus.source_v", "needs `source_ohm` too");
    let text = replaced("short_ohm = 2.5", "short_ohm = 2.5, source_ohm = 1");
    assert_error(&text, "source_ohm", "plant.bus.source_ohm", "needs `source_v` too");
    let text = replaced("short_ohm = 2.5", "short_ohm = 2.5, source_v = 380, source_ohm = 0");
    assert_error(&text, "source_ohm", "plant.bus.source_ohm", "must be greater than 0");

    let text = r#"
name = "x"
seed = 1
duration = "1h"
[system]
preset = "tesla_model_s"
modules = 4
[system.overrides.contactors]
dc_link = "shared"
feedback.negative = true
"#;
    assert_error(
        text,
        "dc_link",
        "system.overrides.contactors.dc_link",
        "\"shared\" needs contactors.feedback.positive = true",
    );
    let text =
        text.replace("feedback.negative = true", "feedback = { negative = true, positive = true }");
    assert_eq!(ok(&text).config.contactors.dc_link, cellwarden_core::DcLink::Shared);
}

// -------------------------------------------------------------------------------------------
// Errors: timeline

#[test]
fn a_cell_index_out_of_range_names_the_valid_range() {
    let text = replaced("cell = 95", "cell = 96");
    assert_error(&text, "cell = 96", "timeline[0].fault.cell", "numbered 0..=95");
}

#[test]
fn a_moment_after_the_end_is_refused() {
    let text = replaced("at = \"1m\"", "at = \"2h1s\"");
    assert_error(
        &text,
        "2h1s",
        "timeline[2].at",
        "2h1s is after the end of the run (duration = 2h)",
    );
}

#[test]
fn an_empty_timeline_entry_is_refused() {
    let text = with("[[timeline]]\nat = \"5m\"\n");
    let e = err(&text);
    let header = text.lines().enumerate().filter(|(_, l)| *l == "[[timeline]]").map(|(i, _)| i + 1);
    assert_eq!(e.line, header.last());
    assert_eq!(e.field, "timeline[4]");
    assert!(e.message.contains("nothing happens at 5m"), "{}", e.message);
}

#[test]
fn a_bad_profile_is_refused_with_its_entry() {
    let text = replaced("amps = 60", "amps = 60, watts = 10");
    assert_error(&text, "watts = 10", "timeline[2].load", "either `amps` or `watts`");
    let text = replaced("amps = 60", "amp = 60");
    assert_error(&text, "amp = 60", "timeline[2].load", "unknown field `amp`");
    let text = replaced(
        "load = { kind = \"constant\", amps = 60 }",
        "load = { kind = \"steps\", unit = \"amps\", points = [[\"1s\", 1.0]] }",
    );
    assert_error(&text, "points", "timeline[2].load", "the first point must be at \"0s\"");
}

#[test]
fn a_bad_csv_names_both_files_and_lines() {
    let dir = scratch_dir("bad_csv");
    std::fs::write(dir.join("day.csv"), "time_s,value\n0,1\n10,2\n5,3\n").expect("write");
    let text = replaced(
        "load = { kind = \"constant\", amps = 60 }",
        "load = { kind = \"csv\", path = \"day.csv\", unit = \"watts\" }",
    );
    let scenario = dir.join("s.toml");
    let e = load_str(&scenario, &text).expect_err("bad csv");
    let line = line_of(&text, "day.csv");
    assert!(e.message.starts_with(&format!("{}:{line}:", scenario.display())), "{}", e.message);
    assert_eq!(e.field, "timeline[2].load");
    let csv = dir.join("day.csv");
    assert!(
        e.message.contains(&format!("{}:4: time_s 5 does not come after", csv.display())),
        "{}",
        e.message
    );

    std::fs::write(dir.join("day.csv"), "time,value\n0,1\n").expect("write");
    let e = load_str(&scenario, &text).expect_err("bad header");
    assert!(
        e.message.contains(&format!("{}:1: the first line must be", csv.display())),
        "{}",
        e.message
    );
    std::fs::write(dir.join("day.csv"), "time_s,value\n0,1,2\n").expect("write");
    let e = load_str(&scenario, &text).expect_err("three columns");
    assert!(
        e.message.contains(&format!("{}:2: expected two columns", csv.display())),
        "{}",
        e.message
    );
    std::fs::write(dir.join("day.csv"), "# nothing\ntime_s,value\n0,x\n").expect("write");
    let e = load_str(&scenario, &text).expect_err("not a number");
    assert!(e.message.contains(&format!("{}:3: value `x`", csv.display())), "{}", e.message);
    std::fs::remove_file(dir.join("day.csv")).expect("remove");
    let e = load_str(&scenario, &text).expect_err("missing file");
    assert!(e.message.contains(&csv.display().to_string()), "{}", e.message);
    let _ = std::fs::remove_dir_all(&dir);
}

// -------------------------------------------------------------------------------------------
// Errors: expectations

#[test]
fn an_expectation_missing_a_field_names_it() {
    let text = replaced("limit = \"500ms\"\n", "");
    assert_error(&text, "[[expect]]", "expect[0].limit", "missing: a `within` expectation needs");
    let text = with("[[expect]]\nkind = \"by\"\nevent = \"precharge_done\"\n");
    let e = err(&text);
    assert_eq!(e.field, "expect[11].by");
    assert_eq!(e.line, Some(text.lines().count() - 2));
    let text = with("[[expect]]\nkind = \"count\"\nevent = \"precharge_done\"\n");
    assert_eq!(err(&text).field, "expect[11].count");
    let text = with("[[expect]]\nkind = \"never\"\nsignal = \"bus_v\"\n");
    let header = text.lines().count() - 2;
    assert_error_at(&text, header, "expect[11].above", "needs `above` or `below`");
    let text = with("[[expect]]\nkind = \"at_end\"\nname = \"nothing\"\n");
    assert_eq!(err(&text).field, "expect[11].state");
}

#[test]
fn a_field_that_does_not_belong_to_the_kind_is_named() {
    let text = with("[[expect]]\nkind = \"never\"\nevent = \"contactors_open\"\nlimit = \"1s\"\n");
    assert_error(
        &text,
        "limit = \"1s\"",
        "expect[11].limit",
        "does not apply to a `never` expectation",
    );
    let text = with("[[expect]]\nkind = \"at_end\"\nstate = \"open\"\nrule = \"hardware_fault\"\n");
    assert_error(&text, "rule = \"hardware", "expect[11].rule", "does not apply to an `at_end`");
    let text =
        with("[[expect]]\nkind = \"never\"\nsignal = \"bus_v\"\nabove = 1\ntier = \"operating\"\n");
    assert_error(&text, "tier = \"operating\"", "expect[11].tier", "filters an `event`");
    let text = with("[[expect]]\nkind = \"never\"\nevent = \"stopping\"\nbelow = 3\n");
    assert_error(&text, "below = 3", "expect[11].below", "compares a `signal`");
    let text = with("[[expect]]\nkind = \"count\"\nevent = \"stopping\"\ncount = 1\nmax = 4\n");
    assert_error(&text, "max = 4", "expect[11].max", "either `count` or `min`/`max`");
    let text =
        with("[[expect]]\nkind = \"by\"\nevent = \"stopping\"\nhow = \"aborted\"\nby = \"1m\"\n");
    assert_error(
        &text,
        "how = \"aborted\"",
        "expect[11].how",
        "`how` filters `contactors_open` events",
    );
    let text =
        with("[[expect]]\nkind = \"at_end\"\nstate = \"open\"\nlatched = \"hardware_fault\"\n");
    assert_error(&text, "latched = \"hardware_fault\"", "expect[11].latched", "give one of");
}

#[test]
fn an_unknown_rule_lists_the_valid_names() {
    let text = replaced("rule = \"cell_over_voltage\"", "rule = \"cell_overvoltage\"");
    assert_error(
        &text,
        "cell_overvoltage",
        "expect[2].rule",
        "unknown rule `cell_overvoltage`, expected one of cell_over_voltage, cell_under_voltage",
    );
    let text = replaced("latched = \"cell_over_voltage\"", "latched = \"ovp\"");
    assert_error(&text, "\"ovp\"", "expect[8].latched", "unknown rule `ovp`");
}

#[test]
fn a_within_trigger_is_checked() {
    let text = replaced(
        "after = { signal = \"cell_mv_max\", above = 4300 }",
        "after = { signal = \"cell_mv_max\", above = 4300, below = 5000 }",
    );
    assert_error(&text, "below = 5000", "expect[0].after.below", "either `above` or `below`");
    let text =
        replaced("after = { signal = \"cell_mv_max\", above = 4300 }", "after = { above = 4300 }");
    assert_error(&text, "after = { above", "expect[0].after.signal", "needs a `signal`");
}

#[test]
fn windows_and_deadlines_must_lie_in_the_run() {
    let text = replaced("by = \"30s\"", "by = \"3h\"");
    assert_error(&text, "by = \"3h\"", "expect[3].by", "after the end of the run");
    let text = replaced("until = \"30m\"", "from = \"40m\"\nuntil = \"30m\"");
    assert_error(&text, "until = \"30m\"", "expect[2].until", "comes before `from` = 40m");
}

// -------------------------------------------------------------------------------------------
// Nothing panics

#[test]
fn garbage_never_panics() {
    let samples: [&[u8]; 9] = [
        b"",
        b"\0\0\0",
        b"[[[",
        b"= = =",
        "name = \"\u{e9}\u{1f600}\"\n[system\n".as_bytes(),
        b"a.b.c.d.e.f.g = 1\n[a]\n",
        b"timeline = 5\nexpect = \"x\"\n",
        b"name = 'x'\nseed = 1\nduration = '1h'\n[system]\npreset = 'tesla_model_s'\nmodules = 1\n[system.overrides]\nprotection = { cell_over_voltage_mv = { maximum = 99999999999 } }\n",
        b"name = 'x'\nseed = 1\nduration = '99999999999999d'\n",
    ];
    for bytes in samples {
        let text = String::from_utf8_lossy(bytes);
        let _ = load_str(Path::new(FILE), &text);
    }
    // Deep nesting is refused by the parser, not by the stack.
    for deep in [
        format!("a = {}", "[".repeat(100_000)),
        format!("a = {}1{}", "[".repeat(5_000), "]".repeat(5_000)),
        format!("a = {}", "{ b = ".repeat(100_000)),
        replaced(
            "contactors.feedback.positive = true",
            &format!("{} = 1", vec!["x"; 5_000].join(".")),
        ),
    ] {
        let e = load_str(Path::new(FILE), &deep).expect_err("deep nesting");
        assert!(e.line.is_some(), "{}", e.message);
    }
    // Every prefix of a good file, and the good file with each of a few characters removed or
    // doubled or replaced.
    let text = good();
    let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
    for &end in boundaries.iter().step_by(3) {
        let _ = load_str(Path::new(FILE), &text[..end]);
    }
    let mut state: u64 = 0x1234_5678;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let junk = ["", "\"", "[", "]", "=", "\n", "{", "}", ",", "0", "-1", "nan", "1e999", "é"];
    for _ in 0..600 {
        let at = boundaries[next(boundaries.len())];
        let mut mutated = text.clone();
        let cut = boundaries.iter().copied().find(|&b| b > at).unwrap_or(at);
        mutated.replace_range(at..cut, junk[next(junk.len())]);
        let result = load_str(Path::new(FILE), &mutated);
        if let Err(e) = result {
            assert!(e.message.starts_with(FILE), "{}", e.message);
            assert!(e.line.is_some(), "{}", e.message);
        }
    }
}

// -------------------------------------------------------------------------------------------
// Profiles

fn spec(inline: &str) -> ProfileSpec {
    #[derive(serde::Deserialize)]
    struct Holder {
        load: ProfileSpec,
    }
    let holder: Holder = toml::from_str(&format!("load = {inline}")).expect("a profile spec");
    holder.load
}

fn profile(inline: &str) -> Profile {
    Profile::new(&spec(inline), Path::new(".")).expect("a valid profile")
}

fn watts(p: &Profile, secs: u64) -> f64 {
    match p.demand(Duration::from_secs(secs)) {
        Demand::Watts(w) => w,
        other => panic!("expected watts, got {other:?}"),
    }
}

#[test]
fn constant_profiles() {
    let p = profile(r#"{ kind = "constant", amps = -20 }"#);
    assert_eq!(p.demand(Duration::ZERO), Demand::Amps(-20.0));
    assert_eq!(p.demand(Duration::from_secs(86_400)), Demand::Amps(-20.0));
    let p = profile(r#"{ kind = "constant", watts = 1500.5 }"#);
    assert_eq!(p.demand(Duration::from_secs(3)), Demand::Watts(1500.5));
    assert!(Profile::new(&spec(r#"{ kind = "constant" }"#), Path::new(".")).is_err());
}

#[test]
fn step_profiles_hold_each_value_and_repeat() {
    let p = profile(
        r#"{ kind = "steps", unit = "watts", points = [["0s", 10.0], ["10m", -20.0], ["15m", 5]] }"#,
    );
    for (secs, expected) in
        [(0, 10.0), (599, 10.0), (600, -20.0), (899, -20.0), (900, 5.0), (99_999, 5.0)]
    {
        assert_eq!(watts(&p, secs), expected, "at {secs} s");
    }
    let p = profile(
        r#"{ kind = "steps", unit = "amps", points = [["0s", 1], ["30m", 2]], repeat = "1h" }"#,
    );
    for (secs, expected) in [(0, 1.0), (1_800, 2.0), (3_599, 2.0), (3_600, 1.0), (5_400, 2.0)] {
        assert_eq!(p.demand(Duration::from_secs(secs)), Demand::Amps(expected), "at {secs} s");
    }
    let bad = |inline: &str| Profile::new(&spec(inline), Path::new(".")).expect_err(inline);
    assert!(bad(r#"{ kind = "steps", unit = "amps", points = [] }"#).contains("empty"));
    assert!(
        bad(r#"{ kind = "steps", unit = "amps", points = [["0s", 1], ["2s", 1], ["1s", 2]] }"#)
            .contains("rising time order")
    );
    assert!(
        bad(r#"{ kind = "steps", unit = "amps", points = [["0s", 1], ["2s", 1]], repeat = "2s" }"#)
            .contains("longer than the last point")
    );
}

#[test]
fn ramp_profiles_are_linear_then_hold() {
    let p = profile(r#"{ kind = "ramp", unit = "amps", from = -100, to = 100, over = "100s" }"#);
    for (secs, expected) in [(0, -100.0), (25, -50.0), (50, 0.0), (100, 100.0), (1_000, 100.0)] {
        assert_eq!(p.demand(Duration::from_secs(secs)), Demand::Amps(expected), "at {secs} s");
    }
}

#[test]
fn the_home_profile_charges_at_noon_and_discharges_in_the_evening() {
    let p = profile(r#"{ kind = "home", pv_peak_w = 6000 }"#);
    let noon = watts(&p, 12 * 3_600);
    assert!(noon > 4_000.0, "noon: {noon}");
    assert!(watts(&p, 13 * 3_600) > noon, "the PV peaks at 13:00");
    let evening = watts(&p, 20 * 3_600);
    assert_eq!(evening, -2_500.0, "20:00: no PV, the peak load");
    assert_eq!(watts(&p, 3 * 3_600), -300.0, "night: the base load");
    let morning = watts(&p, 7 * 3_600 + 1_800);
    assert!(morning < -1_000.0, "the morning peak, with a little PV: {morning}");
    let dark = profile(r#"{ kind = "home", pv_peak_w = 0 }"#);
    assert_eq!(watts(&dark, 7 * 3_600 + 1_800), -2_500.0, "the morning peak");
    assert_eq!(watts(&dark, 12 * 3_600), -300.0);
    // The same day started at 18:00: two hours in it is 20:00.
    let p = profile(r#"{ kind = "home", start_hour = 18 }"#);
    assert_eq!(watts(&p, 2 * 3_600), -2_500.0);
    assert!(watts(&p, 19 * 3_600) > 0.0, "13:00 the next day");
    // Noise is bounded and the same every time.
    let p = profile(r#"{ kind = "home", noise_w = 50 }"#);
    let q = profile(r#"{ kind = "home", noise_w = 50 }"#);
    for minute in 0..(24 * 60) {
        let secs = minute * 60 + 17;
        assert_eq!(watts(&p, secs), watts(&q, secs));
        assert!(watts(&p, 3 * 3_600 + secs % 600) <= -250.0);
    }
    assert!(Profile::new(&spec(r#"{ kind = "home", start_hour = 24 }"#), Path::new(".")).is_err());
    assert!(Profile::new(&spec(r#"{ kind = "home", pv_peak_w = -1 }"#), Path::new(".")).is_err());
}

#[test]
fn csv_profiles_interpolate_and_hold_the_last_value() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let p = Profile::new(
        &spec(r#"{ kind = "csv", path = "data/test_profile.csv", unit = "amps" }"#),
        &data,
    )
    .expect("the test profile");
    for (secs, expected) in
        [(0, 0.0), (5, 50.0), (10, 100.0), (15, 100.0), (30, -50.5), (500, -50.5)]
    {
        assert_eq!(p.demand(Duration::from_secs(secs)), Demand::Amps(expected), "at {secs} s");
    }
    assert_eq!(p.demand(Duration::from_millis(25_000)), Demand::Amps(24.75));
}

#[test]
fn a_scenario_finds_its_csv_next_to_it() {
    let text = replaced(
        "load = { kind = \"constant\", amps = 60 }",
        "load = { kind = \"csv\", path = \"data/test_profile.csv\", unit = \"amps\" }",
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/not_a_real_file.toml");
    let s = load_str(&path, &text).expect("loads");
    let load = s.timeline[1].load.as_ref().expect("a load");
    assert_eq!(load.demand(Duration::from_secs(5)), Demand::Amps(50.0));
}

/// A fresh directory for files a test writes.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cellwarden-load-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}
