//! Charge control: the charge voltage limit (CVL) and the charge and discharge current limits
//! one pack asks of its inverters, each with the constraint that binds it.
//!
//! ## Stages
//!
//! **Bulk** charges towards `cell_count * absorption_cell_mv`. It becomes **absorption** when
//! the pack voltage comes within `cell_count * absorption_start_margin_mv` of that target or the
//! highest cell reaches `absorption_start_cell_mv`, either held for `stage_debounce_ms`.
//! Absorption keeps the same target until the cells have converged (spread at most
//! `converged_spread_mv`, charge current at most `tail_current_ma`, pack still at its target, all
//! held for `stage_debounce_ms`) or `absorption_timeout_ms` has passed, and then becomes
//! **float**: a lower target (`float_cell_mv`) and a small charge current
//! (`float_current_max_ma`). Float goes back to bulk when the pack voltage stays below
//! `cell_count * rebulk_cell_mv` for `stage_debounce_ms`, when the SoC falls below `rebulk_soc`,
//! or after `float_max_ms`.
//!
//! Absorption goes back to bulk by the same voltage rule: when the pack voltage stays below
//! `cell_count * rebulk_cell_mv` for `stage_debounce_ms` (a load took more than the charger
//! gives), the pack has lost the voltage it was absorbing at, and its absorption time starts
//! again once it is back. A dip shorter than the debounce does not count. The rule waits
//! while either condition that ends bulk still holds (the highest cell at
//! `absorption_start_cell_mv`, or the pack near its target): bulk would turn straight back into
//! absorption, and the round trip would only restart the absorption timeout, which must end a
//! charge that cannot converge.
//!
//! A **periodic full charge** falls due `full_charge_every_ms` after the last one (or after
//! start): it raises the bulk and absorption target to `full_charge_cell_mv` for balancing and
//! SoC calibration, sends float back to bulk, and ends with the next absorption, converged or
//! timed out (a pack that cannot converge must not be held at the raised target for ever).
//! The time since the last one survives a restart when the adapter persists
//! [`ChargeController::since_full_charge`] and hands it back to
//! [`ChargeController::restore_since_full_charge`] (through `Bms`), so restarts do not postpone
//! it.
//!
//! ## Charge voltage limit
//!
//! The stage gives a target. While the highest cell is within `cvl_band_mv` of `cell_max_mv`, a
//! proportional controller may lower the limit below it:
//! `pack_mv + cvl_gain * cell_count * (cell_max_mv - cvl_margin_mv - highest cell)`. When the
//! highest cell is below its setpoint this allows the pack to rise by a share of what would
//! bring every cell to the setpoint; above it, the limit falls below the pack voltage and the
//! charger backs off. The limit never goes below `cell_count * cvl_floor_cell_mv`. It falls at
//! once but rises at most `cvl_ramp_mv_per_s`, so it never jumps up: not after the controller
//! lets go, not on a change of stage.
//!
//! ## Current limits
//!
//! Each limit is the configured maximum times the smallest factor of its tables (cell voltage,
//! temperature over the whole range from the coldest to the hottest sensor, and SoC when known),
//! and the reason names the table and the input that bind. The charge limit is zero once the
//! highest cell is at `cell_max_mv`, whatever the table says, and at most
//! `float_current_max_ma` in float.
//!
//! The cell-voltage tables read the cells through a hysteresis of `cell_table_hysteresis_mv`:
//! the highest cell they see follows a rise at once but a fall only once the measurement is
//! more than the hysteresis below, and then stays that far above it (the lowest cell the other
//! way round). On the steep end of a table one millivolt is a large step of current (a third of
//! an ampere per mV for the 100 Ah LFP preset), so without it a cell that reads a millivolt or
//! two up and down from sample to sample moves the limit with every sample. The cut at
//! `cell_max_mv` sees the same held value: once reached, charging stays off until the highest
//! cell is more than the hysteresis below it.
//!
//! **Recovery ramp.** A limit falls at once but rises at most `charge_ramp_ma_per_s` (or
//! `discharge_ramp_ma_per_s`), whatever makes it rise: a table factor that recovers, the end of
//! float, a plausible sample after a rejected one. While the ramp holds a limit below what the
//! tables and the stage allow, its reason is [`ChargeLimitReason::Ramp`]. As for the charge
//! voltage limit, allowance below one mA is carried over to the next step, and one step counts
//! as at most a minute. Only a plausible sample raises a limit, by the time since the previous
//! sample (plausible or not); [`ChargeController::handle_timeout`] may only lower one.
//!
//! The first plausible sample since start sets both limits at once, without the ramp. Only
//! inside [`Bms`](crate::Bms) does an inverter hear them, and there the first sample always
//! arrives with the contactors open: nothing closes on data never received, and the limits are
//! zero while open. A ramp from zero at the first sample would only be part-way up when the
//! contactors close, by however long closing took, so the inverter would see a step at closing
//! all the same, just an arbitrary one. The step at closing is the pack controller's to soften
//! (by restarting this ramp from zero when the contactors close), not a matter of when the
//! first sample came. A plausible sample after a rejected one does ramp from zero: that
//! happens while the pack runs.
//!
//! ## Hostile inputs
//!
//! A sample with an impossible value (a cell above 10 V or below 0 V, the lowest cell above the
//! highest, a pack above 2 000 V, a temperature outside -100..200 °C or its minimum above its
//! maximum, an SoC above 1000 permille) is rejected and counted; both current limits go to zero
//! until a plausible sample arrives, and nothing else changes. Time that goes backwards is
//! counted and treated as no time passing. A single step counts as at most a minute for the
//! ramps, so a clock that jumps forward cannot release them.

