//! Every expectation kind fails when it is violated and passes when it holds, with a detail that
//! says why. Each test runs a small inline scenario (a few simulated seconds of a 16-module Tesla
//! pack) whose events are known, and checks expectations on both sides of the line in the same
//! run, so that each test shows the check discriminates.
//!
//! What the base runs do (times from the start of the run):
//!
//! - [`PRECHARGE`]: `start` at 1 s, precharge attempt started at 1.1 s, done at 1.6 s, contactors
//!   closed at 1.7 s; the bus first reads above 300 V at 1.3 s. Ends closed, nothing latched.
//! - [`SHORT`]: a 0.1 Ω short on the bus; `start` at 1 s, attempt started at 1.1 s, failed with
//!   cause `short` at 1.6 s, `precharge_failed` raised at its maximum tier and latched.
//! - [`ESTOP`]: closed at 1.7 s, 150 A discharge from 3 s, `emergency_stop` at 8 s (opens at once),
//!   `start` at 12 s, closed again at 12.6 s.
//! - [`HARDWARE`]: closed at 1.7 s, the hardware fault line goes active at 5 s (emergency open,
//!   `hardware_fault` latched), a clear at 10 s is refused, the line returns at 15 s, a clear at
//!   20 s succeeds, `start` at 25 s closes again.

use std::path::Path;

use cellwarden_sim::engine;
use cellwarden_sim::report::Outcome;
use cellwarden_sim::scenario::load_str;

const PRECHARGE: &str = r#"
name = "Precharge, then closed"
seed = 1
duration = "10s"

[system]
preset = "tesla_model_s"
modules = 16

[plant]
initial_soc = 0.6

[[timeline]]
at = "1s"
command = "start"
"#;

const SHORT: &str = r#"
name = "Precharge into a short"
seed = 2
duration = "10s"

[system]
preset = "tesla_model_s"
modules = 16

[plant]
initial_soc = 0.6
bus = { short_ohm = 0.1 }

[[timeline]]
at = "1s"
command = "start"
"#;

const ESTOP: &str = r#"
name = "Emergency stop under load, then a restart"
seed = 13
duration = "20s"

[system]
preset = "tesla_model_s"
modules = 16

# The signal tests time the load's current from the close: the limits open in one step.
[system.overrides.contactors]
limit_ramp_ms = 0

[plant]
initial_soc = 0.7

[[timeline]]
at = "1s"
command = "start"

[[timeline]]
at = "3s"
load = { kind = "constant", amps = -150.0 }

[[timeline]]
at = "8s"
command = "emergency_stop"

[[timeline]]
at = "12s"
command = "start"
"#;

const HARDWARE: &str = r#"
name = "Hardware fault, refused clear, clear, restart"
seed = 15
duration = "30s"

[system]
preset = "tesla_model_s"
modules = 16

[plant]
initial_soc = 0.6

[[timeline]]
at = "1s"
command = "start"

[[timeline]]
at = "3s"
load = { kind = "constant", amps = -40.0 }

[[timeline]]
at = "5s"
fault = { kind = "hardware_fault", active = true }

[[timeline]]
at = "10s"
command = "clear_faults"

[[timeline]]
at = "15s"
fault = { kind = "hardware_fault", active = false }

[[timeline]]
at = "20s"
command = "clear_faults"

[[timeline]]
at = "25s"
command = "start"
"#;

/// Loads an inline scenario and runs it.
fn outcomes(toml: &str) -> Vec<Outcome> {
    let scenario = load_str(Path::new("inline.toml"), toml)
        .unwrap_or_else(|e| panic!("the inline scenario does not load: {e}"));
    engine::run(&scenario, &mut |_, _| {}).outcomes
}

/// Runs `base` with the `[[expect]]` tables of `expects` appended; one outcome per table.
fn run(base: &str, expects: &str) -> Vec<Outcome> {
    let out = outcomes(&format!("{base}\n{expects}"));
    assert_eq!(out.len(), expects.matches("[[expect]]").count(), "{out:#?}");
    out
}

#[track_caller]
fn passes(o: &Outcome, phrase: &str) {
    assert!(o.passed, "expected `{}` to pass: {}", o.label, o.detail);
    assert!(o.detail.contains(phrase), "`{}`: detail {:?} lacks {phrase:?}", o.label, o.detail);
}

