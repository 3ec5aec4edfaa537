//! Behaviour of each protection rule and of the rule engine (debounce, hysteresis, latching,
//! the charge-window gate, the hardware fault line), through the public API and the shared rig.
//!
//! Most tests use the 16S 100 Ah LFP preset at 3.3 V per cell: charge up to 50 A, discharge up
//! to 100 A, operating-tier derate 500 permille.

mod common;
mod support;

use cellwarden_core::protection::Direction;
use cellwarden_core::{
    Action, Blocker, Command, DeciCelsius, Duration, FaultChange, Input, Instant, LimitReason,
    Location, MilliAmps, MilliVolts, RuleId, SequenceEvent, SequenceState, Tier,
};
use common::{Plant, Rig};
use support::{
    BASE_MV, before, close_commands, closed, count, events, faults, limits, ms, names, opened_at,
    reason,
};

const CELLS: i32 = 16;
/// The cell and the sensor the cases disturb, so the reported location is not the default.
const CELL: u16 = 5;
const SENSOR: u16 = 2;
/// lfp_16s(100): configured maxima and what the operating tier leaves of them.
const CHARGE_MAX_MA: i32 = 50_000;
const DISCHARGE_MAX_MA: i32 = 100_000;
const CHARGE_DERATED_MA: i32 = 25_000;
const DISCHARGE_DERATED_MA: i32 = 50_000;
/// Longer than every debounce of the preset (imbalance: 2 s).
const SETTLE: Duration = Duration::from_millis(2_100);
/// The preset's cell over-voltage tiers and timing.
const COV_DEBOUNCE: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------------------------
// Every threshold rule, three tiers, through one `check`.

struct Case {
    rule: RuleId,
    /// The directions its operating and recommended tiers restrict.
    direction: Direction,
    /// Pack current while the case runs; the charge-window maximum needs charging current.
    load_ma: i32,
    /// Puts the rule's observed quantity at the given value, in the rule's own unit.
    set: fn(&mut Plant, i32),
    /// A value violating the operating, recommended and maximum tier (`None`: not configured).
    values: [Option<i32>; 3],
    location: Location,
}

fn set_cell(p: &mut Plant, v: i32) {
    p.cells[usize::from(CELL)] = MilliVolts(v);
}
fn set_pack(p: &mut Plant, v: i32) {
    p.pack_override = Some(MilliVolts(v));
}
fn set_charge(p: &mut Plant, v: i32) {
    p.load = MilliAmps(v);
}
fn set_discharge(p: &mut Plant, v: i32) {
    p.load = MilliAmps(-v);
}
fn set_temp(p: &mut Plant, v: i32) {
    p.temps[usize::from(SENSOR)] = DeciCelsius(v);
}
fn set_imbalance(p: &mut Plant, v: i32) {
    p.cells[usize::from(CELL)] = MilliVolts(BASE_MV + v);
}
fn set_mismatch(p: &mut Plant, v: i32) {
    p.pack_override = Some(MilliVolts(CELLS * BASE_MV + v));
}

