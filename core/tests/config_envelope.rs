//! Config validation against the chemistry's physical envelope and across parts (issue 14,
//! item 3): every protection tier inside the envelope, the windows the right way round, each
//! hysteresis within its tier gaps, and charge control, balancing and the SoC anchors inside
//! protection's window. Each refusal is checked with its message. The cases the issue names are
//! in `config.rs`.

use cellwarden_core::charge::{ChargeConfig, Table};
use cellwarden_core::soc::SocConfig;
use cellwarden_core::{
    Bound, CellChemistry, Config, ConfigError, DeciCelsius, MilliAmps, MilliVolts, Problem,
    Thresholds,
};

fn lfp() -> Config {
    Config::lfp_16s(100)
}

fn tesla() -> Config {
    Config::tesla_model_s(16)
}

fn error(config: &Config) -> ConfigError {
    config.validate().expect_err("config must be rejected")
}

fn message(config: &Config) -> String {
    error(config).to_string()
}

fn charge(config: &mut Config) -> &mut ChargeConfig {
    config.charge.as_mut().expect("preset has charge control")
}

// ---------------------------------------------------------------------------------------------
// Protection against the envelope.

#[test]
fn an_under_voltage_tier_below_the_envelope_is_refused() {
    let mut config = tesla();
    config.protection.cell_under_voltage_mv.maximum = Some(MilliVolts(0));
    assert_eq!(
        message(&config),
        "protection.cell_under_voltage_mv.maximum: 0 is out of range, allowed 2500..=4300 \
         (the limits of an NCA/NMC cell, chemistry = \"nca\")"
    );
}