mod config;
mod limits;
mod presets;

pub use crate::table::{Point, TABLE_POINTS, Table, TableError};
pub use config::{
    ChargeConfig, ChargeConfigError, ChargeProblem, MAX_CHARGE_PERIOD_MS, MAX_RAMP_MA_PER_S,
};

use crate::time::{Duration, Instant};
use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};
use limits::{CellHold, Ramp};

/// Highest plausible cell voltage; above it a sample is rejected.
pub const CELL_MV_PLAUSIBLE_MAX: i32 = 10_000;
/// Highest plausible pack voltage (2 000 V); above it a sample is rejected.
pub const PACK_MV_PLAUSIBLE_MAX: i32 = 2_000_000;
/// Plausible temperatures, -100.0 °C ..= 200.0 °C; outside, a sample is rejected.
pub const TEMPERATURE_DC_PLAUSIBLE: (i32, i32) = (-1_000, 2_000);
/// The most time one update counts for the ramps.
const MAX_STEP_MS: u64 = 60_000;

/// One measurement for [`ChargeController::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChargeInput {
    /// Highest cell voltage.
    pub cell_max_mv: MilliVolts,
    /// Lowest cell voltage.
    pub cell_min_mv: MilliVolts,
    /// Pack voltage.
    pub pack_mv: MilliVolts,
    /// Pack current, positive when charging.
    pub current_ma: MilliAmps,
    /// Coldest temperature sensor.
    pub temperature_min_dc: DeciCelsius,
    /// Hottest temperature sensor.
    pub temperature_max_dc: DeciCelsius,
    /// State of charge, if known.
    pub soc: Option<Permille>,
}

/// The charge stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Charging towards the target at whatever current the limits allow.
    Bulk,
    /// Holding the target until the cells converge or the timeout.
    Absorption,
    /// Holding the lower float target with a small current.
    Float,
}

/// Why the controller entered its present stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StageReason {
    /// The controller started in bulk.
    Start,
    /// Bulk: the pack voltage reached the target minus the margin.
    PackVoltageReached,
    /// Bulk: the highest cell reached `absorption_start_cell_mv`.
    CellVoltageReached,
    /// Absorption: the cells converged and the current fell to the tail.
    Converged,
    /// Absorption: the timeout passed.
    AbsorptionTimeout,
    /// Absorption or float: the pack voltage stayed below the re-bulk voltage.
    PackVoltageLow,
    /// Float: the SoC fell below the re-bulk SoC.
    SocLow,
    /// Float: `float_max_ms` passed.
    FloatTimeLimit,
    /// Float: a periodic full charge fell due.
    FullChargeDue,
}

