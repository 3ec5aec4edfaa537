//! Loading and checking scenario files.
//!
//! The text is parsed twice: once into `toml`'s spanned document tree, which only serves to find
//! where things are, and once into the serde types of `schema.rs`. Every check after that names
//! the field by its path (`timeline[2].fault.cell`) and looks the path up in the tree for its
//! line and column. Messages read `file:line:column: field: problem`.
//!
//! This file has the entry points and the checking context the others share; `error.rs` has
//! [`LoadError`] and the field paths, `lines.rs` the line and column of an offset, `system.rs`
//! the core configuration, `plant.rs` the plant, sensors and inverter, `timeline.rs` the
//! timeline and `expect.rs` the expectations.

mod boards;
mod error;
mod expect;
mod lines;
mod parallel;
mod plant;
mod system;
mod timeline;

use std::cell::Cell;
use std::path::{Path, PathBuf};

use cellwarden_core::Duration;
use toml::Spanned;
use toml::de::DeTable;

use self::error::{find, one_line, path_at, syntax_error};
use self::lines::LineIndex;
use super::Scenario;
use super::schema::ScenarioFile;
use super::span::Span;
use crate::text_file::{SCENARIO_MAX_BYTES, read_capped};

pub use self::error::LoadError;

/// Reads and checks a scenario file. A file larger than [`SCENARIO_MAX_BYTES`] is refused
/// without being read whole.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let text = read_capped(path, SCENARIO_MAX_BYTES, "a scenario file")
        .map_err(|e| LoadError::new(path, None, "", &e.to_string()))?;
    load_str(path, &text)
}

/// Checks scenario text; `path` names it in messages and anchors relative paths.
pub fn load_str(path: &Path, text: &str) -> Result<Scenario, LoadError> {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(error) => return Err(syntax_error(path, text, &error)),
    };
    let ctx =
        Ctx { file: path, text, doc, lines: LineIndex::new(text), profile_points: Cell::new(0) };
    let file: ScenarioFile = toml::from_str(text).map_err(|e| ctx.serde_error(&e))?;
    ctx.check(file)
}

// ---------------------------------------------------------------------------------------------
// Checking

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    doc: Spanned<DeTable<'a>>,
    lines: LineIndex,
    /// Points of the load profiles checked so far, against [`MAX_PROFILE_POINTS`].
    profile_points: Cell<usize>,
}

/// What a number must be.
#[derive(Clone, Copy, Debug)]
enum Want {
    Finite,
    Positive,
    NonNegative,
    Between(f64, f64),
    /// `0 < x <= 1`.
    Fraction,
}

/// The most rows a trace may keep, one per `output.trace_interval` over the run. A row is
/// about 150 bytes in memory and more again in the CSV and the plot; `"1us"` over a minute
/// was 60 million rows.
pub const MAX_TRACE_ROWS: u64 = 100_000;
/// The shortest `output.trace_interval`: the plant and the core do nothing a finer trace
/// would show, and each row is a step of the engine.
pub const MIN_TRACE_INTERVAL: Duration = Duration::from_millis(1);

/// The trace interval of a file that names none: one second, or the shortest whole second that
/// keeps a long run within [`MAX_TRACE_ROWS`], so a run of days needs no setting to load.
fn default_trace_interval(duration: Duration) -> Duration {
    let secs = duration.as_micros().div_ceil(MAX_TRACE_ROWS).div_ceil(1_000_000).max(1);
    Duration::from_secs(secs)
}

/// The most points the load profiles of one scenario may keep together (16 bytes each). Each
/// CSV file is capped in size, but every timeline entry that names one reads it again.
pub const MAX_PROFILE_POINTS: usize = 2_000_000;

/// Lowest and highest temperature a scenario may set, °C.
const TEMPERATURE_RANGE: (f64, f64) = (-60.0, 150.0);

type Checked<T> = Result<T, LoadError>;

