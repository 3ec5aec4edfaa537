//! The charge controller's current limits over time: the recovery ramp (falls at once, rises at
//! its rate, carries allowance below one mA, one step counts for at most a minute, only data
//! raises a limit, time going back releases nothing), the hysteresis of the cell-voltage
//! tables (and the float-stage flapping it stops), absorption going back to bulk when the pack
//! loses its voltage, the validation of the new fields, and property tests that compare
//! controllers given the same history.
//!
//! The stories use the 16S 100 Ah LFP preset: 50 A charge and 100 A discharge at most, both
//! ramping at 10 A/s; the charge table falls from 3.40 V (full) to 3.55 V (zero), a third of an
//! ampere per mV; the discharge table rises from 2.90 V (zero) to 3.10 V (full); a hysteresis of
//! 10 mV on both; a bulk target of 56.0 V, re-bulk below 52.8 V, 30 s debounces.

use cellwarden_core::charge::{
    ChargeConfig, ChargeController, ChargeInput, ChargeLimitReason, ChargeProblem, LimitTable,
    MAX_RAMP_MA_PER_S, Stage, StageReason,
};
use cellwarden_core::{Config, DeciCelsius, Duration, Instant, MilliVolts, Problem};
use proptest::prelude::*;

mod charge_common;
use charge_common::{LFP_CELLS, any_input, controller, preset_cells, sample, secs};

fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

fn lfp() -> ChargeConfig {
    ChargeConfig::lfp_16s(100)
}

/// Mid-charge on the plateau, far from every table's taper.
fn calm() -> ChargeInput {
    sample(3_320, 3_300, 53_000, 10_000)
}

fn charge(ctl: &ChargeController) -> (i32, ChargeLimitReason) {
    (ctl.status().charge_limit_ma.0, ctl.status().charge_reason)
}

fn discharge(ctl: &ChargeController) -> (i32, ChargeLimitReason) {
    (ctl.status().discharge_limit_ma.0, ctl.status().discharge_reason)
}

fn table(table: LimitTable, input: i32) -> ChargeLimitReason {
    ChargeLimitReason::Table { table, input }
}

fn at_max(mv: i32) -> ChargeLimitReason {
    ChargeLimitReason::CellAtMaximum { cell_max_mv: MilliVolts(mv) }
}

const FULL: ChargeLimitReason = ChargeLimitReason::ConfiguredMaximum;
const RAMP: ChargeLimitReason = ChargeLimitReason::Ramp;

// ---------------------------------------------------------------------------------------------
// The ramp

#[test]
fn the_charge_limit_falls_at_once_and_climbs_back_at_its_ramp_rate() {
    let mut ctl = controller(lfp(), LFP_CELLS);
    ctl.update(ms(0), &calm());
    assert_eq!(charge(&ctl), (50_000, FULL));
    // 3.50 V: 1000 - 100/150 of 1000, rounded down, is 333 permille of 50 A.
    ctl.update(ms(100), &sample(3_500, 3_300, 53_000, 10_000));
    assert_eq!(charge(&ctl), (16_650, table(LimitTable::ChargeByCellMax, 3_500)));
    // Back on the plateau: 1 A per 100 ms sample at 10 A/s, until the maximum.
    for n in 1..=33 {
        ctl.update(ms(100 + 100 * n), &calm());
        assert_eq!(charge(&ctl), (16_650 + 1_000 * n as i32, RAMP), "sample {n}");
    }
    ctl.update(ms(3_500), &calm());
    assert_eq!(charge(&ctl), (50_000, FULL));
    assert_eq!(discharge(&ctl), (100_000, FULL), "the discharge limit never moved");
}

