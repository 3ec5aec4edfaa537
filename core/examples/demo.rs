//! `cargo xtask demo`: one pack controller driven exactly as a real adapter drives it, against a
//! toy plant on a virtual clock.
//!
//! A 4-module Tesla Model S pack starts with no data, closes through precharge once the module
//! boards report, and charges at 60 A. Cell 5 has lost capacity and runs ahead through the
//! operating limit (charge derated) and the recommended limit (charge limit zero). The inverter
//! ignores a zero limit, so the maximum safety limit opens the contactors. `ClearFaults` is refused
//! until the cell has relaxed; the pack closes again, feeds the house, and a graceful `Stop` opens
//! it. The output is deterministic; if the story does not unfold, the demo says why and exits 1.

use std::fmt::Debug;
use std::process::exit;

use cellwarden_core::{
    Action, Bms, Command, Config, ContactorId, DeciCelsius, Duration, Input, Instant, LimitReason,
    Location, MilliAmps, MilliVolts, OpenKind, RuleId, SequenceEvent, SequenceState, Tier,
};

const PERIOD: Duration = Duration::from_millis(100); // the adapter samples everything this often
const RUNAWAY: usize = 5; // this cell has a third of the others' capacity...
const RUNAWAY_FACTOR: f64 = 3.0; // ...so its voltage rises three times as fast
const OCV_MV_PER_AS: f64 = 0.04; // open-circuit rise per A s, ~1000x so the story fits a minute
const POLARIZATION_MOHM: f64 = 1.5; // what a current adds on top of the open-circuit voltage...
const POLARIZATION_TAU_S: f64 = 3.0; // ...and how fast that builds up and relaxes
const PRECHARGE_OHMS: f64 = 50.0;
const PRECHARGE_TAU_S: f64 = 0.3; // precharge resistor x DC link capacitance
const BLEED_TAU_S: f64 = 10.0; // the DC link discharging when disconnected
const CHARGE_REQUEST_MA: i32 = 60_000; // what the inverter asks for: first to charge...
const DISCHARGE_REQUEST_MA: i32 = -30_000; // ...later to feed the house

/// Cells (open-circuit voltage plus a common polarization), fixed temperatures, the DC link and
/// an inverter that pushes its request within the limits it was last sent.
struct Plant {
    ocv_mv: Vec<f64>,
    polarization_mv: f64,
    temps: Vec<DeciCelsius>,
    bus_mv: f64,
    /// Contact positions as commanded, indexed by `ContactorId::index`.
    closed: [bool; 3],
    /// The module boards and sensors report (not at power-up).
    online: bool,
    /// What the inverter wants, and what it pushes through closed mains (positive: charge).
    request_ma: i32,
    setpoint_ma: i32,
    /// Firmware bug: the inverter takes a charge limit of zero as "no new limit".
    ignores_zero_limit: bool,
}

impl Plant {
    fn new(cells: usize, sensors: usize) -> Plant {
        let ocv = |i: usize| 4_000.0 + ((i * 7) % 5) as f64 + if i == RUNAWAY { 20.0 } else { 0.0 };
        Plant {
            ocv_mv: (0..cells).map(ocv).collect(),
            polarization_mv: 0.0,
            temps: (0..sensors).map(|i| DeciCelsius(250 + (i % 3) as i32 * 4)).collect(),
            bus_mv: 0.0,
            closed: [false; 3],
            online: false,
            request_ma: CHARGE_REQUEST_MA,
            setpoint_ma: 0,
            ignores_zero_limit: true,
        }
    }

    /// The inverter takes new limits; returns whether it ignored a zero charge limit while
    /// charging through closed mains.
    fn inverter(&mut self, limits_ma: (i32, i32)) -> bool {
        let wanted = self.request_ma.clamp(-limits_ma.1, limits_ma.0);
        let mains = self.closed[ContactorId::Positive.index()];
        if self.ignores_zero_limit && wanted == 0 && self.setpoint_ma > 0 && mains {
            return true;
        }
        self.setpoint_ma = wanted;
        false
    }

    fn cells(&self) -> Vec<MilliVolts> {
        self.ocv_mv.iter().map(|v| MilliVolts((v + self.polarization_mv).round() as i32)).collect()
    }

