//! One of our own pack controllers as a battery an inverter (or the combiner) could be fed
//! from: [`Bms::battery_view`].

use crate::bms::Bms;
use crate::contactor::SequenceState;
use crate::protection::{RuleId, Tier};
use crate::units::{DeciCelsius, MilliVolts, Permille};
use crate::view::{Alarm, AlarmSet, BatteryView};
use crate::voltage_limits::voltage_limits;

/// The 0x35A-style alarm a protection rule reports as.
const fn alarm_of(rule: RuleId) -> Alarm {
    match rule {
        RuleId::CellOverVoltage | RuleId::PackOverVoltage => Alarm::HighVoltage,
        RuleId::CellUnderVoltage | RuleId::PackUnderVoltage => Alarm::LowVoltage,
        RuleId::ChargeOverCurrent => Alarm::HighChargeCurrent,
        RuleId::DischargeOverCurrent => Alarm::HighDischargeCurrent,
        RuleId::ChargeOverTemperature => Alarm::HighTemperatureCharge,
        RuleId::ChargeUnderTemperature => Alarm::LowTemperatureCharge,
        RuleId::DischargeOverTemperature => Alarm::HighTemperature,
        RuleId::DischargeUnderTemperature => Alarm::LowTemperature,
        RuleId::CellImbalance => Alarm::CellImbalance,
        RuleId::ContactorWelded | RuleId::ContactorMismatch | RuleId::PrechargeFailed => {
            Alarm::Contactor
        }
        RuleId::PackVoltageMismatch
        | RuleId::CellVoltageStale
        | RuleId::TemperatureStale
        | RuleId::CurrentStale
        | RuleId::PackVoltageStale
        | RuleId::BusVoltageStale
        | RuleId::HardwareFault => Alarm::BmsInternal,
    }
}

impl Bms {
    /// Whether the pack is on the bus: both main contactors closed (also while a graceful
    /// stop waits for the current to fall).
    pub fn connected(&self) -> bool {
        matches!(self.status().sequence, SequenceState::Closed | SequenceState::Stopping { .. })
    }

    /// What this pack would tell an inverter on its own, for the
    /// [combiner](crate::combiner). `None` until the pack voltage, the current, every cell and
    /// every temperature have been received, and until the SoC estimator has started (a pack
    /// without a `soc` section never reports): nothing is reported from data never seen.
    ///
    /// - Current limits: the ones in force ([`Status::limits`](crate::Status::limits)), which
    ///   include the charge controller's.
    /// - Voltage limits: the ones [`Action::VoltageLimits`](crate::Action::VoltageLimits)
    ///   carries: the charge controller's ([`ChargeStatus::cvl_mv`]); without a `charge`
    ///   section, cells × (operating over-voltage limit − its hysteresis). The discharge
    ///   voltage limit: cells × (operating under-voltage limit + its hysteresis).
    /// - Alarms: every latched maximum-safety rule; warnings: every other active tier.
    /// - SoC: the usable SoC ([`SocStatus::usable`]); capacity: the learned one; SoH: that
    ///   capacity against the configured one, at most 100 %.
    ///
    /// [`ChargeStatus::cvl_mv`]: crate::charge::ChargeStatus::cvl_mv
    /// [`SocStatus::usable`]: crate::soc::SocStatus::usable
    pub fn battery_view(&self) -> Option<BatteryView> {
        let status = self.status();
        let config = self.config();
        let summary = status.summary;
        let (cell_min, cell_max) = (summary.cell_min?, summary.cell_max?);
        if summary.cell_missing.is_some() || summary.temperature_missing.is_some() {
            return None;
        }
        let (t_min, t_max) = (summary.temperature_min?, summary.temperature_max?);
        let (soc_status, soc_config) = (status.soc?, config.soc?);
        let voltage = voltage_limits(config, status.charge.as_ref());
        let capacity_mah = soc_status.capacity_mah;
        let soh = u64::from(capacity_mah) * 1000 / u64::from(soc_config.capacity_mah.max(1));
        let soh = Permille(soh.min(1000) as u16);
        let (mut alarms, mut warnings) = (AlarmSet::EMPTY, AlarmSet::EMPTY);
        for rule in RuleId::ALL {
            let r = &status.rules[rule.index()];
            if r.latched || r.active == Some(Tier::Maximum) {
                alarms.insert(alarm_of(rule));
            } else if r.active.is_some() {
                warnings.insert(alarm_of(rule));
            }
        }
        let limits = status.limits;
        Some(BatteryView {
            charge_voltage_mv: voltage.charge_mv,
            discharge_voltage_mv: voltage.discharge_mv,
            charge_limit_ma: limits.charge_ma,
            discharge_limit_ma: limits.discharge_ma,
            soc: soc_status.usable,
            soh,
            voltage_mv: status.pack_mv?,
            current_ma: status.current_ma?,
            temperature_dc: DeciCelsius(crate::units::mean_i32(t_min.value, t_max.value)),
            cell_mv: Some((MilliVolts(cell_min.value), MilliVolts(cell_max.value))),
            cell_dc: Some((DeciCelsius(t_min.value), DeciCelsius(t_max.value))),
            capacity_mah,
            alarms,
            warnings,
            charge_enable: limits.charge_ma.0 > 0,
            discharge_enable: limits.discharge_ma.0 > 0,
            force_charge: false,
            full_charge: false,
            modules: 1,
        })
    }
}
