//! Charge control and state of charge wired into the pack controller: the charge controller's
//! limits only ever lower protection's (and only while closed), a stricter protection rule keeps
//! its reason, `status()` reports both the controller and the estimator from the right moment,
//! `restore_soc` / `soc_snapshot` restart and persist the estimate, `battery_view` reports the
//! CVL, SoC, capacity and SoH they give, and hostile inputs neither panic nor raise a limit.
//!
//! Most stories run a *twin*: two rigs fed exactly the same, one with the preset's `charge`
//! section and one with `charge = None`. Protection does not depend on the charge section, so the
//! second rig's limits are protection's own, and the first may only match them or go below with
//! a `LimitReason::Charge` reason.
//!
//! The 16S 100 Ah LFP preset at 3.3 V per cell (about 52 % on the OCV table): protection allows
//! 50 A charge and 100 A discharge; the charge controller's cell table tapers the charge current
//! from 3.40 V (full) to 3.55 V (zero).

mod common;
mod props;
mod support;

use cellwarden_core::charge::{ChargeLimitReason, LimitTable};
use cellwarden_core::soc::{Chemistry, Initial, SocEstimator, SocInput, SocSnapshot, SocStatus};
use cellwarden_core::{
    Command, Config, CurrentLimits, DeciCelsius, Duration, Input, Instant, LimitReason, Location,
    MilliAmps, MilliVolts, Permille, RuleId, SequenceState, Status, Tier,
};
use common::{Plant, Rig};
use props::proptest_config;
use proptest::prelude::*;
use support::{BASE_MV, isolated, ms, off};

const CELLS: usize = 16;
/// The cell the stories move, so the reported location is not the default.
const CELL: usize = 5;
const PERIOD: Duration = Duration::from_millis(10);
const CHARGE_MAX_MA: i32 = 50_000;
const DISCHARGE_MAX_MA: i32 = 100_000;

fn lfp() -> Config {
    Config::lfp_16s(100)
}

/// lfp() with the imbalance rule off, so one cell can climb the charge table's taper while the
/// others, and the mean cell the SoC estimate follows, stay on the plateau (at the knee the
/// estimate soon reads full and the SoC table would bind first).
fn lfp_one_high() -> Config {
    let mut config = lfp();
    config.protection.cell_imbalance_mv = off();
    config
}

/// `config` without its charge section.
fn without_charge(config: &Config) -> Config {
    Config { charge: None, ..config.clone() }
}

/// Every cell at `base_mv`, cell [`CELL`] at `high_mv`.
fn cells(p: &mut Plant, base_mv: i32, high_mv: i32) {
    p.cells.fill(MilliVolts(base_mv));
    p.cells[CELL] = MilliVolts(high_mv);
}

/// Why `on` (with charge control) breaks the rule against `off` (the same inputs without it),
/// if it does: the sequence and the rules are the same, each limit is at most protection's, a
/// lower one names the charge controller (and only while closed), an equal one keeps
/// protection's reason.
fn violation(on: &Status, off: &Status) -> Option<String> {
    if on.sequence != off.sequence || on.rules != off.rules {
        return Some(format!("the charge section changed protection or sequencing: {on:?}"));
    }
    let (a, b) = (on.limits, off.limits);
    let pairs = [
        ("charge", a.charge_ma, a.charge_reason, b.charge_ma, b.charge_reason),
        ("discharge", a.discharge_ma, a.discharge_reason, b.discharge_ma, b.discharge_reason),
    ];
    for (name, got, why, allowed, protection_why) in pairs {
        let ok = if got.0 > allowed.0 {
            false
        } else if got == allowed {
            why == protection_why
        } else {
            matches!(why, LimitReason::Charge(_)) && on.sequence == SequenceState::Closed
        };
        if !ok {
            return Some(format!(
                "{name}: {got:?} ({why:?}) against protection's {allowed:?} ({protection_why:?}) \
                 in {:?}",
                on.sequence
            ));
        }
    }
    None
}

/// Two rigs fed identically, `on` with `config` and `off` with its charge section removed.
struct Twin {
    on: Rig,
    off: Rig,
}

impl Twin {
    fn new(config: Config, cell_mv: i32) -> Twin {
        let off = Rig::new(without_charge(&config), cell_mv);
        Twin { on: Rig::new(config, cell_mv), off }
    }

    fn lfp() -> Twin {
        Twin::new(lfp(), BASE_MV)
    }

    fn plant(&mut self, change: impl Fn(&mut Plant)) {
        change(&mut self.on.plant);
        change(&mut self.off.plant);
    }

    fn close(&mut self) {
        self.on.close();
        self.off.close();
        self.check();
    }

