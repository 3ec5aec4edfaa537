//! The system engine's loop: [`System::step`] advances one tick; [`run`] runs a scenario to its
//! end and reports, [`run_logged`] also hands out every CAN frame.
//!
//! This file holds the system's state, building it, choosing the next instant and the order of
//! what happens there, and the module-board bus of our pack; `moments.rs` applies timeline
//! entries, `flow.rs` moves the plants between instants, `buses.rs` moves reports, frames and
//! commands between the packs, the inverters and the gateway, and `observe.rs` samples the
//! signals and writes the trace and the report.

mod buses;
mod flow;
mod moments;
mod observe;

use std::collections::VecDeque;

use cellwarden_core::gateway::Gateway;
use cellwarden_core::proto::can::Frame;
use cellwarden_core::{Duration, Instant};

use super::{CanPack, Inverter, InverterFigures, LoggedFrame, OwnPack, PackFigures, build};
use crate::devices::tesla::Analog;
use crate::engine::boards::Boards;
use crate::engine::controller::Controller;
use crate::engine::describe;
use crate::engine::watch::{self, Signals, Watch};
use crate::profile::Profile;
use crate::report::{LogEntry, Source, Summary, TraceRow};
use crate::scenario::parallel::Parallel;
use crate::scenario::{Moment, Scenario};

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
}
