//! Loading and checking scenario files.
//!
//! The text is parsed twice: once into `toml`'s spanned document tree, which only serves to find
//! where things are, and once into the serde types of `schema.rs`. Every check after that names
//! the field by its path (`timeline[2].fault.cell`) and looks the path up in the tree for its
//! line and column. Messages read `file:line:column: field: problem`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use cellwarden_core::{Command, Config, Duration, RuleId, Tier};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::schema::{
    CommandName, EventName, ExpectKind, ExpectSpec, FaultSpec, PresetName, ScenarioFile,
    SystemSpec, TierName, TimelineEntry, TriggerSpec,
};
use super::{
    CauseName, Check, Compare, Condition, EventFilter, Expectation, Moment, OpenHow, Scenario,
    Signal, Span, StateName, Trigger,
};
use crate::plant::{BusParams, CellParams, PlantSpec, Spread};
use crate::profile::Profile;

/// A scenario file that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// The whole message: `file:line:column: field: problem` (the position and the field are
    /// left out when there is none, e.g. for a file that cannot be read).
    pub message: String,
    /// Line in the file, from 1; `None` only when the file cannot be read.
    pub line: Option<usize>,
    /// Column in the line, from 1, counted in characters.
    pub column: Option<usize>,
    /// Path of the offending field, e.g. `timeline[2].fault.cell`. For a syntax error it is the
    /// table and key of the broken line as far as they can be told; empty for errors about the
    /// whole file (a missing top-level field, a file that cannot be read).
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl LoadError {
    fn new(file: &Path, position: Option<(usize, usize)>, field: &str, problem: &str) -> Self {
        let mut message = file.display().to_string();
        if let Some((line, column)) = position {
            message.push_str(&format!(":{line}:{column}"));
        }
        message.push_str(": ");
        if !field.is_empty() {
            message.push_str(field);
            message.push_str(": ");
        }
        message.push_str(problem);
        LoadError {
            message,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
            field: field.to_owned(),
            problem: problem.to_owned(),
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LoadError {}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::new(path, None, "", &format!("cannot read: {e}")))?;
    load_str(path, &text)
}

/// Checks scenario text; `path` names it in messages and anchors relative paths.
pub fn load_str(path: &Path, text: &str) -> Result<Scenario, LoadError> {
    let doc = match DeTable::parse(text) {
        Ok(doc) => doc,
        Err(error) => return Err(syntax_error(path, text, &error)),
    };
    let ctx = Ctx { file: path, text, doc };
    let file: ScenarioFile = toml::from_str(text).map_err(|e| ctx.serde_error(&e))?;
    ctx.check(file)
}

// ---------------------------------------------------------------------------------------------
// Positions

/// Line and column (both from 1, the column in characters) of byte `offset` in `text`.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn syntax_error(file: &Path, text: &str, error: &toml::de::Error) -> LoadError {
    let Some(span) = error.span() else {
        // No position (e.g. the nesting limit): the whole file.
        let problem = format!("TOML syntax: {}", one_line(error.message()));
        return LoadError::new(file, Some((1, 1)), "", &problem);
    };
    let (recovered, _) = DeTable::parse_recoverable(text);
    let mut field = path_at(&recovered, &span);
    if field.is_empty() {
        field = enclosing_field(text, span.start);
    }
    let pos = position(text, span.start);
    let problem = format!("TOML syntax: {}", one_line(error.message()));
    LoadError::new(file, Some(pos), &field, &problem)
}

/// For text that does not parse: the table the line of byte `offset` is in (from the last
/// `[header]` above it, with an index for `[[arrays]]`) and the bare key that starts the line.
fn enclosing_field(text: &str, offset: usize) -> String {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[..line_start];
    // `[name]` or `[[name]]` with a bare dotted name (not a line of a multi-line array).
    let header = |line: &str| -> Option<(bool, String)> {
        let line = line.trim();
        let array = line.starts_with("[[");
        let inner = line.strip_prefix('[')?.trim_start_matches('[');
        let name: String = inner.split(']').next()?.chars().filter(|c| *c != ' ').collect();
        let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        (!name.is_empty() && name.chars().all(bare)).then_some((array, name))
    };
    let line = text[line_start..].lines().next().unwrap_or("");
    if let Some((_, name)) = header(line) {
        return name; // the header itself is broken
    }
    let mut table = String::new();
    if let Some((array, name)) = before.lines().rev().find_map(header) {
        table = name.clone();
        if array {
            let count =
                before.lines().filter_map(header).filter(|h| *h == (true, name.clone())).count();
            table = format!("{name}[{}]", count.saturating_sub(1));
        }
    }
    let key: String = match line.split_once('=') {
        Some((key, _)) => {
            let key = key.trim();
            let bare = !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if bare { key.to_owned() } else { String::new() }
        }
        None => String::new(),
    };
    match (table.is_empty(), key.is_empty()) {
        (_, true) => table,
        (true, false) => key,
        (false, false) => format!("{table}.{key}"),
    }
}

fn one_line(text: &str) -> String {
    text.trim().split('\n').map(str::trim).collect::<Vec<_>>().join("; ")
}

/// One step of a field path.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step<'p> {
    Key(&'p str),
    Index(usize),
}