    fn command(&mut self, command: Command) {
        self.on.command(command);
        self.off.command(command);
        self.check();
    }

    /// Runs both for `d`, one control period at a time, checking the rule after each.
    fn run(&mut self, d: Duration) {
        let end = self.on.now + d;
        while self.on.now < end {
            self.on.run(PERIOD);
            self.off.run(PERIOD);
            self.check();
        }
    }

    fn check(&self) {
        let (on, off) = (self.on.bms.status(), self.off.bms.status());
        if let Some(why) = violation(on, off) {
            panic!("{why}\nwith charge: {on:?}\nwithout: {off:?}");
        }
        // Never a panic, and whatever it reports carries the limits in force.
        if let Some(view) = self.on.bms.battery_view() {
            assert_eq!(view.charge_limit_ma, on.limits.charge_ma);
            assert_eq!(view.discharge_limit_ma, on.limits.discharge_ma);
            assert!(view.soh.0 <= 1000 && view.soc.0 <= 1000, "{view:?}");
        }
    }

    fn limits(&self) -> (CurrentLimits, CurrentLimits) {
        (self.on.bms.status().limits, self.off.bms.status().limits)
    }
}

fn charge_reason(table: LimitTable, input: i32) -> LimitReason {
    LimitReason::Charge(ChargeLimitReason::Table { table, input })
}

// ---------------------------------------------------------------------------------------------
// 1. Never above protection; the cell table binds between its points.

#[test]
fn the_cell_table_lowers_the_charge_limit_between_its_points() {
    let mut twin = Twin::new(lfp_one_high(), BASE_MV);
    twin.close();
    let (on, off) = twin.limits();
    assert_eq!(on, off, "at 3.30 V nothing of the charge controller binds");
    assert_eq!(
        (on.charge_ma, on.charge_reason),
        (MilliAmps(CHARGE_MAX_MA), LimitReason::ConfiguredMaximum)
    );

    // The highest cell at 3.45 V, a third of the way down the 3.40..3.55 V taper.
    twin.plant(|p| cells(p, BASE_MV, 3_450));
    twin.run(ms(5_000));
    let (on, off) = twin.limits();
    assert_eq!(
        (off.charge_ma, off.charge_reason),
        (MilliAmps(CHARGE_MAX_MA), LimitReason::ConfiguredMaximum)
    );
    // 1000 - 50/150 of 1000 = 666 permille of 50 A.
    let preset = lfp().charge.expect("preset");
    assert_eq!(preset.charge_by_cell_max_mv.eval(3_450), Permille(666));
    assert_eq!(on.charge_ma, MilliAmps(33_300), "{on:?}");
    assert_eq!(on.charge_reason, charge_reason(LimitTable::ChargeByCellMax, 3_450));
    assert_eq!(on.discharge_ma, off.discharge_ma);
    assert_eq!(on.discharge_reason, off.discharge_reason);
    let charge = twin.on.bms.status().charge.expect("charge section");
    assert_eq!(
        (charge.charge_limit_ma, charge.charge_reason),
        (
            on.charge_ma,
            ChargeLimitReason::Table { table: LimitTable::ChargeByCellMax, input: 3_450 }
        )
    );

    // Back below the first point, the limit climbs back at the ramp's 10 A/s: 1 A per 100 ms.
    twin.plant(|p| cells(p, BASE_MV, BASE_MV));
    twin.run(ms(100));
    let (on, off) = twin.limits();
    assert_eq!(
        (on.charge_ma, on.charge_reason),
        (MilliAmps(34_300), LimitReason::Charge(ChargeLimitReason::Ramp))
    );
    assert!(on.charge_ma < off.charge_ma);
    // The remaining 15.7 A take 1.57 s; then nothing binds but protection.
    twin.run(ms(1_600));
    let (on, off) = twin.limits();
    assert_eq!(on, off);
}

#[test]
fn a_charge_walks_up_the_knee_without_ever_exceeding_protection() {
    // Charging at 20 A while every cell climbs 5 mV per step into the over-voltage operating
    // tier; discharging at 60 A down through the discharge table: the twin checks every period.
    let mut twin = Twin::lfp();
    twin.close();
    twin.plant(|p| p.load = MilliAmps(20_000));
    let mut lower = 0;
    for mv in (BASE_MV..=3_580).step_by(5) {
        twin.plant(|p| cells(p, mv - 10, mv));
        twin.run(ms(200));
        let (on, off) = twin.limits();
        lower += usize::from(on.charge_ma < off.charge_ma);
    }
    assert!(lower > 10, "the charge controller never bound: {:?}", twin.limits());
    twin.plant(|p| p.load = MilliAmps(-60_000));
    for mv in (2_950..=3_300).rev().step_by(10) {
        twin.plant(|p| cells(p, mv, mv + 10));
        twin.run(ms(200));
    }
    let (on, off) = twin.limits();
    assert_eq!(twin.on.state(), SequenceState::Closed);
    assert!(on.discharge_ma < off.discharge_ma, "{on:?} vs {off:?}");
    assert!(matches!(on.discharge_reason, LimitReason::Charge(_)), "{on:?}");
}

