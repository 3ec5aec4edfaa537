//! The combiner's inputs, outputs and status.

use crate::time::Instant;
use crate::units::{MilliAmps, MilliVolts, Permille};
use crate::view::BatteryView;

use super::{Implausible, MAX_INVERTERS, MAX_PACKS};

/// One input for [`Combiner::handle_input`](super::Combiner::handle_input).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CombinerInput {
    /// A pack's report: what it would tell an inverter on its own, and whether it is on the bus.
    Pack {
        /// The pack's number (index into [`CombinerConfig::packs`](super::CombinerConfig::packs)).
        pack: u8,
        /// When the report was made (for a CAN BMS: when its last frame arrived).
        sampled_at: Instant,
        /// The report.
        view: BatteryView,
        /// Whether the pack is connected to the bus (contactors or relay closed).
        connected: bool,
    },
    /// An inverter's keep-alive arrived.
    InverterAlive {
        /// The inverter's number.
        inverter: u8,
        /// When.
        at: Instant,
    },
    /// The current an inverter draws from (negative) or pushes into (positive) the battery.
    InverterCurrent {
        /// The inverter's number.
        inverter: u8,
        /// When it was measured.
        sampled_at: Instant,
        /// The current, positive when charging the battery.
        ma: MilliAmps,
    },
    /// A remote limit (from MQTT, the web page, an energy manager) that lowers the current
    /// limits until `until`.
    Setpoint {
        /// Largest charge current (magnitude).
        charge_ma: MilliAmps,
        /// Largest discharge current (magnitude).
        discharge_ma: MilliAmps,
        /// When the setpoint expires.
        until: Instant,
    },
    /// Withdraw the remote setpoint.
    ClearSetpoint,
    /// Leave the halted state an escalation put the combiner in, and forget escalations.
    Resume,
    /// An operator takes a pack out of the bank or lets it back in.
    Operator {
        /// The pack's number.
        pack: u8,
        /// Out or back in.
        command: OperatorCommand,
    },
}

/// An operator's word about one pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperatorCommand {
    /// Take the pack off the bus (a graceful stop for our own pack controller, an open relay for
    /// a CAN pack) and keep it off: it does not rejoin on its own.
    Stop,
    /// Lift the hold of a `Stop`: the pack may rejoin, but only when the join rules admit it.
    Start,
}

/// Why a pack left the bank, or was asked to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Its reports stopped.
    Stale,
    /// It reported itself disconnected (its own protection opened, or someone opened it).
    Disconnected,
    /// It was asked to connect and did not.
    JoinTimeout,
    /// It is connected at a voltage outside the join window.
    WrongVoltage,
    /// An inverter did not obey its limits.
    Escalation,
    /// Its reports are implausible for its chemistry and cell count.
    Implausible,
    /// An operator stopped it.
    Operator,
}

/// Where an inverter stands with the limits it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Within its limits (or not long enough outside them to matter).
    Obeying,
    /// Over its limits for `warn_after_ms`.
    Warned,
    /// Over its limits for `zero_after_ms`: it is sent zero current both ways.
    ZeroRequested,
    /// Over its limits for `open_after_ms`: every pack was opened.
    Opened,
}

/// What binds a combined current limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CombinedReason {
    /// No pack is joined.
    NoPack,
    /// This pack's own limit, given the share of the current it carries.
    Pack {
        /// The pack.
        pack: u8,
        /// The share of the bank's current it carries (measured, or by capacity until measured).
        share: Permille,
    },
    /// The sum of the packs' limits.
    SumOfPacks,
    /// This pack does not allow current in this direction at all.
    PackDisabled {
        /// The pack.
        pack: u8,
    },
    /// The remote setpoint.
    Setpoint,
    /// The inverter's own cap.
    InverterCap,
    /// The inverter did not obey, so it is sent zero.
    Escalation,
    /// The combiner is halted after an escalation.
    Halted,
    /// The limit is still rising towards what the packs allow, after a pack joined or the
    /// limit rose ([`CombinerConfig::limit_ramp_ms`](super::CombinerConfig::limit_ramp_ms)).
    Ramp,
}

