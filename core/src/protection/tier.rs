//! The debounce / hysteresis / latch state of one tier of one rule.

use super::{Location, Tier};
use crate::action::FaultChange;
use crate::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TierState {
    /// Not violated.
    Clear,
    /// Violated continuously since the sample time `since`; trips at `since + debounce`.
    Pending { since: Instant },
    /// Tripped. For the maximum tier this is the latched state.
    Active,
}

/// One tier's state plus where and at what value it was raised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct TierCell {
    pub state: TierState,
    pub location: Location,
    pub value: i32,
}

impl TierCell {
    pub const CLEAR: TierCell =
        TierCell { state: TierState::Clear, location: Location::Pack, value: 0 };

    /// Advances the state at `now`. `violating`: the value is beyond the threshold; `released`:
    /// it is back inside the hysteresis. `sampled_at` is when the violating value was sampled
    /// (`None`: now). Returns the change to report, if any.
    pub fn step(
        &mut self,
        now: Instant,
        tier: Tier,
        violating: bool,
        released: bool,
        sampled_at: Option<Instant>,
        debounce: Duration,
    ) -> Option<FaultChange> {
        match self.state {
            TierState::Clear | TierState::Pending { .. } if !violating => {
                self.state = TierState::Clear;
                None
            }
            TierState::Clear | TierState::Pending { .. } => {
                let since = match self.state {
                    TierState::Pending { since } => since,
                    // A sample from the future (a confused adapter clock) counts from now.
                    _ => sampled_at.unwrap_or(now).min(now),
                };
                if now >= since + debounce {
                    self.state = TierState::Active;
                    Some(FaultChange::Raised)
                } else {
                    self.state = TierState::Pending { since };
                    None
                }
            }
            // The maximum tier latches: only `ClearFaults` leaves it.
            TierState::Active if tier == Tier::Maximum => None,
            TierState::Active if released => {
                self.state = TierState::Clear;
                Some(FaultChange::Released)
            }
            TierState::Active => None,
        }
    }
}
