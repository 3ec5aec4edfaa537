//! A classic CAN 2.0 frame: what every CAN codec here reads and writes, and what every transport
//! (in-memory, SocketCAN, socketcand, candump logs) carries.

use core::fmt;

/// Largest 11-bit identifier.
pub const MAX_STANDARD_ID: u32 = 0x7FF;
/// Largest 29-bit identifier.
pub const MAX_EXTENDED_ID: u32 = 0x1FFF_FFFF;

/// Why a frame could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The identifier does not fit its format (11 or 29 bits).
    IdTooLarge,
    /// More than 8 data bytes.
    TooLong,
}

/// One classic CAN frame (no CAN FD, no remote frames).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Frame {
    id: u32,
    extended: bool,
    len: u8,
    data: [u8; 8],
}

impl Frame {
    /// A frame with an 11-bit identifier.
    pub fn standard(id: u16, data: &[u8]) -> Result<Frame, FrameError> {
        Frame::new(u32::from(id), false, data)
    }

    /// A frame with an 11-bit (`extended == false`) or 29-bit identifier.
    pub fn new(id: u32, extended: bool, data: &[u8]) -> Result<Frame, FrameError> {
        let max = if extended { MAX_EXTENDED_ID } else { MAX_STANDARD_ID };
        if id > max {
            return Err(FrameError::IdTooLarge);
        }
        if data.len() > 8 {
            return Err(FrameError::TooLong);
        }
        let mut bytes = [0; 8];
        bytes[..data.len()].copy_from_slice(data);
        // Checked above: at most 8.
        Ok(Frame { id, extended, len: data.len() as u8, data: bytes })
    }

    /// The identifier.
    pub const fn id(&self) -> u32 {
        self.id
    }

    /// Whether the identifier is 29 bits.
    pub const fn is_extended(&self) -> bool {
        self.extended
    }

    /// The data bytes (0 to 8).
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// The data length code.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the frame carries no data.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for Frame {
    /// candump style: `351#330209240924D501`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.extended {
            write!(f, "{:08X}#", self.id)?;
        } else {
            write!(f, "{:03X}#", self.id)?;
        }
        for b in self.data() {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_lengths_are_checked() {
        assert_eq!(Frame::standard(0x800, &[]), Err(FrameError::IdTooLarge));
        assert_eq!(Frame::new(0x2000_0000, true, &[]), Err(FrameError::IdTooLarge));
        assert_eq!(Frame::standard(0x351, &[0; 9]), Err(FrameError::TooLong));
        let f = Frame::standard(0x35C, &[0xC0, 0]).unwrap();
        assert_eq!((f.id(), f.len(), f.data()), (0x35C, 2, &[0xC0, 0][..]));
        assert!(!f.is_extended());
    }
}
