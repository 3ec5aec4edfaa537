//! The charge controller's configuration and its validation.

use core::fmt;

use crate::problem::Problem;
use crate::sizes::MAX_CELLS;
use crate::table::{Table, TableError};
use crate::units::{MilliAmps, MilliVolts, Permille};

/// Longest period a configuration may give for the periodic full charge, the float limit or the
/// absorption timeout: one year, in ms.
pub const MAX_CHARGE_PERIOD_MS: u64 = 366 * 24 * 3_600 * 1_000;

/// Fastest ramp a configuration may give a current limit: 1 000 A per second.
pub const MAX_RAMP_MA_PER_S: u32 = 1_000_000;

/// Everything the charge controller needs to know. Cell voltages are per cell; the controller
/// multiplies them by the pack's series cell count ([`Config::cell_count`](crate::Config),
/// given to [`ChargeController::new`](super::ChargeController::new)) for pack figures. Start from a preset
/// ([`ChargeConfig::tesla_model_s`], [`ChargeConfig::lfp_16s`]) and change what differs.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct ChargeConfig {
    /// Charge current with every table factor at 1000 permille (magnitude).
    pub charge_current_max_ma: MilliAmps,
    /// Discharge current with every table factor at 1000 permille (magnitude).
    pub discharge_current_max_ma: MilliAmps,

    /// Charge factor over the highest cell voltage (mV).
    pub charge_by_cell_max_mv: Table,
    /// Charge factor over temperature (0.1 °C); the worst factor anywhere between the coldest and
    /// the hottest sensor applies.
    pub charge_by_temperature_dc: Table,
    /// Charge factor over state of charge (permille); skipped while the SoC is unknown.
    pub charge_by_soc: Table,
    /// Discharge factor over the lowest cell voltage (mV).
    pub discharge_by_cell_min_mv: Table,
    /// Discharge factor over temperature (0.1 °C), like the charge one.
    pub discharge_by_temperature_dc: Table,
    /// Discharge factor over state of charge (permille); skipped while the SoC is unknown.
    pub discharge_by_soc: Table,
    /// Hysteresis of the cell-voltage tables' inputs (and of the cut at `cell_max_mv`): the
    /// highest cell they see follows a fall of the measured one only once it is more than this
    /// below, and the lowest cell a rise likewise; `0..=100`, 0 for none.
    pub cell_table_hysteresis_mv: MilliVolts,
    /// How fast the charge current limit may rise, mA per second, `1..=1_000_000`. It falls at
    /// once.
    pub charge_ramp_ma_per_s: u32,
    /// How fast the discharge current limit may rise, mA per second, `1..=1_000_000`. It falls
    /// at once.
    pub discharge_ramp_ma_per_s: u32,

    /// The highest cell must never exceed this while charging; the charge voltage limit is
    /// lowered to keep it `cvl_margin_mv` below.
    pub cell_max_mv: MilliVolts,
    /// Where the controller holds the highest cell: `cell_max_mv - cvl_margin_mv`.
    pub cvl_margin_mv: MilliVolts,
    /// The controller acts once the highest cell is within this of `cell_max_mv`; below, the
    /// stage's target applies.
    pub cvl_band_mv: MilliVolts,
    /// Proportional gain: the voltage above the present pack voltage that the limit allows is
    /// `cvl_gain * cell_count * (setpoint - highest cell)`. 1000 would allow what every cell
    /// could take if all were at the highest cell's voltage; less leaves room for a cell that
    /// rises faster than the others.
    pub cvl_gain: Permille,
    /// How fast the charge voltage limit may rise, pack mV per second. It falls at once.
    pub cvl_ramp_mv_per_s: u32,
    /// The limit never goes below `cell_count` times this, however high the highest cell: a
    /// charge voltage far below the pack's voltage makes some inverters discharge to reach it,
    /// and stopping the charge is the current limits' job.
    pub cvl_floor_cell_mv: MilliVolts,

    /// Target per cell in bulk and absorption.
    pub absorption_cell_mv: MilliVolts,
    /// Target per cell in float.
    pub float_cell_mv: MilliVolts,
    /// Target per cell in bulk and absorption while a periodic full charge is due.
    pub full_charge_cell_mv: MilliVolts,
    /// Bulk ends when the pack voltage is within `cell_count` times this of the target...
    pub absorption_start_margin_mv: MilliVolts,
    /// ...or the highest cell reaches this,
    pub absorption_start_cell_mv: MilliVolts,
    /// ...for this long without interruption. The same time confirms convergence in absorption
    /// and a low pack voltage in absorption and float, so one sample does not switch a stage.
    pub stage_debounce_ms: u32,
    /// Absorption ends when the cell spread (highest minus lowest) is at most this...
    pub converged_spread_mv: MilliVolts,
    /// ...and the charge current at most this, with the pack still at its target voltage,
    pub tail_current_ma: MilliAmps,
    /// ...or after this long in absorption, converged or not.
    pub absorption_timeout_ms: u32,
    /// Charge current limit in float.
    pub float_current_max_ma: MilliAmps,
    /// Float goes back to bulk when the pack voltage stays below `cell_count` times this (and
    /// so does absorption, see the [module documentation](super))...
    pub rebulk_cell_mv: MilliVolts,
    /// ...or the SoC falls below this (`None`: not by SoC),
    #[cfg_attr(feature = "serde", serde(default))]
    pub rebulk_soc: Option<Permille>,
    /// ...or after this long in float (`None`: never by time).
    #[cfg_attr(feature = "serde", serde(default))]
    pub float_max_ms: Option<u64>,
    /// A full charge to `full_charge_cell_mv` falls due this long after the last one finished
    /// (or after start); `None` disables it.
    #[cfg_attr(feature = "serde", serde(default))]
    pub full_charge_every_ms: Option<u64>,
}

