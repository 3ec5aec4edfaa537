//! What a battery tells an inverter, in core units: the common ground of every inverter-side
//! protocol. The combiner produces a [`BatteryView`] per inverter; the CAN codecs
//! ([`proto::lv`](crate::proto::lv), [`proto::byd_can`](crate::proto::byd_can)) encode it, and
//! the reader of a CAN BMS decodes a pack's frames back into one.

use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};

/// One alarm or warning, as the fields of the SMA/Victron 0x35A frame name them. Pylontech's
/// 0x359 bits map onto the same set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alarm {
    /// Anything not covered by another field.
    General,
    /// Battery (cell or module) voltage high.
    HighVoltage,
    /// Battery (cell or module) voltage low.
    LowVoltage,
    /// Temperature high.
    HighTemperature,
    /// Temperature low.
    LowTemperature,
    /// Temperature high for charging.
    HighTemperatureCharge,
    /// Temperature low for charging.
    LowTemperatureCharge,
    /// Discharge current high.
    HighDischargeCurrent,
    /// Charge current high.
    HighChargeCurrent,
    /// Contactor problem.
    Contactor,
    /// Short circuit.
    ShortCircuit,
    /// BMS internal error or internal communication failure.
    BmsInternal,
    /// Cells out of balance.
    CellImbalance,
}

impl Alarm {
    /// Every alarm, in 0x35A field order.
    pub const ALL: [Alarm; 13] = [
        Alarm::General,
        Alarm::HighVoltage,
        Alarm::LowVoltage,
        Alarm::HighTemperature,
        Alarm::LowTemperature,
        Alarm::HighTemperatureCharge,
        Alarm::LowTemperatureCharge,
        Alarm::HighDischargeCurrent,
        Alarm::HighChargeCurrent,
        Alarm::Contactor,
        Alarm::ShortCircuit,
        Alarm::BmsInternal,
        Alarm::CellImbalance,
    ];

    /// Position in [`Alarm::ALL`], which is also the 0x35A field number.
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name with underscores, for logs and files.
    pub const fn name(self) -> &'static str {
        match self {
            Alarm::General => "general",
            Alarm::HighVoltage => "high_voltage",
            Alarm::LowVoltage => "low_voltage",
            Alarm::HighTemperature => "high_temperature",
            Alarm::LowTemperature => "low_temperature",
            Alarm::HighTemperatureCharge => "high_temperature_charge",
            Alarm::LowTemperatureCharge => "low_temperature_charge",
            Alarm::HighDischargeCurrent => "high_discharge_current",
            Alarm::HighChargeCurrent => "high_charge_current",
            Alarm::Contactor => "contactor",
            Alarm::ShortCircuit => "short_circuit",
            Alarm::BmsInternal => "bms_internal",
            Alarm::CellImbalance => "cell_imbalance",
        }
    }
}

/// A set of [`Alarm`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct AlarmSet(pub u16);

impl AlarmSet {
    /// No alarm.
    pub const EMPTY: AlarmSet = AlarmSet(0);

    /// The set with `alarm` added.
    #[must_use]
    pub const fn with(self, alarm: Alarm) -> AlarmSet {
        AlarmSet(self.0 | 1 << alarm as u16)
    }

    /// Adds `alarm`.
    pub fn insert(&mut self, alarm: Alarm) {
        *self = self.with(alarm);
    }

    /// Whether `alarm` is in the set.
    pub const fn contains(self, alarm: Alarm) -> bool {
        self.0 & (1 << alarm as u16) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    #[must_use]
    pub const fn union(self, other: AlarmSet) -> AlarmSet {
        AlarmSet(self.0 | other.0)
    }

    /// The alarms in the set, in [`Alarm::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Alarm> {
        Alarm::ALL.into_iter().filter(move |a| self.contains(*a))
    }
}

/// Everything a battery says about itself to an inverter. Currents and limits are magnitudes
/// except [`current_ma`](BatteryView::current_ma), which is positive when charging.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BatteryView {
    /// Charge voltage limit (CVL): the inverter must not charge above it.
    pub charge_voltage_mv: MilliVolts,
    /// Discharge voltage limit (DVL): the inverter must not discharge below it.
    pub discharge_voltage_mv: MilliVolts,
    /// Largest charge current allowed (CCL), magnitude.
    pub charge_limit_ma: MilliAmps,
    /// Largest discharge current allowed (DCL), magnitude.
    pub discharge_limit_ma: MilliAmps,
    /// State of charge.
    pub soc: Permille,
    /// State of health.
    pub soh: Permille,
    /// Battery voltage.
    pub voltage_mv: MilliVolts,
    /// Battery current, positive when charging.
    pub current_ma: MilliAmps,
    /// Battery temperature.
    pub temperature_dc: DeciCelsius,
    /// Lowest and highest cell voltage, when known.
    pub cell_mv: Option<(MilliVolts, MilliVolts)>,
    /// Lowest and highest cell temperature, when known.
    pub cell_dc: Option<(DeciCelsius, DeciCelsius)>,
    /// Full-charge capacity, milliamp-hours.
    pub capacity_mah: u32,
    /// Alarms: the battery protects (or has protected) against these.
    pub alarms: AlarmSet,
    /// Warnings: these approach a limit.
    pub warnings: AlarmSet,
    /// The battery accepts charge.
    pub charge_enable: bool,
    /// The battery may be discharged.
    pub discharge_enable: bool,
    /// The battery asks to be charged now (low SoC).
    pub force_charge: bool,
    /// The battery asks for a full (balancing) charge.
    pub full_charge: bool,
    /// Modules (packs) in the battery.
    pub modules: u8,
}
