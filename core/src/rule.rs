//! The rule table: every fault the core knows, with what it guards and whom it limits.
//!
//! Vocabulary: the rules, their tiers and where a fault was seen are named by actions, status,
//! configuration and protection alike, so this module imports nothing of the core but the
//! contactor names. Each rule's thresholds are read from a configuration in
//! `config/rules.rs`; protection evaluates them.

use crate::input::ContactorId;

/// Every protection rule. The order is the order of precedence when several rules bind a limit
/// equally.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleId {
    /// Highest cell voltage too high.
    CellOverVoltage,
    /// Lowest cell voltage too low.
    CellUnderVoltage,
    /// Pack voltage too high.
    PackOverVoltage,
    /// Pack voltage too low.
    PackUnderVoltage,
    /// Charge current too high.
    ChargeOverCurrent,
    /// Discharge current too high.
    DischargeOverCurrent,
    /// Too hot to charge.
    ChargeOverTemperature,
    /// Too cold to charge.
    ChargeUnderTemperature,
    /// Too hot to discharge (the outer window).
    DischargeOverTemperature,
    /// Too cold to discharge (the outer window).
    DischargeUnderTemperature,
    /// Highest minus lowest cell voltage too large. Its operating and recommended tiers restrict
    /// the direction that endangers the outlier (discharge for a low cell, charge for a high one;
    /// both when neither end stands out); its maximum tier opens the contactors.
    CellImbalance,
    /// Sum of cells disagrees with the pack voltage sensor.
    PackVoltageMismatch,
    /// A cell voltage is older than its freshness limit.
    CellVoltageStale,
    /// A temperature is older than its freshness limit.
    TemperatureStale,
    /// The current is older than its freshness limit.
    CurrentStale,
    /// The pack voltage is older than its freshness limit.
    PackVoltageStale,
    /// The bus voltage is older than its freshness limit while it is needed: while a close is
    /// requested or any contactor is commanded closed. It verifies the precharge and is the
    /// only view of the inverter side; a pack that is open and idle does not need it, so a bus
    /// sensor that goes quiet then latches nothing (closing then trips at once).
    BusVoltageStale,
    /// The hardware fault line is active.
    HardwareFault,
    /// A contactor reports closed although commanded open.
    ContactorWelded,
    /// A contactor reports open although commanded closed.
    ContactorMismatch,
    /// Precharge failed on every allowed attempt (value: the `PrechargeFailure` as a number).
    PrechargeFailed,
}

/// Number of rules.
pub const RULE_COUNT: usize = 21;

impl RuleId {
    /// All rules, in precedence order.
    pub const ALL: [RuleId; RULE_COUNT] = [
        RuleId::CellOverVoltage,
        RuleId::CellUnderVoltage,
        RuleId::PackOverVoltage,
        RuleId::PackUnderVoltage,
        RuleId::ChargeOverCurrent,
        RuleId::DischargeOverCurrent,
        RuleId::ChargeOverTemperature,
        RuleId::ChargeUnderTemperature,
        RuleId::DischargeOverTemperature,
        RuleId::DischargeUnderTemperature,
        RuleId::CellImbalance,
        RuleId::PackVoltageMismatch,
        RuleId::CellVoltageStale,
        RuleId::TemperatureStale,
        RuleId::CurrentStale,
        RuleId::PackVoltageStale,
        RuleId::BusVoltageStale,
        RuleId::HardwareFault,
        RuleId::ContactorWelded,
        RuleId::ContactorMismatch,
        RuleId::PrechargeFailed,
    ];

