//! The scenario file format, as serde types. Every table rejects unknown keys, so a typo is an
//! error with the file, line and key, not a silently ignored setting. `load.rs` turns these into
//! a checked [`Scenario`](super::Scenario); the format is documented in `scenarios/README.md`.

use serde::Deserialize;

use super::span::Span;
use crate::profile::ProfileSpec;

/// A whole scenario file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// One line saying what the scenario shows.
    pub name: String,
    /// Longer explanation, shown at the top of the report.
    #[serde(default)]
    pub description: String,
    /// Seed of every random choice in the run.
    pub seed: u64,
    /// Simulated time to run for.
    pub duration: Span,
    /// Our own pack and its controller. Optional only in a parallel system that has
    /// `[[can_packs]]`.
    pub system: Option<SystemSpec>,
    /// Initial state and physical parameters of the pack and the DC bus.
    #[serde(default)]
    pub plant: PlantSection,
    /// Measurement front end.
    #[serde(default)]
    pub sensors: SensorSection,
    /// The inverter on the DC bus (a single pack); a parallel system has `[[inverters]]`.
    pub inverter: Option<InverterSection>,
    /// Rack batteries with their own CAN BMS, in parallel with `[system]`.
    #[serde(default)]
    pub can_packs: Vec<super::parallel::CanPackEntry>,
    /// Inverters speaking CAN protocols, fed by the combiner.
    #[serde(default)]
    pub inverters: Vec<super::parallel::InverterEntry>,
    /// The combiner's settings (parallel systems only).
    pub combiner: Option<super::parallel::CombinerSection>,
    /// Cell voltages and temperatures measured by emulated module boards over their wire
    /// protocol instead of read directly from the plant.
    pub boards: Option<BoardsSection>,
    /// Things that happen at given times.
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// What must hold for the scenario to pass.
    #[serde(default)]
    pub expect: Vec<ExpectSpec>,
    /// What the run writes.
    #[serde(default)]
    pub output: OutputSection,
}

/// The core configuration preset, with overrides.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemSpec {
    /// `tesla_model_s` (needs `modules`) or `lfp_16s` (needs `capacity_ah`).
    pub preset: PresetName,
    /// Tesla Model S modules in series.
    pub modules: Option<u16>,
    /// Capacity of an LFP pack.
    pub capacity_ah: Option<u16>,
    /// Run the core's charge controller (the preset's `charge` section). `false` leaves
    /// protection's current limits alone and the inverter without a charge voltage limit.
    #[serde(default = "yes")]
    pub charge_control: bool,
    /// Run the core's SoC estimator (the preset's `soc` section).
    #[serde(default = "yes")]
    pub soc_estimate: bool,
    /// Start the SoC estimator from a persisted snapshot that claims this SoC (a fraction) with
    /// 95 % confidence, instead of from the rested OCV: a snapshot that has gone wrong.
    pub initial_soc_estimate: Option<f64>,
    /// Any field of the core `Config`, by its path, e.g.
    /// `protection.cell_over_voltage_mv.maximum = 4250` or `contactors.feedback.positive = true`.
    #[serde(default)]
    pub overrides: toml::Table,
}

/// Core configuration presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresetName {
    /// `Config::tesla_model_s(modules)`.
    TeslaModelS,
    /// `Config::lfp_16s(capacity_ah)`. (Renamed: serde's snake_case would make it `lfp16s`.)
    #[serde(rename = "lfp_16s")]
    Lfp16s,
}

/// Plant parameters. Cell parameters default to the preset's chemistry.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlantSection {
    /// Ambient temperature.
    #[serde(default = "twenty")]
    pub ambient_c: f64,
    /// Starting temperature of every cell; the ambient when left out.
    pub initial_temp_c: Option<f64>,
    /// Mean starting state of charge, 0 to 1.
    #[serde(default = "half")]
    pub initial_soc: f64,
    /// Cell-to-cell spread, one standard deviation in percent, drawn from the seed.
    #[serde(default)]
    pub spread: SpreadSpec,
    /// Cell parameters that differ from the chemistry's defaults.
    #[serde(default)]
    pub cell: CellOverrides,
    /// The DC bus between contactors and inverter.
    #[serde(default)]
    pub bus: BusSpec,
    /// Series groups that differ from the rest by fixed amounts, on top of the spread.
    #[serde(default)]
    pub outliers: Vec<OutlierSpec>,
}