/// Closes the pack, then walks the case's value through its tiers: the operating tier derates
/// the rule's direction(s) with a reason naming rule, tier, location and value; the recommended
/// tier sets them to zero; the maximum tier opens the contactors and latches.
fn check(case: &Case) {
    let rule = case.rule;
    let direction = case.direction;
    let mut rig = closed(rule);
    rig.plant.load = MilliAmps(case.load_ma);
    rig.run(ms(100));
    assert_eq!(rig.bms.status().rules[rule.index()].active, None, "{rule:?} before");

    let derated =
        [(CHARGE_DERATED_MA, direction.charge()), (DISCHARGE_DERATED_MA, direction.discharge())];
    for (tier, value) in Tier::ALL.into_iter().zip(case.values) {
        let Some(value) = value else { continue };
        (case.set)(&mut rig.plant, value);
        rig.run(SETTLE);
        let raised = events(&rig, rule, tier, FaultChange::Raised);
        assert_eq!(raised.len(), 1, "{rule:?} {tier:?} raised once: {:?}", faults(&rig));
        assert_eq!((raised[0].location, raised[0].value), (case.location, value), "{rule:?}");
        let status = rig.bms.status();
        assert_eq!(status.rules[rule.index()].active, Some(tier), "{rule:?}");
        if tier == Tier::Maximum {
            assert_eq!(rig.state(), SequenceState::Open, "{rule:?} maximum opens");
            assert_eq!(rig.applied(), [false; 3], "{rule:?}");
            assert_eq!(status.latched(), Some(rule));
            assert!(status.rules[rule.index()].latched);
            // A latched maximum tier binds both directions, whatever the rule's direction.
            let l = limits(&rig);
            assert_eq!((l.charge_ma, l.discharge_ma), (MilliAmps(0), MilliAmps(0)));
            for why in [l.charge_reason, l.discharge_reason] {
                assert!(matches!(why, LimitReason::Rule { .. }), "{rule:?}: {l:?}");
            }
            continue;
        }
        assert_eq!(rig.state(), SequenceState::Closed, "{rule:?} {tier:?} keeps the pack closed");
        let expected_reason = reason(rule, tier, case.location, value);
        let l = limits(&rig);
        let sides = [(l.charge_ma, l.charge_reason), (l.discharge_ma, l.discharge_reason)];
        for ((limit, why), (derated_ma, restricted)) in sides.into_iter().zip(derated) {
            if restricted {
                let want = if tier == Tier::Operating { derated_ma } else { 0 };
                assert_eq!(limit, MilliAmps(want), "{rule:?} {tier:?}: {l:?}");
                assert_eq!(why, expected_reason, "{rule:?} {tier:?}");
            } else {
                assert!(!names(why, rule), "{rule:?} must not limit the other direction: {l:?}");
            }
        }
    }
}

const CHARGING_MA: i32 = 10_000;
const DISCHARGING_MA: i32 = -10_000;

const CASES: [Case; 12] = [
    Case {
        rule: RuleId::CellOverVoltage,
        direction: Direction::Charge,
        load_ma: 0,
        set: set_cell,
        values: [Some(3_600), Some(3_700), Some(3_800)],
        location: Location::Cell(CELL),
    },
    Case {
        rule: RuleId::CellUnderVoltage,
        direction: Direction::Discharge,
        load_ma: 0,
        set: set_cell,
        values: [Some(2_850), Some(2_750), Some(2_400)],
        location: Location::Cell(CELL),
    },
    Case {
        rule: RuleId::PackOverVoltage,
        direction: Direction::Charge,
        load_ma: 0,
        set: set_pack,
        values: [Some(57_000), Some(58_500), Some(60_100)],
        location: Location::Pack,
    },
    Case {
        rule: RuleId::PackUnderVoltage,
        direction: Direction::Discharge,
        load_ma: 0,
        set: set_pack,
        values: [Some(46_000), Some(44_000), Some(39_000)],
        location: Location::Pack,
    },
    Case {
        rule: RuleId::ChargeOverCurrent,
        direction: Direction::Charge,
        load_ma: 0,
        set: set_charge,
        values: [Some(57_000), Some(61_000), Some(76_000)],
        location: Location::Pack,
    },
    Case {
        rule: RuleId::DischargeOverCurrent,
        direction: Direction::Discharge,
        load_ma: 0,
        set: set_discharge,
        values: [Some(115_000), Some(125_000), Some(155_000)],
        location: Location::Pack,
    },
    Case {
        rule: RuleId::ChargeOverTemperature,
        direction: Direction::Charge,
        load_ma: CHARGING_MA,
        set: set_temp,
        values: [Some(420), Some(470), Some(520)],
        location: Location::Sensor(SENSOR),
    },
    Case {
        rule: RuleId::ChargeUnderTemperature,
        direction: Direction::Charge,
        load_ma: CHARGING_MA,
        set: set_temp,
        values: [Some(50), Some(10), Some(-10)],
        location: Location::Sensor(SENSOR),
    },
    Case {
        rule: RuleId::DischargeOverTemperature,
        direction: Direction::Discharge,
        load_ma: DISCHARGING_MA,
        set: set_temp,
        values: [Some(520), Some(570), Some(620)],
        location: Location::Sensor(SENSOR),
    },
    Case {
        rule: RuleId::DischargeUnderTemperature,
        direction: Direction::Discharge,
        load_ma: DISCHARGING_MA,
        set: set_temp,
        values: [Some(-150), Some(-220), Some(-260)],
        location: Location::Sensor(SENSOR),
    },
    // One cell above fifteen equal cells: the high outlier is endangered by charging, so only
    // charging is restricted (a low outlier restricts discharging: see below).
    Case {
        rule: RuleId::CellImbalance,
        direction: Direction::Charge,
        load_ma: 0,
        set: set_imbalance,
        values: [Some(100), Some(200), Some(450)],
        location: Location::Cell(CELL),
    },
    Case {
        rule: RuleId::PackVoltageMismatch,
        direction: Direction::Both,
        load_ma: 0,
        set: set_mismatch,
        // The preset has no recommended tier for the plausibility check.
        values: [Some(400), None, Some(1_700)],
        location: Location::Pack,
    },
];