#[track_caller]
fn fails(o: &Outcome, phrase: &str) {
    assert!(!o.passed, "expected `{}` to fail: {}", o.label, o.detail);
    assert!(o.detail.contains(phrase), "`{}`: detail {:?} lacks {phrase:?}", o.label, o.detail);
}

// -- within ------------------------------------------------------------------------------------

#[test]
fn within_fails_when_the_event_comes_later_than_the_limit() {
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "within"
after = { event = "command", command = "start" }
event = "contactors_closed"
limit = "1s"

[[expect]]
kind = "within"
after = { event = "command", command = "start" }
event = "contactors_closed"
limit = "700ms"

[[expect]]
kind = "within"
after = { event = "command", command = "start" }
event = "contactors_closed"
limit = "699ms"
"#,
    );
    passes(&o[0], "contactors_closed followed at 00:00:01.700 (700 ms, within 1000 ms)");
    // The limit is inclusive.
    passes(&o[1], "(700 ms, within 700 ms)");
    fails(&o[2], "(700 ms, later than 699 ms)");
    assert!(o[2].detail.starts_with("command at 00:00:01.000; "), "{}", o[2].detail);
}

#[test]
fn within_fails_when_the_event_never_follows() {
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "within"
after = { event = "command", command = "start" }
event = "precharge_started"
limit = "1s"

[[expect]]
kind = "within"
after = { event = "command", command = "start" }
event = "contactors_open"
limit = "5s"

[[expect]]
kind = "within"
after = { event = "precharge_done" }
event = "precharge_started"
limit = "5s"
"#,
    );
    passes(&o[0], "precharge_started followed at 00:00:01.100 (100 ms, within 1000 ms)");
    fails(&o[1], "command at 00:00:01.000; contactors_open never followed");
    // An event before the trigger does not follow it.
    fails(&o[2], "precharge_done at 00:00:01.600; precharge_started never followed");
}

#[test]
fn within_the_trigger_event_never_counts_as_what_follows_it() {
    // The contactors close at 1.7 s and again after the restart at 12 s: "a second close within
    // 1 s of the first" must fail, not match the first close with itself.
    let o = run(
        ESTOP,
        r#"
[[expect]]
kind = "within"
after = { event = "contactors_closed" }
event = "contactors_closed"
limit = "1s"

[[expect]]
kind = "within"
after = { event = "contactors_closed" }
event = "contactors_closed"
limit = "20s"
"#,
    );
    fails(&o[0], "later than 1000 ms");
    passes(&o[1], "within 20000 ms");
}

#[test]
fn within_fails_when_its_trigger_never_happens() {
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "within"
after = { event = "stopping" }
event = "contactors_open"
limit = "1m"

[[expect]]
kind = "within"
after = { signal = "bus_v", above = 1000 }
event = "contactors_closed"
limit = "10s"

[[expect]]
kind = "within"
after = { event = "precharge_failed", cause = "short" }
event = "contactors_closed"
limit = "10s"

[[expect]]
kind = "within"
after = { event = "precharge_started" }
event = "contactors_closed"
limit = "10s"
"#,
    );
    for o in &o[..3] {
        fails(o, "the trigger never happened, so nothing was tested");
    }
    passes(&o[3], "precharge_started at 00:00:01.100; contactors_closed followed at 00:00:01.700");
}

#[test]
fn within_with_a_signal_trigger_starts_the_clock_when_the_signal_first_holds() {
    // From the start command the contactors take 700 ms; from the bus passing 300 V, 400 ms.
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "within"
after = { signal = "bus_v", above = 300 }
event = "contactors_closed"
limit = "400ms"

[[expect]]
kind = "within"
after = { signal = "bus_v", above = 300 }
event = "contactors_closed"
limit = "300ms"

[[expect]]
kind = "within"
after = { signal = "contactors_closed", below = 0.5 }
event = "contactors_closed"
limit = "1s"
"#,
    );
    passes(&o[0], "bus_v was 312.514 at 00:00:01.300; contactors_closed followed at 00:00:01.700");
    fails(&o[1], "(400 ms, later than 300 ms)");
    // `below` holds from the very first step, so that clock starts at 0.
    fails(&o[2], "contactors_closed was 0 at 00:00:00.000; contactors_closed followed at");
    fails(&o[2], "(1700 ms, later than 1000 ms)");
}

