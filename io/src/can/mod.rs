//! CAN buses: one frame type ([`Frame`]) on every carrier the simulator and the daemon use.
//!
//! - [`memory`]: [`MemoryBus`], a deterministic bus in memory for the virtual-time engine (no
//!   runtime, no clock).
//! - [`CanPort`]: one bus for a process in real time, whatever carries it: a socketcand server
//!   ([`socketcand`], plain TCP, works everywhere), a kernel interface ([`SocketCanPort`],
//!   Linux), a local member of the simulator's own hub ([`HubPort`]) or an in-process channel
//!   pair ([`ChannelPort`], for tests). [`CanPort::open`] takes the textual form a user gives
//!   on a command line.
//! - [`candump`]: can-utils' log format, to record traffic and to replay captures.
//!
//! A port moves frames and nothing else: what a frame means is the core's business.

pub mod candump;
pub mod memory;
pub mod socketcan;
pub mod socketcand;

use std::fmt;
use std::io;

pub use cellwarden_core::proto::can::Frame;
use tokio::sync::mpsc;

pub use candump::{LogLine, LogWriter, Replay, Replayed, format_line, parse_line};
pub use memory::{MemoryBus, NodeId, TapRecord};
pub use socketcan::SocketCanPort;
pub use socketcand::{HubPort, SocketcandClient, SocketcandHub};

/// One CAN bus for a process (see the module documentation).
#[derive(Debug)]
pub enum CanPort {
    /// A bus of a socketcand server over TCP.
    Socketcand(SocketcandClient),
    /// A kernel CAN interface.
    SocketCan(SocketCanPort),
    /// A local member of a [`SocketcandHub`] in this process.
    Hub(HubPort),
    /// One end of an in-process pair.
    Channel(ChannelPort),
}

impl CanPort {
    /// Opens the port `spec` names: `socketcand:HOST:PORT/BUS` (e.g.
    /// `socketcand:127.0.0.1:29536/can0`) or `socketcan:IFACE` (e.g. `socketcan:vcan0`). Must
    /// be called inside a tokio runtime with IO enabled.
    pub async fn open(spec: &str) -> io::Result<CanPort> {
        let spec = PortSpec::parse(spec)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err.to_string()))?;
        match spec {
            PortSpec::Socketcand { addr, bus } => {
                SocketcandClient::connect(addr.as_str(), &bus).await.map(CanPort::Socketcand)
            }
            PortSpec::SocketCan { iface } => SocketCanPort::open(&iface).map(CanPort::SocketCan),
        }
    }

    /// Sends a frame to the bus.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        match self {
            CanPort::Socketcand(port) => port.send(frame).await,
            CanPort::SocketCan(port) => port.send(frame).await,
            CanPort::Hub(port) => port.send(frame).await,
            CanPort::Channel(port) => port.send(frame).await,
        }
    }

    /// The next frame from the bus. Cancel safe for every kind of port.
    pub async fn recv(&mut self) -> io::Result<Frame> {
        match self {
            CanPort::Socketcand(port) => port.recv().await,
            CanPort::SocketCan(port) => port.recv().await,
            CanPort::Hub(port) => port.recv().await,
            CanPort::Channel(port) => port.recv().await,
        }
    }
}

/// A port named on a command line, before it is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSpec {
    /// `socketcand:HOST:PORT/BUS`; `addr` is `HOST:PORT`.
    Socketcand { addr: String, bus: String },
    /// `socketcan:IFACE`.
    SocketCan { iface: String },
}

/// Why a port name is not one [`PortSpec::parse`] understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError {
    spec: String,
    why: String,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CAN port `{}`: {}; expected socketcand:HOST:PORT/BUS (e.g. \
             socketcand:127.0.0.1:29536/can0) or socketcan:IFACE (e.g. socketcan:vcan0)",
            self.spec, self.why
        )
    }
}

impl std::error::Error for SpecError {}