#[test]
fn the_ramp_ends_where_the_tables_bind_and_falls_again_at_once() {
    let mut ctl = controller(lfp(), LFP_CELLS);
    ctl.update(secs(0), &calm());
    ctl.update(ms(100), &sample(3_550, 3_300, 53_000, 0));
    assert_eq!(charge(&ctl), (0, at_max(3_550)));
    // 3.475 V read as 3.485 V through the hysteresis: 433 permille, 21.65 A.
    let lower = sample(3_475, 3_300, 53_000, 0);
    for n in 1..=21 {
        ctl.update(ms(100 + 100 * n), &lower);
        assert_eq!(charge(&ctl), (1_000 * n as i32, RAMP), "sample {n}");
    }
    ctl.update(ms(2_300), &lower);
    assert_eq!(charge(&ctl), (21_650, table(LimitTable::ChargeByCellMax, 3_485)));
    // Climbing again, a temperature cut drops it at once: 5 °C is 266 permille, 13.3 A.
    ctl.update(ms(2_400), &calm());
    assert_eq!(charge(&ctl), (22_650, RAMP));
    let mut cold = calm();
    cold.temperature_min_dc = DeciCelsius(50);
    ctl.update(ms(2_500), &cold);
    assert_eq!(charge(&ctl), (13_300, table(LimitTable::ChargeByTemperature, 50)));
}

#[test]
fn the_discharge_limit_ramps_back_too() {
    let mut ctl = controller(lfp(), LFP_CELLS);
    ctl.update(secs(0), &calm());
    // The lowest cell at 3.00 V: half of 100 A.
    ctl.update(secs(1), &sample(3_050, 3_000, 48_500, -60_000));
    assert_eq!(discharge(&ctl), (50_000, table(LimitTable::DischargeByCellMin, 3_000)));
    for n in 1..=4 {
        ctl.update(secs(1 + n), &calm());
        assert_eq!(discharge(&ctl), (50_000 + 10_000 * n as i32, RAMP), "second {n}");
    }
    ctl.update(secs(6), &calm());
    assert_eq!(discharge(&ctl), (100_000, FULL));
}

#[test]
fn allowance_below_one_milliamp_carries_over_to_the_next_step() {
    let mut c = lfp();
    c.charge_ramp_ma_per_s = 1_500;
    let mut ctl = controller(c, LFP_CELLS);
    ctl.update(secs(1), &sample(3_550, 3_300, 53_000, 0));
    assert_eq!(charge(&ctl), (0, at_max(3_550)));
    // Samples 500 µs apart allow 0.75 mA each: 0, 1, 2, 3 mA after four.
    let start = secs(1).as_micros();
    let mut seen = Vec::new();
    for n in 1..=2_000u64 {
        ctl.update(Instant::from_micros(start + 500 * n), &calm());
        if n <= 4 {
            seen.push(charge(&ctl).0);
        }
    }
    assert_eq!(seen, [0, 1, 2, 3]);
    assert_eq!(charge(&ctl), (1_500, RAMP), "one second at 1.5 A/s, nothing lost");
}

#[test]
fn one_step_counts_for_at_most_a_minute_of_ramp() {
    let mut c = lfp();
    c.charge_ramp_ma_per_s = 100;
    let mut ctl = controller(c, LFP_CELLS);
    ctl.update(secs(1), &sample(3_550, 3_300, 53_000, 0));
    assert_eq!(charge(&ctl), (0, at_max(3_550)));
    // An hour without a sample (or a clock that jumped) counts as one minute at 0.1 A/s.
    ctl.update(secs(3_601), &calm());
    assert_eq!(charge(&ctl), (6_000, RAMP));
    ctl.update(secs(3_602), &calm());
    assert_eq!(charge(&ctl), (6_100, RAMP));
}