// ---------------------------------------------------------------------------------------------
// 2. Open contactors: the open-state limits, whatever the charge controller wants.

#[test]
fn while_open_the_reason_stays_contactors_open() {
    let mut twin = Twin::new(lfp_one_high(), BASE_MV);
    let open = LimitReason::ContactorsOpen;
    let zero = CurrentLimits {
        charge_ma: MilliAmps(0),
        charge_reason: open,
        discharge_ma: MilliAmps(0),
        discharge_reason: open,
    };
    // No data yet: the controller asks for 0 A (NoData), the reason is still ContactorsOpen.
    twin.check();
    assert_eq!(twin.limits().0, zero);
    let charge = twin.on.bms.status().charge.expect("charge section");
    assert_eq!(
        (charge.charge_limit_ma, charge.charge_reason),
        (MilliAmps(0), ChargeLimitReason::NoData)
    );
    // Data where the charge controller would bind, contactors open.
    twin.plant(|p| cells(p, BASE_MV, 3_450));
    twin.run(ms(2_000));
    assert_eq!(twin.limits().0, zero);
    let charge = twin.on.bms.status().charge.expect("charge section");
    assert_eq!(charge.charge_limit_ma, MilliAmps(33_300), "the controller runs while open");

    // Through the whole closing sequence the reason stays ContactorsOpen.
    twin.command(Command::Start);
    let mut closing = 0;
    while twin.on.state() != SequenceState::Closed {
        assert_eq!(twin.limits().0.charge_reason, open, "{:?}", twin.on.state());
        assert_eq!(twin.limits().0.discharge_reason, open);
        twin.run(PERIOD);
        closing += 1;
        assert!(closing < 1_000, "did not close");
    }
    assert!(closing > 1, "closing took no time to watch");
    assert_eq!(twin.limits().0.charge_reason, charge_reason(LimitTable::ChargeByCellMax, 3_450));

    // A graceful stop under load asks for zero with `Stopping`, then open again.
    twin.plant(|p| p.load = MilliAmps(10_000));
    twin.run(ms(100));
    twin.command(Command::Stop);
    let stopping = LimitReason::Stopping;
    assert!(matches!(twin.on.state(), SequenceState::Stopping { .. }), "{:?}", twin.on.state());
    assert_eq!(
        (twin.limits().0.charge_reason, twin.limits().0.discharge_reason),
        (stopping, stopping)
    );
    twin.plant(|p| p.load = MilliAmps(0));
    twin.run(ms(1_000));
    assert_eq!(twin.on.state(), SequenceState::Open);
    assert_eq!((twin.limits().0.charge_reason, twin.limits().0.discharge_reason), (open, open));
}

// ---------------------------------------------------------------------------------------------
// 3. A stricter protection rule keeps its reason.

/// A closed twin for `isolated(keep)` with the preset's charge section put back.
fn isolated_twin(keep: RuleId) -> Twin {
    let config = Config { charge: lfp().charge, ..isolated(keep) };
    let mut twin = Twin::new(config, BASE_MV);
    twin.close();
    twin
}

#[test]
fn cell_over_voltage_recommended_tier_keeps_its_rule_reason() {
    let mut twin = isolated_twin(RuleId::CellOverVoltage);
    // 3.70 V: above the recommended tier (3.65 V), below the maximum (3.75 V).
    twin.plant(|p| p.cells[CELL] = MilliVolts(3_700));
    // Within the rule's 200 ms debounce only the charge controller stops the charge.
    twin.run(ms(50));
    let (on, off) = twin.limits();
    assert_eq!(off.charge_ma, MilliAmps(CHARGE_MAX_MA));
    let at_max = ChargeLimitReason::CellAtMaximum { cell_max_mv: MilliVolts(3_700) };
    assert_eq!((on.charge_ma, on.charge_reason), (MilliAmps(0), LimitReason::Charge(at_max)));
    // Then the rule's recommended tier sets charge to zero too and its reason wins.
    twin.run(ms(500));
    let (on, off) = twin.limits();
    let rule = LimitReason::Rule {
        rule: RuleId::CellOverVoltage,
        tier: Tier::Recommended,
        location: Location::Cell(CELL as u16),
        value: 3_700,
    };
    assert_eq!((on.charge_ma, on.charge_reason), (MilliAmps(0), rule), "{on:?}");
    assert_eq!(on, off);
    let charge = twin.on.bms.status().charge.expect("charge section");
    assert_eq!((charge.charge_limit_ma, charge.charge_reason), (MilliAmps(0), at_max));
}

