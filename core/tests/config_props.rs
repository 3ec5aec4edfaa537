//! Properties of configuration validation over random settings around the presets
//! (`props::settings`): whatever passes keeps every protection threshold inside the chemistry's
//! envelope, every charge-control, balancing and SoC voltage inside protection's window, and
//! every hysteresis within the gaps between its tiers. The checks here are written out from
//! the figures, independently of the validation code.

mod props;

use cellwarden_core::{Config, RawUnit, Thresholds};
use props::proptest_config;
use props::settings::settings;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};

/// The set tiers of `t`, mildest first.
fn tiers<U: RawUnit>(t: &Thresholds<U>) -> Vec<i64> {
    [t.operating, t.recommended, t.maximum].into_iter().flatten().map(|v| v.raw().into()).collect()
}

fn all_inside<U: RawUnit>(
    name: &str,
    t: &Thresholds<U>,
    min: i64,
    max: i64,
) -> Result<(), TestCaseError> {
    for v in tiers(t) {
        prop_assert!((min..=max).contains(&v), "{name}: tier {v} outside {min}..={max}");
    }
    Ok(())
}

fn thresholds_inside_the_envelope(c: &Config) -> Result<(), TestCaseError> {
    let e = c.chemistry.envelope();
    let (lo, hi) = (i64::from(e.cell_min_mv.0), i64::from(e.cell_max_mv.0));
    let n = i64::from(c.cell_count);
    let p = &c.protection;
    all_inside("cell over-voltage", &p.cell_over_voltage_mv, lo, hi)?;
    all_inside("cell under-voltage", &p.cell_under_voltage_mv, lo, hi)?;
    all_inside("pack over-voltage", &p.pack_over_voltage_mv, lo * n, hi * n)?;
    all_inside("pack under-voltage", &p.pack_under_voltage_mv, lo * n, hi * n)?;
    let (clo, chi) = (i64::from(e.charge_min_dc.0), i64::from(e.charge_max_dc.0));
    all_inside("charge over-temperature", &p.charge_over_temperature_dc, clo, chi)?;
    all_inside("charge under-temperature", &p.charge_under_temperature_dc, clo, chi)?;
    let (dlo, dhi) = (i64::from(e.discharge_min_dc.0), i64::from(e.discharge_max_dc.0));
    all_inside("discharge over-temperature", &p.discharge_over_temperature_dc, dlo, dhi)?;
    all_inside("discharge under-temperature", &p.discharge_under_temperature_dc, dlo, dhi)?;
    let max = i64::from(i32::MAX);
    all_inside("charge over-current", &p.charge_over_current_ma, 1, max)?;
    all_inside("discharge over-current", &p.discharge_over_current_ma, 1, max)?;
    all_inside("cell imbalance", &p.cell_imbalance_mv, 1, hi - lo)?;
    all_inside("pack voltage mismatch", &p.pack_voltage_mismatch_mv, 1, hi * n)?;
    Ok(())
}

/// Each tier's hysteresis is positive and at most the distance to its neighbour.
fn hysteresis_within_the_gaps<U: RawUnit>(
    name: &str,
    t: &Thresholds<U>,
) -> Result<(), TestCaseError> {
    let set = tiers(t);
    let h = i64::from(t.hysteresis.raw());
    if !set.is_empty() {
        prop_assert!(h >= 1, "{name}: hysteresis {h}");
    }
    for pair in set.windows(2) {
        prop_assert!(h <= (pair[1] - pair[0]).abs(), "{name}: hysteresis {h} over {pair:?}");
    }
    Ok(())
}

