//! Configuration of the SoC estimator: presets and validation.

use core::fmt;

use super::ocv::Chemistry;
use crate::problem::Problem;
use crate::units::{MilliAmps, MilliVolts, Permille};

/// Configuration of one [`SocEstimator`](super::SocEstimator). Plain data; use a preset and
/// override fields, then [`SocConfig::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
pub struct SocConfig {
    /// Selects the OCV table.
    pub chemistry: Chemistry,
    /// Nominal capacity of the string, the start value of the capacity estimate.
    pub capacity_mah: u32,
    /// Share of the charging current that ends up stored (coulombic efficiency).
    pub charge_efficiency: Permille,
    /// Full anchor: current magnitude at or below this while at the charge voltage limit.
    pub tail_current_ma: MilliAmps,
    /// Full anchor: how long the tail condition must hold.
    pub full_hold_ms: u32,
    /// Empty anchor: lowest cell at or below this.
    pub empty_cell_mv: MilliVolts,
    /// Empty anchor: current magnitude at or below this.
    pub empty_current_ma: MilliAmps,
    /// Empty anchor: how long the empty condition must hold.
    pub empty_hold_ms: u32,
    /// Rest: current magnitude at or below this (after the offset correction).
    pub rest_current_ma: MilliAmps,
    /// Rest: how long before the mean cell voltage counts as an OCV.
    pub rest_ms: u32,
    /// Standard deviation of a rested voltage against the table (measurement, hysteresis,
    /// incomplete relaxation), µV. Divided by the table's local slope, it is the SoC
    /// uncertainty of a rested-OCV anchor.
    pub ocv_sigma_uv: u32,
    /// Largest offset the learning may reach (either sign).
    pub offset_max_ma: MilliAmps,
    /// Time constant of the offset averaging.
    pub offset_tau_ms: u32,
    /// Assumed worst gain error of the current sensor, for the confidence.
    pub current_gain_error: Permille,
    /// Assumed worst offset error left after learning, for the confidence.
    pub offset_uncertainty_ma: MilliAmps,
    /// Largest plausible current magnitude; readings beyond are clamped and counted.
    pub current_max_ma: MilliAmps,
    /// Resistance learning: the smallest current step.
    pub resistance_step_ma: MilliAmps,
    /// Resistance learning: the longest sample period over which a step counts.
    pub resistance_period_ms: u32,
    /// The longest gap between samples counted as such; a longer gap counts only this much
    /// (the current in between is unknown).
    pub max_sample_gap_ms: u32,
    /// The rested cell voltage shown as 0 % usable ([`SocStatus::usable`](super::SocStatus)):
    /// the bottom of the window the pack is run in.
    pub usable_empty_ocv_mv: MilliVolts,
    /// The rested cell voltage shown as 100 % usable: the top of the window, normally the
    /// charge target, so a finished charge reads 100 % although the cells are not at the top
    /// of their OCV table.
    pub usable_full_ocv_mv: MilliVolts,
    /// The mean cell's equivalent circuit and filter tuning.
    pub model: CellModel,
}

/// A 1-RC equivalent circuit of one series cell (group) and the filter's noise figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
pub struct CellModel {
    /// Series resistance.
    pub r0_uohm: u32,
    /// Resistance of the RC pair.
    pub r1_uohm: u32,
    /// Time constant of the RC pair.
    pub tau_ms: u32,
    /// Activation temperature of both resistances, K: they are the figures above at 25 °C and
    /// follow `R(T) = R25 · exp(k · (1/T − 1/298.15 K))` with the cell temperature (limited to
    /// −30..60 °C); 0 keeps them constant. Once the estimator has learned a series resistance
    /// from current steps, that (scaled back to 25 °C) takes the place of `r0_uohm`.
    pub resistance_activation_k: u32,
    /// Standard deviation of the model's voltage error at low current, µV (table, hysteresis,
    /// measurement); below 10 °C it counts double, since the table is for 25 °C.
    pub voltage_sigma_uv: u32,
    /// Relative uncertainty of the resistances, which widens the voltage error in proportion
    /// to the current.
    pub resistance_uncertainty: Permille,
    /// Random-walk growth of the SoC standard deviation, ppm per square-root second: how fast
    /// the filter stops trusting its own integration and listens to the voltage again.
    pub soc_walk_ppm: u32,
}

/// A [`SocConfig`] field that cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocConfigError {
    /// The field, e.g. `capacity_mah` or `model.tau_ms`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: Problem,
}

impl fmt::Display for SocConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "soc.{}: {}", self.field, self.problem)
    }
}

impl core::error::Error for SocConfigError {}

/// Resistance × capacity of a Tesla Model S group (74 Panasonic NCR18650PF in parallel, 233 Ah):
/// R0 ≈ 0.35 mΩ at 100 ms and R0 + R1 ≈ 0.57 mΩ at 10 s (battery.md), in µΩ·Ah, so that any
/// capacity of the same cells scales to the same per-cell figures.
const NCA_R0_UOHM_AH: u64 = 350 * 233;
const NCA_R1_UOHM_AH: u64 = 220 * 233;
/// Resistance × capacity for LFP: for a 100 Ah prismatic cell, R0 = 0.30 mΩ and R1 = 0.30 mΩ
/// with tau = 40 s. Plausible figures of the order catalogue DC resistances of such cells give
/// (0.5–0.8 mΩ at 10 s), not measured; override them with measured ones.
const LFP_R0_UOHM_AH: u64 = 300 * 100;
const LFP_R1_UOHM_AH: u64 = 300 * 100;

