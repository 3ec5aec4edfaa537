//! The system engine's loop: [`System::step`] advances one tick; [`run`] runs a scenario to its
//! end and reports, [`run_logged`] also hands out every CAN frame.

use std::collections::VecDeque;

use cellwarden_core::combiner::{CombinerAction, OperatorCommand, Stage};
use cellwarden_core::gateway::{Bus, Gateway, GatewayCommand};
use cellwarden_core::proto::can::Frame;
use cellwarden_core::{
    Command, ContactorId, Duration, Input, Instant, MilliAmps, SequenceState,
};

use super::{
    CanPack, Inverter, InverterFigures, LoggedFrame, OwnPack, PackFigures, build, describe_action,
    implausible_name, pack_protocol_name, phase_name, stage_name,
};
use crate::devices::tesla::Analog;
use crate::engine::boards::Boards;
use crate::engine::controller::Controller;
use crate::engine::record::{count_fault, min_mean_max, track};
use crate::engine::watch::{self, Happened, Signals, Watch, signal_index};
use crate::engine::{describe, timeline};
use crate::profile::{Demand, Profile};
use crate::report::{
    InverterSummary, LogEntry, PackSummary, Report, Source, Summary, SystemSummary, TraceRow,
};
use crate::scenario::parallel::Parallel;
use crate::scenario::schema::CurrentLie;
use crate::scenario::{EventName, FaultSpec, Moment, Scenario, Signal, StateName};

/// The longest the plants go without a step. Between the instants where something happens
/// (frames, measurements, deadlines) the currents are held; this bounds how long a demand
/// profile, an inverter's constant-voltage taper or a stale view waits to be noticed.
const MAX_PLANT_STEP: Duration = Duration::from_millis(250);
/// Smallest change of a bleed current passed on to the plant, A.
const BLEED_RESOLUTION_A: f64 = 1e-4;

/// A parallel system being simulated.
#[derive(Debug)]
pub(crate) struct SystemWorld<'s> {
    scenario: &'s Scenario,
    /// The virtual time of the last step.
    pub(crate) now: Instant,
    pub(crate) end: Instant,
    pub(crate) own: Option<OwnPack>,
    pub(crate) cans: Vec<CanPack>,
    invs: Vec<Inverter>,
    pub(crate) gateway: Gateway,
    pack_names: Vec<String>,
    inv_names: Vec<String>,
    profile: Option<(Profile, Instant)>,
    next_moment: usize,
    next_trace: Instant,
    trace_now: bool,
    /// Which changes of our own pack's limits the event log shows.
    own_limits_log: describe::LimitsLog,
    watch: Watch,
    pub(crate) signals: Signals,
    pub(crate) log: Vec<LogEntry>,
    pub(crate) trace: Vec<TraceRow>,
    summary: Summary,
    packs: Vec<PackFigures>,
    inverters: Vec<InverterFigures>,
    bus_v: f64,
    /// Frames from outside (the socketcand bridge) waiting for the next step: bus, frame.
    injected: Vec<(String, Frame)>,
    /// Timeline entries given at run time, in time order.
    pub(crate) runtime: VecDeque<Moment>,
    /// The instant the plants' state refers to (at most `now`).
    plant_at: Instant,
    /// Per inverter, the limits last written to the event log.
    logged_limits: Vec<Option<LoggedLimits>>,
}

/// Charge and discharge limit (mA) and what kinds of reason bind them.
type LoggedLimits = (i32, i32, u8, u8);

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
    }
}

fn worth_logging(old: LoggedLimits, new: LoggedLimits) -> bool {
    let moved = |a: i32, b: i32| {
        (a == 0) != (b == 0) || (i64::from(a) - i64::from(b)).abs() * 10 > i64::from(a.max(b))
    };
    old.2 != new.2 || old.3 != new.3 || moved(old.0, new.0) || moved(old.1, new.1)
}