/// Per-cell voltages charge control, balancing and SoC aim for, against every voltage tier.
fn targets_inside_protection(c: &Config) -> Result<(), TestCaseError> {
    let n = i64::from(c.cell_count);
    let p = &c.protection;
    let (cell_over, pack_over) = (tiers(&p.cell_over_voltage_mv), tiers(&p.pack_over_voltage_mv));
    let (cell_under, pack_under) =
        (tiers(&p.cell_under_voltage_mv), tiers(&p.pack_under_voltage_mv));
    // (name, per-cell value, may equal the over-voltage tiers).
    let mut targets: Vec<(&str, i64, bool)> =
        vec![("balance.start_mv", c.balance.start_mv.0.into(), false)];
    if let Some(ch) = &c.charge {
        targets.push(("charge.cell_max_mv", ch.cell_max_mv.0.into(), true));
        let setpoint = i64::from(ch.cell_max_mv.0) - i64::from(ch.cvl_margin_mv.0);
        targets.push(("charge setpoint", setpoint, false));
        for (name, mv) in [
            ("charge.absorption_cell_mv", ch.absorption_cell_mv),
            ("charge.float_cell_mv", ch.float_cell_mv),
            ("charge.full_charge_cell_mv", ch.full_charge_cell_mv),
            ("charge.absorption_start_cell_mv", ch.absorption_start_cell_mv),
            ("charge.rebulk_cell_mv", ch.rebulk_cell_mv),
            ("charge.cvl_floor_cell_mv", ch.cvl_floor_cell_mv),
        ] {
            targets.push((name, mv.0.into(), false));
        }
        for point in ch.charge_by_cell_max_mv.points().iter().filter(|p| p.y.0 == 0) {
            targets.push(("charge table stop", point.x.into(), true));
        }
    }
    if let Some(s) = &c.soc {
        prop_assert!(c.chemistry.admits(s.chemistry), "OCV table {:?}", s.chemistry);
        targets.push(("soc.usable_full_ocv_mv", s.usable_full_ocv_mv.0.into(), false));
        targets.push(("soc.usable_empty_ocv_mv", s.usable_empty_ocv_mv.0.into(), false));
        let empty = i64::from(s.empty_cell_mv.0);
        let harshest = *cell_under.last().expect("required maximum");
        prop_assert!(empty > harshest, "soc.empty_cell_mv {empty} at or below {harshest}");
        prop_assert!(empty * n > *pack_under.last().expect("required maximum"));
    }
    for (name, v, ceiling) in targets {
        for &t in &cell_over {
            prop_assert!(v < t || (ceiling && v == t), "{name} {v} against over-voltage {t}");
        }
        for &t in &pack_over {
            let pack = v * n;
            prop_assert!(pack < t || (ceiling && pack <= t), "{name} {v} x {n} against {t}");
        }
        for &t in &cell_under {
            prop_assert!(v > t, "{name} {v} against under-voltage {t}");
        }
        for &t in &pack_under {
            prop_assert!(v * n > t, "{name} {v} x {n} against pack under-voltage {t}");
        }
    }
    if let Some(ch) = &c.charge {
        for point in ch.discharge_by_cell_min_mv.points().iter().filter(|p| p.y.0 == 0) {
            let x = i64::from(point.x);
            prop_assert!(cell_under.iter().all(|&t| x >= t), "discharge table stop {x}");
            prop_assert!(cell_over.iter().all(|&t| x < t), "discharge table stop {x}");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(proptest_config(2_000, file!()))]

    #[test]
    fn settings_that_pass_keep_protection_inside_the_envelope_and_charging_inside_protection(
        config in settings(),
    ) {
        if config.validate().is_ok() {
            thresholds_inside_the_envelope(&config)?;
            let p = &config.protection;
            hysteresis_within_the_gaps("cell over-voltage", &p.cell_over_voltage_mv)?;
            hysteresis_within_the_gaps("cell under-voltage", &p.cell_under_voltage_mv)?;
            hysteresis_within_the_gaps("pack over-voltage", &p.pack_over_voltage_mv)?;
            hysteresis_within_the_gaps("pack under-voltage", &p.pack_under_voltage_mv)?;
            hysteresis_within_the_gaps("cell imbalance", &p.cell_imbalance_mv)?;
            hysteresis_within_the_gaps("pack mismatch", &p.pack_voltage_mismatch_mv)?;
            hysteresis_within_the_gaps("charge over-current", &p.charge_over_current_ma)?;
            hysteresis_within_the_gaps("discharge over-current", &p.discharge_over_current_ma)?;
            for (name, t) in [
                ("charge over-temperature", &p.charge_over_temperature_dc),
                ("charge under-temperature", &p.charge_under_temperature_dc),
                ("discharge over-temperature", &p.discharge_over_temperature_dc),
                ("discharge under-temperature", &p.discharge_under_temperature_dc),
            ] {
                hysteresis_within_the_gaps(name, t)?;
            }
            targets_inside_protection(&config)?;
        } else {
            // A refusal always reads as `field: problem`, never panics on display.
            let text = config.validate().expect_err("refused").to_string();
            prop_assert!(text.contains(": "), "{text}");
        }
    }
}

/// The generator is worth something only if it makes many settings of each kind.
#[test]
fn the_generated_settings_both_pass_and_fail_often() {
    let mut runner = TestRunner::deterministic();
    let strategy = settings();
    let total = 2_000;
    let passed = (0..total)
        .filter(|_| {
            let config = strategy.new_tree(&mut runner).expect("a value").current();
            config.validate().is_ok()
        })
        .count();
    eprintln!("{passed} of {total} passed");
    assert!((total / 5..=total * 4 / 5).contains(&passed), "{passed} of {total} passed");
}
