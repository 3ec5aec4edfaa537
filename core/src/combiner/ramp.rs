//! The ramp of the current limits each inverter is told.
//!
//! A pack controller ramps its own limits after its contactors close
//! ([`contactors.limit_ramp_ms`](crate::ContactorConfig::limit_ramp_ms)), but in a parallel
//! system the inverters read the combiner's limits, and those would still step from zero to the
//! bank's whole limit when the first pack joins, and up again when another joins. So every
//! increase of a limit the combiner announces to an inverter rises in a straight line, at that
//! inverter's cap per [`limit_ramp_ms`](super::CombinerConfig::limit_ramp_ms): from zero to the
//! cap in that time, the way a pack's limit rises from zero to its configured maximum. A ramp
//! starts when the limit the combiner computes rises above the one announced, and starts again
//! from the announced value when a pack joins.
//!
//! The ramp only ever lowers a limit: whenever the computed limit is at or below the ramp's
//! line it is announced as it is, so a reduction (a pack's own limit, a stale pack dropped, an
//! escalation) applies at once, and the guarantee that no pack is pushed beyond its own limit
//! holds with the ramp as without it. The line rises in [`STEPS`] equal steps, each at a
//! deadline ([`Ramp::next_deadline`]); its state changes only when the computed limit or the
//! step changes, both of which happen only at inputs and deadlines, so an early or repeated
//! `handle_timeout` changes nothing.

use crate::close_ramp::STEPS;
use crate::time::{Duration, Instant};

/// One direction's ramp towards one inverter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Ramp {
    /// Where the line starts, mA: the limit announced when the ramp started.
    base_ma: i32,
    /// When the ramp started; `None` while the announced limit is the computed one.
    since: Option<Instant>,
}

impl Ramp {
    /// Starts the line again from `announced_ma` at `now` (a pack joined).
    pub(super) fn restart(&mut self, now: Instant, announced_ma: i32) {
        self.base_ma = announced_ma;
        self.since = Some(now);
    }

    /// The limit to announce at `now` for a computed limit of `target_ma`, and whether the ramp
    /// binds it. `full_ma` over `ramp_ms` is the ramp's rate (the inverter's cap); a ramp time
    /// of 0 announces every limit as computed.
    pub(super) fn apply(
        &mut self,
        now: Instant,
        ramp_ms: u32,
        full_ma: i32,
        target_ma: i32,
    ) -> (i32, bool) {
        let line = match self.since {
            Some(since) => self.line_ma(now, since, ramp_ms, full_ma),
            None => Some(self.base_ma),
        };
        match line {
            // Over, or at or above the computed limit: nothing to hold back, and a later
            // increase ramps from here.
            Some(line) if target_ma > line && ramp_ms > 0 => {
                if self.since.is_none() {
                    self.since = Some(now);
                }
                (line, true)
            }
            _ => {
                self.base_ma = target_ma;
                self.since = None;
                (target_ma, false)
            }
        }
    }

    /// The line at `now`, or `None` once the ramp time has passed since `since`.
    fn line_ma(&self, now: Instant, since: Instant, ramp_ms: u32, full_ma: i32) -> Option<i32> {
        let ramp_us = ramp_us(ramp_ms);
        let elapsed_us = now.saturating_since(since).as_micros();
        if elapsed_us >= ramp_us {
            return None;
        }
        let step = step_us(ramp_us);
        let granted_us = (elapsed_us / step).saturating_mul(step);
        // A rate below 2^31 mA times at most 2^42 µs stays below 2^73: u128 holds it, and the
        // quotient is below the rate's full scale.
        let full = u128::from(full_ma.max(0).unsigned_abs());
        let rise = full * u128::from(granted_us) / u128::from(ramp_us.max(1));
        let rise_ma = i32::try_from(rise).unwrap_or(i32::MAX);
        Some(self.base_ma.saturating_add(rise_ma))
    }

    /// When the line next rises (the end of the ramp included), while a ramp binds.
    pub(super) fn next_deadline(&self, now: Instant, ramp_ms: u32) -> Option<Instant> {
        let since = self.since?;
        let ramp_us = ramp_us(ramp_ms);
        let elapsed_us = now.saturating_since(since).as_micros();
        if elapsed_us >= ramp_us {
            return None;
        }
        let step = step_us(ramp_us);
        let next_us = (elapsed_us / step).saturating_add(1).saturating_mul(step).min(ramp_us);
        Some(since.saturating_add(Duration::from_micros(next_us)))
    }
}

fn ramp_us(ramp_ms: u32) -> u64 {
    Duration::from_millis(u64::from(ramp_ms)).as_micros()
}

fn step_us(ramp_us: u64) -> u64 {
    (ramp_us / STEPS).max(1)
}
