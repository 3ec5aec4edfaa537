//! Scenarios: the TOML files in `scenarios/` that specify the system's behaviour.
//!
//! [`load()`] reads a file into a checked [`Scenario`]; a bad file gets an [`LoadError`] naming the
//! file, line and field. `schema.rs` has the file format as serde types, `span.rs` the duration
//! syntax.

mod load;
mod names;
pub mod parallel;
pub mod schema;
pub use crate::span;

use std::path::PathBuf;

use cellwarden_core::{Command, Config, Duration, RuleId, Tier};

pub use load::{LoadError, MAX_PROFILE_POINTS, MAX_TRACE_ROWS, MIN_TRACE_INTERVAL, load, load_str};
pub use names::file_name;
pub use schema::{
    BoardKind, BoardsSection, CauseName, EventName, FaultSpec, InverterSection, OpenHow,
    SensorName, SensorSection, Signal, StateName,
};
pub use span::Span;

use crate::plant::PlantSpec;
use crate::profile::Profile;

/// A scenario file, checked and ready to run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from (as given), for messages.
    pub source: PathBuf,
    /// One line saying what the scenario shows.
    pub name: String,
    /// Longer explanation.
    pub description: String,
    /// Seed of every random choice.
    pub seed: u64,
    /// How long to run.
    pub duration: Duration,
    /// The core configuration: preset plus overrides, validated.
    pub config: Config,
    /// The SoC a wrong but confident snapshot claims at the start (a fraction), if any.
    pub initial_soc_estimate: Option<f64>,
    /// The plant.
    pub plant: PlantSpec,
    /// The measurement front end.
    pub sensors: SensorSection,
    /// The inverter.
    pub inverter: InverterSection,
    /// Emulated module boards, if cells and temperatures are measured through them.
    pub boards: Option<BoardsSection>,
    /// A parallel system (CAN packs, combiner, CAN inverters), run by the engine's parallel arrangement. When
    /// it has no pack of our own (`own_pack == false`), `config`, `plant`, `sensors` and
    /// `boards` are not used.
    pub parallel: Option<parallel::Parallel>,
    /// What happens when, sorted by time (entries at the same time keep their file order).
    pub timeline: Vec<Moment>,
    /// What must hold.
    pub expectations: Vec<Expectation>,
    /// One trace row every this long.
    pub trace_interval: Duration,
    /// Whether the report keeps the event log (`output.event_log`).
    pub event_log: bool,
}

/// One checked timeline entry.
#[derive(Clone, Debug)]
pub struct Moment {
    /// When, from the start.
    pub at: Duration,
    /// Line in the file, for the event log.
    pub line: usize,
    /// A command to the core.
    pub command: Option<Command>,
    /// Parallel systems: the rack a `start` or `stop` is for (index into the CAN packs); our
    /// own pack when `None`.
    pub can_pack: Option<u8>,
    /// The inverter's demand from now on (its clock starts at `at`).
    pub load: Option<Profile>,
    /// Fault injection.
    pub fault: Option<FaultSpec>,
    /// New ambient temperature.
    pub ambient_c: Option<f64>,
    /// Shown in the event log.
    pub note: Option<String>,
}

/// One checked expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct Expectation {
    /// What the report calls it.
    pub label: String,
    /// Line of its `[[expect]]` in the file.
    pub line: usize,
    /// What is checked.
    pub check: Check,
}

/// The checks, one per expectation kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// `event` follows the first time `after` holds, within `limit`. Fails when the trigger
    /// never happens too: a scenario that does not provoke what it tests proves nothing.
    Within {
        /// What starts the clock.
        after: Trigger,
        /// What must follow.
        event: EventFilter,
        /// How long it may take.
        limit: Duration,
    },
    /// The event never happens in `from..=until`.
    NeverEvent {
        /// The event.
        event: EventFilter,
        /// Window start.
        from: Duration,
        /// Window end (the run's end when not given).
        until: Option<Duration>,
    },
    /// The condition never holds in `from..=until`.
    NeverSignal {
        /// The condition.
        condition: Condition,
        /// Window start.
        from: Duration,
        /// Window end (the run's end when not given).
        until: Option<Duration>,
    },
    /// The event happens at or before `by`.
    By {
        /// The event.
        event: EventFilter,
        /// The deadline.
        by: Duration,
    },
    /// The event happens between `min` and `max` times.
    Count {
        /// The event.
        event: EventFilter,
        /// Fewest.
        min: u32,
        /// Most.
        max: u32,
    },
    /// The sequence ends in this state.
    AtEndState(StateName),
    /// This rule is among those latched at the end (`None`: nothing is latched).
    AtEndLatched(Option<RuleId>),
    /// The condition holds at the end.
    AtEndSignal(Condition),
}

/// What starts a `within` clock.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// The first time a condition holds.
    Signal(Condition),
    /// The first matching event.
    Event(EventFilter),
}

/// A signal compared with a value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Condition {
    /// The signal.
    pub signal: Signal,
    /// The comparison.
    pub compare: Compare,
}

/// Strict comparisons.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Compare {
    /// Greater than.
    Above(f64),
    /// Less than.
    Below(f64),
}

impl Condition {
    /// Whether `value` (of this condition's signal) satisfies it.
    pub fn holds(&self, value: f64) -> bool {
        match self.compare {
            Compare::Above(limit) => value > limit,
            Compare::Below(limit) => value < limit,
        }
    }
}

/// An event kind with optional filters; `None` matches anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventFilter {
    /// The event kind.
    pub event: EventName,
    /// Fault rule.
    pub rule: Option<RuleId>,
    /// Fault tier.
    pub tier: Option<Tier>,
    /// How the contactors opened.
    pub how: Option<OpenHow>,
    /// Why precharge failed.
    pub cause: Option<CauseName>,
    /// Which command.
    pub command: Option<Command>,
}