#[test]
fn within_event_trigger_filters_matter() {
    let o = run(
        ESTOP,
        r#"
[[expect]]
kind = "within"
after = { event = "command", command = "emergency_stop" }
event = "contactors_open"
how = "emergency_stop"
limit = "0s"

[[expect]]
kind = "within"
after = { event = "command", command = "emergency_stop" }
event = "contactors_open"
how = "emergency"
limit = "1s"

[[expect]]
kind = "within"
after = { event = "command", command = "stop" }
event = "contactors_open"
limit = "1s"

[[expect]]
kind = "within"
after = { event = "command" }
event = "contactors_open"
how = "emergency_stop"
limit = "1s"
"#,
    );
    passes(&o[0], "command at 00:00:08.000; contactors_open followed at 00:00:08.000 (0 ms");
    // The contactors did open, but not the way the `how` filter asks.
    fails(&o[1], "contactors_open never followed");
    // No `stop` command was given: the trigger's `command` filter excludes the others.
    fails(&o[2], "the trigger never happened");
    // Without the filter, the first command (start at 1 s) starts the clock.
    fails(&o[3], "command at 00:00:01.000; contactors_open followed at 00:00:08.000 (7000 ms");
    fails(&o[3], "later than 1000 ms");
}

#[test]
fn within_fault_trigger_filters_rule_and_tier() {
    let o = run(
        HARDWARE,
        r#"
[[expect]]
kind = "within"
after = { event = "fault_raised", rule = "hardware_fault", tier = "maximum" }
event = "contactors_open"
how = "emergency"
limit = "0s"

[[expect]]
kind = "within"
after = { event = "fault_raised", rule = "hardware_fault", tier = "operating" }
event = "contactors_open"
limit = "1s"

[[expect]]
kind = "within"
after = { event = "fault_raised", rule = "cell_over_voltage" }
event = "contactors_open"
limit = "1s"

[[expect]]
kind = "within"
after = { event = "fault_cleared", rule = "hardware_fault" }
event = "contactors_closed"
limit = "4s"
"#,
    );
    passes(&o[0], "fault_raised at 00:00:05.000; contactors_open followed at 00:00:05.000");
    fails(&o[1], "the trigger never happened");
    fails(&o[2], "the trigger never happened");
    // Cleared at 20 s, closed again only after the start at 25 s.
    fails(&o[3], "fault_cleared at 00:00:20.000; contactors_closed followed at 00:00:25.700");
    fails(&o[3], "(5700 ms, later than 4000 ms)");
}

// -- never: events -----------------------------------------------------------------------------

#[test]
fn never_event_fails_when_the_event_happens() {
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "never"
event = "precharge_failed"

[[expect]]
kind = "never"
event = "contactors_closed"

[[expect]]
kind = "never"
event = "command"
command = "stop"

[[expect]]
kind = "never"
event = "command"
command = "start"
"#,
    );
    passes(&o[0], "no precharge_failed seen");
    fails(&o[1], "contactors_closed at 00:00:01.700");
    passes(&o[2], "no command seen");
    fails(&o[3], "command at 00:00:01.000");
}

#[test]
fn never_event_only_counts_what_happens_in_its_window() {
    // The contactors close at 1.7 s and again at 12.6 s.
    let o = run(
        ESTOP,
        r#"
[[expect]]
kind = "never"
event = "contactors_closed"

[[expect]]
kind = "never"
event = "contactors_closed"
from = "5s"
until = "12s"

[[expect]]
kind = "never"
event = "contactors_closed"
from = "5s"

[[expect]]
kind = "never"
event = "contactors_closed"
until = "1.6s"

[[expect]]
kind = "never"
event = "contactors_closed"
until = "1.7s"

[[expect]]
kind = "never"
event = "contactors_closed"
from = "12.6s"
until = "20s"

[[expect]]
kind = "never"
event = "contactors_closed"
from = "1.701s"
until = "12.599s"
"#,
    );
    fails(&o[0], "contactors_closed at 00:00:01.700");
    passes(&o[1], "no contactors_closed seen");
    fails(&o[2], "contactors_closed at 00:00:12.600");
    passes(&o[3], "no contactors_closed seen");
    // Both ends of the window are inclusive.
    fails(&o[4], "contactors_closed at 00:00:01.700");
    fails(&o[5], "contactors_closed at 00:00:12.600");
    passes(&o[6], "no contactors_closed seen");
}

