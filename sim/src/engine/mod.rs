//! The deterministic engine: one steppable simulation of a [`Scenario`] in virtual time against
//! the real core.
//!
//! [`Engine`] is built from a scenario and stepped with [`Engine::step_until`]; between steps a
//! caller reads what happened (the events and trace rows since a [`Mark`], the signals, every
//! pack's and the combiner's status) and changes the world (commands, load, ambient temperature,
//! every fault kind), exactly as a timeline entry would. [`run`] is the loop that runs a scenario
//! to its end and reports; a TUI or a bench steps the same engine, and [`Pacer`] holds it to k
//! times real time. Stepping in any chunks gives the report and trace of one run to the end,
//! byte for byte: steps only choose how far to go, never which instants are simulated.
//!
//! The controller under test sits behind the [`Controller`] seam: the core's pack controller in
//! this process today, a device over a link for a bench.
//!
//! The core is driven exactly as a hardware adapter drives it: every measurement reaches it as
//! an `Input` carrying its sample time, every action it emits is drained at once and applied to
//! the plant, and `handle_timeout` is called at the deadline it asked for. Virtual time jumps
//! from one deadline to the next; the plant is integrated over each jump with the currents held
//! constant (its solutions are exact for that).
//!
//! - `single.rs`: one pack with its inverter (and its module boards, when it has them).
//! - `parallel/`: a parallel system: packs on one DC bus, the core's combiner, CAN racks and
//!   inverters over in-memory CAN buses.
//! - the leaves both use: `frontend.rs` (sensors), `boards.rs` (ring and bus master),
//!   `timeline.rs`, `watch.rs` (signals and expectations), `describe.rs` (log text),
//!   `record.rs` (summary figures), `accuracy.rs` (SoC against the truth).
//!
//! Architecture Invariant: nothing here decides anything about the battery. The engine measures,
//! delivers, applies and records; every decision is the core's.

pub mod accuracy;
mod boards;
mod controller;
pub mod describe;
pub(crate) mod frontend;
mod pace;
mod parallel;
mod record;
mod single;
pub(crate) mod timeline;
pub mod watch;

use cellwarden_core::combiner::CombinerStatus;
use cellwarden_core::proto::can::Frame;
use cellwarden_core::{BatteryView, Command, Duration, Instant, Status};

pub use self::controller::Controller;
pub use self::pace::Pacer;
pub use self::parallel::LoggedFrame;
use self::parallel::SystemWorld;
use self::record::refused_report;
use self::single::PackWorld;
pub use self::watch::Signals;
use crate::profile::Profile;
use crate::report::{LogEntry, Report, TraceRow};
use crate::scenario::{FaultSpec, Moment, Scenario, Signal};

/// How many times a run reports its progress.
const PROGRESS_STEPS: u64 = 200;

/// Runs `scenario` to its end. `progress` is told the simulated time so far and the total, a
/// few hundred times per run.
pub fn run(scenario: &Scenario, progress: &mut dyn FnMut(Duration, Duration)) -> Report {
    drive(scenario, progress, None)
}

/// Runs a scenario to its end like [`run`], and hands every frame of every CAN bus to `on_frame`
/// as it goes, in time order (frames of the same instant in bus order). The report is the one
/// [`run`] gives: listening changes nothing. A single pack has no CAN buses.
pub fn run_logged(
    scenario: &Scenario,
    progress: &mut dyn FnMut(Duration, Duration),
    on_frame: &mut dyn FnMut(&LoggedFrame),
) -> Report {
    drive(scenario, progress, Some(on_frame))
}

fn drive(
    scenario: &Scenario,
    progress: &mut dyn FnMut(Duration, Duration),
    mut on_frame: Option<&mut dyn FnMut(&LoggedFrame)>,
) -> Report {
    let mut engine = match Engine::build(scenario, None, on_frame.is_some()) {
        Ok(engine) => engine,
        Err(report) => return *report,
    };
    let total = scenario.duration;
    let step = Duration::from_micros((total.as_micros() / PROGRESS_STEPS).max(1));
    while !engine.done() {
        engine.step_until(engine.clock() + step);
        if let Some(on_frame) = on_frame.as_mut() {
            for frame in engine.take_frames() {
                on_frame(&frame);
            }
        }
        progress(engine.elapsed(), total);
    }
    engine.finish()
}

/// A place in the event log and the trace, to read what came after it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    log: usize,
    trace: usize,
}

/// The arrangement a scenario describes.
enum World<'s> {
    Pack(Box<PackWorld<'s>>),
    System(Box<SystemWorld<'s>>),
}

/// One scenario being simulated; see the module documentation.
pub struct Engine<'s> {
    world: World<'s>,
    /// The time the caller has stepped to: every instant up to it is done.
    clock: Instant,
    /// Whether the first instant (the start) is done.
    started: bool,
}

impl std::fmt::Debug for Engine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("clock", &self.clock).finish_non_exhaustive()
    }
}

