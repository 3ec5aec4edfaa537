//! What a run produces: the event log, the expectation outcomes, a summary and the trace.
//!
//! `text.rs` renders the report people read (and the snapshot tests compare), `csv.rs` writes
//! the trace, `plot.rs` draws it. Every number is rendered with a fixed precision so the same
//! run gives the same bytes.

pub mod csv;
pub mod plot;
pub mod text;

use cellwarden_core::{Counters, Duration, RuleId, Tier};

use crate::plant::Energy;
use crate::scenario::MAX_TRACE_ROWS;

/// The result of one scenario run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario's name.
    pub name: String,
    /// The file it came from, as given.
    pub source: String,
    /// The scenario's description.
    pub description: String,
    /// Its seed.
    pub seed: u64,
    /// Simulated time run.
    pub duration: Duration,
    /// Everything that happened, in time order.
    pub log: Vec<LogEntry>,
    /// One per expectation, in file order.
    pub outcomes: Vec<Outcome>,
    /// Extremes, energy, faults, final state.
    pub summary: Summary,
    /// Sampled plant and core state.
    pub trace: Vec<TraceRow>,
}

impl Report {
    /// Whether every expectation passed.
    pub fn passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.passed)
    }
}

/// Where a log entry comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The scenario's timeline (commands, loads, faults, notes).
    Timeline,
    /// An action or event of the core.
    Core,
    /// Something the plant did by itself (a contactor that did not move, say).
    Plant,
    /// The module-board bus: enumeration, lost and recovered boards, board alerts.
    Boards,
}

impl Source {
    /// Fixed-width tag for the text report.
    pub fn tag(self) -> &'static str {
        match self {
            Source::Timeline => "timeline",
            Source::Core => "core",
            Source::Plant => "plant",
            Source::Boards => "boards",
        }
    }
}

/// One line of the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Time since the start of the run.
    pub at: Duration,
    /// Who says it.
    pub source: Source,
    /// What happened, one line, already formatted deterministically.
    pub text: String,
}

/// The verdict on one expectation.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The expectation's label.
    pub label: String,
    /// Its line in the scenario file.
    pub line: usize,
    /// Whether it held.
    pub passed: bool,
    /// Why: the times and values that decided it.
    pub detail: String,
}

/// An extreme value, where and when it happened.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Extreme {
    /// The value.
    pub value: f64,
    /// When.
    pub at: Duration,
    /// Which series group (for cell values), else 0.
    pub index: usize,
}

/// How often a fault tier was raised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultCount {
    /// The rule.
    pub rule: RuleId,
    /// The tier.
    pub tier: Tier,
    /// How many times it was raised.
    pub raised: u32,
    /// When first.
    pub first_at: Duration,
}

/// The numbers at the bottom of a report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Highest true cell voltage, V.
    pub cell_v_max: Extreme,
    /// Lowest true cell voltage, V.
    pub cell_v_min: Extreme,
    /// Hottest cell, °C.
    pub temp_c_max: Extreme,
    /// Coldest cell, °C.
    pub temp_c_min: Extreme,
    /// Largest charge current, A (0 if none).
    pub charge_a_max: Extreme,
    /// Largest discharge current (magnitude), A (0 if none).
    pub discharge_a_max: Extreme,
    /// Mean state of charge at the start, %.
    pub soc_start_pct: f64,
    /// Mean state of charge at the end, %.
    pub soc_end_pct: f64,
    /// Energy through the terminals and heat.
    pub energy: Energy,
    /// Faults raised, in the order first raised.
    pub faults: Vec<FaultCount>,
    /// Contactor sequence state at the end (`open`, `closed`, ...).
    pub final_state: String,
    /// Latched rule at the end, if any.
    pub latched_at_end: Option<RuleId>,
    /// The core's rejected-input counters at the end.
    pub counters: Counters,
    /// Calls into the core: `handle_input`, `handle_inputs` (one per measurement cycle) and
    /// `handle_timeout`.
    pub core_calls: u64,
    /// Plant integration steps.
    pub plant_steps: u64,
    /// Spread between the highest and lowest true cell voltage: at the start, at the end, and
    /// when it first fell below [`SPREAD_TARGET_MV`] after balancing started (reported only
    /// when the core balanced).
    pub spread: Option<SpreadSummary>,
    /// The module-board bus, when cells are measured through emulated boards.
    pub bus: Option<BusSummary>,
    /// Per pack and per inverter, in a parallel system.
    pub system: Option<SystemSummary>,
    /// How well the core's SoC and capacity estimates followed the plant, when it estimates.
    pub soc: Option<SocAccuracy>,
    /// Trace rows added at events, besides the periodic ones.
    pub trace_event_rows: u64,
    /// Event rows left out because [`MAX_TRACE_ROWS`] of them were kept already.
    pub trace_rows_left_out: u64,
}