#[test]
fn never_event_filters_matter() {
    let o = run(
        HARDWARE,
        r#"
[[expect]]
kind = "never"
event = "contactors_open"
how = "emergency_stop"

[[expect]]
kind = "never"
event = "contactors_open"
how = "emergency"

[[expect]]
kind = "never"
event = "fault_raised"
rule = "hardware_fault"
tier = "operating"

[[expect]]
kind = "never"
event = "fault_raised"
rule = "hardware_fault"
tier = "maximum"
"#,
    );
    passes(&o[0], "no contactors_open seen");
    fails(&o[1], "contactors_open at 00:00:05.000");
    passes(&o[2], "no fault_raised seen");
    fails(&o[3], "fault_raised at 00:00:05.000");
}

// -- never: signals ----------------------------------------------------------------------------

#[test]
fn never_signal_fails_when_the_condition_holds() {
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "never"
signal = "bus_v"
above = 300

[[expect]]
kind = "never"
signal = "bus_v"
above = 1000

[[expect]]
kind = "never"
signal = "charge_limit_a"
below = 1

[[expect]]
kind = "never"
signal = "cell_mv_min"
below = 3000
"#,
    );
    // The first violation is reported, not the worst.
    fails(&o[0], "bus_v was 312.514 at 00:00:01.300");
    passes(&o[1], "bus_v peaked at");
    // The limits are zero while the contactors are open, from the first step.
    fails(&o[2], "charge_limit_a was 0 at 00:00:00.000");
    passes(&o[3], "cell_mv_min peaked at");
}

#[test]
fn never_signal_only_looks_at_its_window() {
    // Physically closed from 1.6 s to 8 s and from 12.5 s on.
    let o = run(
        ESTOP,
        r#"
[[expect]]
kind = "never"
signal = "contactors_closed"
above = 0.5

[[expect]]
kind = "never"
signal = "contactors_closed"
above = 0.5
from = "9s"
until = "12s"

[[expect]]
kind = "never"
signal = "contactors_closed"
above = 0.5
from = "9s"

[[expect]]
kind = "never"
signal = "contactors_closed"
above = 0.5
until = "1.5s"

[[expect]]
kind = "never"
signal = "contactors_closed"
above = 0.5
until = "1.6s"

[[expect]]
kind = "never"
signal = "contactors_closed"
above = 0.5
from = "8s"
until = "12.499s"

[[expect]]
kind = "never"
signal = "current_a"
below = -100
until = "2.9s"

[[expect]]
kind = "never"
signal = "current_a"
below = -100
from = "2.9s"
until = "7.9s"
"#,
    );
    fails(&o[0], "contactors_closed was 1 at 00:00:01.600");
    passes(&o[1], "contactors_closed peaked at 0 at 00:00:09.000");
    fails(&o[2], "contactors_closed was 1 at 00:00:12.500");
    passes(&o[3], "contactors_closed peaked at 0 at 00:00:00.000");
    // Both ends of the window are inclusive: the step at 1.6 s is in `..=1.6s`.
    fails(&o[4], "contactors_closed was 1 at 00:00:01.600");
    // The emergency stop at 8 s opens before that step samples the signal.
    passes(&o[5], "contactors_closed peaked at 0 at 00:00:08.000");
    passes(&o[6], "current_a peaked at");
    // The load starts at 3 s; the signal shows the current of the step that follows.
    fails(&o[7], "current_a was -149.");
    fails(&o[7], " at 00:00:03.100");
}

#[test]
fn never_signal_fails_when_its_window_holds_no_step() {
    // Signals are sampled at the engine's steps (every 100 ms measurement here); a window
    // between two steps tests nothing, and says so.
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "never"
signal = "bus_v"
above = 1000
from = "5.05s"
until = "5.06s"

[[expect]]
kind = "never"
signal = "bus_v"
above = 1000
from = "5.05s"
until = "5.1s"
"#,
    );
    fails(&o[0], "the window held no step, so nothing was tested");
    passes(&o[1], "bus_v peaked at");
    passes(&o[1], " at 00:00:05.100");
}

