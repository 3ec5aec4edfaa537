//! The parallel system's configuration where an inverter's protocol and the packs' voltages
//! meet: a string whose voltage low-voltage CAN cannot carry is refused, naming the field, the
//! value and the allowed range. And the `[combiner]` key `limit_ramp`.

use std::path::Path;

use cellwarden_sim::scenario::load_str;

fn system(modules: u16, protocol: &str) -> String {
    format!(
        r#"
name = "HV string behind an inverter"
seed = 1
duration = "1m"

[system]
preset = "tesla_model_s"
modules = {modules}

[[inverters]]
protocol = "{protocol}"
"#
    )
}

#[test]
fn a_string_above_what_0x356_carries_is_refused_behind_a_low_voltage_can_inverter() {
    // 16 Tesla modules: 96 NCA groups, up to 96 × 4.3 V = 412.8 V; 0x356 carries 327.67 V.
    let text = system(16, "victron");
    let e = load_str(Path::new("hv.toml"), &text).expect_err("refused");
    assert_eq!(e.field, "system.modules");
    assert!(e.problem.contains("412.80 V"), "{}", e.problem);
    assert!(e.problem.contains("327.67 V"), "{}", e.problem);
    assert!(e.problem.contains("0..=327670 mV"), "{}", e.problem);
    assert!(e.problem.contains("inverters[0]"), "{}", e.problem);
    assert_eq!(e.line, Some(text.lines().position(|l| l.starts_with("modules")).unwrap() + 1));
}

#[test]
fn the_same_string_behind_a_byd_can_inverter_and_a_short_one_behind_lv_can_load() {
    load_str(Path::new("hv.toml"), &system(16, "byd")).expect("BYD HVS CAN carries 412.8 V");
    load_str(Path::new("lv.toml"), &system(2, "victron")).expect("12 groups fit");
}

/// `[combiner] limit_ramp`: left out, a pack's default; `"0s"` turns the ramp off; beyond the
/// longest configurable time it is refused, naming the key.
#[test]
fn the_combiners_limit_ramp_defaults_turns_off_and_is_bounded() {
    let ramp = |line: &str| {
        let text = format!("{}\n[combiner]\n{line}\n", system(2, "victron"));
        load_str(Path::new("ramp.toml"), &text)
    };
    let ms =
        |line: &str| ramp(line).expect("loads").parallel.expect("parallel").combiner.limit_ramp_ms;
    assert_eq!(ms(""), cellwarden_core::DEFAULT_LIMIT_RAMP_MS);
    assert_eq!(ms("limit_ramp = \"0s\""), 0);
    assert_eq!(ms("limit_ramp = \"2s\""), 2_000);
    let e = ramp("limit_ramp = \"30d\"").expect_err("refused");
    assert_eq!(e.field, "combiner.limit_ramp");
}
