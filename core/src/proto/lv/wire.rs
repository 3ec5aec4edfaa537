//! Byte-level helpers shared by the payload codecs: frame building, field access on a
//! zero-padded copy of the data (no indexing that can fail), rounding and saturation.

use super::DecodeError;
use crate::proto::can::Frame;

/// A standard frame with the first `len` (at most 8) bytes of `data`.
pub(super) fn frame(id: u16, data: &[u8; 8], len: usize) -> Frame {
    let bytes = data.get(..len.min(8)).unwrap_or(data);
    // Every identifier here is one of the `id` constants, all below 0x800, and `bytes` holds at
    // most 8 bytes: the only two things `Frame::standard` rejects.
    Frame::standard(id, bytes).expect("LV CAN identifiers have 11 bits and frames 8 bytes at most")
}

/// `data` zero-padded to 8 bytes, after checking it has the `need` bytes frame `id`'s fields
/// take.
pub(super) fn fields(id: u16, data: &[u8], need: usize) -> Result<[u8; 8], DecodeError> {
    if data.len() < need {
        let len = u8::try_from(data.len()).unwrap_or(u8::MAX);
        return Err(DecodeError::TooShort { id, len });
    }
    Ok(padded(data))
}

/// The first 8 bytes of `data`, zero-padded.
pub(super) fn padded(data: &[u8]) -> [u8; 8] {
    let mut out = [0; 8];
    for (o, d) in out.iter_mut().zip(data) {
        *o = *d;
    }
    out
}

pub(super) fn byte_at(b: &[u8; 8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

pub(super) fn or_at(b: &mut [u8; 8], at: usize, mask: u8) {
    if let Some(byte) = b.get_mut(at) {
        *byte |= mask;
    }
}

pub(super) fn u16_at(b: &[u8; 8], at: usize) -> u16 {
    u16::from_le_bytes([byte_at(b, at), byte_at(b, at + 1)])
}

pub(super) fn i16_at(b: &[u8; 8], at: usize) -> i16 {
    i16::from_le_bytes([byte_at(b, at), byte_at(b, at + 1)])
}

pub(super) fn put_u16(b: &mut [u8; 8], at: usize, value: u16) {
    for (o, v) in b.iter_mut().skip(at).zip(value.to_le_bytes()) {
        *o = v;
    }
}

pub(super) fn put_i16(b: &mut [u8; 8], at: usize, value: i16) {
    put_u16(b, at, u16::from_le_bytes(value.to_le_bytes()));
}

/// `v / d` rounded up, for `d > 0`.
pub(super) fn div_ceil(v: i64, d: i64) -> i64 {
    -(-v).div_euclid(d)
}

/// `v / d` rounded to the nearest integer, halves away from zero, for `d > 0`.
pub(super) fn div_round(v: i64, d: i64) -> i64 {
    if v >= 0 { (v + d / 2) / d } else { -((-v + d / 2) / d) }
}

pub(super) fn sat_u16(v: i64) -> u16 {
    u16::try_from(v.clamp(0, i64::from(u16::MAX))).unwrap_or(0)
}

pub(super) fn sat_i16(v: i64) -> i16 {
    i16::try_from(v.clamp(i64::from(i16::MIN), i64::from(i16::MAX))).unwrap_or(0)
}
