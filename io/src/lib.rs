//! cellwarden-io: the real-time transports that put the core's sans-IO drivers and codecs on
//! real ports, for every program that runs cellwarden on a host (the simulator's servers today,
//! the daemon and the bench next).
//!
//! Each transport is one tokio task, or a value used from one, that owns a port and waits for
//! whichever comes first, bytes or a state machine's next deadline, then dispatches and
//! drains. Nothing here decides anything about a battery: a transport moves bytes and frames,
//! converts time and forwards events; what a reading or a frame means, and what to do about it,
//! is the core's business. So this crate depends on `cellwarden-core` only, never on the
//! simulator.
//!
//! - [`time`]: the one conversion between the runtime's clock and the core's `Instant`.
//! - [`serial`]: serial ports at the Tesla ring's baud rate, and pseudo-terminal pairs.
//! - [`tesla_master`]: the core's Tesla bus master on a port ([`MasterDriver`]).
//! - [`can`]: CAN buses behind one [`CanPort`](can::CanPort): a deterministic in-memory bus for
//!   virtual time, and ports over socketcand (client, and a server for virtual buses),
//!   SocketCAN or in-process channels, with the candump log format.

pub mod can;
pub mod serial;
pub mod tesla_master;
pub mod time;

pub use serial::{Pty, SerialStream, TESLA_BAUD, open_tesla_port};
pub use tesla_master::{MasterDriver, MasterHandle, PTY_REPLY_MARGIN_US, USB_REPLY_MARGIN_US};
pub use time::Clock;
