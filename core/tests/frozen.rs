//! Frozen cell readings (`measure/frozen.rs`): a reading that keeps arriving on time but stays
//! exactly the same while current flows and the other cells move counts as stale; a pack at
//! rest never freezes; a reading that moves again thaws and its fault clears on `ClearFaults`.
//!
//! The pack is the 16S 100 Ah LFP preset with the other plausibility rules and the charge
//! controller off (`support::isolated`), measured every 100 ms. Its frozen settings: judged
//! from 2 A, after 20 equal samples, once the median cell has moved 5 mV.

mod common;
mod support;

use cellwarden_core::{
    Command, Config, FaultChange, Location, MilliAmps, MilliVolts, RuleId, SequenceState, Tier,
};
use common::Rig;
use support::{BASE_MV, count, events, isolated, ms};

const PERIOD_MS: u64 = 100;

/// A closed LFP pack measured every 100 ms, all cells at `BASE_MV` and resting for longer
/// than the 2 s freshness limit of the cells, so a reading that freezes now has not moved for
/// longer than that and is stale as soon as it counts as frozen.
fn closed_rig() -> Rig {
    let mut config = isolated(RuleId::CellVoltageStale);
    config.freshness.frozen_move_mv = MilliVolts(5);
    let mut rig = Rig::new(config, BASE_MV);
    rig.period = ms(PERIOD_MS);
    rig.close();
    rig.run(ms(3_000));
    rig
}

/// One measurement cycle after `set` has changed the plant.
fn cycle(rig: &mut Rig, set: impl FnOnce(&mut common::Plant)) {
    set(&mut rig.plant);
    rig.run(ms(PERIOD_MS));
}

fn frozen_cell(rig: &Rig) -> Option<u16> {
    rig.bms.status().summary.cell_frozen
}

fn stale_raised(rig: &Rig) -> usize {
    count(rig, RuleId::CellVoltageStale, Tier::Maximum, FaultChange::Raised)
}

/// A small deterministic noise source: ±`amplitude` mV.
struct Noise(u64);

impl Noise {
    fn next(&mut self, amplitude: i32) -> i32 {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % (2 * amplitude as u64 + 1)) as i32 - amplitude
    }
}

#[test]
fn a_stuck_cell_goes_stale_once_the_others_have_moved_while_current_flows() {
    let mut rig = closed_rig();
    rig.plant.load = MilliAmps(20_000);
    // Every cell but cell 5 rises by 1 mV a cycle; cell 5's reading stays where it was. It has
    // held its value for far more than 20 samples already (the pack rested while closing), so
    // the median's movement decides: 5 mV after 5 cycles.
    for k in 1..=4 {
        cycle(&mut rig, |p| {
            for (i, c) in p.cells.iter_mut().enumerate() {
                if i != 5 {
                    *c = MilliVolts(BASE_MV + k);
                }
            }
        });
        assert_eq!(frozen_cell(&rig), None, "the median has moved {k} mV only");
        assert_eq!(rig.state(), SequenceState::Closed);
    }
    cycle(&mut rig, |p| {
        for (i, c) in p.cells.iter_mut().enumerate() {
            if i != 5 {
                *c = MilliVolts(BASE_MV + 5);
            }
        }
    });
    assert_eq!(frozen_cell(&rig), Some(5));
    assert_eq!(rig.state(), SequenceState::Open, "a frozen reading is stale data");
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellVoltageStale));
    let raised = events(&rig, RuleId::CellVoltageStale, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].location, Location::Cell(5), "names the frozen cell");
    assert!(raised[0].value >= 2_000, "aged from its last movement: {}", raised[0].value);
}

#[test]
fn a_stuck_cell_needs_its_number_of_equal_samples_after_it_last_moved() {
    let mut rig = closed_rig();
    rig.plant.load = MilliAmps(20_000);
    // Cell 5 moves once (an anchor), then freezes; the others jump 20 mV at once and stay.
    cycle(&mut rig, |p| p.cells[5] = MilliVolts(BASE_MV - 1));
    cycle(&mut rig, |p| {
        for (i, c) in p.cells.iter_mut().enumerate() {
            if i != 5 {
                *c = MilliVolts(BASE_MV + 20);
            }
        }
    });
    // That was its first equal sample; the 20th comes 19 cycles later.
    for _ in 0..18 {
        cycle(&mut rig, |_| {});
        assert_eq!(frozen_cell(&rig), None);
    }
    cycle(&mut rig, |_| {});
    assert_eq!(frozen_cell(&rig), Some(5));
    // It counts as sampled when it last moved, 2 s ago: stale now or at the next deadline.
    rig.run(ms(PERIOD_MS));
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellVoltageStale));
}