/// Activation temperature of the resistances in both presets. Reported activation energies of
/// the charge-transfer and electrolyte resistance of Li-ion cells span about 25–35 kJ/mol
/// (3000–4000 K); the presets take the low end, so the model rather under- than over-states the
/// rise in the cold (the filter also widens its voltage error there). About ×2.5 at 0 °C and
/// ×0.53 at 45 °C.
const ACTIVATION_K: u32 = 3_000;

impl SocConfig {
    /// Tesla Model S modules in series (6 groups of 74 NCA cells each, 233 Ah). Everything here
    /// is per cell or per string, so `modules` changes nothing: the series count is the pack's
    /// [`Config::cell_count`](crate::Config::cell_count). It stays so that callers compile.
    pub fn tesla_model_s(modules: u16) -> SocConfig {
        let _ = modules;
        let capacity_mah = 233_000;
        let c = capacity_mah as i32; // 1 C in mA
        SocConfig {
            chemistry: Chemistry::Nca,
            capacity_mah,
            charge_efficiency: Permille(998),
            tail_current_ma: MilliAmps(c / 50),
            full_hold_ms: 60_000,
            empty_cell_mv: MilliVolts(3_000),
            empty_current_ma: MilliAmps(c / 5),
            empty_hold_ms: 10_000,
            rest_current_ma: MilliAmps(c / 500),
            rest_ms: 30 * 60_000,
            ocv_sigma_uv: 5_000,
            offset_max_ma: MilliAmps(2_000),
            offset_tau_ms: 60_000,
            current_gain_error: Permille(10),
            offset_uncertainty_ma: MilliAmps(100),
            current_max_ma: MilliAmps(10 * c),
            // C/10 (23 A): a smaller step on 0.35 mΩ is too few millivolts to measure.
            resistance_step_ma: MilliAmps(c / 10),
            resistance_period_ms: 2_000,
            max_sample_gap_ms: 10_000,
            // 7.5 % and 95.6 % of the table: the charge target of 4.10 V is 100 % usable.
            usable_empty_ocv_mv: MilliVolts(3_300),
            usable_full_ocv_mv: MilliVolts(4_100),
            model: CellModel {
                r0_uohm: per_capacity(NCA_R0_UOHM_AH, capacity_mah),
                r1_uohm: per_capacity(NCA_R1_UOHM_AH, capacity_mah),
                tau_ms: 20_000,
                resistance_activation_k: ACTIVATION_K,
                voltage_sigma_uv: 10_000,
                resistance_uncertainty: Permille(300),
                soc_walk_ppm: 300,
            },
        }
    }

    /// A 16S LFP battery of `capacity_ah`.
    pub fn lfp_16s(capacity_ah: u16) -> SocConfig {
        let capacity_mah = u32::from(capacity_ah) * 1_000;
        let c = i32::from(capacity_ah) * 1_000; // 1 C in mA
        SocConfig {
            chemistry: Chemistry::Lfp,
            capacity_mah,
            charge_efficiency: Permille(999),
            tail_current_ma: MilliAmps(c / 20),
            full_hold_ms: 60_000,
            empty_cell_mv: MilliVolts(2_800),
            empty_current_ma: MilliAmps(c / 5),
            empty_hold_ms: 10_000,
            rest_current_ma: MilliAmps(c / 500),
            rest_ms: 30 * 60_000,
            // LFP hysteresis is of the order of 10 mV on the plateau.
            ocv_sigma_uv: 10_000,
            offset_max_ma: MilliAmps(1_000),
            offset_tau_ms: 60_000,
            current_gain_error: Permille(10),
            offset_uncertainty_ma: MilliAmps(100),
            current_max_ma: MilliAmps(10 * c),
            // C/50: a home's load steps are small against a 100 Ah rack, and on the plateau the
            // SoC depends on a good resistance (a 2 A step over 0.5 mΩ is still 1 mV).
            resistance_step_ma: MilliAmps(c / 50),
            resistance_period_ms: 2_000,
            max_sample_gap_ms: 10_000,
            // 3.8 % and 98.4 % of the table; a pack charged to 3.50 V per cell rests at about
            // 3.45 V.
            usable_empty_ocv_mv: MilliVolts(3_000),
            usable_full_ocv_mv: MilliVolts(3_450),
            model: CellModel {
                r0_uohm: per_capacity(LFP_R0_UOHM_AH, capacity_mah),
                r1_uohm: per_capacity(LFP_R1_UOHM_AH, capacity_mah),
                tau_ms: 40_000,
                resistance_activation_k: ACTIVATION_K,
                voltage_sigma_uv: 20_000,
                resistance_uncertainty: Permille(300),
                // Almost none: on the plateau the voltage says too little to be listened to.
                soc_walk_ppm: 20,
            },
        }
    }

