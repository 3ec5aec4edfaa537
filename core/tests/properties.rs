//! Properties of the core over random inputs.
//!
//! 1. Invariants over random, hostile sequences of inputs, timeouts and time steps driven straight
//!    into `Bms`: never closed with a latched fault, never closed on data never received, limits
//!    never above the configured maxima, deadlines never in the past, same calls -> same actions,
//!    and no panic.
//! 2. Reaction time: every maximum-tier rule that opens the contactors opens them no earlier than
//!    its debounce after the first violating sample, and no later than that debounce (adapter
//!    honours `poll_timeout`) or that debounce plus one control period (adapter that only runs at
//!    its control period).
//! 3. Values inside the operating window never raise a fault, and `Start` closes.

mod common;

use std::cell::Cell;

use cellwarden_core::{
    Action, Bms, Command, Config, ContactorId, CurrentLimits, DeciCelsius, Duration,
    FeedbackConfig, Input, Instant, LimitReason, MilliAmps, MilliVolts, RuleId, SequenceEvent,
    SequenceState, Tier,
};
use common::Rig;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

/// Proptest settings shared by every property in this file.
fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        source_file: Some(file!()),
        max_shrink_iters: 4_096,
        ..ProptestConfig::default()
    }
}

/// Two Tesla Model S modules: 12 cells, 4 temperature sensors, no contactor feedback.
fn tesla() -> Config {
    Config::tesla_model_s(2)
}

/// The same pack with feedback on all three contactors.
fn tesla_with_feedback() -> Config {
    let mut config = tesla();
    config.contactors.feedback = FeedbackConfig { negative: true, precharge: true, positive: true };
    config
}

fn has_feedback(config: &Config, c: ContactorId) -> bool {
    let f = config.contactors.feedback;
    [f.negative, f.precharge, f.positive][c.index()]
}

fn limits_within_config(limits: &CurrentLimits, config: &Config) -> Result<(), TestCaseError> {
    prop_assert!(
        (0..=config.charge_current_max_ma.0).contains(&limits.charge_ma.0),
        "charge limit {:?} outside 0..={:?}: {limits:?}",
        limits.charge_ma,
        config.charge_current_max_ma
    );
    prop_assert!(
        (0..=config.discharge_current_max_ma.0).contains(&limits.discharge_ma.0),
        "discharge limit {:?} outside 0..={:?}: {limits:?}",
        limits.discharge_ma,
        config.discharge_current_max_ma
    );
    Ok(())
}

// -------------------------------------------------------------------------------------------------
// 1. Invariants over random operation sequences
// -------------------------------------------------------------------------------------------------

/// The sample time of a generated input, relative to the `now` it is delivered at.
#[derive(Clone, Copy, Debug)]
enum At {
    Now,
    /// This many microseconds before now (saturating at the epoch).
    Past(u64),
    /// This many microseconds after now: a confused adapter clock.
    Future(u64),
    Epoch,
    EndOfTime,
}

impl At {
    fn resolve(self, now: Instant) -> Instant {
        let now = now.as_micros();
        Instant::from_micros(match self {
            At::Now => now,
            At::Past(us) => now.saturating_sub(us),
            At::Future(us) => now.saturating_add(us),
            At::Epoch => 0,
            At::EndOfTime => u64::MAX,
        })
    }
}

/// One hostile input.
#[derive(Clone, Debug)]
enum Feed {
    Cells { first: u16, mv: Vec<i32> },
    Temps { first: u16, dc: Vec<i32> },
    Current(i32),
    Pack(i32),
    Bus(i32),
    Feedback(ContactorId, bool),
    HardwareFault(bool),
    Command(Command),
}

/// A required value a snapshot leaves out.
#[derive(Clone, Copy, Debug)]
enum Skip {
    /// Index modulo the cell count.
    Cell(u16),
    /// Index modulo the sensor count.
    Temp(u16),
    Current,
    Pack,
    Bus,
    Feedback(ContactorId),
}

#[derive(Clone, Copy, Debug)]
enum FeedbackMode {
    /// Report what is commanded, as healthy contactors would.
    AsCommanded,
    AllOpen,
    AllClosed,
    Silent,
}

/// A consistent, healthy set of every measurement (minus at most one), sampled now: what lets a
/// random sequence actually reach `Closed`.
#[derive(Clone, Debug)]
struct Snapshot {
    cell_mv: i32,
    temp_dc: i32,
    current_ma: i32,
    /// Bus at the pack voltage (precharged) or at zero.
    bus_at_pack: bool,
    feedback: FeedbackMode,
    skip: Option<Skip>,
}

#[derive(Clone, Debug)]
enum Op {
    /// Let this many microseconds pass without calling the core.
    Advance(u64),
    /// `handle_timeout` at `poll_timeout` (time jumps there), or now if there is none.
    Deadline,
    /// `handle_timeout` now: early, or twice.
    TimeoutNow,
    /// `handle_timeout` with a `now` this many microseconds before the adapter's clock.
    ClockBack(u64),
    Feed(At, Feed),
    Snapshot(Snapshot),
    /// A stretch of healthy adapter behaviour (but for the snapshot's `skip`): `cycles` times a
    /// snapshot with feedback as commanded, then `period_ms` pass with `handle_timeout` at every deadline on the way.
    /// With `restart`, `ClearFaults` and `Start` follow the first snapshot.
    Healthy {
        snapshot: Snapshot,
        cycles: u8,
        period_ms: u64,
        restart: bool,
    },
}

