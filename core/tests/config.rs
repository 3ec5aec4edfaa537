//! Config validation: the presets are valid over their whole documented range, and each kind of
//! bad value is rejected with the field, the part and a readable message.

use cellwarden_core::{
    Bms, Bound, CellChemistry, Config, ConfigError, DeciCelsius, Instant, MAX_CELLS, MAX_CONFIG_MS,
    MAX_TEMPERATURES, MilliAmps, MilliVolts, Permille, Problem,
};

fn lfp() -> Config {
    Config::lfp_16s(100)
}

fn error(config: &Config) -> ConfigError {
    config.validate().expect_err("config must be rejected")
}

fn out_of_range(
    field: &'static str,
    part: Option<&'static str>,
    value: i64,
    min: i64,
    max: i64,
) -> ConfigError {
    ConfigError { field, part, problem: Problem::OutOfRange { value, min, max } }
}

// ---------------------------------------------------------------------------------------------
// Presets.

#[test]
fn tesla_preset_is_valid_for_1_to_32_modules() {
    for modules in 1..=32 {
        let config = Config::tesla_model_s(modules);
        assert_eq!(config.validate(), Ok(()), "{modules} modules");
        assert_eq!(usize::from(config.cell_count), 6 * usize::from(modules));
    }
}

#[test]
fn tesla_preset_beyond_32_modules_is_rejected_not_truncated() {
    let e = error(&Config::tesla_model_s(33));
    assert_eq!(e, out_of_range("cell_count", None, 198, 1, MAX_CELLS as i64));
    assert_eq!(error(&Config::tesla_model_s(0)).field, "cell_count");
    assert_eq!(error(&Config::tesla_model_s(u16::MAX)).field, "cell_count");
}

#[test]
fn lfp_preset_is_valid_for_1_to_1000_ah() {
    for ah in 1..=1000 {
        assert_eq!(Config::lfp_16s(ah).validate(), Ok(()), "{ah} Ah");
    }
}

#[test]
fn lfp_preset_does_not_overflow_at_the_largest_capacity() {
    // 1.5 C over-current of a 65535 Ah pack is 98 kA: it fits an i32 in mA.
    let config = Config::lfp_16s(u16::MAX);
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(config.protection.discharge_over_current_ma.maximum, Some(MilliAmps(98_302_500)));
}

#[test]
fn bms_new_rejects_what_validate_rejects() {
    let mut config = lfp();
    config.cell_count = 0;
    let e = Bms::new(config.clone(), Instant::ZERO).expect_err("rejected");
    assert_eq!(e, error(&config));
}

// ---------------------------------------------------------------------------------------------
// Counts and limits.

#[test]
fn cell_count_must_lie_in_1_to_max_cells() {
    let mut config = lfp();
    config.cell_count = 0;
    assert_eq!(error(&config), out_of_range("cell_count", None, 0, 1, MAX_CELLS as i64));
    config.cell_count = MAX_CELLS as u16 + 1;
    assert_eq!(error(&config), out_of_range("cell_count", None, 193, 1, MAX_CELLS as i64));
    // MAX_CELLS itself is fine as far as the count goes, but the preset's pack limits follow 16
    // cells: 16 cells' worth of voltage is far below what 192 LFP cells can be.
    config.cell_count = MAX_CELLS as u16;
    let e = error(&config);
    assert_eq!(
        e.to_string(),
        "protection.pack_over_voltage_mv.operating: 56800 is out of range, allowed \
         384000..=729600 (192 cells times the limits of an LFP cell, chemistry = \"lfp\")"
    );
    config.protection = Config::lfp_16s(100).protection;
    for t in [
        &mut config.protection.pack_over_voltage_mv,
        &mut config.protection.pack_under_voltage_mv,
        &mut config.protection.pack_voltage_mismatch_mv,
    ] {
        for tier in [&mut t.operating, &mut t.recommended, &mut t.maximum] {
            *tier = tier.map(|mv| MilliVolts(mv.0 / 16 * 192));
        }
        t.hysteresis = MilliVolts(t.hysteresis.0 / 16 * 192);
    }
    // The charge controller and the SoC estimator take the count from `cell_count` (issue 15,
    // item 5: it is held once), so they need no change of their own.
    assert!(config.charge.is_some() && config.soc.is_some());
    assert_eq!(config.validate(), Ok(()));
    let bms = Bms::new(config, Instant::ZERO).expect("valid");
    let charge = bms.status().charge.expect("charge control is on");
    // The bulk target is the preset's 3500 mV per cell times the one count, 192.
    assert_eq!(charge.cvl_target_mv, MilliVolts(3_500 * 192));
}

