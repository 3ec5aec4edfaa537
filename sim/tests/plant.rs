//! Behaviour of the battery plant: capacity, RC and thermal responses, precharge, shorts,
//! contactors, spread and outliers, parallel strings, and robustness against bad input.

use cellwarden_core::ContactorId;
use cellwarden_sim::plant::{
    BusParams, BusSource, Cell, CellParams, Chemistry, CurrentSensor, Outlier, Plant, PlantSpec,
    Spread,
};
use cellwarden_sim::rng::SimRng;

fn bus() -> BusParams {
    BusParams {
        capacitance_f: 2e-3,
        precharge_ohm: 50.0,
        bleed_ohm: 100e3,
        short_ohm: None,
        source: None,
    }
}

/// A Tesla pack of `modules` modules (6 groups, 2 sensors each), no spread.
fn tesla(modules: u16, strings: u16, soc: f64) -> PlantSpec {
    PlantSpec {
        cell: CellParams::tesla_group(),
        series_per_module: 6,
        modules,
        strings,
        sensors_per_module: 2,
        initial_soc: soc,
        initial_temp_c: 25.0,
        ambient_c: 25.0,
        spread: Spread::default(),
        bus: bus(),
    }
}

fn close_mains(plant: &mut Plant) {
    plant.set_contactor(ContactorId::Negative, true);
    plant.set_contactor(ContactorId::Positive, true);
}

/// Resistance factor of the model relative to 25 °C (k = 3500 K).
fn arrhenius(temp_c: f64) -> f64 {
    (3500.0 * (1.0 / (temp_c + 273.15) - 1.0 / 298.15)).exp()
}

#[test]
fn one_c_for_one_hour_empties_a_full_pack() {
    let mut plant = Plant::new(&tesla(16, 1, 1.0), 1);
    close_mains(&mut plant);
    for _ in 0..3600 {
        plant.step(1.0, -233.0);
    }
    assert!(plant.mean_soc().abs() < 0.002, "{}", plant.mean_soc());
    // The bleed resistor takes a few mA of the inverter's current.
    assert!((plant.current_a() + 233.0).abs() < 0.01, "{}", plant.current_a());
    let e = plant.energy();
    // About 3.6 V × 233 Ah × 96 = 80 kWh.
    assert!(e.discharged_wh > 75e3 && e.discharged_wh < 85e3, "{e:?}");
    assert_eq!(e.charged_wh, 0.0);
    assert!(e.heat_wh > 0.0);
}

#[test]
fn charging_loses_the_coulombic_efficiency() {
    let p = CellParams::tesla_group();
    let mut cell = Cell::new(p, 0.2, 25.0);
    cell.step(3600.0, 100.0);
    let expected = 0.2 + 100.0 * 0.999 / 233.0 - p.self_discharge_per_day / 24.0;
    assert!((cell.soc() - expected).abs() < 1e-12, "{} vs {expected}", cell.soc());
}

#[test]
fn rc_step_response() {
    let p = CellParams::pan18650pf();
    let mut cell = Cell::new(p, 0.6, 25.0);
    let i = -3.0;
    // Immediately after the step only R0 acts.
    cell.step(1e-6, i);
    let drop = cell.terminal_voltage_v() - cell.ocv_v();
    assert!((drop / (i * p.r0_ohm) - 1.0).abs() < 1e-4, "{drop}");
    // After one time constant the RC pair has reached 1 − 1/e of i R1 (the cell warms by
    // about 0.3 K: correct the resistances for it).
    let mut t = 1e-6;
    while t < p.tau1_s {
        cell.step(0.01, i);
        t += 0.01;
    }
    let rf = arrhenius(cell.temp_c());
    let drop = cell.terminal_voltage_v() - cell.ocv_v();
    let expected = i * rf * (p.r0_ohm + p.r1_ohm * (1.0 - (-1.0f64).exp()));
    assert!((drop / expected - 1.0).abs() < 2e-3, "{drop} vs {expected}");
    // Long after: R0 + R1 (small steps: the resistances follow the warming cell).
    for _ in 0..2000 {
        cell.step(0.01 * p.tau1_s, i);
    }
    let rf = arrhenius(cell.temp_c());
    let drop = cell.terminal_voltage_v() - cell.ocv_v();
    assert!((drop / (i * rf * (p.r0_ohm + p.r1_ohm)) - 1.0).abs() < 2e-3);
}