// -- by ----------------------------------------------------------------------------------------

#[test]
fn by_fails_when_the_event_comes_late_or_never() {
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "by"
event = "precharge_done"
by = "2s"

[[expect]]
kind = "by"
event = "precharge_done"
by = "1.6s"

[[expect]]
kind = "by"
event = "precharge_done"
by = "1.599s"

[[expect]]
kind = "by"
event = "precharge_failed"
by = "10s"
"#,
    );
    passes(&o[0], "precharge_done at 00:00:01.600");
    // `by` is inclusive.
    passes(&o[1], "precharge_done at 00:00:01.600");
    fails(&o[2], "precharge_done came late, at 00:00:01.600");
    fails(&o[3], "precharge_failed never happened");
}

#[test]
fn by_filters_matter() {
    let o = run(
        SHORT,
        r#"
[[expect]]
kind = "by"
event = "precharge_failed"
cause = "short"
by = "2s"

[[expect]]
kind = "by"
event = "precharge_failed"
cause = "no_voltage_rise"
by = "10s"

[[expect]]
kind = "by"
event = "fault_raised"
rule = "precharge_failed"
tier = "maximum"
by = "2s"

[[expect]]
kind = "by"
event = "fault_raised"
rule = "precharge_failed"
tier = "recommended"
by = "10s"
"#,
    );
    passes(&o[0], "precharge_failed at 00:00:01.600");
    fails(&o[1], "precharge_failed never happened");
    passes(&o[2], "fault_raised at 00:00:01.600");
    fails(&o[3], "fault_raised never happened");
}

// -- count -------------------------------------------------------------------------------------

#[test]
fn count_fails_outside_its_bounds() {
    // The contactors close twice.
    let o = run(
        ESTOP,
        r#"
[[expect]]
kind = "count"
event = "contactors_closed"
count = 2

[[expect]]
kind = "count"
event = "contactors_closed"
count = 1

[[expect]]
kind = "count"
event = "contactors_closed"
count = 3

[[expect]]
kind = "count"
event = "contactors_closed"
min = 2

[[expect]]
kind = "count"
event = "contactors_closed"
min = 3

[[expect]]
kind = "count"
event = "contactors_closed"
max = 2

[[expect]]
kind = "count"
event = "contactors_closed"
max = 1

[[expect]]
kind = "count"
event = "contactors_closed"
min = 1
max = 2

[[expect]]
kind = "count"
event = "contactors_closed"
min = 3
max = 5

[[expect]]
kind = "count"
event = "stopping"
count = 0

[[expect]]
kind = "count"
event = "stopping"
min = 1
"#,
    );
    let expected = [true, false, false, true, false, true, false, true, false];
    for (o, passed) in o.iter().zip(expected) {
        assert_eq!(o.passed, passed, "{}: {}", o.label, o.detail);
        assert_eq!(o.detail, "contactors_closed happened 2 times", "{}", o.label);
    }
    passes(&o[9], "stopping happened 0 times");
    fails(&o[10], "stopping happened 0 times");
}

#[test]
fn count_filters_matter() {
    let o = run(
        SHORT,
        r#"
[[expect]]
kind = "count"
event = "precharge_failed"
count = 1

[[expect]]
kind = "count"
event = "precharge_failed"
cause = "short"
count = 1

[[expect]]
kind = "count"
event = "precharge_failed"
cause = "too_slow"
count = 1

[[expect]]
kind = "count"
event = "precharge_failed"
cause = "too_slow"
count = 0

[[expect]]
kind = "count"
event = "precharge_failed"
cause = "short"
count = 0

[[expect]]
kind = "count"
event = "fault_raised"
rule = "precharge_failed"
tier = "maximum"
count = 1

[[expect]]
kind = "count"
event = "fault_raised"
rule = "precharge_failed"
tier = "operating"
min = 1

[[expect]]
kind = "count"
event = "fault_raised"
rule = "hardware_fault"
min = 1
"#,
    );
    passes(&o[0], "precharge_failed happened 1 time");
    passes(&o[1], "precharge_failed happened 1 time");
    fails(&o[2], "precharge_failed happened 0 times");
    passes(&o[3], "precharge_failed happened 0 times");
    fails(&o[4], "precharge_failed happened 1 time");
    passes(&o[5], "fault_raised happened 1 time");
    fails(&o[6], "fault_raised happened 0 times");
    fails(&o[7], "fault_raised happened 0 times");
}

