//! SocketCAN: a Linux kernel CAN interface (`can0`, or a virtual `vcan0`) through the
//! `socketcan` crate's tokio socket.
//!
//! Classic data frames only: remote and error frames that arrive are skipped and counted. The
//! socket does not receive its own frames (the kernel's default), so two ports on one
//! interface see each other's traffic as two nodes on a wire would. On other platforms the
//! type exists so that [`super::CanPort`] is the same everywhere, and opening it fails.

use std::io;

use cellwarden_core::proto::can::Frame;

/// One CAN interface of the kernel.
#[derive(Debug)]
pub struct SocketCanPort {
    iface: String,
    skipped: u64,
    #[cfg(target_os = "linux")]
    socket: socketcan::tokio::CanSocket,
}

#[cfg(target_os = "linux")]
impl SocketCanPort {
    /// Opens interface `iface` (e.g. `can0`, `vcan0`). Must be called inside a tokio runtime
    /// with IO enabled. Fails when the interface does not exist or the kernel has no CAN
    /// support.
    pub fn open(iface: &str) -> io::Result<SocketCanPort> {
        let socket = socketcan::tokio::CanSocket::open(iface)
            .map_err(|err| io::Error::new(err.kind(), format!("SocketCAN {iface}: {err}")))?;
        Ok(SocketCanPort { iface: iface.to_owned(), skipped: 0, socket })
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &Frame) -> io::Result<()> {
        use socketcan::{CanFrame, EmbeddedFrame, ExtendedId, Id, StandardId};

        // `Frame` keeps its identifier within 11 or 29 bits and its data within 8 bytes, so
        // the conversions succeed; the errors are for completeness.
        let invalid = || io::Error::new(io::ErrorKind::InvalidInput, format!("{frame:?}"));
        let id = if frame.is_extended() {
            Id::Extended(ExtendedId::new(frame.id()).ok_or_else(invalid)?)
        } else {
            let raw = u16::try_from(frame.id()).map_err(|_| invalid())?;
            Id::Standard(StandardId::new(raw).ok_or_else(invalid)?)
        };
        let can_frame = CanFrame::new(id, frame.data()).ok_or_else(invalid)?;
        self.socket.write_frame(can_frame).await
    }

    /// The next data frame. Cancel safe.
    pub async fn recv(&mut self) -> io::Result<Frame> {
        use socketcan::{CanFrame, EmbeddedFrame, Id};

        loop {
            let CanFrame::Data(data_frame) = self.socket.read_frame().await? else {
                self.skipped += 1;
                continue;
            };
            let (id, extended) = match data_frame.id() {
                Id::Standard(id) => (u32::from(id.as_raw()), false),
                Id::Extended(id) => (id.as_raw(), true),
            };
            match Frame::new(id, extended, data_frame.data()) {
                Ok(frame) => return Ok(frame),
                Err(_) => self.skipped += 1,
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl SocketCanPort {
    /// Fails: SocketCAN exists on Linux only.
    pub fn open(iface: &str) -> io::Result<SocketCanPort> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("SocketCAN {iface}: SocketCAN exists on Linux only; use socketcand"),
        ))
    }

    /// Unreachable: no port can be opened.
    pub async fn send(&mut self, _frame: &Frame) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// Unreachable: no port can be opened.
    pub async fn recv(&mut self) -> io::Result<Frame> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

impl SocketCanPort {
    /// The interface name.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Remote and error frames received and skipped so far.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}