impl Default for PlantSection {
    fn default() -> Self {
        PlantSection {
            ambient_c: twenty(),
            initial_temp_c: None,
            initial_soc: half(),
            spread: SpreadSpec::default(),
            cell: CellOverrides::default(),
            bus: BusSpec::default(),
            outliers: Vec::new(),
        }
    }
}

/// Cell-to-cell spread in percent (one standard deviation; draws are clipped at three).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpreadSpec {
    /// Capacity.
    #[serde(default)]
    pub capacity_pct: f64,
    /// Series and RC resistance.
    #[serde(default)]
    pub resistance_pct: f64,
    /// Initial state of charge, in percentage points.
    #[serde(default)]
    pub soc_pct: f64,
}

/// One `[[plant.outliers]]` entry: a series group unlike the others.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierSpec {
    /// The series group, from 0.
    pub cell: u16,
    /// Change of its capacity, percent of what it would otherwise have.
    #[serde(default)]
    pub capacity_pct: f64,
    /// Change of its series and RC resistance, percent.
    #[serde(default)]
    pub resistance_pct: f64,
    /// Added to its initial state of charge, percentage points.
    #[serde(default)]
    pub soc_pct: f64,
}

/// Overrides of one series group's parameters.
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellOverrides {
    /// Capacity of one series group.
    pub capacity_ah: Option<f64>,
    /// Series resistance of one group.
    pub r0_mohm: Option<f64>,
    /// RC-pair resistance of one group.
    pub r1_mohm: Option<f64>,
    /// RC-pair time constant.
    pub tau_s: Option<f64>,
    /// Self-discharge, percent of capacity per month.
    pub self_discharge_pct_per_month: Option<f64>,
    /// Charge that is stored per charge that flows in, 0 to 1.
    pub coulombic_efficiency: Option<f64>,
}

/// The DC bus.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSpec {
    /// Inverter DC-link capacitance.
    #[serde(default = "default_capacitance_uf")]
    pub capacitance_uf: f64,
    /// Precharge resistor.
    #[serde(default = "default_precharge_ohm")]
    pub precharge_ohm: f64,
    /// Inverter-side bleed resistor that discharges the DC link.
    #[serde(default = "default_bleed_ohm")]
    pub bleed_ohm: f64,
    /// A short circuit on the bus from the start, if any.
    pub short_ohm: Option<f64>,
    /// Another source holding the DC link at this voltage, if any (with `source_ohm`).
    pub source_v: Option<f64>,
    /// That source's series resistance.
    pub source_ohm: Option<f64>,
}

impl Default for BusSpec {
    fn default() -> Self {
        BusSpec {
            capacitance_uf: default_capacitance_uf(),
            precharge_ohm: default_precharge_ohm(),
            bleed_ohm: default_bleed_ohm(),
            short_ohm: None,
            source_v: None,
            source_ohm: None,
        }
    }
}

/// Measurement front end: what the core sees of the plant.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorSection {
    /// One full measurement cycle (cells, temperatures, current, voltages) every this long.
    #[serde(default = "default_measure_period")]
    pub measure_period: Span,
    /// Cell voltage measurement noise, one standard deviation.
    #[serde(default = "one")]
    pub cell_noise_mv: f64,
    /// Temperature measurement noise, one standard deviation.
    #[serde(default)]
    pub temperature_noise_c: f64,
    /// Current sensor offset.
    #[serde(default)]
    pub current_offset_a: f64,
    /// Current sensor gain error in percent.
    #[serde(default)]
    pub current_gain_pct: f64,
    /// Current sensor noise, one standard deviation.
    #[serde(default)]
    pub current_noise_a: f64,
}