impl Ctx<'_> {
    fn at(&self, offset: usize, field: &str, problem: &str) -> LoadError {
        LoadError::new(self.file, Some(self.lines.position(self.text, offset)), field, problem)
    }

    /// An error about the value at `field` (or the nearest thing on its path that exists).
    fn value_error(&self, field: &str, problem: impl AsRef<str>) -> LoadError {
        let loc = find(&self.doc, field);
        self.at(loc.value.start, field, problem.as_ref())
    }

    /// An error about the key `field` itself (out of place, unknown).
    fn key_error(&self, field: &str, problem: impl AsRef<str>) -> LoadError {
        let loc = find(&self.doc, field);
        self.at(loc.key.unwrap_or(loc.value).start, field, problem.as_ref())
    }

    fn line_of(&self, field: &str) -> usize {
        self.lines.position(self.text, find(&self.doc, field).value.start).0
    }

    fn serde_error(&self, error: &toml::de::Error) -> LoadError {
        let span = error.span().unwrap_or(0..0);
        // Errors about the top level (a missing field) come with an empty span at 0 or one
        // over the whole document.
        let whole = span.start == 0 && (span.is_empty() || span.end >= self.text.trim_end().len());
        let field = if whole { String::new() } else { path_at(&self.doc, &span) };
        self.at(span.start, &field, &one_line(error.message()))
    }

    fn real(&self, field: &str, value: f64, want: Want) -> Checked<f64> {
        let ok = value.is_finite()
            && match want {
                Want::Finite => true,
                Want::Positive => value > 0.0,
                Want::NonNegative => value >= 0.0,
                Want::Between(low, high) => (low..=high).contains(&value),
                Want::Fraction => value > 0.0 && value <= 1.0,
            };
        if ok {
            return Ok(value);
        }
        let problem = match want {
            _ if !value.is_finite() => format!("{value} is not a finite number"),
            Want::Finite => format!("{value} is not a finite number"),
            Want::Positive => format!("{value} must be greater than 0"),
            Want::NonNegative => format!("{value} must not be negative"),
            Want::Between(low, high) => format!("{value} is outside {low}..={high}"),
            Want::Fraction => format!("{value} must be greater than 0 and at most 1"),
        };
        Err(self.value_error(field, problem))
    }

    /// A trace interval that keeps the trace within [`MAX_TRACE_ROWS`] over `duration`.
    fn trace_interval(&self, interval: Span, duration: Duration) -> Checked<()> {
        // The shortest interval allowed, in whole milliseconds.
        let for_rows = duration.as_micros().div_ceil(MAX_TRACE_ROWS).div_ceil(1000) * 1000;
        let shortest = Span(Duration::from_micros(for_rows).max(MIN_TRACE_INTERVAL));
        if interval >= shortest {
            return Ok(());
        }
        Err(self.value_error(
            "output.trace_interval",
            format!(
                "{interval} is outside the allowed {shortest} to {} for a run of {} (a trace \
                 keeps at most {MAX_TRACE_ROWS} rows, none closer than {})",
                Span::MAX,
                Span(duration),
                Span(MIN_TRACE_INTERVAL),
            ),
        ))
    }

    /// Adds a profile's points to the scenario's total, refused past [`MAX_PROFILE_POINTS`].
    fn count_profile_points(&self, field: &str, points: usize) -> Checked<()> {
        let total = self.profile_points.get().saturating_add(points);
        self.profile_points.set(total);
        if total <= MAX_PROFILE_POINTS {
            return Ok(());
        }
        Err(self.value_error(
            field,
            format!(
                "the load profiles up to here hold {total} points, more than the \
                 {MAX_PROFILE_POINTS} one scenario may keep"
            ),
        ))
    }

    fn check(&self, file: ScenarioFile) -> Checked<Scenario> {
        if file.name.trim().is_empty() {
            return Err(self.value_error("name", "must not be empty"));
        }
        let duration = file.duration.0;
        if duration == Duration::ZERO {
            return Err(self.value_error("duration", "must be longer than 0s"));
        }
        let parallel_system = !file.can_packs.is_empty() || !file.inverters.is_empty();
        let system = match &file.system {
            Some(system) => system.clone(),
            None if !file.can_packs.is_empty() => {
                // No pack of our own: the engine never builds one. The first CAN pack's
                // size stands in so the checks below have something to check.
                self.placeholder_system()
            }
            None => {
                return Err(self.value_error(
                    "system",
                    "missing: give `[system]` (our own pack), or `[[can_packs]]` for a system of \
                     CAN rack batteries",
                ));
            }
        };
        let config = self.config(&system)?;
        let initial_soc_estimate = match system.initial_soc_estimate {
            Some(soc) => {
                if !system.soc_estimate {
                    return Err(self.key_error(
                        "system.initial_soc_estimate",
                        "needs the SoC estimator, but `soc_estimate = false` turns it off",
                    ));
                }
                Some(self.real("system.initial_soc_estimate", soc, Want::Between(0.0, 1.0))?)
            }
            None => None,
        };
        let plant = self.plant(&file, &system, &config)?;
        let parallel = if parallel_system {
            Some(self.parallel(&file, file.system.is_some(), &plant)?)
        } else {
            if file.combiner.is_some() {
                return Err(self.key_error(
                    "combiner",
                    "only a parallel system has a combiner: add `[[can_packs]]` or `[[inverters]]`",
                ));
            }
            None
        };
        self.sensors_and_inverter(&file)?;
        let board_count = match &file.boards {
            Some(boards) => Some(self.boards(boards, &config)?),
            None => None,
        };
        if !file.output.event_log && parallel.is_some() {
            return Err(self.key_error(
                "output.event_log",
                "a parallel system always keeps its event log; only a single pack can turn it off",
            ));
        }
        let trace_interval = match file.output.trace_interval {
            Some(interval) => {
                self.trace_interval(interval, duration)?;
                interval.0
            }
            None => default_trace_interval(duration),
        };
        let base_dir = match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut timeline = Vec::with_capacity(file.timeline.len());
        let scope = timeline::FaultScope {
            cells: config.cell_count,
            boards: board_count,
            parallel: parallel.as_ref(),
        };
        for (i, entry) in file.timeline.iter().enumerate() {
            timeline.push(self.moment(i, entry, &file, &scope, &base_dir)?);
        }
        timeline.sort_by_key(|m| m.at);
        let mut expectations = Vec::with_capacity(file.expect.len());
        for (i, spec) in file.expect.iter().enumerate() {
            expectations.push(self.expectation(i, spec, duration)?);
        }
        Ok(Scenario {
            source: self.file.to_path_buf(),
            name: file.name.trim().to_owned(),
            description: file.description.trim().to_owned(),
            seed: file.seed,
            duration,
            config,
            initial_soc_estimate,
            plant,
            sensors: file.sensors,
            inverter: file.inverter.unwrap_or_default(),
            boards: file.boards,
            parallel,
            timeline,
            expectations,
            trace_interval,
            event_log: file.output.event_log,
        })
    }
}

fn article(type_name: &str) -> &'static str {
    if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}
