//! A small test rig shared by the integration tests: a `Bms`, a toy plant (cells, temperatures,
//! current, pack and bus voltage, contactor feedback) and an adapter loop with a fixed control
//! period that feeds fresh measurements, honours `poll_timeout` and logs every action.
//!
//! The real plant models live in the simulator; this one is only as detailed as the core tests
//! need.

#![allow(dead_code)]

use cellwarden_core::{
    Action, Bms, Command, Config, ContactorId, DeciCelsius, Duration, Input, Instant, MilliAmps,
    MilliVolts, SequenceEvent, SequenceState,
};

/// The toy plant the rig measures.
#[derive(Clone, Debug)]
pub struct Plant {
    pub cells: Vec<MilliVolts>,
    pub temps: Vec<DeciCelsius>,
    /// Load current while the mains are closed (positive = charging).
    pub load: MilliAmps,
    /// Pack voltage sensor reading; `None`: the sum of the cells.
    pub pack_override: Option<MilliVolts>,
    /// Bus (DC link) voltage.
    pub bus: MilliVolts,
    /// Time constant of the precharge circuit (precharge resistor x DC link capacitance).
    pub precharge_tau: Duration,
    /// Precharge resistor in ohms: precharge current = (pack - bus) / R.
    pub precharge_ohms: i32,
    /// Time constant of the DC link's bleed (bleed resistor x link capacitance): cut off from
    /// the pack, the link decays with it. `None`: the link holds its charge.
    pub bleed_tau: Option<Duration>,
    /// The bus is shorted: it stays at 0 V.
    pub bus_short: bool,
    /// Another source holds the DC link at this voltage unless both mains connect the pack (a
    /// shared link: parallel strings, an inverter fed by PV).
    pub external_bus: Option<MilliVolts>,
    /// Contactor positions as driven by the adapter (index = ContactorId::index()).
    pub applied: [bool; 3],
    /// A welded contactor stays closed whatever it is commanded.
    pub welded: [bool; 3],
    /// A contactor whose coil does not pull in stays open.
    pub stuck_open: [bool; 3],
    /// The hardware fault line is active.
    pub hardware_fault: bool,
}

impl Plant {
    pub fn pack_mv(&self) -> MilliVolts {
        self.pack_override.unwrap_or(MilliVolts(self.cells.iter().map(|c| c.0).sum()))
    }

    /// The actual contact positions (after welds and stuck coils).
    pub fn actual(&self) -> [bool; 3] {
        core::array::from_fn(|i| (self.applied[i] || self.welded[i]) && !self.stuck_open[i])
    }

    /// Current through the pack: load through the mains, inrush through the precharge path.
    pub fn current(&self) -> MilliAmps {
        let [neg, pre, pos] = self.actual();
        if neg && pos {
            self.load
        } else if neg && pre {
            // Charging the DC link discharges the pack.
            MilliAmps(-(self.pack_mv().0 - self.bus.0) / self.precharge_ohms.max(1))
        } else {
            MilliAmps(0)
        }
    }

    /// Advances the bus voltage by `dt`.
    pub fn step(&mut self, dt: Duration) {
        let [neg, pre, pos] = self.actual();
        let pack = self.pack_mv().0;
        if self.bus_short {
            self.bus = MilliVolts(0);
        } else if neg && pos {
            self.bus = MilliVolts(pack);
        } else if let Some(v) = self.external_bus {
            // A stiff source: neither the precharge resistor nor the bleed can move it.
            self.bus = v;
        } else if neg && pre {
            let tau = self.precharge_tau.as_micros().max(1) as f64;
            let k = 1.0 - (-(dt.as_micros() as f64) / tau).exp();
            let bus = self.bus.0 as f64;
            self.bus = MilliVolts((bus + (pack as f64 - bus) * k).round() as i32);
        } else if let Some(tau) = self.bleed_tau {
            // Cut off on at least one rail: the link discharges through its bleed resistor.
            let k = (-(dt.as_micros() as f64) / tau.as_micros().max(1) as f64).exp();
            self.bus = MilliVolts((self.bus.0 as f64 * k).round() as i32);
        }
    }
}

/// The adapter loop around one `Bms`.
#[derive(Debug)]
pub struct Rig {
    pub bms: Bms,
    pub plant: Plant,
    pub now: Instant,
    /// Fixed control period: measurements are sampled and fed this often.
    pub period: Duration,
    /// Every action with the time it was drained.
    pub log: Vec<(Instant, Action)>,
    /// Feed measurements each period (turn off to let data go stale).
    pub feed_cells: bool,
    pub feed_temps: bool,
    pub feed_current: bool,
    pub feed_pack: bool,
    pub feed_bus: bool,
    pub feed_feedback: bool,
    /// Feed the hardware fault line each period (the Tesla preset requires it before closing).
    pub feed_hardware_line: bool,
}