#[test]
fn cases_cover_every_threshold_rule() {
    let covered: Vec<RuleId> = CASES.iter().map(|c| c.rule).collect();
    let threshold: Vec<RuleId> = RuleId::ALL
        .into_iter()
        .filter(|r| r.spec().kind == cellwarden_core::protection::Kind::Threshold)
        .collect();
    assert_eq!(covered, threshold);
}

macro_rules! rule_tests {
    ($($name:ident: $index:expr,)*) => {$(
        #[test]
        fn $name() {
            check(&CASES[$index]);
        }
    )*};
}

rule_tests! {
    cell_over_voltage_tiers: 0,
    cell_under_voltage_tiers: 1,
    pack_over_voltage_tiers: 2,
    pack_under_voltage_tiers: 3,
    charge_over_current_tiers: 4,
    discharge_over_current_tiers: 5,
    charge_over_temperature_tiers: 6,
    charge_under_temperature_tiers: 7,
    discharge_over_temperature_tiers: 8,
    discharge_under_temperature_tiers: 9,
    cell_imbalance_tiers: 10,
    pack_voltage_mismatch_tiers: 11,
}

#[test]
fn pack_sensor_reading_below_the_cell_sum_is_a_mismatch_too() {
    let rule = RuleId::PackVoltageMismatch;
    let mut rig = closed(rule);
    set_mismatch(&mut rig.plant, -1_700);
    rig.run(SETTLE);
    let raised = events(&rig, rule, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1, "{:?}", faults(&rig));
    assert_eq!((raised[0].location, raised[0].value), (Location::Pack, 1_700));
    assert_eq!(rig.state(), SequenceState::Open);
}

#[test]
fn imbalance_with_a_low_outlier_restricts_discharging_only() {
    let rule = RuleId::CellImbalance;
    let mut rig = closed(rule);
    // A sagging cell at the empty end: discharging would take it under, charging helps it.
    set_imbalance(&mut rig.plant, -100);
    rig.run(SETTLE);
    let l = limits(&rig);
    assert_eq!(l.discharge_ma, MilliAmps(DISCHARGE_DERATED_MA), "{l:?}");
    assert!(names(l.discharge_reason, rule), "{l:?}");
    assert_eq!(l.charge_ma, MilliAmps(CHARGE_MAX_MA), "{l:?}");
    set_imbalance(&mut rig.plant, -200);
    rig.run(SETTLE);
    let l = limits(&rig);
    assert_eq!((l.charge_ma, l.discharge_ma), (MilliAmps(CHARGE_MAX_MA), MilliAmps(0)), "{l:?}");
    assert!(!names(l.charge_reason, rule), "{l:?}");
}

#[test]
fn imbalance_names_the_low_outlier_when_one_cell_sags() {
    let rule = RuleId::CellImbalance;
    let mut rig = closed(rule);
    // One cell 450 mV below fifteen equal cells: the mean is close to the others, so the low
    // cell is the outlier, and it is the one a user needs to find.
    set_imbalance(&mut rig.plant, -450);
    rig.run(SETTLE);
    let raised = events(&rig, rule, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1, "{:?}", faults(&rig));
    assert_eq!((raised[0].location, raised[0].value), (Location::Cell(CELL), 450));
}