fn hostile(healthy: std::ops::RangeInclusive<i32>) -> impl Strategy<Value = i32> {
    prop_oneof![
        6 => healthy,
        2 => any::<i32>(),
        1 => prop::sample::select(vec![i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX]),
    ]
}

fn at() -> impl Strategy<Value = At> {
    prop_oneof![
        8 => Just(At::Now),
        3 => (0u64..3_000_000).prop_map(At::Past),
        1 => (1u64..3_000_000).prop_map(At::Future),
        1 => Just(At::Epoch),
        1 => Just(At::EndOfTime),
    ]
}

fn block_start() -> impl Strategy<Value = u16> {
    prop_oneof![8 => 0u16..16, 1 => any::<u16>(), 1 => Just(u16::MAX)]
}

fn contactor() -> impl Strategy<Value = ContactorId> {
    prop::sample::select(ContactorId::ALL.to_vec())
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        4 => Just(Command::Start),
        1 => Just(Command::Stop),
        1 => Just(Command::EmergencyStop),
        3 => Just(Command::ClearFaults),
    ]
}

fn feed() -> impl Strategy<Value = Feed> {
    prop_oneof![
        3 => (block_start(), prop::collection::vec(hostile(2_500..=4_400), 0..=16))
            .prop_map(|(first, mv)| Feed::Cells { first, mv }),
        2 => (block_start(), prop::collection::vec(hostile(-400..=800), 0..=8))
            .prop_map(|(first, dc)| Feed::Temps { first, dc }),
        2 => hostile(-400_000..=400_000).prop_map(Feed::Current),
        2 => hostile(30_000..=55_000).prop_map(Feed::Pack),
        2 => hostile(0..=55_000).prop_map(Feed::Bus),
        2 => (contactor(), any::<bool>()).prop_map(|(c, closed)| Feed::Feedback(c, closed)),
        1 => prop::bool::weighted(0.3).prop_map(Feed::HardwareFault),
        4 => command().prop_map(Feed::Command),
    ]
}

fn skip() -> impl Strategy<Value = Skip> {
    prop_oneof![
        3 => any::<u16>().prop_map(Skip::Cell),
        2 => any::<u16>().prop_map(Skip::Temp),
        1 => Just(Skip::Current),
        1 => Just(Skip::Pack),
        1 => Just(Skip::Bus),
        2 => contactor().prop_map(Skip::Feedback),
    ]
}

