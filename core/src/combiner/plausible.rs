//! Whether a pack's report could be true: the voltages, limits and state of charge a pack of
//! its chemistry and cell count can have.
//!
//! A report outside these bounds comes from a broken BMS, a wrong frame set or corrupted
//! firmware, and nothing in it can be trusted, least of all its limits: a rack that announces a
//! charge voltage limit of 0.5 V would otherwise become the lowest of the bank's and be sent to
//! the inverters. The combiner treats such a pack as faulty (see the
//! [module documentation](super)).
//!
//! The bounds are wide on purpose: they catch reports no working battery makes, not a battery
//! near its own protection limits, which the battery's own limits deal with.

use crate::units::{MilliVolts, Permille};
use crate::view::BatteryView;

use super::PackSlot;

/// The most current per ampere-hour of capacity a report may claim (10 C), in either direction
/// and for either limit. No rack or string of the chemistries here is built to carry more.
pub const MAX_C_RATE: u32 = 10;

/// `view` with what the pack left out filled in from its configuration, before it is checked
/// or combined:
///
/// - a discharge voltage limit of 0 (the low-voltage protocol's 6-byte 0x351 carries none,
///   and [`lv::Reader`](crate::proto::lv::Reader) gives 0 for it) becomes the pack's cells
///   times [`fallback_cell_discharge_mv`](super::config::fallback_cell_discharge_mv), or its charge voltage limit where that is lower,
///   so the floor never stands above the ceiling;
/// - a capacity of 0 (a rack that sends neither 0x379 nor 0x35F) becomes the configured
///   capacity, so the combined capacity an inverter reads (BYD 0x150) agrees with the size
///   the identification burst announces.
pub fn complete(slot: &PackSlot, mut view: BatteryView) -> BatteryView {
    if view.discharge_voltage_mv.0 <= 0 {
        let floor = slot.fallback_discharge_voltage_mv().0;
        let ceiling = view.charge_voltage_mv.0;
        view.discharge_voltage_mv =
            MilliVolts(if ceiling > 0 { floor.min(ceiling) } else { floor });
    }
    if view.capacity_mah == 0 {
        view.capacity_mah = slot.capacity_mah;
    }
    view
}

/// What makes a report implausible, the first found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Implausible {
    /// The pack's voltage is outside its window.
    Voltage,
    /// The charge voltage limit is outside the window.
    ChargeVoltage,
    /// The discharge voltage limit is outside the window, or above the charge voltage limit.
    DischargeVoltage,
    /// A current limit below zero or above [`MAX_C_RATE`].
    CurrentLimit,
    /// A current beyond [`MAX_C_RATE`].
    Current,
    /// A state of charge or health above 100 %.
    Soc,
}

/// Checks one report against the pack's configuration.
pub fn check(slot: &PackSlot, view: &BatteryView) -> Result<(), Implausible> {
    let (low, high) = slot.voltage_window_mv();
    let inside = |mv: i32| (low..=high).contains(&mv);
    if !inside(view.voltage_mv.0) {
        return Err(Implausible::Voltage);
    }
    if !inside(view.charge_voltage_mv.0) {
        return Err(Implausible::ChargeVoltage);
    }
    if !inside(view.discharge_voltage_mv.0) || view.discharge_voltage_mv > view.charge_voltage_mv {
        return Err(Implausible::DischargeVoltage);
    }
    // mAh × 10 / h = mA at 10 C.
    let most_ma = i64::from(slot.capacity_mah) * i64::from(MAX_C_RATE);
    let limit_ok = |ma: i32| (0..=most_ma).contains(&i64::from(ma));
    if !limit_ok(view.charge_limit_ma.0) || !limit_ok(view.discharge_limit_ma.0) {
        return Err(Implausible::CurrentLimit);
    }
    if i64::from(view.current_ma.0).abs() > most_ma {
        return Err(Implausible::Current);
    }
    if view.soc > Permille::FULL || view.soh > Permille::FULL {
        return Err(Implausible::Soc);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chemistry::CellChemistry;
    use crate::units::MilliAmps;

    fn slot() -> PackSlot {
        PackSlot {
            capacity_mah: 50_000,
            chemistry: CellChemistry::Lfp,
            cells: 15,
            resistance_uohm: 15_000,
        }
    }

    fn view() -> BatteryView {
        BatteryView {
            voltage_mv: MilliVolts(49_500),
            charge_voltage_mv: MilliVolts(53_250),
            discharge_voltage_mv: MilliVolts(45_000),
            charge_limit_ma: MilliAmps(25_000),
            discharge_limit_ma: MilliAmps(50_000),
            soc: Permille(500),
            soh: Permille(1000),
            ..BatteryView::default()
        }
    }

    #[test]
    fn a_truthful_report_passes_and_each_lie_is_named() {
        assert_eq!(check(&slot(), &view()), Ok(()));
        type Lie = fn(&mut BatteryView);
        let lies: [(Lie, Implausible); 9] = [
            (|v| v.voltage_mv = MilliVolts(0), Implausible::Voltage),
            (|v| v.voltage_mv = MilliVolts(57_001), Implausible::Voltage),
            (|v| v.charge_voltage_mv = MilliVolts(500), Implausible::ChargeVoltage),
            (|v| v.charge_voltage_mv = MilliVolts(0), Implausible::ChargeVoltage),
            (|v| v.discharge_voltage_mv = MilliVolts(54_000), Implausible::DischargeVoltage),
            (|v| v.charge_limit_ma = MilliAmps(-1), Implausible::CurrentLimit),
            (|v| v.discharge_limit_ma = MilliAmps(500_001), Implausible::CurrentLimit),
            (|v| v.current_ma = MilliAmps(-500_001), Implausible::Current),
            (|v| v.soc = Permille(1001), Implausible::Soc),
        ];
        for (lie, what) in lies {
            let mut v = view();
            lie(&mut v);
            assert_eq!(check(&slot(), &v), Err(what), "{v:?}");
        }
        // The edges of the window are still plausible.
        let mut v = view();
        (v.voltage_mv, v.charge_voltage_mv) = (MilliVolts(30_000), MilliVolts(57_000));
        assert_eq!(check(&slot(), &v), Ok(()));
    }
}
