//! Module boards between the plant and the core: the emulated ring answers byte for byte, the
//! core's own bus master drives it, and the master's readings reach the pack controller as the
//! inputs of one batch per measurement cycle.
//!
//! The engine only moves bytes and time: every decision about retries, lost boards,
//! batches, balance masks, the boards' protector and which board events to log is the core's
//! [`BoardBridge`] (with its bus master) or the pack controller's.

use cellwarden_core::proto::tesla::bridge::{BoardBridge, BridgeEvent};
use cellwarden_core::proto::tesla::master::{Event, MasterConfig};
use cellwarden_core::proto::tesla::scale::Thermistor;
use cellwarden_core::{CellMask, Duration, Input, Instant};

use crate::devices::tesla::{Analog, Ring, RingFault, RingSpec};
use crate::report::BusSummary;
use crate::scenario::{BoardsSection, FaultSpec};

/// Most rounds of byte passing at one instant; each round moves at least one frame, and one
/// instant holds at most a few (a reply arriving, the next request going out).
const MAX_ROUNDS: usize = 64;

/// Figures for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BusFigures {
    /// Measurement cycles completed.
    pub cycles: u64,
    /// Sum of their durations (conversion to last reply), for the mean.
    pub cycle_time_total: Duration,
    /// The longest.
    pub cycle_time_max: Duration,
    /// Board readings that arrived.
    pub readings: u64,
    /// Board readings missing from a cycle.
    pub missed: u64,
}

/// The ring and the core's bridge to it.
#[derive(Debug)]
pub struct Boards {
    bridge: BoardBridge,
    ring: Ring,
    rx: Vec<u8>,
    figures: BusFigures,
    /// The ring's count of output changes at the last bleed update.
    bleed_outputs: Option<u64>,
}

impl Boards {
    /// `modules` boards as the section describes, enumerated from `now`.
    pub fn new(section: &BoardsSection, modules: u16, now: Instant) -> Result<Boards, String> {
        let count = u8::try_from(modules).map_err(|_| format!("{modules} boards is too many"))?;
        let mut config = MasterConfig::tesla(count);
        config.scan_period_ms = u32::try_from(section.scan_period.0.as_millis().max(1))
            .map_err(|_| "the scan period is too long".to_string())?;
        config.read_crc = section.read_crc;
        config.retries = section.retries;
        config.lost_after = section.lost_after;
        config.ts2 = Thermistor::PYBMS;
        let bridge = BoardBridge::new(config, now).map_err(|e| format!("bus master: {e:?}"))?;
        let mut spec = RingSpec::new(usize::from(modules));
        spec.bleed_ohm = section.balance_ohm;
        Ok(Boards {
            bridge,
            ring: Ring::new(&spec),
            rx: Vec::with_capacity(64),
            figures: BusFigures::default(),
            bleed_outputs: None,
        })
    }

