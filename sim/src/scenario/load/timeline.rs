//! The `[[timeline]]` entries: commands, load profiles, faults and ambient changes.

use std::path::Path;

use cellwarden_core::Command;

use super::{Checked, Ctx, TEMPERATURE_RANGE, Want};
use crate::profile::Profile;
use crate::scenario::Moment;
use crate::scenario::parallel::Parallel;
use crate::scenario::schema::{CommandName, FaultSpec, ScenarioFile, SensorName, TimelineEntry};

/// What a timeline fault may refer to.
pub(super) struct FaultScope<'a> {
    /// Series groups of our own pack.
    pub cells: u16,
    /// Emulated boards, if any.
    pub boards: Option<u16>,
    /// The parallel system, if it is one.
    pub parallel: Option<&'a Parallel>,
}

impl Ctx<'_> {
    pub(super) fn moment(
        &self,
        i: usize,
        entry: &TimelineEntry,
        file: &ScenarioFile,
        scope: &FaultScope<'_>,
        base_dir: &Path,
    ) -> Checked<Moment> {
        let here = format!("timeline[{i}]");
        let duration = file.duration.0;
        if entry.at.0 > duration {
            return Err(self.value_error(
                &format!("{here}.at"),
                format!("{} is after the end of the run (duration = {})", entry.at, file.duration),
            ));
        }
        if entry.command.is_none()
            && entry.load.is_none()
            && entry.fault.is_none()
            && entry.ambient_c.is_none()
            && entry.note.is_none()
        {
            return Err(self.value_error(
                &here,
                format!(
                    "nothing happens at {}: give a `command`, `load`, `fault`, `ambient_c` or \
                     `note`",
                    entry.at
                ),
            ));
        }
        let load = match &entry.load {
            Some(spec) => {
                let field = format!("{here}.load");
                let profile = Profile::with_seed(spec, base_dir, file.seed)
                    .map_err(|m| self.value_error(&field, m))?;
                self.count_profile_points(&field, profile.points())?;
                Some(profile)
            }
            None => None,
        };
        if let Some(fault) = &entry.fault {
            self.fault(&format!("{here}.fault"), fault, scope)?;
        }
        self.command_target(&here, entry, scope.parallel)?;
        let ambient_c = match entry.ambient_c {
            Some(t) => {
                let (low, high) = TEMPERATURE_RANGE;
                Some(self.real(&format!("{here}.ambient_c"), t, Want::Between(low, high))?)
            }
            None => None,
        };
        Ok(Moment {
            at: entry.at.0,
            line: self.line_of(&here),
            command: entry.command.map(Command::from),
            can_pack: entry.can_pack,
            load,
            fault: entry.fault,
            ambient_c,
            note: entry.note.clone(),
        })
    }

    /// In a parallel system `start` and `stop` go to one pack through the combiner: our own
    /// pack, or the rack `can_pack` names. Every other command is our pack controller's alone.
    fn command_target(
        &self,
        here: &str,
        entry: &TimelineEntry,
        parallel: Option<&Parallel>,
    ) -> Checked<()> {
        let switch = matches!(entry.command, Some(CommandName::Start | CommandName::Stop));
        match (entry.can_pack, parallel) {
            (Some(_), None) => Err(self.value_error(
                &format!("{here}.can_pack"),
                "only a parallel system (`[[can_packs]]`, `[[inverters]]`) has racks to command",
            )),
            (Some(_), Some(_)) if !switch => Err(self.value_error(
                &format!("{here}.can_pack"),
                "only `start` and `stop` can be given for a rack",
            )),
            (Some(k), Some(p)) => {
                self.index(&format!("{here}.can_pack"), k, p.can_packs.len(), "[[can_packs]]")
            }
            (None, Some(p)) if entry.command.is_some() && !p.own_pack => {
                Err(self.value_error(
                    &format!("{here}.command"),
                    if switch {
                        "this system has no pack controller of ours (`[system]`): give `can_pack`"
                    } else {
                        "commands other than `start` and `stop` go to our own pack, and this system has \
                         none (`[system]`)"
                    },
                ))
            }
            _ => Ok(()),
        }
    }

    fn fault(&self, here: &str, fault: &FaultSpec, scope: &FaultScope<'_>) -> Checked<()> {
        let FaultScope { cells, boards, parallel } = *scope;
        let own_pack = parallel.is_none_or(|p| p.own_pack);
        let system_only = |what: &str| {
            self.value_error(
                &format!("{here}.kind"),
                format!(
                    "{what} only exist in a parallel system (`[[can_packs]]`, `[[inverters]]`)"
                ),
            )
        };
        match *fault {
            FaultSpec::CanPackSilent { can_pack }
            | FaultSpec::CanPackRestored { can_pack }
            | FaultSpec::CanPackMisreports { can_pack, .. } => {
                if let FaultSpec::CanPackMisreports { charge_voltage_v: Some(v), .. } = *fault {
                    self.real(&format!("{here}.charge_voltage_v"), v, Want::NonNegative)?;
                }
                let Some(p) = parallel else { return Err(system_only("CAN packs")) };
                return self.index(
                    &format!("{here}.can_pack"),
                    can_pack,
                    p.can_packs.len(),
                    "[[can_packs]]",
                );
            }
            FaultSpec::InverterIgnoresLimits { inverter }
            | FaultSpec::InverterObeysLimits { inverter } => {
                let Some(p) = parallel else { return Err(system_only("CAN inverters")) };
                return self.index(
                    &format!("{here}.inverter"),
                    inverter,
                    p.inverters.len(),
                    "[[inverters]]",
                );
            }
            _ if !own_pack => {
                return Err(self.value_error(
                    &format!("{here}.kind"),
                    "this fault acts on our own pack, and this system has none (`[system]`)",
                ));
            }
            _ => {}
        }
        let field = |name: &str| format!("{here}.{name}");
        let cell_index = |cell: u16| -> Checked<()> {
            if cell < cells {
                Ok(())
            } else {
                Err(self.value_error(
                    &field("cell"),
                    format!(
                        "cell {cell} does not exist: this pack has {cells} series groups, \
                         numbered 0..={}",
                        cells.saturating_sub(1)
                    ),
                ))
            }
        };
        match *fault {
            FaultSpec::BusShort { ohms } => {
                self.real(&field("ohms"), ohms, Want::Positive)?;
            }
            FaultSpec::CurrentOffset { amps } => {
                self.real(&field("amps"), amps, Want::Finite)?;
            }
            FaultSpec::CellLeak { cell, amps } => {
                cell_index(cell)?;
                self.real(&field("amps"), amps, Want::NonNegative)?;
            }
            FaultSpec::CellHeater { cell, watts } => {
                cell_index(cell)?;
                self.real(&field("watts"), watts, Want::NonNegative)?;
            }
            FaultSpec::CellSenseDrift { cell, mv_per_min } => {
                cell_index(cell)?;
                self.real(&field("mv_per_min"), mv_per_min, Want::Finite)?;
            }
            FaultSpec::BoardCorrupt { module, .. }
            | FaultSpec::BoardDrop { module, .. }
            | FaultSpec::BoardSilent { module }
            | FaultSpec::BoardFrozen { module }
            | FaultSpec::BoardRestored { module } => {
                self.board_index(&field("module"), module, boards)?;
            }
            FaultSpec::BoardDelay { module, delay, .. } => {
                self.board_index(&field("module"), module, boards)?;
                if delay.0.as_micros() == 0 {
                    return Err(self.value_error(&field("delay"), "must be longer than 0s"));
                }
            }
            FaultSpec::SensorSilent { sensor: SensorName::Cells | SensorName::Temperatures }
                if boards.is_some() =>
            {
                return Err(self.value_error(
                    &field("sensor"),
                    "cells and temperatures come from the emulated boards here: silence a \
                     board with `board_silent` instead",
                ));
            }
            FaultSpec::BusShortCleared
            | FaultSpec::SensorSilent { .. }
            | FaultSpec::SensorRestored { .. }
            | FaultSpec::ContactorWeld { .. }
            | FaultSpec::HardwareFault { .. }
            | FaultSpec::CanPackSilent { .. }
            | FaultSpec::CanPackRestored { .. }
            | FaultSpec::CanPackMisreports { .. }
            | FaultSpec::InverterIgnoresLimits { .. }
            | FaultSpec::InverterObeysLimits { .. } => {}
        }
        Ok(())
    }
}