impl Summary {
    /// Whether a trace row may be added. Periodic rows always may: the loader bounds them
    /// (`output.trace_interval`). Rows at events (a timeline entry, an action of the core) come
    /// as often as the scenario and the core make them, so at most [`MAX_TRACE_ROWS`] of them
    /// are kept and the rest are counted.
    pub fn keep_trace_row(&mut self, periodic: bool) -> bool {
        if periodic {
            return true;
        }
        if self.trace_event_rows >= MAX_TRACE_ROWS {
            self.trace_rows_left_out += 1;
            return false;
        }
        self.trace_event_rows += 1;
        true
    }
}

/// RMS and largest SoC error over a set of samples, in percentage points of SoC.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ErrorFigures {
    /// Root mean square of the error.
    pub rms_pct: f64,
    /// The error of largest magnitude, with its sign (estimate − truth).
    pub max_pct: f64,
    /// When it happened.
    pub max_at: Duration,
    /// Samples (one per measurement cycle).
    pub samples: u64,
}

/// The core's state-of-charge and capacity estimates against the plant's truth.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SocAccuracy {
    /// An LFP pack (the goals differ, and the plateau is reported on its own).
    pub lfp: bool,
    /// When the estimate first existed.
    pub start_at: Duration,
    /// The first estimate, %.
    pub start_estimate_pct: f64,
    /// The true SoC then, %.
    pub start_true_pct: f64,
    /// Error of the first estimate, estimate − truth, percentage points.
    pub start_error_pct: f64,
    /// Since when the error has stayed within 3 points, if it is within them at the end.
    pub settled_at: Option<Duration>,
    /// Every sample.
    pub all: ErrorFigures,
    /// The samples from the first one within 3 points on (the same as `all` after a good
    /// start).
    pub after_settling: Option<ErrorFigures>,
    /// LFP: samples with the true SoC on the plateau (10–95 %).
    pub plateau: Option<ErrorFigures>,
    /// The core's capacity at the end, Ah: learned when `capacity_samples > 0`, else the
    /// configured one.
    pub capacity_learned_ah: f64,
    /// True mean group capacity, Ah.
    pub capacity_true_ah: f64,
    /// Capacity samples the core accepted.
    pub capacity_samples: u32,
    /// Learned against true capacity after 10 days, %, if the run was that long.
    pub capacity_error_at_check_pct: Option<f64>,
    /// The core's series resistance at 25 °C at the end (the configured one until learned), µΩ.
    pub resistance_learned_uohm: f64,
    /// True mean group series resistance (R0) at 25 °C, µΩ.
    pub resistance_true_uohm: f64,
    /// Resistance samples the core accepted.
    pub resistance_samples: u32,
}

/// How each pack and inverter of a parallel system did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SystemSummary {
    /// One per pack, in combiner order.
    pub packs: Vec<PackSummary>,
    /// One per inverter.
    pub inverters: Vec<InverterSummary>,
}

/// One pack of a parallel system.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PackSummary {
    /// Its name.
    pub name: String,
    /// `own` or the CAN BMS protocol.
    pub kind: String,
    /// Mean SoC at the start and the end, %.
    pub soc_start_pct: f64,
    /// At the end.
    pub soc_end_pct: f64,
    /// Largest charge and discharge current through it, A.
    pub charge_a_max: f64,
    /// Largest discharge current (magnitude), A.
    pub discharge_a_max: f64,
    /// The most its current exceeded its own limit (in its direction), A; negative when it
    /// never did.
    pub over_limit_a_max: f64,
    /// Time it spent on the bus.
    pub connected: Duration,
    /// The combiner's view of it at the end.
    pub final_phase: String,
}

