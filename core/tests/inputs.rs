//! What the core does with the data it is given, or not given: startup before any data,
//! freshness of each source, and hostile input (out of range, out of order, from the future,
//! a clock going back, absurd slices).
//!
//! The pack is the 16S 100 Ah LFP preset. Freshness limits: cells 2 s, temperatures 5 s,
//! current 500 ms, pack voltage 1 s.

mod common;
mod support;

use cellwarden_core::{
    Action, Blocker, Bms, Command, Config, DeciCelsius, FaultChange, Input, Instant, Location,
    MilliAmps, MilliVolts, RuleId, SequenceEvent, SequenceState, Tier,
};
use common::Rig;
use support::{BASE_MV, close_commands, closed, events, faults, ms};

/// A rig that feeds nothing until told to.
fn silent() -> Rig {
    let mut rig = Rig::lfp();
    rig.feed_cells = false;
    rig.feed_temps = false;
    rig.feed_current = false;
    rig.feed_pack = false;
    rig.feed_bus = false;
    rig
}

fn blocker(rig: &Rig) -> Option<Blocker> {
    rig.bms.status().close_blocker
}

fn cells(rig: &mut Rig, first: u16, count: usize) {
    let now = rig.now;
    let mv = vec![MilliVolts(BASE_MV); count];
    rig.input(Input::CellVoltages { sampled_at: now, first, mv: &mv });
}

fn temperatures(rig: &mut Rig, first: u16, count: usize) {
    let now = rig.now;
    let dc = vec![DeciCelsius(250); count];
    rig.input(Input::Temperatures { sampled_at: now, first, dc: &dc });
}

// ---------------------------------------------------------------------------------------------
// Startup with no data.

#[test]
fn start_without_data_raises_nothing_and_never_closes() {
    let mut rig = silent();
    rig.command(Command::Start);
    rig.run(ms(10_000));
    assert_eq!(faults(&rig), []);
    assert_eq!(close_commands(&rig), 0);
    let status = rig.bms.status();
    assert!(status.close_requested, "the Start stays requested");
    assert_eq!(status.close_blocker, Some(Blocker::NoCellVoltage(0)));
    let blocked = SequenceEvent::CloseBlocked { blocker: Blocker::NoCellVoltage(0) };
    assert_eq!(rig.sequence_events(), [blocked]);
}

#[test]
fn close_blocker_names_each_missing_value_in_turn_and_the_pack_closes_once_all_arrive() {
    let mut rig = silent();
    rig.command(Command::Start);
    rig.run(ms(100));
    cells(&mut rig, 0, 8);
    assert_eq!(blocker(&rig), Some(Blocker::NoCellVoltage(8)));
    rig.feed_cells = true;
    temperatures(&mut rig, 0, 3);
    assert_eq!(blocker(&rig), Some(Blocker::NoCellVoltage(8)));
    rig.run(ms(100));
    assert_eq!(blocker(&rig), Some(Blocker::NoTemperature(3)));
    rig.feed_temps = true;
    rig.run(ms(100));
    assert_eq!(blocker(&rig), Some(Blocker::NoCurrent));
    rig.feed_current = true;
    rig.run(ms(100));
    assert_eq!(blocker(&rig), Some(Blocker::NoPackVoltage));
    rig.feed_pack = true;
    rig.run(ms(100));
    assert_eq!(blocker(&rig), Some(Blocker::NoBusVoltage));
    assert_eq!(close_commands(&rig), 0);
    assert_eq!(rig.state(), SequenceState::Open);
    rig.feed_bus = true;
    rig.run(ms(3_000));
    assert_eq!(rig.state(), SequenceState::Closed, "the original Start closes the pack");
    assert_eq!(blocker(&rig), None);
    assert_eq!(faults(&rig), []);
}