/// What sets the charge voltage limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CvlReason {
    /// The stage's target.
    Target,
    /// The cell-overvoltage controller lowered it, for this highest cell.
    CellVoltage {
        /// The highest cell.
        cell_max_mv: MilliVolts,
    },
    /// It is rising towards the target or the controller's value at the ramp rate.
    Ramp,
    /// The controller wanted less, but the limit does not go below the floor.
    Floor,
}

/// One of the current-limit tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitTable {
    /// `charge_by_cell_max_mv`, over the highest cell (mV).
    ChargeByCellMax,
    /// `charge_by_temperature_dc` (0.1 °C).
    ChargeByTemperature,
    /// `charge_by_soc` (permille).
    ChargeBySoc,
    /// `discharge_by_cell_min_mv`, over the lowest cell (mV).
    DischargeByCellMin,
    /// `discharge_by_temperature_dc` (0.1 °C).
    DischargeByTemperature,
    /// `discharge_by_soc` (permille).
    DischargeBySoc,
}

/// What binds a charge or discharge current limit of the charge controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChargeLimitReason {
    /// No plausible sample has arrived yet: the limit is zero.
    NoData,
    /// The last sample was rejected as implausible: the limit is zero.
    InputRejected,
    /// Every factor is 1000 permille: the configured maximum applies.
    ConfiguredMaximum,
    /// This table gives the smallest factor, at this input (in the table's unit).
    Table {
        /// The table.
        table: LimitTable,
        /// The input where it binds; for the cell-voltage tables the cell as they see it,
        /// through their hysteresis (`cell_table_hysteresis_mv`).
        input: i32,
    },
    /// The highest cell is at or above `cell_max_mv` (or reached it and has not yet fallen
    /// more than `cell_table_hysteresis_mv` below): no charge current at all.
    CellAtMaximum {
        /// The highest cell as the cell-voltage tables see it, through their hysteresis.
        cell_max_mv: MilliVolts,
    },
    /// The float stage's current limit.
    FloatStage,
    /// The limit is rising at its ramp rate (`charge_ramp_ma_per_s` or
    /// `discharge_ramp_ma_per_s`) towards what the tables and the stage allow, after a cut, a
    /// rejected sample or the end of float.
    Ramp,
}

/// Hostile-input counters (saturating).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChargeCounters {
    /// Samples rejected as implausible.
    pub rejected_inputs: u32,
    /// Calls whose `now` was earlier than a previous call's.
    pub time_went_back: u32,
}

/// What the charge controller asks for now, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChargeStatus {
    /// The stage.
    pub stage: Stage,
    /// Why it entered the stage.
    pub stage_reason: StageReason,
    /// When it entered the stage.
    pub stage_since: Instant,
    /// The charge voltage limit for the inverters.
    pub cvl_mv: MilliVolts,
    /// What sets it.
    pub cvl_reason: CvlReason,
    /// The stage's target, which the limit reaches when nothing lowers it.
    pub cvl_target_mv: MilliVolts,
    /// Largest charge current (magnitude).
    pub charge_limit_ma: MilliAmps,
    /// What binds it.
    pub charge_reason: ChargeLimitReason,
    /// Largest discharge current (magnitude).
    pub discharge_limit_ma: MilliAmps,
    /// What binds it.
    pub discharge_reason: ChargeLimitReason,
    /// A periodic full charge is due or under way: the target is `full_charge_cell_mv`.
    pub full_charge_due: bool,
    /// Hostile-input counters.
    pub counters: ChargeCounters,
}