#[test]
fn rc_and_charge_do_not_depend_on_the_step_length() {
    let p = CellParams::tesla_group();
    let mut coarse = Cell::new(p, 0.5, 25.0);
    let mut fine = Cell::new(p, 0.5, 25.0);
    coarse.step(60.0, -100.0);
    for _ in 0..60_000 {
        fine.step(1e-3, -100.0);
    }
    assert!((coarse.soc() - fine.soc()).abs() < 1e-12);
    assert!((coarse.terminal_voltage_v() - fine.terminal_voltage_v()).abs() < 1e-4);
    assert!((coarse.temp_c() - fine.temp_c()).abs() < 1e-3);
}

#[test]
fn thermal_steady_state_is_heat_over_conductance() {
    // A heater alone: ΔT = P / G exactly.
    let mut plant = Plant::new(&tesla(1, 1, 0.5), 1);
    plant.set_group_heater_w(3, 10.0);
    plant.set_ambient_c(20.0);
    for _ in 0..100 {
        plant.step(3600.0, 0.0);
    }
    let g = CellParams::tesla_group().ambient_conductance_w_per_k;
    assert!((plant.group_temps_c()[3] - 20.0 - 10.0 / g).abs() < 1e-6);
    assert!((plant.group_temps_c()[0] - 20.0).abs() < 1e-9);

    // Current: ΔT = I² (R0 + R1) r(T) / G. A huge capacity keeps the SoC in place.
    let p = CellParams {
        chemistry: Chemistry::Nca,
        capacity_ah: 1e9,
        r0_ohm: 1e-3,
        r1_ohm: 1e-3,
        tau1_s: 10.0,
        self_discharge_per_day: 0.0,
        coulombic_efficiency: 1.0,
        heat_capacity_j_per_k: 1000.0,
        ambient_conductance_w_per_k: 2.0,
    };
    let mut cell = Cell::new(p, 0.5, 25.0);
    for _ in 0..20_000 {
        cell.step(1.0, 100.0);
    }
    let rise = cell.temp_c() - 25.0;
    let expected = 100.0 * 100.0 * 2e-3 * arrhenius(cell.temp_c()) / 2.0;
    assert!(rise > 5.0 && (rise - expected).abs() < 0.02, "{rise} vs {expected}");
}

#[test]
fn precharge_time_constant_is_r_c() {
    let mut plant = Plant::new(&tesla(16, 1, 0.5), 1);
    let pack = plant.pack_voltage_v();
    assert!(pack > 340.0 && pack < 370.0, "{pack}");
    plant.set_contactor(ContactorId::Negative, true);
    plant.set_contactor(ContactorId::Precharge, true);
    assert!(!plant.connected());
    let rc = 50.0 * 2e-3;
    for _ in 0..100 {
        plant.step(rc / 100.0, 500.0);
    }
    let ratio = plant.bus_voltage_v() / pack;
    assert!((ratio - (1.0 - (-1.0f64).exp())).abs() < 2e-3, "{ratio}");
    // The pack delivers the charging current of the capacitor, not the inverter's (the mean
    // over the last step is 0.5 % above the end-of-step value).
    let expected_a = -(pack - plant.bus_voltage_v()) / 50.0;
    assert!((plant.current_a() / expected_a - 1.005).abs() < 2e-3);
    assert!(plant.pack_voltage_v() < pack);
    // One long step gives the same answer as many short ones.
    let mut one = Plant::new(&tesla(16, 1, 0.5), 1);
    one.set_contactor(ContactorId::Negative, true);
    one.set_contactor(ContactorId::Precharge, true);
    one.step(rc, 0.0);
    assert!((one.bus_voltage_v() - plant.bus_voltage_v()).abs() < 0.05);
    // After 5 RC the bus is within 1 %; closing the positive main then joins bus and pack.
    for _ in 0..400 {
        plant.step(rc / 100.0, 0.0);
    }
    assert!(plant.bus_voltage_v() / pack > 0.99);
    plant.set_contactor(ContactorId::Positive, true);
    plant.set_contactor(ContactorId::Precharge, false);
    assert!(plant.connected());
    plant.step(0.01, -100.0);
    assert_eq!(plant.bus_voltage_v(), plant.pack_voltage_v());
    // The capacitor's charge moves by 2 mF × a few volts within the 10 ms.
    assert!((plant.current_a() + 100.0).abs() < 1.0, "{}", plant.current_a());
}

