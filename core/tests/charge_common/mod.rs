//! Helpers shared by the charge controller's tests (`charge.rs`, `charge_ramp.rs`).

#![allow(dead_code)]

use cellwarden_core::charge::{ChargeConfig, ChargeController, ChargeInput};
use cellwarden_core::{DeciCelsius, Instant, MilliAmps, MilliVolts, Permille};
use proptest::prelude::*;

pub fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// Series cells of the pack the LFP preset (`ChargeConfig::lfp_16s`) is for.
pub const LFP_CELLS: u16 = 16;
/// Series cells of 16 Tesla Model S modules (`ChargeConfig::tesla_model_s(16)`).
pub const TESLA_16_CELLS: u16 = 96;

/// The series cells of the pack `preset(lfp)` of the property tests is for.
pub fn preset_cells(lfp: bool) -> u16 {
    if lfp { LFP_CELLS } else { TESLA_16_CELLS }
}

pub fn controller(config: ChargeConfig, cells: u16) -> ChargeController {
    ChargeController::new(config, cells, Instant::ZERO).expect("valid config")
}

/// A sample with every cell between `low` and `high`, at 25 °C, SoC unknown.
pub fn sample(high: i32, low: i32, pack: i32, current_ma: i32) -> ChargeInput {
    ChargeInput {
        cell_max_mv: MilliVolts(high),
        cell_min_mv: MilliVolts(low),
        pack_mv: MilliVolts(pack),
        current_ma: MilliAmps(current_ma),
        temperature_min_dc: DeciCelsius(250),
        temperature_max_dc: DeciCelsius(250),
        soc: None,
    }
}

/// Any plausible sample: cells 2.0–4.8 V, temperatures -30..90 °C, SoC known or not, currents
/// up to ±200 A.
pub fn any_input() -> impl Strategy<Value = ChargeInput> {
    (
        2_000i32..4_400,
        0i32..400,
        -300i32..600,
        0i32..300,
        proptest::option::of(0u16..=1_000),
        -200_000i32..200_000,
    )
        .prop_map(|(low, spread, tmin, tspread, soc, ma)| ChargeInput {
            cell_max_mv: MilliVolts(low + spread),
            cell_min_mv: MilliVolts(low),
            pack_mv: MilliVolts(low * 96),
            current_ma: MilliAmps(ma),
            temperature_min_dc: DeciCelsius(tmin),
            temperature_max_dc: DeciCelsius(tmin + tspread),
            soc: soc.map(Permille),
        })
}