fn snapshot() -> impl Strategy<Value = Snapshot> {
    let feedback = prop_oneof![
        6 => Just(FeedbackMode::AsCommanded),
        1 => Just(FeedbackMode::AllOpen),
        1 => Just(FeedbackMode::AllClosed),
        1 => Just(FeedbackMode::Silent),
    ];
    (
        3_300..=4_100i32,
        100..=400i32,
        -900..=900i32,
        prop::bool::weighted(0.85),
        feedback,
        prop::option::weighted(0.3, skip()),
    )
        .prop_map(|(cell_mv, temp_dc, current_ma, bus_at_pack, feedback, skip)| Snapshot {
            cell_mv,
            temp_dc,
            current_ma,
            bus_at_pack,
            feedback,
            skip,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let advance = prop_oneof![
        4 => (0u64..=200).prop_map(|ms| ms * 1_000),
        2 => 0u64..=2_000_000,
        1 => (0u64..=2_000).prop_map(|ms| ms * 1_000),
    ];
    prop_oneof![
        5 => advance.prop_map(Op::Advance),
        3 => Just(Op::Deadline),
        1 => Just(Op::TimeoutNow),
        1 => (1u64..=5_000_000).prop_map(Op::ClockBack),
        8 => (at(), feed()).prop_map(|(at, f)| Op::Feed(at, f)),
        4 => snapshot().prop_map(Op::Snapshot),
        2 => (snapshot(), 1u8..=12, 1u64..=100, any::<bool>()).prop_map(
            |(mut snapshot, cycles, period_ms, restart)| {
                snapshot.feedback = FeedbackMode::AsCommanded;
                snapshot.bus_at_pack = true;
                Op::Healthy { snapshot, cycles, period_ms, restart }
            }
        ),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..=120)
}

/// Which required values have ever been delivered with an index inside the configuration.
#[derive(Clone, Debug)]
struct Seen {
    cells: Vec<bool>,
    temps: Vec<bool>,
    current: bool,
    pack: bool,
    bus: bool,
    feedback: [bool; 3],
}

impl Seen {
    fn new(config: &Config) -> Seen {
        Seen {
            cells: vec![false; usize::from(config.cell_count)],
            temps: vec![false; usize::from(config.temperature_count)],
            current: false,
            pack: false,
            bus: false,
            feedback: [false; 3],
        }
    }

    fn mark_block(slots: &mut [bool], first: u16, len: usize) {
        for i in 0..len {
            if let Some(slot) = usize::from(first).checked_add(i).and_then(|i| slots.get_mut(i)) {
                *slot = true;
            }
        }
    }

    fn record(&mut self, input: &Input<'_>) {
        match *input {
            Input::CellVoltages { first, mv, .. } => {
                Self::mark_block(&mut self.cells, first, mv.len())
            }
            Input::Temperatures { first, dc, .. } => {
                Self::mark_block(&mut self.temps, first, dc.len())
            }
            Input::Current { .. } => self.current = true,
            Input::PackVoltage { .. } => self.pack = true,
            Input::BusVoltage { .. } => self.bus = true,
            Input::ContactorFeedback { contactor, .. } => self.feedback[contactor.index()] = true,
            Input::HardwareFault { .. } | Input::Command(_) => {}
        }
    }

    /// What is still missing, if anything.
    fn missing(&self, config: &Config) -> Option<String> {
        if let Some(i) = self.cells.iter().position(|s| !s) {
            return Some(format!("cell {i}"));
        }
        if let Some(i) = self.temps.iter().position(|s| !s) {
            return Some(format!("temperature {i}"));
        }
        for (seen, what) in [(self.current, "current"), (self.pack, "pack"), (self.bus, "bus")] {
            if !seen {
                return Some(what.to_owned());
            }
        }
        ContactorId::ALL
            .into_iter()
            .find(|c| has_feedback(config, *c) && !self.feedback[c.index()])
            .map(|c| format!("feedback {c:?}"))
    }
}

/// What a run went through, to show the properties are not vacuous.
#[derive(Clone, Copy, Debug, Default)]
struct Coverage {
    /// A contactor was commanded closed.
    commanded_closed: bool,
    /// The sequence reached `Closed`.
    closed: bool,
    /// A maximum-safety fault latched while a contactor was closed.
    latched_while_closed: bool,
    /// `Start` was requested while a required value had never been received, and time passed.
    start_while_missing: bool,
}

/// Drives one `Bms` straight through `handle_*` / `poll_*`, checking the invariants after every
/// call.
struct Driver {
    bms: Bms,
    config: Config,
    /// The adapter's clock.
    now: Instant,
    /// Contactor positions as last commanded by `Action::Contactor`.
    commanded: [bool; 3],
    seen: Seen,
    /// A required value this run never delivers, whatever the ops say.
    withheld: Option<Skip>,
    log: Vec<(Instant, Action)>,
    coverage: Coverage,
}

impl Driver {
    fn new(config: Config, withheld: Option<Skip>) -> Result<Driver, TestCaseError> {
        let bms = Bms::new(config.clone(), Instant::ZERO).expect("preset is valid");
        let mut d = Driver {
            bms,
            seen: Seen::new(&config),
            config,
            now: Instant::ZERO,
            commanded: [false; 3],
            withheld,
            log: Vec::new(),
            coverage: Coverage::default(),
        };
        d.drain_and_check(Instant::ZERO)?;
        Ok(d)
    }

    /// Whether `input` delivers the withheld value.
    fn withholds(&self, input: &Input<'_>) -> bool {
        let covers = |first: u16, len: usize, i: u16, count: u16| {
            let i = usize::from(i % count);
            (usize::from(first)..usize::from(first).saturating_add(len)).contains(&i)
        };
        match (self.withheld, *input) {
            (Some(Skip::Cell(i)), Input::CellVoltages { first, mv, .. }) => {
                covers(first, mv.len(), i, self.config.cell_count)
            }
            (Some(Skip::Temp(i)), Input::Temperatures { first, dc, .. }) => {
                covers(first, dc.len(), i, self.config.temperature_count)
            }
            (Some(Skip::Current), Input::Current { .. })
            | (Some(Skip::Pack), Input::PackVoltage { .. })
            | (Some(Skip::Bus), Input::BusVoltage { .. }) => true,
            (Some(Skip::Feedback(c)), Input::ContactorFeedback { contactor, .. }) => c == contactor,
            _ => false,
        }
    }

    fn input(&mut self, input: Input<'_>) -> Result<(), TestCaseError> {
        if self.withholds(&input) {
            return Ok(());
        }
        self.seen.record(&input);
        self.bms.handle_input(self.now, input);
        self.drain_and_check(self.now)
    }

    /// Time is about to pass: note whether a `Start` is waiting on a value never received.
    fn note_waiting(&mut self) {
        if self.bms.status().close_requested && self.seen.missing(&self.config).is_some() {
            self.coverage.start_while_missing = true;
        }
    }

    fn timeout(&mut self, at: Instant) -> Result<(), TestCaseError> {
        self.note_waiting();
        self.bms.handle_timeout(at);
        self.drain_and_check(at)
    }

    fn drain_and_check(&mut self, called_at: Instant) -> Result<(), TestCaseError> {
        let was_closed = self.commanded.contains(&true);
        while let Some(action) = self.bms.poll_action() {
            match action {
                Action::Contactor { contactor, closed } => {
                    self.commanded[contactor.index()] = closed;
                }
                // (c) every emitted limit lies within the configuration.
                Action::Limits(limits) => limits_within_config(&limits, &self.config)?,
                Action::Fault(_) | Action::Sequence(_) => {}
            }
            self.log.push((called_at, action));
        }
        let status = self.bms.status();
        let any_closed = self.commanded.contains(&true);

        // (a) never closed while a maximum-safety fault is latched.
        if let Some(rule) = status.latched() {
            prop_assert!(
                !any_closed,
                "{:?} commanded closed while {rule:?} is latched",
                self.commanded
            );
            self.coverage.latched_while_closed |= was_closed;
        }
        // (b) never closed on a value that was never received.
        if any_closed {
            if let Some(missing) = self.seen.missing(&self.config) {
                prop_assert!(
                    false,
                    "{:?} commanded closed, {missing} never received",
                    self.commanded
                );
            }
        }
        // The drained commands are what the core says it commands.
        let reported: [bool; 3] = core::array::from_fn(|i| status.contactors[i].commanded_closed);
        prop_assert_eq!(reported, self.commanded, "drained commands disagree with status()");
        // (c) for the telemetry snapshot too.
        limits_within_config(&status.limits, &self.config)?;
        // (d) the next deadline is never in the past.
        if let Some(deadline) = self.bms.poll_timeout() {
            prop_assert!(
                deadline >= called_at && deadline >= status.now,
                "poll_timeout {deadline:?} is before now {called_at:?} (status.now {:?}), state {:?}",
                status.now,
                status.sequence
            );
        }
        self.coverage.commanded_closed |= any_closed;
        self.coverage.closed |= status.sequence == SequenceState::Closed;
        Ok(())
    }

    fn snapshot(&mut self, s: &Snapshot) -> Result<(), TestCaseError> {
        let now = self.now;
        let n_cells = self.config.cell_count;
        let n_temps = self.config.temperature_count;
        let cells = vec![MilliVolts(s.cell_mv); usize::from(n_cells)];
        let temps = vec![DeciCelsius(s.temp_dc); usize::from(n_temps)];
        let skip = s.skip;
        let pack = MilliVolts(s.cell_mv * i32::from(n_cells));
        // Cells and temperatures as two blocks around a skipped index.
        let hole = |count: u16, skipped: Option<u16>| match skipped {
            Some(i) => {
                let i = i % count;
                [(0, i), (i + 1, count)]
            }
            None => [(0, count), (count, count)],
        };
        let skipped_cell = match skip {
            Some(Skip::Cell(i)) => Some(i),
            _ => None,
        };
        for (from, to) in hole(n_cells, skipped_cell) {
            if from < to {
                let mv = &cells[usize::from(from)..usize::from(to)];
                self.input(Input::CellVoltages { sampled_at: now, first: from, mv })?;
            }
        }
        let skipped_temp = match skip {
            Some(Skip::Temp(i)) => Some(i),
            _ => None,
        };
        for (from, to) in hole(n_temps, skipped_temp) {
            if from < to {
                let dc = &temps[usize::from(from)..usize::from(to)];
                self.input(Input::Temperatures { sampled_at: now, first: from, dc })?;
            }
        }
        if !matches!(skip, Some(Skip::Current)) {
            let ma = MilliAmps(s.current_ma);
            self.input(Input::Current { sampled_at: now, ma })?;
        }
        if !matches!(skip, Some(Skip::Pack)) {
            self.input(Input::PackVoltage { sampled_at: now, mv: pack })?;
        }
        if !matches!(skip, Some(Skip::Bus)) {
            let mv = if s.bus_at_pack { pack } else { MilliVolts(0) };
            self.input(Input::BusVoltage { sampled_at: now, mv })?;
        }
        for c in ContactorId::ALL {
            if matches!(skip, Some(Skip::Feedback(x)) if x == c) {
                continue;
            }
            let closed = match s.feedback {
                FeedbackMode::AsCommanded => self.commanded[c.index()],
                FeedbackMode::AllOpen => false,
                FeedbackMode::AllClosed => true,
                FeedbackMode::Silent => continue,
            };
            self.input(Input::ContactorFeedback { sampled_at: now, contactor: c, closed })?;
        }
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Advance(us) => {
                self.note_waiting();
                self.now = self.now.saturating_add(Duration::from_micros(*us));
                Ok(())
            }
            Op::Deadline => {
                if let Some(deadline) = self.bms.poll_timeout() {
                    self.now = self.now.max(deadline);
                }
                self.timeout(self.now)
            }
            Op::TimeoutNow => self.timeout(self.now),
            Op::ClockBack(us) => {
                let earlier = Instant::from_micros(self.now.as_micros().saturating_sub(*us));
                self.timeout(earlier)
            }
            Op::Feed(at, f) => {
                let sampled_at = at.resolve(self.now);
                match f {
                    Feed::Cells { first, mv } => {
                        let mv: Vec<MilliVolts> = mv.iter().copied().map(MilliVolts).collect();
                        self.input(Input::CellVoltages { sampled_at, first: *first, mv: &mv })
                    }
                    Feed::Temps { first, dc } => {
                        let dc: Vec<DeciCelsius> = dc.iter().copied().map(DeciCelsius).collect();
                        self.input(Input::Temperatures { sampled_at, first: *first, dc: &dc })
                    }
                    Feed::Current(ma) => {
                        self.input(Input::Current { sampled_at, ma: MilliAmps(*ma) })
                    }
                    Feed::Pack(mv) => {
                        self.input(Input::PackVoltage { sampled_at, mv: MilliVolts(*mv) })
                    }
                    Feed::Bus(mv) => {
                        self.input(Input::BusVoltage { sampled_at, mv: MilliVolts(*mv) })
                    }
                    Feed::Feedback(contactor, closed) => self.input(Input::ContactorFeedback {
                        sampled_at,
                        contactor: *contactor,
                        closed: *closed,
                    }),
                    Feed::HardwareFault(active) => {
                        self.input(Input::HardwareFault { sampled_at, active: *active })
                    }
                    Feed::Command(c) => self.input(Input::Command(*c)),
                }
            }
            Op::Snapshot(s) => self.snapshot(s),
            Op::Healthy { snapshot, cycles, period_ms, restart } => {
                for cycle in 0..*cycles {
                    self.snapshot(snapshot)?;
                    if cycle == 0 && *restart {
                        self.input(Input::Command(Command::ClearFaults))?;
                        self.input(Input::Command(Command::Start))?;
                    }
                    let next = self.now + Duration::from_millis(*period_ms);
                    while let Some(deadline) = self.bms.poll_timeout().filter(|d| *d < next) {
                        self.now = self.now.max(deadline);
                        self.timeout(self.now)?;
                    }
                    self.now = next;
                }
                Ok(())
            }
        }
    }
}

/// Runs `ops` on a fresh `Bms`, checking (a)-(d) after every call.
fn run_ops(config: &Config, withheld: Option<Skip>, ops: &[Op]) -> Result<Driver, TestCaseError> {
    let mut driver = Driver::new(config.clone(), withheld)?;
    for op in ops {
        driver.step(op)?;
    }
    Ok(driver)
}

/// Checks (a)-(e) over random sequences for `config`, then checks that the sequences reached the
/// states the invariants are about.
fn invariants_hold_over_random_sequences(config: Config) {
    const CASES: u32 = 256;
    let totals = Cell::new([0u32; 4]);
    let mut runner = TestRunner::new(proptest_config(CASES));
    // In some runs one required value is never delivered at all.
    let strategy = (prop::option::weighted(0.4, skip()), ops());
    let result = runner.run(&strategy, |(withheld, ops)| {
        let first = run_ops(&config, withheld, &ops)?;
        // (e) determinism: the same calls on a fresh instance give the same actions.
        let second = run_ops(&config, withheld, &ops)?;
        prop_assert_eq!(&first.log, &second.log, "same calls, different actions");
        prop_assert_eq!(first.bms.status(), second.bms.status());
        let c = first.coverage;
        let mut t = totals.get();
        for (i, hit) in
            [c.commanded_closed, c.closed, c.latched_while_closed, c.start_while_missing]
                .into_iter()
                .enumerate()
        {
            t[i] += u32::from(hit);
        }
        totals.set(t);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Not vacuous: a fair share of the sequences closed, tripped while closed, and asked to
    // close on incomplete data.
    let [commanded_closed, closed, latched_while_closed, start_while_missing] = totals.get();
    let minimum = CASES / 10;
    println!(
        "of {CASES} sequences: {commanded_closed} commanded a contactor closed, {closed} reached \
         Closed, {latched_while_closed} latched a fault while closed, {start_while_missing} \
         requested Start with data missing"
    );
    assert!(commanded_closed >= minimum, "only {commanded_closed} sequences closed a contactor");
    assert!(closed >= minimum, "only {closed} sequences reached Closed");
    assert!(latched_while_closed >= minimum, "only {latched_while_closed} tripped while closed");
    assert!(start_while_missing >= minimum, "only {start_while_missing} started on missing data");
}

#[test]
fn random_sequences_keep_the_invariants() {
    invariants_hold_over_random_sequences(tesla());
}

#[test]
fn random_sequences_keep_the_invariants_with_contactor_feedback() {
    invariants_hold_over_random_sequences(tesla_with_feedback());
}

// -------------------------------------------------------------------------------------------------
// 2. Reaction time of every maximum tier that opens the contactors
// -------------------------------------------------------------------------------------------------

/// A violation of one rule's maximum tier, applied to the rig's plant.
#[derive(Clone, Copy, Debug)]
enum Violation {
    CellOverVoltage {
        cell: u16,
        mv: i32,
    },
    CellUnderVoltage {
        cell: u16,
        mv: i32,
    },
    PackOverVoltage {
        mv: i32,
    },
    PackUnderVoltage {
        mv: i32,
    },
    ChargeOverCurrent {
        ma: i32,
    },
    DischargeOverCurrent {
        ma: i32,
    },
    DischargeOverTemperature {
        sensor: u16,
        dc: i32,
    },
    DischargeUnderTemperature {
        sensor: u16,
        dc: i32,
    },
    /// While charging at `charge_ma`.
    ChargeOverTemperature {
        sensor: u16,
        dc: i32,
        charge_ma: i32,
    },
    /// While charging at `charge_ma`.
    ChargeUnderTemperature {
        sensor: u16,
        dc: i32,
        charge_ma: i32,
    },
}

/// Violations of the Tesla preset (12 cells, 4 sensors) that cross exactly one maximum tier.
fn violation() -> impl Strategy<Value = Violation> {
    let cell = 0u16..12;
    let sensor = 0u16..4;
    // Charging: above the idle current, below the charge over-current operating limit.
    let charging = 1_001..=100_000i32;
    prop_oneof![
        (cell.clone(), 4_251..=4_600i32)
            .prop_map(|(cell, mv)| Violation::CellOverVoltage { cell, mv }),
        (cell, 1_000..=2_799i32).prop_map(|(cell, mv)| Violation::CellUnderVoltage { cell, mv }),
        // Maximum 12 x 4 250 mV.
        (51_001..=60_000i32).prop_map(|mv| Violation::PackOverVoltage { mv }),
        // Minimum 12 x 2 800 mV.
        (20_000..=33_599i32).prop_map(|mv| Violation::PackUnderVoltage { mv }),
        (150_001..=400_000i32).prop_map(|ma| Violation::ChargeOverCurrent { ma }),
        (-800_000..=-300_001i32).prop_map(|ma| Violation::DischargeOverCurrent { ma }),
        (sensor.clone(), 601..=900i32)
            .prop_map(|(sensor, dc)| Violation::DischargeOverTemperature { sensor, dc }),
        (sensor.clone(), -600..=-251i32)
            .prop_map(|(sensor, dc)| Violation::DischargeUnderTemperature { sensor, dc }),
        // Above the charge maximum (500), not above the discharge maximum (600).
        (sensor.clone(), 501..=600i32, charging.clone()).prop_map(|(sensor, dc, charge_ma)| {
            Violation::ChargeOverTemperature { sensor, dc, charge_ma }
        }),
        // Below the charge maximum (0), not below the discharge maximum (-250).
        (sensor, -250..=-1i32, charging).prop_map(|(sensor, dc, charge_ma)| {
            Violation::ChargeUnderTemperature { sensor, dc, charge_ma }
        }),
    ]
}

impl Violation {
    fn rule(self) -> RuleId {
        match self {
            Violation::CellOverVoltage { .. } => RuleId::CellOverVoltage,
            Violation::CellUnderVoltage { .. } => RuleId::CellUnderVoltage,
            Violation::PackOverVoltage { .. } => RuleId::PackOverVoltage,
            Violation::PackUnderVoltage { .. } => RuleId::PackUnderVoltage,
            Violation::ChargeOverCurrent { .. } => RuleId::ChargeOverCurrent,
            Violation::DischargeOverCurrent { .. } => RuleId::DischargeOverCurrent,
            Violation::DischargeOverTemperature { .. } => RuleId::DischargeOverTemperature,
            Violation::DischargeUnderTemperature { .. } => RuleId::DischargeUnderTemperature,
            Violation::ChargeOverTemperature { .. } => RuleId::ChargeOverTemperature,
            Violation::ChargeUnderTemperature { .. } => RuleId::ChargeUnderTemperature,
        }
    }

    /// The rule's debounce, from the configuration.
    fn debounce(self, config: &Config) -> Duration {
        let p = &config.protection;
        let ms = match self.rule() {
            RuleId::CellOverVoltage => p.cell_over_voltage_mv.debounce_ms,
            RuleId::CellUnderVoltage => p.cell_under_voltage_mv.debounce_ms,
            RuleId::PackOverVoltage => p.pack_over_voltage_mv.debounce_ms,
            RuleId::PackUnderVoltage => p.pack_under_voltage_mv.debounce_ms,
            RuleId::ChargeOverCurrent => p.charge_over_current_ma.debounce_ms,
            RuleId::DischargeOverCurrent => p.discharge_over_current_ma.debounce_ms,
            RuleId::ChargeOverTemperature => p.charge_over_temperature_dc.debounce_ms,
            RuleId::ChargeUnderTemperature => p.charge_under_temperature_dc.debounce_ms,
            RuleId::DischargeOverTemperature => p.discharge_over_temperature_dc.debounce_ms,
            RuleId::DischargeUnderTemperature => p.discharge_under_temperature_dc.debounce_ms,
            other => unreachable!("{other:?} is not a threshold rule"),
        };
        Duration::from_millis(ms.into())
    }

    /// The load before the violation: charging for the charge-window rules, otherwise `idle`
    /// (a healthy current that does not count as charging).
    fn load_before(self, idle: i32) -> MilliAmps {
        match self {
            Violation::ChargeOverTemperature { charge_ma, .. }
            | Violation::ChargeUnderTemperature { charge_ma, .. } => MilliAmps(charge_ma),
            _ => MilliAmps(idle),
        }
    }

    fn apply(self, rig: &mut Rig) {
        let p = &mut rig.plant;
        match self {
            Violation::CellOverVoltage { cell, mv } | Violation::CellUnderVoltage { cell, mv } => {
                p.cells[usize::from(cell)] = MilliVolts(mv);
            }
            Violation::PackOverVoltage { mv } | Violation::PackUnderVoltage { mv } => {
                p.pack_override = Some(MilliVolts(mv));
            }
            Violation::ChargeOverCurrent { ma } | Violation::DischargeOverCurrent { ma } => {
                p.load = MilliAmps(ma);
            }
            Violation::DischargeOverTemperature { sensor, dc }
            | Violation::DischargeUnderTemperature { sensor, dc }
            | Violation::ChargeOverTemperature { sensor, dc, .. }
            | Violation::ChargeUnderTemperature { sensor, dc, .. } => {
                p.temps[usize::from(sensor)] = DeciCelsius(dc);
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct ReactionCase {
    violation: Violation,
    /// Control period: measurements are sampled and fed this often.
    period_ms: u64,
    /// Healthy running time between closing and the violation, in microseconds.
    lead_in_us: u64,
    /// A healthy current that does not count as charging.
    idle_ma: i32,
    feedback: bool,
}

fn reaction_case() -> impl Strategy<Value = ReactionCase> {
    (
        violation(),
        1u64..=100,
        prop_oneof![1 => Just(0u64), 4 => 0u64..=500_000],
        -150_000..=1_000i32,
        any::<bool>(),
    )
        .prop_map(|(violation, period_ms, lead_in_us, idle_ma, feedback)| ReactionCase {
            violation,
            period_ms,
            lead_in_us,
            idle_ma,
            feedback,
        })
}

/// A closed rig with the case's period and load.
fn closed_rig(case: &ReactionCase) -> Rig {
    let config = if case.feedback { tesla_with_feedback() } else { tesla() };
    let mut rig = Rig::new(config, 3_800);
    rig.period = Duration::from_millis(case.period_ms);
    rig.close();
    rig.plant.load = case.violation.load_before(case.idle_ma);
    rig
}

/// When a contactor was first commanded open after the log's first `logged` entries (the
/// violation's onset), and checks that it was the violated rule that opened them.
fn first_open(rig: &Rig, case: &ReactionCase, logged: usize) -> Result<Instant, TestCaseError> {
    let rule = case.violation.rule();
    let opened = rig.log[logged..].iter().find_map(|(at, a)| match a {
        Action::Contactor { closed: false, .. } => Some(*at),
        _ => None,
    });
    prop_assert!(
        opened.is_some(),
        "{rule:?} never opened the contactors: {:?}, latched {:?}",
        rig.state(),
        rig.bms.status().latched()
    );
    let opened = opened.unwrap_or(Instant::ZERO);
    prop_assert_eq!(rig.bms.status().latched(), Some(rule));
    let raised = rig.log.iter().any(|(at, a)| {
        *at == opened
            && matches!(a, Action::Fault(f)
                if f.rule == rule && f.tier == Tier::Maximum && f.at == opened)
    });
    prop_assert!(raised, "no {rule:?} maximum raised at {opened:?}");
    Ok(opened)
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// An adapter that honours `poll_timeout`: the contactors open exactly when the debounce,
    /// counted from the sample time of the first violating sample, has passed: not earlier, and
    /// (the documented guarantee) not later.
    #[test]
    fn max_tier_violation_opens_at_debounce_after_first_violating_sample_when_deadlines_honoured(
        case in reaction_case()
    ) {
        let mut rig = closed_rig(&case);
        rig.run(Duration::from_micros(case.lead_in_us));
        prop_assert_eq!(rig.state(), SequenceState::Closed);
        let debounce = case.violation.debounce(rig.bms.config());
        let t0 = rig.now;
        let logged = rig.log.len();
        case.violation.apply(&mut rig);
        // `run` samples and feeds at t0, t0 + period, ... and calls `handle_timeout` at every
        // deadline in between.
        rig.run(debounce + rig.period + rig.period);
        let opened = first_open(&rig, &case, logged)?;
        prop_assert!(opened >= t0 + debounce, "opened {:?} after onset, debounce {debounce:?}",
            opened - t0);
        prop_assert!(opened <= t0 + debounce, "opened {:?} after onset, debounce {debounce:?}",
            opened - t0);
        prop_assert_eq!(rig.applied(), [false, false, false]);
    }

    /// An adapter that ignores `poll_timeout` and only calls `handle_*` at its control period
    /// ticks: the contactors open at the first tick at or after the debounce, so within the
    /// debounce plus one period, and never before the debounce.
    #[test]
    fn max_tier_violation_opens_within_debounce_plus_one_period_when_only_ticking(
        case in reaction_case()
    ) {
        let mut rig = closed_rig(&case);
        let period = rig.period;
        // Samples at the tick, fed at the tick; nothing in between.
        let tick = |rig: &mut Rig| {
            rig.feed();
            rig.plant.step(period);
            rig.now += period;
        };
        for _ in 0..case.lead_in_us / 1_000 / case.period_ms {
            tick(&mut rig);
        }
        prop_assert_eq!(rig.state(), SequenceState::Closed);
        let debounce = case.violation.debounce(rig.bms.config());
        let t0 = rig.now;
        let logged = rig.log.len();
        case.violation.apply(&mut rig);
        while rig.now <= t0 + debounce + period {
            tick(&mut rig);
        }
        let opened = first_open(&rig, &case, logged)?;
        prop_assert!(opened >= t0 + debounce, "opened {:?} after onset, debounce {debounce:?}",
            opened - t0);
        prop_assert!(opened < t0 + debounce + period,
            "opened {:?} after onset, debounce {debounce:?}, period {period:?}", opened - t0);
        prop_assert_eq!(rig.applied(), [false, false, false]);
    }
}

// -------------------------------------------------------------------------------------------------
// 3. Values inside the operating window
// -------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct HealthyCase {
    period_ms: u64,
    /// Mean cell voltage.
    cell_mv: i32,
    /// Mean temperature.
    temp_dc: i32,
    /// Load once closed.
    load_ma: i32,
    /// Pack voltage sensor minus the sum of the cells.
    pack_offset_mv: i32,
    /// `Start` after this many periods (0: before any data).
    start_after: u32,
    feedback: bool,
    /// Seed of the per-period noise.
    seed: u64,
}

fn healthy_case() -> impl Strategy<Value = HealthyCase> {
    (
        1u64..=100,
        3_300..=4_100i32,
        // The charge window's operating limits are 10.0 and 40.0 C.
        120..=380i32,
        // Below the charge (110 A) and discharge (220 A) operating limits.
        -200_000..=100_000i32,
        -50..=50i32,
        0u32..=20,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                period_ms,
                cell_mv,
                temp_dc,
                load_ma,
                pack_offset_mv,
                start_after,
                feedback,
                seed,
            )| {
                HealthyCase {
                    period_ms,
                    cell_mv,
                    temp_dc,
                    load_ma,
                    pack_offset_mv,
                    start_after,
                    feedback,
                    seed,
                }
            },
        )
}

/// splitmix64: per-period noise that proptest does not need to shrink value by value.
fn next_noise(state: &mut u64, amplitude: i32) -> i32 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let span = u64::from(amplitude.unsigned_abs()) * 2 + 1;
    (z % span) as i32 - amplitude
}

/// New healthy readings: cells within +-10 mV of the mean (imbalance stays far below its 50 mV
/// operating limit), temperatures within +-20 dC, the pack sensor within 50 mV of the sum.
fn wiggle(rig: &mut Rig, case: &HealthyCase, noise: &mut u64) {
    let p = &mut rig.plant;
    for cell in &mut p.cells {
        *cell = MilliVolts(case.cell_mv + next_noise(noise, 10));
    }
    for t in &mut p.temps {
        *t = DeciCelsius(case.temp_dc + next_noise(noise, 20));
    }
    let sum: i32 = p.cells.iter().map(|c| c.0).sum();
    p.pack_override = Some(MilliVolts(sum + case.pack_offset_mv));
}

proptest! {
    #![proptest_config(proptest_config(256))]

    /// Readings that stay inside every operating limit never raise a fault of any tier, `Start`
    /// closes within the precharge timeout, and the limits are then the configured maxima.
    #[test]
    fn values_inside_the_operating_window_never_fault_and_start_closes(case in healthy_case()) {
        let config = if case.feedback { tesla_with_feedback() } else { tesla() };
        let precharge_timeout = Duration::from_millis(config.contactors.precharge_timeout_ms.into());
        let mut rig = Rig::new(config.clone(), case.cell_mv);
        rig.period = Duration::from_millis(case.period_ms);
        let mut noise = case.seed;
        if case.start_after == 0 {
            rig.command(Command::Start);
        }
        for _ in 0..case.start_after {
            wiggle(&mut rig, &case, &mut noise);
            rig.run(rig.period);
        }
        if case.start_after > 0 {
            rig.command(Command::Start);
        }
        let started = rig.now;
        while rig.state() != SequenceState::Closed && rig.now < started + precharge_timeout {
            wiggle(&mut rig, &case, &mut noise);
            rig.run(rig.period);
        }
        prop_assert_eq!(rig.state(), SequenceState::Closed, "not closed {:?} after Start",
            rig.now - started);
        rig.plant.load = MilliAmps(case.load_ma);
        let closed_at = rig.now;
        while rig.now < closed_at + Duration::from_millis(500) {
            wiggle(&mut rig, &case, &mut noise);
            rig.run(rig.period);
        }
        prop_assert_eq!(rig.state(), SequenceState::Closed);
        prop_assert_eq!(rig.applied(), [true, false, true]);
        let faults: Vec<_> =
            rig.log.iter().filter(|(_, a)| matches!(a, Action::Fault(_))).collect();
        prop_assert!(faults.is_empty(), "faults on healthy values: {faults:?}");
        prop_assert!(
            !rig.sequence_events()
                .iter()
                .any(|e| matches!(e, SequenceEvent::PrechargeFailed { .. })),
            "precharge failed: {:?}", rig.sequence_events()
        );
        let limits = rig.bms.status().limits;
        prop_assert_eq!(limits.charge_ma, config.charge_current_max_ma);
        prop_assert_eq!(limits.charge_reason, LimitReason::ConfiguredMaximum);
        prop_assert_eq!(limits.discharge_ma, config.discharge_current_max_ma);
        prop_assert_eq!(limits.discharge_reason, LimitReason::ConfiguredMaximum);
    }
}