/// The charge controller of one pack; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct ChargeController {
    config: ChargeConfig,
    /// Series cells: the per-cell voltages of the configuration times this are pack voltages.
    cell_count: u16,
    status: ChargeStatus,
    /// The latest `now` seen by any call; time never goes back below it.
    now: Instant,
    /// The time of the last plausible update, for the ramp.
    last_update: Option<Instant>,
    /// The last plausible sample, until a rejected one replaces it.
    last_input: Option<ChargeInput>,
    /// Ramp allowance not yet spent, in mV * ms (below one mV's worth).
    ramp_credit: u64,
    /// The time of the last sample, plausible or not, for the current-limit ramps.
    limits_at: Option<Instant>,
    /// The recovery ramp of the charge current limit.
    charge_ramp: Ramp,
    /// The recovery ramp of the discharge current limit.
    discharge_ramp: Ramp,
    /// The cells as the cell-voltage tables see them, with their hysteresis.
    cells: CellHold,
    /// Since when the present stage's debounced exit condition towards the next stage has held
    /// (bulk to absorption, absorption to float).
    condition_since: Option<Instant>,
    /// Since when the pack voltage has stayed below the re-bulk voltage (absorption and float).
    low_since: Option<Instant>,
    /// When the last periodic full charge ended (or the controller started).
    last_full: Instant,
    /// Time since the last full charge that passed before `last_full` (restored after a
    /// restart); it counts towards the next one.
    full_carried: Duration,
}