#[test]
fn count_how_command_rule_filters_matter() {
    let o = run(
        HARDWARE,
        r#"
[[expect]]
kind = "count"
event = "contactors_open"
how = "emergency"
count = 1

[[expect]]
kind = "count"
event = "contactors_open"
how = "emergency_stop"
count = 1

[[expect]]
kind = "count"
event = "command"
command = "clear_faults"
count = 2

[[expect]]
kind = "count"
event = "command"
command = "clear_faults"
count = 4

[[expect]]
kind = "count"
event = "command"
count = 4

[[expect]]
kind = "count"
event = "fault_clear_refused"
rule = "hardware_fault"
count = 1

[[expect]]
kind = "count"
event = "fault_cleared"
rule = "hardware_fault"
tier = "maximum"
count = 1

[[expect]]
kind = "count"
event = "fault_cleared"
rule = "precharge_failed"
count = 1
"#,
    );
    passes(&o[0], "contactors_open happened 1 time");
    fails(&o[1], "contactors_open happened 0 times");
    passes(&o[2], "command happened 2 times");
    fails(&o[3], "command happened 2 times");
    passes(&o[4], "command happened 4 times");
    passes(&o[5], "fault_clear_refused happened 1 time");
    passes(&o[6], "fault_cleared happened 1 time");
    fails(&o[7], "fault_cleared happened 0 times");
}

// -- at_end ------------------------------------------------------------------------------------

#[test]
fn at_end_state_fails_on_another_state() {
    let closed = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "at_end"
state = "closed"

[[expect]]
kind = "at_end"
state = "open"

[[expect]]
kind = "at_end"
state = "closing"
"#,
    );
    passes(&closed[0], "the sequence ended closed at 00:00:10.000");
    fails(&closed[1], "the sequence ended closed at 00:00:10.000");
    fails(&closed[2], "the sequence ended closed at 00:00:10.000");

    let open = run(
        SHORT,
        r#"
[[expect]]
kind = "at_end"
state = "open"

[[expect]]
kind = "at_end"
state = "closed"
"#,
    );
    passes(&open[0], "the sequence ended open at 00:00:10.000");
    fails(&open[1], "the sequence ended open at 00:00:10.000");
}

/// A 20 mF bus: the first precharge attempt (1.1 s) is too slow and fails at its 3 s deadline,
/// then the core waits 5 s before the next attempt. `duration` is spliced in.
fn slow_precharge(duration: &str) -> String {
    format!(
        r#"
name = "Too much bus capacitance"
seed = 3
duration = "{duration}"

[system]
preset = "tesla_model_s"
modules = 16

[plant]
initial_soc = 0.6
bus = {{ capacitance_uf = 20000.0 }}

[[timeline]]
at = "1s"
command = "start"
"#
    )
}

#[test]
fn at_end_state_open_includes_a_retry_wait_and_closing_a_precharge() {
    let waiting = run(
        &slow_precharge("6s"),
        r#"
[[expect]]
kind = "count"
event = "precharge_failed"
cause = "too_slow"
count = 1

[[expect]]
kind = "at_end"
state = "open"

[[expect]]
kind = "at_end"
state = "closing"

[[expect]]
kind = "at_end"
latched = "none"
"#,
    );
    passes(&waiting[0], "precharge_failed happened 1 time");
    passes(&waiting[1], "the sequence ended open at 00:00:06.000");
    fails(&waiting[2], "the sequence ended open at 00:00:06.000");
    passes(&waiting[3], "nothing was latched at the end");

    let precharging = run(
        &slow_precharge("2s"),
        r#"
[[expect]]
kind = "at_end"
state = "closing"

[[expect]]
kind = "at_end"
state = "open"

[[expect]]
kind = "at_end"
state = "closed"
"#,
    );
    passes(&precharging[0], "the sequence ended closing at 00:00:02.000");
    fails(&precharging[1], "the sequence ended closing at 00:00:02.000");
    fails(&precharging[2], "the sequence ended closing at 00:00:02.000");
}

