//! The plant alone: a 96-group Tesla pack (16 modules × 6 groups) over 24 simulated hours of a
//! home profile at 1 s steps. Reported per group-step (criterion's throughput is group-steps
//! per second; the explicit figure is printed first).

use std::hint::black_box;
use std::time::Instant;

use cellwarden_core::ContactorId;
use cellwarden_sim::plant::{BusParams, CellParams, Plant, PlantSpec, Spread};
use criterion::{BatchSize, Criterion, Throughput};

const DAY_S: usize = 86_400;
const GROUPS: usize = 96;

/// A home day, A (+ charge), for a 96S pack at about 355 V (1 A is about 0.36 kW): house load
/// 1 kW at night, 2 kW in the morning, 1 kW by day, 3.5 kW in the evening; PV charging as a
/// half-sine 08:00–17:00 peaking at 25 A (9 kW); a 2 kW kettle for three minutes every three
/// hours. Roughly balanced over the day.
fn home_profile() -> Vec<f64> {
    (0..DAY_S)
        .map(|t| {
            let h = t as f64 / 3600.0;
            let load = match h {
                h if h < 6.0 => 3.0,
                h if h < 8.0 => 6.0,
                h if h < 17.0 => 3.0,
                h if h < 23.0 => 10.0,
                _ => 5.0,
            };
            let pv = if (8.0..17.0).contains(&h) {
                25.0 * (std::f64::consts::PI * (h - 8.0) / 9.0).sin()
            } else {
                0.0
            };
            let kettle = if t % 10_800 < 180 { 6.0 } else { 0.0 };
            pv - load - kettle
        })
        .collect()
}

fn spec() -> PlantSpec {
    PlantSpec {
        cell: CellParams::tesla_group(),
        series_per_module: 6,
        modules: 16,
        strings: 1,
        sensors_per_module: 2,
        initial_soc: 0.6,
        initial_temp_c: 25.0,
        ambient_c: 22.0,
        spread: Spread {
            capacity_pct: 2.0,
            resistance_pct: 5.0,
            soc_pct: 1.0,
            ..Spread::default()
        },
        bus: BusParams {
            capacitance_f: 2e-3,
            precharge_ohm: 50.0,
            bleed_ohm: 100e3,
            short_ohm: None,
            source: None,
        },
    }
}

/// A fresh pack with its contactors closed and the bus charged.
fn connected_plant() -> Plant {
    let mut plant = Plant::new(&spec(), 42);
    plant.set_contactor(ContactorId::Negative, true);
    plant.set_contactor(ContactorId::Positive, true);
    plant.step(1e-3, 0.0);
    plant
}

fn run_day(plant: &mut Plant, profile: &[f64]) {
    for &amps in profile {
        plant.step(1.0, black_box(amps));
    }
}

/// Best of a few whole days, ns per group-step.
fn explicit_figure(profile: &[f64]) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..7 {
        let mut plant = connected_plant();
        let start = Instant::now();
        run_day(&mut plant, profile);
        let ns = start.elapsed().as_nanos() as f64 / (GROUPS * DAY_S) as f64;
        black_box(plant.mean_soc());
        best = best.min(ns);
    }
    best
}

fn main() {
    let profile = home_profile();
    let mut check = connected_plant();
    run_day(&mut check, &profile);
    let e = check.energy();
    println!(
        "plant: 96-group Tesla pack, 24 h home profile at 1 s: SoC 0.600 -> {:.3}, charged \
         {:.1} kWh, discharged {:.1} kWh, heat {:.0} Wh, hottest group {:.2} °C",
        check.mean_soc(),
        e.charged_wh / 1e3,
        e.discharged_wh / 1e3,
        e.heat_wh,
        check.group_temps_c().iter().cloned().fold(f64::NEG_INFINITY, f64::max),
    );
    let ns = explicit_figure(&profile);
    println!(
        "plant: {ns:.2} ns per group-step ({:.1} ms per pack-day, best of 7)",
        ns * (GROUPS * DAY_S) as f64 / 1e6
    );

    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("plant");
    group.throughput(Throughput::Elements((GROUPS * DAY_S) as u64));
    group.sample_size(10);
    group.bench_function("tesla_96_groups_home_day_1s", |b| {
        b.iter_batched(
            connected_plant,
            |mut plant| {
                run_day(&mut plant, &profile);
                plant
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    c.final_summary();
}
