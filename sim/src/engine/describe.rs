//! One-line descriptions of what the core did, for the event log. Deterministic formatting only.

use crate::scenario::schema::CurrentLie;
use crate::scenario::{CauseName, FaultSpec, SensorName, file_name};
use cellwarden_core::charge::{ChargeLimitReason, ChargeStatus, LimitTable, Stage, StageReason};
use cellwarden_core::proto::tesla::master::Event as BusEvent;

use cellwarden_core::{
    Action, BalanceState, BalanceStatus, Blocker, CellMask, ContactorId, CurrentLimits, Duration,
    FaultChange, FaultEvent, LimitReason, Location, MilliVolts, OpenKind, PrechargeFailure, RuleId,
    SequenceEvent, SequenceState,
};

/// A contactor's name as scenario files write it.
pub fn contactor(id: ContactorId) -> &'static str {
    match id {
        ContactorId::Negative => "negative",
        ContactorId::Precharge => "precharge",
        ContactorId::Positive => "positive",
    }
}

/// The sequence state's short name, as in the trace.
pub fn state(state: SequenceState) -> &'static str {
    match state {
        SequenceState::Open => "open",
        SequenceState::ClosingNegative { .. } => "closing_negative",
        SequenceState::Precharging { .. } => "precharging",
        SequenceState::ClosingPositive { .. } => "closing_positive",
        SequenceState::Closed => "closed",
        SequenceState::RetryWait { .. } => "retry_wait",
        SequenceState::Stopping { .. } => "stopping",
        SequenceState::WeldCheck { .. } => "weld_check",
    }
}

/// A rule's value with its unit: `4251 mV`, `312.0 A`, `-5.0 °C`, `612 ms`.
pub fn value(rule: RuleId, value: i32) -> String {
    match rule.spec().unit {
        "mV" => format!("{value} mV"),
        "mA" => format!("{} A", milli(i64::from(value))),
        "dC" => format!("{} °C", deci(value)),
        "ms" => format!("{value} ms"),
        _ => match rule {
            RuleId::PrechargeFailed => precharge_failure_from_code(value),
            _ => value.to_string(),
        },
    }
}

/// Where a fault was seen.
pub fn location(location: Location) -> String {
    match location {
        Location::Pack => "pack".to_string(),
        Location::Cell(i) => format!("cell {i}"),
        Location::Sensor(i) => format!("sensor {i}"),
        Location::Contactor(id) => format!("{} contactor", contactor(id)),
    }
}

/// The log line for one action.
pub fn action(action: &Action) -> String {
    match action {
        Action::Contactor { contactor: id, closed } => {
            format!("contactor {} {}", contactor(*id), if *closed { "close" } else { "open" })
        }
        Action::Limits(limits) => self::limits(limits),
        Action::VoltageLimits(v) => format!(
            "voltage limits: charge {:.2} V, discharge {:.2} V",
            f64::from(v.charge_mv.0) / 1000.0,
            f64::from(v.discharge_mv.0) / 1000.0
        ),
        Action::Balance(cells) => format!("balance: bleed {}", bleeding(cells)),
        Action::Fault(event) => fault_event(event),
        Action::Sequence(event) => sequence(event),
    }
}

/// What balancing does, in one line: how many cells bleed, or why none does.
pub fn balancing(b: &BalanceStatus) -> String {
    if !b.cells.is_empty() {
        return format!("balancing started: {} bleeding", bleeding(&b.cells));
    }
    let why = match b.state {
        BalanceState::Disabled => "disabled".to_string(),
        BalanceState::NoData => "cell or temperature data missing or stale".to_string(),
        BalanceState::Blocked(rule) => format!("{} active", rule.name()),
        BalanceState::NotIdle => "current flowing".to_string(),
        BalanceState::Measuring => "measuring".to_string(),
        BalanceState::BelowStart => "no cell above the start voltage".to_string(),
        BalanceState::Balanced => "balanced".to_string(),
        BalanceState::BoardHot { board } => format!("board {board} too hot"),
        BalanceState::Bleeding { .. } => "no cell left".to_string(),
    };
    format!("balancing stopped: {why}")
}

