//! cellwarden-sim: the battery plant, the device emulators, the deterministic scenario engine,
//! the reports, and the emulated ring served in real time.
//!
//! A scenario file (`scenarios/*.toml`) names a system, a timeline and expectations.
//! [`scenario::load`] checks it, [`engine::run`] (a loop over the steppable
//! [`engine::Engine`]) runs it in virtual time against the real
//! `cellwarden-core`, driving the core exactly as a hardware adapter would (measurements with
//! their sample times in, actions out and applied to the plant), and returns a
//! [`report::Report`]. The same scenario gives the same report and trace, byte for byte.
//!
//! - `plant/`: cell equivalent circuit, packs, thermal model, DC bus, current sensor.
//! - `profile.rs`: inverter demand over time (constant, steps, ramps, a home day, CSV).
//! - `devices/`: emulators of the devices a BMS talks to: a ring of Tesla Model S module boards
//!   (register-level, byte for byte, with its timing and injected faults), Pylontech-style CAN
//!   rack-battery BMSes, and inverters on low-voltage CAN (Victron, SMA, Pylontech-compatible) and
//!   BYD HVS CAN.
//! - `ring_server.rs`: the emulated ring of Tesla module boards served on a real serial port or
//!   pseudo-terminal in real time. The transports themselves (serial ports, the core's bus
//!   master on a port, the CAN ports and the in-memory bus the engines use) are `cellwarden-io`.
//! - `scenario/`: the file format, loading and checking.
//! - `engine/`: the one engine, steppable: virtual time, the controller seam, the measurement
//!   front end, the module boards and the core's board bridge, fault injection, expectations;
//!   one pack with its inverter, or a parallel system (packs on one DC bus, the core's gateway
//!   and combiner, inverters, every frame over in-memory CAN buses).
//! - `report/`: the text report, the CSV trace and the SVG plot.
//! - `rng.rs`: one seeded random stream per component.
//! - `span.rs`: durations as scenario files write them.
//! - `text_file.rs`: reading scenario files and CSV profiles with a size cap.
//!
//! The modules form no `use` cycle (`cargo xtask tidy`, `xtask/src/cycles.rs`).

pub mod devices;
pub mod engine;
pub mod plant;
pub mod profile;
pub mod report;
pub mod ring_server;
pub mod rng;
mod round;
pub mod scenario;
pub mod span;
pub mod text_file;