impl<'s> SystemWorld<'s> {
    /// Builds the system; `tap` keeps every frame for [`take_frames`](Self::take_frames).
    pub(crate) fn new(
        scenario: &'s Scenario,
        parallel: &'s Parallel,
        tap: bool,
        controller: Option<Box<dyn Controller>>,
    ) -> Result<Self, String> {
        let super::Built { own, cans, invs, gateway } = build(scenario, parallel, tap, controller)?;
        let mut pack_names = Vec::new();
        if own.is_some() {
            pack_names.push("own pack".to_string());
        }
        pack_names.extend(cans.iter().map(|c| c.name.clone()));
        let inv_names = invs.iter().map(|i| i.name.clone()).collect();
        let mut packs = vec![PackFigures::default(); pack_names.len()];
        let mut k = 0;
        if let Some(o) = &own {
            packs[0].soc_start = o.plant.mean_soc();
            k = 1;
        }
        for (i, c) in cans.iter().enumerate() {
            packs[k + i].soc_start = c.plant.mean_soc();
        }
        let inverters = vec![InverterFigures::default(); invs.len()];
        let mut soc = 0.0;
        for p in &packs {
            soc += p.soc_start;
        }
        let summary = Summary {
            soc_start_pct: soc / packs.len().max(1) as f64 * 100.0,
            ..Summary::default()
        };
        Ok(SystemWorld {
            scenario,
            now: Instant::ZERO,
            end: Instant::ZERO + scenario.duration,
            own,
            cans,
            invs,
            gateway,
            pack_names,
            inv_names,
            profile: None,
            next_moment: 0,
            next_trace: Instant::ZERO,
            trace_now: false,
            own_limits_log: describe::LimitsLog::default(),
            watch: Watch::new(&scenario.expectations),
            signals: [0.0; watch::SIGNAL_COUNT],
            log: Vec::new(),
            trace: Vec::new(),
            summary,
            packs,
            inverters,
            bus_v: 0.0,
            injected: Vec::new(),
            runtime: VecDeque::new(),
            plant_at: Instant::ZERO,
            logged_limits: vec![None; parallel.inverters.len().max(1)],
        })
    }

