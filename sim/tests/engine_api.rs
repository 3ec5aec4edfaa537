//! The steppable engine: stepping in any chunks gives the run to the end byte for byte, and what
//! a caller injects at run time reaches the core, which reacts.

use std::path::{Path, PathBuf};

use cellwarden_core::{Command, Instant, RuleId};
use cellwarden_sim::engine::{self, Engine, Mark};
use cellwarden_sim::report::Report;
use cellwarden_sim::report::csv::write_trace_csv;
use cellwarden_sim::scenario::{self, FaultSpec, Scenario, Signal};

fn load(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name);
    let mut scenario = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    scenario.source = PathBuf::from("scenarios").join(name);
    scenario
}

fn trace_csv(report: &Report) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_trace_csv(report, &mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// Steps `scenario` in chunks of uneven lengths (1 µs to about 3 s, from a fixed sequence),
/// reading the events and trace rows after each, and returns the report with every event line
/// read on the way.
fn chunked(scenario: &Scenario) -> (Report, usize) {
    let mut engine = Engine::new(scenario).expect("the scenario runs");
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut read = 0;
    // The default mark is the start: lines written while the engine was built count too.
    let mut mark = Mark::default();
    while !engine.done() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let chunk_us = match x % 4 {
            0 => x % 17 + 1,
            1 => x % 9_973,
            2 => x % 333_331,
            _ => x % 3_000_017,
        };
        engine.step_until(engine.clock() + cellwarden_core::Duration::from_micros(chunk_us));
        read += engine.events_since(mark).len();
        mark = engine.mark();
        assert!(engine.clock() <= engine.end());
    }
    (engine.finish(), read)
}

fn assert_same_as_run(name: &str) {
    let scenario = load(name);
    let whole = engine::run(&scenario, &mut |_, _| {});
    let (stepped, read) = chunked(&scenario);
    assert_eq!(whole.render(), stepped.render(), "{name}: the report differs");
    assert!(trace_csv(&whole) == trace_csv(&stepped), "{name}: the trace differs");
    assert_eq!(read, whole.log.len(), "{name}: every event line is read once on the way");
    assert!(whole.passed(), "{name} passes");
}

#[test]
fn stepping_in_chunks_is_a_run_to_the_end_single_pack_with_boards() {
    assert_same_as_run("boards_crc_bursts.toml");
}

#[test]
fn stepping_in_chunks_is_a_run_to_the_end_parallel_system() {
    assert_same_as_run("can_three_pylontech_packs.toml");
}

#[test]
fn stepping_in_chunks_is_a_run_to_the_end_boards_beside_racks() {
    assert_same_as_run("can_tesla_boards_and_racks.toml");
}

/// A cell reading that climbs 1 V a second, injected through the API into a closed pack: the
/// core sees an over-voltage, latches it and opens the contactors; the same run without the
/// injection stays closed.
#[test]
fn a_fault_injected_at_run_time_opens_the_contactors() {
    let scenario = load("precharge_success.toml");
    let at = |s: u64| Instant::ZERO + cellwarden_core::Duration::from_secs(s);

    let mut quiet = Engine::new(&scenario).expect("runs");
    quiet.step_until(at(20));
    assert_eq!(quiet.signal(Signal::ContactorsClosed), 1.0, "closed without the fault");

    let mut engine = Engine::new(&scenario).expect("runs");
    engine.step_until(at(10));
    assert_eq!(engine.signal(Signal::ContactorsClosed), 1.0, "closed before the fault");
    let mark = engine.mark();
    engine
        .inject_fault(FaultSpec::CellSenseDrift { cell: 3, mv_per_min: 60_000.0 })
        .expect("a pack of ours has cell sensors");
    engine.step_until(at(20));
    assert_eq!(engine.signal(Signal::ContactorsClosed), 0.0, "opened after the fault");
    let status = engine.controller_status().expect("our pack");
    assert_eq!(status.latched(), Some(RuleId::CellOverVoltage));
    let events = engine.events_since(mark);
    assert!(events.iter().any(|e| e.text.starts_with("fault injected")), "{events:?}");
    assert!(events.iter().all(|e| e.at >= cellwarden_core::Duration::from_secs(10)));

    // The latch holds until a command clears it, given through the API as well.
    engine.command(Command::ClearFaults);
    engine.step_until(at(21));
    assert!(engine.controller_status().is_some());
}

/// A fault of a part the system lacks is refused, not ignored.
#[test]
fn a_fault_without_its_part_is_refused() {
    let scenario = load("precharge_success.toml");
    let mut engine = Engine::new(&scenario).expect("runs");
    assert!(engine.inject_fault(FaultSpec::BoardSilent { module: 0 }).is_err());
    assert!(engine.inject_fault(FaultSpec::CanPackSilent { can_pack: 0 }).is_err());
    let racks = load("can_three_pylontech_packs.toml");
    let mut engine = Engine::new(&racks).expect("runs");
    assert!(engine.inject_fault(FaultSpec::CanPackSilent { can_pack: 2 }).is_ok());
    assert!(engine.inject_fault(FaultSpec::CanPackSilent { can_pack: 3 }).is_err());
    assert!(engine.inject_fault(FaultSpec::HardwareFault { active: true }).is_err());
}