#[test]
fn time_going_backwards_does_not_release_the_ramp() {
    let mut ctl = controller(lfp(), LFP_CELLS);
    ctl.update(secs(10), &calm());
    ctl.update(secs(11), &sample(3_550, 3_300, 53_000, 0));
    assert_eq!(charge(&ctl), (0, at_max(3_550)));
    ctl.update(secs(5), &calm());
    assert_eq!(charge(&ctl), (0, RAMP), "no time passed");
    ctl.handle_timeout(secs(2));
    assert_eq!(charge(&ctl), (0, RAMP));
    assert_eq!(ctl.status().counters.time_went_back, 2);
    ctl.update(ms(11_500), &calm());
    assert_eq!(charge(&ctl), (5_000, RAMP), "half a second since the latest time seen");
}

#[test]
fn handle_timeout_never_raises_a_limit() {
    let mut c = lfp();
    c.float_max_ms = Some(60_000);
    let mut ctl = controller(c, LFP_CELLS);
    // Into float: converged at 56.0 V, float from 62 s.
    let full = sample(3_505, 3_495, 56_000, 1_000);
    for t in 1..=70 {
        ctl.update(secs(t), &full);
    }
    assert_eq!(ctl.status().stage, Stage::Float);
    let deadline = ctl.status().stage_since + Duration::from_secs(60);
    assert_eq!(deadline, secs(122));
    let rest = sample(3_380, 3_370, 54_000, 0);
    for t in 71..=121 {
        ctl.update(secs(t), &rest);
    }
    assert_eq!(charge(&ctl), (5_000, ChargeLimitReason::FloatStage));
    // Float ends by time alone: bulk allows 50 A, but only data raises the limit.
    assert_eq!(ctl.poll_timeout(), Some(deadline));
    ctl.handle_timeout(deadline);
    let s = *ctl.status();
    assert_eq!((s.stage, s.stage_reason), (Stage::Bulk, StageReason::FloatTimeLimit));
    assert_eq!(charge(&ctl), (5_000, RAMP));
    ctl.handle_timeout(ms(122_500));
    ctl.handle_timeout(ms(122_500));
    assert_eq!(charge(&ctl), (5_000, RAMP));
    // The next sample ramps by the time since the previous sample: 2 s at 10 A/s.
    ctl.update(secs(123), &rest);
    assert_eq!(charge(&ctl), (25_000, RAMP));
    for t in 124..=126 {
        ctl.update(secs(t), &rest);
    }
    assert_eq!(charge(&ctl), (50_000, FULL));
}

#[test]
fn the_first_sample_sets_the_limits_at_once_and_one_after_a_rejected_sample_ramps() {
    // A rejected sample first: the first plausible one still counts as the first.
    let mut ctl = controller(lfp(), LFP_CELLS);
    let mut bad = calm();
    bad.cell_min_mv = MilliVolts(3_400); // above the highest cell
    ctl.update(secs(1), &bad);
    assert_eq!(charge(&ctl), (0, ChargeLimitReason::InputRejected));
    ctl.update(secs(2), &calm());
    assert_eq!((charge(&ctl), discharge(&ctl)), ((50_000, FULL), (100_000, FULL)));
    // While running, a rejected sample zeroes both; the next plausible one ramps from zero.
    ctl.update(secs(3), &bad);
    assert_eq!(discharge(&ctl), (0, ChargeLimitReason::InputRejected));
    ctl.update(ms(3_500), &calm());
    assert_eq!((charge(&ctl), discharge(&ctl)), ((5_000, RAMP), (5_000, RAMP)));
    ctl.update(secs(8), &calm());
    assert_eq!((charge(&ctl), discharge(&ctl)), ((50_000, FULL), (50_000, RAMP)));
    ctl.update(ms(13_500), &calm());
    assert_eq!(discharge(&ctl), (100_000, FULL));
}

// ---------------------------------------------------------------------------------------------
// The hysteresis of the cell-voltage tables