#[test]
fn values_never_received_are_not_stale() {
    // Sensor 3 and the pack voltage never arrive; everything else is fed for longer than every
    // freshness limit.
    let mut rig = Rig::lfp();
    rig.feed_temps = false;
    rig.feed_pack = false;
    rig.command(Command::Start);
    for _ in 0..1_000 {
        temperatures(&mut rig, 0, 3);
        rig.run(ms(10));
    }
    assert_eq!(faults(&rig), []);
    let status = rig.bms.status();
    for rule in [RuleId::TemperatureStale, RuleId::PackVoltageStale] {
        assert_eq!(status.rules[rule.index()].active, None, "{rule:?}");
    }
    assert_eq!(status.close_blocker, Some(Blocker::NoTemperature(3)));
    assert_eq!(close_commands(&rig), 0);
}

// ---------------------------------------------------------------------------------------------
// Freshness: each source goes stale at exactly its sample time + its freshness limit.

/// Asserts `rule` latched at `at` naming `location` with the age `age_ms`, and the pack opened.
fn assert_stale(rig: &Rig, rule: RuleId, at: Instant, location: Location, age_ms: i32) {
    let raised = events(rig, rule, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1, "{rule:?}: {:?}", faults(rig));
    assert_eq!((raised[0].at, raised[0].location, raised[0].value), (at, location, age_ms));
    assert_eq!(rig.bms.status().latched(), Some(rule));
    assert_eq!(rig.state(), SequenceState::Open);
    assert_eq!(rig.applied(), [false; 3]);
}

#[test]
fn a_cell_that_stops_reporting_goes_stale_after_its_freshness_limit() {
    let mut rig = closed(RuleId::CellOverVoltage);
    rig.feed_cells = false;
    let last = rig.now;
    cells(&mut rig, 0, 16);
    // Every cell but 7 keeps reporting.
    while rig.now < last + ms(3_000) {
        rig.run(ms(10));
        cells(&mut rig, 0, 7);
        cells(&mut rig, 8, 8);
    }
    let at = last + ms(2_000);
    assert_stale(&rig, RuleId::CellVoltageStale, at, Location::Cell(7), 2_000);
    assert_eq!(faults(&rig).iter().filter(|e| e.at < at).count(), 0);
}

#[test]
fn a_temperature_sensor_that_stops_reporting_goes_stale_after_its_freshness_limit() {
    let mut rig = closed(RuleId::CellOverVoltage);
    rig.feed_temps = false;
    let last = rig.now;
    temperatures(&mut rig, 0, 4);
    while rig.now < last + ms(6_000) {
        rig.run(ms(10));
        temperatures(&mut rig, 0, 3);
    }
    assert_stale(&rig, RuleId::TemperatureStale, last + ms(5_000), Location::Sensor(3), 5_000);
}

#[test]
fn current_goes_stale_after_its_freshness_limit() {
    let mut rig = closed(RuleId::CellOverVoltage);
    rig.feed_current = false;
    let last = rig.now;
    rig.input(Input::Current { sampled_at: last, ma: MilliAmps(0) });
    rig.run(ms(1_000));
    assert_stale(&rig, RuleId::CurrentStale, last + ms(500), Location::Pack, 500);
}

#[test]
fn pack_voltage_goes_stale_after_its_freshness_limit() {
    let mut rig = closed(RuleId::CellOverVoltage);
    rig.feed_pack = false;
    let last = rig.now;
    rig.input(Input::PackVoltage { sampled_at: last, mv: MilliVolts(16 * BASE_MV) });
    rig.run(ms(2_000));
    assert_stale(&rig, RuleId::PackVoltageStale, last + ms(1_000), Location::Pack, 1_000);
}

#[test]
fn stale_fault_clears_once_the_source_is_fresh_again() {
    let mut rig = closed(RuleId::CellOverVoltage);
    rig.feed_current = false;
    rig.run(ms(1_000));
    rig.command(Command::ClearFaults);
    assert_eq!(
        events(&rig, RuleId::CurrentStale, Tier::Maximum, FaultChange::ClearRefused).len(),
        1
    );
    rig.feed_current = true;
    rig.run(ms(20));
    rig.command(Command::ClearFaults);
    assert_eq!(events(&rig, RuleId::CurrentStale, Tier::Maximum, FaultChange::Cleared).len(), 1);
    assert_eq!(rig.bms.status().latched(), None);
}

