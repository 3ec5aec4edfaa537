//! The voltage limits a pack controller tells its inverters, computed in one place for
//! [`Action::VoltageLimits`](crate::Action::VoltageLimits) and the battery view. A leaf below
//! `bms` and `pack_view`, so neither imports the other for it.

use crate::action::{VoltageLimits, VoltageSource};
use crate::charge::ChargeStatus;
use crate::config::Config;
use crate::units::MilliVolts;

/// The voltage limits of a pack with `config` whose charge controller reports `charge`: one
/// computation for [`Action::VoltageLimits`](crate::Action::VoltageLimits) and
/// [`Bms::battery_view`](crate::Bms::battery_view), so the two never disagree.
pub(crate) fn voltage_limits(config: &Config, charge: Option<&ChargeStatus>) -> VoltageLimits {
    let cells = i32::from(config.cell_count);
    let p = &config.protection;
    let per_cell = |limit: Option<MilliVolts>, offset: i32| {
        limit.map_or(0, |mv| mv.0.saturating_add(offset)).saturating_mul(cells)
    };
    let (charge_mv, charge_source) = match charge {
        Some(charge) => (charge.cvl_mv.0, VoltageSource::ChargeControl),
        None => {
            // The first tier that is set: a CVL of 0 V must never reach an inverter.
            let ov = &p.cell_over_voltage_mv;
            let mv = per_cell(ov.operating.or(ov.recommended).or(ov.maximum), -ov.hysteresis.0);
            (mv, VoltageSource::Protection)
        }
    };
    let dvl = per_cell(p.cell_under_voltage_mv.operating, p.cell_under_voltage_mv.hysteresis.0);
    VoltageLimits { charge_mv: MilliVolts(charge_mv), charge_source, discharge_mv: MilliVolts(dvl) }
}