#[test]
fn without_current_nothing_freezes_however_far_the_others_move() {
    let mut rig = closed_rig();
    rig.plant.load = MilliAmps(1_000); // below the 2 A at which readings must move
    for k in 1..=600 {
        cycle(&mut rig, |p| {
            for (i, c) in p.cells.iter_mut().enumerate() {
                if i != 5 {
                    *c = MilliVolts(BASE_MV + k / 10);
                }
            }
        });
    }
    assert_eq!(frozen_cell(&rig), None);
    assert_eq!(stale_raised(&rig), 0);
    assert_eq!(rig.state(), SequenceState::Closed);
}

/// Hours at rest, with readings exactly still and with noise: nothing freezes, nothing trips.
fn rest_for_hours(noise_mv: i32, open: bool) {
    let mut rig = closed_rig();
    if open {
        rig.command(Command::Stop);
        rig.run(ms(1_000));
        assert_eq!(rig.state(), SequenceState::Open);
    }
    let mut noise = Noise(7);
    // Two hours, and a current reading that wanders below the threshold (an offset).
    for k in 0..72_000 {
        cycle(&mut rig, |p| {
            p.load = MilliAmps(if k % 2 == 0 { 300 } else { -300 });
            for c in &mut p.cells {
                *c = MilliVolts(BASE_MV + noise.next(noise_mv));
            }
        });
    }
    assert_eq!(frozen_cell(&rig), None);
    assert_eq!(stale_raised(&rig), 0);
    assert_eq!(rig.bms.status().latched(), None);
    let expected = if open { SequenceState::Open } else { SequenceState::Closed };
    assert_eq!(rig.state(), expected);
}

#[test]
fn a_pack_at_rest_never_freezes_with_still_readings() {
    rest_for_hours(0, false);
    rest_for_hours(0, true);
}

#[test]
fn a_pack_at_rest_never_freezes_with_noisy_readings() {
    rest_for_hours(2, false);
}

#[test]
fn still_readings_on_the_plateau_while_a_few_cells_climb_the_knee_do_not_freeze() {
    // An LFP pack charging into its top knee, read without noise: three cells shoot up by
    // 300 mV while the other thirteen sit on the flat plateau, unmoved for ten minutes. The
    // mean moves by 56 mV; the median does not move, so nothing is frozen.
    let mut rig = closed_rig();
    rig.plant.load = MilliAmps(20_000);
    for k in 1..=6_000 {
        cycle(&mut rig, |p| {
            for c in &mut p.cells[..3] {
                *c = MilliVolts(BASE_MV + k / 20);
            }
        });
    }
    assert_eq!(frozen_cell(&rig), None);
    assert_eq!(stale_raised(&rig), 0);
    assert_eq!(rig.state(), SequenceState::Closed);
}

#[test]
fn noise_free_cells_that_creep_together_do_not_freeze() {
    // Each cell rises by 1 mV every 7 cycles, at its own phase: at any moment some have just
    // stepped and others are about to. None stays behind by a whole millivolt for long.
    let mut rig = closed_rig();
    rig.plant.load = MilliAmps(50_000);
    for k in 0..3_000 {
        cycle(&mut rig, |p| {
            for (i, c) in p.cells.iter_mut().enumerate() {
                *c = MilliVolts(BASE_MV + (k + i as i32) / 7);
            }
        });
    }
    assert_eq!(frozen_cell(&rig), None);
    assert_eq!(stale_raised(&rig), 0);
}

#[test]
fn a_frozen_reading_that_moves_again_thaws_and_its_fault_clears() {
    let mut rig = closed_rig();
    rig.plant.load = MilliAmps(20_000);
    for k in 1..=5 {
        cycle(&mut rig, |p| {
            for (i, c) in p.cells.iter_mut().enumerate() {
                if i != 5 {
                    *c = MilliVolts(BASE_MV + k);
                }
            }
        });
    }
    assert_eq!(frozen_cell(&rig), Some(5));
    assert_eq!(rig.state(), SequenceState::Open);
    // Still frozen: the fault stays.
    rig.command(Command::ClearFaults);
    assert_eq!(count(&rig, RuleId::CellVoltageStale, Tier::Maximum, FaultChange::ClearRefused), 1);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellVoltageStale));
    // The board works again: its reading moves, it is fresh, the fault clears.
    cycle(&mut rig, |p| p.cells[5] = MilliVolts(BASE_MV + 4));
    assert_eq!(frozen_cell(&rig), None);
    rig.command(Command::ClearFaults);
    assert_eq!(rig.bms.status().latched(), None);
    rig.close();
    assert_eq!(rig.state(), SequenceState::Closed);
}