// ---------------------------------------------------------------------------------------------
// Hostile input.

/// A bare Bms (no rig) with every cell at `BASE_MV`, sampled at 1 s.
fn fed_bms() -> Bms {
    let mut bms = Bms::new(Config::lfp_16s(100), Instant::ZERO).expect("preset");
    let t = Instant::from_secs(1);
    let mv = [MilliVolts(BASE_MV); 16];
    bms.handle_input(t, Input::CellVoltages { sampled_at: t, first: 0, mv: &mv });
    drain(&mut bms);
    bms
}

fn drain(bms: &mut Bms) -> Vec<Action> {
    core::iter::from_fn(|| bms.poll_action()).collect()
}

fn cell_extremes(bms: &Bms) -> (i32, i32) {
    let s = bms.status().summary;
    (s.cell_min.expect("cells").value, s.cell_max.expect("cells").value)
}

#[test]
fn cells_beyond_the_cell_count_are_counted_and_not_stored() {
    let mut bms = fed_bms();
    let t = Instant::from_secs(2);
    let mv = [MilliVolts(3_310), MilliVolts(5_000), MilliVolts(5_000)];
    bms.handle_input(t, Input::CellVoltages { sampled_at: t, first: 15, mv: &mv });
    assert_eq!(bms.status().counters.out_of_range, 2);
    assert_eq!(cell_extremes(&bms), (BASE_MV, 3_310), "cell 15 stored, the rest dropped");
    assert_eq!(bms.status().summary.cell_max.map(|e| e.index), Some(15));
    bms.handle_input(t, Input::CellVoltages { sampled_at: t, first: 16, mv: &mv });
    assert_eq!(bms.status().counters.out_of_range, 5);
    assert_eq!(cell_extremes(&bms), (BASE_MV, 3_310));
    assert_eq!(bms.status().counters.out_of_order, 0);
}

#[test]
fn temperatures_beyond_the_sensor_count_are_counted() {
    let mut bms = fed_bms();
    let t = Instant::from_secs(2);
    let dc = [DeciCelsius(900); 3];
    bms.handle_input(t, Input::Temperatures { sampled_at: t, first: 4, dc: &dc });
    assert_eq!(bms.status().counters.out_of_range, 3);
    assert_eq!(bms.status().summary.temperature_max, None);
}

#[test]
fn older_samples_are_ignored_and_counted() {
    let mut bms = fed_bms();
    let t = Instant::from_secs(2);
    let older = Instant::from_millis(1_500);
    bms.handle_input(t, Input::Current { sampled_at: t, ma: MilliAmps(1_000) });
    bms.handle_input(t, Input::Current { sampled_at: older, ma: MilliAmps(-90_000) });
    assert_eq!(bms.status().current_ma, Some(MilliAmps(1_000)));
    assert_eq!(bms.status().counters.out_of_order, 1);
    // Cells were sampled at 1 s; a block sampled at 0.5 s is older for every cell it carries.
    let stale = [MilliVolts(2_000); 16];
    let half = Instant::from_millis(500);
    bms.handle_input(t, Input::CellVoltages { sampled_at: half, first: 0, mv: &stale });
    assert_eq!(bms.status().counters.out_of_order, 17);
    assert_eq!(cell_extremes(&bms), (BASE_MV, BASE_MV));
    assert_eq!(bms.status().counters.out_of_range, 0);
}

