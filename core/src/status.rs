//! The telemetry snapshot returned by [`Bms::status`](crate::Bms::status). Nothing in it is needed
//! for safety; it tells people what the core is doing and why.

use crate::action::{CurrentLimits, PrechargeFailure};
use crate::balance::BalanceStatus;
pub use crate::blocker::Blocker;
use crate::charge::ChargeStatus;
use crate::contactor::SequenceState;
use crate::measure::Summary;
use crate::protection::{RULE_COUNT, RuleId, RuleStatus};
use crate::soc::SocStatus;
use crate::time::Instant;
use crate::units::{MilliAmps, MilliVolts};

/// Commanded and reported position of one contactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ContactorStatus {
    /// What the core commands.
    pub commanded_closed: bool,
    /// What its feedback last reported, if it has any.
    pub reported_closed: Option<bool>,
}

/// Inputs the core could not use, and events it could not queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    /// Values for a cell or sensor index beyond the configured count.
    pub out_of_range: u32,
    /// Samples older than the value already stored (ignored; the newer value is kept).
    pub out_of_order: u32,
    /// Samples stamped later than `now` (treated as sampled now).
    pub from_the_future: u32,
    /// Calls whose `now` was earlier than a previous call's (treated as the previous `now`).
    pub clock_went_back: u32,
    /// Events dropped because `poll_action` was not drained.
    pub dropped_events: u32,
}

/// Everything worth showing about the pack controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The `now` of the last call.
    pub now: Instant,
    /// Where the contactor sequence stands.
    pub sequence: SequenceState,
    /// A `Start` is waiting or in progress.
    pub close_requested: bool,
    /// What forbids closing right now, if anything.
    pub close_blocker: Option<Blocker>,
    /// Per contactor, indexed by [`ContactorId::index`](crate::ContactorId::index).
    pub contactors: [ContactorStatus; 3],
    /// Why the last failed precharge attempt failed.
    pub last_precharge_failure: Option<PrechargeFailure>,
    /// The current limits in force, with reasons. After a close, what the inverter is told
    /// ([`Action::Limits`](crate::Action::Limits)) rises to these from zero over
    /// `contactors.limit_ramp_ms`.
    pub limits: CurrentLimits,
    /// Which cells bleed, and why balancing is or is not running.
    pub balance: BalanceStatus,
    /// Per rule, indexed by [`RuleId::index`].
    pub rules: [RuleStatus; RULE_COUNT],
    /// Extremes of the cell voltages and temperatures.
    pub summary: Summary,
    /// Latest current, if ever received.
    pub current_ma: Option<MilliAmps>,
    /// Latest pack voltage, if ever received.
    pub pack_mv: Option<MilliVolts>,
    /// Latest bus voltage, if ever received.
    pub bus_mv: Option<MilliVolts>,
    /// The charge controller: stage, charge voltage limit and its current limits with their
    /// reasons; `None` without a `charge` section.
    pub charge: Option<ChargeStatus>,
    /// State of charge and health; `None` without a `soc` section, and until the first
    /// complete set of measurements.
    pub soc: Option<SocStatus>,
    /// Rejected inputs and dropped events.
    pub counters: Counters,
}

impl Status {
    /// The first latched maximum-safety fault, if any.
    pub fn latched(&self) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| self.rules[r.index()].latched)
    }
}
