//! One pack on its own: the plant, the measurement front end (or emulated module boards and the
//! core's bus master), the pack controller behind its [`Controller`] seam, and an inverter that
//! follows its demand inside the limits it is told.
//!
//! Virtual time jumps from one deadline to the next: the next measurement, the next timeline
//! entry, the controller's own deadline, the boards' next byte, the next trace row or the end of
//! the run. The plant is integrated over each jump with the inverter's current held constant
//! (the plant's solutions are exact for that), so a jump costs the same whether it is 1 µs or
//! 100 ms.

use std::collections::VecDeque;

use cellwarden_core::{
    Action, BalanceState, Bms, CellMask, ContactorId, CurrentLimits, Duration, FaultChange, Input,
    Instant, SequenceState, Tier, VoltageLimits, VoltageSource,
};

use cellwarden_core::charge::Stage;
use cellwarden_core::proto::tesla::regs;
use cellwarden_core::soc::{Chemistry, Initial};

use super::accuracy::Accuracy;
use super::boards::Boards;
use super::controller::Controller;
use super::frontend::FrontEnd;
use super::record::{self, confident_snapshot, count_fault, min_mean_max, refused_report, track};
use super::watch::{self, Signals, Watch, signal_index};
use super::{describe, timeline};
use crate::devices::tesla::Analog;
use crate::plant::Plant;
use crate::profile::{Demand, Profile};
use crate::report::{LogEntry, Report, SPREAD_TARGET_MV, Source, SpreadSummary, Summary, TraceRow};
use crate::scenario::{Moment, Scenario, Signal, StateName};

/// Balance resistor of each cell when the pack has no emulated boards: about 85 mA from an
/// NCA cell at 4 V and 72 mA from an LFP cell at 3.4 V, inside the 50–100 mA of common boards.
const GENERIC_BALANCE_OHM: f64 = 47.0;
/// Longest the plant may lag behind virtual time while only bytes move on the board bus. The
/// boards' inputs then see the plant at most this old: nothing in it moves measurably in 20 ms
/// (the fastest, the RC pair, has a 31 s time constant: at 90 A a cell's voltage moves some
/// 30 µV, a tenth of the boards' 0.38 mV step), and the current only changes at instants
/// where the plant catches up first. A 16-board cycle (16 ms) then needs no step of its own.
const BUS_PLANT_STEP: Duration = Duration::from_millis(20);
/// Smallest change of a bleed current passed on to the plant, A.
const BLEED_RESOLUTION_A: f64 = 1e-4;

/// How fast the inverter's constant-voltage loop moves its charge current ceiling: amperes per
/// second for each volt between the charge voltage limit and the pack voltage. With the
/// resistance of a 16-module Tesla pack (about 35 mΩ) the loop settles in about 1.5 s; its
/// step is one measurement period, far shorter, so it cannot oscillate.
const CV_GAIN_A_PER_V_S: f64 = 20.0;

/// The inverter: follows its demand profile, inside the core's limits if it obeys them.
#[derive(Debug)]
struct Inverter {
    obeys_limits: bool,
    max_charge_a: f64,
    max_discharge_a: f64,
    profile: Option<(Profile, Instant)>,
    charge_limit_a: f64,
    discharge_limit_a: f64,
    /// The charge voltage limit the battery announces, V; `None` without charge control.
    cvl_v: Option<f64>,
    /// The ceiling its constant-voltage loop puts on the charge current, A.
    cv_ceiling_a: f64,
}

impl Inverter {
    /// One step of the constant-voltage loop: an integrator that lowers the charge ceiling
    /// while the pack is above the charge voltage limit and raises it while below.
    fn regulate(&mut self, dt_s: f64, pack_v: f64) {
        let Some(cvl) = self.cvl_v else {
            self.cv_ceiling_a = self.max_charge_a;
            return;
        };
        let step = CV_GAIN_A_PER_V_S * (cvl - pack_v) * dt_s;
        if step.is_finite() {
            self.cv_ceiling_a = (self.cv_ceiling_a + step).clamp(0.0, self.max_charge_a.max(0.0));
        }
    }