#[test]
fn pack_over_voltage_operating_tier_beats_a_milder_charge_table() {
    let mut twin = isolated_twin(RuleId::PackOverVoltage);
    // The table wants 33.3 A; the pack sensor above 56.8 V derates to half of 50 A.
    twin.plant(|p| {
        cells(p, BASE_MV, 3_450);
        p.pack_override = Some(MilliVolts(57_000));
    });
    twin.run(ms(500));
    let (on, off) = twin.limits();
    let rule = LimitReason::Rule {
        rule: RuleId::PackOverVoltage,
        tier: Tier::Operating,
        location: Location::Pack,
        value: 57_000,
    };
    assert_eq!((on.charge_ma, on.charge_reason), (MilliAmps(CHARGE_MAX_MA / 2), rule));
    assert_eq!(on, off);
    assert_eq!(twin.on.bms.status().charge.map(|c| c.charge_limit_ma), Some(MilliAmps(33_300)));
}

#[test]
fn discharge_over_current_operating_tier_beats_the_full_discharge_table() {
    let mut twin = isolated_twin(RuleId::DischargeOverCurrent);
    // 115 A: above the 110 A operating tier, below the 120 A recommended one.
    twin.plant(|p| p.load = MilliAmps(-115_000));
    twin.run(ms(500));
    let (on, off) = twin.limits();
    let rule = LimitReason::Rule {
        rule: RuleId::DischargeOverCurrent,
        tier: Tier::Operating,
        location: Location::Pack,
        value: 115_000,
    };
    assert_eq!((on.discharge_ma, on.discharge_reason), (MilliAmps(DISCHARGE_MAX_MA / 2), rule));
    assert_eq!(on, off);
    let charge = twin.on.bms.status().charge.expect("charge section");
    assert_eq!(charge.discharge_limit_ma, MilliAmps(DISCHARGE_MAX_MA));
}

// ---------------------------------------------------------------------------------------------
// 4. What `status()` reports.

fn feed_cells(rig: &mut Rig, cells: &[MilliVolts], first: u16) {
    rig.input(Input::CellVoltages { sampled_at: rig.now, first, mv: cells });
}

#[test]
fn charge_status_is_there_exactly_with_a_charge_section() {
    let rig = Rig::lfp();
    let charge = rig.bms.status().charge.expect("preset has a charge section");
    assert_eq!(charge.charge_reason, ChargeLimitReason::NoData);
    let mut rig = Rig::new(without_charge(&lfp()), BASE_MV);
    rig.close();
    rig.run(ms(500));
    assert_eq!(rig.bms.status().charge, None);
    assert!(rig.bms.status().soc.is_some(), "the SoC estimator runs without charge control");
}

#[test]
fn soc_starts_once_every_cell_temperature_and_current_has_arrived() {
    let mut rig = Rig::lfp();
    let cells = rig.plant.cells.clone();
    let temps = rig.plant.temps.clone();
    assert_eq!(rig.bms.status().soc, None);
    rig.input(Input::Current { sampled_at: rig.now, ma: MilliAmps(0) });
    rig.input(Input::Temperatures { sampled_at: rig.now, first: 0, dc: &temps });
    feed_cells(&mut rig, &cells[..CELLS - 1], 0);
    assert_eq!(rig.bms.status().soc, None, "one cell missing");
    rig.now += PERIOD;
    rig.input(Input::Current { sampled_at: rig.now, ma: MilliAmps(0) });
    assert_eq!(rig.bms.status().soc, None, "one cell still missing");
    // The last cell completes the set: the current already received starts the estimate.
    feed_cells(&mut rig, &cells[CELLS - 1..], (CELLS - 1) as u16);
    let soc = rig.bms.status().soc.expect("started");
    assert_eq!(soc.soc, Chemistry::Lfp.soc_from_ocv(MilliVolts(BASE_MV)), "{soc:?}");

    // Without a temperature the estimate does not start either.
    let mut rig = Rig::lfp();
    rig.feed_temps = false;
    rig.run(ms(500));
    assert_eq!(rig.bms.status().soc, None);
    rig.feed_temps = true;
    rig.run(PERIOD);
    assert!(rig.bms.status().soc.is_some());
}