/// A charge configuration value that cannot be used, with the field that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChargeConfigError {
    /// The field, e.g. `charge_by_cell_max_mv`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: ChargeProblem,
}

/// What is wrong with a charge configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChargeProblem {
    /// A plain value is wrong.
    Value(Problem),
    /// A table is wrong.
    Table(TableError),
}

/// A series cell count the controller can work with, `1..=MAX_CELLS`.
pub(super) fn check_cell_count(cells: u16) -> Result<(), ChargeConfigError> {
    range("cell_count", i64::from(cells), 1, MAX_CELLS as i64)
}

impl ChargeConfig {
    /// Checks every field and the order between them:
    /// `cvl_floor_cell_mv < float_cell_mv < absorption_cell_mv <= full_charge_cell_mv <=
    /// cell_max_mv - cvl_margin_mv`, `float_cell_mv < absorption_start_cell_mv < cell_max_mv`, `rebulk_cell_mv < float_cell_mv`,
    /// `cvl_margin_mv < cvl_band_mv`, and ranges for the rest.
    pub fn validate(&self) -> Result<(), ChargeConfigError> {
        range("charge_current_max_ma", self.charge_current_max_ma.0.into(), 1, i32::MAX.into())?;
        range(
            "discharge_current_max_ma",
            self.discharge_current_max_ma.0.into(),
            1,
            i32::MAX.into(),
        )?;
        for (field, table) in [
            ("charge_by_cell_max_mv", &self.charge_by_cell_max_mv),
            ("charge_by_temperature_dc", &self.charge_by_temperature_dc),
            ("charge_by_soc", &self.charge_by_soc),
            ("discharge_by_cell_min_mv", &self.discharge_by_cell_min_mv),
            ("discharge_by_temperature_dc", &self.discharge_by_temperature_dc),
            ("discharge_by_soc", &self.discharge_by_soc),
        ] {
            table
                .validate()
                .map_err(|e| ChargeConfigError { field, problem: ChargeProblem::Table(e) })?;
        }
        range("cell_table_hysteresis_mv", self.cell_table_hysteresis_mv.0.into(), 0, 100)?;
        range(
            "charge_ramp_ma_per_s",
            self.charge_ramp_ma_per_s.into(),
            1,
            MAX_RAMP_MA_PER_S.into(),
        )?;
        range(
            "discharge_ramp_ma_per_s",
            self.discharge_ramp_ma_per_s.into(),
            1,
            MAX_RAMP_MA_PER_S.into(),
        )?;
        range("cell_max_mv", self.cell_max_mv.0.into(), 1_000, 10_000)?;
        range("cvl_margin_mv", self.cvl_margin_mv.0.into(), 1, 500)?;
        range("cvl_band_mv", self.cvl_band_mv.0.into(), 2, 1_000)?;
        below("cvl_margin_mv", self.cvl_margin_mv, "cvl_band_mv", self.cvl_band_mv)?;
        range("cvl_gain", self.cvl_gain.0.into(), 1, 1_000)?;
        range("cvl_ramp_mv_per_s", self.cvl_ramp_mv_per_s.into(), 1, 1_000_000)?;
        let setpoint = MilliVolts(self.cell_max_mv.0 - self.cvl_margin_mv.0);
        range("cvl_floor_cell_mv", self.cvl_floor_cell_mv.0.into(), 500, 10_000)?;
        below("cvl_floor_cell_mv", self.cvl_floor_cell_mv, "float_cell_mv", self.float_cell_mv)?;
        below("float_cell_mv", self.float_cell_mv, "absorption_cell_mv", self.absorption_cell_mv)?;
        range(
            "full_charge_cell_mv",
            self.full_charge_cell_mv.0.into(),
            self.absorption_cell_mv.0.into(),
            setpoint.0.into(),
        )?;
        range("absorption_start_margin_mv", self.absorption_start_margin_mv.0.into(), 0, 500)?;
        below(
            "absorption_start_cell_mv",
            self.absorption_start_cell_mv,
            "cell_max_mv",
            self.cell_max_mv,
        )?;
        below(
            "float_cell_mv",
            self.float_cell_mv,
            "absorption_start_cell_mv",
            self.absorption_start_cell_mv,
        )?;
        range("stage_debounce_ms", self.stage_debounce_ms.into(), 0, 3_600_000)?;
        range("converged_spread_mv", self.converged_spread_mv.0.into(), 0, 1_000)?;
        range("tail_current_ma", self.tail_current_ma.0.into(), 0, i32::MAX.into())?;
        range("absorption_timeout_ms", self.absorption_timeout_ms.into(), 1_000, u32::MAX.into())?;
        range(
            "float_current_max_ma",
            self.float_current_max_ma.0.into(),
            0,
            self.charge_current_max_ma.0.into(),
        )?;
        range("rebulk_cell_mv", self.rebulk_cell_mv.0.into(), 500, 10_000)?;
        below("rebulk_cell_mv", self.rebulk_cell_mv, "float_cell_mv", self.float_cell_mv)?;
        if let Some(soc) = self.rebulk_soc {
            range("rebulk_soc", soc.0.into(), 0, 1_000)?;
        }
        for (field, period) in [
            ("float_max_ms", self.float_max_ms),
            ("full_charge_every_ms", self.full_charge_every_ms),
        ] {
            if let Some(ms) = period {
                range(field, ms.min(i64::MAX as u64) as i64, 60_000, MAX_CHARGE_PERIOD_MS as i64)?;
            }
        }
        Ok(())
    }
}

fn value(field: &'static str, problem: Problem) -> ChargeConfigError {
    ChargeConfigError { field, problem: ChargeProblem::Value(problem) }
}

fn range(field: &'static str, value_: i64, min: i64, max: i64) -> Result<(), ChargeConfigError> {
    if (min..=max).contains(&value_) {
        Ok(())
    } else {
        Err(value(field, Problem::OutOfRange { value: value_, min, max }))
    }
}

fn below(
    field: &'static str,
    v: MilliVolts,
    other: &'static str,
    o: MilliVolts,
) -> Result<(), ChargeConfigError> {
    if v < o {
        Ok(())
    } else {
        Err(value(
            field,
            Problem::MustBeBelow { other, value: v.0.into(), other_value: o.0.into() },
        ))
    }
}

impl fmt::Display for ChargeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.field)?;
        match self.problem {
            ChargeProblem::Table(e) => write!(f, "{e}"),
            ChargeProblem::Value(p) => write!(f, "{p}"),
        }
    }
}

impl core::error::Error for ChargeConfigError {}