/// `cells 4, 17, 90` for up to four cells, `81 cells` for more, `no cell` for none.
fn bleeding(cells: &CellMask) -> String {
    const LISTED: u16 = 4;
    match cells.count() {
        0 => "no cell".to_string(),
        1..=LISTED => {
            let list: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
            let noun = if cells.count() == 1 { "cell" } else { "cells" };
            format!("{noun} {}", list.join(", "))
        }
        count => format!("{count} cells"),
    }
}

fn limits(l: &CurrentLimits) -> String {
    format!(
        "limits: charge {} A ({}), discharge {} A ({})",
        milli(i64::from(l.charge_ma.0)),
        reason(&l.charge_reason),
        milli(i64::from(l.discharge_ma.0)),
        reason(&l.discharge_reason)
    )
}

fn reason(reason: &LimitReason) -> String {
    match reason {
        LimitReason::ConfiguredMaximum => "configured maximum".to_string(),
        LimitReason::Rule { rule, tier, location: at, value: v } => {
            format!("{} {} at {}: {}", rule.name(), tier.name(), location(*at), value(*rule, *v))
        }
        LimitReason::ContactorsOpen => "contactors open".to_string(),
        LimitReason::Stopping => "stopping".to_string(),
        LimitReason::ClosingRamp => "ramp after closing".to_string(),
        LimitReason::Charge(c) => charge_reason(c),
    }
}

/// Decides which actions the event log shows: every action but some changes of limits.
///
/// Limits from protection alone change only with their reason, and every such change is shown.
/// The charge controller's tables move the limits a little with every measurement, and the
/// smaller of its limit and protection's binds, so with charge control the binding can flip
/// many times a minute. A change that involves the charge controller is shown when what binds
/// changes (see [`binding`]) and the last shown change is at least [`LIMITS_LOG_GAP`] old, or
/// at once when a limit starts or stops being zero. The trace has every value.
#[derive(Clone, Copy, Debug, Default)]
pub struct LimitsLog {
    shown: Option<(Duration, CurrentLimits)>,
}

/// The shortest time between two logged changes of limits that involve charge control.
pub const LIMITS_LOG_GAP: Duration = Duration::from_secs(60);

impl LimitsLog {
    /// Whether the log shows `action`, taken at `at`.
    pub fn shows(&mut self, at: Duration, action: &Action) -> bool {
        let Action::Limits(new) = action else { return true };
        let show = match &self.shown {
            None => true,
            Some((when, old)) => {
                let zero = (old.charge_ma.0 == 0) != (new.charge_ma.0 == 0)
                    || (old.discharge_ma.0 == 0) != (new.discharge_ma.0 == 0);
                let changed = binding(&old.charge_reason) != binding(&new.charge_reason)
                    || binding(&old.discharge_reason) != binding(&new.discharge_reason);
                let charge = [old.charge_reason, old.discharge_reason, new.charge_reason]
                    .iter()
                    .chain([new.discharge_reason].iter())
                    .any(|r| matches!(r, LimitReason::Charge(_)));
                let quiet = at.saturating_sub(*when) >= LIMITS_LOG_GAP;
                zero || (changed && (!charge || quiet))
            }
        };
        if show {
            self.shown = Some((at, *new));
        }
        show
    }
}

/// What binds a limit, for [`LimitsLog`]: a protection rule by its rule and tier (not where or
/// at what value), the configured maximum and every charge-control table as one (measurement
/// noise moves the limit across their boundaries), every other reason as itself.
fn binding(reason: &LimitReason) -> LimitReason {
    match reason {
        LimitReason::Rule { rule, tier, .. } => {
            LimitReason::Rule { rule: *rule, tier: *tier, location: Location::Pack, value: 0 }
        }
        // A ramp back up is the tail of whatever cut the limit, not a new binding constraint.
        LimitReason::Charge(
            ChargeLimitReason::Table { .. }
            | ChargeLimitReason::ConfiguredMaximum
            | ChargeLimitReason::Ramp,
        ) => LimitReason::ConfiguredMaximum,
        LimitReason::Charge(ChargeLimitReason::CellAtMaximum { .. }) => {
            LimitReason::Charge(ChargeLimitReason::CellAtMaximum { cell_max_mv: MilliVolts(0) })
        }
        other => *other,
    }
}

