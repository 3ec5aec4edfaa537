//! The cell model against a measured drive cycle of a Panasonic NCR18650PF cell at 25 °C
//! (Kollmeyer, Mendeley Data doi:10.17632/wykht8y7tg.1, CC-BY-4.0; in the shared data folder
//! beside the repository).

use cellwarden_sim::plant::{Cell, CellParams};

const DATA: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pan18650pf_25C_Cycle_1_1s.csv");

/// One row: time (s), current (A, + charge), voltage (V), temperature (°C), cumulative charge
/// (Ah).
struct Sample {
    time_s: f64,
    current_a: f64,
    voltage_v: f64,
    temp_c: f64,
}

fn load() -> Vec<Sample> {
    let text = std::fs::read_to_string(DATA).unwrap_or_else(|e| panic!("reading {DATA}: {e}"));
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with("time_s"))
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let f: Vec<f64> = line.split(',').map(|x| x.trim().parse().unwrap()).collect();
            Sample { time_s: f[0], current_a: f[1], voltage_v: f[2], temp_c: f[3] }
        })
        .collect()
}

#[test]
fn drive_cycle_voltage_rms_below_20_mv() {
    let samples = load();
    assert!(samples.len() > 10_000);
    // The cycle starts fully charged (SoC 1) at the cell's measured temperature, in the 25 °C
    // chamber. Each sample's current is held for the 1 s to the next sample; the model's
    // voltage at the end of that second, at that current, is compared with the sample's
    // voltage.
    let mut cell = Cell::new(CellParams::pan18650pf(), 1.0, samples[0].temp_c);
    cell.set_ambient_c(25.0);
    let mut sum_sq = 0.0;
    let mut count = 0usize;
    let mut worst: f64 = 0.0;
    let mut previous_time = samples[0].time_s - 1.0;
    for s in &samples {
        cell.step(s.time_s - previous_time, s.current_a);
        previous_time = s.time_s;
        let soc = cell.soc();
        if (0.2..=1.0).contains(&soc) {
            let err = cell.terminal_voltage_v() - s.voltage_v;
            sum_sq += err * err;
            count += 1;
            worst = worst.max(err.abs());
        }
    }
    let rms_mv = (sum_sq / count as f64).sqrt() * 1000.0;
    println!(
        "NCR18650PF 25 °C drive cycle: {count} samples at SoC 20-100 %, RMS error {rms_mv:.2} mV, \
         worst {:.1} mV; model end temperature {:.2} °C (measured {:.2} °C)",
        worst * 1000.0,
        cell.temp_c(),
        samples.last().map_or(0.0, |s| s.temp_c),
    );
    assert!(count > 8000, "{count}");
    assert!(rms_mv < 20.0, "RMS error {rms_mv:.2} mV");
}