/// `timeline[2].fault.cell` as steps. Keys are split at dots (quoted keys with dots in them are
/// then not found, and the position falls back to their parent).
fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = part.split_at(part.find('[').unwrap_or(part.len()));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some(open) = rest.strip_prefix('[') {
            let Some(close) = open.find(']') else { break };
            if let Ok(index) = open[..close].parse() {
                out.push(Step::Index(index));
            }
            rest = &open[close + 1..];
        }
    }
    out
}

/// Where an item of the document is: its key (for table entries) and its value. Tables made by
/// a `[header]` have the header as their value span.
#[derive(Clone, Debug)]
struct Loc {
    key: Option<Range<usize>>,
    value: Range<usize>,
}

/// The deepest item on `path` that exists in `doc`.
fn find(doc: &Spanned<DeTable<'_>>, path: &str) -> Loc {
    let mut loc = Loc { key: None, value: 0..0 };
    // `None`: the root table.
    let mut current: Option<&DeValue<'_>> = None;
    for step in steps(path) {
        let table = match current {
            None => Some(doc.get_ref()),
            Some(value) => value.as_table(),
        };
        let next = match (step, table, current) {
            (Step::Key(key), Some(table), _) => {
                table.iter().find(|(k, _)| k.get_ref() == key).map(|(k, v)| (Some(k.span()), v))
            }
            (Step::Index(i), _, Some(DeValue::Array(array))) => array.get(i).map(|v| (None, v)),
            _ => None,
        };
        let Some((key, value)) = next else { break };
        loc = Loc { key, value: value.span() };
        current = Some(value.get_ref());
    }
    loc
}

/// The path of the most specific item whose key and value together cover `span`.
fn path_at(doc: &Spanned<DeTable<'_>>, span: &Range<usize>) -> String {
    struct Search<'s> {
        span: &'s Range<usize>,
        width: usize,
        path: Option<String>,
    }
    impl Search<'_> {
        /// Keeps `path` if `area` holds all of the span (an empty span: its position) and is
        /// no wider than the best so far.
        fn consider(&mut self, path: &str, area: Range<usize>) {
            let span = self.span;
            let covers = area.start <= span.start
                && (span.end <= area.end && span.start < area.end
                    || span.is_empty() && span.start == area.start);
            let width = area.end - area.start;
            if covers && (self.path.is_none() || width <= self.width) {
                self.width = width;
                self.path = Some(path.to_owned());
            }
        }

        fn table(&mut self, table: &DeTable<'_>, prefix: &str) {
            for (k, v) in table.iter() {
                let path = if prefix.is_empty() {
                    k.get_ref().to_string()
                } else {
                    format!("{prefix}.{}", k.get_ref())
                };
                let (ks, vs) = (k.span(), v.span());
                self.consider(&path, ks.start.min(vs.start)..ks.end.max(vs.end));
                self.value(v.get_ref(), &path);
            }
        }

        fn value(&mut self, value: &DeValue<'_>, path: &str) {
            match value {
                DeValue::Table(table) => self.table(table, path),
                DeValue::Array(array) => {
                    for (i, v) in array.iter().enumerate() {
                        let path = format!("{path}[{i}]");
                        self.consider(&path, v.span());
                        self.value(v.get_ref(), &path);
                    }
                }
                _ => {}
            }
        }
    }
    let mut search = Search { span, width: usize::MAX, path: None };
    search.table(doc.get_ref(), "");
    search.path.unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Checking

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    doc: Spanned<DeTable<'a>>,
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

/// Lowest and highest temperature a scenario may set, °C.
const TEMPERATURE_RANGE: (f64, f64) = (-60.0, 150.0);
/// Tesla Model S modules a string may have.
const MAX_MODULES: u16 = 32;
/// Fields of a `Thresholds` table that the serialised preset leaves out when they are unset.
const TIERS: [&str; 3] = ["operating", "recommended", "maximum"];
/// Expectation fields that filter an event.
const FILTERS: [&str; 5] = ["rule", "tier", "how", "cause", "command"];

type Checked<T> = Result<T, LoadError>;