#[test]
fn sample_stamped_in_the_future_is_counted() {
    let mut bms = fed_bms();
    let t = Instant::from_secs(2);
    bms.handle_input(t, Input::PackVoltage { sampled_at: t + ms(500), mv: MilliVolts(52_800) });
    assert_eq!(bms.status().counters.from_the_future, 1);
    assert_eq!(bms.status().pack_mv, Some(MilliVolts(52_800)));
    // Treated as sampled now: a sample at `t` is not older than it.
    bms.handle_input(t, Input::PackVoltage { sampled_at: t, mv: MilliVolts(52_700) });
    assert_eq!(bms.status().pack_mv, Some(MilliVolts(52_700)));
    assert_eq!(bms.status().counters.out_of_order, 0);
}

#[test]
fn a_clock_going_back_is_counted_and_time_does_not_rewind() {
    let mut bms = fed_bms();
    let t = Instant::from_secs(5);
    bms.handle_timeout(t);
    bms.handle_timeout(Instant::from_secs(3));
    assert_eq!(bms.status().counters.clock_went_back, 1);
    assert_eq!(bms.status().now, t);
    let mv = [MilliVolts(BASE_MV); 16];
    let early = Instant::from_secs(4);
    bms.handle_input(early, Input::CellVoltages { sampled_at: early, first: 0, mv: &mv });
    assert_eq!(bms.status().counters.clock_went_back, 2);
    assert_eq!(bms.status().now, t);
}

#[test]
fn absurd_slices_do_not_panic_and_are_counted() {
    let mut bms = fed_bms();
    let t = Instant::from_secs(2);
    let huge = vec![MilliVolts(9_999); 100_000];
    let huge_dc = vec![DeciCelsius(9_999); 100_000];
    let inputs = [
        Input::CellVoltages { sampled_at: t, first: 0, mv: &[] },
        Input::CellVoltages { sampled_at: t, first: u16::MAX, mv: &[] },
        Input::CellVoltages { sampled_at: t, first: u16::MAX, mv: &huge[..3] },
        Input::Temperatures { sampled_at: t, first: u16::MAX, dc: &[] },
        Input::Temperatures { sampled_at: t, first: u16::MAX, dc: &huge_dc[..3] },
    ];
    for input in inputs {
        bms.handle_input(t, input);
        drain(&mut bms);
    }
    assert_eq!(bms.status().counters.out_of_range, 6);
    assert_eq!(cell_extremes(&bms), (BASE_MV, BASE_MV));
    // A huge block from 0 fills the 16 configured cells and counts the rest.
    bms.handle_input(t, Input::CellVoltages { sampled_at: t, first: 0, mv: &huge });
    assert_eq!(bms.status().counters.out_of_range, 6 + 100_000 - 16);
    assert_eq!(cell_extremes(&bms), (9_999, 9_999));
    bms.handle_input(t, Input::Temperatures { sampled_at: t, first: 1, dc: &huge_dc });
    assert_eq!(bms.status().counters.out_of_range, 6 + 100_000 - 16 + 100_000 - 3);
    bms.handle_input(t, Input::CellVoltages { sampled_at: t, first: u16::MAX, mv: &huge });
    assert_eq!(bms.status().counters.out_of_order, 0);
    drain(&mut bms);
}

#[test]
fn hostile_input_never_closes_a_pack_that_has_not_seen_every_value() {
    let mut bms = Bms::new(Config::lfp_16s(100), Instant::ZERO).expect("preset");
    let t = Instant::from_secs(1);
    let far = [MilliVolts(BASE_MV); 64];
    bms.handle_input(t, Input::Command(Command::Start));
    // Only cells 16.. (out of range) and a future-stamped current: cell 0 is still missing.
    bms.handle_input(t, Input::CellVoltages { sampled_at: t, first: 16, mv: &far });
    bms.handle_input(t, Input::Current { sampled_at: t + ms(10_000), ma: MilliAmps(0) });
    bms.handle_timeout(t + ms(100));
    let actions = drain(&mut bms);
    assert!(!actions.iter().any(|a| matches!(a, Action::Contactor { closed: true, .. })));
    assert_eq!(bms.status().close_blocker, Some(Blocker::NoCellVoltage(0)));
}