#[test]
fn soc_starts_from_the_ocv_table() {
    for (config, cell_mv, chemistry) in
        [(lfp(), BASE_MV, Chemistry::Lfp), (Config::tesla_model_s(4), 3_674, Chemistry::Nca)]
    {
        let mut rig = Rig::new(config, cell_mv);
        rig.feed();
        let table = chemistry.soc_from_ocv(MilliVolts(cell_mv));
        assert!((480..=530).contains(&table.0), "{chemistry:?} at {cell_mv} mV: {table:?}");
        let soc = rig.bms.status().soc.expect("started").soc;
        assert!(soc.0.abs_diff(table.0) <= 5, "{chemistry:?}: {soc:?} vs table {table:?}");
        // Resting with the contactors open it stays there.
        rig.run(ms(5_000));
        let soc = rig.bms.status().soc.expect("started").soc;
        assert!(soc.0.abs_diff(table.0) <= 10, "{chemistry:?}: {soc:?} vs table {table:?}");
    }
}

#[test]
fn soc_section_off_means_no_estimate_and_no_soc_table() {
    let mut config = lfp();
    config.soc = None;
    let mut rig = Rig::new(config, BASE_MV);
    rig.close();
    rig.run(ms(500));
    assert_eq!(rig.bms.status().soc, None);
    assert_eq!(rig.bms.soc_snapshot(), None);
    assert_eq!(rig.bms.battery_view(), None, "no soc section, never a view");
    assert!(rig.bms.status().charge.is_some());
}

// ---------------------------------------------------------------------------------------------
// 5. Restoring and persisting the estimate.

/// The input the pack controller gives its estimator for one rig sample of identical cells at
/// 25 °C, no current, contactors open.
fn resting_input(at: Instant, cell_mv: i32) -> SocInput {
    SocInput {
        sampled_at: at,
        current_ma: MilliAmps(0),
        cell_mean_mv: MilliVolts(cell_mv),
        cell_min_mv: MilliVolts(cell_mv),
        cell_max_mv: MilliVolts(cell_mv),
        temperature_dc: DeciCelsius(250),
        at_cvl: false,
        contactors_open: true,
    }
}

/// What a standalone estimator started from `initial` at `at` and fed that sample reports.
fn standalone(config: &Config, at: Instant, initial: Initial, cell_mv: i32) -> SocStatus {
    let mut est = SocEstimator::new(config.soc.expect("soc section"), at, initial);
    est.update(at, &resting_input(at, cell_mv));
    *est.status()
}

#[test]
fn restore_soc_restarts_at_that_soc_with_the_next_current_sample() {
    // Before the first data: the estimate starts from the given SoC, not the table.
    let mut rig = Rig::lfp();
    let initial = Initial::Soc(Permille(900));
    rig.bms.restore_soc(initial);
    rig.feed();
    let got = rig.bms.status().soc.expect("started");
    assert_eq!(got, standalone(&lfp(), rig.now, initial, BASE_MV));
    let from_table =
        standalone(&lfp(), rig.now, Initial::FromOcv { cell_mv: MilliVolts(BASE_MV) }, BASE_MV);
    assert!(got.soc.0 > from_table.soc.0 + 30, "{got:?} vs from the table {from_table:?}");

    // While running: nothing changes until the next current sample, then it restarts.
    let mut rig = Rig::lfp();
    rig.run(ms(2_000));
    let before = rig.bms.status().soc.expect("running");
    rig.bms.restore_soc(initial);
    rig.now += PERIOD;
    let (cells, temps) = (rig.plant.cells.clone(), rig.plant.temps.clone());
    feed_cells(&mut rig, &cells, 0);
    rig.input(Input::Temperatures { sampled_at: rig.now, first: 0, dc: &temps });
    // Until then the old estimate is no longer reported (see the report: `status().soc` and
    // `soc_snapshot()` read the dropped estimator), but nothing restarted either.
    let waiting = rig.bms.status().soc;
    assert!(waiting.is_none() || waiting == Some(before), "restarted early: {waiting:?}");
    rig.input(Input::Current { sampled_at: rig.now, ma: MilliAmps(0) });
    let got = rig.bms.status().soc.expect("restarted");
    assert_eq!(got, standalone(&lfp(), rig.now, initial, BASE_MV));
    assert!(got.soc.0 > before.soc.0 + 30, "{got:?} vs before {before:?}");
}

