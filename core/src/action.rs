//! Everything the core asks the adapter to do or to report.

use crate::blocker::Blocker;
use crate::cell_mask::CellMask;
use crate::input::ContactorId;
use crate::rule::{Location, RuleId, Tier};
use crate::time::Instant;
use crate::units::{MilliAmps, MilliVolts};

/// One output of [`Bms::poll_action`](crate::Bms::poll_action).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Drive a contactor coil. Opens are always delivered before closes in one drain.
    Contactor {
        /// Which contactor.
        contactor: ContactorId,
        /// `true` to close, `false` to open.
        closed: bool,
    },
    /// New current limits for the inverters; emitted whenever a limit or its reason changes.
    Limits(CurrentLimits),
    /// New voltage limits for the inverters (the charge and discharge voltage limits of a
    /// 0x351-style message); emitted whenever a limit or its source changes, and once in the
    /// first drain. Derived from state like the current limits, so it is never dropped.
    VoltageLimits(VoltageLimits),
    /// Bleed exactly these cells, and stop bleeding every other. Emitted whenever the set
    /// changes, including to empty (which it does at the start of every measure window), and
    /// once with the empty set in the first drain, so the hardware starts from a known state.
    /// Like contactor commands and limits it is derived from state, so it is never dropped;
    /// [`CellMask::bits`] gives one board's balancing register.
    Balance(CellMask),
    /// A protection fault changed.
    Fault(FaultEvent),
    /// The contactor sequence did something worth logging.
    Sequence(SequenceEvent),
}

/// The current the pack may take and give now, each with the reason that binds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentLimits {
    /// Largest charge current allowed (magnitude).
    pub charge_ma: MilliAmps,
    /// Why the charge limit is what it is.
    pub charge_reason: LimitReason,
    /// Largest discharge current allowed (magnitude).
    pub discharge_ma: MilliAmps,
    /// Why the discharge limit is what it is.
    pub discharge_reason: LimitReason,
}

/// The pack voltages an inverter must keep to, as
/// [`Bms::battery_view`](crate::Bms::battery_view) reports them too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VoltageLimits {
    /// The pack voltage to charge up to and hold (constant-voltage target).
    pub charge_mv: MilliVolts,
    /// Where the charge voltage limit comes from.
    pub charge_source: VoltageSource,
    /// The pack voltage not to discharge below: cells × (operating under-voltage limit + its
    /// hysteresis), 0 without an operating tier.
    pub discharge_mv: MilliVolts,
}

/// Where a charge voltage limit comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoltageSource {
    /// The charge controller's present stage target ([`crate::charge`]).
    ChargeControl,
    /// No `charge` section: cells × (the first over-voltage tier set − its hysteresis), so
    /// that an inverter regulating to it stays below protection.
    Protection,
}

/// What binds a current limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitReason {
    /// Nothing: the configured maximum applies.
    ConfiguredMaximum,
    /// A protection rule's tier is active.
    Rule {
        /// The rule.
        rule: RuleId,
        /// Its active tier.
        tier: Tier,
        /// The cell or sensor that violated it.
        location: Location,
        /// The value that violated it, in the rule's unit.
        value: i32,
    },
    /// The contactors are not closed.
    ContactorsOpen,
    /// A graceful stop is asking for zero current before opening.
    Stopping,
    /// The contactors closed less than `contactors.limit_ramp_ms` ago: the limit is still
    /// rising from zero (see `close_ramp.rs`).
    ClosingRamp,
    /// The charge controller ([`crate::charge`]) asks for less than protection allows.
    Charge(crate::charge::ChargeLimitReason),
}

/// A change of a protection fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// When the change was decided.
    pub at: Instant,
    /// The rule.
    pub rule: RuleId,
    /// The tier that changed.
    pub tier: Tier,
    /// What happened.
    pub change: FaultChange,
    /// The cell, sensor or contactor concerned.
    pub location: Location,
    /// The value at that moment, in the rule's unit.
    pub value: i32,
}

/// What happened to a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultChange {
    /// The violation lasted its debounce time; the tier is now active (latched for the maximum
    /// safety tier).
    Raised,
    /// The value came back inside the hysteresis; the tier is no longer active.
    Released,
    /// A `ClearFaults` command cleared the latched tier.
    Cleared,
    /// A `ClearFaults` command could not clear it: the condition persists.
    ClearRefused,
}

/// Contactor sequencing events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceEvent {
    /// A `Start` could not begin closing yet; it stays requested.
    CloseBlocked {
        /// Why.
        blocker: Blocker,
    },
    /// Precharge attempt `attempt` (from 1) began.
    PrechargeStarted {
        /// Attempt number, from 1.
        attempt: u8,
    },
    /// Precharge verified; closing the positive contactor.
    PrechargeDone {
        /// How long it took.
        elapsed_ms: u32,
    },
    /// A precharge attempt failed.
    PrechargeFailed {
        /// Why.
        cause: PrechargeFailure,
        /// Which attempt failed, from 1.
        attempt: u8,
        /// Whether another attempt follows.
        will_retry: bool,
    },
    /// Both main contactors are closed and the precharge relay is open.
    Closed,
    /// A graceful stop began.
    Stopping,
    /// Contactors opened.
    Opened {
        /// How.
        how: OpenKind,
    },
}

/// Why a precharge attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrechargeFailure {
    /// The bus voltage did not rise and little current flowed: open circuit, blown precharge
    /// fuse, relay not closing.
    NoVoltageRise,
    /// The bus voltage rose but did not reach the band (or the current did not fall) before the
    /// deadline: too much capacitance or load on the bus.
    TooSlow,
    /// Current flowed but the bus voltage did not rise, or the current exceeded the short limit.
    Short,
}

/// How the contactors were opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenKind {
    /// Graceful stop: the current fell to the break current or below.
    Graceful,
    /// Graceful stop: the deadline passed with this current still flowing (or unknown).
    GracefulDeadline {
        /// The last fresh current, if any.
        current_ma: Option<MilliAmps>,
    },
    /// A maximum-safety fault opened them.
    Emergency {
        /// The rule that tripped.
        rule: RuleId,
    },
    /// An `EmergencyStop` command opened them.
    EmergencyStop,
    /// A closing sequence was abandoned: by a `Stop`, or because a contactor that should still
    /// be open reported closed. (A failed precharge attempt reports
    /// [`SequenceEvent::PrechargeFailed`] instead.)
    Aborted,
}
