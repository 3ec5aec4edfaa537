//! Transports: the core's sans-IO drivers and the simulator's device emulators on real byte
//! streams, in real time.
//!
//! Each transport is one tokio task that owns its state machine and its port and waits for
//! whichever comes first, bytes or the machine's next deadline, then dispatches and drains.
//! They hold no policy: they move bytes, convert time and forward events.
//!
//! - [`time`]: the one conversion between the runtime's clock and the core's `Instant`.
//! - [`serial`]: serial ports at the Tesla ring's baud rate, and pseudo-terminal pairs.
//! - [`tesla_master`]: the core's Tesla bus master on a port ([`MasterDriver`]).
//! - [`tesla_ring`]: the emulated ring of Tesla module boards served on a port
//!   ([`RingServer`]), with fixed or plant-driven analogue inputs.
//! - [`can`]: CAN buses: a deterministic in-memory bus for the engine, and ports over
//!   socketcand, SocketCAN or in-process channels, with the candump log format.

pub mod can;
pub mod serial;
pub mod tesla_master;
pub mod tesla_ring;
pub mod time;

pub use serial::{Pty, SerialStream, TESLA_BAUD, open_tesla_port};
pub use tesla_master::{MasterDriver, MasterHandle, PTY_REPLY_MARGIN_US, USB_REPLY_MARGIN_US};
pub use tesla_ring::{AnalogSource, FixedAnalog, PlantAnalog, RingServer, Served};
pub use time::Clock;