/// A change of the charge controller's stage, or of its periodic full charge.
pub fn charge_stage(status: &ChargeStatus) -> String {
    let stage = match status.stage {
        Stage::Bulk => "bulk",
        Stage::Absorption => "absorption",
        Stage::Float => "float",
    };
    let why = match status.stage_reason {
        StageReason::Start => "start",
        StageReason::PackVoltageReached => "pack voltage reached",
        StageReason::CellVoltageReached => "highest cell reached",
        StageReason::Converged => "cells converged at the tail current",
        StageReason::AbsorptionTimeout => "absorption timed out",
        StageReason::PackVoltageLow => "pack voltage fell",
        StageReason::SocLow => "SoC fell",
        StageReason::FloatTimeLimit => "float time limit",
        StageReason::FullChargeDue => "periodic full charge due",
    };
    let full = if status.full_charge_due { ", full charge under way" } else { "" };
    format!(
        "charge stage {stage} ({why}), target {} V{full}",
        milli(i64::from(status.cvl_target_mv.0))
    )
}

/// What binds a limit of the charge controller.
pub fn charge_reason(reason: &ChargeLimitReason) -> String {
    match reason {
        ChargeLimitReason::NoData => "charge control: no data yet".to_string(),
        ChargeLimitReason::InputRejected => "charge control: implausible input".to_string(),
        ChargeLimitReason::ConfiguredMaximum => "charge control maximum".to_string(),
        ChargeLimitReason::Table { table, input } => {
            let (name, value) = match table {
                LimitTable::ChargeByCellMax => ("highest cell", volts_of_mv(*input)),
                LimitTable::DischargeByCellMin => ("lowest cell", volts_of_mv(*input)),
                LimitTable::ChargeByTemperature | LimitTable::DischargeByTemperature => {
                    ("temperature", format!("{} °C", tenths(*input)))
                }
                LimitTable::ChargeBySoc | LimitTable::DischargeBySoc => {
                    ("SoC", format!("{} %", tenths(*input)))
                }
            };
            format!("{name} table at {value}")
        }
        ChargeLimitReason::CellAtMaximum { cell_max_mv } => {
            format!("cell at its maximum, {}", volts_of_mv(cell_max_mv.0))
        }
        ChargeLimitReason::FloatStage => "float stage".to_string(),
        ChargeLimitReason::Ramp => "charge control: rising at its ramp".to_string(),
    }
}

/// Millivolts as volts with three decimals: 4052 -> `4.052 V`.
fn volts_of_mv(mv: i32) -> String {
    let sign = if mv < 0 { "-" } else { "" };
    let a = mv.unsigned_abs();
    format!("{sign}{}.{:03} V", a / 1000, a % 1000)
}

/// A value in tenths (0.1 °C, permille as 0.1 %), with one decimal.
fn tenths(v: i32) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    format!("{sign}{}.{}", a / 10, a % 10)
}

fn fault_event(e: &FaultEvent) -> String {
    let change = match e.change {
        FaultChange::Raised => "raised",
        FaultChange::Released => "released",
        FaultChange::Cleared => "cleared",
        FaultChange::ClearRefused => "clear refused",
    };
    format!(
        "fault {change}: {} {} at {}: {}",
        e.rule.name(),
        e.tier.name(),
        location(e.location),
        value(e.rule, e.value)
    )
}

fn sequence(e: &SequenceEvent) -> String {
    match e {
        SequenceEvent::CloseBlocked { blocker } => {
            format!("close blocked: {}", self::blocker(*blocker))
        }
        SequenceEvent::PrechargeStarted { attempt } => {
            format!("precharge attempt {attempt} started")
        }
        SequenceEvent::PrechargeDone { elapsed_ms } => {
            format!("precharge done after {elapsed_ms} ms")
        }
        SequenceEvent::PrechargeFailed { cause, attempt, will_retry } => format!(
            "precharge attempt {attempt} failed: {}{}",
            precharge_failure(*cause),
            if *will_retry { ", will retry" } else { ", giving up" }
        ),
        SequenceEvent::Closed => "contactors closed".to_string(),
        SequenceEvent::Stopping => "graceful stop: asking for zero current".to_string(),
        SequenceEvent::Opened { how } => format!("contactors opened: {}", open_kind(how)),
    }
}

