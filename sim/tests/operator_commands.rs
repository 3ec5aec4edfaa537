//! An operator's `start` and `stop` in a parallel system go through the gateway: `can_pack`
//! names a rack instead of our own pack, and is refused where it means nothing.

use std::path::Path;

use cellwarden_sim::engine;
use cellwarden_sim::scenario::load_str;

/// Two racks and an inverter at rest; `extra` is appended (timeline entries, expectations).
fn racks(extra: &str) -> String {
    format!(
        r#"
name = "two racks"
seed = 3
duration = "3m"

[[can_packs]]
name = "rack A"

[[can_packs]]
name = "rack B"

[[inverters]]
protocol = "sma"
{extra}
"#
    )
}

#[test]
fn a_stopped_rack_stays_off_until_started_then_rejoins() {
    let text = racks(
        r#"
[[timeline]]
at = "1m"
command = "stop"
can_pack = 1

[[timeline]]
at = "2m"
command = "start"
can_pack = 1

[[expect]]
kind = "never"
signal = "packs_connected"
above = 1.5
from = "1m1s"
until = "1m59s"

[[expect]]
kind = "at_end"
signal = "packs_connected"
above = 1.5

[[expect]]
kind = "count"
event = "pack_dropped"
count = 1
"#,
    );
    let scenario = load_str(Path::new("racks.toml"), &text).expect("valid");
    let report = engine::run(&scenario, &mut |_, _| {});
    assert!(report.passed(), "{}", report.render());
    // Well past the combiner's rejoin time the rack was still off: the hold, not a timer.
    assert!(report.render().contains("rack B dropped: an operator stopped it"));
}

#[test]
fn can_pack_is_refused_where_it_means_nothing() {
    let cases = [
        // A rack that does not exist.
        ("command = \"stop\"\ncan_pack = 2", "timeline[0].can_pack", "does not exist"),
        // Only start and stop go to a rack.
        ("command = \"clear_faults\"\ncan_pack = 0", "timeline[0].can_pack", "only `start`"),
        // No pack controller of ours to stop by default.
        ("command = \"stop\"", "timeline[0].command", "give `can_pack`"),
    ];
    for (entry, field, problem) in cases {
        let text = racks(&format!("\n[[timeline]]\nat = \"1m\"\n{entry}\n"));
        let e = load_str(Path::new("racks.toml"), &text).expect_err(entry);
        assert_eq!(e.field, field, "{entry}");
        assert!(e.problem.contains(problem), "{entry}: {}", e.problem);
    }
    // A single pack has no racks.
    let single = r#"
name = "one pack"
seed = 1
duration = "1m"

[system]
preset = "tesla_model_s"
modules = 2

[[timeline]]
at = "10s"
command = "stop"
can_pack = 0
"#;
    let e = load_str(Path::new("one.toml"), single).expect_err("no racks");
    assert_eq!(e.field, "timeline[0].can_pack");
}