    /// The rule's stable snake_case name, as used in scenario files, logs and telemetry.
    pub const fn name(self) -> &'static str {
        self.spec().name
    }

    /// The rule with this [`RuleId::name`].
    pub fn from_name(name: &str) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Position in [`RuleId::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The rule's static description.
    pub const fn spec(self) -> &'static RuleSpec {
        &SPECS[self.index()]
    }
}

/// The three tiers of a rule, after foxBMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tier {
    /// Maximum operating limit: warn and derate the affected direction.
    Operating,
    /// Recommended safety limit: that direction's current limit to zero.
    Recommended,
    /// Maximum safety limit: open the contactors and latch.
    Maximum,
}

impl Tier {
    /// All tiers, mildest first.
    pub const ALL: [Tier; 3] = [Tier::Operating, Tier::Recommended, Tier::Maximum];

    /// The tier's stable name: `operating`, `recommended` or `maximum`.
    pub const fn name(self) -> &'static str {
        match self {
            Tier::Operating => "operating",
            Tier::Recommended => "recommended",
            Tier::Maximum => "maximum",
        }
    }
}

/// Which current direction a rule restricts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Charging only.
    Charge,
    /// Discharging only.
    Discharge,
    /// Both.
    Both,
}

impl Direction {
    /// Whether the rule restricts charging.
    pub const fn charge(self) -> bool {
        matches!(self, Direction::Charge | Direction::Both)
    }

    /// Whether the rule restricts discharging.
    pub const fn discharge(self) -> bool {
        matches!(self, Direction::Discharge | Direction::Both)
    }
}

/// Where a fault was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    /// The pack as a whole (pack voltage, current, plausibility).
    Pack,
    /// A cell, by series index from 0.
    Cell(u16),
    /// A temperature sensor, by index from 0.
    Sensor(u16),
    /// A contactor.
    Contactor(ContactorId),
}

/// Whether a threshold rule guards a maximum or a minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// Violated when the value rises above the threshold.
    High,
    /// Violated when the value falls below the threshold.
    Low,
}

/// How a rule is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A measured value against three-tier thresholds, with debounce and hysteresis.
    Threshold,
    /// The age of a measurement against its freshness limit.
    Freshness,
    /// Raised by an event (hardware line, contactor supervision, precharge); latched.
    Event,
}

/// The static description of one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleSpec {
    /// Stable name for logs and telemetry.
    pub name: &'static str,
    /// Config field holding its thresholds (threshold rules), or the freshness field.
    pub field: &'static str,
    /// The unit of the rule's values, for display.
    pub unit: &'static str,
    pub(crate) side: Side,
    /// Directions restricted by its operating and recommended tiers.
    pub direction: Direction,
    /// The maximum tier applies only while charging (the charge temperature window).
    pub maximum_only_while_charging: bool,
    /// A configuration must set its maximum tier.
    pub required: bool,
    /// How it is evaluated.
    pub kind: Kind,
}

const fn spec(
    name: &'static str,
    field: &'static str,
    unit: &'static str,
    side: Side,
    direction: Direction,
    kind: Kind,
) -> RuleSpec {
    RuleSpec {
        name,
        field,
        unit,
        side,
        direction,
        maximum_only_while_charging: false,
        required: matches!(kind, Kind::Threshold),
        kind,
    }
}

const fn charging_only(mut s: RuleSpec) -> RuleSpec {
    s.maximum_only_while_charging = true;
    s
}

const fn optional(mut s: RuleSpec) -> RuleSpec {
    s.required = false;
    s
}

use Direction::{Both, Charge, Discharge};
use Kind::{Event, Freshness, Threshold};
use Side::{High, Low};

static SPECS: [RuleSpec; RULE_COUNT] = [
    spec("cell_over_voltage", "protection.cell_over_voltage_mv", "mV", High, Charge, Threshold),
    spec("cell_under_voltage", "protection.cell_under_voltage_mv", "mV", Low, Discharge, Threshold),
    spec("pack_over_voltage", "protection.pack_over_voltage_mv", "mV", High, Charge, Threshold),
    spec("pack_under_voltage", "protection.pack_under_voltage_mv", "mV", Low, Discharge, Threshold),
    spec("charge_over_current", "protection.charge_over_current_ma", "mA", High, Charge, Threshold),
    spec(
        "discharge_over_current",
        "protection.discharge_over_current_ma",
        "mA",
        High,
        Discharge,
        Threshold,
    ),
    charging_only(spec(
        "charge_over_temperature",
        "protection.charge_over_temperature_dc",
        "dC",
        High,
        Charge,
        Threshold,
    )),
    charging_only(spec(
        "charge_under_temperature",
        "protection.charge_under_temperature_dc",
        "dC",
        Low,
        Charge,
        Threshold,
    )),
    spec(
        "discharge_over_temperature",
        "protection.discharge_over_temperature_dc",
        "dC",
        High,
        Discharge,
        Threshold,
    ),
    spec(
        "discharge_under_temperature",
        "protection.discharge_under_temperature_dc",
        "dC",
        Low,
        Discharge,
        Threshold,
    ),
    optional(spec("cell_imbalance", "protection.cell_imbalance_mv", "mV", High, Both, Threshold)),
    optional(spec(
        "pack_voltage_mismatch",
        "protection.pack_voltage_mismatch_mv",
        "mV",
        High,
        Both,
        Threshold,
    )),
    spec("cell_voltage_stale", "freshness.cell_voltage_ms", "ms", High, Both, Freshness),
    spec("temperature_stale", "freshness.temperature_ms", "ms", High, Both, Freshness),
    spec("current_stale", "freshness.current_ms", "ms", High, Both, Freshness),
    spec("pack_voltage_stale", "freshness.pack_voltage_ms", "ms", High, Both, Freshness),
    spec("bus_voltage_stale", "freshness.bus_voltage_ms", "ms", High, Both, Freshness),
    spec("hardware_fault", "", "", High, Both, Event),
    spec("contactor_welded", "contactors.feedback", "", High, Both, Event),
    spec("contactor_mismatch", "contactors.feedback", "", High, Both, Event),
    spec("precharge_failed", "contactors", "", High, Both, Event),
];
