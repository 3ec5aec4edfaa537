//! Our pack, the racks' and the inverters' buses and the gateway: reports in, frames out, the
//! gateway's commands carried out and the combiner's actions logged.

use cellwarden_core::combiner::{CombinerAction, Stage};
use cellwarden_core::gateway::{Bus, GatewayCommand};
use cellwarden_core::{Input, MilliAmps};

use super::{LoggedLimits, SystemWorld};
use crate::engine::describe;
use crate::engine::parallel::{OwnPack, describe_action};
use crate::engine::record::{count_fault, min_mean_max};
use crate::engine::watch::{self, Happened};
use crate::report::Source;
use crate::scenario::EventName;

fn reason_kind(r: cellwarden_core::combiner::CombinedReason) -> u8 {
    use cellwarden_core::combiner::CombinedReason as R;
    match r {
        R::NoPack => 0,
        R::Pack { .. } => 1,
        R::SumOfPacks => 2,
        R::PackDisabled { .. } => 3,
        R::Setpoint => 4,
        R::InverterCap => 5,
        R::Escalation => 6,
        R::Halted => 7,
        R::Ramp => RAMP_KIND,
    }
}

/// The kind of [`CombinedReason::Ramp`](cellwarden_core::combiner::CombinedReason::Ramp).
const RAMP_KIND: u8 = 8;

fn worth_logging(old: LoggedLimits, new: LoggedLimits) -> bool {
    let moved = |a: i32, b: i32| {
        (a == 0) != (b == 0) || (i64::from(a) - i64::from(b)).abs() * 10 > i64::from(a.max(b))
    };
    // A ramp moves a limit in many small steps (and a small rise in one): a limit the ramp
    // holds is logged only when it leaves zero, and the limit it reaches is compared with the
    // last one logged as usual. The steps between are in the trace.
    let worth = |a: i32, b: i32, ka: u8, kb: u8| {
        if kb == RAMP_KIND { (a == 0) != (b == 0) } else { ka != kb || moved(a, b) }
    };
    worth(old.0, new.0, old.2, new.2) || worth(old.1, new.1, old.3, new.3)
}

