//! cellwarden-sim: the battery plant, the deterministic scenario engine and the reports.
//!
//! A scenario file (`scenarios/*.toml`) names a system, a timeline and expectations.
//! [`scenario::load`] checks it, [`engine::run`] runs it in virtual time against the real
//! `cellwarden-core`, driving the core exactly as a hardware adapter would (measurements with
//! their sample times in, actions out and applied to the plant), and returns a
//! [`report::Report`]. The same scenario gives the same report and trace, byte for byte.
//!
//! - `plant/`: cell equivalent circuit, packs, thermal model, DC bus, current sensor.
//! - `profile.rs`: inverter demand over time (constant, steps, ramps, a home day, CSV).
//! - `scenario/`: the file format, loading and checking.
//! - `engine/`: virtual time, the measurement front end, the inverter, fault injection,
//!   expectations.
//! - `report/`: the text report, the CSV trace and the SVG plot.

pub mod devices;
pub mod engine;
pub mod plant;
pub mod profile;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod transport;