#[test]
fn closing_without_precharge_takes_an_inrush_charge() {
    let mut plant = Plant::new(&tesla(16, 1, 0.5), 1);
    let pack = plant.pack_voltage_v();
    close_mains(&mut plant);
    plant.step(1e-3, 0.0);
    // The capacitor's charge C V came from the pack within the step.
    let charge = -plant.current_a() * 1e-3;
    assert!((charge / (2e-3 * pack) - 1.0).abs() < 0.05, "{charge}");
    plant.step(1e-3, 0.0);
    assert!(plant.current_a().abs() < 0.01);
    assert_eq!(plant.bus_voltage_v(), plant.pack_voltage_v());
}

#[test]
fn a_short_keeps_the_bus_low() {
    let mut plant = Plant::new(&tesla(16, 1, 0.5), 1);
    let pack = plant.pack_voltage_v();
    plant.set_bus_short(Some(0.1));
    plant.set_contactor(ContactorId::Negative, true);
    plant.set_contactor(ContactorId::Precharge, true);
    for _ in 0..1000 {
        plant.step(1e-3, 0.0);
    }
    assert!(plant.bus_voltage_v() < 0.01 * pack, "{}", plant.bus_voltage_v());
    assert!((plant.current_a() + pack / 50.1).abs() < 0.5, "{}", plant.current_a());
    // A short on a closed bus: V / (R_pack + R_short).
    plant.set_contactor(ContactorId::Positive, true);
    plant.step(1e-3, 0.0); // the capacitor charges to the new bus voltage within the step
    plant.step(1e-3, 0.0);
    let r_pack = 96.0 * CellParams::tesla_group().r0_ohm;
    let expected = -pack / (r_pack + 0.1);
    assert!((plant.current_a() / expected - 1.0).abs() < 0.05, "{}", plant.current_a());
    // Removed: the bus recovers.
    plant.set_bus_short(None);
    plant.step(1e-3, 0.0);
    assert!(plant.bus_voltage_v() > 0.98 * pack);
}

#[test]
fn open_bus_decays_through_the_bleed() {
    let mut plant = Plant::new(&tesla(16, 1, 0.5), 1);
    close_mains(&mut plant);
    plant.step(1.0, 0.0);
    let v = plant.bus_voltage_v();
    plant.set_contactor(ContactorId::Positive, false);
    plant.step(200.0, -50.0); // R C = 200 s; the inverter's current does not flow
    assert_eq!(plant.current_a(), 0.0);
    assert!((plant.bus_voltage_v() / v - (-1.0f64).exp()).abs() < 1e-9);
}

#[test]
fn a_welded_contactor_stays_closed() {
    let mut plant = Plant::new(&tesla(2, 1, 0.5), 1);
    close_mains(&mut plant);
    plant.weld(ContactorId::Positive);
    plant.set_contactor(ContactorId::Positive, false);
    plant.set_contactor(ContactorId::Negative, false);
    assert!(plant.contactor_closed(ContactorId::Positive));
    assert!(!plant.contactor_closed(ContactorId::Negative));
    assert!(!plant.connected());
    // Welded while open: closes on the next command and sticks.
    plant.weld(ContactorId::Negative);
    assert!(!plant.contactor_closed(ContactorId::Negative));
    plant.set_contactor(ContactorId::Negative, true);
    plant.set_contactor(ContactorId::Negative, false);
    assert!(plant.connected());
    plant.step(1e-3, -10.0); // inrush into the bus capacitor
    plant.step(1.0, -10.0);
    assert!((plant.current_a() + 10.0).abs() < 0.01);
}

