//! Random settings around the presets: a preset of random size, a random chemistry now and then,
//! and a few of its voltage, temperature, current and charge-control figures moved by a little,
//! by a lot, or to an extreme. Small moves mostly pass validation and large ones mostly fail, so
//! a property over "settings that pass" sees many of both.

use cellwarden_core::charge::Table;
use cellwarden_core::{CellChemistry, Config, DeciCelsius, MilliAmps, MilliVolts};
use proptest::prelude::*;

/// How one figure is moved.
#[derive(Clone, Copy, Debug)]
pub enum Nudge {
    /// By this much (per cell for pack voltages).
    By(i32),
    /// To this value (per cell for pack voltages).
    To(i32),
    /// To an extreme of its type.
    Extreme(i32),
}

impl Nudge {
    fn apply(self, value: i32, scale: i32) -> i32 {
        match self {
            Nudge::By(d) => value.saturating_add(d.saturating_mul(scale)),
            Nudge::To(v) => v.saturating_mul(scale),
            Nudge::Extreme(v) => v,
        }
    }
}

fn nudge() -> impl Strategy<Value = Nudge> {
    prop_oneof![
        6 => (-150..=150i32).prop_map(Nudge::By),
        2 => (-1_000..=1_000i32).prop_map(Nudge::By),
        2 => (-500..=6_000i32).prop_map(Nudge::To),
        1 => prop_oneof![Just(i32::MAX), Just(i32::MIN), Just(0), Just(-1), Just(1)]
            .prop_map(Nudge::Extreme),
    ]
}

/// Figures a [`Nudge`] can move.
const KNOBS: usize = 40;

fn mv(t: &mut Option<MilliVolts>, n: Nudge, scale: i32) {
    if let Some(v) = t {
        v.0 = n.apply(v.0, scale);
    }
}

fn ma(t: &mut Option<MilliAmps>, n: Nudge) {
    if let Some(v) = t {
        v.0 = n.apply(v.0, 100);
    }
}

fn dc(t: &mut Option<DeciCelsius>, n: Nudge) {
    if let Some(v) = t {
        // Temperatures move a tenth as far: a nudge of 150 is 15.0 °C.
        v.0 = match n {
            Nudge::By(d) => v.0.saturating_add(d / 10),
            Nudge::To(x) => x / 10,
            Nudge::Extreme(x) => x,
        };
    }
}

/// Moves figure `knob` of `config` by `n`.
fn apply(config: &mut Config, knob: usize, n: Nudge) {
    let cells = i32::from(config.cell_count);
    let p = &mut config.protection;
    let hyst = |h: &mut MilliVolts, scale: i32| h.0 = n.apply(h.0, scale);
    match knob {
        0 => mv(&mut p.cell_over_voltage_mv.operating, n, 1),
        1 => mv(&mut p.cell_over_voltage_mv.recommended, n, 1),
        2 => mv(&mut p.cell_over_voltage_mv.maximum, n, 1),
        3 => hyst(&mut p.cell_over_voltage_mv.hysteresis, 1),
        4 => mv(&mut p.cell_under_voltage_mv.operating, n, 1),
        5 => mv(&mut p.cell_under_voltage_mv.recommended, n, 1),
        6 => mv(&mut p.cell_under_voltage_mv.maximum, n, 1),
        7 => hyst(&mut p.cell_under_voltage_mv.hysteresis, 1),
        8 => mv(&mut p.pack_over_voltage_mv.operating, n, cells),
        9 => mv(&mut p.pack_over_voltage_mv.maximum, n, cells),
        10 => mv(&mut p.pack_under_voltage_mv.operating, n, cells),
        11 => mv(&mut p.pack_under_voltage_mv.maximum, n, cells),
        12 => dc(&mut p.charge_over_temperature_dc.maximum, n),
        13 => dc(&mut p.charge_under_temperature_dc.maximum, n),
        14 => dc(&mut p.charge_under_temperature_dc.recommended, n),
        15 => dc(&mut p.discharge_over_temperature_dc.maximum, n),
        16 => dc(&mut p.discharge_under_temperature_dc.maximum, n),
        17 => ma(&mut p.charge_over_current_ma.maximum, n),
        18 => ma(&mut p.discharge_over_current_ma.operating, n),
        19 => mv(&mut p.cell_imbalance_mv.maximum, n, 1),
        20 => hyst(&mut p.cell_imbalance_mv.hysteresis, 1),
        21 => {
            let c = &mut p.charge_under_temperature_dc;
            c.hysteresis.0 = n.apply(c.hysteresis.0, 1) / 10;
        }
        22 => mv(&mut p.pack_voltage_mismatch_mv.maximum, n, cells),
        23 => config.balance.start_mv.0 = n.apply(config.balance.start_mv.0, 1),
        24 => config.chemistry = CellChemistry::ALL[n.apply(0, 1).unsigned_abs() as usize % 3],
        _ => charge_knob(config, knob, n),
    }
}