    /// The earliest of everything that is waiting: a timeline entry, a measurement or deadline
    /// of our pack, a frame any device or publisher has to send, the combiner's deadline, a
    /// trace row, the longest plant step, the end. Later than `now`, unless an entry given at
    /// run time waits at `now` itself.
    pub(crate) fn next_time(&self) -> Instant {
        let now = self.now;
        if self.runtime.front().is_some_and(|m| Instant::ZERO + m.at <= now) {
            return now;
        }
        let mut next = self.next_trace.min(self.end).min(self.plant_at + MAX_PLANT_STEP);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t.filter(|t| *t > now) {
                next = next.min(t);
            }
        };
        consider(self.scenario.timeline.get(self.next_moment).map(|m| Instant::ZERO + m.at));
        consider(self.runtime.front().map(|m| Instant::ZERO + m.at));
        if let Some(o) = &self.own {
            consider(Some(o.next_measure));
            consider(o.bms.poll_timeout());
            consider(o.boards.as_ref().and_then(Boards::next_deadline));
        }
        for p in &self.cans {
            consider(p.bms.poll_timeout());
        }
        for inv in &self.invs {
            consider(inv.emu.poll_timeout());
        }
        consider(self.gateway.poll_timeout());
        if !self.injected.is_empty() {
            consider(Some(now + Duration::from_micros(1)));
        }
        // Every candidate above is later than now once the instant at now is done; this keeps
        // time moving even if one of them were not.
        next.max(now + Duration::from_micros(1))
    }

    /// Does everything due at `now` (the caller has moved `now` to the instant
    /// [`next_time`](Self::next_time) gave): the plants catch up with the currents of the jump,
    /// then the timeline, our pack, the racks' buses, the inverters' buses and the combiner's
    /// deadline, and the signals are sampled.
    pub(crate) fn process(&mut self) {
        // Instants where only bytes move on the module-board bus (a few dozen per measurement
        // cycle) run the bus alone, against the plant as it stood at the last full instant (at
        // most a measurement period old: nothing in a cell moves measurably in that time); an
        // instant where a cycle's readings reach our pack controller becomes a full one.
        let full = self.own.as_ref().is_none_or(|o| o.boards.is_none()) || self.other_due();
        if full {
            self.catch_up();
            self.apply_moments();
        }
        let delivered = self.run_boards();
        if !full && !delivered {
            return;
        }
        self.catch_up();
        self.drain_own();
        self.own_pack();
        self.can_packs();
        self.inverter_buses();
        self.combiner_tick();
        self.observe();
    }

    /// Whether our pack reads its cells through emulated module boards.
    pub(crate) fn has_boards(&self) -> bool {
        self.own.as_ref().is_some_and(|o| o.boards.is_some())
    }

    /// Whether anything besides module-board bus traffic is due at `now`.
    fn other_due(&self) -> bool {
        let now = self.now;
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        now >= self.next_trace
            || now >= self.end
            || now >= self.plant_at + MAX_PLANT_STEP
            || !self.injected.is_empty()
            || due(self.scenario.timeline.get(self.next_moment).map(|m| Instant::ZERO + m.at))
            || due(self.runtime.front().map(|m| Instant::ZERO + m.at))
            || self.own.as_ref().is_some_and(|o| now >= o.next_measure || due(o.bms.poll_timeout()))
            || self.cans.iter().any(|p| due(p.bms.poll_timeout()))
            || self.invs.iter().any(|inv| due(inv.emu.poll_timeout()))
            || due(self.gateway.poll_timeout())
    }

    /// Moves our pack's module-board bus up to now: bytes, deadlines, and the readings of every
    /// finished cycle into the pack controller as one batch (its actions are drained by the
    /// caller). Then the balance resistors' currents go to the plant. Returns whether a batch
    /// was delivered.
    fn run_boards(&mut self) -> bool {
        let now = self.now;
        let Some(o) = &mut self.own else { return false };
        let OwnPack { boards: Some(boards), frontend, plant, bms, .. } = o else { return false };
        let fresh = frontend.board_inputs(now, plant, &mut o.board_cells_v, &mut o.board_temps_c);
        let analog = Analog::new(&o.board_cells_v, &o.board_temps_c);
        let mut notes = Vec::new();
        let mut delivered = false;
        let calls = &mut self.summary.core_calls;
        boards.run_until(
            now,
            &analog,
            fresh,
            &mut |inputs| {
                bms.handle_inputs(now, inputs);
                *calls += 1;
                delivered = true;
            },
            &mut |note| notes.push(note),
        );
        // Unchanged bleed currents leave nothing to apply.
        let bleed = boards.bleed_currents_a(&o.board_cells_v, fresh, &mut o.bleed_a);
        let changed = |want: f64, applied: f64| {
            (want - applied).abs() > BLEED_RESOLUTION_A || (want == 0.0) != (applied == 0.0)
        };
        let bleed_changed =
            bleed && o.bleed_a.iter().zip(&o.bleed_applied_a).any(|(w, a)| changed(*w, *a));
        for note in notes {
            self.log(Source::Boards, format!("own pack: {}", describe::board_note(note)));
        }
        if bleed_changed {
            // The old bleed currents flowed until now.
            self.catch_up();
            if let Some(o) = &mut self.own {
                for (i, (want, applied)) in o.bleed_a.iter().zip(&mut o.bleed_applied_a).enumerate()
                {
                    if changed(*want, *applied) {
                        *applied = *want;
                        o.plant.set_group_bleed_a(i, *want);
                    }
                }
            }
        }
        delivered
    }

    pub(crate) fn inverter_count(&self) -> usize {
        self.invs.len()
    }

    /// Every pack with its name and what it reports.
    pub(crate) fn pack_views(&self) -> Vec<(String, Option<cellwarden_core::BatteryView>)> {
        let mut out = Vec::new();
        if let Some(o) = &self.own {
            out.push((self.pack_names[0].clone(), o.bms.battery_view()));
        }
        let k = usize::from(self.own.is_some());
        for (j, c) in self.cans.iter().enumerate() {
            let report = self.gateway.status().packs.get(k + j).and_then(|p| p.report);
            out.push((c.name.clone(), report.map(|(_, view)| view)));
        }
        out
    }

    /// The names of the CAN buses: `pack0`, ..., `inv0`, ...
    pub(crate) fn bus_names(&self) -> Vec<String> {
        self.cans
            .iter()
            .map(|c| c.link.name.clone())
            .chain(self.invs.iter().map(|i| i.link.name.clone()))
            .collect()
    }

    /// Puts a frame from outside on a bus, as if a device there sent it, at the next step.
    pub(crate) fn inject(&mut self, bus: &str, frame: Frame) {
        self.injected.push((bus.to_string(), frame));
    }

    /// Every frame sent since the last call (only with `tap`).
    pub(crate) fn take_frames(&mut self) -> Vec<LoggedFrame> {
        let mut out = Vec::new();
        let links = self
            .cans
            .iter_mut()
            .map(|c| &mut c.link)
            .chain(self.invs.iter_mut().map(|i| &mut i.link));
        for link in links {
            for r in link.bus.tap() {
                out.push(LoggedFrame { at: r.at, bus: link.name.clone(), frame: r.frame });
            }
        }
        out.sort_by_key(|f| f.at);
        out
    }

    fn elapsed(&self) -> Duration {
        self.now.saturating_since(Instant::ZERO)
    }

    fn log(&mut self, source: Source, text: String) {
        self.log.push(LogEntry { at: self.elapsed(), source, text });
    }

    fn apply_moments(&mut self) {
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

    fn apply(&mut self, moment: &Moment) {
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
    fn command(&mut self, command: Command, can_pack: Option<u8>) {
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

    fn inject_fault(&mut self, fault: FaultSpec) {
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

    /// Integrates every plant from where they stand to now, with the currents of the state at
    /// the start of the jump held constant (each plant's solution is exact for that): the
    /// inverters' currents at the bus voltage they saw, split among the connected packs by
    /// their Thevenin equivalents over the jump, so packs at different voltages share unevenly
    /// and circulate current, as they do.
    fn catch_up(&mut self) {
        if self.plant_at >= self.now {
            return;
        }
        let (from, span) = (self.plant_at, self.now.saturating_since(self.plant_at));
        let dt = span.as_micros() as f64 / 1e6;
        // Thevenin equivalents of the connected packs (own first, then the CAN packs).
        let mut th: Vec<Option<(f64, f64)>> = Vec::with_capacity(self.packs.len());
        if let Some(o) = &mut self.own {
            th.push(o.plant.connected().then(|| o.plant.thevenin(dt)));
        }
        for p in &mut self.cans {
            let on = p.relay && p.bms.switch_on();
            th.push(on.then(|| p.plant.thevenin(dt)));
        }
        let (g, ge) =
            th.iter().flatten().fold((0.0, 0.0), |(g, ge), (e, r)| (g + 1.0 / r, ge + e / r));
        let open_v = if g > 0.0 { ge / g } else { 0.0 };
        // The inverters' currents at the bus voltage they see at the start of the jump: the
        // last one's, or the packs' resting voltage on the first jump with a pack on the bus.
        let demand = self.demand_a(from, open_v);
        let seen_v = if self.bus_v > 0.0 { self.bus_v } else { open_v };
        let mut total = 0.0;
        for inv in &mut self.invs {
            inv.current_a =
                if g > 0.0 { inv.emu.current_a(from, demand * inv.weight, seen_v) } else { 0.0 };
            total += inv.current_a;
        }
        self.bus_v = if g > 0.0 { (total + ge) / g } else { 0.0 };
        let mut k = 0;
        if let Some(o) = &mut self.own {
            let i = th[0].map_or(0.0, |(e, r)| (self.bus_v - e) / r);
            o.plant.step(dt, i);
            self.packs[0].current_a = o.plant.current_a();
            k = 1;
        }
        for (j, p) in self.cans.iter_mut().enumerate() {
            let i = th[k + j].map_or(0.0, |(e, r)| (self.bus_v - e) / r);
            // A pack off the bus carries nothing: its plant's path is open.
            p.plant.set_contactor(ContactorId::Positive, th[k + j].is_some());
            p.plant.step(dt, i);
            self.packs[k + j].current_a = if th[k + j].is_some() { i } else { 0.0 };
        }
        for (f, t) in self.packs.iter_mut().zip(&th) {
            if t.is_some() {
                f.connected = f.connected.saturating_add(span);
            }
        }
        self.summary.plant_steps += 1;
        self.plant_at = self.now;
    }

    /// The timeline's total demand at `at`, A (positive charging).
    fn demand_a(&self, at: Instant, bus_v: f64) -> f64 {
        let Some((profile, since)) = &self.profile else { return 0.0 };
        let a = match profile.demand(at.saturating_since(*since)) {
            Demand::Amps(a) => a,
            Demand::Watts(w) if bus_v > 1.0 => w / bus_v,
            Demand::Watts(_) => 0.0,
        };
        if a.is_finite() { a } else { 0.0 }
    }

    fn own_pack(&mut self) {
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

    fn drain_own(&mut self) {
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

    fn can_packs(&mut self) {
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

    fn inverter_buses(&mut self) {
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
    fn transmit(&mut self) {
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

    fn combiner_tick(&mut self) {
        self.gateway.handle_timeout(self.now);
        self.drain_combiner();
    }

    /// Carries out the gateway's commands and logs the combiner's actions.
    fn drain_combiner(&mut self) {
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

    /// Samples the signals, feeds the expectations, writes trace rows.
    fn observe(&mut self) {
        let at = self.elapsed();
        let mut cells: Vec<f64> = Vec::new();
        let mut temps: Vec<f64> = Vec::new();
        let mut socs: Vec<f64> = Vec::new();
        let mut connected = 0.0;
        let status = self.gateway.status();
        // Each pack's current against its own limit, as the pack itself reports it.
        let mut over = f64::MIN;
        let mut k = 0;
        if let Some(o) = &self.own {
            cells.extend_from_slice(o.plant.group_voltages());
            temps.extend_from_slice(o.plant.group_temps_c());
            socs.extend_from_slice(o.plant.group_socs());
            connected += f64::from(u8::from(o.plant.connected()));
            k = 1;
        }
        for p in &self.cans {
            cells.extend_from_slice(p.plant.group_voltages());
            temps.extend_from_slice(p.plant.group_temps_c());
            socs.extend_from_slice(p.plant.group_socs());
            connected += f64::from(u8::from(p.relay && p.bms.switch_on()));
        }
        for (i, f) in self.packs.iter_mut().enumerate() {
            let limit_a = |ma: MilliAmps| f64::from(ma.0) / 1000.0;
            let own_limit = if i < k {
                // While its contactors are not closed our pack's limits say "contactors open";
                // its own limits apply from the first measurement after closing.
                self.own
                    .as_ref()
                    .filter(|o| o.bms.status().sequence == SequenceState::Closed)
                    .and_then(|o| {
                        let l = o.bms.status().limits;
                        let open = cellwarden_core::LimitReason::ContactorsOpen;
                        (l.charge_reason != open && l.discharge_reason != open)
                            .then(|| (limit_a(l.charge_ma), limit_a(l.discharge_ma)))
                    })
            } else {
                self.cans.get(i - k).map(|c| {
                    let v = c.bms.view();
                    (limit_a(v.charge_limit_ma), limit_a(v.discharge_limit_ma))
                })
            };
            if let Some((c, d)) = own_limit {
                let excess = if f.current_a >= 0.0 { f.current_a - c } else { -f.current_a - d };
                // Only current that flows counts; a pack at a zero limit carrying nothing is in.
                if f.current_a.abs() > 0.5 {
                    f.over_limit_a_max =
                        Some(f.over_limit_a_max.map_or(excess, |m: f64| m.max(excess)));
                    over = over.max(excess);
                }
            }
            f.charge_a_max = f.charge_a_max.max(f.current_a);
            f.discharge_a_max = f.discharge_a_max.max(-f.current_a);
        }
        // The lowest of the connected packs' own charge voltage limits (the truth, not what a
        // misreporting BMS sends), against what each inverter believes.
        let mut pack_cvl = f64::MAX;
        if let Some(o) = self.own.as_ref().filter(|o| o.plant.connected()) {
            if let Some(v) = o.bms.battery_view() {
                pack_cvl = pack_cvl.min(f64::from(v.charge_voltage_mv.0) / 1000.0);
            }
        }
        for c in self.cans.iter().filter(|c| c.relay && c.bms.switch_on()) {
            pack_cvl = pack_cvl.min(f64::from(c.bms.view().charge_voltage_mv.0) / 1000.0);
        }
        let (mut inv_cvl_min, mut inv_cvl_max) = (f64::MAX, f64::MIN);
        for inv in &self.invs {
            if let Some(v) = inv.emu.battery(self.now) {
                let cvl = f64::from(v.charge_voltage_mv.0) / 1000.0;
                (inv_cvl_min, inv_cvl_max) = (inv_cvl_min.min(cvl), inv_cvl_max.max(cvl));
            }
        }
        let mut inv_over = f64::MIN;
        let mut total = 0.0;
        for (k, (inv, fig)) in self.invs.iter().zip(&mut self.inverters).enumerate() {
            let view = self.gateway.view(k as u8);
            let c = f64::from(view.charge_limit_ma.0) / 1000.0;
            let d = f64::from(view.discharge_limit_ma.0) / 1000.0;
            let excess = if inv.current_a >= 0.0 { inv.current_a - c } else { -inv.current_a - d };
            if inv.current_a.abs() > 0.5 {
                inv_over = inv_over.max(excess);
                fig.over_limit_a_max = fig.over_limit_a_max.max(excess);
            }
            fig.charge_a_max = fig.charge_a_max.max(inv.current_a);
            fig.discharge_a_max = fig.discharge_a_max.max(-inv.current_a);
            total += inv.current_a;
        }
        let (v_min, v_mean, v_max, i_min, i_max) = min_mean_max(&cells);
        let (t_min, _, t_max, it_min, it_max) = min_mean_max(&temps);
        let (soc_min, soc_mean, soc_max, _, _) = min_mean_max(&socs);
        let combined = status.combined;
        let latched = self.own.as_ref().is_some_and(|o| o.bms.status().latched().is_some());
        let s = &mut self.signals;
        s[signal_index(Signal::CellMvMax)] = v_max * 1000.0;
        s[signal_index(Signal::CellMvMin)] = v_min * 1000.0;
        s[signal_index(Signal::CellSpreadMv)] = (v_max - v_min) * 1000.0;
        s[signal_index(Signal::TempCMax)] = t_max;
        s[signal_index(Signal::TempCMin)] = t_min;
        s[signal_index(Signal::CurrentA)] = total;
        s[signal_index(Signal::CurrentAbsA)] = total.abs();
        s[signal_index(Signal::PackV)] = self.bus_v;
        s[signal_index(Signal::BusV)] = self.bus_v;
        s[signal_index(Signal::SocPctMin)] = soc_min * 100.0;
        s[signal_index(Signal::SocPctMax)] = soc_max * 100.0;
        s[signal_index(Signal::ChargeLimitA)] = f64::from(combined.charge_limit_ma.0) / 1000.0;
        s[signal_index(Signal::DischargeLimitA)] =
            f64::from(combined.discharge_limit_ma.0) / 1000.0;
        s[signal_index(Signal::ContactorsClosed)] = f64::from(u8::from(connected > 0.0));
        s[signal_index(Signal::ClosedWithLatchedFault)] =
            f64::from(u8::from(latched && self.own.as_ref().is_some_and(|o| o.plant.connected())));
        s[signal_index(Signal::PacksConnected)] = connected;
        s[signal_index(Signal::PackOverLimitA)] = if over == f64::MIN { -1.0e3 } else { over };
        s[signal_index(Signal::InverterOverLimitA)] =
            if inv_over == f64::MIN { -1.0e3 } else { inv_over };
        s[signal_index(Signal::InverterCvlV)] =
            if inv_cvl_min == f64::MAX { 1.0e3 } else { inv_cvl_min };
        s[signal_index(Signal::InverterCvlOverPackV)] =
            if inv_cvl_max == f64::MIN || pack_cvl == f64::MAX {
                -1.0e3
            } else {
                inv_cvl_max - pack_cvl
            };
        self.watch.observe(at, &self.signals);

        let first = self.trace.is_empty();
        let sm = &mut self.summary;
        track(&mut sm.cell_v_max, first, v_max, at, i_max, |n, o| n > o);
        track(&mut sm.cell_v_min, first, v_min, at, i_min, |n, o| n < o);
        track(&mut sm.temp_c_max, first, t_max, at, it_max, |n, o| n > o);
        track(&mut sm.temp_c_min, first, t_min, at, it_min, |n, o| n < o);
        track(&mut sm.charge_a_max, false, total, at, 0, |n, o| n > o);
        track(&mut sm.discharge_a_max, false, -total, at, 0, |n, o| n > o);

        let periodic = self.now >= self.next_trace || self.now >= self.end;
        // An event asks for one row, kept or left out; either way the request is done.
        let event = std::mem::take(&mut self.trace_now);
        if (periodic || event) && self.summary.keep_trace_row(periodic) {
            while self.next_trace <= self.now {
                self.next_trace += self.scenario.trace_interval.max(Duration::from_micros(1));
            }
            let row = TraceRow {
                at,
                current_a: total,
                current_measured_a: total,
                pack_v: self.bus_v,
                bus_v: self.bus_v,
                cell_v_min: v_min,
                cell_v_mean: v_mean,
                cell_v_max: v_max,
                soc_min_pct: soc_min * 100.0,
                soc_mean_pct: soc_mean * 100.0,
                soc_max_pct: soc_max * 100.0,
                soc_estimate_pct: None,
                temp_c_min: t_min,
                temp_c_max: t_max,
                charge_limit_a: f64::from(combined.charge_limit_ma.0) / 1000.0,
                discharge_limit_a: f64::from(combined.discharge_limit_ma.0) / 1000.0,
                contactors: [connected > 0.0, false, connected > 0.0],
                state: if connected > 0.0 { "closed" } else { "open" },
                latched,
            };
            if self.trace.last().is_some_and(|r| r.at == at) {
                self.trace.pop();
            }
            self.trace.push(row);
        }
    }

    /// Ends the run and reports.
    pub(crate) fn finish(self) -> Report {
        let end = self.elapsed();
        let status = self.gateway.status().clone();
        let mut packs = Vec::new();
        let mut socs_end = Vec::new();
        if let Some(o) = &self.own {
            socs_end.push(("own".to_string(), o.plant.mean_soc()));
        }
        for c in &self.cans {
            socs_end.push((pack_protocol_name(c.protocol).to_string(), c.plant.mean_soc()));
        }
        for (i, ((kind, soc_end), f)) in socs_end.iter().zip(&self.packs).enumerate() {
            packs.push(PackSummary {
                name: self.pack_names[i].clone(),
                kind: kind.clone(),
                soc_start_pct: f.soc_start * 100.0,
                soc_end_pct: soc_end * 100.0,
                charge_a_max: f.charge_a_max,
                discharge_a_max: f.discharge_a_max,
                over_limit_a_max: f.over_limit_a_max.unwrap_or(f64::NAN),
                connected: f.connected,
                final_phase: match status.packs[i].implausible {
                    Some(what) => format!("faulty (implausible {})", implausible_name(what)),
                    None => phase_name(status.packs[i].phase).to_string(),
                },
            });
        }
        let mut inverters = Vec::new();
        for (i, (inv, f)) in self.invs.iter().zip(&self.inverters).enumerate() {
            inverters.push(InverterSummary {
                name: inv.name.clone(),
                protocol: super::protocol_name(inv.protocol).to_string(),
                frames_from: inv.link.bus.sent(inv.link.device),
                frames_to: inv.link.bus.sent(inv.link.system),
                charge_a_max: f.charge_a_max,
                discharge_a_max: f.discharge_a_max,
                over_limit_a_max: f.over_limit_a_max,
                final_stage: stage_name(status.inverters[i].stage).to_string(),
            });
        }
        let state = if self.signals[signal_index(Signal::PacksConnected)] > 0.0 {
            StateName::Closed
        } else {
            StateName::Open
        };
        let all_latched: Vec<_> = match &self.own {
            Some(o) => cellwarden_core::RuleId::ALL
                .into_iter()
                .filter(|r| o.bms.status().rules[r.index()].latched)
                .collect(),
            None => Vec::new(),
        };
        let outcomes = self.watch.finish(end, &self.signals, state, &all_latched);
        let mut summary = self.summary;
        let n = socs_end.len().max(1) as f64;
        summary.soc_end_pct = socs_end.iter().map(|(_, s)| s).sum::<f64>() / n * 100.0;
        let mut energy = crate::plant::Energy::default();
        if let Some(o) = &self.own {
            add_energy(&mut energy, o.plant.energy());
        }
        for c in &self.cans {
            add_energy(&mut energy, c.plant.energy());
        }
        summary.energy = energy;
        summary.final_state = match state {
            StateName::Closed => "closed".to_string(),
            _ => "open".to_string(),
        };
        if let Some(o) = &self.own {
            summary.latched_at_end = o.bms.status().latched();
            summary.counters = o.bms.status().counters;
        }
        summary.system = Some(SystemSummary { packs, inverters });
        summary.bus = self.own.as_ref().and_then(|o| o.boards.as_ref()).map(Boards::summary);
        let sc = self.scenario;
        Report {
            name: sc.name.clone(),
            source: sc.source.display().to_string(),
            description: sc.description.clone(),
            seed: sc.seed,
            duration: sc.duration,
            log: self.log,
            outcomes,
            summary,
            trace: self.trace,
        }
    }
}

fn add_energy(total: &mut crate::plant::Energy, e: crate::plant::Energy) {
    total.charged_wh += e.charged_wh;
    total.discharged_wh += e.discharged_wh;
    total.heat_wh += e.heat_wh;
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