impl Default for SensorSection {
    fn default() -> Self {
        SensorSection {
            measure_period: default_measure_period(),
            cell_noise_mv: one(),
            temperature_noise_c: 0.0,
            current_offset_a: 0.0,
            current_gain_pct: 0.0,
            current_noise_a: 0.0,
        }
    }
}

/// The inverter: draws or pushes the current its profile asks for while the contactors are
/// closed.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InverterSection {
    /// Whether it keeps its current inside the limits the core sends. A real inverter does;
    /// scenarios that test the core's last line of defence turn this off.
    #[serde(default = "yes")]
    pub obeys_limits: bool,
    /// Largest current it can charge with.
    #[serde(default = "default_inverter_a")]
    pub max_charge_a: f64,
    /// Largest current it can discharge with.
    #[serde(default = "default_inverter_a")]
    pub max_discharge_a: f64,
}

impl Default for InverterSection {
    fn default() -> Self {
        InverterSection {
            obeys_limits: true,
            max_charge_a: default_inverter_a(),
            max_discharge_a: default_inverter_a(),
        }
    }
}

/// Emulated module boards between the plant and the core.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardsSection {
    /// The kind of board; `tesla` (bq76PL536A boards on a 612500-baud ring, six cells and
    /// two thermistors each) is the only one so far.
    pub kind: BoardKind,
    /// The bus master starts a measurement cycle this often.
    #[serde(default = "default_scan_period")]
    pub scan_period: Span,
    /// Reads carry a CRC byte (pyBMS style) instead of none (TeslaBMS style).
    #[serde(default)]
    pub read_crc: bool,
    /// Resistance of each balance resistor; the bleed current is the cell voltage over it.
    #[serde(default = "default_balance_ohm")]
    pub balance_ohm: f64,
    /// Extra attempts per request after a bad or missing reply.
    #[serde(default = "default_retries")]
    pub retries: u8,
    /// Failed cycles in a row before a board is reported lost.
    #[serde(default = "default_lost_after")]
    pub lost_after: u8,
}

/// Kinds of module board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardKind {
    /// Tesla Model S module board.
    Tesla,
}

fn default_scan_period() -> Span {
    Span(cellwarden_core::Duration::from_millis(100))
}

fn default_balance_ohm() -> f64 {
    47.0
}

fn default_retries() -> u8 {
    2
}

fn default_lost_after() -> u8 {
    3
}

/// One moment of the timeline; any combination of the optional parts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    /// When, from the start of the run.
    pub at: Span,
    /// A command to the core.
    pub command: Option<CommandName>,
    /// Parallel systems: the rack (index into `[[can_packs]]`) a `start` or `stop` is for,
    /// instead of our own pack.
    pub can_pack: Option<u8>,
    /// The inverter's demand from now on.
    pub load: Option<ProfileSpec>,
    /// Something breaks (or is repaired).
    pub fault: Option<FaultSpec>,
    /// The ambient temperature changes.
    pub ambient_c: Option<f64>,
    /// Shown in the event log.
    pub note: Option<String>,
}

/// Commands, as written in scenario files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandName {
    /// `Command::Start`.
    Start,
    /// `Command::Stop`.
    Stop,
    /// `Command::EmergencyStop`.
    EmergencyStop,
    /// `Command::ClearFaults`.
    ClearFaults,
}

