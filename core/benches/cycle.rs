//! The cost of one control cycle of the core, as an adapter drives it.
//!
//! One iteration is one cycle: advance a virtual clock by the 10 ms control period, feed every
//! measurement of a closed pack (cells, temperatures, current, pack and bus voltage, the hardware
//! fault line), call
//! `handle_timeout`, drain `poll_action` after every call and ask `poll_timeout`. The reported
//! time per iteration is therefore the time per cycle.
//!
//! - `full_cycle_96_cells`: a 16-module Tesla Model S pack (96 cells, 32 sensors).
//! - `full_cycle_192_cells`: a 32-module pack (192 cells, 64 sensors), the `MAX_CELLS` case.
//! - `batched_cycle_96_cells`: the 96-cell cycle with the five readings delivered as one
//!   `handle_inputs` batch (one evaluation pass instead of five), as the simulator does.
//! - `evaluate_only`: `handle_timeout` alone on the 96-cell pack, with fresh data, so the split
//!   between evaluation and input handling is visible (every `handle_input` ends with the same
//!   evaluation pass).

use std::hint::black_box;
use std::time::Duration as WallDuration;

use cellwarden_core::{
    Action, Bms, Command, Config, ContactorId, DeciCelsius, Duration, Input, Instant, MilliAmps,
    MilliVolts, SequenceState,
};
use criterion::{Criterion, criterion_group, criterion_main};

/// The control period of the adapter loop.
const PERIOD: Duration = Duration::from_millis(10);
/// Longest the setup may take to close the pack, in control periods (10 s).
const CLOSE_PERIODS_MAX: u32 = 1_000;
/// A steady charging current, well inside every limit.
const CHARGE_MA: i32 = 20_000;

/// A closed pack and the adapter state that feeds it.
struct Harness {
    bms: Bms,
    /// Deliver each cycle's readings as one `handle_inputs` batch.
    batched: bool,
    now: Instant,
    /// Cycle counter; its low bits vary the readings so no input is constant.
    cycle: u32,
    /// Per-cell base voltages with a small spread.
    base_mv: Vec<i32>,
    cells: Vec<MilliVolts>,
    temps: Vec<DeciCelsius>,
}

impl Harness {
    /// A `Config::tesla_model_s(modules)` pack driven closed: everything fed, `Start`, then
    /// cycles until the sequence reports `Closed`.
    fn closed(modules: u16) -> Harness {
        let config = Config::tesla_model_s(modules);
        let cell_count = usize::from(config.cell_count);
        let temp_count = usize::from(config.temperature_count);
        let bms = Bms::new(config, Instant::ZERO).expect("preset is valid");
        let base_mv: Vec<i32> = (0..cell_count).map(|i| 3_800 + (i % 5) as i32).collect();
        let cells = base_mv.iter().map(|&mv| MilliVolts(mv)).collect();
        let temps = (0..temp_count).map(|i| DeciCelsius(250 + (i % 3) as i32)).collect();
        let mut h =
            Harness { bms, batched: false, now: Instant::ZERO, cycle: 0, base_mv, cells, temps };
        h.drain();
        // Zero current until closed, so the precharge check sees it settled.
        h.feed(0);
        h.bms.handle_input(h.now, Input::Command(Command::Start));
        h.drain();
        for _ in 0..CLOSE_PERIODS_MAX {
            if h.bms.status().sequence == SequenceState::Closed {
                break;
            }
            h.now += PERIOD;
            h.feed(0);
            h.bms.handle_timeout(h.now);
            h.drain();
        }
        assert_eq!(h.bms.status().sequence, SequenceState::Closed, "setup did not close the pack");
        h
    }

    /// One full control cycle.
    fn cycle(&mut self) -> Option<Instant> {
        self.now += PERIOD;
        self.cycle = self.cycle.wrapping_add(1);
        let jitter = (self.cycle & 3) as i32;
        for (cell, base) in self.cells.iter_mut().zip(&self.base_mv) {
            *cell = MilliVolts(base + jitter);
        }
        for t in &mut self.temps {
            t.0 = 250 + jitter;
        }
        self.feed(CHARGE_MA + jitter * 10);
        self.bms.handle_timeout(black_box(self.now));
        self.drain();
        self.bms.poll_timeout()
    }

    /// Feeds every measurement sampled now, draining after each call.
    fn feed(&mut self, current_ma: i32) {
        let now = self.now;
        let pack_mv = MilliVolts(self.cells.iter().map(|c| c.0).sum());
        // The DC link follows the contactors, as a healthy circuit's does: the core's weld
        // checks read it, and a link held at the pack while open would look like a weld.
        let closed = |c: ContactorId| self.bms.status().contactors[c.index()].commanded_closed;
        let linked = closed(ContactorId::Negative)
            && (closed(ContactorId::Positive) || closed(ContactorId::Precharge));
        let bus_mv = if linked { pack_mv } else { MilliVolts(0) };
        let inputs = [
            Input::CellVoltages { sampled_at: now, first: 0, mv: &self.cells },
            Input::Temperatures { sampled_at: now, first: 0, dc: &self.temps },
            Input::Current { sampled_at: now, ma: MilliAmps(current_ma) },
            Input::PackVoltage { sampled_at: now, mv: pack_mv },
            Input::BusVoltage { sampled_at: now, mv: bus_mv },
            // The module boards' hardware fault line, quiet (the preset says it exists).
            Input::HardwareFault { sampled_at: now, active: false },
        ];
        if self.batched {
            self.bms.handle_inputs(now, black_box(&inputs));
            drain(&mut self.bms);
            return;
        }
        for input in inputs {
            self.bms.handle_input(now, black_box(input));
            drain(&mut self.bms);
        }
    }

    fn drain(&mut self) {
        drain(&mut self.bms);
    }

    /// The benchmark measured a healthy closed pack, not one that tripped half-way.
    fn assert_still_closed(&self, name: &str) {
        let status = self.bms.status();
        assert_eq!(status.sequence, SequenceState::Closed, "{name}: pack left Closed");
        assert_eq!(status.latched(), None, "{name}: a fault latched");
        assert_eq!(status.counters.dropped_events, 0, "{name}: events were dropped");
    }
}

/// Drains every action, keeping each observable so the drain is not optimised away.
fn drain(bms: &mut Bms) {
    while let Some(action) = bms.poll_action() {
        let _: Action = black_box(action);
    }
}

fn full_cycle(c: &mut Criterion, name: &str, modules: u16, batched: bool) {
    let mut h = Harness::closed(modules);
    h.batched = batched;
    c.bench_function(name, |b| b.iter(|| h.cycle()));
    h.assert_still_closed(name);
}

fn benches(c: &mut Criterion) {
    full_cycle(c, "full_cycle_96_cells", 16, false);
    full_cycle(c, "full_cycle_192_cells", 32, false);
    full_cycle(c, "batched_cycle_96_cells", 16, true);

    let name = "evaluate_only";
    let mut h = Harness::closed(16);
    h.cycle();
    // Fresh data from the last cycle; the clock stays put (calling twice is harmless by
    // contract), so nothing goes stale however many iterations criterion runs.
    let now = h.now;
    c.bench_function(name, |b| {
        b.iter(|| {
            h.bms.handle_timeout(black_box(now));
            h.drain();
            h.bms.poll_timeout()
        })
    });
    h.assert_still_closed(name);
}

criterion_group! {
    name = cycle;
    config = Criterion::default()
        .warm_up_time(WallDuration::from_millis(500))
        .measurement_time(WallDuration::from_secs(3))
        .sample_size(50);
    targets = benches
}
criterion_main!(cycle);