#[test]
fn a_frozen_reading_stops_balancing_like_stale_data() {
    let mut config = isolated(RuleId::CellVoltageStale);
    config.freshness.frozen_move_mv = MilliVolts(5);
    // Balance whatever the current, so that only the frozen reading can stop it.
    config.balance.idle_only = false;
    let mut rig = Rig::new(config, BASE_MV);
    rig.period = ms(PERIOD_MS);
    rig.close();
    rig.plant.load = MilliAmps(20_000);
    for k in 1..=5 {
        cycle(&mut rig, |p| {
            for (i, c) in p.cells.iter_mut().enumerate() {
                if i != 5 {
                    *c = MilliVolts(BASE_MV + 200 + k);
                }
            }
        });
    }
    assert_eq!(frozen_cell(&rig), Some(5));
    let balance = rig.bms.status().balance;
    assert!(balance.cells.is_empty(), "{balance:?}");
}

#[test]
fn every_reading_still_while_the_pack_voltage_moves_freezes_them_all() {
    // The only board of the pack stops converting: the median is frozen with the cells, and the
    // pack voltage sensor is the witness. 16 cells × 5 mV = 80 mV of pack movement.
    let mut rig = closed_rig();
    rig.plant.load = MilliAmps(20_000);
    let pack = rig.plant.pack_mv().0;
    // The readings move one last time, then stop.
    cycle(&mut rig, |p| {
        p.cells.iter_mut().for_each(|c| c.0 += 1);
        p.pack_override = Some(MilliVolts(pack));
    });
    for k in 1..=25 {
        cycle(&mut rig, |p| p.pack_override = Some(MilliVolts(pack + 10 * k)));
        if rig.bms.status().summary.cell_frozen.is_some() {
            assert!(k >= 20, "after 20 still cycles at the earliest, not {k}");
            break;
        }
    }
    assert_eq!(frozen_cell(&rig), Some(0), "every cell, the first named");
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellVoltageStale));
}

#[test]
fn the_frozen_settings_are_validated() {
    let mut config = Config::lfp_16s(100);
    config.freshness.frozen_move_mv = MilliVolts(1);
    let e = config.validate().expect_err("1 mV is the resolution, not a movement");
    assert_eq!(e.field, "freshness.frozen_move_mv");
    let mut config = Config::lfp_16s(100);
    config.freshness.frozen_samples = 1;
    assert_eq!(config.validate().expect_err("one sample").field, "freshness.frozen_samples");
    let mut config = Config::tesla_model_s(16);
    config.freshness.frozen_current_ma = MilliAmps(0);
    let e = config.validate().expect_err("judged at rest");
    assert_eq!(e.field, "freshness.frozen_current_ma");
}

#[test]
fn the_soc_estimator_counts_charge_but_ignores_voltages_it_is_told_are_unknown() {
    use cellwarden_core::soc::{Initial, SocConfig, SocEstimator, SocInput};
    use cellwarden_core::{DeciCelsius, Instant, Permille};
    // Both start at 50 % and see a frozen 4.10 V (about 95 %) while 50 A flows for ten
    // minutes: 8.3 Ah of 233 Ah, 3.6 points. Reading the voltages pulls one towards 95 %; the
    // one told they are unknown counts the charge and nothing else.
    let config = SocConfig::tesla_model_s(16);
    let start = Instant::ZERO;
    let mut reading = SocEstimator::new(config, start, Initial::Soc(Permille(500)));
    let mut counting = SocEstimator::new(config, start, Initial::Soc(Permille(500)));
    for s in 1..=600u64 {
        let at = Instant::from_micros(s * 1_000_000);
        let input = SocInput {
            sampled_at: at,
            current_ma: MilliAmps(50_000),
            cell_mean_mv: MilliVolts(4_100),
            cell_min_mv: MilliVolts(4_100),
            cell_max_mv: MilliVolts(4_100),
            temperature_dc: DeciCelsius(250),
            at_cvl: false,
            contactors_open: false,
        };
        reading.update(at, &input);
        counting.update_counting(at, &input);
    }
    let counted = counting.status().soc.0;
    assert!((530..=540).contains(&counted), "counted only: {counted} ‰");
    assert_eq!(counting.status().counters.voltage_rejected, 0, "not rejected: not looked at");
    let read = reading.status().soc.0;
    assert!(read > counted + 50, "the voltages pulled the other up: {read} ‰");
}