impl Rig {
    /// A rig around `config` with healthy mid-range readings, nothing fed yet.
    pub fn new(config: Config, cell_mv: i32) -> Rig {
        let cells = vec![MilliVolts(cell_mv); usize::from(config.cell_count)];
        let temps = vec![DeciCelsius(250); usize::from(config.temperature_count)];
        let bms = Bms::new(config, Instant::ZERO).expect("valid config");
        let mut rig = Rig {
            bms,
            plant: Plant {
                cells,
                temps,
                load: MilliAmps(0),
                pack_override: None,
                bus: MilliVolts(0),
                precharge_tau: Duration::from_millis(100),
                precharge_ohms: 100,
                bleed_tau: Some(Duration::from_secs(2)),
                bus_short: false,
                external_bus: None,
                applied: [false; 3],
                welded: [false; 3],
                stuck_open: [false; 3],
                hardware_fault: false,
            },
            now: Instant::ZERO,
            period: Duration::from_millis(10),
            log: Vec::new(),
            feed_cells: true,
            feed_temps: true,
            feed_current: true,
            feed_pack: true,
            feed_bus: true,
            feed_feedback: true,
            feed_hardware_line: true,
        };
        rig.drain();
        rig
    }

    /// A 4-module Tesla Model S pack at 3.8 V per cell.
    pub fn tesla() -> Rig {
        Rig::new(Config::tesla_model_s(4), 3_800)
    }

    /// A 16S 100 Ah LFP pack at 3.3 V per cell.
    pub fn lfp() -> Rig {
        Rig::new(Config::lfp_16s(100), 3_300)
    }

    /// Sends one input now and drains.
    pub fn input(&mut self, input: Input<'_>) {
        self.bms.handle_input(self.now, input);
        self.drain();
    }

    pub fn command(&mut self, command: Command) {
        self.input(Input::Command(command));
    }

    /// Samples the plant now and feeds every enabled measurement.
    pub fn feed(&mut self) {
        let now = self.now;
        let p = self.plant.clone();
        if self.feed_cells {
            self.input(Input::CellVoltages { sampled_at: now, first: 0, mv: &p.cells });
        }
        if self.feed_temps {
            self.input(Input::Temperatures { sampled_at: now, first: 0, dc: &p.temps });
        }
        if self.feed_current {
            self.input(Input::Current { sampled_at: now, ma: p.current() });
        }
        if self.feed_pack {
            self.input(Input::PackVoltage { sampled_at: now, mv: p.pack_mv() });
        }
        if self.feed_bus {
            self.input(Input::BusVoltage { sampled_at: now, mv: p.bus });
        }
        if self.feed_feedback {
            let actual = p.actual();
            let f = self.bms.config().contactors.feedback;
            for (c, has) in ContactorId::ALL.into_iter().zip([f.negative, f.precharge, f.positive])
            {
                if has {
                    let closed = actual[c.index()];
                    self.input(Input::ContactorFeedback { sampled_at: now, contactor: c, closed });
                }
            }
        }
        if self.feed_hardware_line {
            self.input(Input::HardwareFault { sampled_at: now, active: p.hardware_fault });
        }
    }

    /// Runs the adapter loop for `d`: a measurement cycle every period, and `handle_timeout`
    /// at every deadline the core asks for in between.
    pub fn run(&mut self, d: Duration) {
        let end = self.now + d;
        let mut next_sample = self.now;
        while self.now < end {
            if self.now >= next_sample {
                self.feed();
                next_sample = self.now + self.period;
            }
            let mut next = next_sample.min(end);
            if let Some(deadline) = self.bms.poll_timeout() {
                if deadline > self.now && deadline < next {
                    next = deadline;
                }
            }
            let dt = next - self.now;
            self.plant.step(dt);
            self.now = next;
            self.bms.handle_timeout(self.now);
            self.drain();
        }
    }

    /// Drains every action, applying contactor commands to the plant.
    pub fn drain(&mut self) {
        while let Some(action) = self.bms.poll_action() {
            if let Action::Contactor { contactor, closed } = action {
                self.plant.applied[contactor.index()] = closed;
            }
            self.log.push((self.now, action));
        }
    }

    /// Feeds once, sends `Start` and runs until closed (panics after 10 s).
    pub fn close(&mut self) {
        self.feed();
        self.command(Command::Start);
        for _ in 0..1000 {
            if self.bms.status().sequence == SequenceState::Closed {
                return;
            }
            self.run(Duration::from_millis(10));
        }
        panic!("did not close: {:?}", self.bms.status());
    }

    pub fn state(&self) -> SequenceState {
        self.bms.status().sequence
    }

    /// Commanded positions [negative, precharge, positive] as last delivered.
    pub fn applied(&self) -> [bool; 3] {
        self.plant.applied
    }

    /// Any contactor is commanded closed.
    pub fn any_closed(&self) -> bool {
        self.plant.applied.contains(&true)
    }

    /// What `pick` extracts from each logged action from index `from` on, with its time.
    pub fn picked<T>(&self, from: usize, pick: impl Fn(Instant, &Action) -> Option<T>) -> Vec<T> {
        self.log[from..].iter().filter_map(|(t, a)| pick(*t, a)).collect()
    }

    /// Sequence events in the log.
    pub fn sequence_events(&self) -> Vec<SequenceEvent> {
        self.picked(0, |_, a| match a {
            Action::Sequence(e) => Some(*e),
            _ => None,
        })
    }

    /// When a main contactor (negative or positive) was first commanded open at or after `t`.
    /// The precharge relay is left out: it opens at the end of every successful close.
    pub fn first_open_at_or_after(&self, t: Instant) -> Option<Instant> {
        self.log.iter().find_map(|(at, a)| match a {
            Action::Contactor { contactor, closed: false }
                if *at >= t && *contactor != ContactorId::Precharge =>
            {
                Some(*at)
            }
            _ => None,
        })
    }
}