impl ChargeController {
    /// A controller for a pack of `cell_count` series cells (`1..=MAX_CELLS`; the pack's
    /// [`Config::cell_count`](crate::Config::cell_count), which holds the count once for every
    /// part), in bulk at `now`, with the limit at the bulk target and both current limits at zero
    /// until the first sample, which sets them at once.
    pub fn new(
        config: ChargeConfig,
        cell_count: u16,
        now: Instant,
    ) -> Result<ChargeController, ChargeConfigError> {
        config.validate()?;
        config::check_cell_count(cell_count)?;
        let target = pack_mv(cell_count, config.absorption_cell_mv);
        let status = ChargeStatus {
            stage: Stage::Bulk,
            stage_reason: StageReason::Start,
            stage_since: now,
            cvl_mv: target,
            cvl_reason: CvlReason::Target,
            cvl_target_mv: target,
            charge_limit_ma: MilliAmps(0),
            charge_reason: ChargeLimitReason::NoData,
            discharge_limit_ma: MilliAmps(0),
            discharge_reason: ChargeLimitReason::NoData,
            full_charge_due: false,
            counters: ChargeCounters::default(),
        };
        Ok(ChargeController {
            config,
            cell_count,
            status,
            now,
            last_update: None,
            last_input: None,
            ramp_credit: 0,
            limits_at: None,
            charge_ramp: Ramp::default(),
            discharge_ramp: Ramp::default(),
            cells: CellHold::default(),
            condition_since: None,
            low_since: None,
            last_full: now,
            full_carried: Duration::ZERO,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ChargeConfig {
        &self.config
    }

    /// Series cells of the pack.
    pub fn cell_count(&self) -> u16 {
        self.cell_count
    }

    /// What the controller asks for now.
    pub fn status(&self) -> &ChargeStatus {
        &self.status
    }

    /// How long ago, as of `now`, the last periodic full charge ended (counting from the
    /// controller's start, plus whatever [`Self::restore_since_full_charge`] carried over, if
    /// none has ended since). The adapter persists it, so that restarts more often than
    /// `full_charge_every_ms` do not postpone the full charge for ever.
    pub fn since_full_charge(&self, now: Instant) -> Duration {
        now.saturating_since(self.last_full).saturating_add(self.full_carried)
    }

    /// Restores [`Self::since_full_charge`] after a restart: from `now` on it counts from
    /// `ago`, so the next periodic full charge falls due when `ago` plus the time from now
    /// reaches `full_charge_every_ms` (at the next update or timeout, if it already has).
    pub fn restore_since_full_charge(&mut self, now: Instant, ago: Duration) {
        self.last_full = self.advance(now);
        self.full_carried = ago;
    }

    /// Takes one measurement: stage rules, then the charge voltage limit, then the current
    /// limits.
    pub fn update(&mut self, now: Instant, input: &ChargeInput) {
        let now = self.advance(now);
        let limits_step_us = step_us(self.limits_at, now);
        self.limits_at = Some(now);
        if !plausible(input) {
            let c = &mut self.status.counters;
            c.rejected_inputs = c.rejected_inputs.saturating_add(1);
            self.last_input = None;
            self.status.charge_limit_ma = MilliAmps(0);
            self.status.charge_reason = ChargeLimitReason::InputRejected;
            self.status.discharge_limit_ma = MilliAmps(0);
            self.status.discharge_reason = ChargeLimitReason::InputRejected;
            self.charge_ramp.reset();
            self.discharge_ramp.reset();
            return;
        }
        // The first plausible sample since start sets the limits at once (module documentation).
        let limits_ramp_us = self.last_update.map(|_| limits_step_us);
        let step_ms = step_us(self.last_update, now) / 1_000;
        self.last_update = Some(now);
        self.last_input = Some(*input);
        self.cells.update(input, self.config.cell_table_hysteresis_mv);
        self.time_rules(now);
        self.stage_rules(now, input);
        self.update_cvl(input, step_ms);
        self.update_limits(input, limits_ramp_us);
    }

    /// Applies the rules that depend on time alone (absorption timeout, float time limit,
    /// periodic full charge). Calling it early, late or twice is harmless. A stage it enters may
    /// lower a current limit at once; it never raises one (only a sample does, at the ramp).
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        self.time_rules(now);
        // The target may have fallen; the limit follows at once. It only rises with data.
        if self.status.cvl_mv > self.status.cvl_target_mv {
            self.status.cvl_mv = self.status.cvl_target_mv;
            self.status.cvl_reason = CvlReason::Target;
            self.ramp_credit = 0;
        }
        // The stage may have capped a limit; it follows at once, but rises only with data.
        if let Some(input) = self.last_input {
            self.update_limits(&input, Some(0));
        }
    }

    /// The next time a rule that depends on time alone may fire, for [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let since = self.status.stage_since;
        let stage = match self.status.stage {
            Stage::Bulk => None,
            Stage::Absorption => {
                Some(since + Duration::from_millis(self.config.absorption_timeout_ms.into()))
            }
            Stage::Float => self.config.float_max_ms.map(|ms| since + Duration::from_millis(ms)),
        };
        let full = match self.config.full_charge_every_ms {
            Some(ms) if !self.status.full_charge_due => {
                Some(self.last_full + Duration::from_millis(ms).saturating_sub(self.full_carried))
            }
            _ => None,
        };
        match (stage, full) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Records `now` and returns the time to use: never earlier than any time seen before.
    fn advance(&mut self, now: Instant) -> Instant {
        if now < self.now {
            let c = &mut self.status.counters;
            c.time_went_back = c.time_went_back.saturating_add(1);
        } else {
            self.now = now;
        }
        self.now
    }

    fn time_rules(&mut self, now: Instant) {
        if let Some(every) = self.config.full_charge_every_ms {
            let due = Duration::from_millis(every).saturating_sub(self.full_carried);
            if !self.status.full_charge_due && now - self.last_full >= due {
                self.status.full_charge_due = true;
                if self.status.stage == Stage::Float {
                    self.enter(now, Stage::Bulk, StageReason::FullChargeDue);
                }
            }
        }
        let in_stage = now - self.status.stage_since;
        match self.status.stage {
            Stage::Bulk => {}
            Stage::Absorption => {
                let timeout = Duration::from_millis(self.config.absorption_timeout_ms.into());
                if in_stage >= timeout {
                    self.enter(now, Stage::Float, StageReason::AbsorptionTimeout);
                }
            }
            Stage::Float => {
                if let Some(ms) = self.config.float_max_ms {
                    if in_stage >= Duration::from_millis(ms) {
                        self.enter(now, Stage::Bulk, StageReason::FloatTimeLimit);
                    }
                }
            }
        }
        self.status.cvl_target_mv = self.target();
    }

    fn stage_rules(&mut self, now: Instant, input: &ChargeInput) {
        let c = &self.config;
        let target = i64::from(self.target().0);
        let margin = pack(self.cell_count, c.absorption_start_margin_mv);
        let at_target = i64::from(input.pack_mv.0) >= target - margin;
        let pack_low = i64::from(input.pack_mv.0) < pack(self.cell_count, c.rebulk_cell_mv);
        match self.status.stage {
            Stage::Bulk => {
                let by_cell = input.cell_max_mv >= c.absorption_start_cell_mv;
                let reason = if at_target {
                    StageReason::PackVoltageReached
                } else {
                    StageReason::CellVoltageReached
                };
                if (at_target || by_cell)
                    && held(&mut self.condition_since, now, c.stage_debounce_ms)
                {
                    self.enter(now, Stage::Absorption, reason);
                }
                if !(at_target || by_cell) {
                    self.condition_since = None;
                }
            }
            Stage::Absorption => {
                let spread = i64::from(input.cell_max_mv.0) - i64::from(input.cell_min_mv.0);
                let converged = spread <= i64::from(c.converged_spread_mv.0)
                    && input.current_ma <= c.tail_current_ma
                    && at_target;
                // Lost its voltage, and bulk would not turn straight back into absorption.
                let by_cell = input.cell_max_mv >= c.absorption_start_cell_mv;
                let lost = pack_low && !(at_target || by_cell);
                if !lost {
                    self.low_since = None;
                }
                if !converged {
                    self.condition_since = None;
                }
                if lost && held(&mut self.low_since, now, c.stage_debounce_ms) {
                    self.enter(now, Stage::Bulk, StageReason::PackVoltageLow);
                } else if converged && held(&mut self.condition_since, now, c.stage_debounce_ms) {
                    self.enter(now, Stage::Float, StageReason::Converged);
                }
            }
            Stage::Float => {
                let soc_low = match (c.rebulk_soc, input.soc) {
                    (Some(limit), Some(soc)) => soc < limit,
                    _ => false,
                };
                if soc_low {
                    self.enter(now, Stage::Bulk, StageReason::SocLow);
                } else if !pack_low {
                    self.low_since = None;
                } else if held(&mut self.low_since, now, c.stage_debounce_ms) {
                    self.enter(now, Stage::Bulk, StageReason::PackVoltageLow);
                }
            }
        }
        self.status.cvl_target_mv = self.target();
    }

    fn enter(&mut self, now: Instant, stage: Stage, reason: StageReason) {
        if self.status.stage == Stage::Absorption && stage == Stage::Float {
            // Converged or timed out, absorption ends any full charge that was under way.
            if self.status.full_charge_due {
                self.status.full_charge_due = false;
                self.last_full = now;
                self.full_carried = Duration::ZERO;
            }
        }
        self.status.stage = stage;
        self.status.stage_reason = reason;
        self.status.stage_since = now;
        self.condition_since = None;
        self.low_since = None;
    }

    /// The stage's target, pack mV.
    fn target(&self) -> MilliVolts {
        let c = &self.config;
        let cell = match self.status.stage {
            Stage::Float => c.float_cell_mv,
            Stage::Bulk | Stage::Absorption if self.status.full_charge_due => c.full_charge_cell_mv,
            Stage::Bulk | Stage::Absorption => c.absorption_cell_mv,
        };
        pack_mv(self.cell_count, cell)
    }

    fn update_cvl(&mut self, input: &ChargeInput, step_ms: u64) {
        let c = &self.config;
        let target = i64::from(self.status.cvl_target_mv.0);
        let floor = pack(self.cell_count, c.cvl_floor_cell_mv);
        let (mut want, mut reason) = (target, CvlReason::Target);
        let highest = i64::from(input.cell_max_mv.0);
        if highest >= i64::from(c.cell_max_mv.0) - i64::from(c.cvl_band_mv.0) {
            let setpoint = i64::from(c.cell_max_mv.0) - i64::from(c.cvl_margin_mv.0);
            // |cells * error| <= 192 * 20 000 and the gain is at most 1000: no overflow.
            let headroom =
                (i64::from(self.cell_count) * (setpoint - highest) * i64::from(c.cvl_gain.0))
                    .div_euclid(1_000);
            let controlled = i64::from(input.pack_mv.0) + headroom;
            if controlled < want {
                want = controlled;
                reason = CvlReason::CellVoltage { cell_max_mv: input.cell_max_mv };
            }
        }
        if want < floor {
            want = floor;
            reason = CvlReason::Floor;
        }
        let previous = i64::from(self.status.cvl_mv.0);
        let (cvl, reason) = if want > previous {
            self.ramp_credit = self
                .ramp_credit
                .saturating_add(u64::from(c.cvl_ramp_mv_per_s).saturating_mul(step_ms));
            let step = i64::try_from(self.ramp_credit / 1_000).unwrap_or(i64::MAX);
            self.ramp_credit %= 1_000;
            if previous.saturating_add(step) < want {
                (previous + step, CvlReason::Ramp)
            } else {
                self.ramp_credit = 0;
                (want, reason)
            }
        } else {
            self.ramp_credit = 0;
            (want, reason)
        };
        // floor <= cvl <= target, both of which fit an i32 (validated cell counts and voltages).
        self.status.cvl_mv = MilliVolts(clamp_i32(cvl));
        self.status.cvl_reason = reason;
    }

    /// Sets both current limits from what the tables and the stage allow for `input`, through
    /// their ramps with `step_us` of allowance (0: they may only fall; `None`: at once).
    fn update_limits(&mut self, input: &ChargeInput, step_us: Option<u64>) {
        let c = &self.config;
        let (charge, discharge) =
            limits::wanted(c, self.status.stage, input, self.cells.cells(input));
        let s = &mut self.status;
        let ((charge_ma, charge_reason), (discharge_ma, discharge_reason)) = match step_us {
            Some(us) => (
                self.charge_ramp.step(s.charge_limit_ma, charge, c.charge_ramp_ma_per_s, us),
                self.discharge_ramp.step(
                    s.discharge_limit_ma,
                    discharge,
                    c.discharge_ramp_ma_per_s,
                    us,
                ),
            ),
            None => {
                self.charge_ramp.reset();
                self.discharge_ramp.reset();
                (charge, discharge)
            }
        };
        (s.charge_limit_ma, s.charge_reason) = (charge_ma, charge_reason);
        (s.discharge_limit_ma, s.discharge_reason) = (discharge_ma, discharge_reason);
    }
}

/// The time from `last` to `now` for a ramp, in µs, at most [`MAX_STEP_MS`]; 0 for the first
/// call.
fn step_us(last: Option<Instant>, now: Instant) -> u64 {
    last.map_or(0, |last| (now - last).as_micros().min(MAX_STEP_MS * 1_000))
}

/// Whether a stage condition that holds now has held for `debounce_ms` since `since` (which it
/// sets to `now` if it was not set).
fn held(since: &mut Option<Instant>, now: Instant, debounce_ms: u32) -> bool {
    let since = *since.get_or_insert(now);
    now - since >= Duration::from_millis(debounce_ms.into())
}

fn plausible(i: &ChargeInput) -> bool {
    let cells = 0 <= i.cell_min_mv.0
        && i.cell_min_mv <= i.cell_max_mv
        && i.cell_max_mv.0 <= CELL_MV_PLAUSIBLE_MAX;
    let pack = (0..=PACK_MV_PLAUSIBLE_MAX).contains(&i.pack_mv.0);
    let (lo, hi) = TEMPERATURE_DC_PLAUSIBLE;
    let temperature = lo <= i.temperature_min_dc.0
        && i.temperature_min_dc <= i.temperature_max_dc
        && i.temperature_max_dc.0 <= hi;
    let soc = i.soc.is_none_or(|s| s <= Permille::FULL);
    cells && pack && temperature && soc
}

/// `cells * per_cell` in pack mV.
fn pack(cells: u16, per_cell: MilliVolts) -> i64 {
    i64::from(cells) * i64::from(per_cell.0)
}

fn pack_mv(cells: u16, per_cell: MilliVolts) -> MilliVolts {
    MilliVolts(clamp_i32(pack(cells, per_cell)))
}

fn clamp_i32(v: i64) -> i32 {
    v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}