#[test]
fn spread_is_deterministic_per_seed() {
    let mut spec = tesla(16, 1, 0.5);
    spec.spread =
        Spread { capacity_pct: 2.0, resistance_pct: 5.0, soc_pct: 1.0, ..Spread::default() };
    let run = |seed: u64| {
        let mut plant = Plant::new(&spec, seed);
        close_mains(&mut plant);
        for _ in 0..600 {
            plant.step(1.0, -100.0);
        }
        (plant.group_socs().to_vec(), plant.group_voltages().to_vec())
    };
    let (a_soc, a_v) = run(7);
    let (b_soc, b_v) = run(7);
    assert_eq!(a_soc, b_soc);
    assert_eq!(a_v, b_v);
    let (c_soc, _) = run(8);
    assert_ne!(a_soc, c_soc);
    // The SoC spread is about 1 point.
    let mean = a_soc.iter().sum::<f64>() / 96.0;
    let sd = (a_soc.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 96.0).sqrt();
    assert!(sd > 0.005 && sd < 0.02, "{sd}");
    // Without spread all groups are the same.
    let mut plain = Plant::new(&tesla(16, 1, 0.5), 7);
    close_mains(&mut plain);
    plain.step(10.0, -100.0);
    assert!(plain.group_voltages().iter().all(|v| *v == plain.group_voltages()[0]));
}

#[test]
fn an_outlier_runs_ahead_on_charge_and_bad_ones_are_ignored() {
    let weak = Outlier { group: 5, capacity_pct: -8.0, resistance_pct: 20.0, soc_pct: 2.0 };
    let mut spec = tesla(2, 1, 0.9);
    spec.spread.outliers.push(weak);
    let mut plant = Plant::new(&spec, 1);
    let start = plant.group_socs().to_vec();
    assert!((start[5] - 0.92).abs() < 1e-12 && start[4] == 0.9, "{start:?}");
    assert!(
        (plant.group_capacity_ah(5).unwrap() / plant.group_capacity_ah(4).unwrap() - 0.92).abs()
            < 1e-12
    );
    let (r0_weak, _) = plant.group_resistances_ohm(5).unwrap();
    assert!((r0_weak / plant.group_resistances_ohm(4).unwrap().0 - 1.2).abs() < 1e-12);
    close_mains(&mut plant);
    for _ in 0..600 {
        plant.step(1.0, 50.0);
    }
    let socs = plant.group_socs();
    let gained = |g: usize| socs[g] - start[g];
    assert!((gained(5) / gained(4) - 1.0 / 0.92).abs() < 1e-3, "{socs:?}");
    let v = plant.group_voltages();
    assert!(v.iter().enumerate().all(|(g, x)| g == 5 || *x < v[5]), "{v:?}");

    // Groups that do not exist, non-finite changes and factors below zero do no harm.
    let mut odd = tesla(2, 1, 0.9);
    let nan =
        Outlier { group: 3, capacity_pct: f64::NAN, resistance_pct: f64::NAN, soc_pct: f64::NAN };
    odd.spread.outliers.push(nan);
    odd.spread.outliers.push(Outlier { group: 12, soc_pct: 5.0, ..Outlier::default() });
    odd.spread.outliers.push(Outlier {
        group: 7,
        capacity_pct: -300.0,
        soc_pct: 50.0,
        ..Outlier::default()
    });
    let odd = Plant::new(&odd, 1);
    let plain = Plant::new(&tesla(2, 1, 0.9), 1);
    assert_eq!(odd.group_capacity_ah(3), plain.group_capacity_ah(3));
    assert_eq!(odd.group_socs()[3], plain.group_socs()[3]);
    assert_eq!(odd.group_capacity_ah(12), None);
    assert!(odd.group_capacity_ah(7).unwrap() > 0.0 && odd.group_socs()[7] == 1.0);
}