    fn current_a(&self, now: Instant, pack_v: f64) -> f64 {
        let Some((profile, since)) = &self.profile else { return 0.0 };
        let asked = match profile.demand(now.saturating_since(*since)) {
            Demand::Amps(a) => a,
            Demand::Watts(w) if pack_v > 1.0 => w / pack_v,
            Demand::Watts(_) => 0.0,
        };
        if !asked.is_finite() {
            return 0.0;
        }
        let asked = asked.clamp(-self.max_discharge_a, self.max_charge_a);
        if self.obeys_limits {
            asked.clamp(-self.discharge_limit_a, self.charge_limit_a.min(self.cv_ceiling_a))
        } else {
            asked
        }
    }
}

pub(crate) struct PackWorld<'s> {
    scenario: &'s Scenario,
    pub(crate) now: Instant,
    pub(crate) end: Instant,
    plant: Plant,
    pub(crate) bms: Box<dyn Controller>,
    frontend: FrontEnd,
    inverter: Inverter,
    watch: Watch,
    next_moment: usize,
    next_measure: Instant,
    measure_period: cellwarden_core::Duration,
    next_trace: Instant,
    trace_now: bool,
    pub(crate) log: Vec<LogEntry>,
    pub(crate) trace: Vec<TraceRow>,
    summary: Summary,
    pub(crate) signals: Signals,
    /// Emulated module boards, when the scenario has them.
    pub(crate) boards: Option<Boards>,
    /// What the boards' inputs see, refreshed before they run.
    board_cells_v: Vec<f64>,
    board_temps_c: Vec<f64>,
    /// Per group: the bleed current wanted now and the one the plant has.
    bleed_a: Vec<f64>,
    bleed_applied_a: Vec<f64>,
    /// The cells the core asks to bleed (used directly when there are no boards).
    balance_cells: CellMask,
    /// Since when cells have been bleeding, for the spread summary.
    bleeding_since: Option<Instant>,
    spread: SpreadSummary,
    balanced_once: bool,
    /// The instant the plant's state refers to (at most `now`; see `run`).
    plant_at: Instant,
    /// Something besides bus traffic happened at this instant (see `run`).
    touched: bool,
    /// Whether the event log last said that balancing bleeds (see `log_balancing`).
    balancing_logged: bool,
    /// Which changes of limits the event log shows.
    limits_log: describe::LimitsLog,
    /// The charge stage (and whether a full charge was due) the log last showed.
    stage_logged: Option<(Stage, bool)>,
    /// The SoC estimate against the truth, when the core estimates.
    accuracy: Option<Accuracy>,
    /// The latest SoC estimate and its error against the truth, %, for the signals.
    soc_estimate: Option<(f64, f64)>,
    /// Timeline entries given at run time, in time order.
    pub(crate) runtime: VecDeque<Moment>,
    /// The last instant the caller's step reaches: the board bus runs ahead of `now` (see
    /// `run_boards`) no further.
    pub(crate) horizon: Instant,
}