    fn pack_mv(&self) -> f64 {
        self.ocv_mv.iter().map(|v| v + self.polarization_mv).sum()
    }

    /// Through the mains: what the inverter pushes; through the precharge resistor: the inrush
    /// that charges the DC link (a discharge of the pack).
    fn current_ma(&self) -> i32 {
        match self.closed {
            [true, _, true] => self.setpoint_ma,
            [true, true, false] => {
                -((self.pack_mv() - self.bus_mv) / PRECHARGE_OHMS).round() as i32
            }
            _ => 0,
        }
    }

    fn step(&mut self, dt: Duration) {
        let s = dt.as_micros() as f64 / 1e6;
        let amps = f64::from(self.current_ma()) / 1000.0;
        for (i, ocv) in self.ocv_mv.iter_mut().enumerate() {
            let factor = if i == RUNAWAY { RUNAWAY_FACTOR } else { 1.0 };
            *ocv += amps * s * OCV_MV_PER_AS * factor;
        }
        let target = amps * POLARIZATION_MOHM;
        self.polarization_mv += (target - self.polarization_mv) * approach(s, POLARIZATION_TAU_S);
        let (pack, bus) = (self.pack_mv(), self.bus_mv);
        self.bus_mv = match self.closed {
            [true, _, true] => pack,
            [true, true, false] => bus + (pack - bus) * approach(s, PRECHARGE_TAU_S),
            _ => bus - bus * approach(s, BLEED_TAU_S),
        };
    }
}

/// The fraction of the way a first-order system with time constant `tau_s` goes in `s`.
fn approach(s: f64, tau_s: f64) -> f64 {
    1.0 - (-s / tau_s).exp()
}

/// The adapter: owns the `Bms` and the virtual clock, feeds the plant's readings, honours
/// `poll_timeout`, carries out every action and logs it.
struct Demo {
    bms: Bms,
    plant: Plant,
    now: Instant,
    next_sample: Instant,
    log: Vec<(Instant, Action)>,
    /// The first sample above the maximum safety limit, with its value.
    violation: Option<(Instant, i32)>,
}

impl Demo {
    fn say(&self, text: &str) {
        let ms = self.now.as_millis();
        println!("{:>5}.{:03} s  {text}", ms / 1000, ms % 1000);
    }

    fn command(&mut self, command: Command) {
        self.say(&format!("> operator: {command:?}"));
        self.bms.handle_input(self.now, Input::Command(command));
        self.drain();
    }

    /// Samples the plant now and feeds every reading, draining after each call.
    fn sample(&mut self) {
        if !self.plant.online {
            return;
        }
        let (now, cells, temps) = (self.now, self.plant.cells(), self.plant.temps.clone());
        let high = cells.iter().map(|c| c.0).max().unwrap_or(0);
        let max = self.bms.config().protection.cell_over_voltage_mv.maximum;
        if self.violation.is_none() && max.is_some_and(|m| high > m.0) {
            self.violation = Some((now, high));
        }
        for input in [
            Input::CellVoltages { sampled_at: now, first: 0, mv: &cells },
            Input::Temperatures { sampled_at: now, first: 0, dc: &temps },
            Input::Current { sampled_at: now, ma: MilliAmps(self.plant.current_ma()) },
            Input::PackVoltage { sampled_at: now, mv: MilliVolts(self.plant.pack_mv() as i32) },
            Input::BusVoltage { sampled_at: now, mv: MilliVolts(self.plant.bus_mv as i32) },
            // The module boards' hardware comparators, quiet: the preset says the line exists,
            // so closing waits until it has been heard.
            Input::HardwareFault { sampled_at: now, active: false },
        ] {
            self.bms.handle_input(now, input);
            self.drain();
        }
    }

    /// Carries out and logs every pending action.
    fn drain(&mut self) {
        while let Some(action) = self.bms.poll_action() {
            self.say(&describe(&action));
            self.log.push((self.now, action));
            match action {
                Action::Contactor { contactor, closed } => {
                    self.plant.closed[contactor.index()] = closed;
                }
                Action::Limits(l) if self.plant.inverter((l.charge_ma.0, l.discharge_ma.0)) => {
                    let keep = amps(self.plant.setpoint_ma);
                    self.say(&format!("~ inverter ignores the zero charge limit, keeps {keep}"));
                }
                _ => {}
            }
        }
    }