#[test]
fn strings_share_current_by_their_thevenin_voltages() {
    let mut spec = tesla(4, 3, 0.5);
    spec.spread =
        Spread { capacity_pct: 0.0, resistance_pct: 10.0, soc_pct: 0.0, ..Spread::default() };
    let mut plant = Plant::new(&spec, 3);
    close_mains(&mut plant);
    plant.step(1e-3, 0.0); // inrush
    plant.step(1.0, -150.0);
    let i = plant.string_currents_a().to_vec();
    assert!((i.iter().sum::<f64>() - plant.current_a()).abs() < 1e-9);
    assert!((plant.current_a() + 150.0).abs() < 0.01);
    // Equal open-circuit voltages: the currents differ with the resistances…
    // (10 % per group is about 2 % per string of 24 groups.)
    assert!((i[0] - i[1]).abs() > 0.1 && (i[1] - i[2]).abs() > 0.1, "{i:?}");
    // …so that every string sits at the same terminal voltage.
    let string_v: Vec<f64> =
        plant.group_voltages().chunks(24).map(|c| c.iter().sum::<f64>()).collect();
    for v in &string_v {
        assert!((v - string_v[0]).abs() < 2e-3, "{string_v:?}");
    }

    // Strings at different SoC circulate current at rest.
    let mut spec = tesla(4, 2, 0.5);
    spec.spread =
        Spread { capacity_pct: 0.0, resistance_pct: 0.0, soc_pct: 3.0, ..Spread::default() };
    let mut plant = Plant::new(&spec, 5);
    close_mains(&mut plant);
    plant.step(1e-3, 0.0); // inrush
    plant.step(1.0, 0.0);
    let i = plant.string_currents_a();
    assert!(i[0].abs() > 5.0 && (i[0] + i[1]).abs() < 0.01, "{i:?}");
    // Left alone the strings equalise.
    for _ in 0..20_000 {
        plant.step(10.0, 0.0);
    }
    assert!(plant.string_currents_a()[0].abs() < 0.05, "{:?}", plant.string_currents_a());
}

#[test]
fn sensors_average_their_share_of_the_module() {
    let mut spec = tesla(2, 1, 0.5);
    spec.sensors_per_module = 4; // 6 groups: shares 0, 1..3, 3, 4..6
    let mut plant = Plant::new(&spec, 1);
    assert_eq!(plant.sensor_count(), 8);
    plant.set_group_heater_w(6 + 4, 10.0);
    plant.step(100_000.0, 0.0);
    let mut out = vec![1.0; 3];
    plant.sensor_temps_c(&mut out);
    assert_eq!(out.len(), 8);
    let t = plant.group_temps_c();
    assert_eq!(out[0], t[0]);
    assert_eq!(out[1], (t[1] + t[2]) / 2.0);
    assert_eq!(out[7], (t[10] + t[11]) / 2.0);
    assert!(out[7] > 29.0 && out[6] < 25.1, "{out:?}");
    // More sensors than groups: every sensor reads one group.
    spec.sensors_per_module = 8;
    let plant = Plant::new(&spec, 1);
    plant.sensor_temps_c(&mut out);
    assert_eq!(out.len(), 16);
}

#[test]
fn leak_drains_and_heats_one_group() {
    let mut plant = Plant::new(&tesla(1, 1, 0.5), 1);
    plant.set_group_leak_a(2, 1.0);
    plant.step(3600.0, 0.0);
    let socs = plant.group_socs();
    assert!((socs[1] - socs[2] - 1.0 / 233.0).abs() < 1e-9);
    assert!(plant.group_temps_c()[2] > plant.group_temps_c()[1]);
    let heat_w = plant.energy().heat_wh;
    assert!(heat_w > 3.0 && heat_w < 4.0, "{heat_w}");
}

#[test]
fn overcharge_raises_the_voltage() {
    let mut plant = Plant::new(&tesla(1, 1, 1.0), 1);
    let full = plant.group_voltages()[0];
    close_mains(&mut plant);
    for _ in 0..600 {
        plant.step(1.0, 50.0);
    }
    plant.step(1.0, 0.0);
    assert!(plant.group_voltages()[0] > full + 0.03);
    assert!(plant.energy().charged_wh > 0.0);
}