#[test]
fn the_cell_tables_follow_a_worse_cell_at_once_and_a_better_one_by_the_hysteresis() {
    let mut ctl = controller(lfp(), LFP_CELLS);
    let by_high = |mv| table(LimitTable::ChargeByCellMax, mv);
    let high = |mv| sample(mv, 3_300, 53_000, 0);
    ctl.update(secs(1), &high(3_540));
    assert_eq!(charge(&ctl), (3_300, by_high(3_540)));
    ctl.update(secs(2), &high(3_533));
    assert_eq!(charge(&ctl), (3_300, by_high(3_540)), "7 mV down");
    ctl.update(secs(3), &high(3_542));
    assert_eq!(charge(&ctl), (2_650, by_high(3_542)), "up at once");
    ctl.update(secs(4), &high(3_532));
    assert_eq!(charge(&ctl), (2_650, by_high(3_542)), "10 mV down");
    ctl.update(secs(5), &high(3_525));
    assert_eq!(charge(&ctl), (5_000, by_high(3_535)), "held 10 mV above");
    // The cut at the maximum holds until the cell is more than 10 mV below it.
    ctl.update(secs(6), &high(3_550));
    assert_eq!(charge(&ctl), (0, at_max(3_550)));
    ctl.update(secs(7), &high(3_540));
    assert_eq!(charge(&ctl), (0, at_max(3_550)));
    ctl.update(secs(8), &high(3_539));
    assert_eq!(charge(&ctl), (300, by_high(3_549)));

    // The lowest cell the other way round.
    let by_low = |mv| table(LimitTable::DischargeByCellMin, mv);
    let low = |mv| sample(3_300, mv, 50_000, -10_000);
    ctl.update(secs(9), &low(3_000));
    assert_eq!(discharge(&ctl), (50_000, by_low(3_000)));
    ctl.update(secs(10), &low(3_010));
    assert_eq!(discharge(&ctl), (50_000, by_low(3_000)));
    ctl.update(secs(11), &low(3_020));
    assert_eq!(discharge(&ctl), (55_000, by_low(3_010)));
    ctl.update(secs(12), &low(2_990));
    assert_eq!(discharge(&ctl), (45_000, by_low(2_990)));
}

/// Charge-limit changes over 20 s of samples every 100 ms in float, with the highest cell read
/// at 3.546..3.550 V in a fixed pseudo-random order (the 16S rack that flapped).
fn float_flapping(hysteresis_mv: i32) -> usize {
    let mut c = lfp();
    c.cell_table_hysteresis_mv = MilliVolts(hysteresis_mv);
    let mut ctl = controller(c, LFP_CELLS);
    let full = sample(3_505, 3_495, 56_000, 1_000);
    for t in 1..=70 {
        ctl.update(secs(t), &full);
    }
    assert_eq!(ctl.status().stage, Stage::Float);
    let noise = [3_549, 3_547, 3_550, 3_548, 3_546, 3_549, 3_548, 3_550, 3_547, 3_549, 3_546];
    let mut changes = 0;
    let mut last = charge(&ctl).0;
    for n in 0..200u64 {
        let high = noise[(n as usize * 7) % noise.len()];
        ctl.update(ms(71_000 + 100 * n), &sample(high, 3_420, 55_500, 0));
        let now = charge(&ctl).0;
        changes += usize::from(now != last);
        last = now;
        assert!(now <= 5_000, "float cap: {now} mA");
    }
    changes
}

#[test]
fn a_noisy_highest_cell_at_the_top_of_the_table_no_longer_flaps_the_charge_limit() {
    // Without hysteresis every millivolt is 0.33 A, and the ramp (1 A per 100 ms) lets each of
    // those small steps through: the limit changes with most samples.
    let without = float_flapping(0);
    assert!(without > 100, "{without} changes without hysteresis");
    // With the preset's 10 mV: it falls to the first peak, drops to zero at 3.550 V, and stays.
    let with = float_flapping(10);
    assert!(with <= 2, "{with} changes with hysteresis");
}

// ---------------------------------------------------------------------------------------------
// Absorption back to bulk