impl Ctx<'_> {
    fn at(&self, offset: usize, field: &str, problem: &str) -> LoadError {
        LoadError::new(self.file, Some(position(self.text, offset)), field, problem)
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
        position(self.text, find(&self.doc, field).value.start).0
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

    fn check(&self, file: ScenarioFile) -> Checked<Scenario> {
        if file.name.trim().is_empty() {
            return Err(self.value_error("name", "must not be empty"));
        }
        let duration = file.duration.0;
        if duration == Duration::ZERO {
            return Err(self.value_error("duration", "must be longer than 0s"));
        }
        let config = self.config(&file.system)?;
        let plant = self.plant(&file, &config)?;
        self.sensors_and_inverter(&file)?;
        if file.output.trace_interval.micros() == 0 {
            return Err(self.value_error("output.trace_interval", "must be longer than 0s"));
        }
        let base_dir = match self.file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut timeline = Vec::with_capacity(file.timeline.len());
        for (i, entry) in file.timeline.iter().enumerate() {
            timeline.push(self.moment(i, entry, &file, &config, &base_dir)?);
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
            plant,
            sensors: file.sensors,
            inverter: file.inverter,
            timeline,
            expectations,
            trace_interval: file.output.trace_interval.0,
        })
    }

    // -- system ------------------------------------------------------------------------------

    fn config(&self, system: &SystemSpec) -> Checked<Config> {
        let preset = match system.preset {
            PresetName::TeslaModelS => {
                if system.capacity_ah.is_some() {
                    return Err(self.key_error(
                        "system.capacity_ah",
                        "belongs to the lfp_16s preset; tesla_model_s is sized by `modules`",
                    ));
                }
                let Some(modules) = system.modules else {
                    return Err(self.value_error(
                        "system.modules",
                        format!(
                            "missing: the tesla_model_s preset needs `modules` (1..={MAX_MODULES})"
                        ),
                    ));
                };
                if !(1..=MAX_MODULES).contains(&modules) {
                    return Err(self.value_error(
                        "system.modules",
                        format!("{modules} is outside 1..={MAX_MODULES}"),
                    ));
                }
                Config::tesla_model_s(modules)
            }
            PresetName::Lfp16s => {
                if system.modules.is_some() {
                    return Err(self.key_error(
                        "system.modules",
                        "belongs to the tesla_model_s preset; lfp_16s is sized by `capacity_ah`",
                    ));
                }
                let Some(capacity) = system.capacity_ah else {
                    return Err(self.value_error(
                        "system.capacity_ah",
                        "missing: the lfp_16s preset needs `capacity_ah`",
                    ));
                };
                if capacity == 0 {
                    return Err(self.value_error("system.capacity_ah", "0 must be greater than 0"));
                }
                Config::lfp_16s(capacity)
            }
        };
        if system.overrides.is_empty() {
            preset.validate().map_err(|e| {
                self.value_error("system", format!("the preset itself is not valid: {e}"))
            })?;
            return Ok(preset);
        }
        let base = toml::Table::try_from(&preset).map_err(|e| {
            self.value_error(
                "system",
                format!("internal error: the preset does not serialise: {e}"),
            )
        })?;
        let mut merged = base.clone();
        self.merge(&mut merged, &system.overrides, "system.overrides")?;
        let config: Config = match toml::Value::Table(merged).try_into() {
            Ok(config) => config,
            Err(error) => return Err(self.blame_override(&base, &system.overrides, &error)),
        };
        config.validate().map_err(|e| {
            let field = match e.part {
                Some(part) => format!("system.overrides.{}.{part}", e.field),
                None => format!("system.overrides.{}", e.field),
            };
            let text = e.to_string();
            let problem = text.split_once(": ").map_or(text.as_str(), |(_, p)| p);
            self.value_error(&field, problem)
        })?;
        Ok(config)
    }

    /// Deep-merges `over` into `base`, refusing keys the preset does not have and values of
    /// another type than the preset's.
    fn merge(&self, base: &mut toml::Table, over: &toml::Table, path: &str) -> Checked<()> {
        let thresholds = base.contains_key("hysteresis") && base.contains_key("debounce_ms");
        for (key, value) in over {
            let here = format!("{path}.{key}");
            match base.get_mut(key) {
                Some(toml::Value::Table(inner)) => {
                    let toml::Value::Table(value) = value else {
                        let keys: Vec<&str> = inner.keys().map(String::as_str).collect();
                        return Err(self.value_error(
                            &here,
                            format!(
                                "is a table of settings ({}), not {} {}",
                                keys.join(", "),
                                article(value.type_str()),
                                value.type_str()
                            ),
                        ));
                    };
                    self.merge(inner, value, &here)?;
                }
                Some(existing) => {
                    if !existing.same_type(value) {
                        return Err(self.value_error(
                            &here,
                            format!(
                                "expected {} {} (the preset has {existing}), found {} {}",
                                article(existing.type_str()),
                                existing.type_str(),
                                article(value.type_str()),
                                value.type_str()
                            ),
                        ));
                    }
                    *existing = value.clone();
                }
                None if thresholds && TIERS.contains(&key.as_str()) => {
                    if !value.is_integer() {
                        return Err(self.value_error(
                            &here,
                            format!(
                                "expected an integer, found {} {}",
                                article(value.type_str()),
                                value.type_str()
                            ),
                        ));
                    }
                    base.insert(key.clone(), value.clone());
                }
                None => {
                    let mut valid: Vec<&str> = base.keys().map(String::as_str).collect();
                    if thresholds {
                        valid.extend(TIERS.iter().filter(|t| !base.contains_key(**t)));
                        valid.sort_unstable();
                    }
                    return Err(self.key_error(
                        &here,
                        format!("unknown config field `{key}`; valid here: {}", valid.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The merged table did not deserialise (a value out of its type's range): find the
    /// override that does it by applying each alone.
    fn blame_override(
        &self,
        base: &toml::Table,
        overrides: &toml::Table,
        error: &toml::de::Error,
    ) -> LoadError {
        let mut leaves = Vec::new();
        collect_leaves(overrides, &mut Vec::new(), &mut leaves);
        for (path, value) in leaves {
            let mut single = base.clone();
            set_leaf(&mut single, &path, value.clone());
            if let Err(e) = toml::Value::Table(single).try_into::<Config>() {
                let field = format!("system.overrides.{}", path.join("."));
                return self.value_error(&field, one_line(e.message()));
            }
        }
        self.value_error("system.overrides", one_line(error.message()))
    }

    // -- plant -------------------------------------------------------------------------------

    fn plant(&self, file: &ScenarioFile, config: &Config) -> Checked<PlantSpec> {
        let system = &file.system;
        let p = &file.plant;
        let (mut cell, series_per_module, modules, sensors_per_module) = match system.preset {
            PresetName::TeslaModelS => {
                (CellParams::tesla_group(), 6u16, system.modules.unwrap_or(1), 2u16)
            }
            PresetName::Lfp16s => {
                (CellParams::lfp_cell(f64::from(system.capacity_ah.unwrap_or(1))), 16, 1, 4)
            }
        };
        let c = &p.cell;
        if let Some(v) = c.capacity_ah {
            cell.capacity_ah = self.real("plant.cell.capacity_ah", v, Want::Positive)?;
        }
        if let Some(v) = c.r0_mohm {
            cell.r0_ohm = self.real("plant.cell.r0_mohm", v, Want::Positive)? / 1_000.0;
        }
        if let Some(v) = c.r1_mohm {
            cell.r1_ohm = self.real("plant.cell.r1_mohm", v, Want::NonNegative)? / 1_000.0;
        }
        if let Some(v) = c.tau_s {
            cell.tau1_s = self.real("plant.cell.tau_s", v, Want::Positive)?;
        }
        if let Some(v) = c.self_discharge_pct_per_month {
            let field = "plant.cell.self_discharge_pct_per_month";
            cell.self_discharge_per_day =
                self.real(field, v, Want::Between(0.0, 100.0))? / 100.0 / 30.0;
        }
        if let Some(v) = c.coulombic_efficiency {
            cell.coulombic_efficiency =
                self.real("plant.cell.coulombic_efficiency", v, Want::Fraction)?;
        }
        let spread = Spread {
            capacity_pct: self.real(
                "plant.spread.capacity_pct",
                p.spread.capacity_pct,
                Want::Between(0.0, 30.0),
            )?,
            resistance_pct: self.real(
                "plant.spread.resistance_pct",
                p.spread.resistance_pct,
                Want::Between(0.0, 30.0),
            )?,
            soc_pct: self.real(
                "plant.spread.soc_pct",
                p.spread.soc_pct,
                Want::Between(0.0, 50.0),
            )?,
        };
        let (low, high) = TEMPERATURE_RANGE;
        let ambient_c = self.real("plant.ambient_c", p.ambient_c, Want::Between(low, high))?;
        let initial_temp_c = match p.initial_temp_c {
            Some(t) => self.real("plant.initial_temp_c", t, Want::Between(low, high))?,
            None => ambient_c,
        };
        let initial_soc = self.real("plant.initial_soc", p.initial_soc, Want::Between(0.0, 1.0))?;
        let bus = BusParams {
            capacitance_f: self.real(
                "plant.bus.capacitance_uf",
                p.bus.capacitance_uf,
                Want::Positive,
            )? * 1e-6,
            precharge_ohm: self.real(
                "plant.bus.precharge_ohm",
                p.bus.precharge_ohm,
                Want::Positive,
            )?,
            bleed_ohm: self.real("plant.bus.bleed_ohm", p.bus.bleed_ohm, Want::Positive)?,
            short_ohm: match p.bus.short_ohm {
                Some(ohm) => Some(self.real("plant.bus.short_ohm", ohm, Want::Positive)?),
                None => None,
            },
        };
        let groups = u32::from(series_per_module) * u32::from(modules);
        if groups != u32::from(config.cell_count) {
            return Err(self.value_error(
                &size_field(system, "cell_count"),
                format!(
                    "the plant has {groups} series groups ({modules} x {series_per_module}) but the config supervises {}; the preset sets \
                     `cell_count` from its size, leave it as it is",
                    config.cell_count
                ),
            ));
        }
        let sensors = u32::from(sensors_per_module) * u32::from(modules);
        if sensors != u32::from(config.temperature_count) {
            return Err(self.value_error(
                &size_field(system, "temperature_count"),
                format!(
                    "the plant has {sensors} temperature sensors ({sensors_per_module} per \
                     module) but the config expects {}; the preset sets `temperature_count` \
                     from its size, leave it as it is",
                    config.temperature_count
                ),
            ));
        }
        Ok(PlantSpec {
            cell,
            series_per_module,
            modules,
            strings: 1,
            sensors_per_module,
            initial_soc,
            initial_temp_c,
            ambient_c,
            spread,
            bus,
        })
    }

    fn sensors_and_inverter(&self, file: &ScenarioFile) -> Checked<()> {
        let s = &file.sensors;
        if s.measure_period.micros() == 0 {
            return Err(self.value_error("sensors.measure_period", "must be longer than 0s"));
        }
        self.real("sensors.cell_noise_mv", s.cell_noise_mv, Want::NonNegative)?;
        self.real("sensors.temperature_noise_c", s.temperature_noise_c, Want::NonNegative)?;
        self.real("sensors.current_offset_a", s.current_offset_a, Want::Finite)?;
        self.real("sensors.current_gain_pct", s.current_gain_pct, Want::Between(-50.0, 50.0))?;
        self.real("sensors.current_noise_a", s.current_noise_a, Want::NonNegative)?;
        let inv = &file.inverter;
        self.real("inverter.max_charge_a", inv.max_charge_a, Want::NonNegative)?;
        self.real("inverter.max_discharge_a", inv.max_discharge_a, Want::NonNegative)?;
        Ok(())
    }

    // -- timeline ----------------------------------------------------------------------------

    fn moment(
        &self,
        i: usize,
        entry: &TimelineEntry,
        file: &ScenarioFile,
        config: &Config,
        base_dir: &Path,
    ) -> Checked<Moment> {
        let here = format!("timeline[{i}]");
        let duration = file.duration.0;
        if entry.at.0 > duration {
            return Err(self.value_error(
                &format!("{here}.at"),
                format!("{} is after the end of the run (duration = {})", entry.at, file.duration),
            ));
        }
        if entry.command.is_none()
            && entry.load.is_none()
            && entry.fault.is_none()
            && entry.ambient_c.is_none()
            && entry.note.is_none()
        {
            return Err(self.value_error(
                &here,
                format!(
                    "nothing happens at {}: give a `command`, `load`, `fault`, `ambient_c` or \
                     `note`",
                    entry.at
                ),
            ));
        }
        let load = match &entry.load {
            Some(spec) => Some(
                Profile::with_seed(spec, base_dir, file.seed)
                    .map_err(|m| self.value_error(&format!("{here}.load"), m))?,
            ),
            None => None,
        };
        if let Some(fault) = &entry.fault {
            self.fault(&format!("{here}.fault"), fault, config.cell_count)?;
        }
        let ambient_c = match entry.ambient_c {
            Some(t) => {
                let (low, high) = TEMPERATURE_RANGE;
                Some(self.real(&format!("{here}.ambient_c"), t, Want::Between(low, high))?)
            }
            None => None,
        };
        Ok(Moment {
            at: entry.at.0,
            line: self.line_of(&here),
            command: entry.command.map(command),
            load,
            fault: entry.fault,
            ambient_c,
            note: entry.note.clone(),
        })
    }

    fn fault(&self, here: &str, fault: &FaultSpec, cells: u16) -> Checked<()> {
        let field = |name: &str| format!("{here}.{name}");
        let cell_index = |cell: u16| -> Checked<()> {
            if cell < cells {
                Ok(())
            } else {
                Err(self.value_error(
                    &field("cell"),
                    format!(
                        "cell {cell} does not exist: this pack has {cells} series groups, \
                         numbered 0..={}",
                        cells.saturating_sub(1)
                    ),
                ))
            }
        };
        match *fault {
            FaultSpec::BusShort { ohms } => {
                self.real(&field("ohms"), ohms, Want::Positive)?;
            }
            FaultSpec::CurrentOffset { amps } => {
                self.real(&field("amps"), amps, Want::Finite)?;
            }
            FaultSpec::CellLeak { cell, amps } => {
                cell_index(cell)?;
                self.real(&field("amps"), amps, Want::NonNegative)?;
            }
            FaultSpec::CellHeater { cell, watts } => {
                cell_index(cell)?;
                self.real(&field("watts"), watts, Want::NonNegative)?;
            }
            FaultSpec::CellSenseDrift { cell, mv_per_min } => {
                cell_index(cell)?;
                self.real(&field("mv_per_min"), mv_per_min, Want::Finite)?;
            }
            FaultSpec::BusShortCleared
            | FaultSpec::SensorSilent { .. }
            | FaultSpec::SensorRestored { .. }
            | FaultSpec::ContactorWeld { .. }
            | FaultSpec::HardwareFault { .. } => {}
        }
        Ok(())
    }

    // -- expectations ------------------------------------------------------------------------

    fn expectation(&self, i: usize, spec: &ExpectSpec, duration: Duration) -> Checked<Expectation> {
        let here = format!("expect[{i}]");
        let field = |name: &str| format!("{here}.{name}");
        let kind = snake(spec.kind);
        let allowed: &[&str] = match spec.kind {
            ExpectKind::Within => {
                &["event", "rule", "tier", "how", "cause", "command", "after", "limit"]
            }
            ExpectKind::Never => &[
                "event", "rule", "tier", "how", "cause", "command", "signal", "above", "below",
                "from", "until",
            ],
            ExpectKind::By => &["event", "rule", "tier", "how", "cause", "command", "by"],
            ExpectKind::Count => {
                &["event", "rule", "tier", "how", "cause", "command", "count", "min", "max"]
            }
            ExpectKind::AtEnd => &["state", "latched", "signal", "above", "below"],
        };
        let present = present_fields(spec);
        if let Some(out_of_place) = present.iter().find(|f| !allowed.contains(f)) {
            let takes: Vec<String> = allowed.iter().map(|f| format!("`{f}`")).collect();
            return Err(self.key_error(
                &field(out_of_place),
                format!(
                    "does not apply to {} `{kind}` expectation; it takes {}",
                    article(&kind),
                    takes.join(", ")
                ),
            ));
        }
        let missing = |name: &str, needs: &str| {
            self.value_error(
                &field(name),
                format!("missing: {} `{kind}` expectation needs {needs}", article(&kind)),
            )
        };
        let parts = FilterParts {
            event: spec.event,
            rule: spec.rule.as_deref(),
            tier: spec.tier,
            how: spec.how,
            cause: spec.cause,
            command: spec.command,
        };
        let within_run = |name: &str, span: Span| -> Checked<Duration> {
            if span.0 > duration {
                Err(self.value_error(
                    &field(name),
                    format!("{span} is after the end of the run (duration = {})", Span(duration)),
                ))
            } else {
                Ok(span.0)
            }
        };
        let (check, label) = match spec.kind {
            ExpectKind::Within => {
                let needs = "`event`, `after` and `limit`";
                if spec.event.is_none() {
                    return Err(missing("event", needs));
                }
                let Some(after) = &spec.after else { return Err(missing("after", needs)) };
                let Some(limit) = spec.limit else { return Err(missing("limit", needs)) };
                let event = self.event_filter(&here, &parts)?;
                let after = self.trigger(&field("after"), after)?;
                let label = format!(
                    "{} within {limit} after {}",
                    filter_label(&event),
                    trigger_label(&after)
                );
                (Check::Within { after, event, limit: limit.0 }, label)
            }
            ExpectKind::Never => {
                let from = match spec.from {
                    Some(from) => within_run("from", from)?,
                    None => Duration::ZERO,
                };
                let until = match spec.until {
                    Some(until) => Some(within_run("until", until)?),
                    None => None,
                };
                if let Some(until) = until
                    && until < from
                {
                    return Err(self.value_error(
                        &field("until"),
                        format!("{} comes before `from` = {}", Span(until), Span(from)),
                    ));
                }
                let window = match (spec.from, spec.until) {
                    (None, None) => String::new(),
                    (Some(f), None) => format!(" from {f}"),
                    (None, Some(u)) => format!(" until {u}"),
                    (Some(f), Some(u)) => format!(" from {f} until {u}"),
                };
                match (spec.event, spec.signal) {
                    (Some(_), Some(_)) => {
                        return Err(self.key_error(
                            &field("signal"),
                            "give either `event` or `signal`, not both",
                        ));
                    }
                    (None, None) => return Err(missing("event", "`event` or `signal`")),
                    (Some(_), None) => {
                        for name in ["above", "below"] {
                            if present.contains(&name) {
                                return Err(self.key_error(
                                    &field(name),
                                    format!(
                                        "`{name}` compares a `signal`; this expectation watches \
                                         an `event`"
                                    ),
                                ));
                            }
                        }
                        let event = self.event_filter(&here, &parts)?;
                        let label = format!("never {}{window}", filter_label(&event));
                        (Check::NeverEvent { event, from, until }, label)
                    }
                    (None, Some(signal)) => {
                        self.no_filters(&here, &present)?;
                        let condition = self.condition(&here, signal, spec.above, spec.below)?;
                        let label = format!("never {}{window}", condition_label(&condition));
                        (Check::NeverSignal { condition, from, until }, label)
                    }
                }
            }
            ExpectKind::By => {
                let needs = "`event` and `by`";
                if spec.event.is_none() {
                    return Err(missing("event", needs));
                }
                let Some(by) = spec.by else { return Err(missing("by", needs)) };
                let by = within_run("by", by)?;
                let event = self.event_filter(&here, &parts)?;
                let label = format!("{} by {}", filter_label(&event), Span(by));
                (Check::By { event, by }, label)
            }
            ExpectKind::Count => {
                let needs = "`event` and `count` (or `min` and/or `max`)";
                if spec.event.is_none() {
                    return Err(missing("event", needs));
                }
                let (min, max) = match (spec.count, spec.min, spec.max) {
                    (Some(_), Some(_), _) => {
                        return Err(self.key_error(
                            &field("min"),
                            "give either `count` or `min`/`max`, not both",
                        ));
                    }
                    (Some(_), None, Some(_)) => {
                        return Err(self.key_error(
                            &field("max"),
                            "give either `count` or `min`/`max`, not both",
                        ));
                    }
                    (Some(count), None, None) => (count, count),
                    (None, None, None) => return Err(missing("count", needs)),
                    (None, min, max) => (min.unwrap_or(0), max.unwrap_or(u32::MAX)),
                };
                if min > max {
                    return Err(
                        self.value_error(&field("max"), format!("{max} is below `min` = {min}"))
                    );
                }
                let event = self.event_filter(&here, &parts)?;
                let times =
                    |n: u32| if n == 1 { "1 time".to_owned() } else { format!("{n} times") };
                let how_often = match (spec.count, spec.min, spec.max) {
                    (Some(n), _, _) => format!("exactly {}", times(n)),
                    (None, Some(_), Some(_)) => format!("between {min} and {}", times(max)),
                    (None, Some(_), None) => format!("at least {}", times(min)),
                    (None, None, _) => format!("at most {}", times(max)),
                };
                let label = format!("{} {how_often}", filter_label(&event));
                (Check::Count { event, min, max }, label)
            }
            ExpectKind::AtEnd => {
                let chosen: Vec<&str> = ["state", "latched", "signal"]
                    .into_iter()
                    .filter(|f| present.contains(f))
                    .collect();
                if chosen.len() > 1 {
                    return Err(self.key_error(
                        &field(chosen[1]),
                        format!(
                            "give one of `state`, `latched` or `signal`, not both `{}` and `{}`",
                            chosen[0], chosen[1]
                        ),
                    ));
                }
                if let Some(state) = spec.state {
                    self.no_comparison(&here, &present, "state")?;
                    (Check::AtEndState(state), format!("at end: {}", state_label(state)))
                } else if let Some(latched) = &spec.latched {
                    self.no_comparison(&here, &present, "latched")?;
                    if latched == "none" {
                        (Check::AtEndLatched(None), "at end: no fault latched".to_owned())
                    } else {
                        let rule = self.rule(&field("latched"), latched)?;
                        (Check::AtEndLatched(Some(rule)), format!("at end: {latched} latched"))
                    }
                } else if let Some(signal) = spec.signal {
                    let condition = self.condition(&here, signal, spec.above, spec.below)?;
                    (
                        Check::AtEndSignal(condition),
                        format!("at end: {}", condition_label(&condition)),
                    )
                } else {
                    return Err(missing("state", "one of `state`, `latched` or `signal`"));
                }
            }
        };
        let label = match &spec.name {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => label,
        };
        Ok(Expectation { label, line: self.line_of(&here), check })
    }

    /// Filters are only for events.
    fn no_filters(&self, here: &str, present: &[&str]) -> Checked<()> {
        match present.iter().find(|f| FILTERS.contains(f)) {
            Some(name) => Err(self.key_error(
                &format!("{here}.{name}"),
                format!("`{name}` filters an `event`; this expectation watches a `signal`"),
            )),
            None => Ok(()),
        }
    }

    /// `above`/`below` only go with `signal`.
    fn no_comparison(&self, here: &str, present: &[&str], chosen: &str) -> Checked<()> {
        match present.iter().find(|f| **f == "above" || **f == "below") {
            Some(name) => Err(self.key_error(
                &format!("{here}.{name}"),
                format!("`{name}` compares a `signal`; this expectation checks `{chosen}`"),
            )),
            None => Ok(()),
        }
    }

    fn condition(
        &self,
        here: &str,
        signal: Signal,
        above: Option<f64>,
        below: Option<f64>,
    ) -> Checked<Condition> {
        let compare = match (above, below) {
            (Some(_), Some(_)) => {
                return Err(self.key_error(
                    &format!("{here}.below"),
                    "give either `above` or `below`, not both",
                ));
            }
            (None, None) => {
                return Err(self.value_error(
                    &format!("{here}.above"),
                    "missing: `signal` needs `above` or `below`",
                ));
            }
            (Some(v), None) => {
                Compare::Above(self.real(&format!("{here}.above"), v, Want::Finite)?)
            }
            (None, Some(v)) => {
                Compare::Below(self.real(&format!("{here}.below"), v, Want::Finite)?)
            }
        };
        Ok(Condition { signal, compare })
    }

    fn trigger(&self, here: &str, spec: &TriggerSpec) -> Checked<Trigger> {
        let mut present = Vec::new();
        for (name, set) in [
            ("rule", spec.rule.is_some()),
            ("tier", spec.tier.is_some()),
            ("how", spec.how.is_some()),
            ("cause", spec.cause.is_some()),
            ("command", spec.command.is_some()),
            ("above", spec.above.is_some()),
            ("below", spec.below.is_some()),
        ] {
            if set {
                present.push(name);
            }
        }
        match (spec.signal, spec.event) {
            (Some(_), Some(_)) => Err(self
                .key_error(&format!("{here}.event"), "give either `signal` or `event`, not both")),
            (None, None) => Err(self.value_error(
                &format!("{here}.signal"),
                "missing: `after` needs a `signal` (with `above` or `below`) or an `event`",
            )),
            (Some(signal), None) => {
                self.no_filters(here, &present)?;
                Ok(Trigger::Signal(self.condition(here, signal, spec.above, spec.below)?))
            }
            (None, Some(_)) => {
                self.no_comparison(here, &present, "an `event`")?;
                let parts = FilterParts {
                    event: spec.event,
                    rule: spec.rule.as_deref(),
                    tier: spec.tier,
                    how: spec.how,
                    cause: spec.cause,
                    command: spec.command,
                };
                Ok(Trigger::Event(self.event_filter(here, &parts)?))
            }
        }
    }

    fn rule(&self, field: &str, name: &str) -> Checked<RuleId> {
        RuleId::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = RuleId::ALL.iter().map(|r| r.name()).collect();
            self.value_error(
                field,
                format!("unknown rule `{name}`, expected one of {}", names.join(", ")),
            )
        })
    }

    /// The event and its filters, each filter checked against the event kind.
    fn event_filter(&self, here: &str, parts: &FilterParts<'_>) -> Checked<EventFilter> {
        let Some(event) = parts.event else {
            return Err(self.value_error(&format!("{here}.event"), "missing"));
        };
        let fault_event = matches!(
            event,
            EventName::FaultRaised
                | EventName::FaultReleased
                | EventName::FaultCleared
                | EventName::FaultClearRefused
        );
        let misplaced = |name: &str, belongs: &str| {
            self.key_error(
                &format!("{here}.{name}"),
                format!("`{name}` filters {belongs} events, not `{}`", snake(event)),
            )
        };
        let fault_events = "`fault_raised`, `fault_released`, `fault_cleared` and \
                            `fault_clear_refused`";
        let rule = match parts.rule {
            Some(_) if !fault_event => return Err(misplaced("rule", fault_events)),
            Some(name) => Some(self.rule(&format!("{here}.rule"), name)?),
            None => None,
        };
        if parts.tier.is_some() && !fault_event {
            return Err(misplaced("tier", fault_events));
        }
        if parts.how.is_some() && event != EventName::ContactorsOpen {
            return Err(misplaced("how", "`contactors_open`"));
        }
        if parts.cause.is_some() && event != EventName::PrechargeFailed {
            return Err(misplaced("cause", "`precharge_failed`"));
        }
        if parts.command.is_some() && event != EventName::Command {
            return Err(misplaced("command", "`command`"));
        }
        Ok(EventFilter {
            event,
            rule,
            tier: parts.tier.map(tier),
            how: parts.how,
            cause: parts.cause,
            command: parts.command.map(command),
        })
    }
}

/// `system.overrides.<key>` when the file overrides it, else `system`.
fn size_field(system: &SystemSpec, key: &str) -> String {
    if system.overrides.contains_key(key) {
        format!("system.overrides.{key}")
    } else {
        "system".to_owned()
    }
}

fn article(type_name: &str) -> &'static str {
    if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" }
}

/// Paths and values of the non-table entries of `table`.
fn collect_leaves(
    table: &toml::Table,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, toml::Value)>,
) {
    for (key, value) in table {
        path.push(key.clone());
        match value {
            toml::Value::Table(inner) => collect_leaves(inner, path, out),
            other => out.push((path.clone(), other.clone())),
        }
        path.pop();
    }
}

fn set_leaf(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [key] => {
            table.insert(key.clone(), value);
        }
        [key, rest @ ..] => {
            if let Some(toml::Value::Table(inner)) = table.get_mut(key) {
                set_leaf(inner, rest, value);
            }
        }
    }
}

/// The event part of an expectation or trigger.
struct FilterParts<'s> {
    event: Option<EventName>,
    rule: Option<&'s str>,
    tier: Option<TierName>,
    how: Option<OpenHow>,
    cause: Option<CauseName>,
    command: Option<CommandName>,
}

/// The optional fields of an expectation that are set, in the schema's order.
fn present_fields(spec: &ExpectSpec) -> Vec<&'static str> {
    let set = [
        ("event", spec.event.is_some()),
        ("rule", spec.rule.is_some()),
        ("tier", spec.tier.is_some()),
        ("how", spec.how.is_some()),
        ("cause", spec.cause.is_some()),
        ("command", spec.command.is_some()),
        ("signal", spec.signal.is_some()),
        ("above", spec.above.is_some()),
        ("below", spec.below.is_some()),
        ("after", spec.after.is_some()),
        ("limit", spec.limit.is_some()),
        ("by", spec.by.is_some()),
        ("count", spec.count.is_some()),
        ("min", spec.min.is_some()),
        ("max", spec.max.is_some()),
        ("state", spec.state.is_some()),
        ("latched", spec.latched.is_some()),
        ("from", spec.from.is_some()),
        ("until", spec.until.is_some()),
    ];
    set.into_iter().filter(|(_, is_set)| *is_set).map(|(name, _)| name).collect()
}