/// One inverter of a parallel system.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InverterSummary {
    /// Its name.
    pub name: String,
    /// Its protocol.
    pub protocol: String,
    /// Frames it sent and frames the battery side sent it.
    pub frames_from: u64,
    /// Frames the battery side sent.
    pub frames_to: u64,
    /// Largest charge and discharge current, A.
    pub charge_a_max: f64,
    /// Largest discharge current (magnitude), A.
    pub discharge_a_max: f64,
    /// The most it exceeded the limits it was sent, A.
    pub over_limit_a_max: f64,
    /// Its obedience stage at the end.
    pub final_stage: String,
}

/// The spread a balanced pack should get below, mV.
pub const SPREAD_TARGET_MV: f64 = 10.0;
/// A SoC estimate error within this many percentage points counts as converged.
pub const CONVERGED_PCT: f64 = 3.0;
/// The SoC band (true SoC, %) reported separately for LFP: its flat plateau, where the voltage
/// says almost nothing about the SoC.
pub const LFP_PLATEAU_PCT: (f64, f64) = (10.0, 95.0);

/// How balancing went.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SpreadSummary {
    /// At the start, mV.
    pub start_mv: f64,
    /// At the end, mV.
    pub end_mv: f64,
    /// Time the core spent with cells bleeding.
    pub bleeding: Duration,
    /// First time the spread fell below the target, if it did.
    pub below_target_at: Option<Duration>,
}

/// How the module-board bus did.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BusSummary {
    /// Boards found by the first enumeration.
    pub boards: u8,
    /// Measurement cycles completed.
    pub cycles: u64,
    /// Mean cycle duration, simulated.
    pub cycle_mean: Duration,
    /// Longest cycle, simulated.
    pub cycle_max: Duration,
    /// Board readings missing from cycles.
    pub missed: u64,
    /// Replies with a bad CRC.
    pub crc_errors: u32,
    /// Replies that did not come in time.
    pub timeouts: u32,
    /// Requests sent again.
    pub retries: u32,
    /// Enumerations run.
    pub enumerations: u32,
}

/// One row of the trace.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TraceRow {
    /// Time since the start.
    pub at: Duration,
    /// True pack current, A, positive charging.
    pub current_a: f64,
    /// What the current sensor reported, A.
    pub current_measured_a: f64,
    /// Pack terminal voltage, V.
    pub pack_v: f64,
    /// Bus voltage, V.
    pub bus_v: f64,
    /// Lowest true cell voltage, V.
    pub cell_v_min: f64,
    /// Mean true cell voltage, V.
    pub cell_v_mean: f64,
    /// Highest true cell voltage, V.
    pub cell_v_max: f64,
    /// Lowest cell SoC, %.
    pub soc_min_pct: f64,
    /// Mean cell SoC, %.
    pub soc_mean_pct: f64,
    /// Highest cell SoC, %.
    pub soc_max_pct: f64,
    /// The core's SoC estimate (OCV-table scale), %; `None` while it has none.
    pub soc_estimate_pct: Option<f64>,
    /// Coldest cell, °C.
    pub temp_c_min: f64,
    /// Hottest cell, °C.
    pub temp_c_max: f64,
    /// Charge current limit from the core, A.
    pub charge_limit_a: f64,
    /// Discharge current limit from the core, A.
    pub discharge_limit_a: f64,
    /// Physical contactor positions: negative, precharge, positive.
    pub contactors: [bool; 3],
    /// The core's sequence state, short name.
    pub state: &'static str,
    /// Whether a safety fault is latched.
    pub latched: bool,
}

/// A time since the start of a run as `HH:MM:SS.mmm`, with a day count in front from 24 h on
/// (`1d 02:03:04.000`). Sub-millisecond parts are truncated. Every time in the report and the
/// expectation details uses this form.
pub fn clock(d: Duration) -> String {
    let ms = d.as_micros() / 1_000;
    let (days, ms) = (ms / 86_400_000, ms % 86_400_000);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1_000 % 60, ms % 1_000);
    if days > 0 {
        format!("{days}d {h:02}:{m:02}:{s:02}.{milli:03}")
    } else {
        format!("{h:02}:{m:02}:{s:02}.{milli:03}")
    }
}
