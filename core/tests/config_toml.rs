//! Loading a `Config` from TOML (the `serde` feature): a complete file written by hand equals
//! the preset it describes, and a typo is an error that names the field, never a silently
//! ignored limit.

#![cfg(feature = "serde")]

use cellwarden_core::{Bms, CellChemistry, Config, Instant, MilliVolts};

/// `Config::lfp_16s(100)`, written out by hand.
const LFP_16S_100AH: &str = r#"
chemistry = "lfp"
cell_count = 16
temperature_count = 4
charge_current_max_ma = 50000
discharge_current_max_ma = 100000
operating_limit_derate = 500
idle_current_ma = 500
hardware_fault_line = false

[protection.cell_over_voltage_mv]
operating = 3550
recommended = 3650
maximum = 3750
hysteresis = 50
debounce_ms = 200

[protection.cell_under_voltage_mv]
operating = 2900
recommended = 2800
maximum = 2500
hysteresis = 100
debounce_ms = 200

[protection.pack_over_voltage_mv]
operating = 56800
recommended = 58400
maximum = 60000
hysteresis = 320
debounce_ms = 200

[protection.pack_under_voltage_mv]
operating = 46400
recommended = 44800
maximum = 40000
hysteresis = 800
debounce_ms = 200

[protection.charge_over_current_ma]
operating = 55000
recommended = 60000
maximum = 75000
hysteresis = 2750
debounce_ms = 100

[protection.discharge_over_current_ma]
operating = 110000
recommended = 120000
maximum = 150000
hysteresis = 5500
debounce_ms = 100

[protection.charge_over_temperature_dc]
operating = 400
recommended = 450
maximum = 500
hysteresis = 20
debounce_ms = 1000

[protection.charge_under_temperature_dc]
operating = 100
recommended = 20
maximum = 0
hysteresis = 20
debounce_ms = 1000

[protection.discharge_over_temperature_dc]
operating = 500
recommended = 550
maximum = 600
hysteresis = 20
debounce_ms = 1000

[protection.discharge_under_temperature_dc]
operating = -100
recommended = -200
maximum = -250
hysteresis = 20
debounce_ms = 1000

[protection.cell_imbalance_mv]
operating = 50
recommended = 150
maximum = 400
hysteresis = 10
debounce_ms = 2000

# No recommended tier: a tier left out is not checked.
[protection.pack_voltage_mismatch_mv]
operating = 320
maximum = 1600
hysteresis = 80
debounce_ms = 1000

[freshness]
cell_voltage_ms = 2000
temperature_ms = 5000
current_ms = 500
pack_voltage_ms = 1000
bus_voltage_ms = 1000
frozen_samples = 20
frozen_current_ma = 2000
frozen_move_mv = 5

[contactors]
feedback_timeout_ms = 250
close_settle_ms = 100
precharge_timeout_ms = 3000
precharge_band_mv = 800
precharge_done_current_ma = 1000
precharge_short_current_ma = 15000
precharge_rise_check_ms = 500
precharge_min_rise = 200
precharge_attempts = 3
precharge_retry_delay_ms = 5000
break_current_ma = 2000
graceful_open_timeout_ms = 5000
link_decay_ms = 5000

[contactors.feedback]
negative = false
precharge = false
positive = false

[balance]
enabled = true
start_mv = 3400
delta_mv = 10
hysteresis_mv = 5
idle_only = false
idle_filter_ms = 2000
idle_hysteresis_ma = 250
max_cells = 16
cells_per_board = 16
board_temperature_max_dc = 500
bleed_window_ms = 30000
measure_window_ms = 5000
settle_ms = 1000
rest_after_load_ms = 120000
"#;