/// Fault injection.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FaultSpec {
    /// A short circuit of this resistance appears on the DC bus.
    BusShort {
        /// Resistance of the short.
        ohms: f64,
    },
    /// The bus short is removed.
    BusShortCleared,
    /// A measurement stops arriving at the core.
    SensorSilent {
        /// Which.
        sensor: SensorName,
    },
    /// A silent measurement arrives again.
    SensorRestored {
        /// Which.
        sensor: SensorName,
    },
    /// The current sensor's offset changes to this.
    CurrentOffset {
        /// New offset.
        amps: f64,
    },
    /// A contactor welds: it stays closed whatever its coil is told.
    ContactorWeld {
        /// Which.
        contactor: ContactorName,
    },
    /// A series group leaks this current (internal short, faulty balancing circuit).
    CellLeak {
        /// Series group index from 0.
        cell: u16,
        /// Leak current; 0 repairs it.
        amps: f64,
    },
    /// A series group is heated with this power (internal fault, hot spot); 0 stops it.
    CellHeater {
        /// Series group index from 0.
        cell: u16,
        /// Heating power.
        watts: f64,
    },
    /// The voltage measurement of one group drifts away from the truth (a failing sense wire or
    /// measurement board).
    CellSenseDrift {
        /// Series group index from 0.
        cell: u16,
        /// How fast the reading drifts, positive upwards.
        mv_per_min: f64,
    },
    /// The hardware fault line (module board comparator, short detector) changes.
    HardwareFault {
        /// Whether the line reports a fault.
        active: bool,
    },
    /// A module board corrupts one byte of each of its next `count` replies.
    BoardCorrupt {
        /// Board index from 0 (the board nearest the master).
        module: u8,
        /// Replies affected.
        count: u32,
    },
    /// A module board's next `count` replies vanish.
    BoardDrop {
        /// Board index from 0.
        module: u8,
        /// Replies affected.
        count: u32,
    },
    /// A module board's next `count` replies arrive late.
    BoardDelay {
        /// Board index from 0.
        module: u8,
        /// Replies affected.
        count: u32,
        /// Extra delay.
        delay: Span,
    },
    /// A module board stops answering (it still passes frames on round the ring).
    BoardSilent {
        /// Board index from 0.
        module: u8,
    },
    /// A module board's readings stop changing.
    BoardFrozen {
        /// Board index from 0.
        module: u8,
    },
    /// A silent or frozen module board works again.
    BoardRestored {
        /// Board index from 0.
        module: u8,
    },
    /// A CAN pack's BMS stops transmitting (it keeps protecting its cells).
    CanPackSilent {
        /// Index into `[[can_packs]]`.
        can_pack: u8,
    },
    /// A silent CAN pack's BMS transmits again.
    CanPackRestored {
        /// Index into `[[can_packs]]`.
        can_pack: u8,
    },
    /// A CAN pack's BMS starts sending wrong values (a corrupted firmware, a failed shunt); its
    /// own protection still works on the truth. With neither field it reports truthfully again.
    CanPackMisreports {
        /// Index into `[[can_packs]]`.
        can_pack: u8,
        /// It announces this charge voltage limit instead of its own, V.
        charge_voltage_v: Option<f64>,
        /// It reports its current wrongly.
        current: Option<CurrentLie>,
    },
    /// An inverter starts ignoring the limits it is sent.
    InverterIgnoresLimits {
        /// Index into `[[inverters]]`.
        inverter: u8,
    },
    /// An inverter keeps to its limits again.
    InverterObeysLimits {
        /// Index into `[[inverters]]`.
        inverter: u8,
    },
}

/// Measurements that can be silenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorName {
    /// Every cell voltage.
    Cells,
    /// Every temperature.
    Temperatures,
    /// The pack current.
    Current,
    /// The pack voltage.
    PackVoltage,
    /// The bus voltage.
    BusVoltage,
    /// Everything at once (the measurement board is gone).
    All,
    /// The hardware fault line (not part of `All`: it is a wire of its own).
    HardwareFaultLine,
}

/// Contactors, as written in scenario files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactorName {
    /// Negative main.
    Negative,
    /// Precharge relay.
    Precharge,
    /// Positive main.
    Positive,
}