// ---------------------------------------------------------------------------------------------
// Debounce: counted from the sample time of the first violating sample.

#[test]
fn spike_shorter_than_debounce_does_not_trip() {
    let mut rig = closed(RuleId::CellOverVoltage);
    set_cell(&mut rig.plant, 3_800);
    rig.run(ms(150));
    assert!(rig.bms.status().rules[RuleId::CellOverVoltage.index()].pending);
    set_cell(&mut rig.plant, BASE_MV);
    rig.run(ms(1_000));
    assert_eq!(faults(&rig), []);
    assert!(!rig.bms.status().rules[RuleId::CellOverVoltage.index()].pending);
    assert_eq!(rig.state(), SequenceState::Closed);
}

#[test]
fn violation_lasting_the_debounce_trips_exactly_debounce_after_first_sample() {
    let mut rig = closed(RuleId::CellOverVoltage);
    let t0 = rig.now;
    set_cell(&mut rig.plant, 3_800);
    rig.feed();
    assert_eq!(rig.bms.poll_timeout(), Some(t0 + COV_DEBOUNCE));
    rig.run(ms(500));
    for tier in Tier::ALL {
        let raised = events(&rig, RuleId::CellOverVoltage, tier, FaultChange::Raised);
        assert_eq!(raised.len(), 1, "{tier:?}");
        assert_eq!(raised[0].at, t0 + COV_DEBOUNCE, "{tier:?}");
    }
    assert_eq!(opened_at(&rig), Some(t0 + COV_DEBOUNCE));
}

/// Stops the rig's cell feed for a while so a late sample can still be newer than the stored one.
fn closed_with_cells_paused() -> Rig {
    let mut rig = closed(RuleId::CellOverVoltage);
    rig.feed_cells = false;
    rig.run(ms(300));
    rig
}

fn deliver_cells(rig: &mut Rig, sampled_at: Instant) {
    let cells = rig.plant.cells.clone();
    rig.input(Input::CellVoltages { sampled_at, first: 0, mv: &cells });
}

#[test]
fn debounce_counts_from_the_sample_time_not_the_arrival() {
    let mut rig = closed_with_cells_paused();
    let t = rig.now;
    let sampled = before(t, ms(150));
    set_cell(&mut rig.plant, 3_800);
    deliver_cells(&mut rig, sampled);
    assert_eq!(faults(&rig), [], "150 ms old is not yet 200 ms");
    assert_eq!(rig.bms.poll_timeout(), Some(sampled + COV_DEBOUNCE));
    rig.feed_cells = true;
    rig.run(ms(300));
    let raised = events(&rig, RuleId::CellOverVoltage, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].at, t + ms(50));
    assert_eq!(opened_at(&rig), Some(t + ms(50)));
}

#[test]
fn late_sample_older_than_the_debounce_trips_on_arrival() {
    let mut rig = closed_with_cells_paused();
    let t = rig.now;
    set_cell(&mut rig.plant, 3_800);
    deliver_cells(&mut rig, before(t, ms(250)));
    let raised = events(&rig, RuleId::CellOverVoltage, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].at, t);
    assert_eq!(rig.state(), SequenceState::Open);
}

#[test]
fn sample_from_the_future_is_counted_and_debounced_from_now() {
    let mut rig = closed_with_cells_paused();
    let t = rig.now;
    set_cell(&mut rig.plant, 3_800);
    deliver_cells(&mut rig, t + ms(1_000));
    assert_eq!(rig.bms.status().counters.from_the_future, 1);
    assert_eq!(rig.bms.poll_timeout(), Some(t + COV_DEBOUNCE));
    rig.run(ms(300));
    let raised = events(&rig, RuleId::CellOverVoltage, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].at, t + COV_DEBOUNCE);
}

// ---------------------------------------------------------------------------------------------
// Hysteresis: raise once, release only back inside threshold - hysteresis.

