//! socketcand: CAN buses over TCP, for machines (or containers, or CI runners) without kernel
//! CAN, as python-can's `socketcand` interface and the linux-can `socketcand` daemon speak it.
//!
//! Messages are ASCII, each framed as `< ... >` with no separator or length. A client opens one
//! bus per connection: the server greets with `< hi >`, the client sends `< open BUS >`, the
//! server answers `< ok >`, the client sends `< rawmode >`, the server answers `< ok >`. Then
//! the client sends `< send ID DLC B0 B1 .. >` and receives `< frame ID SEC.USEC DATA >`. An
//! identifier is written with 3 hex digits for 11 bits and 8 for 29 bits.
//!
//! - [`wire`]: finding, parsing and writing messages, without IO.
//! - [`SocketcandClient`]: one bus of a server, for a process that takes part in a bus.
//! - [`SocketcandHub`]: a server for the simulator's virtual buses, with a [`HubPort`] per bus
//!   for the simulator's own devices.

mod client;
mod conn;
mod hub;
pub mod wire;

pub use client::{ClientCounters, HANDSHAKE_TIMEOUT, SocketcandClient};
pub use hub::{
    CLIENT_QUEUE, HUB_HANDSHAKE_TIMEOUT, HUB_IDLE_TIMEOUT, HubCounters, HubLimits, HubPort,
    LOCAL_QUEUE, MAX_CLIENTS, RAWMODE_SETTLE, SocketcandHub, WRITE_TIMEOUT,
};
pub use wire::Stamp;

/// The port socketcand listens on by default.
pub const DEFAULT_PORT: u16 = 29536;
