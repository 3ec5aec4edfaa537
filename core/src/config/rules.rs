//! Each rule's thresholds, read from the configuration. The rules themselves are vocabulary
//! ([`crate::rule`]); which field holds a rule's thresholds is the configuration's business.

use super::{Config, RawThresholds};
use crate::rule::RuleId;
use crate::time::Duration;

impl RuleId {
    /// The rule's thresholds from `config`; freshness and event rules have only a maximum tier.
    pub(crate) fn thresholds(self, config: &Config) -> RawThresholds {
        let p = &config.protection;
        let f = &config.freshness;
        let stale = |ms: u32| RawThresholds {
            tiers: [None, None, Some(ms.min(i32::MAX as u32) as i32)],
            hysteresis: 0,
            debounce: Duration::ZERO,
        };
        match self {
            RuleId::CellOverVoltage => p.cell_over_voltage_mv.raw(),
            RuleId::CellUnderVoltage => p.cell_under_voltage_mv.raw(),
            RuleId::PackOverVoltage => p.pack_over_voltage_mv.raw(),
            RuleId::PackUnderVoltage => p.pack_under_voltage_mv.raw(),
            RuleId::ChargeOverCurrent => p.charge_over_current_ma.raw(),
            RuleId::DischargeOverCurrent => p.discharge_over_current_ma.raw(),
            RuleId::ChargeOverTemperature => p.charge_over_temperature_dc.raw(),
            RuleId::ChargeUnderTemperature => p.charge_under_temperature_dc.raw(),
            RuleId::DischargeOverTemperature => p.discharge_over_temperature_dc.raw(),
            RuleId::DischargeUnderTemperature => p.discharge_under_temperature_dc.raw(),
            RuleId::CellImbalance => p.cell_imbalance_mv.raw(),
            RuleId::PackVoltageMismatch => p.pack_voltage_mismatch_mv.raw(),
            RuleId::CellVoltageStale => stale(f.cell_voltage_ms),
            RuleId::TemperatureStale => stale(f.temperature_ms),
            RuleId::CurrentStale => stale(f.current_ms),
            RuleId::PackVoltageStale => stale(f.pack_voltage_ms),
            RuleId::BusVoltageStale => stale(f.bus_voltage_ms),
            RuleId::HardwareFault
            | RuleId::ContactorWelded
            | RuleId::ContactorMismatch
            | RuleId::PrechargeFailed => stale(0),
        }
    }
}