impl<'s> Engine<'s> {
    /// The engine of `scenario` at its start, with the core's pack controller; the report of a
    /// refused configuration when it cannot run.
    pub fn new(scenario: &'s Scenario) -> Result<Engine<'s>, Box<Report>> {
        Engine::build(scenario, None, false)
    }

    /// Like [`new`](Self::new), with `controller` as our pack's controller (a scenario with a
    /// pack of ours). The scenario's configuration is still checked by the core.
    pub fn with_controller(
        scenario: &'s Scenario,
        controller: Box<dyn Controller>,
    ) -> Result<Engine<'s>, Box<Report>> {
        Engine::build(scenario, Some(controller), false)
    }

    /// Like [`new`](Self::new), keeping every CAN frame for [`take_frames`](Self::take_frames).
    pub fn tapped(scenario: &'s Scenario) -> Result<Engine<'s>, Box<Report>> {
        Engine::build(scenario, None, true)
    }

    fn build(
        scenario: &'s Scenario,
        controller: Option<Box<dyn Controller>>,
        tap: bool,
    ) -> Result<Engine<'s>, Box<Report>> {
        let world = match &scenario.parallel {
            Some(parallel) => SystemWorld::new(scenario, parallel, tap, controller)
                .map(|w| World::System(Box::new(w)))
                .map_err(|why| Box::new(refused_report(scenario, &why)))?,
            None => World::Pack(Box::new(PackWorld::new(scenario, controller)?)),
        };
        Ok(Engine { world, clock: Instant::ZERO, started: false })
    }

    /// Simulates every instant up to and including `until` (at most to the end of the run).
    /// Nothing depends on how a run is cut into steps.
    pub fn step_until(&mut self, until: Instant) {
        let until = until.min(self.end());
        loop {
            let next = if self.started { self.next_time() } else { Instant::ZERO };
            if next > until || (self.started && self.at_end()) {
                break;
            }
            self.started = true;
            match &mut self.world {
                World::Pack(w) => {
                    w.now = next;
                    w.horizon = until;
                    w.process();
                }
                World::System(w) => {
                    w.now = next;
                    w.process();
                }
            }
        }
        self.clock = self.clock.max(until);
    }

    /// Simulates `span` more of virtual time.
    pub fn step_for(&mut self, span: Duration) {
        self.step_until(self.clock + span);
    }

    fn next_time(&self) -> Instant {
        match &self.world {
            World::Pack(w) => w.next_time(),
            World::System(w) => w.next_time(),
        }
    }

    fn at_end(&self) -> bool {
        match &self.world {
            World::Pack(w) => w.now >= w.end,
            World::System(w) => w.now >= w.end,
        }
    }

    /// Whether the run has reached its end.
    pub fn done(&self) -> bool {
        self.started && self.at_end()
    }

    /// The time stepped to.
    pub fn clock(&self) -> Instant {
        self.clock
    }

    /// The time stepped to, from the start.
    pub fn elapsed(&self) -> Duration {
        self.clock.saturating_since(Instant::ZERO)
    }

    /// The end of the run.
    pub fn end(&self) -> Instant {
        match &self.world {
            World::Pack(w) => w.end,
            World::System(w) => w.end,
        }
    }

    /// The event log and the trace so far, as a place to read on from.
    pub fn mark(&self) -> Mark {
        Mark { log: self.log().len(), trace: self.trace().len() }
    }

    /// Event log lines written since `mark`.
    pub fn events_since(&self, mark: Mark) -> &[LogEntry] {
        self.log().get(mark.log..).unwrap_or(&[])
    }

    /// Trace rows written since `mark`. The last row may be replaced by a later one at the same
    /// instant (a row per instant is kept), so a reader that must see each row once reads up
    /// to the row before the last, or after the run.
    pub fn trace_since(&self, mark: Mark) -> &[TraceRow] {
        self.trace().get(mark.trace..).unwrap_or(&[])
    }

    fn log(&self) -> &[LogEntry] {
        match &self.world {
            World::Pack(w) => &w.log,
            World::System(w) => &w.log,
        }
    }

    fn trace(&self) -> &[TraceRow] {
        match &self.world {
            World::Pack(w) => &w.trace,
            World::System(w) => &w.trace,
        }
    }

    /// Every signal as the expectations last sampled it.
    pub fn signals(&self) -> &Signals {
        match &self.world {
            World::Pack(w) => &w.signals,
            World::System(w) => &w.signals,
        }
    }

    /// One signal as the expectations last sampled it.
    pub fn signal(&self, signal: Signal) -> f64 {
        self.signals()[watch::signal_index(signal)]
    }

    /// Our pack controller's telemetry; `None` in a system of CAN racks only.
    pub fn controller_status(&self) -> Option<&Status> {
        match &self.world {
            World::Pack(w) => Some(w.bms.status()),
            World::System(w) => w.own.as_ref().map(|o| o.bms.status()),
        }
    }