/// A controller in absorption since 31 s (pack at its target); returns it.
fn absorbing() -> ChargeController {
    let mut ctl = controller(lfp(), LFP_CELLS);
    for t in 1..=31 {
        ctl.update(secs(t), &sample(3_505, 3_480, 56_000, 20_000));
    }
    let s = ctl.status();
    assert_eq!((s.stage, s.stage_reason), (Stage::Absorption, StageReason::PackVoltageReached));
    ctl
}

#[test]
fn absorption_goes_back_to_bulk_when_the_pack_voltage_stays_below_the_rebulk_voltage() {
    let mut ctl = absorbing();
    // A load pulls the pack to 52.5 V, below 16 * 3.30 V.
    let sagged = sample(3_300, 3_250, 52_500, -40_000);
    let back = sample(3_420, 3_400, 54_500, 0);
    for t in 32..42 {
        ctl.update(secs(t), &sagged);
    }
    ctl.update(secs(42), &back); // a dip of 10 s: the debounce starts over
    for t in 43..73 {
        ctl.update(secs(t), &sagged);
    }
    assert_eq!(ctl.status().stage, Stage::Absorption, "29 s below");
    ctl.update(secs(73), &sagged);
    let s = *ctl.status();
    assert_eq!(
        (s.stage, s.stage_reason, s.stage_since),
        (Stage::Bulk, StageReason::PackVoltageLow, secs(73))
    );
    assert_eq!(s.cvl_target_mv, MilliVolts(56_000), "bulk keeps the target");
    // Back at the target, a new absorption with a new timeout.
    for t in 74..=104 {
        ctl.update(secs(t), &sample(3_505, 3_480, 56_000, 20_000));
    }
    let s = *ctl.status();
    assert_eq!((s.stage, s.stage_since), (Stage::Absorption, secs(104)));
    assert_eq!(ctl.poll_timeout(), Some(secs(104 + 2 * 3_600)));
}

#[test]
fn absorption_stays_while_the_highest_cell_would_end_bulk_at_once() {
    let mut ctl = absorbing();
    // The pack is low but one cell is above 3.52 V: bulk would come straight back.
    for t in 32..200 {
        ctl.update(secs(t), &sample(3_525, 3_200, 52_500, -5_000));
    }
    let s = *ctl.status();
    assert_eq!((s.stage, s.stage_since), (Stage::Absorption, secs(31)));
}

// ---------------------------------------------------------------------------------------------
// Configuration

/// One change to a configuration.
type Change = fn(&mut ChargeConfig);

