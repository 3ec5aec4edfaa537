//! What both engines do with a timeline entry before acting on it: find the entries that are
//! due, write their log lines and record their events; and the faults that act on our own
//! pack's plant and sensors.

use cellwarden_core::{Duration, Instant};

use super::describe;
use super::frontend::FrontEnd;
use super::watch::{Happened, Watch};
use crate::plant::Plant;
use crate::report::{LogEntry, Source};
use crate::scenario::{EventName, FaultSpec, Moment, file_name};

/// The next entry of `timeline` due at `now`, moving `next` past it.
pub(crate) fn next_due<'s>(
    timeline: &'s [Moment],
    next: &mut usize,
    now: Instant,
) -> Option<&'s Moment> {
    let moment = timeline.get(*next).filter(|m| Instant::ZERO + m.at <= now)?;
    *next += 1;
    Some(moment)
}

/// Logs what `moment` does (note, ambient, demand, fault, command, in that order) and records
/// its fault and command events at `at`. `demand` names what the load profile drives.
pub(crate) fn record(
    moment: &Moment,
    at: Duration,
    demand: &str,
    log: &mut Vec<LogEntry>,
    watch: &mut Watch,
) {
    let line = moment.line;
    let mut say = |text: String| log.push(LogEntry { at, source: Source::Timeline, text });
    if let Some(note) = &moment.note {
        say(format!("note: {note}"));
    }
    if let Some(c) = moment.ambient_c {
        say(format!("ambient temperature {c:.1} °C (line {line})"));
    }
    if let Some(profile) = &moment.load {
        say(format!("{demand}: {} (line {line})", profile.describe()));
    }
    if let Some(fault) = moment.fault {
        watch.event(Happened::plain(at, EventName::FaultInjected));
        say(format!("fault injected: {} (line {line})", describe::fault(&fault)));
    }
    if let Some(command) = moment.command {
        say(format!("command {} (line {line})", file_name(command)));
        let mut happened = Happened::plain(at, EventName::Command);
        happened.what.command = Some(command);
        watch.event(happened);
    }
}

/// Applies a fault that acts on our own pack's plant or sensors; `false` for any other fault
/// (module boards, CAN packs, inverters), which the caller handles.
pub(crate) fn inject_pack_fault(
    plant: &mut Plant,
    frontend: &mut FrontEnd,
    now: Instant,
    fault: FaultSpec,
) -> bool {
    match fault {
        FaultSpec::BusShort { ohms } => plant.set_bus_short(Some(ohms)),
        FaultSpec::BusShortCleared => plant.set_bus_short(None),
        FaultSpec::SensorSilent { sensor } => frontend.set_silenced(sensor, true),
        FaultSpec::SensorRestored { sensor } => frontend.set_silenced(sensor, false),
        FaultSpec::CurrentOffset { amps } => frontend.set_current_offset_a(amps),
        FaultSpec::ContactorWeld { contactor } => plant.weld(contactor.into()),
        FaultSpec::CellLeak { cell, amps } => plant.set_group_leak_a(usize::from(cell), amps),
        FaultSpec::CellHeater { cell, watts } => {
            plant.set_group_heater_w(usize::from(cell), watts);
        }
        FaultSpec::CellSenseDrift { cell, mv_per_min } => {
            frontend.set_drift(now, usize::from(cell), mv_per_min);
        }
        FaultSpec::HardwareFault { active } => frontend.set_hardware_fault(active),
        FaultSpec::BoardCorrupt { .. }
        | FaultSpec::BoardDrop { .. }
        | FaultSpec::BoardDelay { .. }
        | FaultSpec::BoardSilent { .. }
        | FaultSpec::BoardFrozen { .. }
        | FaultSpec::BoardRestored { .. }
        | FaultSpec::CanPackSilent { .. }
        | FaultSpec::CanPackRestored { .. }
        | FaultSpec::CanPackMisreports { .. }
        | FaultSpec::InverterIgnoresLimits { .. }
        | FaultSpec::InverterObeysLimits { .. } => return false,
    }
    true
}