fn command(name: CommandName) -> Command {
    match name {
        CommandName::Start => Command::Start,
        CommandName::Stop => Command::Stop,
        CommandName::EmergencyStop => Command::EmergencyStop,
        CommandName::ClearFaults => Command::ClearFaults,
    }
}

fn tier(name: TierName) -> Tier {
    match name {
        TierName::Operating => Tier::Operating,
        TierName::Recommended => Tier::Recommended,
        TierName::Maximum => Tier::Maximum,
    }
}

/// `ContactorsOpen` as `contactors_open`: the names scenario files use.
fn snake(value: impl fmt::Debug) -> String {
    let debug = format!("{value:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn filter_label(filter: &EventFilter) -> String {
    let mut parts = Vec::new();
    if let Some(rule) = filter.rule {
        parts.push(format!("rule = {}", rule.name()));
    }
    if let Some(tier) = filter.tier {
        parts.push(format!("tier = {}", tier.name()));
    }
    if let Some(how) = filter.how {
        parts.push(format!("how = {}", snake(how)));
    }
    if let Some(cause) = filter.cause {
        parts.push(format!("cause = {}", snake(cause)));
    }
    if let Some(command) = filter.command {
        parts.push(format!("command = {}", snake(command)));
    }
    if parts.is_empty() {
        snake(filter.event)
    } else {
        format!("{} ({})", snake(filter.event), parts.join(", "))
    }
}

fn condition_label(condition: &Condition) -> String {
    match condition.compare {
        Compare::Above(v) => format!("{} > {v}", snake(condition.signal)),
        Compare::Below(v) => format!("{} < {v}", snake(condition.signal)),
    }
}

fn trigger_label(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Signal(condition) => condition_label(condition),
        Trigger::Event(filter) => filter_label(filter),
    }
}

fn state_label(state: StateName) -> String {
    format!("contactors {}", snake(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(position(text, 0), (1, 1));
        assert_eq!(position(text, 6), (2, 1));
        assert_eq!(position(text, 9), (2, 3)); // after the two-byte é
        assert_eq!(position(text, 8), (2, 2)); // inside é: moved back to its start
        assert_eq!(position(text, 999), (3, 1));
    }

    #[test]
    fn paths_split_into_steps() {
        assert_eq!(
            steps("timeline[2].fault.cell"),
            [Step::Key("timeline"), Step::Index(2), Step::Key("fault"), Step::Key("cell")]
        );
        assert_eq!(steps("a[1][x]"), [Step::Key("a"), Step::Index(1)]);
    }

    #[test]
    fn snake_names() {
        assert_eq!(snake(EventName::ContactorsOpen), "contactors_open");
        assert_eq!(snake(Signal::CellMvMax), "cell_mv_max");
    }
}
