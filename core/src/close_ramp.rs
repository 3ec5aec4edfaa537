//! The ramp of the current limits the inverter is told after the contactors close.
//!
//! While the contactors are open every limit is zero; the moment they close, protection and the
//! charge controller would hand the inverter their full limits in one step, and an inverter
//! that follows its limits at once puts that step on the cells and the contactors that have
//! just closed. So for `contactors.limit_ramp_ms` after the close each limit in
//! [`Action::Limits`](crate::Action::Limits) is capped at its configured maximum times the time
//! since the close over the ramp time: it rises from zero in a straight line. The cap only ever
//! lowers a limit: whatever protection or the charge controller asks for below it (a fault, a
//! full cell) applies at once, and a reduction is never delayed. The cap is computed afresh at
//! every evaluation from its time, so between two evaluations the limit stays where it was, on
//! the safe side.
//!
//! The limits in force ([`Status::limits`](crate::Status::limits)) and the pack's
//! [`BatteryView`](crate::BatteryView) are not ramped: a combiner that joins this pack to
//! others reads what the pack can carry, and current the other packs push through it at the
//! join is not something its inverter-facing limit could hold back. The combiner ramps what it
//! tells its own inverters itself (`combiner/ramp.rs`).

use crate::action::{CurrentLimits, LimitReason};
use crate::config::Config;
use crate::contactor::SequenceState;
use crate::time::{Duration, Instant};
use crate::units::MilliAmps;

/// When the contactors last closed, while they stay closed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CloseRamp {
    closed_at: Option<Instant>,
}

impl CloseRamp {
    /// Follows the sequence: starts the ramp when it reaches `Closed`, forgets it when it
    /// leaves (a stop, an emergency open), so every close ramps again.
    pub(crate) fn track(&mut self, now: Instant, state: SequenceState) {
        if state == SequenceState::Closed {
            self.closed_at.get_or_insert(now);
        } else {
            self.closed_at = None;
        }
    }

    /// Caps `limits` at the ramp's allowance at `now`, with [`LimitReason::ClosingRamp`] where
    /// the cap binds. Nothing changes once the ramp is over, while the contactors are not
    /// closed, or with a ramp time of 0.
    ///
    /// The allowance rises in [`STEPS`] equal steps, each at a deadline
    /// ([`next_deadline`](Self::next_deadline)): between two steps it stays put, so an early or
    /// repeated `handle_timeout` changes nothing, as the driving contract requires.
    pub(crate) fn apply(&self, now: Instant, config: &Config, limits: &mut CurrentLimits) {
        let Some(closed_at) = self.closed_at else { return };
        let ramp_us = ramp_us(config);
        let elapsed_us = now.saturating_since(closed_at).as_micros();
        if elapsed_us >= ramp_us {
            return;
        }
        let step = step_us(ramp_us);
        let granted_us = (elapsed_us / step).saturating_mul(step).min(ramp_us);
        // A maximum below 2^31 mA times a ramp of at most u32::MAX ms (below 2^42 µs) stays
        // below 2^73: u128 holds it, and the quotient is below the maximum.
        let cap = |max: MilliAmps| {
            let max_ma = u128::from(max.0.max(0).unsigned_abs());
            let scaled = max_ma * u128::from(granted_us) / u128::from(ramp_us);
            MilliAmps(i32::try_from(scaled).unwrap_or(max.0))
        };
        let charge_cap = cap(config.charge_current_max_ma);
        if charge_cap < limits.charge_ma {
            limits.charge_ma = charge_cap;
            limits.charge_reason = LimitReason::ClosingRamp;
        }
        let discharge_cap = cap(config.discharge_current_max_ma);
        if discharge_cap < limits.discharge_ma {
            limits.discharge_ma = discharge_cap;
            limits.discharge_reason = LimitReason::ClosingRamp;
        }
    }

    /// When the allowance next rises (the end of the ramp included), while a ramp runs.
    pub(crate) fn next_deadline(&self, now: Instant, config: &Config) -> Option<Instant> {
        let closed_at = self.closed_at?;
        let ramp_us = ramp_us(config);
        let elapsed_us = now.saturating_since(closed_at).as_micros();
        if elapsed_us >= ramp_us {
            return None;
        }
        let step = step_us(ramp_us);
        let next_us = (elapsed_us / step).saturating_add(1).saturating_mul(step).min(ramp_us);
        Some(closed_at + Duration::from_micros(next_us))
    }
}

/// The steps of a ramp: 2 % of the maximum each, every 100 ms with the default ramp of 5 s.
pub(crate) const STEPS: u64 = 50;

fn ramp_us(config: &Config) -> u64 {
    Duration::from_millis(config.contactors.limit_ramp_ms.into()).as_micros()
}

fn step_us(ramp_us: u64) -> u64 {
    (ramp_us / STEPS).max(1)
}