    /// One turn of the adapter loop: sleep until the next sample or deadline, then handle it.
    fn step(&mut self) {
        let deadline = self.bms.poll_timeout().filter(|&t| t > self.now);
        let next = deadline.map_or(self.next_sample, |t| t.min(self.next_sample));
        self.plant.step(next - self.now);
        self.now = next;
        if self.now >= self.next_sample {
            self.sample();
            self.next_sample = self.now + PERIOD;
        }
        self.bms.handle_timeout(self.now);
        self.drain();
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Runs until `done`, or gives up after `limit` and fails the demo.
    fn run_until(&mut self, what: &str, limit: Duration, done: impl Fn(&Demo) -> bool) {
        let end = self.now + limit;
        while !done(self) {
            if self.now >= end {
                fail(&format!("{what} did not happen within {limit}"));
            }
            self.step();
        }
    }

    fn state(&self) -> SequenceState {
        self.bms.status().sequence
    }

    /// The charge limit in force is bound by this tier of the cell over-voltage rule.
    fn charge_bound_by(&self, tier: Tier) -> bool {
        match self.bms.status().limits.charge_reason {
            LimitReason::Rule { rule, tier: t, .. } => rule == RuleId::CellOverVoltage && t == tier,
            _ => false,
        }
    }

    fn last_open(&self) -> Option<OpenKind> {
        self.log.iter().rev().find_map(|(_, a)| match a {
            Action::Sequence(SequenceEvent::Opened { how }) => Some(*how),
            _ => None,
        })
    }
}

fn main() {
    // Protection alone: the demo shows its three tiers, which the charge controller would keep
    // an obedient charger away from.
    let config = Config { charge: None, ..Config::tesla_model_s(4) };
    let ov = config.protection.cell_over_voltage_mv;
    let (cells, sensors) = (usize::from(config.cell_count), usize::from(config.temperature_count));
    let bms = Bms::new(config, Instant::ZERO).unwrap_or_else(|e| fail(&format!("config: {e}")));
    println!("cellwarden demo: Tesla Model S, 4 modules, {cells} cells, {sensors} sensors");
    let tiers = [ov.operating, ov.recommended, ov.maximum].map(|t| t.map_or(0, |mv| mv.0));
    println!(
        "cell_over_voltage tiers {tiers:?} mV, hysteresis {}, debounce {} ms\n",
        ov.hysteresis, ov.debounce_ms
    );
    let plant = Plant::new(cells, sensors);
    let now = Instant::ZERO;
    let mut d = Demo { bms, plant, now, next_sample: now, log: Vec::new(), violation: None };
    let s = Duration::from_secs;
    let half_second = Duration::from_millis(500);

    d.drain();
    d.run_for(half_second);
    d.command(Command::Start);
    let blocked = |a: &Action| matches!(a, Action::Sequence(SequenceEvent::CloseBlocked { .. }));
    if !d.log.iter().any(|(_, a)| blocked(a)) {
        fail("Start with no data was not reported as blocked");
    }
    d.run_for(half_second);
    d.say("~ module boards online: cells, temperatures, current, pack and bus voltage report");
    d.plant.online = true;
    d.run_until("closing", s(10), |d| d.state() == SequenceState::Closed);
    d.say(&format!("~ inverter asks to charge with {}", amps(CHARGE_REQUEST_MA)));
    d.run_until("the operating-limit derate", s(120), |d| d.charge_bound_by(Tier::Operating));
    d.run_until("the recommended-limit stop", s(120), |d| d.charge_bound_by(Tier::Recommended));
    d.run_until("the emergency open", s(120), |d| d.state() == SequenceState::Open);
    if d.last_open() != Some(OpenKind::Emergency { rule: RuleId::CellOverVoltage }) {
        fail(&format!("contactors opened by {:?}, not by cell_over_voltage", d.last_open()));
    }

    d.run_for(s(1));
    d.command(Command::ClearFaults);
    if d.bms.status().latched().is_none() {
        fail("ClearFaults was accepted while the cell was still high");
    }
    // The operator watches the telemetry until the cell is back inside the hysteresis.
    let clear_mv = ov.maximum.map_or(0, |m| m.0) - ov.hysteresis.0;
    d.run_until("the cell relaxing", s(60), |d| {
        d.bms.status().summary.cell_max.is_some_and(|e| e.value <= clear_mv)
    });
    d.run_for(half_second);
    d.command(Command::ClearFaults);
    if d.bms.status().latched().is_some() {
        fail("ClearFaults was refused after the cell relaxed");
    }
    d.say("~ inverter firmware fixed: it follows a zero charge limit now");
    d.plant.ignores_zero_limit = false;
    d.say(&format!("~ evening: inverter wants to discharge {}", amps(-DISCHARGE_REQUEST_MA)));
    d.plant.request_ma = DISCHARGE_REQUEST_MA;
    d.command(Command::Start);
    d.run_until("closing again", s(10), |d| d.state() == SequenceState::Closed);
    d.run_for(s(3));
    d.command(Command::Stop);
    d.run_until("the graceful open", s(10), |d| d.state() == SequenceState::Open);
    if d.last_open() != Some(OpenKind::Graceful) {
        fail(&format!("the stop ended with {:?}, not a graceful open", d.last_open()));
    }

    let Some((first, mv)) = d.violation else { fail("no sample above the maximum limit") };
    let opened = d.log.iter().find_map(|&(t, a)| {
        (t >= first && matches!(a, Action::Contactor { closed: false, .. })).then_some(t)
    });
    let Some(opened) = opened else { fail("the contactors never opened after the violation") };
    let (reaction, debounce) = (opened - first, Duration::from_millis(ov.debounce_ms.into()));
    println!("\nsummary");
    println!("  first sample above the maximum limit  {first} ({mv} mV)");
    println!("  contactors opened                      {opened}");
    println!("  reaction time                          {reaction} (rule debounce {debounce})");
    if reaction > debounce {
        fail("the contactors opened later than the rule's debounce");
    }
}

fn fail(why: &str) -> ! {
    println!("demo FAILED: {why}");
    exit(1);
}

fn amps(ma: i32) -> String {
    format!("{:.1} A", f64::from(ma) / 1000.0)
}

/// A name as the log spells it: `Tier::Operating` -> `operating`.
fn lower(x: impl Debug) -> String {
    format!("{x:?}").to_lowercase()
}

/// `cell_over_voltage operating at cell 5: 4162 mV`
fn reason(rule: RuleId, tier: Tier, location: Location, value: i32) -> String {
    let at = match location {
        Location::Cell(i) => format!("cell {i}"),
        Location::Sensor(i) => format!("sensor {i}"),
        other => lower(other),
    };
    let spec = rule.spec();
    format!("{} {} at {at}: {value} {}", spec.name, lower(tier), spec.unit)
}

/// `50.0 A (reason)`; the configured maximum needs no reason.
fn limit(ma: MilliAmps, why: LimitReason) -> String {
    let why = match why {
        LimitReason::ConfiguredMaximum => return amps(ma.0),
        LimitReason::Rule { rule, tier, location, value } => reason(rule, tier, location, value),
        LimitReason::ContactorsOpen => "contactors open".to_owned(),
        LimitReason::Stopping => "stopping".to_owned(),
        LimitReason::ClosingRamp => "ramp after closing".to_owned(),
        LimitReason::Charge(c) => format!("charge control: {c:?}"),
    };
    format!("{} ({why})", amps(ma.0))
}

fn describe(action: &Action) -> String {
    match *action {
        Action::Contactor { contactor, closed } => {
            format!("contactor {} {}", lower(contactor), if closed { "CLOSE" } else { "OPEN" })
        }
        Action::Limits(l) => format!(
            "limits charge {} discharge {}",
            limit(l.charge_ma, l.charge_reason),
            limit(l.discharge_ma, l.discharge_reason)
        ),
        Action::Fault(f) => {
            format!("fault {:?}: {}", f.change, reason(f.rule, f.tier, f.location, f.value))
        }
        Action::Sequence(event) => format!("sequence {event:?}"),
        Action::Balance(cells) => format!("balance {cells:?}"),
        Action::VoltageLimits(v) => {
            format!("voltage limits charge {} mV discharge {} mV", v.charge_mv.0, v.discharge_mv.0)
        }
    }
}