    /// The earliest deadline of master and ring.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.bridge.poll_timeout(), self.ring.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Moves every byte and deadline due at `now`. The readings of each cycle that ends go to
    /// `deliver` as one batch; the events worth logging (enumeration, lost and recovered
    /// boards, alert and fault bits that changed) go to `note`.
    /// `fresh`: `analog` may differ from the last call's.
    pub fn run_until(
        &mut self,
        now: Instant,
        analog: &Analog<'_>,
        fresh: bool,
        deliver: &mut dyn FnMut(&[Input<'_>]),
        note: &mut dyn FnMut(Event),
    ) {
        self.run_at(now, analog, fresh, &mut |_, inputs| deliver(inputs), note);
    }

    /// Like [`run_until`](Self::run_until) at `now`, then goes on through the bus's own
    /// deadlines before `limit` while nothing but bytes moves, with `analog` unchanged; stops
    /// after the first instant at which a batch was delivered, an event noted or a balance
    /// output switched, so that the caller acts on those at their instant. Returns the last
    /// instant done (`now` when nothing was due before `limit`).
    ///
    /// The caller's own work (a measurement, a timeline entry, the controller's deadline, a
    /// plant step, a trace row) sets `limit`: an instant before it at which only bytes move
    /// needs nothing from the caller, so a bus cycle's few dozen byte events cost no engine
    /// step each. `deliver` gets the instant of its batch.
    pub fn run_ahead(
        &mut self,
        now: Instant,
        limit: Instant,
        analog: &Analog<'_>,
        fresh: bool,
        deliver: &mut dyn FnMut(Instant, &[Input<'_>]),
        note: &mut dyn FnMut(Event),
    ) -> Instant {
        let mut at = now;
        let mut fresh = fresh;
        loop {
            let outputs = self.ring.outputs_changes();
            if self.run_at(at, analog, fresh, deliver, note)
                || self.ring.outputs_changes() != outputs
            {
                return at;
            }
            fresh = false;
            match self.next_deadline() {
                Some(next) if next > at && next < limit => at = next,
                _ => return at,
            }
        }
    }

    /// Everything due at `now`; returns whether a batch was delivered or an event noted.
    fn run_at(
        &mut self,
        now: Instant,
        analog: &Analog<'_>,
        fresh: bool,
        deliver: &mut dyn FnMut(Instant, &[Input<'_>]),
        note: &mut dyn FnMut(Event),
    ) -> bool {
        if fresh {
            self.ring.observe(now, analog);
        } else {
            self.ring.observe_unchanged(now, analog);
        }
        let mut reported = false;
        for _ in 0..MAX_ROUNDS {
            let mut moved = false;
            self.ring.take_output(now, &mut self.rx);
            if !self.rx.is_empty() {
                self.bridge.handle_received(now, &self.rx);
                self.rx.clear();
                moved = true;
            }
            if self.ring.poll_timeout().is_some_and(|t| t <= now) {
                // What `handle_timeout` does, with the inputs just observed.
                self.ring.observe_unchanged(now, analog);
                moved = true;
            }
            if self.bridge.poll_timeout().is_some_and(|t| t <= now) {
                self.bridge.handle_timeout(now);
                moved = true;
            }
            let mut tx = [0u8; 4];
            while let Some(n) = self.bridge.poll_transmit(&mut tx) {
                self.ring.receive(now, &tx[..n], analog);
                moved = true;
            }
            while let Some(event) = self.bridge.poll_event() {
                reported |= self.event(now, event, deliver, note);
            }
            if !moved {
                break;
            }
        }
        reported
    }

    /// Passes the pack controller's balance decision to the bridge, which splits it per board.
    pub fn set_balance(&mut self, cells: &CellMask) {
        self.bridge.set_balance(cells);
    }

    /// Per series group, the current the boards' balance resistors draw now, into `out`,
    /// unless neither the cell voltages (`cells_changed`) nor any balance output changed
    /// since the last call; returns whether it wrote.
    pub fn bleed_currents_a(
        &mut self,
        cells_v: &[f64],
        cells_changed: bool,
        out: &mut [f64],
    ) -> bool {
        let outputs = self.ring.outputs_changes();
        let unchanged = self.bleed_outputs == Some(outputs);
        // With every output off the currents are all zero whatever the voltages, and the last
        // call wrote those.
        if unchanged && (!cells_changed || !self.ring.any_output_on()) {
            return false;
        }
        self.bleed_outputs = Some(outputs);
        self.ring.bleed_currents_a(cells_v, out);
        true
    }

    /// The hardware fault input, given the external fault line (the bridge adds the boards'
    /// protector).
    pub fn hardware_fault(&self, line_active: bool) -> bool {
        self.bridge.hardware_fault(line_active)
    }

    /// Applies a board fault; other faults are not for the boards.
    pub fn inject(&mut self, now: Instant, fault: FaultSpec) {
        let ring_fault = match fault {
            FaultSpec::BoardCorrupt { module, count } => RingFault::Corrupt {
                board: usize::from(module),
                count,
                // The last data byte before the CRC: the CRC must catch it.
                byte: 5,
                bit: 2,
            },
            FaultSpec::BoardDrop { module, count } => {
                RingFault::Drop { board: usize::from(module), count }
            }
            FaultSpec::BoardDelay { module, count, delay } => RingFault::Delay {
                board: usize::from(module),
                count,
                us: u32::try_from(delay.0.as_micros()).unwrap_or(u32::MAX),
            },
            FaultSpec::BoardSilent { module } => {
                RingFault::Silent { board: usize::from(module), silent: true }
            }
            FaultSpec::BoardFrozen { module } => {
                RingFault::Frozen { board: usize::from(module), frozen: true }
            }
            FaultSpec::BoardRestored { module } => {
                self.ring
                    .inject(now, RingFault::Silent { board: usize::from(module), silent: false });
                RingFault::Frozen { board: usize::from(module), frozen: false }
            }
            _ => return,
        };
        self.ring.inject(now, ring_fault);
    }

    /// The report's figures of the bus.
    pub fn summary(&self) -> BusSummary {
        let (f, c) = (self.figures, self.bridge.master().counters());
        BusSummary {
            boards: self.bridge.master().found(),
            cycles: f.cycles,
            cycle_mean: Duration::from_micros(
                f.cycle_time_total.as_micros().checked_div(f.cycles).unwrap_or(0),
            ),
            cycle_max: f.cycle_time_max,
            missed: f.missed,
            crc_errors: c.crc_errors,
            timeouts: c.timeouts,
            retries: c.retries,
            enumerations: c.enumerations,
        }
    }

    /// Files one bridge event; returns whether it reached `deliver` or `note`.
    fn event(
        &mut self,
        now: Instant,
        event: BridgeEvent,
        deliver: &mut dyn FnMut(Instant, &[Input<'_>]),
        note: &mut dyn FnMut(Event),
    ) -> bool {
        match event {
            BridgeEvent::CycleDone { started, finished, measured, missed, readings } => {
                let f = &mut self.figures;
                f.cycles += 1;
                let took = finished.saturating_since(started);
                f.cycle_time_total = f.cycle_time_total.saturating_add(took);
                f.cycle_time_max = f.cycle_time_max.max(took);
                f.readings += u64::from(measured);
                f.missed += u64::from(missed);
                if readings == 0 {
                    return false;
                }
                let inputs: Vec<Input<'_>> = self.bridge.inputs().collect();
                deliver(now, &inputs);
                true
            }
            BridgeEvent::Board(event) => {
                note(event);
                true
            }
        }
    }
}
