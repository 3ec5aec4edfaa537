//! The charge controller through its public API: the tables, the presets and their validation,
//! the current limits and their reasons, the stages and their transitions, the cell-overvoltage
//! controller of the charge voltage limit (with a small plant simulation of a cell that runs
//! ahead), hostile inputs, and property tests for monotone limits.
//!
//! Most stories use two Tesla Model S modules: 12 cells, a bulk target of 49.2 V (4.10 V per
//! cell), float 48.0 V, re-bulk below 47.4 V, a floor of 42.0 V, a ramp of 12 mV/s, the highest
//! cell held at 4.145 V (5 mV below its 4.15 V maximum) from 4.10 V up, and 30 s debounces.

use cellwarden_core::charge::{
    ChargeConfig, ChargeController, ChargeInput, ChargeLimitReason, ChargeProblem, CvlReason,
    LimitTable, Stage, StageReason, TABLE_POINTS, Table, TableError,
};
use cellwarden_core::{DeciCelsius, Instant, MAX_CELLS, MilliAmps, MilliVolts, Permille, Problem};
use proptest::prelude::*;

mod charge_common;
use charge_common::{LFP_CELLS, any_input, controller, preset_cells, sample, secs};

fn nca() -> ChargeConfig {
    ChargeConfig::tesla_model_s(2)
}

/// Two Tesla modules: the pack `nca()` is for.
const NCA_CELLS: u16 = 12;

/// A mid-charge sample far from every limit.
fn calm() -> ChargeInput {
    sample(3_900, 3_850, 46_500, 20_000)
}

fn table_reason(table: LimitTable, input: i32) -> ChargeLimitReason {
    ChargeLimitReason::Table { table, input }
}

// ---------------------------------------------------------------------------------------------
// Tables

#[test]
fn a_table_gives_its_points_exactly_and_interpolates_between_them_rounding_down() {
    let t = Table::new(&[(0, 0), (100, 300), (200, 1_000), (350, 1_000), (430, 0)]).unwrap();
    assert_eq!(t.eval(0), Permille(0));
    assert_eq!(t.eval(100), Permille(300));
    assert_eq!(t.eval(200), Permille(1_000));
    assert_eq!(t.eval(430), Permille(0));
    assert_eq!(t.eval(50), Permille(150));
    assert_eq!(t.eval(150), Permille(650));
    // 1000 - 1000 * 1 / 80 = 987.5 on a falling segment: rounded down, not toward 988.
    assert_eq!(t.eval(351), Permille(987));
    assert_eq!(t.eval(429), Permille(12));
}

#[test]
fn a_table_clamps_to_its_end_points_outside_its_range() {
    let t = Table::new(&[(3_200, 0), (3_400, 1_000)]).unwrap();
    assert_eq!(t.eval(i32::MIN), Permille(0));
    assert_eq!(t.eval(0), Permille(0));
    assert_eq!(t.eval(3_400), Permille(1_000));
    assert_eq!(t.eval(i32::MAX), Permille(1_000));
    let one = Table::constant(Permille(400));
    assert_eq!(one.eval(-5), Permille(400));
    assert_eq!(one.eval(i32::MAX), Permille(400));
}

#[test]
fn a_table_spanning_the_whole_i32_range_does_not_overflow() {
    let t = Table::new(&[(i32::MIN, 0), (i32::MAX, 1_000)]).unwrap();
    assert_eq!(t.eval(0), Permille(500));
    assert_eq!(t.eval(i32::MAX - 1), Permille(999));
}

#[test]
fn the_minimum_over_a_range_finds_interior_points_and_both_ends() {
    let t = Table::new(&[(0, 1_000), (10, 200), (20, 1_000)]).unwrap();
    assert_eq!(t.min_over(-5, 30), (Permille(200), 10));
    assert_eq!(t.min_over(30, -5), (Permille(200), 10), "bounds in either order");
    assert_eq!(t.min_over(12, 30), (Permille(360), 12));
    assert_eq!(t.min_over(0, 5), (Permille(600), 5));
    assert_eq!(t.min_over(7, 7), (Permille(440), 7));
}