impl SystemWorld<'_> {
    pub(super) fn own_pack(&mut self) {
        let now = self.now;
        let Some(o) = &mut self.own else { return };
        if now >= o.next_measure {
            o.next_measure += o.period;
            let OwnPack { frontend, plant, bms, boards, .. } = o;
            let boards = boards.as_ref();
            frontend.measure(now, plant, boards, &mut |inputs| bms.handle_inputs(now, inputs));
            self.summary.core_calls += 1;
            self.gateway.handle_pack_report(0, now, o.bms.battery_view(), o.bms.connected());
        }
        if let Some(o) = &mut self.own {
            if o.bms.poll_timeout().is_some_and(|t| t <= now) {
                o.bms.handle_timeout(now);
                self.summary.core_calls += 1;
            }
        }
        self.drain_own();
    }

    pub(super) fn drain_own(&mut self) {
        let at = self.elapsed();
        let mut actions = Vec::new();
        if let Some(o) = &mut self.own {
            while let Some(a) = o.bms.poll_action() {
                actions.push(a);
            }
        }
        for action in actions {
            use cellwarden_core::Action;
            match action {
                Action::Contactor { contactor, closed } => {
                    if let Some(o) = &mut self.own {
                        o.plant.set_contactor(contactor, closed);
                    }
                    continue;
                }
                Action::Balance(cells) => {
                    // Without module boards the bank's packs do not bleed.
                    if let Some(boards) = self.own.as_mut().and_then(|o| o.boards.as_mut()) {
                        boards.set_balance(&cells);
                    }
                    continue;
                }
                // The combiner reads our pack through its battery view, which carries the same
                // voltage limits.
                Action::VoltageLimits(_) => continue,
                Action::Fault(e) if e.change == cellwarden_core::FaultChange::Raised => {
                    count_fault(&mut self.summary.faults, e.rule, e.tier, at);
                }
                _ => {}
            }
            if self.own_limits_log.shows(at, &action) {
                self.log(Source::Core, format!("own pack: {}", describe::action(&action)));
            }
            self.trace_now = true;
            if let Some(h) = watch::happened(at, &action) {
                self.watch.event(h);
            }
        }
    }

    pub(super) fn can_packs(&mut self) {
        let now = self.now;
        let k0 = usize::from(self.own.is_some());
        for (j, p) in self.cans.iter_mut().enumerate() {
            let reading = reading_of(&p.plant);
            p.bms.update(now, &reading);
            while let Some(frame) = p.bms.poll_transmit(now) {
                p.link.bus.send(p.link.device, now, frame);
            }
            while let Some((at, frame)) = p.link.bus.recv(p.link.system) {
                self.gateway.handle_frame(Bus::Pack((k0 + j) as u8), at, &frame);
            }
            while let Some((at, frame)) = p.link.bus.recv(p.link.device) {
                p.bms.handle_frame(at, &frame);
            }
        }
        self.drain_combiner();
    }

    pub(super) fn inverter_buses(&mut self) {
        let now = self.now;
        let injected = std::mem::take(&mut self.injected);
        for (bus, frame) in injected {
            if let Some(p) = self.cans.iter_mut().find(|p| p.link.name == bus) {
                p.link.bus.send(p.link.device, now, frame);
            } else if let Some(i) = self.invs.iter_mut().find(|i| i.link.name == bus) {
                i.link.bus.send(i.link.device, now, frame);
            }
        }
        for k in 0..self.invs.len() {
            let inv = &mut self.invs[k];
            while let Some(frame) = inv.emu.poll_transmit(now) {
                inv.link.bus.send(inv.link.device, now, frame);
            }
            while let Some((at, frame)) = inv.link.bus.recv(inv.link.system) {
                self.gateway.handle_frame(Bus::Inverter(k as u8), at, &frame);
            }
            self.transmit();
            let inv = &mut self.invs[k];
            while let Some((at, frame)) = inv.link.bus.recv(inv.link.device) {
                inv.emu.handle_frame(at, &frame);
            }
            // What each inverter draws, as a meter on its output would read it.
            let ma = MilliAmps((inv.current_a * 1000.0).round() as i32);
            self.gateway.handle_inverter_current(k as u8, now, ma);
        }
        self.drain_combiner();
    }

    /// Puts every frame the gateway has due on its bus.
    pub(super) fn transmit(&mut self) {
        let k0 = usize::from(self.own.is_some());
        while let Some((bus, frame)) = self.gateway.poll_transmit(self.now) {
            let link = match bus {
                Bus::Inverter(k) => self.invs.get_mut(usize::from(k)).map(|i| &mut i.link),
                Bus::Pack(p) => usize::from(p)
                    .checked_sub(k0)
                    .and_then(|j| self.cans.get_mut(j))
                    .map(|c| &mut c.link),
            };
            if let Some(link) = link {
                link.bus.send(link.system, self.now, frame);
            }
        }
    }

    pub(super) fn combiner_tick(&mut self) {
        self.gateway.handle_timeout(self.now);
        self.drain_combiner();
    }

    /// Carries out the gateway's commands and logs the combiner's actions.
    pub(super) fn drain_combiner(&mut self) {
        let at = self.elapsed();
        let k0 = usize::from(self.own.is_some());
        while let Some(command) = self.gateway.poll_command() {
            match command {
                GatewayCommand::Controller { command, .. } => {
                    if let Some(o) = &mut self.own {
                        o.bms.handle_inputs(self.now, &[Input::Command(command)]);
                    }
                }
                GatewayCommand::Relay { pack, closed } => {
                    if let Some(c) =
                        usize::from(pack).checked_sub(k0).and_then(|j| self.cans.get_mut(j))
                    {
                        c.relay = closed;
                    }
                }
            }
        }
        while let Some(action) = self.gateway.poll_event() {
            let event = match action {
                CombinerAction::Connect { .. } | CombinerAction::Disconnect { .. } => None,
                CombinerAction::PackJoined { .. } => Some(EventName::PackJoined),
                CombinerAction::PackRefused { .. } => Some(EventName::PackRefused),
                CombinerAction::PackDropped { .. } => Some(EventName::PackDropped),
                CombinerAction::PackImplausible { .. } => Some(EventName::PackImplausible),
                CombinerAction::Obedience { stage: Stage::Warned, .. } => {
                    Some(EventName::InverterWarned)
                }
                CombinerAction::Obedience { stage: Stage::ZeroRequested, .. } => {
                    Some(EventName::InverterZeroed)
                }
                CombinerAction::Obedience { stage: Stage::Opened, .. } => {
                    Some(EventName::SystemOpened)
                }
                CombinerAction::InverterMissing { .. } => Some(EventName::InverterMissing),
                CombinerAction::Limits { .. } => Some(EventName::LimitsChanged),
                _ => None,
            };
            if let CombinerAction::Limits {
                inverter,
                charge_ma,
                discharge_ma,
                charge_reason,
                discharge_reason,
            } = action
            {
                // The event log gets a line when what binds a limit changes kind, or a limit
                // moves by a tenth; every change still goes out on the bus.
                let now = (
                    charge_ma.0,
                    discharge_ma.0,
                    reason_kind(charge_reason),
                    reason_kind(discharge_reason),
                );
                let last = self.logged_limits.len() - 1;
                let slot = &mut self.logged_limits[usize::from(inverter).min(last)];
                if slot.is_some_and(|old| !worth_logging(old, now)) {
                    if let Some(e) = event {
                        self.watch.event(Happened::plain(at, e));
                    }
                    continue;
                }
                *slot = Some(now);
            }
            let text = describe_action(&action, &self.pack_names, &self.inv_names);
            self.log(Source::Core, format!("combiner: {text}"));
            self.trace_now = true;
            if let Some(e) = event {
                self.watch.event(Happened::plain(at, e));
            }
        }
        self.drain_own();
    }
}

fn reading_of(plant: &crate::plant::Plant) -> crate::devices::can_bms::PackReading {
    let (v_min, _, v_max, _, _) = min_mean_max(plant.group_voltages());
    let (t_min, _, t_max, _, _) = min_mean_max(plant.group_temps_c());
    crate::devices::can_bms::PackReading {
        cell_min_v: v_min,
        cell_max_v: v_max,
        pack_v: plant.pack_voltage_v(),
        current_a: plant.current_a(),
        temp_min_c: t_min,
        temp_max_c: t_max,
        soc: plant.mean_soc(),
    }
}