#[test]
fn value_oscillating_around_a_high_threshold_raises_once_without_chatter() {
    // Operating tier 3550 mV, hysteresis 50 mV, debounce 200 ms; each excursion lasts 300 ms.
    let rule = RuleId::CellOverVoltage;
    let mut rig = closed(rule);
    for _ in 0..5 {
        set_cell(&mut rig.plant, 3_560);
        rig.run(ms(300));
        set_cell(&mut rig.plant, 3_540);
        rig.run(ms(300));
    }
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Raised), 1);
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Released), 0);
    set_cell(&mut rig.plant, 3_501);
    rig.run(ms(300));
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Released), 0);
    assert_eq!(limits(&rig).charge_ma, MilliAmps(CHARGE_DERATED_MA));
    set_cell(&mut rig.plant, 3_500);
    rig.run(ms(20));
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Released), 1);
    assert_eq!(limits(&rig).charge_ma, MilliAmps(CHARGE_MAX_MA));
    assert_eq!(limits(&rig).charge_reason, LimitReason::ConfiguredMaximum);
}

#[test]
fn value_oscillating_around_a_low_threshold_raises_once_without_chatter() {
    // Operating tier 2900 mV, hysteresis 100 mV: release at 3000 mV or above.
    let rule = RuleId::CellUnderVoltage;
    let mut rig = closed(rule);
    for _ in 0..5 {
        set_cell(&mut rig.plant, 2_890);
        rig.run(ms(300));
        set_cell(&mut rig.plant, 2_910);
        rig.run(ms(300));
    }
    set_cell(&mut rig.plant, 2_999);
    rig.run(ms(300));
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Raised), 1);
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Released), 0);
    assert_eq!(limits(&rig).discharge_ma, MilliAmps(DISCHARGE_DERATED_MA));
    set_cell(&mut rig.plant, 3_000);
    rig.run(ms(20));
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Released), 1);
    assert_eq!(limits(&rig).discharge_ma, MilliAmps(DISCHARGE_MAX_MA));
}

#[test]
fn released_tier_raises_again_on_a_new_violation() {
    let rule = RuleId::CellOverVoltage;
    let mut rig = closed(rule);
    for _ in 0..2 {
        set_cell(&mut rig.plant, 3_600);
        rig.run(ms(300));
        set_cell(&mut rig.plant, BASE_MV);
        rig.run(ms(300));
    }
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Raised), 2);
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Released), 2);
}

// ---------------------------------------------------------------------------------------------
// Latching of the maximum tier and ClearFaults.

/// A pack whose cell over-voltage maximum tier (3750 mV, hysteresis 50 mV) has latched.
fn latched_over_voltage() -> Rig {
    let mut rig = closed(RuleId::CellOverVoltage);
    set_cell(&mut rig.plant, 3_800);
    rig.run(ms(500));
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellOverVoltage));
    rig
}

#[test]
fn maximum_tier_stays_latched_when_the_value_recovers() {
    let mut rig = latched_over_voltage();
    let opened = rig.now;
    set_cell(&mut rig.plant, BASE_MV);
    rig.run(ms(5_000));
    let rule = RuleId::CellOverVoltage;
    assert_eq!(rig.bms.status().latched(), Some(rule));
    assert_eq!(rig.state(), SequenceState::Open);
    assert_eq!(rig.applied(), [false; 3]);
    assert!(
        !rig.log
            .iter()
            .any(|(t, a)| *t >= opened && matches!(a, Action::Contactor { closed: true, .. }))
    );
    // The lower tiers release; the maximum tier reports no change of its own.
    assert_eq!(count(&rig, rule, Tier::Operating, FaultChange::Released), 1);
    assert_eq!(count(&rig, rule, Tier::Maximum, FaultChange::Released), 0);
    let latched = reason(rule, Tier::Maximum, Location::Cell(CELL), 3_800);
    assert_eq!(limits(&rig).charge_reason, latched);
    assert_eq!(limits(&rig).discharge_reason, latched, "the maximum tier binds both directions");
}