#[test]
fn a_snapshot_restored_into_a_fresh_pack_resumes_the_estimate() {
    let config = Config::tesla_model_s(4);
    let mut a = Rig::new(config.clone(), 3_674);
    assert_eq!(a.bms.soc_snapshot(), None, "nothing to persist before the start");
    a.feed();
    let snapshot = a.bms.soc_snapshot().expect("started");
    assert_eq!(snapshot.soc_ppm, a.bms.status().soc.expect("started").soc_ppm);
    // Some history: closed, a discharge, a rest.
    a.close();
    a.plant.load = MilliAmps(-50_000);
    a.run(ms(10_000));
    a.plant.load = MilliAmps(0);
    a.run(ms(10_000));
    let running = a.bms.status().soc.expect("running");
    let snapshot: SocSnapshot = a.bms.soc_snapshot().expect("running");
    assert_eq!(snapshot.soc_ppm, running.soc_ppm);
    assert_eq!(snapshot.capacity_mah, running.capacity_mah);

    let mut b = Rig::new(config.clone(), 3_674);
    b.bms.restore_soc(Initial::Snapshot(snapshot));
    assert_eq!(b.bms.status().soc, None);
    b.feed();
    let resumed = b.bms.status().soc.expect("started from the snapshot");
    assert_eq!(resumed, standalone(&config, b.now, Initial::Snapshot(snapshot), 3_674));
    // The estimator applies the sample it starts with, so the figure may move by the
    // correction of that one sample; a settled estimate hardly moves.
    assert!(resumed.soc_ppm.abs_diff(running.soc_ppm) <= 1_000, "{resumed:?} vs {running:?}");
    assert_eq!(resumed.capacity_mah, running.capacity_mah);
    assert_eq!(resumed.resistance_uohm, running.resistance_uohm);

    // A confident snapshot wins over the table, which says 50 % at these cells.
    let moved = SocSnapshot { soc_ppm: 700_000, ..snapshot };
    let mut c = Rig::new(config, 3_674);
    c.bms.restore_soc(Initial::Snapshot(moved));
    c.feed();
    let resumed = c.bms.status().soc.expect("started from the snapshot");
    assert!(resumed.soc_ppm.abs_diff(700_000) <= 20_000, "{resumed:?} vs {moved:?}");
}

#[test]
fn the_usable_soc_reaches_the_charge_controller() {
    // A confident snapshot at 97 % of the table: usable about 98.5 %, where the SoC table
    // allows about a third of the current, while the cells (3.34 V) are below the cell table.
    let config = lfp();
    let mut rig = Rig::new(config.clone(), 3_340);
    rig.feed();
    let base = rig.bms.soc_snapshot().expect("started");
    let mut rig = Rig::new(config, 3_340);
    rig.bms.restore_soc(Initial::Snapshot(SocSnapshot {
        soc_ppm: 970_000,
        confidence: Permille(990),
        ..base
    }));
    rig.close();
    rig.run(ms(500));
    let status = rig.bms.status();
    let usable = status.soc.expect("running").usable;
    assert!(usable.0 > 950, "{usable:?}");
    let reason = charge_reason(LimitTable::ChargeBySoc, i32::from(usable.0));
    assert_eq!(status.limits.charge_reason, reason, "{status:?}");
    assert!(status.limits.charge_ma.0 < CHARGE_MAX_MA / 2);
}

// ---------------------------------------------------------------------------------------------
// 6. `battery_view`.

#[test]
fn battery_view_reports_the_charge_controller_and_the_estimator() {
    let mut rig = Rig::new(lfp_one_high(), BASE_MV);
    assert_eq!(rig.bms.battery_view(), None);
    rig.feed_current = false;
    rig.run(ms(500));
    assert_eq!(rig.bms.battery_view(), None, "no current, no SoC estimate yet");
    rig.feed_current = true;
    rig.close();
    rig.plant.load = MilliAmps(20_000);
    cells(&mut rig.plant, BASE_MV, 3_450);
    rig.run(ms(1_000));
    let status = rig.bms.status();
    let view = rig.bms.battery_view().expect("everything received");
    let charge = status.charge.expect("charge section");
    let soc = status.soc.expect("running");
    assert_eq!(view.charge_voltage_mv, charge.cvl_mv);
    assert_eq!(view.soc, soc.usable);
    assert_eq!(view.capacity_mah, soc.capacity_mah);
    assert_eq!(view.soh, Permille(1000), "learned capacity = configured");
    assert_eq!(view.charge_limit_ma, MilliAmps(33_300));
    assert_eq!(view.discharge_voltage_mv, MilliVolts(16 * (2_900 + 100)));
}

