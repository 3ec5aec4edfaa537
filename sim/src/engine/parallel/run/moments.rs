//! Timeline entries, at their time or given at run time: demand, ambient, faults, and commands
//! (an operator's `start`/`stop` to the gateway, every other command to our pack controller).

use cellwarden_core::combiner::OperatorCommand;
use cellwarden_core::{Command, Input, Instant};

use super::SystemWorld;
use crate::engine::timeline;
use crate::scenario::schema::CurrentLie;
use crate::scenario::{FaultSpec, Moment};

impl SystemWorld<'_> {
    pub(super) fn apply_moments(&mut self) {
        let scenario = self.scenario;
        while let Some(moment) =
            timeline::next_due(&scenario.timeline, &mut self.next_moment, self.now)
        {
            self.apply(moment);
        }
        while self.runtime.front().is_some_and(|m| Instant::ZERO + m.at <= self.now) {
            if let Some(moment) = self.runtime.pop_front() {
                self.apply(&moment);
            }
        }
    }

    pub(super) fn apply(&mut self, moment: &Moment) {
        let at = self.elapsed();
        timeline::record(moment, at, "demand", &mut self.log, &mut self.watch);
        if let Some(c) = moment.ambient_c {
            if let Some(o) = &mut self.own {
                o.plant.set_ambient_c(c);
            }
            for p in &mut self.cans {
                p.plant.set_ambient_c(c);
            }
        }
        if let Some(profile) = &moment.load {
            self.profile = Some((profile.clone(), self.now));
        }
        if let Some(fault) = moment.fault {
            self.inject_fault(fault);
        }
        if let Some(command) = moment.command {
            self.command(command, moment.can_pack);
        }
        self.trace_now = true;
    }

    /// An operator's `start` or `stop` is for a pack of the bank, so it goes to the gateway,
    /// which decides when the pack is switched (a start waits until the combiner admits it);
    /// every other command is our own pack controller's.
    pub(super) fn command(&mut self, command: Command, can_pack: Option<u8>) {
        let k0 = u8::from(self.own.is_some());
        let operator = match command {
            Command::Start => Some(OperatorCommand::Start),
            Command::Stop => Some(OperatorCommand::Stop),
            _ => None,
        };
        match (operator, can_pack) {
            (Some(op), Some(k)) => self.gateway.handle_operator(self.now, k.saturating_add(k0), op),
            (Some(op), None) if self.own.is_some() => {
                self.gateway.handle_operator(self.now, 0, op);
            }
            (Some(_), None) => {}
            (None, _) => {
                if let Some(o) = &mut self.own {
                    o.bms.handle_inputs(self.now, &[Input::Command(command)]);
                }
            }
        }
        self.drain_combiner();
    }

    pub(super) fn inject_fault(&mut self, fault: FaultSpec) {
        match fault {
            FaultSpec::CanPackSilent { can_pack } | FaultSpec::CanPackRestored { can_pack } => {
                let silent = matches!(fault, FaultSpec::CanPackSilent { .. });
                if let Some(p) = self.cans.get_mut(usize::from(can_pack)) {
                    p.bms.set_silent(silent);
                }
            }
            FaultSpec::CanPackMisreports { can_pack, charge_voltage_v, current } => {
                if let Some(p) = self.cans.get_mut(usize::from(can_pack)) {
                    p.bms.set_misreport(crate::devices::can_bms::Misreport {
                        charge_voltage_mv: charge_voltage_v
                            .map(|v| cellwarden_core::MilliVolts((v * 1000.0).round() as i32)),
                        current_factor: current.map(|c| match c {
                            CurrentLie::Zero => 0.0,
                            CurrentLie::Halved => 0.5,
                            CurrentLie::Negated => -1.0,
                        }),
                    });
                }
            }
            FaultSpec::InverterIgnoresLimits { inverter }
            | FaultSpec::InverterObeysLimits { inverter } => {
                let obeys = matches!(fault, FaultSpec::InverterObeysLimits { .. });
                if let Some(i) = self.invs.get_mut(usize::from(inverter)) {
                    i.emu.set_obeys(obeys);
                }
            }
            // Faults of our own pack (the loader only lets them through when there is one).
            other => {
                if let Some(o) = &mut self.own {
                    if !timeline::inject_pack_fault(&mut o.plant, &mut o.frontend, self.now, other)
                    {
                        if let Some(boards) = &mut o.boards {
                            boards.inject(self.now, other);
                        }
                    }
                }
            }
        }
    }
}