/// One expectation. Which fields apply depends on `kind`; `load.rs` checks the combination and
/// names the field that is missing or out of place.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// What is checked.
    pub kind: ExpectKind,
    /// A description for the report; one is made up from the fields when left out.
    pub name: Option<String>,
    /// An event (see [`EventName`]); with `rule`, `tier`, `how`, `cause`, `command` as filters.
    pub event: Option<EventName>,
    /// Filter: the fault rule (snake_case `RuleId` name, e.g. `cell_over_voltage`).
    pub rule: Option<String>,
    /// Filter: the fault tier.
    pub tier: Option<TierName>,
    /// Filter: how the contactors opened.
    pub how: Option<OpenHow>,
    /// Filter: why a precharge attempt failed.
    pub cause: Option<CauseName>,
    /// Filter: which command.
    pub command: Option<CommandName>,
    /// A signal compared with `above` or `below` (for `never`, `at_end`).
    pub signal: Option<Signal>,
    /// The signal is above this (in the signal's unit).
    pub above: Option<f64>,
    /// The signal is below this.
    pub below: Option<f64>,
    /// `within`: the trigger that starts the clock.
    pub after: Option<TriggerSpec>,
    /// `within`: how long after the trigger the event may come.
    pub limit: Option<Span>,
    /// `by`: the event happens at or before this time.
    pub by: Option<Span>,
    /// `count`: exactly this many events.
    pub count: Option<u32>,
    /// `count`: at least this many.
    pub min: Option<u32>,
    /// `count`: at most this many.
    pub max: Option<u32>,
    /// `at_end`: the contactor sequence's final state.
    pub state: Option<StateName>,
    /// `at_end`: this rule is latched at the end (`none` for no latched fault).
    pub latched: Option<String>,
    /// `never`: only check from this time on.
    pub from: Option<Span>,
    /// `never`: only check up to this time.
    pub until: Option<Span>,
}

/// Expectation kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpectKind {
    /// `event` follows the first time `after` holds, within `limit`.
    Within,
    /// `event`, or `signal` above/below a value, never happens (in `from..until`).
    Never,
    /// `event` happens at or before `by`.
    By,
    /// `event` happens `count` times (or between `min` and `max`).
    Count,
    /// At the end of the run: `state`, `latched`, or `signal` above/below a value.
    AtEnd,
}

/// The trigger of a `within` expectation: a signal crossing or an event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// A signal...
    pub signal: Option<Signal>,
    /// ...going above this...
    pub above: Option<f64>,
    /// ...or below this.
    pub below: Option<f64>,
    /// Or an event, with the same filters as an expectation.
    pub event: Option<EventName>,
    /// Filter: rule.
    pub rule: Option<String>,
    /// Filter: tier.
    pub tier: Option<TierName>,
    /// Filter: how the contactors opened.
    pub how: Option<OpenHow>,
    /// Filter: why a precharge attempt failed.
    pub cause: Option<CauseName>,
    /// Filter: command.
    pub command: Option<CommandName>,
}

/// Events an expectation can refer to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    /// A timeline command was delivered (filter: `command`).
    Command,
    /// A timeline fault was injected (or repaired).
    FaultInjected,
    /// A `Start` could not begin closing yet.
    CloseBlocked,
    /// A precharge attempt began.
    PrechargeStarted,
    /// Precharge verified.
    PrechargeDone,
    /// A precharge attempt failed (filter: `cause`).
    PrechargeFailed,
    /// The contactors are closed.
    ContactorsClosed,
    /// A graceful stop began.
    Stopping,
    /// The contactors opened (filter: `how`).
    ContactorsOpen,
    /// A fault tier became active (filters: `rule`, `tier`).
    FaultRaised,
    /// A fault tier released by itself.
    FaultReleased,
    /// A latched fault was cleared.
    FaultCleared,
    /// A clear was refused.
    FaultClearRefused,
    /// The current limits changed.
    LimitsChanged,
    /// Parallel systems: a pack joined the bank.
    PackJoined,
    /// A pack was refused (voltage outside the join window).
    PackRefused,
    /// A pack left the bank.
    PackDropped,
    /// An inverter stayed over its limits long enough to be warned about.
    InverterWarned,
    /// An inverter is sent zero current because it does not obey.
    InverterZeroed,
    /// An inverter's disobedience made the combiner open every pack.
    SystemOpened,
    /// An inverter's keep-alive stopped.
    InverterMissing,
    /// A pack sent an implausible report and is treated as faulty.
    PackImplausible,
}

/// How a CAN pack misreports its current (`can_pack_misreports`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CurrentLie {
    /// It reports 0 A.
    Zero,
    /// It reports half its current.
    Halved,
    /// It reports its current with the wrong sign.
    Negated,
}