#[test]
fn battery_view_follows_a_charge_voltage_limit_of_its_own() {
    // A lower absorption voltage than protection's fallback (16 × 3.50 V = 56.0 V).
    let mut config = lfp();
    let charge = config.charge.as_mut().expect("preset");
    charge.absorption_cell_mv = MilliVolts(3_450);
    charge.absorption_start_cell_mv = MilliVolts(3_450);
    let mut rig = Rig::new(config, BASE_MV);
    rig.close();
    rig.run(ms(500));
    let view = rig.bms.battery_view().expect("running");
    assert_eq!(view.charge_voltage_mv, MilliVolts(16 * 3_450));
    assert_eq!(Some(view.charge_voltage_mv), rig.bms.status().charge.map(|c| c.cvl_mv));
}

#[test]
fn battery_view_without_charge_control_falls_back_to_protection() {
    for (config, cell_mv) in [(lfp(), BASE_MV), (Config::tesla_model_s(4), 3_674)] {
        let mut config = without_charge(&config);
        // Move the operating tier so the fallback cannot coincide with a charge preset.
        config.protection.cell_over_voltage_mv.operating =
            config.protection.cell_over_voltage_mv.operating.map(|mv| MilliVolts(mv.0 - 20));
        let ov = config.protection.cell_over_voltage_mv;
        let expected =
            i32::from(config.cell_count) * (ov.operating.expect("preset").0 - ov.hysteresis.0);
        let mut rig = Rig::new(config, cell_mv);
        rig.close();
        rig.run(ms(500));
        let view = rig.bms.battery_view().expect("running");
        assert_eq!(view.charge_voltage_mv, MilliVolts(expected));
        assert_eq!(view.soc, rig.bms.status().soc.expect("running").usable);
    }
}