#[test]
fn bad_input_never_panics() {
    let mut plant = Plant::new(&tesla(2, 2, 0.5), 1);
    close_mains(&mut plant);
    let before = plant.group_voltages().to_vec();
    for dt in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        plant.step(dt, 10.0);
    }
    assert_eq!(plant.group_voltages(), &before[..]);
    for i in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300, -1e300] {
        plant.step(1e-3, i);
    }
    plant.set_group_leak_a(1_000_000, 1.0);
    plant.set_group_heater_w(usize::MAX, 1.0);
    plant.set_group_leak_a(0, f64::NAN);
    plant.set_group_heater_w(0, f64::INFINITY);
    plant.set_ambient_c(f64::NAN);
    plant.set_bus_short(Some(f64::NAN));
    plant.set_bus_short(Some(-1.0));
    plant.set_bus_short(Some(0.0));
    plant.step(1.0, 0.0);
    plant.step(3600.0 * 1e6, 0.0);
    plant.step(1e-300, 0.0);
    let mut out = Vec::new();
    plant.sensor_temps_c(&mut out);
    assert!(out.iter().all(|t| !t.is_nan()));

    // Degenerate specs.
    let mut spec = tesla(0, 0, f64::NAN);
    spec.initial_temp_c = f64::NAN;
    spec.spread =
        Spread { capacity_pct: f64::NAN, resistance_pct: 1e9, soc_pct: -5.0, ..Spread::default() };
    spec.bus = BusParams {
        capacitance_f: f64::NAN,
        precharge_ohm: -1.0,
        bleed_ohm: 0.0,
        short_ohm: Some(f64::NAN),
        source: Some(BusSource { volts: f64::NAN, ohms: -1.0 }),
    };
    spec.cell = CellParams {
        chemistry: Chemistry::Lfp,
        capacity_ah: 0.0,
        r0_ohm: f64::NAN,
        r1_ohm: -1.0,
        tau1_s: 0.0,
        self_discharge_per_day: f64::INFINITY,
        coulombic_efficiency: 2.0,
        heat_capacity_j_per_k: 0.0,
        ambient_conductance_w_per_k: f64::NAN,
    };
    for (modules, strings, series) in [(0, 0, 0), (1, 2, 0), (0, 1, 6), (1, 0, 6), (2, 2, 3)] {
        spec.modules = modules;
        spec.strings = strings;
        spec.series_per_module = series;
        let mut p = Plant::new(&spec, 1);
        close_mains(&mut p);
        p.set_contactor(ContactorId::Precharge, true);
        p.step(1.0, -10.0);
        p.step(1e-6, 10.0);
        p.set_group_leak_a(0, 1.0);
        p.step(1.0, 0.0);
        p.sensor_temps_c(&mut out);
        assert_eq!(out.len(), p.sensor_count());
        assert_eq!(p.group_count(), usize::from(modules * strings * series));
        assert!(p.mean_soc().is_finite());
        assert!(p.pack_voltage_v().is_finite() && p.bus_voltage_v().is_finite());
        assert!(p.group_voltages().iter().all(|v| v.is_finite()));
        let e = p.energy();
        assert!(e.charged_wh.is_finite() && e.discharged_wh.is_finite() && e.heat_wh.is_finite());
    }
    let mut sensor = CurrentSensor::new(f64::NAN, f64::INFINITY, -1.0, SimRng::stream(1, "x"));
    assert!(sensor.measure(f64::NAN).is_finite());
}

#[test]
fn lfp_pack_sits_on_the_plateau() {
    let spec = PlantSpec {
        cell: CellParams::lfp_cell(100.0),
        series_per_module: 16,
        modules: 1,
        strings: 1,
        sensors_per_module: 2,
        initial_soc: 0.5,
        initial_temp_c: 25.0,
        ambient_c: 25.0,
        spread: Spread::default(),
        bus: bus(),
    };
    let plant = Plant::new(&spec, 1);
    let v = plant.pack_voltage_v() / 16.0;
    assert!(v > 3.28 && v < 3.32, "{v}");
}