    /// Checks every field against its allowed range.
    pub fn validate(&self) -> Result<(), SocConfigError> {
        let m = &self.model;
        let checks: [(&'static str, i64, i64, i64); 23] = [
            ("capacity_mah", self.capacity_mah.into(), 100, 100_000_000),
            ("charge_efficiency", self.charge_efficiency.0.into(), 800, 1000),
            ("tail_current_ma", self.tail_current_ma.0.into(), 0, i32::MAX.into()),
            ("full_hold_ms", self.full_hold_ms.into(), 0, 86_400_000),
            ("empty_cell_mv", self.empty_cell_mv.0.into(), 1_000, 4_000),
            ("empty_current_ma", self.empty_current_ma.0.into(), 0, i32::MAX.into()),
            ("empty_hold_ms", self.empty_hold_ms.into(), 0, 86_400_000),
            ("rest_current_ma", self.rest_current_ma.0.into(), 0, i32::MAX.into()),
            ("rest_ms", self.rest_ms.into(), 1_000, 86_400_000),
            ("ocv_sigma_uv", self.ocv_sigma_uv.into(), 100, 500_000),
            ("offset_max_ma", self.offset_max_ma.0.into(), 0, 1_000_000),
            ("offset_tau_ms", self.offset_tau_ms.into(), 1_000, 86_400_000),
            ("current_gain_error", self.current_gain_error.0.into(), 0, 500),
            ("offset_uncertainty_ma", self.offset_uncertainty_ma.0.into(), 0, 1_000_000),
            ("current_max_ma", self.current_max_ma.0.into(), 1, i32::MAX.into()),
            ("resistance_step_ma", self.resistance_step_ma.0.into(), 1, i32::MAX.into()),
            ("max_sample_gap_ms", self.max_sample_gap_ms.into(), 1, 3_600_000),
            ("model.r0_uohm", m.r0_uohm.into(), 1, 10_000_000),
            ("model.r1_uohm", m.r1_uohm.into(), 0, 10_000_000),
            ("model.tau_ms", m.tau_ms.into(), 100, 86_400_000),
            ("model.resistance_activation_k", m.resistance_activation_k.into(), 0, 10_000),
            ("model.voltage_sigma_uv", m.voltage_sigma_uv.into(), 100, 1_000_000),
            ("model.soc_walk_ppm", m.soc_walk_ppm.into(), 0, 100_000),
        ];
        for (field, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(SocConfigError {
                    field,
                    problem: Problem::OutOfRange { value, min, max },
                });
            }
        }
        let r = i64::from(m.resistance_uncertainty.0);
        if r > 1000 {
            let problem = Problem::OutOfRange { value: r, min: 0, max: 1000 };
            return Err(SocConfigError { field: "model.resistance_uncertainty", problem });
        }
        let (lo, hi) = self.chemistry.ocv_range_mv();
        let empty = i64::from(self.usable_empty_ocv_mv.0);
        let full = i64::from(self.usable_full_ocv_mv.0);
        if !(lo..hi).contains(&empty) {
            let problem = Problem::OutOfRange { value: empty, min: lo, max: hi - 1 };
            return Err(SocConfigError { field: "usable_empty_ocv_mv", problem });
        }
        if !(empty + 1..=hi).contains(&full) {
            let problem = Problem::OutOfRange { value: full, min: empty + 1, max: hi };
            return Err(SocConfigError { field: "usable_full_ocv_mv", problem });
        }
        let period = i64::from(self.resistance_period_ms);
        if !(1..=60_000).contains(&period) {
            let problem = Problem::OutOfRange { value: period, min: 1, max: 60_000 };
            return Err(SocConfigError { field: "resistance_period_ms", problem });
        }
        Ok(())
    }
}

/// `uohm_ah` (µΩ·Ah) for a cell of `capacity_mah`, at least 1 µΩ.
fn per_capacity(uohm_ah: u64, capacity_mah: u32) -> u32 {
    let r = uohm_ah * 1000 / u64::from(capacity_mah.max(1));
    r.clamp(1, u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_scale_resistance_by_capacity() {
        let tesla = SocConfig::tesla_model_s(16);
        assert_eq!(tesla.validate(), Ok(()));
        assert_eq!((tesla.model.r0_uohm, tesla.model.r1_uohm), (350, 220));
        let lfp = SocConfig::lfp_16s(100);
        assert_eq!(lfp.validate(), Ok(()));
        assert_eq!((lfp.model.r0_uohm, lfp.model.r1_uohm), (300, 300));
        assert_eq!(SocConfig::lfp_16s(200).model.r0_uohm, 150);
    }

    #[test]
    fn validation_names_the_field() {
        let mut c = SocConfig::lfp_16s(100);
        c.capacity_mah = 0;
        assert_eq!(c.validate().map_err(|e| e.field), Err("capacity_mah"));
        let mut c = SocConfig::tesla_model_s(16);
        c.model.tau_ms = 0;
        assert_eq!(c.validate().map_err(|e| e.field), Err("model.tau_ms"));
    }
}