#[test]
fn at_end_latched_fails_on_the_wrong_latch() {
    let latched = run(
        SHORT,
        r#"
[[expect]]
kind = "at_end"
latched = "precharge_failed"

[[expect]]
kind = "at_end"
latched = "none"

[[expect]]
kind = "at_end"
latched = "hardware_fault"
"#,
    );
    passes(&latched[0], "precharge_failed was latched at the end");
    fails(&latched[1], "precharge_failed was latched at the end");
    fails(&latched[2], "precharge_failed was latched at the end");

    let clean = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "at_end"
latched = "none"

[[expect]]
kind = "at_end"
latched = "precharge_failed"
"#,
    );
    passes(&clean[0], "nothing was latched at the end");
    fails(&clean[1], "nothing was latched at the end");
}

#[test]
fn at_end_latched_names_every_latched_rule() {
    // A short on the bus latches precharge_failed; the hardware fault line then latches
    // hardware_fault as well.
    let toml = format!(
        "{SHORT}{}",
        r#"
[[timeline]]
at = "5s"
fault = { kind = "hardware_fault", active = true }

[[expect]]
kind = "at_end"
latched = "precharge_failed"

[[expect]]
kind = "at_end"
latched = "hardware_fault"

[[expect]]
kind = "at_end"
latched = "none"

[[expect]]
kind = "at_end"
latched = "cell_over_voltage"
"#
    );
    let o = outcomes(&toml);
    assert_eq!(o.len(), 4);
    for o in &o[..2] {
        assert!(o.passed, "{}: {}", o.label, o.detail);
    }
    for o in &o[2..] {
        assert!(!o.passed, "{}: {}", o.label, o.detail);
    }
    for o in &o {
        assert!(o.detail.contains(" were latched at the end"), "{}", o.detail);
        assert!(o.detail.contains("precharge_failed"), "{}", o.detail);
        assert!(o.detail.contains("hardware_fault"), "{}", o.detail);
    }
}

#[test]
fn at_end_latched_none_passes_once_the_fault_is_cleared() {
    // Same fault, but cleared (at 20 s) or not (the run ends at 12 s, after a refused clear).
    let cleared = run(
        HARDWARE,
        r#"
[[expect]]
kind = "at_end"
latched = "none"
"#,
    );
    passes(&cleared[0], "nothing was latched at the end");
    let still = run(
        r#"
name = "Hardware fault, refused clear"
seed = 15
duration = "12s"

[system]
preset = "tesla_model_s"
modules = 16

[[timeline]]
at = "1s"
command = "start"

[[timeline]]
at = "5s"
fault = { kind = "hardware_fault", active = true }

[[timeline]]
at = "10s"
command = "clear_faults"
"#,
        r#"
[[expect]]
kind = "count"
event = "fault_clear_refused"
count = 1

[[expect]]
kind = "at_end"
latched = "none"

[[expect]]
kind = "at_end"
latched = "hardware_fault"
"#,
    );
    passes(&still[0], "fault_clear_refused happened 1 time");
    fails(&still[1], "hardware_fault was latched at the end");
    passes(&still[2], "hardware_fault was latched at the end");
}

#[test]
fn at_end_signal_fails_when_the_condition_does_not_hold() {
    let o = run(
        PRECHARGE,
        r#"
[[expect]]
kind = "at_end"
signal = "bus_v"
above = 300

[[expect]]
kind = "at_end"
signal = "bus_v"
below = 300

[[expect]]
kind = "at_end"
signal = "contactors_closed"
above = 0.5

[[expect]]
kind = "at_end"
signal = "contactors_closed"
above = 1
"#,
    );
    passes(&o[0], "bus_v was ");
    assert!(o[0].detail.ends_with(" at the end"), "{}", o[0].detail);
    assert_eq!(o[0].detail, o[1].detail);
    fails(&o[1], "bus_v was ");
    passes(&o[2], "contactors_closed was 1 at the end");
    // Comparisons are strict: 1 is not above 1.
    fails(&o[3], "contactors_closed was 1 at the end");

    let short = run(
        SHORT,
        r#"
[[expect]]
kind = "at_end"
signal = "bus_v"
above = 10

[[expect]]
kind = "at_end"
signal = "bus_v"
below = 10
"#,
    );
    fails(&short[0], "bus_v was ");
    passes(&short[1], "bus_v was ");
}