#[test]
fn while_latched_and_still_violating_both_limits_name_the_maximum_tier() {
    // The recommended tier is active too (it also sets the charge limit to zero), but the
    // latched maximum tier is what opened the contactors, so it names both zeros.
    let rig = latched_over_voltage();
    let latched = reason(RuleId::CellOverVoltage, Tier::Maximum, Location::Cell(CELL), 3_800);
    assert_eq!(limits(&rig).charge_reason, latched);
    assert_eq!(limits(&rig).discharge_reason, latched);
}

#[test]
fn clear_faults_is_refused_while_still_violating() {
    let mut rig = latched_over_voltage();
    rig.command(Command::ClearFaults);
    let refused = events(&rig, RuleId::CellOverVoltage, Tier::Maximum, FaultChange::ClearRefused);
    assert_eq!(refused.len(), 1);
    assert_eq!((refused[0].location, refused[0].value), (Location::Cell(CELL), 3_800));
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellOverVoltage));
}

#[test]
fn clear_faults_is_refused_until_back_inside_the_hysteresis() {
    let mut rig = latched_over_voltage();
    let rule = RuleId::CellOverVoltage;
    set_cell(&mut rig.plant, 3_701); // below 3750 but not below 3750 - 50
    rig.run(ms(100));
    rig.command(Command::ClearFaults);
    assert_eq!(count(&rig, rule, Tier::Maximum, FaultChange::ClearRefused), 1);
    assert_eq!(rig.bms.status().latched(), Some(rule));
    set_cell(&mut rig.plant, 3_700);
    rig.run(ms(100));
    rig.command(Command::ClearFaults);
    assert_eq!(count(&rig, rule, Tier::Maximum, FaultChange::Cleared), 1);
    assert_eq!(rig.bms.status().latched(), None);
}

#[test]
fn clear_faults_after_recovery_clears_and_a_new_start_closes() {
    let mut rig = latched_over_voltage();
    let rule = RuleId::CellOverVoltage;
    set_cell(&mut rig.plant, BASE_MV);
    rig.run(ms(100));
    rig.command(Command::ClearFaults);
    let cleared = events(&rig, rule, Tier::Maximum, FaultChange::Cleared);
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0].value, BASE_MV, "Cleared reports the value as it is now");
    assert_eq!(rig.bms.status().latched(), None);
    assert_eq!(rig.bms.status().close_blocker, None);
    // The fault cancelled the earlier Start: clearing alone does not close.
    rig.run(ms(1_000));
    assert_eq!(rig.state(), SequenceState::Open);
    rig.close();
    assert_eq!(rig.applied(), [true, false, true]);
    assert_eq!(limits(&rig).charge_ma, MilliAmps(CHARGE_MAX_MA));
}

#[test]
fn start_while_latched_is_reported_blocked_by_the_fault() {
    let mut rig = latched_over_voltage();
    let closes = close_commands(&rig);
    rig.command(Command::Start);
    rig.run(ms(1_000));
    let blocked = SequenceEvent::CloseBlocked { blocker: Blocker::Fault(RuleId::CellOverVoltage) };
    assert!(rig.sequence_events().contains(&blocked), "{:?}", rig.sequence_events());
    assert_eq!(close_commands(&rig), closes);
    assert_eq!(rig.state(), SequenceState::Open);
}

// ---------------------------------------------------------------------------------------------
// The charge temperature window: its maximum tier applies only while charging.

#[test]
fn cold_pack_at_rest_limits_charge_to_zero_but_stays_closed() {
    let rule = RuleId::ChargeUnderTemperature;
    let mut rig = closed(rule);
    rig.plant.temps[1] = DeciCelsius(-50); // below the 0.0 C maximum tier
    rig.run(ms(5_000));
    assert_eq!(rig.state(), SequenceState::Closed);
    assert_eq!(rig.bms.status().latched(), None);
    let l = limits(&rig);
    assert_eq!(l.charge_ma, MilliAmps(0));
    assert_eq!(l.charge_reason, reason(rule, Tier::Recommended, Location::Sensor(1), -50));
    assert_eq!(l.discharge_ma, MilliAmps(DISCHARGE_MAX_MA));
    assert_eq!(count(&rig, rule, Tier::Maximum, FaultChange::Raised), 0);
}