#[test]
fn the_new_fields_are_validated_with_their_names() {
    let c = lfp();
    assert_eq!((c.charge_ramp_ma_per_s, c.discharge_ramp_ma_per_s), (10_000, 10_000));
    assert_eq!(c.cell_table_hysteresis_mv, MilliVolts(10));
    let t = ChargeConfig::tesla_model_s(16);
    assert_eq!((t.charge_ramp_ma_per_s, t.discharge_ramp_ma_per_s), (20_000, 20_000));
    assert_eq!(ChargeConfig::lfp_16s(u16::MAX).charge_ramp_ma_per_s, MAX_RAMP_MA_PER_S);
    assert_eq!(ChargeConfig::lfp_16s(u16::MAX).validate(), Ok(()));

    let out = |value: i64, min: i64, max: i64| {
        ChargeProblem::Value(Problem::OutOfRange { value, min, max })
    };
    let max = i64::from(MAX_RAMP_MA_PER_S);
    let cases: [(Change, &str, ChargeProblem); 6] = [
        (|c| c.charge_ramp_ma_per_s = 0, "charge_ramp_ma_per_s", out(0, 1, max)),
        (|c| c.charge_ramp_ma_per_s = 1_000_001, "charge_ramp_ma_per_s", out(1_000_001, 1, max)),
        (|c| c.discharge_ramp_ma_per_s = 0, "discharge_ramp_ma_per_s", out(0, 1, max)),
        (
            |c| c.discharge_ramp_ma_per_s = u32::MAX,
            "discharge_ramp_ma_per_s",
            out(u32::MAX.into(), 1, max),
        ),
        (
            |c| c.cell_table_hysteresis_mv = MilliVolts(-1),
            "cell_table_hysteresis_mv",
            out(-1, 0, 100),
        ),
        (
            |c| c.cell_table_hysteresis_mv = MilliVolts(101),
            "cell_table_hysteresis_mv",
            out(101, 0, 100),
        ),
    ];
    for (change, field, problem) in cases {
        let mut c = lfp();
        change(&mut c);
        let e = c.validate().unwrap_err();
        assert_eq!((e.field, e.problem), (field, problem));
        assert!(ChargeController::new(c.clone(), LFP_CELLS, Instant::ZERO).is_err());
        let config = Config { charge: Some(c), ..Config::lfp_16s(100) };
        let e = config.validate().unwrap_err();
        assert_eq!((e.field, e.part), ("charge", Some(field)));
    }
    let edges: [(Change, &str); 4] = [
        (|c| c.charge_ramp_ma_per_s = 1, "slowest"),
        (|c| c.discharge_ramp_ma_per_s = MAX_RAMP_MA_PER_S, "fastest"),
        (|c| c.cell_table_hysteresis_mv = MilliVolts(0), "no hysteresis"),
        (|c| c.cell_table_hysteresis_mv = MilliVolts(100), "widest"),
    ];
    for (change, ok) in edges {
        let mut c = lfp();
        change(&mut c);
        assert_eq!(c.validate(), Ok(()), "{ok}");
    }
}

// ---------------------------------------------------------------------------------------------
// Properties

fn preset(lfp: bool) -> ChargeConfig {
    let mut c = if lfp { ChargeConfig::lfp_16s(100) } else { ChargeConfig::tesla_model_s(16) };
    // No stage change within a history: only float changes a current limit, and two histories
    // that differ in one cell could otherwise be in different stages.
    c.stage_debounce_ms = 3_600_000;
    c
}

/// A history: samples with the time since the previous one, in µs.
fn history() -> impl Strategy<Value = Vec<(ChargeInput, u64)>> {
    proptest::collection::vec((any_input(), 0u64..3_000_000), 1..60)
}

/// The limits after each sample of `steps`, each changed by `change`, on a fresh controller.
fn run(
    config: &ChargeConfig,
    cells: u16,
    steps: &[(ChargeInput, u64)],
    change: impl Fn(&mut ChargeInput),
) -> Vec<(i32, i32)> {
    let mut ctl = ChargeController::new(config.clone(), cells, Instant::ZERO).unwrap();
    let mut t = 0;
    let mut out = Vec::new();
    for (input, dt) in steps {
        t += dt;
        let mut input = *input;
        change(&mut input);
        ctl.update(Instant::from_micros(t), &input);
        out.push((ctl.status().charge_limit_ma.0, ctl.status().discharge_limit_ma.0));
    }
    out
}