impl PortSpec {
    /// Parses `socketcand:HOST:PORT/BUS` or `socketcan:IFACE`.
    pub fn parse(spec: &str) -> Result<PortSpec, SpecError> {
        let error = |why: &str| SpecError { spec: spec.to_owned(), why: why.to_owned() };
        if let Some(rest) = spec.strip_prefix("socketcand:") {
            let (addr, bus) = rest.rsplit_once('/').ok_or_else(|| error("no /BUS at the end"))?;
            let (host, port) =
                addr.rsplit_once(':').ok_or_else(|| error("no :PORT after the host"))?;
            if host.is_empty() {
                return Err(error("no host"));
            }
            if port.parse::<u16>().is_err() {
                return Err(error("the port is not a number from 0 to 65535"));
            }
            if !socketcand::wire::valid_bus_name(bus) {
                return Err(error(
                    "the bus name is not 1 to 16 printable characters without spaces or angle \
                     brackets",
                ));
            }
            Ok(PortSpec::Socketcand { addr: addr.to_owned(), bus: bus.to_owned() })
        } else if let Some(iface) = spec.strip_prefix("socketcan:") {
            let valid = (1..=candump::MAX_IFACE_LEN).contains(&iface.len())
                && iface.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
            if !valid {
                return Err(error("the interface name is not 1 to 15 printable characters"));
            }
            Ok(PortSpec::SocketCan { iface: iface.to_owned() })
        } else {
            Err(error("unknown kind of port"))
        }
    }
}

/// One end of an in-process pair of ports: what one end sends, the other receives, in order.
#[derive(Debug)]
pub struct ChannelPort {
    tx: mpsc::Sender<Frame>,
    rx: mpsc::Receiver<Frame>,
}

impl ChannelPort {
    /// Two connected ends, each holding up to `capacity` (at least one) frames the other has
    /// not taken yet; a sender waits while the other end's queue is full.
    pub fn pair(capacity: usize) -> (ChannelPort, ChannelPort) {
        let (a_tx, b_rx) = mpsc::channel(capacity.max(1));
        let (b_tx, a_rx) = mpsc::channel(capacity.max(1));
        (ChannelPort { tx: a_tx, rx: a_rx }, ChannelPort { tx: b_tx, rx: b_rx })
    }

    /// Sends a frame to the other end; fails once the other end is dropped.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        self.tx.send(*frame).await.map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the other end of the channel is gone")
        })
    }

    /// The next frame from the other end; fails once the other end is dropped and everything
    /// it sent is taken. Cancel safe.
    pub async fn recv(&mut self) -> io::Result<Frame> {
        self.rx.recv().await.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "the other end of the channel is gone")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_specs_parse_or_say_what_is_wrong() {
        assert_eq!(
            PortSpec::parse("socketcand:127.0.0.1:29536/can0"),
            Ok(PortSpec::Socketcand { addr: "127.0.0.1:29536".into(), bus: "can0".into() })
        );
        assert_eq!(
            PortSpec::parse("socketcand:[::1]:1/vcan0"),
            Ok(PortSpec::Socketcand { addr: "[::1]:1".into(), bus: "vcan0".into() })
        );
        assert_eq!(
            PortSpec::parse("socketcan:vcan0"),
            Ok(PortSpec::SocketCan { iface: "vcan0".into() })
        );
        for (spec, why) in [
            ("can0", "unknown kind of port"),
            ("socketcand:localhost:29536", "no /BUS"),
            ("socketcand:localhost/can0", "no :PORT"),
            ("socketcand:localhost:http/can0", "not a number"),
            ("socketcand::1/can0", "no host"),
            ("socketcand:h:1/", "bus name"),
            ("socketcan:", "interface name"),
        ] {
            let err = PortSpec::parse(spec).unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
            assert!(err.contains("expected socketcand:HOST:PORT/BUS"), "{err}");
        }
    }
}