/// Fault tiers, as written in scenario files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierName {
    /// Maximum operating limit.
    Operating,
    /// Recommended safety limit.
    Recommended,
    /// Maximum safety limit.
    Maximum,
}

/// How the contactors opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenHow {
    /// Graceful, below the break current.
    Graceful,
    /// Graceful, at the deadline.
    GracefulDeadline,
    /// A maximum-safety fault.
    Emergency,
    /// An `EmergencyStop` command.
    EmergencyStop,
    /// A closing sequence was abandoned.
    Aborted,
}

/// Precharge failure causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CauseName {
    /// No voltage rise.
    NoVoltageRise,
    /// Too slow.
    TooSlow,
    /// Short.
    Short,
}

/// Final states of the contactor sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StateName {
    /// Everything open (including waiting to retry a precharge).
    Open,
    /// Closed (including a graceful stop in progress).
    Closed,
    /// Somewhere in the closing sequence.
    Closing,
}

/// Quantities an expectation can compare. Plant values are the truth, not what the core
/// measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Highest true cell (group) voltage, mV.
    CellMvMax,
    /// Lowest true cell voltage, mV.
    CellMvMin,
    /// Highest minus lowest true cell voltage, mV.
    CellSpreadMv,
    /// Hottest cell, °C.
    TempCMax,
    /// Coldest cell, °C.
    TempCMin,
    /// True pack current, A, positive when charging.
    CurrentA,
    /// Magnitude of the true pack current, A.
    CurrentAbsA,
    /// Pack terminal voltage, V.
    PackV,
    /// Bus voltage, V.
    BusV,
    /// Lowest cell state of charge, %.
    SocPctMin,
    /// Highest cell state of charge, %.
    SocPctMax,
    /// Charge current limit sent by the core, A.
    ChargeLimitA,
    /// Discharge current limit sent by the core, A.
    DischargeLimitA,
    /// 1 while both main contactors are physically closed, else 0.
    ContactorsClosed,
    /// 1 while a main contactor is commanded closed with a safety fault latched, else 0.
    ClosedWithLatchedFault,
    /// Parallel systems: packs on the bus (connected).
    PacksConnected,
    /// Parallel systems: the most any pack's current exceeds that pack's own limit in its
    /// direction, A (negative while every pack is inside its limit).
    PackOverLimitA,
    /// Parallel systems: the most any inverter's current exceeds the limit it was sent, A.
    InverterOverLimitA,
    /// Parallel systems: the lowest charge voltage limit any inverter believes (decoded from
    /// what it was sent), V; 1000 while none has one.
    InverterCvlV,
    /// Parallel systems: the most the charge voltage limit any inverter believes exceeds the
    /// lowest of the connected packs' own (true) charge voltage limits, V; −1000 while no
    /// inverter has one or no pack is connected.
    InverterCvlOverPackV,
    /// The core's SoC estimate (on the OCV table's scale), %; 0 before it starts.
    SocEstimatePct,
    /// How far the core's SoC estimate is from the true mean SoC, percentage points
    /// (magnitude); 0 before it starts.
    SocErrorPct,
}

/// What the run writes besides its report.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSection {
    /// One trace row every this long (events add rows of their own). Left out: one second, or
    /// longer where a long run would otherwise pass the trace's row limit.
    #[serde(default)]
    pub trace_interval: Option<Span>,
    /// Keep the event log in the report. Runs of many days can turn it off: the summary and
    /// the trace still have every figure.
    #[serde(default = "yes")]
    pub event_log: bool,
}

impl Default for OutputSection {
    fn default() -> Self {
        OutputSection { trace_interval: None, event_log: true }
    }
}

fn twenty() -> f64 {
    20.0
}
fn half() -> f64 {
    0.5
}
fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_capacitance_uf() -> f64 {
    2_000.0
}
fn default_precharge_ohm() -> f64 {
    50.0
}
fn default_bleed_ohm() -> f64 {
    10_000.0
}
fn default_inverter_a() -> f64 {
    200.0
}
fn default_measure_period() -> Span {
    Span(cellwarden_core::Duration::from_millis(100))
}