fn parse(text: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn a_complete_file_equals_the_preset_it_describes() {
    let config = parse(LFP_16S_100AH).expect("valid TOML");
    // The file has no `charge` and `soc` sections: a configuration without them runs protection
    // alone, with no charge controller and no SoC estimate.
    let preset = Config::lfp_16s(100);
    assert_eq!(config, Config { charge: None, soc: None, ..preset.clone() });
    assert_eq!(config.protection.pack_voltage_mismatch_mv.recommended, None);
    assert!(Bms::new(config, Instant::ZERO).is_ok());
    // The preset's two sections, written out and read back, are the preset's.
    let full = toml::to_string(&preset).expect("the preset serialises");
    assert!(full.contains("[charge]") && full.contains("[soc]"), "{full}");
    assert_eq!(parse(&full).expect("valid TOML"), preset);
}

#[test]
fn a_changed_value_is_loaded() {
    let text = LFP_16S_100AH.replace("maximum = 3750", "maximum = 3700");
    let config = parse(&text).expect("valid TOML");
    assert_eq!(config.protection.cell_over_voltage_mv.maximum, Some(MilliVolts(3_700)));
    assert_ne!(config, Config::lfp_16s(100));
}

#[test]
fn an_unknown_field_is_rejected_by_name() {
    let text = LFP_16S_100AH.replace("maximum = 3750", "maximun = 3750");
    let e = parse(&text).expect_err("typo must be rejected").to_string();
    assert!(e.contains("unknown field `maximun`"), "{e}");
}

#[test]
fn an_unknown_top_level_field_is_rejected_by_name() {
    let text = format!("cell_overvoltage_msl_mv = 4250\n{LFP_16S_100AH}");
    let e = parse(&text).expect_err("unknown field").to_string();
    assert!(e.contains("cell_overvoltage_msl_mv"), "{e}");
}

#[test]
fn a_missing_field_without_a_default_is_rejected_by_name() {
    let text = LFP_16S_100AH.replace("current_ms = 500\n", "");
    let e = parse(&text).expect_err("missing field").to_string();
    assert!(e.contains("missing field `current_ms`"), "{e}");
}

#[test]
fn a_loaded_file_is_still_validated() {
    // Parsing checks shape, not safety: a bad tier order parses but does not validate.
    let text = LFP_16S_100AH.replace("recommended = 3650", "recommended = 3500");
    let config = parse(&text).expect("valid TOML");
    let e = config.validate().expect_err("tiers out of order");
    assert_eq!((e.field, e.part), ("protection.cell_over_voltage_mv", Some("recommended")));
}

#[test]
fn a_shared_dc_link_is_read_and_needs_feedback_on_both_mains() {
    // Left out, the link is dedicated (the file above equals the preset without it).
    let shared =
        LFP_16S_100AH.replace("link_decay_ms = 5000", "link_decay_ms = 5000\ndc_link = \"shared\"");
    let config = parse(&shared).expect("valid TOML");
    assert_eq!(config.contactors.dc_link, cellwarden_core::DcLink::Shared);
    let e = config.validate().expect_err("no feedback");
    assert_eq!(e.field, "contactors.dc_link");
    assert!(e.to_string().contains("needs contactors.feedback.negative = true"), "{e}");
    let typo =
        LFP_16S_100AH.replace("link_decay_ms = 5000", "link_decay_ms = 5000\ndc_link = \"sharde\"");
    let e = parse(&typo).expect_err("unknown variant").to_string();
    assert!(e.contains("dedicated") && e.contains("shared"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// The chemistry and its envelope.

#[test]
fn a_file_without_a_chemistry_gets_the_generic_lithium_envelope() {
    // Files written before `chemistry` existed still load, checked against the limits every
    // lithium-ion cell shares (2000..=4400 mV per cell).
    let text = LFP_16S_100AH.replace("chemistry = \"lfp\"\n", "");
    let config = parse(&text).expect("valid TOML");
    assert_eq!(config.chemistry, CellChemistry::GenericLithium);
    assert_eq!(config.validate(), Ok(()));
    // The generic envelope is wider than LFP's: an over-voltage maximum of 4000 mV passes it but
    // not the LFP one.
    let text = text.replace("maximum = 3750", "maximum = 4000");
    assert_eq!(parse(&text).expect("valid TOML").validate(), Ok(()));
    let lfp = parse(&LFP_16S_100AH.replace("maximum = 3750", "maximum = 4000")).expect("TOML");
    assert_eq!(
        lfp.validate().expect_err("beyond LFP").to_string(),
        "protection.cell_over_voltage_mv.maximum: 4000 is out of range, allowed 2000..=3800 \
         (the limits of an LFP cell, chemistry = \"lfp\")"
    );
}

#[test]
fn an_unknown_chemistry_is_rejected_with_the_valid_ones() {
    let text = LFP_16S_100AH.replace("chemistry = \"lfp\"", "chemistry = \"lifepo4\"");
    let e = parse(&text).expect_err("unknown chemistry").to_string();
    assert!(e.contains("unknown variant `lifepo4`"), "{e}");
    assert!(e.contains("`nca`") && e.contains("`lfp`") && e.contains("`generic_lithium`"), "{e}");
}

#[test]
fn a_file_with_an_over_voltage_maximum_of_i32_max_is_refused_by_the_envelope() {
    let text = LFP_16S_100AH.replace("maximum = 3750", "maximum = 2147483647");
    let config = parse(&text).expect("valid TOML: the number fits an i32");
    assert_eq!(
        config.validate().expect_err("beyond any cell").to_string(),
        "protection.cell_over_voltage_mv.maximum: 2147483647 is out of range, allowed \
         2000..=3800 (the limits of an LFP cell, chemistry = \"lfp\")"
    );
}

#[test]
fn a_file_whose_charge_ceiling_passes_protection_is_refused() {
    // The preset with its charge section, written out, with the ceiling moved above the
    // over-voltage tiers (3550 / 3650 / 3750).
    let full = toml::to_string(&Config::lfp_16s(100)).expect("the preset serialises");
    assert!(full.contains("cell_max_mv = 3550"), "{full}");
    for (mv, message) in [
        (
            "10000",
            "charge.cell_max_mv: 10000 is out of range, allowed 2901..=3550 (set by \
             protection.cell_over_voltage_mv.operating = 3550)",
        ),
        (
            "3700",
            "charge.cell_max_mv: 3700 is out of range, allowed 2901..=3550 (set by \
             protection.cell_over_voltage_mv.operating = 3550)",
        ),
    ] {
        let text = full.replace("cell_max_mv = 3550", &format!("cell_max_mv = {mv}"));
        let config = parse(&text).expect("valid TOML");
        assert_eq!(config.validate().expect_err("above protection").to_string(), message);
    }
}

/// Issue 15, item 5: the series cell count is held once, in `cell_count` at the top. A file
/// written before, with its own count in `[charge]`, is refused naming that key (the charge
/// section rejects unknown keys), so it cannot silently disagree with the pack; the SoC section,
/// which never rejected unknown keys, still loads with its old `cells_in_series`.
#[test]
fn a_series_count_of_its_own_in_a_section_is_refused_or_ignored() {
    let full = toml::to_string(&Config::lfp_16s(100)).expect("the preset serialises");
    assert!(!full.contains("cells_in_series"), "{full}");
    assert_eq!(full.matches("cell_count").count(), 1, "{full}");

    let old_charge = full.replace("[charge]\n", "[charge]\ncell_count = 16\n");
    let e = parse(&old_charge).expect_err("a second count must be refused").to_string();
    assert!(e.contains("unknown field `cell_count`"), "{e}");
    assert!(e.contains("charge"), "{e}");

    let old_soc = full.replace("[soc]\n", "[soc]\ncells_in_series = 16\n");
    assert_eq!(parse(&old_soc).expect("still loads"), Config::lfp_16s(100));
}