#[test]
fn invalid_tables_are_refused_with_the_offending_point() {
    assert_eq!(Table::new(&[]), Err(TableError::Empty));
    assert_eq!(Table::new(&[(0, 1_000), (0, 0)]), Err(TableError::NotIncreasing { index: 1 }));
    assert_eq!(
        Table::new(&[(0, 0), (5, 100), (4, 100)]),
        Err(TableError::NotIncreasing { index: 2 })
    );
    assert_eq!(Table::new(&[(0, 0), (5, 1_001)]), Err(TableError::AboveFull { index: 1 }));
    let many: Vec<(i32, u16)> = (0..=TABLE_POINTS as i32).map(|x| (x, 0)).collect();
    assert_eq!(Table::new(&many), Err(TableError::TooManyPoints { count: TABLE_POINTS + 1 }));
    assert!(Table::new(&many[..TABLE_POINTS]).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Configuration

#[test]
fn the_presets_are_valid() {
    for modules in [1, 2, 16, 32] {
        assert_eq!(ChargeConfig::tesla_model_s(modules).validate(), Ok(()), "{modules} modules");
    }
    for ah in [50, 100, 280, 2_000] {
        assert_eq!(ChargeConfig::lfp_16s(ah).validate(), Ok(()), "{ah} Ah");
    }
}

#[test]
fn validation_names_the_field() {
    // The series count is the pack's (`Config::cell_count`), handed to the controller.
    let e = ChargeController::new(nca(), 0, Instant::ZERO).unwrap_err();
    assert_eq!(e.field, "cell_count");
    assert!(ChargeController::new(nca(), MAX_CELLS as u16 + 1, Instant::ZERO).is_err());
    assert!(ChargeController::new(nca(), MAX_CELLS as u16, Instant::ZERO).is_ok());

    let mut c = nca();
    c.charge_by_temperature_dc = Table::constant(Permille(0));
    assert_eq!(c.validate(), Ok(()), "a constant table is a valid table");

    let mut c = nca();
    c.float_cell_mv = c.absorption_cell_mv;
    let e = c.validate().unwrap_err();
    assert_eq!(e.field, "float_cell_mv");
    assert!(matches!(e.problem, ChargeProblem::Value(Problem::MustBeBelow { .. })), "{e:?}");

    let mut c = nca();
    c.full_charge_cell_mv = MilliVolts(4_148);
    assert_eq!(c.validate().unwrap_err().field, "full_charge_cell_mv", "above the setpoint");

    let mut c = nca();
    c.cvl_margin_mv = c.cvl_band_mv;
    assert_eq!(c.validate().unwrap_err().field, "cvl_margin_mv");

    let mut c = nca();
    c.full_charge_every_ms = Some(0);
    assert_eq!(c.validate().unwrap_err().field, "full_charge_every_ms");

    let mut c = nca();
    c.float_current_max_ma = MilliAmps(c.charge_current_max_ma.0 + 1);
    assert_eq!(c.validate().unwrap_err().field, "float_current_max_ma");

    let mut c = nca();
    c.rebulk_cell_mv = c.float_cell_mv;
    assert_eq!(c.validate().unwrap_err().field, "rebulk_cell_mv");
    assert!(ChargeController::new(c, NCA_CELLS, Instant::ZERO).is_err());
}

#[cfg(feature = "serde")]
#[test]
fn a_config_round_trips_through_toml() {
    let c = ChargeConfig::lfp_16s(100);
    let text = toml::to_string(&c).unwrap();
    let back: ChargeConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, c);
}

// ---------------------------------------------------------------------------------------------
// Current limits

#[test]
fn limits_are_zero_until_the_first_sample() {
    let ctl = controller(nca(), NCA_CELLS);
    let s = ctl.status();
    assert_eq!((s.charge_limit_ma, s.charge_reason), (MilliAmps(0), ChargeLimitReason::NoData));
    assert_eq!(s.discharge_limit_ma, MilliAmps(0));
    assert_eq!(s.stage, Stage::Bulk);
    assert_eq!(s.cvl_mv, MilliVolts(49_200));
}

#[test]
fn far_from_every_limit_the_configured_maxima_apply() {
    let mut ctl = controller(nca(), NCA_CELLS);
    ctl.update(secs(1), &calm());
    let s = ctl.status();
    assert_eq!(
        (s.charge_limit_ma, s.charge_reason),
        (MilliAmps(100_000), ChargeLimitReason::ConfiguredMaximum)
    );
    assert_eq!(
        (s.discharge_limit_ma, s.discharge_reason),
        (MilliAmps(200_000), ChargeLimitReason::ConfiguredMaximum)
    );
}

/// Charge and discharge limits (A) and reasons of the NCA preset for one changed input.
fn limits_with(
    change: impl FnOnce(&mut ChargeInput),
) -> (i32, ChargeLimitReason, i32, ChargeLimitReason) {
    let mut ctl = controller(nca(), NCA_CELLS);
    let mut input = calm();
    change(&mut input);
    ctl.update(secs(1), &input);
    let s = ctl.status();
    (s.charge_limit_ma.0, s.charge_reason, s.discharge_limit_ma.0, s.discharge_reason)
}

#[test]
fn each_table_binds_with_its_input() {
    use LimitTable::*;
    let (ch, why, ..) = limits_with(|i| i.cell_max_mv = MilliVolts(4_075));
    assert_eq!((ch, why), (50_000, table_reason(ChargeByCellMax, 4_075)));

    let (ch, why, dis, dwhy) = limits_with(|i| {
        i.temperature_min_dc = DeciCelsius(60);
        i.temperature_max_dc = DeciCelsius(60);
    });
    assert_eq!((ch, why), (15_000, table_reason(ChargeByTemperature, 60)));
    assert_eq!((dis, dwhy), (200_000, ChargeLimitReason::ConfiguredMaximum));

    // The hottest sensor binds when it is the worse end of the range.
    let (ch, why, ..) = limits_with(|i| i.temperature_max_dc = DeciCelsius(400));
    assert_eq!((ch, why), (37_500, table_reason(ChargeByTemperature, 400)));

    let (_, _, dis, dwhy) = limits_with(|i| {
        i.cell_min_mv = MilliVolts(3_300);
        i.cell_max_mv = MilliVolts(3_350);
    });
    assert_eq!((dis, dwhy), (100_000, table_reason(DischargeByCellMin, 3_300)));

    let (_, _, dis, dwhy) = limits_with(|i| i.temperature_min_dc = DeciCelsius(-140));
    assert_eq!((dis, dwhy), (50_000, table_reason(DischargeByTemperature, -140)));

    let (ch, why, ..) = limits_with(|i| i.soc = Some(Permille(950)));
    assert_eq!((ch, why), (60_000, table_reason(ChargeBySoc, 950)));
    let (_, _, dis, dwhy) = limits_with(|i| i.soc = Some(Permille(50)));
    assert_eq!((dis, dwhy), (120_000, table_reason(DischargeBySoc, 50)));
}

#[test]
fn the_smallest_factor_binds_and_the_first_table_wins_a_tie() {
    use LimitTable::*;
    let (ch, why, ..) = limits_with(|i| {
        i.cell_max_mv = MilliVolts(4_075); // 500
        i.soc = Some(Permille(962)); // 504
    });
    assert_eq!((ch, why), (50_000, table_reason(ChargeByCellMax, 4_075)));
    let (ch, why, ..) = limits_with(|i| {
        i.cell_max_mv = MilliVolts(4_030); // 800
        i.soc = Some(Permille(925)); // 800
    });
    assert_eq!((ch, why), (80_000, table_reason(ChargeByCellMax, 4_030)));
}

#[test]
fn no_charge_current_once_the_highest_cell_is_at_its_maximum_whatever_the_table() {
    let mut c = nca();
    c.charge_by_cell_max_mv = Table::constant(Permille::FULL);
    let mut ctl = controller(c, NCA_CELLS);
    ctl.update(secs(1), &sample(4_150, 4_100, 49_000, 0));
    let s = ctl.status();
    assert_eq!(s.charge_limit_ma, MilliAmps(0));
    assert_eq!(
        s.charge_reason,
        ChargeLimitReason::CellAtMaximum { cell_max_mv: MilliVolts(4_150) }
    );
}

#[test]
fn an_implausible_sample_zeroes_the_limits_until_a_plausible_one_arrives() {
    let mut ctl = controller(nca(), NCA_CELLS);
    ctl.update(secs(1), &calm());
    let cvl = ctl.status().cvl_mv;
    let mut bad = calm();
    bad.cell_min_mv = MilliVolts(4_000); // above the highest cell
    ctl.update(secs(2), &bad);
    let s = *ctl.status();
    assert_eq!(
        (s.charge_limit_ma, s.charge_reason),
        (MilliAmps(0), ChargeLimitReason::InputRejected)
    );
    assert_eq!(s.discharge_limit_ma, MilliAmps(0));
    assert_eq!(s.cvl_mv, cvl);
    assert_eq!(s.counters.rejected_inputs, 1);
    for change in [
        |i: &mut ChargeInput| i.cell_max_mv = MilliVolts(10_001),
        |i: &mut ChargeInput| i.cell_min_mv = MilliVolts(-1),
        |i: &mut ChargeInput| i.pack_mv = MilliVolts(-5),
        |i: &mut ChargeInput| i.temperature_min_dc = DeciCelsius(300),
        |i: &mut ChargeInput| i.temperature_max_dc = DeciCelsius(2_001),
        |i: &mut ChargeInput| i.soc = Some(Permille(1_001)),
    ] {
        let mut bad = calm();
        change(&mut bad);
        ctl.update(secs(3), &bad);
    }
    assert_eq!(ctl.status().counters.rejected_inputs, 7);
    // From zero at 20 A/s, one second after the last rejected sample.
    ctl.update(secs(4), &calm());
    let s = ctl.status();
    assert_eq!((s.charge_limit_ma, s.charge_reason), (MilliAmps(20_000), ChargeLimitReason::Ramp));
}

#[test]
fn time_going_backwards_is_counted_and_counts_as_no_time() {
    let mut ctl = controller(nca(), NCA_CELLS);
    ctl.update(secs(100), &calm());
    ctl.update(secs(50), &calm());
    ctl.handle_timeout(secs(10));
    assert_eq!(ctl.status().counters.time_went_back, 2);
    assert_eq!(ctl.status().stage, Stage::Bulk);
}

// ---------------------------------------------------------------------------------------------
// Stages

/// An absorption-voltage sample: pack at 49.15 V, cells 4.098..4.104 V, 3 A.
fn converged() -> ChargeInput {
    sample(4_104, 4_098, 49_150, 3_000)
}

/// Feeds `input` every second from `from` for `n` seconds; returns the next second.
fn feed(ctl: &mut ChargeController, from: u64, n: u64, input: &ChargeInput) -> u64 {
    for t in from..from + n {
        ctl.update(secs(t), input);
    }
    from + n
}

/// Drives a controller to float; returns the next second.
fn to_float(ctl: &mut ChargeController) -> u64 {
    let t = feed(ctl, 1, 70, &converged());
    assert_eq!(ctl.status().stage, Stage::Float, "{:?}", ctl.status());
    t
}

#[test]
fn bulk_becomes_absorption_when_the_pack_voltage_has_held_near_the_target() {
    let mut ctl = controller(nca(), NCA_CELLS);
    let near = sample(4_095, 4_080, 49_080, 30_000); // exactly target - 12 * 10 mV
    let below = sample(4_095, 4_080, 49_079, 30_000);
    ctl.update(secs(1), &near);
    ctl.update(secs(20), &below); // interrupts the debounce
    ctl.update(secs(40), &near);
    ctl.update(secs(69), &near);
    assert_eq!(ctl.status().stage, Stage::Bulk);
    ctl.update(secs(70), &near);
    let s = ctl.status();
    assert_eq!(
        (s.stage, s.stage_reason, s.stage_since),
        (Stage::Absorption, StageReason::PackVoltageReached, secs(70))
    );
    assert_eq!(s.cvl_target_mv, MilliVolts(49_200), "absorption keeps the bulk target");
}

#[test]
fn bulk_becomes_absorption_when_the_highest_cell_reaches_the_threshold() {
    let mut ctl = controller(nca(), NCA_CELLS);
    feed(&mut ctl, 1, 31, &sample(4_120, 4_000, 48_300, 30_000));
    let s = ctl.status();
    assert_eq!((s.stage, s.stage_reason), (Stage::Absorption, StageReason::CellVoltageReached));
}

#[test]
fn absorption_becomes_float_when_the_cells_converge_at_the_tail_current() {
    let mut ctl = controller(nca(), NCA_CELLS);
    let t = feed(&mut ctl, 1, 31, &converged());
    assert_eq!(ctl.status().stage, Stage::Absorption);
    // Spread too wide, then current too high: no convergence, however long.
    let t = feed(&mut ctl, t, 100, &sample(4_120, 4_098, 49_150, 3_000));
    let t = feed(&mut ctl, t, 100, &sample(4_104, 4_098, 49_150, 6_000));
    assert_eq!(ctl.status().stage, Stage::Absorption);
    let t = feed(&mut ctl, t, 30, &converged());
    assert_eq!(ctl.status().stage, Stage::Absorption, "debounce not yet over");
    ctl.update(secs(t), &converged());
    let s = ctl.status();
    assert_eq!((s.stage, s.stage_reason), (Stage::Float, StageReason::Converged));
    assert_eq!(s.cvl_target_mv, MilliVolts(48_000));
    assert_eq!(s.cvl_mv, MilliVolts(48_000), "the limit falls at once");
    // 4.104 V gives the cell table 307 permille, 30.7 A; float allows 10 A.
    assert_eq!(
        (s.charge_limit_ma, s.charge_reason),
        (MilliAmps(10_000), ChargeLimitReason::FloatStage)
    );
}

#[test]
fn absorption_ends_at_its_timeout_through_handle_timeout() {
    let mut ctl = controller(nca(), NCA_CELLS);
    feed(&mut ctl, 1, 31, &sample(4_130, 4_050, 49_150, 8_000));
    let s = *ctl.status();
    assert_eq!(s.stage, Stage::Absorption);
    let deadline = s.stage_since + cellwarden_core::Duration::from_secs(2 * 3_600);
    assert_eq!(ctl.poll_timeout(), Some(deadline));
    ctl.handle_timeout(Instant::from_micros(deadline.as_micros() - 1));
    assert_eq!(ctl.status().stage, Stage::Absorption, "early is harmless");
    ctl.handle_timeout(deadline);
    ctl.handle_timeout(deadline);
    let s = ctl.status();
    assert_eq!((s.stage, s.stage_reason), (Stage::Float, StageReason::AbsorptionTimeout));
    assert_eq!(s.cvl_mv, MilliVolts(48_000));
    assert_eq!(s.charge_limit_ma, MilliAmps(10_000), "float cap applied without a new sample");
    assert_eq!(ctl.poll_timeout(), None, "no float time limit, no periodic full charge");
}

#[test]
fn float_goes_back_to_bulk_when_the_pack_voltage_stays_low_and_the_limit_ramps_up() {
    let mut ctl = controller(nca(), NCA_CELLS);
    let t = to_float(&mut ctl);
    let low = sample(3_950, 3_930, 47_300, -20_000);
    let t = feed(&mut ctl, t, 10, &low);
    let t = feed(&mut ctl, t, 1, &sample(3_990, 3_980, 47_900, 0)); // recovers: debounce restarts
    let t = feed(&mut ctl, t, 30, &low);
    assert_eq!(ctl.status().stage, Stage::Float);
    ctl.update(secs(t), &low);
    let s = *ctl.status();
    assert_eq!((s.stage, s.stage_reason), (Stage::Bulk, StageReason::PackVoltageLow));
    assert_eq!(s.cvl_target_mv, MilliVolts(49_200));
    // No jump up on the stage change: one second of ramp at 12 mV/s.
    assert_eq!((s.cvl_mv, s.cvl_reason), (MilliVolts(48_012), CvlReason::Ramp));
    ctl.update(secs(t + 1), &low);
    assert_eq!(ctl.status().cvl_mv, MilliVolts(48_024));
    feed(&mut ctl, t + 2, 98, &low);
    assert_eq!(
        (ctl.status().cvl_mv, ctl.status().cvl_reason),
        (MilliVolts(49_200), CvlReason::Target)
    );
}

#[test]
fn float_goes_back_to_bulk_at_once_when_the_soc_falls_below_the_rebulk_soc() {
    let mut ctl = controller(nca(), NCA_CELLS);
    let t = to_float(&mut ctl);
    let mut s = sample(4_000, 3_990, 48_000, 0);
    s.soc = Some(Permille(900));
    ctl.update(secs(t), &s);
    assert_eq!(ctl.status().stage, Stage::Float);
    s.soc = Some(Permille(899));
    ctl.update(secs(t + 1), &s);
    assert_eq!((ctl.status().stage, ctl.status().stage_reason), (Stage::Bulk, StageReason::SocLow));
}

#[test]
fn float_goes_back_to_bulk_after_its_time_limit() {
    let mut c = nca();
    c.float_max_ms = Some(3_600_000);
    let mut ctl = controller(c, NCA_CELLS);
    to_float(&mut ctl);
    let since = ctl.status().stage_since;
    let deadline = since + cellwarden_core::Duration::from_secs(3_600);
    assert_eq!(ctl.poll_timeout(), Some(deadline));
    ctl.handle_timeout(deadline);
    assert_eq!(
        (ctl.status().stage, ctl.status().stage_reason),
        (Stage::Bulk, StageReason::FloatTimeLimit)
    );
}

#[test]
fn a_periodic_full_charge_raises_the_target_until_an_absorption_ends() {
    let mut ctl = controller(ChargeConfig::lfp_16s(100), LFP_CELLS);
    let week = 7 * 24 * 3_600;
    // Into float: 16 cells at 3.50 V.
    let full = sample(3_505, 3_495, 56_000, 1_000);
    let t = feed(&mut ctl, 1, 70, &full);
    assert_eq!(ctl.status().stage, Stage::Float);
    assert_eq!(ctl.poll_timeout(), Some(secs(week)));
    ctl.update(secs(t), &sample(3_380, 3_370, 54_000, 0));
    ctl.handle_timeout(secs(week));
    let s = *ctl.status();
    assert!(s.full_charge_due);
    assert_eq!((s.stage, s.stage_reason), (Stage::Bulk, StageReason::FullChargeDue));
    assert_eq!(s.cvl_target_mv, MilliVolts(16 * 3_545));
    assert_eq!(ctl.poll_timeout(), None);
    // At the raised target, converged: float again, and the next one is due a week later.
    let at_full = sample(3_548, 3_535, 56_650, 1_000);
    let t = feed(&mut ctl, week + 1, 70, &at_full);
    let s = *ctl.status();
    assert_eq!((s.stage, s.full_charge_due), (Stage::Float, false));
    assert_eq!(
        ctl.poll_timeout(),
        Some(s.stage_since + cellwarden_core::Duration::from_secs(week))
    );
    assert!(secs(t) < s.stage_since + cellwarden_core::Duration::from_secs(week));
}

// ---------------------------------------------------------------------------------------------
// The charge voltage limit

#[test]
fn the_controller_lowers_the_limit_in_proportion_to_the_highest_cells_error() {
    let mut ctl = controller(nca(), NCA_CELLS);
    ctl.update(secs(1), &sample(4_099, 3_990, 48_500, 10_000));
    assert_eq!(
        (ctl.status().cvl_mv, ctl.status().cvl_reason),
        (MilliVolts(49_200), CvlReason::Target)
    );
    // 15 mV below the setpoint: 12 cells * 15 mV * 0.5 = 90 mV above the pack.
    ctl.update(secs(2), &sample(4_130, 3_990, 48_500, 10_000));
    let cell = MilliVolts(4_130);
    assert_eq!(ctl.status().cvl_mv, MilliVolts(48_590));
    assert_eq!(ctl.status().cvl_reason, CvlReason::CellVoltage { cell_max_mv: cell });
    // 3 mV above the setpoint: 18 mV below the pack.
    ctl.update(secs(3), &sample(4_148, 3_990, 48_500, 10_000));
    assert_eq!(ctl.status().cvl_mv, MilliVolts(48_482));
    // Never below the floor (12 * 3.50 V).
    ctl.update(secs(4), &sample(4_149, 2_500, 30_000, 10_000));
    assert_eq!(
        (ctl.status().cvl_mv, ctl.status().cvl_reason),
        (MilliVolts(42_000), CvlReason::Floor)
    );
}

#[test]
fn the_limit_recovers_at_the_ramp_rate_and_a_clock_jump_does_not_release_it() {
    let mut ctl = controller(nca(), NCA_CELLS);
    ctl.update(secs(1), &sample(4_149, 3_990, 45_000, 0));
    assert_eq!(ctl.status().cvl_mv, MilliVolts(44_976));
    let calm = sample(3_990, 3_950, 47_000, 0);
    ctl.update(Instant::from_millis(1_500), &calm);
    assert_eq!(ctl.status().cvl_mv, MilliVolts(44_982));
    ctl.update(Instant::from_millis(1_750), &calm);
    ctl.update(Instant::from_millis(2_000), &calm);
    assert_eq!(ctl.status().cvl_mv, MilliVolts(44_988), "fractions of a mV carry over");
    ctl.update(secs(100_000), &calm);
    assert_eq!(ctl.status().cvl_mv, MilliVolts(44_988 + 720), "one step counts as one minute");
}

/// A 12-cell NCA string charged by an obedient charger at the controller's limits, one cell
/// with 80 % of the others' capacity and 3 % more charge, so it runs ahead at the top.
struct Plant {
    soc: [f64; 12],
    capacity_as: [f64; 12],
    current_a: f64,
}

const R_OHM: f64 = 0.0006;

impl Plant {
    fn new() -> Plant {
        let mut capacity_as = [233.0 * 3600.0; 12];
        capacity_as[7] *= 0.8;
        let mut soc = [0.85; 12];
        soc[7] = 0.88;
        Plant { soc, capacity_as, current_a: 0.0 }
    }
    fn ocv(soc: f64) -> f64 {
        3.0 + 1.2 * soc
    }
    fn cell_v(&self, i: usize) -> f64 {
        Plant::ocv(self.soc[i]) + self.current_a * R_OHM
    }
    /// The charger holds the pack at or below `cvl` and the current at or below the limit; a
    /// load may draw `load_a` instead.
    fn step(&mut self, cvl_mv: i32, limit_ma: i32, load_a: f64) {
        let ocv_sum: f64 = self.soc.iter().map(|&s| Plant::ocv(s)).sum();
        let cv_current = (f64::from(cvl_mv) / 1000.0 - ocv_sum) / (12.0 * R_OHM);
        self.current_a = if load_a > 0.0 {
            -load_a
        } else {
            cv_current.min(f64::from(limit_ma) / 1000.0).max(0.0)
        };
        for i in 0..12 {
            self.soc[i] += self.current_a / self.capacity_as[i];
        }
    }
    fn input(&self) -> ChargeInput {
        let mv: Vec<i32> = (0..12).map(|i| (self.cell_v(i) * 1000.0).round() as i32).collect();
        let pack = (0..12).map(|i| self.cell_v(i)).sum::<f64>();
        ChargeInput {
            cell_max_mv: MilliVolts(*mv.iter().max().unwrap()),
            cell_min_mv: MilliVolts(*mv.iter().min().unwrap()),
            pack_mv: MilliVolts((pack * 1000.0).round() as i32),
            current_ma: MilliAmps((self.current_a * 1000.0).round() as i32),
            temperature_min_dc: DeciCelsius(250),
            temperature_max_dc: DeciCelsius(250),
            soc: None,
        }
    }
}

#[test]
fn a_cell_running_ahead_settles_within_10_mv_below_its_maximum_and_never_exceeds_it() {
    let mut c = nca();
    c.absorption_timeout_ms = 24 * 3_600 * 1_000; // keep absorbing: this test is about the CVL
    let cell_max = c.cell_max_mv.0;
    let target = 12 * c.absorption_cell_mv.0;
    let mut ctl = controller(c, NCA_CELLS);
    let mut plant = Plant::new();
    let mut last_outside = 0;
    for t in 0..6 * 3_600u64 {
        let input = plant.input();
        ctl.update(secs(t), &input);
        let h = input.cell_max_mv.0;
        assert!(h <= cell_max, "t={t}s: highest cell {h} mV above {cell_max} mV");
        if h < cell_max - 10 {
            last_outside = t;
        }
        let s = ctl.status();
        plant.step(s.cvl_mv.0, s.charge_limit_ma.0, 0.0);
    }
    // Settled: within 10 mV below the maximum from about 40 minutes on, until the end.
    assert!(last_outside < 3_000, "still outside the 10 mV band at {last_outside} s");
    assert!(ctl.status().cvl_mv.0 < target, "the limit is below the target");
    assert!(matches!(ctl.status().cvl_reason, CvlReason::CellVoltage { .. }));

    // A load pulls the highest cell out of the band; the limit climbs back at the ramp only.
    let mut previous = ctl.status().cvl_mv.0;
    let mut reached = None;
    for t in 6 * 3_600..8 * 3_600u64 {
        let load = if t < 6 * 3_600 + 600 { 80.0 } else { 0.0 };
        let input = plant.input();
        ctl.update(secs(t), &input);
        let cvl = ctl.status().cvl_mv.0;
        assert!(cvl - previous <= 12, "t={t}s: limit jumped up from {previous} to {cvl}");
        previous = cvl;
        if cvl == target && reached.is_none() {
            reached = Some(t);
        }
        if load == 0.0 {
            let s = ctl.status();
            plant.step(s.cvl_mv.0, s.charge_limit_ma.0, 0.0);
        } else {
            plant.step(0, 0, load);
        }
        assert!(plant.input().cell_max_mv.0 <= cell_max);
    }
    assert!(reached.is_some(), "the limit recovered to the target during the load");
}

// ---------------------------------------------------------------------------------------------
// Properties

fn preset(lfp: bool) -> ChargeConfig {
    if lfp { ChargeConfig::lfp_16s(100) } else { ChargeConfig::tesla_model_s(16) }
}

/// Limits after one update with `input` on a fresh controller.
fn one_update(config: &ChargeConfig, cells: u16, input: &ChargeInput) -> (i32, i32) {
    let mut ctl = ChargeController::new(config.clone(), cells, Instant::ZERO).unwrap();
    ctl.update(secs(1), input);
    (ctl.status().charge_limit_ma.0, ctl.status().discharge_limit_ma.0)
}

fn hostile_input() -> impl Strategy<Value = ChargeInput> {
    (any::<[i32; 6]>(), proptest::option::of(any::<u16>()), any::<bool>()).prop_map(
        |(v, soc, wild)| {
            let f = |x: i32, m: i32| if wild { x } else { x.rem_euclid(m) };
            ChargeInput {
                cell_max_mv: MilliVolts(f(v[0], 5_000)),
                cell_min_mv: MilliVolts(f(v[1], 5_000)),
                pack_mv: MilliVolts(f(v[2], 500_000)),
                current_ma: MilliAmps(v[3]),
                temperature_min_dc: DeciCelsius(f(v[4], 600) - 200),
                temperature_max_dc: DeciCelsius(f(v[5], 600) - 200),
                soc: soc.map(Permille),
            }
        },
    )
}

/// Where a temperature table's first plateau at full current begins.
fn plateau_start(t: &Table) -> i32 {
    t.points().iter().find(|p| p.y == Permille::FULL).map(|p| p.x).unwrap()
}

proptest! {
    #[test]
    fn a_higher_highest_cell_never_allows_more_charge_current(
        lfp in any::<bool>(), input in any_input(), up in 0i32..500,
    ) {
        let c = preset(lfp);
        let mut higher = input;
        higher.cell_max_mv = MilliVolts(input.cell_max_mv.0 + up);
        prop_assert!(one_update(&c, preset_cells(lfp), &higher).0 <= one_update(&c, preset_cells(lfp), &input).0);
    }

    #[test]
    fn a_lower_lowest_cell_never_allows_more_discharge_current(
        lfp in any::<bool>(), input in any_input(), down in 0i32..500,
    ) {
        let c = preset(lfp);
        let mut lower = input;
        lower.cell_min_mv = MilliVolts(input.cell_min_mv.0 - down);
        prop_assert!(one_update(&c, preset_cells(lfp), &lower).1 <= one_update(&c, preset_cells(lfp), &input).1);
    }

    #[test]
    fn colder_never_allows_more_charge_current_below_the_plateau(
        lfp in any::<bool>(), input in any_input(), a in -400i32..300, b in -400i32..300,
    ) {
        let c = preset(lfp);
        let top = plateau_start(&c.charge_by_temperature_dc);
        let (cold, warm) = (a.min(b).min(top), a.max(b).min(top));
        let at = |t: i32| {
            let mut i = input;
            i.temperature_min_dc = DeciCelsius(t);
            i.temperature_max_dc = DeciCelsius(t);
            one_update(&c, preset_cells(lfp), &i).0
        };
        prop_assert!(at(cold) <= at(warm), "{cold} dC allows more than {warm} dC");
    }

    #[test]
    fn a_colder_coldest_sensor_never_allows_more_current_either_way(
        lfp in any::<bool>(), input in any_input(), down in 0i32..300,
    ) {
        let c = preset(lfp);
        let mut colder = input;
        colder.temperature_min_dc = DeciCelsius(input.temperature_min_dc.0 - down);
        let (ch, dis) = one_update(&c, preset_cells(lfp), &colder);
        let (ch0, dis0) = one_update(&c, preset_cells(lfp), &input);
        prop_assert!(ch <= ch0 && dis <= dis0);
    }

    #[test]
    fn hostile_sequences_never_panic_and_never_exceed_the_configuration(
        lfp in any::<bool>(),
        steps in proptest::collection::vec((hostile_input(), -5_000i64..200_000, any::<bool>()), 1..60),
    ) {
        let c = preset(lfp);
        let n = i32::from(preset_cells(lfp));
        let ceiling = n * c.full_charge_cell_mv.0;
        let floor = n * c.cvl_floor_cell_mv.0;
        let mut ctl = ChargeController::new(c.clone(), preset_cells(lfp), Instant::ZERO).unwrap();
        let mut t: i64 = 0;
        for (input, dt_ms, timeout) in steps {
            t = (t + dt_ms).max(0);
            let now = Instant::from_millis(t as u64);
            if timeout { ctl.handle_timeout(now) } else { ctl.update(now, &input) }
            let s = ctl.status();
            prop_assert!((0..=c.charge_current_max_ma.0).contains(&s.charge_limit_ma.0));
            prop_assert!((0..=c.discharge_current_max_ma.0).contains(&s.discharge_limit_ma.0));
            prop_assert!(s.cvl_mv.0 >= floor && s.cvl_mv.0 <= ceiling, "{:?}", s);
            prop_assert!(s.cvl_mv <= s.cvl_target_mv.max(MilliVolts(n * c.absorption_cell_mv.0)));
        }
    }

    #[test]
    fn the_limit_never_rises_faster_than_the_ramp(
        steps in proptest::collection::vec((any_input(), 0u64..5_000), 1..80),
    ) {
        let c = preset(false);
        let ramp = u64::from(c.cvl_ramp_mv_per_s);
        let mut ctl = ChargeController::new(c, preset_cells(false), Instant::ZERO).unwrap();
        let mut t = 0u64;
        let mut previous = ctl.status().cvl_mv.0;
        let mut budget = 0u64; // mV * ms allowed so far, since the limit was last lowered
        for (input, dt) in steps {
            t += dt;
            ctl.update(Instant::from_millis(t), &input);
            let cvl = ctl.status().cvl_mv.0;
            budget += ramp * dt;
            if cvl > previous {
                let rise = u64::try_from(cvl - previous).unwrap();
                prop_assert!(rise * 1_000 <= budget, "rose {rise} mV with {budget} mV*ms");
                budget -= rise * 1_000;
            } else if cvl < previous {
                budget = 0;
            }
            previous = cvl;
        }
    }
}