#[test]
fn charge_and_soc_sections_are_validated_with_their_field_named() {
    let mut config = lfp();
    if let Some(charge) = &mut config.charge {
        charge.cvl_gain = Permille(5_000);
    }
    let e = error(&config);
    assert_eq!((e.field, e.part), ("charge", Some("cvl_gain")));
    assert!(e.to_string().starts_with("charge.cvl_gain: 5000 is out of range"), "{e}");
    let mut config = lfp();
    if let Some(soc) = &mut config.soc {
        soc.usable_full_ocv_mv = soc.usable_empty_ocv_mv;
    }
    let e = error(&config);
    assert_eq!((e.field, e.part), ("soc", Some("usable_full_ocv_mv")));
}

#[test]
fn temperature_count_must_lie_in_1_to_max_temperatures() {
    let mut config = lfp();
    config.temperature_count = 0;
    assert_eq!(error(&config).field, "temperature_count");
    config.temperature_count = MAX_TEMPERATURES as u16 + 1;
    let e = error(&config);
    assert_eq!(e, out_of_range("temperature_count", None, 65, 1, MAX_TEMPERATURES as i64));
}

#[test]
fn charge_current_max_must_stay_below_the_first_over_current_tier() {
    let mut config = lfp();
    let operating = config.protection.charge_over_current_ma.operating.expect("preset sets it");
    config.charge_current_max_ma = operating;
    let e = error(&config);
    assert_eq!(e.field, "charge_current_max_ma");
    assert_eq!(
        e.problem,
        Problem::MustBeBelow {
            other: "protection.charge_over_current_ma",
            value: operating.0.into(),
            other_value: operating.0.into(),
        }
    );
    config.charge_current_max_ma = MilliAmps(operating.0 + 1);
    assert_eq!(error(&config).field, "charge_current_max_ma");
    config.charge_current_max_ma = MilliAmps(operating.0 - 1);
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn without_an_operating_tier_the_current_max_is_checked_against_the_next_tier() {
    let mut config = lfp();
    config.protection.discharge_over_current_ma.operating = None;
    let recommended = config.protection.discharge_over_current_ma.recommended.expect("preset");
    config.discharge_current_max_ma = recommended;
    let e = error(&config);
    assert_eq!(e.field, "discharge_current_max_ma");
    assert!(
        matches!(e.problem, Problem::MustBeBelow { other_value, .. } if other_value == i64::from(recommended.0))
    );
}

#[test]
fn current_maxima_and_derate_are_range_checked() {
    let mut config = lfp();
    config.charge_current_max_ma = MilliAmps(0);
    assert_eq!(error(&config).field, "charge_current_max_ma");
    let mut config = lfp();
    config.operating_limit_derate.0 = 1_001;
    assert_eq!(error(&config), out_of_range("operating_limit_derate", None, 1_001, 0, 1_000));
    let mut config = lfp();
    config.idle_current_ma = MilliAmps(-1);
    assert_eq!(error(&config).field, "idle_current_ma");
}

// ---------------------------------------------------------------------------------------------
// Threshold tiers.

#[test]
fn a_required_maximum_tier_cannot_be_left_out() {
    let mut config = lfp();
    config.protection.cell_over_voltage_mv.maximum = None;
    let e = error(&config);
    assert_eq!(
        e,
        ConfigError {
            field: "protection.cell_over_voltage_mv",
            part: Some("maximum"),
            problem: Problem::Required,
        }
    );
    assert_eq!(
        e.to_string(),
        "protection.cell_over_voltage_mv.maximum: must be set (a safety limit cannot be left out)"
    );
}

#[test]
fn every_temperature_window_requires_its_maximum() {
    let mut config = lfp();
    config.protection.charge_under_temperature_dc.maximum = None;
    assert_eq!(error(&config).field, "protection.charge_under_temperature_dc");
    assert_eq!(error(&config).problem, Problem::Required);
}

#[test]
fn plausibility_rules_may_be_switched_off_entirely() {
    let mut config = lfp();
    for t in
        [&mut config.protection.cell_imbalance_mv, &mut config.protection.pack_voltage_mismatch_mv]
    {
        t.operating = None;
        t.recommended = None;
        t.maximum = None;
    }
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn tiers_of_a_high_rule_must_rise() {
    let mut config = lfp();
    // cell over-voltage: 3550 < 3650 < 3750.
    config.protection.cell_over_voltage_mv.recommended = Some(MilliVolts(3_550));
    let e = error(&config);
    assert_eq!(e.field, "protection.cell_over_voltage_mv");
    assert_eq!(e.part, Some("recommended"));
    assert_eq!(
        e.problem,
        Problem::MustExceed { other: "operating", value: 3_550, other_value: 3_550 }
    );
    assert_eq!(
        e.to_string(),
        "protection.cell_over_voltage_mv.recommended: 3550 must be greater than operating (3550)"
    );
}

#[test]
fn tiers_of_a_low_rule_must_fall() {
    let mut config = lfp();
    // charge under-temperature: 10.0 C > 2.0 C > 0.0 C.
    config.protection.charge_under_temperature_dc.maximum = Some(DeciCelsius(30));
    let e = error(&config);
    assert_eq!(e.field, "protection.charge_under_temperature_dc");
    assert_eq!(e.part, Some("maximum"));
    assert_eq!(
        e.problem,
        Problem::MustBeBelow { other: "recommended", value: 30, other_value: 20 }
    );
    assert_eq!(
        e.to_string(),
        "protection.charge_under_temperature_dc.maximum: 30 must be less than recommended (20)"
    );
}

#[test]
fn tier_order_skips_a_tier_that_is_not_set() {
    let mut config = lfp();
    // Mismatch has no recommended tier: its maximum is compared with its operating tier.
    let operating = config.protection.pack_voltage_mismatch_mv.operating.expect("preset");
    config.protection.pack_voltage_mismatch_mv.maximum = Some(operating);
    let e = error(&config);
    assert_eq!((e.field, e.part), ("protection.pack_voltage_mismatch_mv", Some("maximum")));
    assert!(matches!(e.problem, Problem::MustExceed { other: "operating", .. }));
}

#[test]
fn hysteresis_and_debounce_are_range_checked() {
    let mut config = lfp();
    config.protection.cell_under_voltage_mv.hysteresis = MilliVolts(-1);
    let e = error(&config);
    assert_eq!((e.field, e.part), ("protection.cell_under_voltage_mv", Some("hysteresis")));
    let mut config = lfp();
    config.protection.discharge_over_temperature_dc.debounce_ms = MAX_CONFIG_MS + 1;
    let e = error(&config);
    assert_eq!(
        e,
        out_of_range(
            "protection.discharge_over_temperature_dc",
            Some("debounce_ms"),
            i64::from(MAX_CONFIG_MS) + 1,
            0,
            MAX_CONFIG_MS.into(),
        )
    );
    assert_eq!(
        e.to_string(),
        "protection.discharge_over_temperature_dc.debounce_ms: 600001 is out of range, \
         allowed 0..=600000"
    );
}

// ---------------------------------------------------------------------------------------------
// Freshness and contactors.

#[test]
fn freshness_limits_must_be_positive_and_bounded() {
    let mut config = lfp();
    config.freshness.current_ms = 0;
    let e = error(&config);
    assert_eq!(e, out_of_range("freshness.current_ms", None, 0, 1, MAX_CONFIG_MS.into()));
    assert_eq!(e.to_string(), "freshness.current_ms: 0 is out of range, allowed 1..=600000");
    let mut config = lfp();
    config.freshness.bus_voltage_ms = MAX_CONFIG_MS + 1;
    assert_eq!(error(&config).field, "freshness.bus_voltage_ms");
}

#[test]
fn contactor_timing_is_checked() {
    let mut config = lfp();
    config.contactors.precharge_rise_check_ms = config.contactors.precharge_timeout_ms;
    let e = error(&config);
    assert_eq!(e.field, "contactors.precharge_rise_check_ms");
    assert!(matches!(
        e.problem,
        Problem::MustBeBelow { other: "contactors.precharge_timeout_ms", .. }
    ));
    let mut config = lfp();
    config.contactors.precharge_attempts = 0;
    assert_eq!(error(&config).field, "contactors.precharge_attempts");
    let mut config = lfp();
    config.contactors.precharge_short_current_ma = config.contactors.precharge_done_current_ma;
    assert_eq!(error(&config).field, "contactors.precharge_short_current_ma");
}

#[test]
fn the_first_problem_found_is_reported() {
    let mut config = lfp();
    config.cell_count = 0;
    config.freshness.current_ms = 0;
    assert_eq!(error(&config).field, "cell_count");
    assert_eq!(error(&config).to_string(), "cell_count: 0 is out of range, allowed 1..=192");
}

// ---------------------------------------------------------------------------------------------
// The chemistry's envelope (issue 14, item 3: settings that disable protection). The other
// envelope and cross-part checks are in `config_envelope.rs`.

fn tesla() -> Config {
    Config::tesla_model_s(16)
}

fn message(config: &Config) -> String {
    error(config).to_string()
}

#[test]
fn the_presets_name_their_chemistry_and_every_envelope_is_sane() {
    assert_eq!(tesla().chemistry, CellChemistry::Nca);
    assert_eq!(lfp().chemistry, CellChemistry::Lfp);
    for chemistry in CellChemistry::ALL {
        let e = chemistry.envelope();
        assert!(e.cell_min_mv < e.cell_max_mv, "{chemistry:?}");
        assert!(e.charge_min_dc < e.charge_max_dc, "{chemistry:?}");
        assert!(e.discharge_min_dc <= e.charge_min_dc, "{chemistry:?}");
        assert!(e.charge_max_dc <= e.discharge_max_dc, "{chemistry:?}");
        // The generic envelope holds every specific one.
        let g = CellChemistry::GenericLithium.envelope();
        assert!(g.cell_min_mv <= e.cell_min_mv && e.cell_max_mv <= g.cell_max_mv);
        assert!(g.discharge_min_dc <= e.discharge_min_dc);
        assert!(e.discharge_max_dc <= g.discharge_max_dc);
    }
}

#[test]
fn a_cell_over_voltage_maximum_of_i32_max_is_refused() {
    let mut config = tesla();
    config.protection.cell_over_voltage_mv.maximum = Some(MilliVolts(i32::MAX));
    let e = error(&config);
    assert_eq!((e.field, e.part), ("protection.cell_over_voltage_mv", Some("maximum")));
    assert_eq!(
        e.problem,
        Problem::OutOfRangeFor {
            value: i32::MAX.into(),
            min: 2_500,
            max: 4_300,
            bound: Bound::Chemistry { chemistry: CellChemistry::Nca, cells: 1 },
        }
    );
    assert_eq!(
        e.to_string(),
        "protection.cell_over_voltage_mv.maximum: 2147483647 is out of range, allowed \
         2500..=4300 (the limits of an NCA/NMC cell, chemistry = \"nca\")"
    );
    // The envelope's own edge is allowed; one beyond it is not.
    config.protection.cell_over_voltage_mv.maximum = Some(MilliVolts(4_300));
    assert_eq!(config.validate(), Ok(()));
    config.protection.cell_over_voltage_mv.maximum = Some(MilliVolts(4_301));
    assert_eq!(error(&config).part, Some("maximum"));
    // A generic pack may go to 4400 mV, no further.
    config.chemistry = CellChemistry::GenericLithium;
    config.protection.cell_over_voltage_mv.maximum = Some(MilliVolts(4_400));
    assert_eq!(config.validate(), Ok(()));
    config.protection.cell_over_voltage_mv.maximum = Some(MilliVolts(4_401));
    assert_eq!(
        message(&config),
        "protection.cell_over_voltage_mv.maximum: 4401 is out of range, allowed 2000..=4400 \
         (the limits of any lithium-ion cell, chemistry = \"generic_lithium\")"
    );
}

// ---------------------------------------------------------------------------------------------
// Charge control, balancing and SoC against protection.

fn charge(config: &mut Config) -> &mut cellwarden_core::charge::ChargeConfig {
    config.charge.as_mut().expect("preset has charge control")
}

#[test]
fn a_charge_ceiling_of_10000_mv_is_refused() {
    let mut config = tesla();
    charge(&mut config).cell_max_mv = MilliVolts(10_000);
    let e = error(&config);
    assert_eq!((e.field, e.part), ("charge", Some("cell_max_mv")));
    assert_eq!(
        e.problem,
        Problem::OutOfRangeFor {
            value: 10_000,
            min: 3_201,
            max: 4_150,
            bound: Bound::Tier {
                field: "protection.cell_over_voltage_mv",
                tier: "operating",
                value: 4_150,
                cells: 1,
            },
        }
    );
    assert_eq!(
        e.to_string(),
        "charge.cell_max_mv: 10000 is out of range, allowed 3201..=4150 (set by \
         protection.cell_over_voltage_mv.operating = 4150)"
    );
}

#[test]
fn a_charge_ceiling_above_the_protection_maximum_is_refused() {
    // The case: 4400 mV against a maximum tier of 4250 mV. The ceiling may not pass even
    // the operating tier (4150 mV), or every full charge would warn and derate.
    let mut config = tesla();
    charge(&mut config).cell_max_mv = MilliVolts(4_400);
    assert_eq!(
        message(&config),
        "charge.cell_max_mv: 4400 is out of range, allowed 3201..=4150 (set by \
         protection.cell_over_voltage_mv.operating = 4150)"
    );
    // With no operating tier the recommended one bounds it.
    config.protection.cell_over_voltage_mv.operating = None;
    config.protection.pack_over_voltage_mv.operating = None;
    assert_eq!(
        message(&config),
        "charge.cell_max_mv: 4400 is out of range, allowed 3201..=4200 (set by \
         protection.cell_over_voltage_mv.recommended = 4200)"
    );
    // The ceiling may equal the tier: charging stops at it, the tier trips only beyond.
    let mut config = tesla();
    charge(&mut config).cell_max_mv = MilliVolts(4_151);
    assert_eq!(error(&config).part, Some("cell_max_mv"));
    charge(&mut config).cell_max_mv = MilliVolts(4_150);
    assert_eq!(config.validate(), Ok(()));
}
