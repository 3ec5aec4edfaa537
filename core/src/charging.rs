//! Charge control and state of charge inside the pack controller: [`Charging`] owns the
//! [`ChargeController`] and the [`SocEstimator`] the configuration asks for, feeds them from the
//! stored measurements once per new current sample, and hands their limits to [`Bms`](crate::Bms).
//!
//! Protection stays first: the charge controller's limits can only lower what protection allows
//! (see `Bms::limits`), and nothing here can raise a limit, close a contactor or clear a fault.

use crate::action::{CurrentLimits, LimitReason};
use crate::charge::{ChargeController, ChargeInput, ChargeStatus, Stage};
use crate::config::Config;
use crate::contactor::SequenceState;
use crate::measure::{Measurements, Summary};
use crate::soc::{Initial, SocEstimator, SocInput, SocSnapshot, SocStatus};
use crate::time::{Duration, Instant};
use crate::units::{DeciCelsius, MilliVolts};

/// The charge controller and the SoC estimator of one pack, each present when configured.
#[derive(Clone, Debug)]
pub(crate) struct Charging {
    charge: Option<ChargeController>,
    /// Started at the first complete set of cell voltages (see [`Charging::update`]).
    soc: Option<SocEstimator>,
    /// Where the estimator starts; `None` reads the OCV table at the first complete set of
    /// cell voltages (the contactors are open then, so the pack rests).
    soc_initial: Option<Initial>,
    /// Sample time of the last current sample fed to both.
    fed_at: Option<Instant>,
}

impl Charging {
    /// For a validated `config`.
    pub(crate) fn new(config: &Config, now: Instant) -> Charging {
        // `Config::validate` has checked the charge section, so this cannot fail.
        let charge = config
            .charge
            .clone()
            .and_then(|c| ChargeController::new(c, config.cell_count, now).ok());
        Charging { charge, soc: None, soc_initial: None, fed_at: None }
    }

    /// Restarts the estimator from `initial` at the next update; until then the old estimate
    /// stays in force.
    pub(crate) fn restore_soc(&mut self, initial: Initial) {
        self.soc_initial = Some(initial);
    }

    pub(crate) fn charge_status(&self) -> Option<ChargeStatus> {
        self.charge.as_ref().map(|c| *c.status())
    }

    pub(crate) fn soc_status(&self) -> Option<SocStatus> {
        self.soc.as_ref().map(|s| *s.status())
    }

    pub(crate) fn since_full_charge(&self, now: Instant) -> Option<Duration> {
        self.charge.as_ref().map(|c| c.since_full_charge(now))
    }

    pub(crate) fn restore_since_full_charge(&mut self, now: Instant, ago: Duration) {
        if let Some(c) = &mut self.charge {
            c.restore_since_full_charge(now, ago);
        }
    }

    pub(crate) fn soc_snapshot(&self, now: Instant) -> Option<SocSnapshot> {
        self.soc.as_ref().map(|s| s.snapshot(now))
    }

    /// Feeds both with the measurements when a new current sample has arrived and every cell
    /// and sensor has been received; the time rules of the charge controller run at every call.
    pub(crate) fn update(
        &mut self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        summary: &Summary,
        sequence: SequenceState,
    ) {
        if let Some(charge) = &mut self.charge {
            charge.handle_timeout(now);
        }
        let Some(current) = m.current else { return };
        if self.fed_at.is_some_and(|at| current.at <= at) {
            return;
        }
        let (Some(min), Some(max), Some(mean)) =
            (summary.cell_min, summary.cell_max, summary.cell_mean_mv)
        else {
            return;
        };
        let (Some(t_min), Some(t_max)) = (summary.temperature_min, summary.temperature_max) else {
            return;
        };
        if summary.cell_missing.is_some() || summary.temperature_missing.is_some() {
            return;
        }
        self.fed_at = Some(current.at);
        let pack_mv = m.pack.map_or_else(
            || MilliVolts(summary.cell_sum_mv.unwrap_or(0).clamp(0, i32::MAX.into()) as i32),
            |p| p.value,
        );
        if self.soc.is_none() || self.soc_initial.is_some() {
            if let Some(soc_config) = config.soc {
                let initial = self
                    .soc_initial
                    .take()
                    .unwrap_or(Initial::FromOcv { cell_mv: MilliVolts(mean) });
                self.soc = Some(SocEstimator::new(soc_config, now, initial));
            }
        }
        let at_cvl = self.charge.as_ref().is_some_and(|c| {
            let s = c.status();
            let margin =
                i64::from(c.config().absorption_start_margin_mv.0) * i64::from(config.cell_count);
            s.stage != Stage::Bulk && i64::from(pack_mv.0) + margin >= i64::from(s.cvl_mv.0)
        });
        let open = matches!(sequence, SequenceState::Open | SequenceState::RetryWait { .. })
            && m.feedback.iter().all(|f| f.is_none_or(|f| !f.value));
        // Stale cell voltages (old, or frozen: see `measure/frozen.rs`) are unknown data: the
        // estimator keeps counting charge without them, and the charge controller keeps its
        // last limits (the staleness fault opens the contactors anyway).
        let cell_limit = Duration::from_millis(config.freshness.cell_voltage_ms.into());
        let cells_fresh =
            summary.cell_oldest.is_some_and(|o| now.saturating_since(o.at) < cell_limit);
        if let Some(soc) = &mut self.soc {
            let input = SocInput {
                sampled_at: current.at,
                current_ma: current.value,
                cell_mean_mv: MilliVolts(mean),
                cell_min_mv: MilliVolts(min.value),
                cell_max_mv: MilliVolts(max.value),
                temperature_dc: DeciCelsius(crate::units::mean_i32(t_min.value, t_max.value)),
                at_cvl,
                contactors_open: open,
            };
            if cells_fresh {
                soc.update(now, &input);
            } else {
                soc.update_counting(now, &input);
            }
        }
        let soc = self.soc.as_ref().map(|s| s.status().usable);
        if let Some(charge) = self.charge.as_mut().filter(|_| cells_fresh) {
            let input = ChargeInput {
                cell_max_mv: MilliVolts(max.value),
                cell_min_mv: MilliVolts(min.value),
                pack_mv,
                current_ma: current.value,
                temperature_min_dc: DeciCelsius(t_min.value),
                temperature_max_dc: DeciCelsius(t_max.value),
                soc,
            };
            charge.update(now, &input);
        }
    }

    /// When the charge controller's time rules want to run next.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.charge.as_ref().and_then(ChargeController::poll_timeout)
    }

    /// Lowers `limits` to the charge controller's where those are smaller, with its reason.
    pub(crate) fn apply(&self, limits: &mut CurrentLimits) {
        let Some(charge) = &self.charge else { return };
        let s = charge.status();
        if s.charge_limit_ma.0 < limits.charge_ma.0 {
            limits.charge_ma = s.charge_limit_ma;
            limits.charge_reason = LimitReason::Charge(s.charge_reason);
        }
        if s.discharge_limit_ma.0 < limits.discharge_ma.0 {
            limits.discharge_ma = s.discharge_limit_ma;
            limits.discharge_reason = LimitReason::Charge(s.discharge_reason);
        }
    }
}
