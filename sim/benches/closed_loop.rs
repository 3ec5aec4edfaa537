//! The whole closed loop: plant, measurement front end, core and engine, a 96-group Tesla pack
//! with a full measurement cycle every 100 ms (10 per simulated second), following a home
//! profile. Reported in simulated seconds per wall second (criterion's throughput is simulated
//! seconds per second; the explicit figure is printed first). One thread, like every run.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use cellwarden_sim::engine;
use cellwarden_sim::scenario::{Scenario, load_str};
use criterion::{Criterion, Throughput};

/// A home with PV on a 16-module pack; no expectations, no trace rows beyond one a minute.
fn scenario(duration: &str) -> Scenario {
    let text = format!(
        r#"
name = "closed-loop benchmark"
seed = 1
duration = "{duration}"

[system]
preset = "tesla_model_s"
modules = 16

[plant]
initial_soc = 0.5
spread = {{ capacity_pct = 1.5, resistance_pct = 5.0, soc_pct = 0.5 }}

[sensors]
measure_period = "100ms"
current_noise_a = 0.2

[output]
trace_interval = "1m"

[[timeline]]
at = "0s"
command = "start"

[[timeline]]
at = "10s"
load = {{ kind = "home", pv_peak_w = 6000.0 }}
"#
    );
    load_str(Path::new("closed_loop.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let day = scenario("24h");
    let mut best = 0.0f64;
    let mut steps = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let report = engine::run(&day, &mut |_, _| {});
        let factor = 86_400.0 / start.elapsed().as_secs_f64();
        best = best.max(factor);
        steps = report.summary.plant_steps;
        black_box(report);
    }
    println!(
        "closed loop: 96-group pack, 24 h home day, 10 measurement cycles per simulated second: \
         {best:.0} simulated seconds per wall second ({:.2} s per simulated day, {steps} plant \
         steps, best of 3)",
        86_400.0 / best
    );

    let hour = scenario("1h");
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("closed_loop");
    group.throughput(Throughput::Elements(3_600));
    group.sample_size(10);
    group.bench_function("tesla_96_groups_home_hour_100ms", |b| {
        b.iter(|| engine::run(black_box(&hour), &mut |_, _| {}))
    });
    group.finish();
    c.final_summary();
}
