//! The charge and discharge current limits: what the tables and the stage allow
//! ([`wanted`]), the hysteresis on the cell voltages the cell-voltage tables read
//! ([`CellHold`]), and the recovery ramp that lets a limit rise only gradually ([`Ramp`]).

use super::config::ChargeConfig;
use super::{ChargeInput, ChargeLimitReason, LimitTable, Stage};
use crate::units::{MilliAmps, MilliVolts, Permille};

/// A current limit with the reason that binds it.
pub(super) type Limit = (MilliAmps, ChargeLimitReason);

/// The highest and lowest cell voltage as the cell-voltage tables see them.
///
/// A backlash (play) of `cell_table_hysteresis_mv`: the held highest cell follows every rise
/// of the measured one at once, but a fall only once the measurement is more than the
/// hysteresis below it, and then stays that far above it. The lowest cell works the other way
/// round. So a cell that sits on a steep part of a table and reads a few millivolts up and down
/// from one sample to the next does not move the limit with every sample, and the held value
/// errs only towards the smaller current (by at most the hysteresis).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct CellHold {
    /// The held highest cell, mV, once a plausible sample has arrived.
    high: Option<i32>,
    /// The held lowest cell, mV.
    low: Option<i32>,
}

impl CellHold {
    /// Moves the held values with a plausible sample.
    pub(super) fn update(&mut self, input: &ChargeInput, hysteresis: MilliVolts) {
        let h = hysteresis.0.max(0);
        let (high, low) = (input.cell_max_mv.0, input.cell_min_mv.0);
        self.high = Some(match self.high {
            Some(held) => held.clamp(high, high.saturating_add(h)),
            None => high,
        });
        self.low = Some(match self.low {
            Some(held) => held.clamp(low.saturating_sub(h), low),
            None => low,
        });
    }

    /// The held highest and lowest cell, or those of `input` before the first update.
    pub(super) fn cells(&self, input: &ChargeInput) -> (MilliVolts, MilliVolts) {
        (
            MilliVolts(self.high.unwrap_or(input.cell_max_mv.0)),
            MilliVolts(self.low.unwrap_or(input.cell_min_mv.0)),
        )
    }
}

/// The charge and discharge limits the tables and the stage allow for `input`, before the ramp:
/// `(charge, discharge)`. `cells` are the highest and lowest cell as [`CellHold`] holds them.
pub(super) fn wanted(
    c: &ChargeConfig,
    stage: Stage,
    input: &ChargeInput,
    cells: (MilliVolts, MilliVolts),
) -> (Limit, Limit) {
    let (high, low) = cells;
    let soc = input.soc.map(|s| i32::from(s.0));
    let (tmin, tmax) = (input.temperature_min_dc.0, input.temperature_max_dc.0);
    let (t_factor, t_at) = c.charge_by_temperature_dc.min_over(tmin, tmax);
    let charge = [
        Some((LimitTable::ChargeByCellMax, c.charge_by_cell_max_mv.eval(high.0), high.0)),
        Some((LimitTable::ChargeByTemperature, t_factor, t_at)),
        soc.map(|s| (LimitTable::ChargeBySoc, c.charge_by_soc.eval(s), s)),
    ];
    let mut charge = limit(c.charge_current_max_ma, &charge);
    if high >= c.cell_max_mv {
        charge = (MilliAmps(0), ChargeLimitReason::CellAtMaximum { cell_max_mv: high });
    } else if stage == Stage::Float && c.float_current_max_ma < charge.0 {
        charge = (c.float_current_max_ma, ChargeLimitReason::FloatStage);
    }
    let (t_factor, t_at) = c.discharge_by_temperature_dc.min_over(tmin, tmax);
    let discharge = [
        Some((LimitTable::DischargeByCellMin, c.discharge_by_cell_min_mv.eval(low.0), low.0)),
        Some((LimitTable::DischargeByTemperature, t_factor, t_at)),
        soc.map(|s| (LimitTable::DischargeBySoc, c.discharge_by_soc.eval(s), s)),
    ];
    (charge, limit(c.discharge_current_max_ma, &discharge))
}

/// The recovery ramp of one current limit: the limit falls at once and rises at most at the
/// ramp rate, like the charge voltage limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Ramp {
    /// Allowance not yet spent, in mA * µs / s (below one mA's worth, 1 000 000), so that many
    /// short steps rise as far as one long one.
    credit: u64,
}

/// One mA of ramp allowance, in the unit of [`Ramp::credit`].
const MA: u64 = 1_000_000;

impl Ramp {
    /// The limit after `step_us` of ramp from `previous` towards `want`: `want` itself when it
    /// is not above `previous` or within reach, else `previous` plus what `rate_ma_per_s`
    /// allows in `step_us`, with [`ChargeLimitReason::Ramp`]. A step of 0 never raises the
    /// limit.
    pub(super) fn step(
        &mut self,
        previous: MilliAmps,
        want: Limit,
        rate_ma_per_s: u32,
        step_us: u64,
    ) -> Limit {
        let want_ma = want.0;
        let (from, to) = (i64::from(previous.0.max(0)), i64::from(want_ma.0.max(0)));
        if to <= from {
            self.credit = 0;
            return want;
        }
        // A validated rate (at most 10^6) times a capped step (at most 6 * 10^7 µs) is far
        // below u64::MAX; saturating all the same.
        self.credit = self.credit.saturating_add(u64::from(rate_ma_per_s).saturating_mul(step_us));
        let rise = i64::try_from(self.credit / MA).unwrap_or(i64::MAX);
        self.credit %= MA;
        if from.saturating_add(rise) < to {
            // from < from + rise < to <= i32::MAX: the sum fits.
            (MilliAmps(from.saturating_add(rise) as i32), ChargeLimitReason::Ramp)
        } else {
            self.credit = 0;
            want
        }
    }

    /// Forgets the allowance not yet spent, when the limit has been cut.
    pub(super) fn reset(&mut self) {
        self.credit = 0;
    }
}

/// `max` times the smallest factor (the first on ties), with its reason.
fn limit(max: MilliAmps, factors: &[Option<(LimitTable, Permille, i32)>]) -> Limit {
    let mut best: Option<(LimitTable, Permille, i32)> = None;
    for &(table, factor, input) in factors.iter().flatten() {
        if best.is_none_or(|(_, f, _)| factor < f) {
            best = Some((table, factor, input));
        }
    }
    match best {
        Some((table, factor, input)) if factor < Permille::FULL => {
            (MilliAmps(factor.of(max.0.max(0))), ChargeLimitReason::Table { table, input })
        }
        _ => (MilliAmps(max.0.max(0)), ChargeLimitReason::ConfiguredMaximum),
    }
}
