//! Serial ports and pseudo-terminals as async byte streams.
//!
//! A real port is a [`SerialStream`] opened at the Tesla ring's 612500 baud, 8N1. A
//! pseudo-terminal pair stands in for the wire between two programs on one machine: the
//! emulated ring keeps the controlling side, and a BMS opens the other side by its path
//! (`/dev/pts/N`) exactly as it would open a USB serial adapter. A pty has no baud rate: bytes
//! cross it as fast as the kernel copies them, so the side that emulates hardware paces its
//! output itself (as `cellwarden-sim`'s ring server does).

use std::io;

use cellwarden_core::proto::tesla::BAUD;
use tokio_serial::{DataBits, FlowControl, Parity, SerialPort, SerialPortBuilderExt, StopBits};

pub use tokio_serial::SerialStream;

/// The Tesla module-board ring's baud rate.
pub const TESLA_BAUD: u32 = BAUD as u32;

/// Opens the serial port at `path` for a ring of Tesla module boards: 612500 baud, 8 data bits,
/// no parity, one stop bit, no flow control. Works for a pty path too (the settings are
/// accepted and have no effect there). Must be called inside a tokio runtime with IO enabled.
pub fn open_tesla_port(path: &str) -> io::Result<SerialStream> {
    tokio_serial::new(path, TESLA_BAUD)
        .data_bits(DataBits::Eight)
        .parity(Parity::None)
        .stop_bits(StopBits::One)
        .flow_control(FlowControl::None)
        .open_native_async()
        .map_err(|err| io::Error::other(format!("{path}: {err}")))
}

/// Both ends of a pseudo-terminal.
#[derive(Debug)]
pub struct Pty {
    /// The controlling (master) side, for the program that emulates the hardware.
    pub controller: SerialStream,
    /// The terminal (slave) side, already open in raw mode. Keeping it open matters even when
    /// an outside program uses [`Pty::path`] instead: while no terminal side is open, reading
    /// the controlling side fails, so an outside program that closes and reopens the port
    /// would otherwise end the server.
    pub terminal: SerialStream,
    /// The terminal side's path, for an outside program to open.
    pub path: String,
}

impl Pty {
    /// Opens a new pseudo-terminal pair. Must be called inside a tokio runtime with IO enabled.
    #[cfg(unix)]
    pub fn open() -> io::Result<Pty> {
        let (controller, terminal) = SerialStream::pair().map_err(io::Error::other)?;
        let path =
            terminal.name().ok_or_else(|| io::Error::other("the pseudo-terminal has no path"))?;
        Ok(Pty { controller, terminal, path })
    }
}
