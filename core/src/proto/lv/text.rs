//! ASCII text frames: 0x35E's manufacturer name and Victron's 0x370, 0x371, 0x374-0x377 and
//! 0x382.

use core::fmt;

use super::wire::{fields, frame, padded};
use super::{DecodeError, id};
use crate::proto::can::Frame;

/// Up to 8 characters of printable ASCII: 0x35E's manufacturer name and the Victron text
/// frames. Trailing NUL padding is not part of the name; trailing spaces are.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    bytes: [u8; 8],
    len: u8,
}

impl Name {
    /// The name `text`, with any trailing NULs removed, or `None` when it is longer than 8
    /// bytes or holds anything but printable ASCII before the padding.
    pub fn new(text: &[u8]) -> Option<Name> {
        if text.len() > 8 {
            return None;
        }
        let len = text.iter().position(|b| *b == 0).unwrap_or(text.len());
        let (name, padding) = text.split_at(len);
        let printable = name.iter().all(|b| (0x20..=0x7E).contains(b));
        (printable && padding.iter().all(|b| *b == 0))
            .then(|| Name { bytes: padded(name), len: u8::try_from(len).unwrap_or(8) })
    }

    /// The characters, without padding.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&self.bytes)
    }

    /// The characters as text.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII gets in, which is always UTF-8; the fallback is never taken.
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// Decodes the data of text frame `id`: at least 1 byte, printable ASCII with nothing but
    /// NUL after the first NUL.
    pub fn decode(id: u16, data: &[u8]) -> Result<Name, DecodeError> {
        fields(id, data, 1)?;
        Name::new(data).ok_or(DecodeError::NotAscii { id })
    }

    /// Frame `id` with the name, NUL-padded to `len` bytes (never shorter than the name).
    #[must_use]
    pub fn encode(&self, id: u16, len: usize) -> Frame {
        frame(id, &self.bytes, len.max(usize::from(self.len)).max(1))
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({:?})", self.as_str())
    }
}

/// Which text frame a [`Name`] came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TextId {
    /// 0x370: BMS or manufacturer name, first part.
    BmsName1,
    /// 0x371: BMS or manufacturer name, second part.
    BmsName2,
    /// 0x374: the cell with the lowest voltage.
    MinVoltageCell,
    /// 0x375: the cell with the highest voltage.
    MaxVoltageCell,
    /// 0x376: the cell with the lowest temperature.
    MinTemperatureCell,
    /// 0x377: the cell with the highest temperature.
    MaxTemperatureCell,
    /// 0x382: the product name.
    ProductName,
}

impl TextId {
    /// The frame identifier.
    pub const fn id(self) -> u16 {
        match self {
            TextId::BmsName1 => id::BMS_NAME_1,
            TextId::BmsName2 => id::BMS_NAME_2,
            TextId::MinVoltageCell => id::MIN_VOLTAGE_CELL,
            TextId::MaxVoltageCell => id::MAX_VOLTAGE_CELL,
            TextId::MinTemperatureCell => id::MIN_TEMPERATURE_CELL,
            TextId::MaxTemperatureCell => id::MAX_TEMPERATURE_CELL,
            TextId::ProductName => id::PRODUCT_NAME,
        }
    }

    /// The text frame with identifier `id`, if it is one.
    pub const fn from_id(id: u16) -> Option<TextId> {
        Some(match id {
            id::BMS_NAME_1 => TextId::BmsName1,
            id::BMS_NAME_2 => TextId::BmsName2,
            id::MIN_VOLTAGE_CELL => TextId::MinVoltageCell,
            id::MAX_VOLTAGE_CELL => TextId::MaxVoltageCell,
            id::MIN_TEMPERATURE_CELL => TextId::MinTemperatureCell,
            id::MAX_TEMPERATURE_CELL => TextId::MaxTemperatureCell,
            id::PRODUCT_NAME => TextId::ProductName,
            _ => return None,
        })
    }
}