impl<'s> PackWorld<'s> {
    pub(crate) fn new(
        scenario: &'s Scenario,
        controller: Option<Box<dyn Controller>>,
    ) -> Result<PackWorld<'s>, Box<Report>> {
        let start = Instant::ZERO;
        let plant = Plant::new(&scenario.plant, scenario.seed);
        let bms = match Bms::new(scenario.config.clone(), start) {
            Ok(bms) => bms,
            Err(e) => return Err(Box::new(refused_report(scenario, &format!("{e:?}")))),
        };
        let frontend = FrontEnd::new(
            &scenario.sensors,
            scenario.config.contactors.feedback,
            &plant,
            scenario.seed,
        );
        let inverter = Inverter {
            obeys_limits: scenario.inverter.obeys_limits,
            max_charge_a: scenario.inverter.max_charge_a,
            max_discharge_a: scenario.inverter.max_discharge_a,
            profile: None,
            charge_limit_a: 0.0,
            discharge_limit_a: 0.0,
            cvl_v: None,
            cv_ceiling_a: 0.0,
        };
        let summary = Summary { soc_start_pct: plant.mean_soc() * 100.0, ..Summary::default() };
        let mut frontend = frontend;
        let boards = match &scenario.boards {
            Some(section) => {
                frontend.use_boards();
                // The loader checked that the cells make whole boards.
                let modules = scenario.config.cell_count / regs::CELLS as u16;
                match Boards::new(section, modules, start) {
                    Ok(boards) => Some(boards),
                    Err(e) => return Err(Box::new(refused_report(scenario, &e))),
                }
            }
            None => None,
        };
        let groups = plant.group_count();
        let (v_min, v_max) = plant
            .group_voltages()
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        let spread =
            SpreadSummary { start_mv: (v_max - v_min) * 1000.0, ..SpreadSummary::default() };
        let accuracy = scenario.config.soc.map(|c| Accuracy::new(c.chemistry == Chemistry::Lfp));
        let mut bms = bms;
        if let (Some(soc), Some(config)) = (scenario.initial_soc_estimate, scenario.config.soc) {
            bms.restore_soc(Initial::Snapshot(confident_snapshot(soc, &config)));
        }
        let bms: Box<dyn Controller> = match controller {
            Some(controller) => controller,
            None => Box::new(bms),
        };
        let mut engine = PackWorld {
            scenario,
            now: start,
            end: start + scenario.duration,
            plant,
            bms,
            frontend,
            inverter,
            watch: Watch::new(&scenario.expectations),
            next_moment: 0,
            next_measure: start,
            // A zero period would stop time; the loader refuses it, this guards the engine.
            measure_period: scenario.sensors.measure_period.0.max(Duration::from_micros(1)),
            next_trace: start,
            trace_now: false,
            log: Vec::new(),
            trace: Vec::new(),
            summary,
            signals: [0.0; watch::SIGNAL_COUNT],
            boards,
            board_cells_v: Vec::with_capacity(groups),
            board_temps_c: Vec::new(),
            bleed_a: vec![0.0; groups],
            bleed_applied_a: vec![0.0; groups],
            balance_cells: CellMask::EMPTY,
            bleeding_since: None,
            spread,
            balanced_once: false,
            touched: false,
            plant_at: start,
            balancing_logged: false,
            limits_log: describe::LimitsLog::default(),
            stage_logged: None,
            accuracy,
            soc_estimate: None,
            runtime: VecDeque::new(),
            horizon: start,
        };
        if !scenario.event_log {
            engine.log.push(LogEntry {
                at: Duration::ZERO,
                source: Source::Timeline,
                text: "event log off (output.event_log = false): see the summary and the trace"
                    .to_owned(),
            });
        }
        engine.drain();
        Ok(engine)
    }

    /// Does everything due at `now` (the caller has moved `now` to the instant
    /// [`next_time`](Self::next_time) gave).
    pub(crate) fn process(&mut self) {
        // The plant catches up to now whenever anything but bus traffic is due, and at least
        // every BUS_PLANT_STEP during it; `drain` and `apply_bleed` also catch it up before
        // they change it.
        let due = self.boards.is_none()
            || self.now >= self.next_measure
            || self.now >= self.next_trace
            || self.now >= self.end
            || self
                .scenario
                .timeline
                .get(self.next_moment)
                .is_some_and(|m| Instant::ZERO + m.at <= self.now)
            || self.runtime.front().is_some_and(|m| Instant::ZERO + m.at <= self.now)
            || self.bms.poll_timeout().is_some_and(|t| t <= self.now)
            || self.now.saturating_since(self.plant_at) >= BUS_PLANT_STEP;
        if due {
            self.catch_up();
        }
        self.touched = false;
        let before = (self.next_moment, self.runtime.len());
        self.apply_moments();
        self.touched |= (self.next_moment, self.runtime.len()) != before;
        self.run_boards();
        if self.now >= self.next_measure {
            self.measure();
            self.next_measure += self.measure_period;
            self.touched = true;
        }
        if self.bms.poll_timeout().is_some_and(|t| t <= self.now) {
            self.bms.handle_timeout(self.now);
            self.summary.core_calls += 1;
            self.drain();
            self.touched = true;
        }
        // Instants where only bytes moved on the board bus (a few dozen per measurement
        // cycle) are not sampled: the signals are sampled at every measurement, timeline
        // entry, core deadline and action, as in a run without boards, and the bus costs
        // little more than its plant steps.
        let bus_only = self.boards.is_some() && !self.touched;
        if !bus_only || self.now >= self.next_trace || self.now >= self.end {
            self.observe();
        }
    }

    /// Integrates the plant from where it stands to now, with the inverter's current held at
    /// what it asked for at the start (the plant's solutions are exact for that).
    fn catch_up(&mut self) {
        if self.plant_at >= self.now {
            return;
        }
        let pack_v = self.plant.pack_voltage_v();
        let inverter_a = self.inverter.current_a(self.plant_at, pack_v);
        let dt = self.now.saturating_since(self.plant_at);
        self.plant.step(dt.as_micros() as f64 / 1e6, inverter_a);
        self.summary.plant_steps += 1;
        self.plant_at = self.now;
    }

    /// The earliest of everything that is waiting; later than `now`, unless an entry given at
    /// run time waits at `now` itself.
    pub(crate) fn next_time(&self) -> Instant {
        if let Some(m) = self.runtime.front() {
            if Instant::ZERO + m.at <= self.now {
                return self.now;
            }
        }
        let mut next = self.next_measure.min(self.next_trace).min(self.end);
        if let Some(m) = self.scenario.timeline.get(self.next_moment) {
            next = next.min(Instant::ZERO + m.at);
        }
        if let Some(m) = self.runtime.front() {
            next = next.min(Instant::ZERO + m.at);
        }
        if let Some(deadline) = self.bms.poll_timeout().filter(|d| *d > self.now) {
            next = next.min(deadline);
        }
        if let Some(deadline) = self.boards.as_ref().and_then(Boards::next_deadline) {
            if deadline > self.now {
                next = next.min(deadline);
            }
        }
        // Every candidate above is later than now once the step at now is done; this keeps
        // time moving even if one of them were not.
        next.max(self.now + Duration::from_micros(1))
    }

    fn elapsed(&self) -> Duration {
        self.now.saturating_since(Instant::ZERO)
    }

    fn log(&mut self, source: Source, text: String) {
        if self.scenario.event_log {
            self.log.push(LogEntry { at: self.elapsed(), source, text });
        }
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
        timeline::record(moment, at, "inverter demand", &mut self.log, &mut self.watch);
        if let Some(c) = moment.ambient_c {
            self.plant.set_ambient_c(c);
        }
        if let Some(profile) = &moment.load {
            self.inverter.profile = Some((profile.clone(), self.now));
        }
        if let Some(fault) = moment.fault {
            let (plant, frontend) = (&mut self.plant, &mut self.frontend);
            if !timeline::inject_pack_fault(plant, frontend, self.now, fault) {
                // The loader refuses board faults without boards, and parallel-system faults
                // outside a parallel system (which the parallel arrangement runs).
                if let Some(boards) = &mut self.boards {
                    boards.inject(self.now, fault);
                }
            }
        }
        if let Some(command) = moment.command {
            self.bms.handle_inputs(self.now, &[Input::Command(command)]);
            self.summary.core_calls += 1;
            self.drain();
        }
        self.trace_now = true;
    }

    /// Moves the board bus up to now: bytes, deadlines, and the readings of every finished
    /// cycle into the core as one batch. Then the balance resistors' currents go to the plant.
    ///
    /// When nothing else happens at this instant, the bus goes on through its own byte events
    /// up to the engine's next own deadline ([`Self::bus_limit`]) and `now` moves with it: at
    /// those instants an engine step would do nothing but move bytes, so skipping it changes
    /// nothing.
    fn run_boards(&mut self) {
        if self.boards.is_none() {
            self.apply_bleed();
            return;
        }
        let fresh = self.frontend.board_inputs(
            self.now,
            &self.plant,
            &mut self.board_cells_v,
            &mut self.board_temps_c,
        );
        // New inputs may move the bleed currents, which reach the plant at this instant.
        let limit = if fresh { self.now } else { self.bus_limit() };
        let Some(boards) = &mut self.boards else { return };
        let analog = Analog::new(&self.board_cells_v, &self.board_temps_c);
        let mut notes = Vec::new();
        let (bms, summary) = (&mut self.bms, &mut self.summary);
        let mut delivered = false;
        self.now = boards.run_ahead(
            self.now,
            limit,
            &analog,
            fresh,
            &mut |at, inputs| {
                bms.handle_inputs(at, inputs);
                summary.core_calls += 1;
                delivered = true;
            },
            &mut |note| notes.push(note),
        );
        // Unchanged bleed currents leave nothing to apply.
        let bleed = boards.bleed_currents_a(&self.board_cells_v, fresh, &mut self.bleed_a);
        for note in notes {
            self.log(Source::Boards, describe::board_note(note));
        }
        if delivered {
            self.drain();
        }
        if bleed {
            self.apply_bleed();
        }
    }

    /// The earliest instant after `now` at which the engine has work of its own besides the
    /// board bus: a measurement, a trace row, the end, a timeline entry, the controller's
    /// deadline, the plant's next step while bytes move (`BUS_PLANT_STEP`) or the end of the
    /// caller's step. `now` itself when something at `now` is still to be done after the bus
    /// (or has been, and is observed at `now`), or when the boards' inputs drift with time.
    fn bus_limit(&self) -> Instant {
        let now = self.now;
        if self.touched || self.frontend.drifting() {
            return now;
        }
        let mut limit = self
            .next_measure
            .min(self.next_trace)
            .min(self.end)
            .min(self.plant_at + BUS_PLANT_STEP)
            .min(self.horizon + Duration::from_micros(1));
        if let Some(m) = self.scenario.timeline.get(self.next_moment) {
            limit = limit.min(Instant::ZERO + m.at);
        }
        if let Some(m) = self.runtime.front() {
            limit = limit.min(Instant::ZERO + m.at);
        }
        if let Some(deadline) = self.bms.poll_timeout() {
            limit = limit.min(deadline);
        }
        limit.max(now)
    }

    /// Passes bleed currents that changed to the plant. Without boards, the cells the core
    /// chose bleed through a generic balance resistor.
    fn apply_bleed(&mut self) {
        if self.boards.is_none() {
            // Nothing chosen and nothing bleeding (a zero want leaves a zero applied): the
            // loops below would change nothing.
            if self.balance_cells.is_empty() && self.bleed_a.iter().all(|b| *b == 0.0) {
                return;
            }
            let voltages = self.plant.group_voltages();
            for (i, bleed) in self.bleed_a.iter_mut().enumerate() {
                let on = u16::try_from(i).is_ok_and(|c| self.balance_cells.contains(c));
                *bleed = if on { voltages[i] / GENERIC_BALANCE_OHM } else { 0.0 };
            }
        }
        let changed = |want: f64, applied: f64| {
            (want - applied).abs() > BLEED_RESOLUTION_A || (want == 0.0) != (applied == 0.0)
        };
        if !self.bleed_a.iter().zip(&self.bleed_applied_a).any(|(w, a)| changed(*w, *a)) {
            return;
        }
        // The old bleed currents flowed until now.
        self.catch_up();
        for (i, (want, applied)) in self.bleed_a.iter().zip(&mut self.bleed_applied_a).enumerate() {
            if changed(*want, *applied) {
                *applied = *want;
                self.plant.set_group_bleed_a(i, *want);
            }
        }
    }

    fn measure(&mut self) {
        let PackWorld { frontend, plant, bms, summary, now, boards, .. } = self;
        let boards = boards.as_ref();
        frontend.measure(*now, plant, boards, &mut |inputs| bms.handle_inputs(*now, inputs));
        summary.core_calls += 1;
        self.drain();
        self.after_measure();
    }

    /// What follows each measurement cycle: the inverter runs its voltage loop against the last
    /// charge voltage limit it heard (`Action::VoltageLimits`), and the SoC estimate is
    /// compared with the truth.
    fn after_measure(&mut self) {
        let at = self.elapsed();
        let status = self.bms.status();
        if let Some(charge) = &status.charge {
            let stage = (charge.stage, charge.full_charge_due);
            // The start in bulk is not news.
            let start = self.stage_logged.is_none() && stage == (Stage::Bulk, false);
            if self.stage_logged != Some(stage) {
                self.stage_logged = Some(stage);
                if !start {
                    let text = describe::charge_stage(charge);
                    self.log(Source::Core, text);
                    self.trace_now = true;
                }
            }
        }
        let status = self.bms.status();
        let dt = self.measure_period.as_micros() as f64 / 1e6;
        self.inverter.regulate(dt, self.plant.pack_voltage_v());
        if let (Some(accuracy), Some(soc)) = (&mut self.accuracy, &status.soc) {
            let true_soc = self.plant.mean_soc();
            let (true_ah, true_r0) = (self.plant.mean_capacity_ah(), self.plant.mean_r0_uohm());
            accuracy.sample(at, soc, true_soc, true_ah, true_r0);
            let estimate = f64::from(soc.soc_ppm) / 1e4;
            self.soc_estimate = Some((estimate, estimate - true_soc * 100.0));
        }
    }

    fn drain(&mut self) {
        while let Some(action) = self.bms.poll_action() {
            if let Action::VoltageLimits(voltage) = action {
                self.hear_voltage_limits(voltage);
                continue;
            }
            self.touched = true;
            self.catch_up();
            self.apply_action(action);
        }
        self.log_balancing();
    }

    /// The inverter hears the charge voltage limit as it would over CAN. Nothing in the plant
    /// moves until its voltage loop runs after the next measurement, so this needs no catch-up
    /// and no trace row; it is not logged either (the charge stage changes that move it are).
    fn hear_voltage_limits(&mut self, voltage: VoltageLimits) {
        // This emulated inverter runs its constant-voltage loop only against a charge
        // controller's target, as it did before the limit was an action.
        self.inverter.cvl_v = (voltage.charge_source == VoltageSource::ChargeControl)
            .then(|| f64::from(voltage.charge_mv.0) / 1000.0);
    }

    fn apply_action(&mut self, action: Action) {
        if let Action::Balance(cells) = action {
            // The log gets one line per change of course from `log_balancing`, not one per
            // window.
            self.balance_cells = cells;
            if let Some(boards) = &mut self.boards {
                boards.set_balance(&cells);
            }
            self.track_bleeding(!cells.is_empty());
            return;
        }
        let at = self.elapsed();
        if self.limits_log.shows(at, &action) {
            self.log(Source::Core, describe::action(&action));
        }
        self.trace_now = true;
        match action {
            Action::Contactor { contactor, closed } => {
                self.plant.set_contactor(contactor, closed);
                if self.plant.contactor_closed(contactor) != closed {
                    self.log(
                        Source::Plant,
                        format!("contactor {} did not move", describe::contactor(contactor)),
                    );
                }
                return;
            }
            Action::Limits(limits) => self.set_limits(&limits),
            Action::Fault(e) if e.change == FaultChange::Raised => {
                self.count_fault(e.rule, e.tier, at);
            }
            _ => {}
        }
        if let Some(happened) = watch::happened(at, &action) {
            self.watch.event(happened);
        }
    }

    /// Balancing switches every bleeding cell off for each measure window and back on after it,
    /// and measurement noise moves a cell or two in or out of the set at most choices; logging
    /// each would bury everything else. So the log says only when bleeding starts and when it
    /// stops for another reason than a measure window.
    fn log_balancing(&mut self) {
        let balance = self.bms.status().balance;
        let bleeding = !balance.cells.is_empty();
        if balance.state == BalanceState::Measuring || bleeding == self.balancing_logged {
            return;
        }
        self.balancing_logged = bleeding;
        self.log(Source::Core, describe::balancing(&balance));
    }

    fn track_bleeding(&mut self, bleeding: bool) {
        match (self.bleeding_since, bleeding) {
            (None, true) => {
                self.bleeding_since = Some(self.now);
                self.balanced_once = true;
            }
            (Some(since), false) => {
                let d = self.now.saturating_since(since);
                self.spread.bleeding = self.spread.bleeding.saturating_add(d);
                self.bleeding_since = None;
            }
            _ => {}
        }
    }

    fn set_limits(&mut self, limits: &CurrentLimits) {
        self.inverter.charge_limit_a = f64::from(limits.charge_ma.0) / 1000.0;
        self.inverter.discharge_limit_a = f64::from(limits.discharge_ma.0) / 1000.0;
    }

    fn count_fault(&mut self, rule: cellwarden_core::RuleId, tier: Tier, at: Duration) {
        count_fault(&mut self.summary.faults, rule, tier, at);
    }

    /// Samples the signals, updates the extremes, feeds the expectations, writes trace rows.
    fn observe(&mut self) {
        let at = self.elapsed();
        let (v_min, v_mean, v_max, i_min, i_max) = min_mean_max(self.plant.group_voltages());
        let (t_min, _, t_max, it_min, it_max) = min_mean_max(self.plant.group_temps_c());
        let (soc_min, soc_mean, soc_max, _, _) = min_mean_max(self.plant.group_socs());
        let current = self.plant.current_a();
        let status = self.bms.status();
        let latched = status.latched().is_some();
        let commanded_closed = status.contactors[ContactorId::Negative.index()].commanded_closed
            || status.contactors[ContactorId::Positive.index()].commanded_closed;
        let spread_mv = (v_max - v_min) * 1000.0;
        if self.balanced_once
            && self.spread.below_target_at.is_none()
            && spread_mv < SPREAD_TARGET_MV
        {
            self.spread.below_target_at = Some(at);
        }
        let s = &mut self.signals;
        s[signal_index(Signal::CellMvMax)] = v_max * 1000.0;
        s[signal_index(Signal::CellMvMin)] = v_min * 1000.0;
        s[signal_index(Signal::CellSpreadMv)] = (v_max - v_min) * 1000.0;
        s[signal_index(Signal::TempCMax)] = t_max;
        s[signal_index(Signal::TempCMin)] = t_min;
        s[signal_index(Signal::CurrentA)] = current;
        s[signal_index(Signal::CurrentAbsA)] = current.abs();
        s[signal_index(Signal::PackV)] = self.plant.pack_voltage_v();
        s[signal_index(Signal::BusV)] = self.plant.bus_voltage_v();
        s[signal_index(Signal::SocPctMin)] = soc_min * 100.0;
        s[signal_index(Signal::SocPctMax)] = soc_max * 100.0;
        s[signal_index(Signal::ChargeLimitA)] = self.inverter.charge_limit_a;
        s[signal_index(Signal::DischargeLimitA)] = self.inverter.discharge_limit_a;
        s[signal_index(Signal::ContactorsClosed)] = f64::from(u8::from(self.plant.connected()));
        s[signal_index(Signal::ClosedWithLatchedFault)] =
            f64::from(u8::from(latched && commanded_closed));
        let (estimate, error) = self.soc_estimate.unwrap_or((0.0, 0.0));
        s[signal_index(Signal::SocEstimatePct)] = estimate;
        s[signal_index(Signal::SocErrorPct)] = error.abs();
        self.watch.observe(at, &self.signals);

        let first = self.summary.plant_steps == 0 && self.trace.is_empty();
        let sm = &mut self.summary;
        track(&mut sm.cell_v_max, first, v_max, at, i_max, |new, old| new > old);
        track(&mut sm.cell_v_min, first, v_min, at, i_min, |new, old| new < old);
        track(&mut sm.temp_c_max, first, t_max, at, it_max, |new, old| new > old);
        track(&mut sm.temp_c_min, first, t_min, at, it_min, |new, old| new < old);
        track(&mut sm.charge_a_max, false, current, at, 0, |new, old| new > old);
        track(&mut sm.discharge_a_max, false, -current, at, 0, |new, old| new > old);

        let periodic = self.now >= self.next_trace;
        // An event asks for one row, kept or left out; either way the request is done.
        let event = std::mem::take(&mut self.trace_now);
        if (periodic || event) && self.summary.keep_trace_row(periodic) {
            while self.next_trace <= self.now {
                self.next_trace += self.scenario.trace_interval.max(Duration::from_micros(1));
            }
            let row = TraceRow {
                at,
                current_a: current,
                current_measured_a: self.frontend.last_current_a,
                pack_v: self.plant.pack_voltage_v(),
                bus_v: self.plant.bus_voltage_v(),
                cell_v_min: v_min,
                cell_v_mean: v_mean,
                cell_v_max: v_max,
                soc_min_pct: soc_min * 100.0,
                soc_mean_pct: soc_mean * 100.0,
                soc_max_pct: soc_max * 100.0,
                soc_estimate_pct: self.soc_estimate.map(|(estimate, _)| estimate),
                temp_c_min: t_min,
                temp_c_max: t_max,
                charge_limit_a: self.inverter.charge_limit_a,
                discharge_limit_a: self.inverter.discharge_limit_a,
                contactors: ContactorId::ALL.map(|id| self.plant.contactor_closed(id)),
                state: describe::state(status.sequence),
                latched,
            };
            // Two rows at one instant (an event right at a trace tick) keep only the later.
            if self.trace.last().is_some_and(|r| r.at == at) {
                self.trace.pop();
            }
            self.trace.push(row);
        }
    }

    pub(crate) fn finish(mut self) -> Report {
        let end = self.elapsed();
        self.track_bleeding(false);
        if self.balanced_once {
            let (lo, hi) = self
                .plant
                .group_voltages()
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
            self.spread.end_mv = (hi - lo) * 1000.0;
            self.summary.spread = Some(self.spread);
        }
        self.summary.bus = self.boards.as_ref().map(Boards::summary);
        let status = self.bms.status();
        let state = match status.sequence {
            SequenceState::Open
            | SequenceState::RetryWait { .. }
            | SequenceState::WeldCheck { .. } => StateName::Open,
            SequenceState::Closed | SequenceState::Stopping { .. } => StateName::Closed,
            _ => StateName::Closing,
        };
        let latched = status.latched();
        let all_latched: Vec<_> = cellwarden_core::RuleId::ALL
            .into_iter()
            .filter(|r| status.rules[r.index()].latched)
            .collect();
        let outcomes = self.watch.finish(end, &self.signals, state, &all_latched);
        let mut summary = self.summary;
        summary.soc_end_pct = self.plant.mean_soc() * 100.0;
        summary.energy = self.plant.energy();
        summary.final_state = describe::state(status.sequence).to_string();
        summary.latched_at_end = latched;
        summary.counters = status.counters;
        summary.soc = self.accuracy.and_then(Accuracy::finish);
        let sc = self.scenario;
        record::report(sc, sc.duration, self.log, outcomes, summary, self.trace)
    }
}