#[test]
fn cold_pack_opens_once_charging_current_flows() {
    let rule = RuleId::ChargeUnderTemperature;
    let mut rig = closed(rule);
    rig.plant.temps[1] = DeciCelsius(-50);
    rig.run(ms(5_000));
    let t0 = rig.now;
    rig.plant.load = MilliAmps(CHARGING_MA);
    rig.run(ms(2_000));
    assert_eq!(rig.state(), SequenceState::Open);
    assert_eq!(rig.bms.status().latched(), Some(rule));
    assert_eq!(opened_at(&rig), Some(t0 + ms(1_000)), "debounced from the first charging sample");
}

#[test]
fn charging_blip_into_a_cold_pack_is_debounced_from_the_start_of_charging() {
    // Temperatures arrive rarely: the last one is seconds old when charging starts. The maximum
    // tier's debounce must count from the first charging sample, not from the old temperature
    // sample, so a blip shorter than the debounce does not trip.
    let rule = RuleId::ChargeUnderTemperature;
    let mut rig = closed(rule);
    rig.plant.temps[1] = DeciCelsius(-50);
    rig.run(ms(1_000));
    rig.feed_temps = false;
    rig.run(ms(3_000));
    rig.plant.load = MilliAmps(CHARGING_MA);
    rig.run(ms(500));
    rig.plant.load = MilliAmps(0);
    rig.run(ms(1_000));
    assert_eq!(rig.state(), SequenceState::Closed);
    assert_eq!(count(&rig, rule, Tier::Maximum, FaultChange::Raised), 0);
}

#[test]
fn discharging_a_cold_pack_does_not_open() {
    let rule = RuleId::ChargeUnderTemperature;
    let mut rig = closed(rule);
    rig.plant.temps[1] = DeciCelsius(-50);
    rig.plant.load = MilliAmps(DISCHARGING_MA);
    rig.run(ms(5_000));
    assert_eq!(rig.state(), SequenceState::Closed);
    assert_eq!(count(&rig, rule, Tier::Maximum, FaultChange::Raised), 0);
}

// ---------------------------------------------------------------------------------------------
// The hardware fault line.

fn hardware_fault(rig: &mut Rig, active: bool) {
    let now = rig.now;
    rig.plant.hardware_fault = active;
    rig.input(Input::HardwareFault { sampled_at: now, active });
}

#[test]
fn hardware_fault_opens_at_once() {
    let mut rig = closed(RuleId::CellOverVoltage);
    let t = rig.now;
    hardware_fault(&mut rig, true);
    assert_eq!(rig.applied(), [false; 3]);
    assert_eq!(opened_at(&rig), Some(t));
    assert_eq!(rig.bms.status().latched(), Some(RuleId::HardwareFault));
    let raised = events(&rig, RuleId::HardwareFault, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].at, t);
}

#[test]
fn hardware_fault_cannot_be_cleared_while_active() {
    let mut rig = closed(RuleId::CellOverVoltage);
    hardware_fault(&mut rig, true);
    rig.command(Command::ClearFaults);
    assert_eq!(count(&rig, RuleId::HardwareFault, Tier::Maximum, FaultChange::ClearRefused), 1);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::HardwareFault));
    rig.run(ms(100));
    hardware_fault(&mut rig, false);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::HardwareFault), "inactive line alone");
    rig.command(Command::ClearFaults);
    assert_eq!(count(&rig, RuleId::HardwareFault, Tier::Maximum, FaultChange::Cleared), 1);
    rig.close();
    assert_eq!(rig.applied(), [true, false, true]);
}

#[test]
fn rule_names_are_unique_snake_case_and_round_trip() {
    use cellwarden_core::RuleId;
    for rule in RuleId::ALL {
        let name = rule.name();
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{name}");
        assert_eq!(RuleId::from_name(name), Some(rule));
    }
    assert_eq!(RuleId::from_name("no_such_rule"), None);
}
