//! Pacing: holding an engine to k times real time, for a TUI, a bench or a served system. The
//! engine itself knows only virtual time; this is the one place that reads a clock.

use cellwarden_core::{Duration, Instant};

use super::Engine;

/// How fast virtual time may run against the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct Pacer {
    /// Virtual seconds per wall second; `None` runs as fast as possible.
    speed: Option<f64>,
    wall_start: std::time::Instant,
    virtual_start: Instant,
}

impl Pacer {
    /// No pacing: every step runs at once.
    pub fn fastest() -> Pacer {
        Pacer { speed: None, wall_start: std::time::Instant::now(), virtual_start: Instant::ZERO }
    }

    /// `speed` times real time (1.0 is real time), from `virtual_start` now. A speed that is not
    /// a positive finite number runs as fast as possible.
    pub fn times(speed: f64, virtual_start: Instant) -> Pacer {
        let speed = (speed.is_finite() && speed > 0.0).then_some(speed);
        Pacer { speed, wall_start: std::time::Instant::now(), virtual_start }
    }

    /// The wall-clock instant at which virtual time `at` is due; `None` when unpaced.
    pub fn wall_deadline(&self, at: Instant) -> Option<std::time::Instant> {
        let speed = self.speed?;
        let virtual_us = at.saturating_since(self.virtual_start).as_micros() as f64;
        let wall = std::time::Duration::from_secs_f64(virtual_us / 1e6 / speed);
        Some(self.wall_start + wall)
    }

    /// Steps `engine` by `slice` of virtual time, then sleeps until the wall clock has caught
    /// up with it. Returns whether the run has more to do.
    pub fn step(&self, engine: &mut Engine<'_>, slice: Duration) -> bool {
        engine.step_for(slice);
        if let Some(deadline) = self.wall_deadline(engine.clock()) {
            let now = std::time::Instant::now();
            if deadline > now {
                std::thread::sleep(deadline - now);
            }
        }
        !engine.done()
    }
}