/// Why closing is blocked.
pub fn blocker(b: Blocker) -> String {
    match b {
        Blocker::Fault(rule) => format!("{} is latched", rule.name()),
        Blocker::NoCellVoltage(i) => format!("no voltage received yet for cell {i}"),
        Blocker::NoTemperature(i) => format!("no reading received yet from sensor {i}"),
        Blocker::NoCurrent => "no current received yet".to_string(),
        Blocker::NoPackVoltage => "no pack voltage received yet".to_string(),
        Blocker::NoBusVoltage => "no bus voltage received yet".to_string(),
        Blocker::NoHardwareFaultLine => "no hardware fault line received yet".to_string(),
        Blocker::NoFeedback(id) => format!("no feedback yet from the {} contactor", contactor(id)),
        Blocker::LinkDischarging => {
            "the DC link is still at the pack voltage: waiting for it to discharge".to_string()
        }
        Blocker::FeedbackDisagrees(id) => {
            format!("the {} contactor reports closed while commanded open", contactor(id))
        }
    }
}

fn open_kind(how: &OpenKind) -> String {
    match how {
        OpenKind::Graceful => "graceful, below the break current".to_string(),
        OpenKind::GracefulDeadline { current_ma: Some(ma) } => {
            format!("graceful stop deadline, {} A still flowing", milli(i64::from(ma.0)))
        }
        OpenKind::GracefulDeadline { current_ma: None } => {
            "graceful stop deadline, current unknown".to_string()
        }
        OpenKind::Emergency { rule } => format!("emergency, {}", rule.name()),
        OpenKind::EmergencyStop => "emergency stop command".to_string(),
        OpenKind::Aborted => "closing aborted".to_string(),
    }
}

/// The failure cause's scenario-file name.
fn precharge_failure(cause: PrechargeFailure) -> String {
    file_name(CauseName::from(cause))
}

fn precharge_failure_from_code(code: i32) -> String {
    [PrechargeFailure::NoVoltageRise, PrechargeFailure::TooSlow, PrechargeFailure::Short]
        .into_iter()
        .find(|c| *c as i32 == code)
        .map_or_else(|| "unknown cause".to_string(), precharge_failure)
}

/// Thousandths as a decimal with one place: 312_450 -> `312.5`, -50 -> `-0.1`... rounded half
/// away from zero, and never `-0.0`.
pub fn milli(value: i64) -> String {
    let tenths = (value.abs() + 50) / 100;
    let sign = if value < 0 && tenths != 0 { "-" } else { "" };
    format!("{sign}{}.{}", tenths / 10, tenths % 10)
}

fn deci(value: i32) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let v = value.unsigned_abs();
    format!("{sign}{}.{}", v / 10, v % 10)
}