#[test]
fn pack_voltage_tiers_are_checked_against_the_envelope_times_the_cell_count() {
    let mut config = tesla();
    // 96 cells: 240000..=412800 mV.
    config.protection.pack_over_voltage_mv.maximum = Some(MilliVolts(412_801));
    assert_eq!(
        message(&config),
        "protection.pack_over_voltage_mv.maximum: 412801 is out of range, allowed \
         240000..=412800 (96 cells times the limits of an NCA/NMC cell, chemistry = \"nca\")"
    );
    config.protection.pack_over_voltage_mv.maximum = Some(MilliVolts(412_800));
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn temperature_tiers_are_checked_against_the_charge_and_discharge_windows() {
    // Charging below 0 °C plates lithium: no charge tier may allow it.
    let mut config = lfp();
    config.protection.charge_under_temperature_dc.maximum = Some(DeciCelsius(-50));
    assert_eq!(
        message(&config),
        "protection.charge_under_temperature_dc.maximum: -50 is out of range, allowed 0..=550 \
         (the limits of an LFP cell, chemistry = \"lfp\")"
    );
    let mut config = lfp();
    config.protection.discharge_over_temperature_dc.maximum = Some(DeciCelsius(800));
    assert_eq!(
        message(&config),
        "protection.discharge_over_temperature_dc.maximum: 800 is out of range, allowed \
         -300..=700 (the limits of an LFP cell, chemistry = \"lfp\")"
    );
}

#[test]
fn current_and_spread_tiers_must_be_positive_and_physical() {
    let mut config = lfp();
    config.protection.charge_over_current_ma.operating = Some(MilliAmps(0));
    assert_eq!(
        message(&config),
        "protection.charge_over_current_ma.operating: 0 is out of range, allowed \
         1..=2147483647 (a magnitude, above zero)"
    );
    // Two LFP cells cannot differ by more than 3800 - 2000 mV: a larger tier never trips.
    let mut config = lfp();
    config.protection.cell_imbalance_mv.maximum = Some(MilliVolts(5_000));
    assert_eq!(
        message(&config),
        "protection.cell_imbalance_mv.maximum: 5000 is out of range, allowed 1..=1800 \
         (the limits of an LFP cell, chemistry = \"lfp\")"
    );
}

#[test]
fn the_under_tiers_must_lie_below_the_over_tiers_of_the_same_quantity() {
    let mut config = lfp();
    // Both inside the envelope, but every voltage from 3550 mV up would be too low and too
    // high at once.
    config.protection.cell_under_voltage_mv = Thresholds {
        operating: Some(MilliVolts(3_600)),
        ..config.protection.cell_under_voltage_mv
    };
    assert_eq!(
        message(&config),
        "protection.cell_under_voltage_mv.operating: 3600 is out of range, allowed 2000..=3549 \
         (set by protection.cell_over_voltage_mv.operating = 3550)"
    );
    let mut config = lfp();
    config.protection.charge_under_temperature_dc.operating = Some(DeciCelsius(400));
    assert_eq!(
        message(&config),
        "protection.charge_under_temperature_dc.operating: 400 is out of range, allowed 0..=399 \
         (set by protection.charge_over_temperature_dc.operating = 400)"
    );
}

#[test]
fn hysteresis_must_be_positive_and_at_most_the_gap_between_tiers() {
    // LFP over-voltage tiers 3550 / 3650 / 3750: gaps of 100.
    let mut config = lfp();
    config.protection.cell_over_voltage_mv.hysteresis = MilliVolts(101);
    assert_eq!(
        message(&config),
        "protection.cell_over_voltage_mv.hysteresis: 101 is out of range, allowed 1..=100 \
         (at most the gap between the operating and recommended tiers, 100)"
    );
    // Equal is consistent: the recommended tier releases at 3550, where the operating tier
    // (raised only above 3550) would not be raised.
    config.protection.cell_over_voltage_mv.hysteresis = MilliVolts(100);
    assert_eq!(config.validate(), Ok(()));
    config.protection.cell_over_voltage_mv.hysteresis = MilliVolts(0);
    assert_eq!(
        error(&config),
        ConfigError {
            field: "protection.cell_over_voltage_mv",
            part: Some("hysteresis"),
            problem: Problem::OutOfRange { value: 0, min: 1, max: 100 },
        }
    );
    // A narrower gap further up binds instead.
    let mut config = lfp();
    config.protection.cell_over_voltage_mv.maximum = Some(MilliVolts(3_670));
    config.protection.cell_over_voltage_mv.hysteresis = MilliVolts(30);
    assert_eq!(
        message(&config),
        "protection.cell_over_voltage_mv.hysteresis: 30 is out of range, allowed 1..=20 \
         (at most the gap between the recommended and maximum tiers, 20)"
    );
    // A rule that is switched off needs none.
    let mut config = lfp();
    let off = &mut config.protection.cell_imbalance_mv;
    (off.operating, off.recommended, off.maximum, off.hysteresis) =
        (None, None, None, MilliVolts(0));
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn a_single_tier_must_be_able_to_release() {
    // An over-current tier of 5 A with 6 A of hysteresis would need a current below -1 A.
    let mut config = lfp();
    config.charge_current_max_ma = MilliAmps(4_000);
    config.protection.charge_over_current_ma = Thresholds {
        operating: None,
        recommended: None,
        maximum: Some(MilliAmps(5_000)),
        hysteresis: MilliAmps(6_000),
        debounce_ms: 100,
    };
    if let Some(charge) = &mut config.charge {
        charge.charge_current_max_ma = MilliAmps(4_000);
        charge.float_current_max_ma = MilliAmps(4_000);
    }
    assert_eq!(
        message(&config),
        "protection.charge_over_current_ma.hysteresis: 6000 is out of range, allowed 1..=5000 \
         (the maximum tier at 5000 must release before the value reaches 0)"
    );
}

// ---------------------------------------------------------------------------------------------
// Charge control, balancing and SoC against protection.

#[test]
fn charge_targets_lie_strictly_inside_the_mildest_tiers() {
    // LFP: over-voltage operating 3550, under-voltage operating 2900.
    let mut config = lfp();
    let c = charge(&mut config);
    c.full_charge_cell_mv = MilliVolts(3_545);
    c.absorption_cell_mv = MilliVolts(3_545);
    c.cell_max_mv = MilliVolts(3_550);
    c.cvl_margin_mv = MilliVolts(5);
    assert_eq!(config.validate(), Ok(()));
    // The float voltage at the under-voltage operating tier would warn in float.
    let mut config = lfp();
    let c = charge(&mut config);
    c.cvl_floor_cell_mv = MilliVolts(2_800);
    c.rebulk_cell_mv = MilliVolts(2_850);
    c.float_cell_mv = MilliVolts(2_900);
    let e = error(&config);
    assert_eq!((e.field, e.part), ("charge", Some("float_cell_mv")));
    assert_eq!(
        e.to_string(),
        "charge.float_cell_mv: 2900 is out of range, allowed 2901..=3549 (set by \
         protection.cell_under_voltage_mv.operating = 2900)"
    );
}

#[test]
fn a_pack_tier_tighter_than_the_cell_tiers_bounds_the_charge_voltage() {
    // An inverter that takes at most 56.0 V: the pack over-voltage operating tier at 56000 mV
    // is 3500 mV per cell, below the cell tier (3550), so the absorption voltage of 3500 mV per
    // cell (56.0 V) would warn at every charge.
    let mut config = lfp();
    config.protection.pack_over_voltage_mv.operating = Some(MilliVolts(56_000));
    assert_eq!(
        message(&config),
        "charge.cell_max_mv: 3550 is out of range, allowed 2901..=3500 (set by \
         protection.pack_over_voltage_mv.operating = 56000 over 16 cells)"
    );
    let c = charge(&mut config);
    c.cell_max_mv = MilliVolts(3_500);
    c.full_charge_cell_mv = MilliVolts(3_495);
    c.absorption_start_cell_mv = MilliVolts(3_490);
    c.absorption_cell_mv = MilliVolts(3_480);
    // The charge table, which stopped the current at the old ceiling, must follow.
    assert_eq!(error(&config).part, Some("charge_by_cell_max_mv"));
    charge(&mut config).charge_by_cell_max_mv =
        Table::new(&[(3_350, 1_000), (3_500, 0)]).expect("valid table");
    assert_eq!(config.validate(), Ok(()));
    // Likewise at the bottom: a pack under-voltage operating tier of 51200 mV is 3200 mV per
    // cell, and the CVL floor must lie strictly above it.
    let mut config = lfp();
    config.protection.pack_under_voltage_mv.operating = Some(MilliVolts(51_200));
    assert_eq!(
        message(&config),
        "charge.cvl_floor_cell_mv: 3200 is out of range, allowed 3201..=3549 (set by \
         protection.pack_under_voltage_mv.operating = 51200 over 16 cells)"
    );
}

#[test]
fn where_a_cell_voltage_table_stops_the_current_is_a_target_too() {
    let mut config = lfp();
    charge(&mut config).charge_by_cell_max_mv =
        Table::new(&[(3_400, 1_000), (3_600, 0)]).expect("valid table");
    assert_eq!(
        message(&config),
        "charge.charge_by_cell_max_mv: 3600 is out of range, allowed 2901..=3550 (set by \
         protection.cell_over_voltage_mv.operating = 3550)"
    );
    // A table that never reaches zero sets no target: the ceiling ends the charge.
    charge(&mut config).charge_by_cell_max_mv =
        Table::new(&[(3_400, 1_000), (3_600, 200)]).expect("valid table");
    assert_eq!(config.validate(), Ok(()));
    let mut config = lfp();
    charge(&mut config).discharge_by_cell_min_mv =
        Table::new(&[(2_850, 0), (3_100, 1_000)]).expect("valid table");
    assert_eq!(
        message(&config),
        "charge.discharge_by_cell_min_mv: 2850 is out of range, allowed 2900..=3549 (set by \
         protection.cell_under_voltage_mv.operating = 2900)"
    );
}

#[test]
fn balancing_starts_inside_protections_window() {
    let mut config = tesla();
    config.balance.start_mv = MilliVolts(4_150);
    assert_eq!(
        message(&config),
        "balance.start_mv: 4150 is out of range, allowed 3201..=4149 (set by \
         protection.cell_over_voltage_mv.operating = 4150)"
    );
}

#[test]
fn soc_anchors_lie_inside_protections_window_and_the_table_fits_the_chemistry() {
    // The empty anchor may lie past the under-voltage operating tier, not past the maximum one.
    let mut config = tesla();
    config.soc.as_mut().expect("preset").empty_cell_mv = MilliVolts(2_800);
    assert_eq!(
        message(&config),
        "soc.empty_cell_mv: 2800 is out of range, allowed 2801..=4149 (set by \
         protection.cell_under_voltage_mv.maximum = 2800)"
    );
    let mut config = tesla();
    config.soc.as_mut().expect("preset").usable_full_ocv_mv = MilliVolts(4_160);
    assert_eq!(
        message(&config),
        "soc.usable_full_ocv_mv: 4160 is out of range, allowed 3201..=4149 (set by \
         protection.cell_over_voltage_mv.operating = 4150)"
    );
    let mut config = tesla();
    config.soc = Some(SocConfig::lfp_16s(233));
    let e = error(&config);
    assert_eq!((e.field, e.part), ("soc", Some("chemistry")));
    assert_eq!(
        e.to_string(),
        "soc.chemistry: the lfp OCV table does not fit an NCA/NMC cell, chemistry = \"nca\""
    );
    // A generic pack may use either table.
    config.chemistry = CellChemistry::GenericLithium;
    config.soc = Some(SocConfig::tesla_model_s(16));
    assert_eq!(config.validate(), Ok(()));
}

/// Issue 15, item 5: no charge voltage limit per cell above protection's over-voltage tiers.
/// Whichever over-voltage tier is the mildest one set (operating, else recommended, else
/// maximum), a charge ceiling above it is refused, naming the charge field and the tier that
/// bounds it; the charge voltage targets, which the controller keeps at or below
/// `cell_max_mv - cvl_margin_mv`, are refused at the tier itself.
#[test]
fn a_charge_voltage_limit_above_any_over_voltage_tier_is_refused() {
    type Tier = fn(&mut Thresholds<MilliVolts>) -> &mut Option<MilliVolts>;
    let tiers: [(&str, Tier); 3] = [
        ("operating", |t| &mut t.operating),
        ("recommended", |t| &mut t.recommended),
        ("maximum", |t| &mut t.maximum),
    ];
    for (index, (name, tier)) in tiers.iter().enumerate() {
        let mut config = lfp();
        // Leave out the milder tiers, of the cells and of the pack alike.
        for (_, milder) in &tiers[..index] {
            *milder(&mut config.protection.cell_over_voltage_mv) = None;
            *milder(&mut config.protection.pack_over_voltage_mv) = None;
        }
        let limit = tier(&mut config.protection.cell_over_voltage_mv).expect("preset sets it").0;
        assert_eq!(config.validate(), Ok(()), "{name}");

        // The charge ceiling (and with it the charge voltage limit) just above the tier.
        let c = charge(&mut config);
        c.cell_max_mv = MilliVolts(limit + 1);
        c.full_charge_cell_mv = MilliVolts(limit - 5);
        let e = error(&config);
        assert_eq!((e.field, e.part), ("charge", Some("cell_max_mv")), "{name}");
        match e.problem {
            Problem::OutOfRangeFor {
                value, max, bound: Bound::Tier { field, tier, .. }, ..
            } => {
                assert_eq!((value, max), (i64::from(limit) + 1, i64::from(limit)), "{name}");
                assert_eq!((field, tier), ("protection.cell_over_voltage_mv", *name));
            }
            other => panic!("{name}: {other:?}"),
        }
        assert!(e.to_string().contains(&format!("cell_over_voltage_mv.{name} = {limit}")), "{e}");

        // At the tier the ceiling is allowed; a target there is not, however it is set.
        charge(&mut config).cell_max_mv = MilliVolts(limit);
        charge(&mut config).charge_by_cell_max_mv =
            Table::new(&[(3_400, 1_000), (limit, 0)]).expect("valid table");
        assert_eq!(config.validate(), Ok(()), "{name}");
        for target in [
            |c: &mut ChargeConfig, mv| c.full_charge_cell_mv = mv,
            |c: &mut ChargeConfig, mv| {
                c.absorption_cell_mv = mv;
                c.full_charge_cell_mv = mv;
            },
            |c: &mut ChargeConfig, mv| c.absorption_start_cell_mv = mv,
        ] {
            let mut config = config.clone();
            target(charge(&mut config), MilliVolts(limit));
            let e = error(&config);
            assert_eq!(e.field, "charge", "{name}");
            assert!(
                matches!(
                    e.part,
                    Some("full_charge_cell_mv" | "absorption_cell_mv" | "absorption_start_cell_mv")
                ),
                "{name}: {e}"
            );
        }
    }
}