fn charge_knob(config: &mut Config, knob: usize, n: Nudge) {
    if let Some(s) = &mut config.soc {
        match knob {
            25 => return s.empty_cell_mv.0 = n.apply(s.empty_cell_mv.0, 1),
            26 => return s.usable_full_ocv_mv.0 = n.apply(s.usable_full_ocv_mv.0, 1),
            27 => return s.usable_empty_ocv_mv.0 = n.apply(s.usable_empty_ocv_mv.0, 1),
            _ => {}
        }
    }
    let Some(c) = &mut config.charge else { return };
    let f = |v: &mut MilliVolts| v.0 = n.apply(v.0, 1);
    match knob {
        28 => f(&mut c.cell_max_mv),
        29 => f(&mut c.absorption_cell_mv),
        30 => f(&mut c.float_cell_mv),
        31 => f(&mut c.full_charge_cell_mv),
        32 => f(&mut c.absorption_start_cell_mv),
        33 => f(&mut c.rebulk_cell_mv),
        34 => f(&mut c.cvl_floor_cell_mv),
        35 => f(&mut c.cvl_margin_mv),
        // The charge table's end, where it stops the current, and the discharge table's start.
        36 | 37 => {
            let table = if knob == 36 {
                &mut c.charge_by_cell_max_mv
            } else {
                &mut c.discharge_by_cell_min_mv
            };
            let mut points: Vec<(i32, u16)> = table.points().iter().map(|p| (p.x, p.y.0)).collect();
            let i = if knob == 36 { points.len() - 1 } else { 0 };
            points[i].0 = n.apply(points[i].0, 1);
            if let Ok(t) = Table::new(&points) {
                *table = t;
            }
        }
        // The whole charge window moved together: targets that keep their order.
        _ => {
            let d = n.apply(0, 1).clamp(-2_000, 2_000);
            for v in [
                &mut c.cell_max_mv,
                &mut c.absorption_cell_mv,
                &mut c.float_cell_mv,
                &mut c.full_charge_cell_mv,
                &mut c.absorption_start_cell_mv,
                &mut c.rebulk_cell_mv,
                &mut c.cvl_floor_cell_mv,
            ] {
                v.0 = v.0.saturating_add(d);
            }
        }
    }
}

/// A preset of random size and its chemistry or another.
fn preset() -> impl Strategy<Value = Config> {
    prop_oneof![
        (1..=32u16).prop_map(Config::tesla_model_s),
        (1..=1_000u16).prop_map(Config::lfp_16s),
    ]
}

/// Settings around the presets: up to three figures moved.
pub fn settings() -> impl Strategy<Value = Config> {
    (preset(), prop::collection::vec((0..KNOBS, nudge()), 0..=3)).prop_map(|(mut config, moves)| {
        for (knob, n) in moves {
            apply(&mut config, knob, n);
        }
        config
    })
}