/// One output of [`Combiner::poll_action`](super::Combiner::poll_action).
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CombinerAction {
    /// Connect this pack to the bus: close its relay, or `Start` its pack controller.
    Connect {
        /// The pack.
        pack: u8,
    },
    /// Disconnect this pack: open its relay, or `Stop` its pack controller (graceful).
    Disconnect {
        /// The pack.
        pack: u8,
        /// Why.
        reason: DropReason,
    },
    /// The pack reported connected and now counts in the limits.
    PackJoined {
        /// The pack.
        pack: u8,
    },
    /// The pack may not join: its voltage is this far from the bank's.
    PackRefused {
        /// The pack.
        pack: u8,
        /// Its voltage minus the bank's.
        difference_mv: MilliVolts,
    },
    /// The pack sent a report no pack of its chemistry and cell count can make. It is faulty:
    /// it does not join, or is dropped and disconnected, until its reports have been plausible
    /// for `rejoin_after_ms`. Reported once per such episode.
    PackImplausible {
        /// The pack.
        pack: u8,
        /// What was wrong with the report.
        what: Implausible,
    },
    /// The pack no longer counts in the limits.
    PackDropped {
        /// The pack.
        pack: u8,
        /// Why.
        reason: DropReason,
    },
    /// The current limits for this inverter, or what binds them, changed. The whole view to
    /// send is [`Combiner::view`](super::Combiner::view).
    Limits {
        /// The inverter.
        inverter: u8,
        /// Largest charge current.
        charge_ma: MilliAmps,
        /// What binds it.
        charge_reason: CombinedReason,
        /// Largest discharge current.
        discharge_ma: MilliAmps,
        /// What binds it.
        discharge_reason: CombinedReason,
    },
    /// The inverter's obedience stage changed.
    Obedience {
        /// The inverter.
        inverter: u8,
        /// Its new stage.
        stage: Stage,
    },
    /// The inverter's keep-alive stopped.
    InverterMissing {
        /// The inverter.
        inverter: u8,
    },
    /// The inverter's keep-alive is back.
    InverterBack {
        /// The inverter.
        inverter: u8,
    },
    /// The remote setpoint expired.
    SetpointExpired,
}

/// Where a pack stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PackPhase {
    /// Never heard.
    #[default]
    Unheard,
    /// Heard, not on the bus, free to join.
    Waiting,
    /// Heard, but its voltage is outside the join window.
    Refused,
    /// Asked to connect; not yet reported connected.
    Joining {
        /// When it was asked.
        since: Instant,
    },
    /// On the bus and counted in the limits.
    Joined,
}

/// What the combiner knows about one pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct PackStatus {
    /// Where it stands.
    pub phase: PackPhase,
    /// Its last report and when it was made.
    pub report: Option<(Instant, BatteryView)>,
    /// Whether its last report said it is connected.
    pub connected: bool,
    /// Its share of the bank's charge current.
    pub charge_share: Permille,
    /// Its share of the bank's discharge current.
    pub discharge_share: Permille,
    /// Not asked to connect again before this.
    pub holdoff_until: Option<Instant>,
    /// Faulty: what was wrong with the first implausible report of this episode.
    pub implausible: Option<Implausible>,
    /// When its last implausible report was made.
    pub implausible_at: Option<Instant>,
    /// An operator stopped it: it stays off the bus until started again.
    pub held: bool,
}

/// What the combiner knows about one inverter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct InverterStatus {
    /// What it is sent.
    pub view: BatteryView,
    /// What binds its charge limit.
    pub charge_reason: Option<CombinedReason>,
    /// What binds its discharge limit.
    pub discharge_reason: Option<CombinedReason>,
    /// Its last keep-alive.
    pub last_alive: Option<Instant>,
    /// Its keep-alive stopped.
    pub missing: bool,
    /// Its last current, positive when charging the battery.
    pub current: Option<(Instant, MilliAmps)>,
    /// Since when it has been over its limits (without a long enough pause).
    pub over_since: Option<Instant>,
    /// Since when it has been within them again.
    pub within_since: Option<Instant>,
    /// Its obedience stage.
    pub stage: Option<Stage>,
}

/// Inputs the combiner could not use, and measurements it did not believe. Every counter
/// saturates at `u32::MAX` (a counter that wrapped would claim that nothing happened).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CombinerCounters {
    /// A pack or inverter number beyond the configuration.
    pub out_of_range: u32,
    /// A report older than the one already stored.
    pub out_of_order: u32,
    /// Actions dropped because `poll_action` was not drained.
    pub dropped_actions: u32,
    /// Pack reports outside what the pack's chemistry and cell count allow.
    pub implausible: u32,
    /// Share measurements in which the packs' currents together disagreed with the inverters'.
    pub current_mismatch: u32,
}

/// Everything worth showing about the combiner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CombinerStatus {
    /// The combined battery, before per-inverter shares, caps and offsets.
    pub combined: BatteryView,
    /// What binds the combined charge limit.
    pub charge_reason: CombinedReason,
    /// What binds the combined discharge limit.
    pub discharge_reason: CombinedReason,
    /// Per pack (the first `config.packs.len()` are used).
    pub packs: [PackStatus; MAX_PACKS],
    /// Per inverter (the first `config.inverters.len()` are used).
    pub inverters: [InverterStatus; MAX_INVERTERS],
    /// An escalation opened every pack; nothing joins until `Resume`.
    pub halted: bool,
    /// The remote setpoint in force: charge, discharge, until.
    pub setpoint: Option<(MilliAmps, MilliAmps, Instant)>,
    /// Whether the packs' currents agreed with the inverters' at the last share measurement
    /// (`None`: never compared, for want of an inverter current).
    pub currents_agree: Option<bool>,
    /// Inputs it could not use.
    pub counters: CombinerCounters,
}
