//! The voltage limits a pack controller tells an inverter leave the core as
//! `Action::VoltageLimits`: once in the first drain, again whenever a limit or its source
//! changes, never otherwise, and always the values `battery_view` and the charge controller's
//! status report (the action carries them; `status()` only shows them).

mod common;

use cellwarden_core::{Action, Config, MilliAmps, MilliVolts, VoltageLimits, VoltageSource};
use common::Rig;

const STEP_MS: u64 = 10;

fn voltage_actions(log: &[(cellwarden_core::Instant, Action)]) -> Vec<VoltageLimits> {
    log.iter()
        .filter_map(|(_, a)| if let Action::VoltageLimits(v) = a { Some(*v) } else { None })
        .collect()
}

/// Cells × (operating under-voltage limit + its hysteresis).
fn discharge_mv(config: &Config) -> MilliVolts {
    let uv = config.protection.cell_under_voltage_mv;
    MilliVolts(i32::from(config.cell_count) * (uv.operating.expect("preset").0 + uv.hysteresis.0))
}

#[test]
fn the_charge_controllers_limit_leaves_as_an_action_on_every_change_and_only_then() {
    let config = Config::lfp_16s(100);
    let charge = config.charge.clone().expect("the preset has charge control");
    let mut rig = Rig::new(config.clone(), 3_300);
    let first = voltage_actions(&rig.log);
    assert_eq!(first.len(), 1, "once in the first drain: {:?}", rig.log);
    let cvl = rig.bms.status().charge.expect("charge section").cvl_mv;
    assert_eq!(
        first[0],
        VoltageLimits {
            charge_mv: cvl,
            charge_source: VoltageSource::ChargeControl,
            discharge_mv: discharge_mv(&config),
        }
    );

    rig.close();
    rig.plant.load = MilliAmps(20_000);
    // One cell climbs into the charge controller's band below its cell maximum: the limit
    // follows it down at once, and ramps back up when the cell falls again.
    let band_mv = charge.cell_max_mv.0 - charge.cvl_band_mv.0;
    let mut steps = Vec::new();
    steps.extend((0..40).map(|k| 3_300 + (band_mv + 10 - 3_300) * k / 40));
    steps.extend([band_mv + 10; 50]);
    steps.extend([3_350; 200]);
    for high in steps {
        rig.plant.cells[3] = MilliVolts(high);
        rig.run(cellwarden_core::Duration::from_millis(STEP_MS));
        let sent = *voltage_actions(&rig.log).last().expect("sent once at least");
        let status_cvl = rig.bms.status().charge.expect("charge section").cvl_mv;
        assert_eq!(sent.charge_mv, status_cvl, "the last action is the limit in force");
        if let Some(view) = rig.bms.battery_view() {
            assert_eq!(
                (view.charge_voltage_mv, view.discharge_voltage_mv),
                (sent.charge_mv, sent.discharge_mv)
            );
        }
    }
    let all = voltage_actions(&rig.log);
    assert!(all.len() >= 3, "the limit moved: {all:?}");
    assert!(all.windows(2).all(|w| w[0] != w[1]), "emitted only on change: {all:?}");
    assert!(all.iter().any(|v| v.charge_mv < first[0].charge_mv), "{all:?}");
}

#[test]
fn without_charge_control_the_limit_comes_from_protection_and_is_sent_once() {
    for config in [Config::lfp_16s(100), Config::tesla_model_s(4)] {
        let config = Config { charge: None, ..config };
        let ov = config.protection.cell_over_voltage_mv;
        let expected = VoltageLimits {
            charge_mv: MilliVolts(
                i32::from(config.cell_count) * (ov.operating.expect("preset").0 - ov.hysteresis.0),
            ),
            charge_source: VoltageSource::Protection,
            discharge_mv: discharge_mv(&config),
        };
        let cell_mv = if config.cell_count == 16 { 3_300 } else { 3_700 };
        let mut rig = Rig::new(config, cell_mv);
        rig.close();
        rig.plant.load = MilliAmps(10_000);
        rig.run(cellwarden_core::Duration::from_millis(2_000));
        assert_eq!(voltage_actions(&rig.log), [expected]);
        let view = rig.bms.battery_view();
        if let Some(view) = view {
            assert_eq!(view.charge_voltage_mv, expected.charge_mv);
        }
    }
}