#[test]
fn state_of_health_is_the_learned_capacity_at_most_full() {
    let config = lfp();
    let mut rig = Rig::new(config.clone(), BASE_MV);
    rig.feed();
    let base = rig.bms.soc_snapshot().expect("started");
    for (capacity_mah, soh) in [(80_000, 800), (100_000, 1000), (120_000, 1000)] {
        let mut rig = Rig::new(config.clone(), BASE_MV);
        rig.bms.restore_soc(Initial::Snapshot(SocSnapshot { capacity_mah, ..base }));
        rig.close();
        rig.run(ms(200));
        let view = rig.bms.battery_view().expect("running");
        assert_eq!((view.capacity_mah, view.soh), (capacity_mah, Permille(soh)), "{view:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Hostile values.

#[test]
fn absurd_values_never_raise_a_limit() {
    type Disturb = fn(&mut Plant);
    let cases: [(&str, Disturb, bool); 9] = [
        ("cells at 0 mV", |p| p.cells.fill(MilliVolts(0)), false),
        ("cells at 10 V", |p| p.cells.fill(MilliVolts(10_000)), false),
        ("a cell above 10 V", |p| p.cells[CELL] = MilliVolts(10_001), true),
        ("a cell below 0 V", |p| p.cells[CELL] = MilliVolts(-1), true),
        ("temperatures at i32::MIN", |p| p.temps.fill(DeciCelsius(i32::MIN)), true),
        ("temperatures at i32::MAX", |p| p.temps.fill(DeciCelsius(i32::MAX)), true),
        ("current at i32::MIN", |p| p.load = MilliAmps(i32::MIN), false),
        ("current at i32::MAX", |p| p.load = MilliAmps(i32::MAX), false),
        ("pack sensor at i32::MIN", |p| p.pack_override = Some(MilliVolts(i32::MIN)), true),
    ];
    for (name, disturb, rejected) in cases {
        let mut twin = Twin::lfp();
        twin.close();
        twin.plant(disturb);
        // Two samples: the pack voltage arrives after the current sample that feeds charging.
        twin.run(ms(20));
        let status = twin.on.bms.status();
        let charge = status.charge.expect("charge section");
        if rejected {
            // Before any protection debounce, the charge controller already asks for nothing.
            let reason = LimitReason::Charge(ChargeLimitReason::InputRejected);
            assert_eq!(
                (status.limits.charge_ma, status.limits.charge_reason),
                (MilliAmps(0), reason),
                "{name}"
            );
            assert_eq!(
                (status.limits.discharge_ma, status.limits.discharge_reason),
                (MilliAmps(0), reason),
                "{name}"
            );
            assert!(charge.counters.rejected_inputs > 0, "{name}");
        }
        // Protection takes over, latches and opens; nothing panics on the way.
        twin.run(ms(3_000));
        twin.command(Command::ClearFaults);
        twin.run(ms(500));
    }
}

/// One hostile step, applied to both rigs alike.
#[derive(Clone, Debug)]
enum Step {
    Cells(u16, Vec<i32>),
    Temps(u16, Vec<i32>),
    Current(i32),
    Pack(i32),
    Bus(i32),
    /// Time passes: `handle_timeout` this many ms later.
    Wait(u64),
    /// A current sample this many ms before now.
    Stale(u64, i32),
    /// The rig's healthy plant fed for this many ms (the adapter loop, deadlines honoured).
    Run(u64),
    Command(Command),
}

fn hostile_mv() -> impl Strategy<Value = i32> {
    prop_oneof![
        prop::sample::select(vec![i32::MIN, -1, 0, 10_000, 10_001, i32::MAX]),
        2_000..4_000i32,
        3_280..3_560i32,
    ]
}

fn hostile_dc() -> impl Strategy<Value = i32> {
    prop_oneof![
        prop::sample::select(vec![i32::MIN, -1_001, -1_000, 2_000, 2_001, i32::MAX]),
        -300..700i32,
    ]
}

fn hostile_ma() -> impl Strategy<Value = i32> {
    prop_oneof![prop::sample::select(vec![i32::MIN, -1, 0, i32::MAX]), -400_000..200_000i32]
}

fn step() -> impl Strategy<Value = Step> {
    use prop::collection::vec;
    use prop::sample::select;
    let pack = [i32::MIN, -1, 0, 52_800, 2_000_001, i32::MAX];
    let bus = [i32::MIN, 0, 52_800, i32::MAX];
    let commands = [Command::Start, Command::Stop, Command::ClearFaults, Command::EmergencyStop];
    prop_oneof![
        3 => (0u16..20, vec(hostile_mv(), 0..20)).prop_map(|(f, v)| Step::Cells(f, v)),
        2 => (0u16..6, vec(hostile_dc(), 0..6)).prop_map(|(f, v)| Step::Temps(f, v)),
        3 => hostile_ma().prop_map(Step::Current),
        1 => select(pack.to_vec()).prop_map(Step::Pack),
        1 => select(bus.to_vec()).prop_map(Step::Bus),
        2 => (0u64..3_000).prop_map(Step::Wait),
        1 => (0u64..5_000, hostile_ma()).prop_map(|(ms, ma)| Step::Stale(ms, ma)),
        1 => (0u64..1_000).prop_map(Step::Run),
        1 => select(commands.to_vec()).prop_map(Step::Command),
    ]
}

fn apply(rig: &mut Rig, step: &Step) {
    let now = rig.now;
    let mv = |v: &[i32]| v.iter().map(|&v| MilliVolts(v)).collect::<Vec<_>>();
    match step {
        Step::Cells(first, v) => {
            rig.input(Input::CellVoltages { sampled_at: now, first: *first, mv: &mv(v) })
        }
        Step::Temps(first, v) => {
            let dc: Vec<_> = v.iter().map(|&v| DeciCelsius(v)).collect();
            rig.input(Input::Temperatures { sampled_at: now, first: *first, dc: &dc });
        }
        Step::Current(ma) => rig.input(Input::Current { sampled_at: now, ma: MilliAmps(*ma) }),
        Step::Pack(v) => rig.input(Input::PackVoltage { sampled_at: now, mv: MilliVolts(*v) }),
        Step::Bus(v) => rig.input(Input::BusVoltage { sampled_at: now, mv: MilliVolts(*v) }),
        Step::Wait(ms) => {
            rig.now += Duration::from_millis(*ms);
            rig.bms.handle_timeout(rig.now);
            rig.drain();
        }
        Step::Stale(ms, ma) => {
            let at = Instant::from_micros(now.as_micros().saturating_sub(ms * 1_000));
            rig.input(Input::Current { sampled_at: at, ma: MilliAmps(*ma) });
        }
        Step::Run(ms) => rig.run(Duration::from_millis(*ms)),
        Step::Command(c) => rig.command(*c),
    }
}

proptest! {
    #![proptest_config(proptest_config(128, file!()))]

    /// Starting closed and healthy, any sequence of hostile samples, waits and commands: no
    /// panic, and the limits with charge control are never above the same pack's without.
    #[test]
    fn hostile_sequences_never_raise_a_limit(steps in prop::collection::vec(step(), 1..40)) {
        let mut twin = Twin::lfp();
        twin.close();
        for step in &steps {
            apply(&mut twin.on, step);
            apply(&mut twin.off, step);
            let (on, off) = (twin.on.bms.status(), twin.off.bms.status());
            let why = violation(on, off);
            prop_assert!(why.is_none(), "{why:?} after {step:?}");
            if let Some(view) = twin.on.bms.battery_view() {
                prop_assert_eq!(view.charge_limit_ma, on.limits.charge_ma);
                prop_assert!(view.soh.0 <= 1000 && view.soc.0 <= 1000, "{view:?}");
            }
            let _ = twin.on.bms.soc_snapshot();
        }
    }
}