/// An injected fault, for the event log.
pub fn fault(f: &FaultSpec) -> String {
    match f {
        FaultSpec::BusShort { ohms } => format!("short circuit of {ohms} ohm on the DC bus"),
        FaultSpec::BusShortCleared => "bus short removed".to_string(),
        FaultSpec::SensorSilent { sensor } => format!("{} silent", sensor_name(*sensor)),
        FaultSpec::SensorRestored { sensor } => format!("{} restored", sensor_name(*sensor)),
        FaultSpec::CurrentOffset { amps } => format!("current sensor offset now {amps} A"),
        FaultSpec::ContactorWeld { contactor } => {
            format!("{} contactor welded", self::contactor(ContactorId::from(*contactor)))
        }
        FaultSpec::CellLeak { cell, amps } => format!("cell {cell} leaks {amps} A"),
        FaultSpec::CellHeater { cell, watts } => format!("cell {cell} heated with {watts} W"),
        FaultSpec::CellSenseDrift { cell, mv_per_min } => {
            format!("cell {cell} reading drifts {mv_per_min} mV/min")
        }
        FaultSpec::HardwareFault { active } => {
            format!("hardware fault line {}", if *active { "active" } else { "inactive" })
        }
        FaultSpec::BoardCorrupt { module, count } => {
            format!("board {module} corrupts its next {count} replies")
        }
        FaultSpec::BoardDrop { module, count } => {
            format!("board {module} drops its next {count} replies")
        }
        FaultSpec::BoardDelay { module, count, delay } => {
            format!("board {module} delays its next {count} replies by {delay}")
        }
        FaultSpec::BoardSilent { module } => format!("board {module} stops answering"),
        FaultSpec::BoardFrozen { module } => format!("board {module} readings freeze"),
        FaultSpec::BoardRestored { module } => format!("board {module} works again"),
        FaultSpec::CanPackSilent { can_pack } => {
            format!("CAN pack {can_pack}'s BMS stops transmitting")
        }
        FaultSpec::CanPackRestored { can_pack } => {
            format!("CAN pack {can_pack}'s BMS transmits again")
        }
        FaultSpec::CanPackMisreports { can_pack, charge_voltage_v, current } => {
            let mut lies = Vec::new();
            if let Some(v) = charge_voltage_v {
                lies.push(format!("a charge voltage limit of {v} V"));
            }
            match current {
                Some(CurrentLie::Zero) => lies.push("0 A as its current".to_string()),
                Some(CurrentLie::Halved) => lies.push("half its current".to_string()),
                Some(CurrentLie::Negated) => {
                    lies.push("its current with the wrong sign".to_string())
                }
                None => {}
            }
            if lies.is_empty() {
                format!("CAN pack {can_pack}'s BMS reports truthfully again")
            } else {
                format!("CAN pack {can_pack}'s BMS reports {}", lies.join(" and "))
            }
        }
        FaultSpec::InverterIgnoresLimits { inverter } => {
            format!("inverter {inverter} ignores its limits from now on")
        }
        FaultSpec::InverterObeysLimits { inverter } => {
            format!("inverter {inverter} keeps to its limits again")
        }
    }
}

fn sensor_name(s: SensorName) -> &'static str {
    match s {
        SensorName::Cells => "cell voltages",
        SensorName::Temperatures => "temperatures",
        SensorName::Current => "current sensor",
        SensorName::PackVoltage => "pack voltage",
        SensorName::BusVoltage => "bus voltage",
        SensorName::HardwareFaultLine => "hardware fault line",
        SensorName::All => "every measurement",
    }
}

/// An event of the module-board bus master.
pub fn board_note(event: BusEvent) -> String {
    match event {
        BusEvent::Enumerated { found, expected } if found == expected => {
            format!("{found} boards enumerated")
        }
        BusEvent::Enumerated { found, expected } => {
            format!("{found} boards enumerated, {expected} expected")
        }
        BusEvent::Lost { module } => {
            format!("board {module} lost: no good reply for several cycles")
        }
        BusEvent::Recovered { module } => format!("board {module} answers again"),
        BusEvent::Reading(r) => format!("board {} measured", r.module),
        BusEvent::CycleDone { measured, missed, .. } => {
            format!("cycle done: {measured} boards measured, {missed} missed")
        }
        BusEvent::Faults { module, alert, fault, cov, cuv } => {
            let mut parts = Vec::new();
            if cov != 0 {
                parts.push(format!("over voltage on cells {}", cells(cov)));
            }
            if cuv != 0 {
                parts.push(format!("under voltage on cells {}", cells(cuv)));
            }
            if alert & 0x03 != 0 {
                parts.push("over temperature".to_string());
            }
            if parts.is_empty() {
                parts.push("no protector fault".to_string());
            }
            format!("board {module} alert {alert:#04x} fault {fault:#04x}: {}", parts.join(", "))
        }
    }
}

/// Cell numbers (1-based, as printed on the board) of a bit mask.
fn cells(mask: u8) -> String {
    (0..6)
        .filter(|k| mask & (1 << k) != 0)
        .map(|k| (k + 1).to_string())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::{deci, milli};

    #[test]
    fn decimals() {
        assert_eq!(milli(312_450), "312.5");
        assert_eq!(milli(-20), "0.0");
        assert_eq!(milli(-50), "-0.1");
        assert_eq!(milli(0), "0.0");
        assert_eq!(deci(-55), "-5.5");
        assert_eq!(deci(401), "40.1");
    }
}