    /// Every pack with its name and what it reports: our pack as its controller reports it to
    /// a combiner, each rack as its BMS's frames decode (`None` before it is heard).
    pub fn pack_views(&self) -> Vec<(String, Option<BatteryView>)> {
        match &self.world {
            World::Pack(w) => vec![("own pack".to_string(), w.bms.battery_view())],
            World::System(w) => w.pack_views(),
        }
    }

    /// The combiner's telemetry; `None` for a single pack.
    pub fn combiner_status(&self) -> Option<&CombinerStatus> {
        match &self.world {
            World::Pack(_) => None,
            World::System(w) => Some(w.gateway.status()),
        }
    }

    /// Gives our pack controller `command` now (at [`clock`](Self::clock)), as a timeline entry
    /// would.
    pub fn command(&mut self, command: Command) {
        self.schedule(Moment { command: Some(command), ..self.moment() });
    }

    /// The inverters' demand from now on (its clock starts now).
    pub fn set_load(&mut self, profile: Profile) {
        self.schedule(Moment { load: Some(profile), ..self.moment() });
    }

    /// A new ambient temperature from now on.
    pub fn set_ambient_c(&mut self, celsius: f64) {
        self.schedule(Moment { ambient_c: Some(celsius), ..self.moment() });
    }

    /// Injects `fault` now. A fault of a part the system does not have (a module board without
    /// boards, a rack or inverter past the last, our pack's sensors without our pack) is
    /// refused with the reason.
    pub fn inject_fault(&mut self, fault: FaultSpec) -> Result<(), String> {
        self.fault_applies(fault)?;
        self.schedule(Moment { fault: Some(fault), ..self.moment() });
        Ok(())
    }

    /// Puts a note in the event log now.
    pub fn note(&mut self, text: &str) {
        self.schedule(Moment { note: Some(text.to_string()), ..self.moment() });
    }

    fn moment(&self) -> Moment {
        Moment {
            at: self.elapsed(),
            line: 0,
            command: None,
            can_pack: None,
            load: None,
            fault: None,
            ambient_c: None,
            note: None,
        }
    }

    /// Runs `moment` at the clock's instant: at the next step, before anything later.
    fn schedule(&mut self, moment: Moment) {
        match &mut self.world {
            World::Pack(w) => w.runtime.push_back(moment),
            World::System(w) => w.runtime.push_back(moment),
        }
    }

    fn fault_applies(&self, fault: FaultSpec) -> Result<(), String> {
        let (boards, own, racks, inverters) = match &self.world {
            World::Pack(w) => (w.boards.is_some(), true, 0, 0),
            World::System(w) => (w.has_boards(), w.own.is_some(), w.cans.len(), w.inverter_count()),
        };
        let missing = match fault {
            FaultSpec::BoardCorrupt { .. }
            | FaultSpec::BoardDrop { .. }
            | FaultSpec::BoardDelay { .. }
            | FaultSpec::BoardSilent { .. }
            | FaultSpec::BoardFrozen { .. }
            | FaultSpec::BoardRestored { .. } => (!boards).then_some("module boards"),
            FaultSpec::CanPackSilent { can_pack }
            | FaultSpec::CanPackRestored { can_pack }
            | FaultSpec::CanPackMisreports { can_pack, .. } => {
                (usize::from(can_pack) >= racks).then_some("that CAN pack")
            }
            FaultSpec::InverterIgnoresLimits { inverter }
            | FaultSpec::InverterObeysLimits { inverter } => {
                (usize::from(inverter) >= inverters).then_some("that inverter")
            }
            _ => (!own).then_some("a pack of our own"),
        };
        match missing {
            Some(part) => Err(format!("the system has no {part}")),
            None => Ok(()),
        }
    }

    /// Names of the CAN buses (`pack0`, ..., `inv0`, ...); none for a single pack.
    pub fn bus_names(&self) -> Vec<String> {
        match &self.world {
            World::Pack(_) => Vec::new(),
            World::System(w) => w.bus_names(),
        }
    }

    /// Puts a frame from outside on a bus, as if the device there sent it, at the next instant.
    pub fn inject_frame(&mut self, bus: &str, frame: Frame) {
        if let World::System(w) = &mut self.world {
            w.inject(bus, frame);
        }
    }

    /// Every CAN frame sent since the last call (only on an engine made with
    /// [`tapped`](Self::tapped)).
    pub fn take_frames(&mut self) -> Vec<LoggedFrame> {
        match &mut self.world {
            World::Pack(_) => Vec::new(),
            World::System(w) => w.take_frames(),
        }
    }

    /// Runs to the end and reports.
    pub fn finish(mut self) -> Report {
        self.step_until(self.end());
        match self.world {
            World::Pack(w) => w.finish(),
            World::System(w) => w.finish(),
        }
    }
}
