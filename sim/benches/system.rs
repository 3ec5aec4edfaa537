//! A parallel system: three Pylontech-style racks on one DC bus, the core's combiner, and a
//! Victron-style inverter, every frame through the core's codecs over in-memory CAN, 10 ms ticks.
//! Reported in simulated seconds per wall second, and in frames per wall second (the explicit
//! figures are printed first). One thread, like every run.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use cellwarden_sim::engine;
use cellwarden_sim::scenario::{Scenario, load_str};
use criterion::{Criterion, Throughput};

/// Three racks discharging, then charging; no expectations, one trace row a minute.
fn scenario(duration: &str) -> Scenario {
    let text = format!(
        r#"
name = "parallel-system benchmark"
seed = 1
duration = "{duration}"

[[can_packs]]
capacity_ah = 50.0
initial_soc = 0.45

[[can_packs]]
capacity_ah = 100.0
initial_soc = 0.55

[[can_packs]]
capacity_ah = 50.0
initial_soc = 0.60

[[inverters]]
protocol = "victron"

[output]
trace_interval = "1m"

[[timeline]]
at = "10s"
load = {{ kind = "steps", unit = "amps", points = [["0s", -40.0], ["30m", 50.0]] }}
"#
    );
    load_str(Path::new("system.toml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn main() {
    let hour = scenario("1h");
    let mut best = 0.0f64;
    let mut frames = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let report = engine::run(&hour, &mut |_, _| {});
        let factor = 3_600.0 / start.elapsed().as_secs_f64();
        best = best.max(factor);
        let system = report.summary.system.as_ref().expect("a parallel system");
        frames = system.inverters.iter().map(|i| i.frames_from + i.frames_to).sum::<u64>();
        black_box(report);
    }
    println!(
        "parallel system: 3 racks, combiner, 1 inverter, event-driven, 1 h: {best:.0} simulated \
         seconds per wall second ({:.2} s per simulated hour; {frames} frames on the inverter's \
         bus alone, best of 3)",
        3_600.0 / best
    );

    let minutes = scenario("10m");
    let mut c = Criterion::default().configure_from_args();
    let mut group = c.benchmark_group("system");
    group.throughput(Throughput::Elements(600));
    group.sample_size(10);
    group.bench_function("three_racks_victron_10m", |b| {
        b.iter(|| engine::run(black_box(&minutes), &mut |_, _| {}))
    });
    group.finish();
    c.final_summary();
}