proptest! {
    #[test]
    fn along_the_same_history_a_higher_highest_cell_never_allows_more_charge_current(
        lfp in any::<bool>(), steps in history(), up in 0i32..300,
    ) {
        let c = preset(lfp);
        let base = run(&c, preset_cells(lfp), &steps, |_| {});
        let higher = run(&c, preset_cells(lfp), &steps, |i| i.cell_max_mv = MilliVolts(i.cell_max_mv.0 + up));
        for (n, (h, b)) in higher.iter().zip(&base).enumerate() {
            prop_assert!(h.0 <= b.0, "sample {n}: {} mA against {} mA", h.0, b.0);
        }
    }

    #[test]
    fn along_the_same_history_a_lower_lowest_cell_never_allows_more_discharge_current(
        lfp in any::<bool>(), steps in history(), down in 0i32..300,
    ) {
        let c = preset(lfp);
        let base = run(&c, preset_cells(lfp), &steps, |_| {});
        let lower = run(&c, preset_cells(lfp), &steps, |i| i.cell_min_mv = MilliVolts(i.cell_min_mv.0 - down));
        for (n, (l, b)) in lower.iter().zip(&base).enumerate() {
            prop_assert!(l.1 <= b.1, "sample {n}: {} mA against {} mA", l.1, b.1);
        }
    }

    #[test]
    fn along_the_same_history_a_colder_coldest_sensor_never_allows_more_current(
        lfp in any::<bool>(), steps in history(), down in 0i32..300,
    ) {
        let c = preset(lfp);
        let base = run(&c, preset_cells(lfp), &steps, |_| {});
        let colder = run(&c, preset_cells(lfp), &steps, |i| {
            i.temperature_min_dc = DeciCelsius(i.temperature_min_dc.0 - down);
        });
        for (n, (k, b)) in colder.iter().zip(&base).enumerate() {
            prop_assert!(k.0 <= b.0 && k.1 <= b.1, "sample {n}: {k:?} against {b:?}");
        }
    }

    #[test]
    fn current_limits_never_rise_faster_than_their_ramps(
        lfp in any::<bool>(),
        steps in proptest::collection::vec((any_input(), 0u64..3_000_000, any::<bool>()), 1..80),
    ) {
        let c = preset(lfp);
        let rates = [u64::from(c.charge_ramp_ma_per_s), u64::from(c.discharge_ramp_ma_per_s)];
        let mut ctl = ChargeController::new(c, preset_cells(lfp), Instant::ZERO).unwrap();
        let mut t = 0;
        // Allowance so far (mA * µs / s) since each limit last fell, from the first plausible
        // sample on, which sets the limits at once.
        let mut budget: Option<[u64; 2]> = None;
        let mut previous = [0i32; 2];
        for (mut input, dt, reject) in steps {
            t += dt;
            if reject {
                input.cell_min_mv = MilliVolts(input.cell_max_mv.0 + 1);
            }
            ctl.update(Instant::from_micros(t), &input);
            let s = ctl.status();
            let now = [s.charge_limit_ma.0, s.discharge_limit_ma.0];
            if let Some(budget) = &mut budget {
                for k in 0..2 {
                    budget[k] += rates[k] * dt;
                    if now[k] > previous[k] {
                        let rise = u64::try_from(now[k] - previous[k]).unwrap() * 1_000_000;
                        prop_assert!(rise <= budget[k], "limit {k} rose {rise} with {}", budget[k]);
                        budget[k] -= rise;
                    } else if now[k] < previous[k] {
                        budget[k] = 0;
                    }
                }
            } else if !reject {
                budget = Some([0, 0]);
            }
            previous = now;
        }
    }

    #[test]
    fn handle_timeout_never_raises_either_limit(
        lfp in any::<bool>(),
        steps in proptest::collection::vec((any_input(), 0u64..100_000_000, any::<bool>()), 1..60),
    ) {
        let mut c = if lfp { ChargeConfig::lfp_16s(100) } else { ChargeConfig::tesla_model_s(16) };
        c.float_max_ms = Some(60_000);
        c.full_charge_every_ms = Some(120_000);
        let mut ctl = ChargeController::new(c, preset_cells(lfp), Instant::ZERO).unwrap();
        let mut t = 0;
        for (input, dt, timeout) in steps {
            t += dt;
            let now = Instant::from_micros(t);
            let before = *ctl.status();
            if timeout {
                ctl.handle_timeout(now);
                let s = ctl.status();
                prop_assert!(s.charge_limit_ma <= before.charge_limit_ma, "{before:?} -> {s:?}");
                prop_assert!(s.discharge_limit_ma <= before.discharge_limit_ma);
            } else {
                ctl.update(now, &input);
            }
        }
    }
}
