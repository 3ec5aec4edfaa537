//! Frames on the module-board ring: CRC-8, requests (master to boards) and replies (what comes
//! back round the ring to the master), `shared/protocols.md` §1.3–1.5.
//!
//! Byte 0 of every frame is `(address << 1) | write`. Bit 7 is the marker a board at address 0
//! sets when it has answered a request addressed to 0; the CRC is always computed with that bit
//! cleared, so the marker never changes the CRC.
//!
//! Requests come in three shapes: a 4-byte write, a 3-byte read (collin80/TeslaBMS style) and a
//! 4-byte read with a CRC (pyBMS style). A read is answered with `n + 4` bytes: the request
//! header, `n` register bytes and a CRC. A write comes back as its own echo.

/// The broadcast address: writes to it reach every board that has an address.
pub const BROADCAST: u8 = 0x3F;
/// The address of a board that has not been given one (after power-up or reset).
pub const UNASSIGNED: u8 = 0x00;
/// Most boards one ring can address (addresses 1..=0x3E).
pub const MAX_MODULES: u8 = 0x3E;
/// Longest read the boards answer; longer reads pass round the ring unanswered. The register
/// file ends at 0x4F, and no master reads more than 0x13 bytes at once.
pub const MAX_READ_LEN: u8 = 0x50;
/// Longest frame on the ring: the reply to the longest read.
pub const MAX_REPLY_LEN: usize = MAX_READ_LEN as usize + 4;
/// Bit 7 of byte 0: "answered by a board at address 0".
pub const MARKER: u8 = 0x80;

/// CRC-8 with polynomial 0x07, initial value 0, no reflection, no final XOR (SMBus PEC).
pub fn crc8(bytes: &[u8]) -> u8 {
    crc_update(0, bytes)
}

/// The CRC of a frame's bytes before its CRC byte, with the marker bit of byte 0 cleared, as
/// both ends compute it.
pub fn frame_crc(bytes: &[u8]) -> u8 {
    match bytes.split_first() {
        Some((first, rest)) => {
            let head = CRC_TABLES[0][usize::from(first & !MARKER)];
            crc_update(head, rest)
        }
        None => 0,
    }
}

/// Byte 0 for `address` (0..=0x3F) and direction.
pub const fn address_byte(address: u8, write: bool) -> u8 {
    ((address & 0x3F) << 1) | write as u8
}

/// What byte 0 says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    /// 0..=0x3F.
    pub address: u8,
    /// The R/W bit.
    pub write: bool,
    /// Bit 7: answered by a board at address 0.
    pub marked: bool,
}

impl Address {
    /// Splits byte 0.
    pub const fn from_byte(byte: u8) -> Address {
        Address { address: (byte >> 1) & 0x3F, write: byte & 1 == 1, marked: byte & MARKER != 0 }
    }
}

/// A frame from the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// Write one register.
    Write {
        /// Board address, or [`BROADCAST`].
        address: u8,
        /// Register.
        register: u8,
        /// Value.
        value: u8,
    },
    /// Read `len` registers starting at `register`.
    Read {
        /// Board address.
        address: u8,
        /// First register.
        register: u8,
        /// Number of registers, 1..=[`MAX_READ_LEN`].
        len: u8,
        /// Whether the request carries a CRC (4 bytes) or not (3 bytes).
        crc: bool,
    },
}

/// Why bytes are not the frame expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Fewer bytes than the frame needs; `need` is the full length.
    Incomplete {
        /// Bytes the frame needs in all.
        need: usize,
    },
    /// More bytes than the frame has.
    TooLong {
        /// Bytes the frame has.
        expected: usize,
        /// Bytes received.
        got: usize,
    },
    /// The CRC byte does not match the bytes before it.
    Crc {
        /// CRC computed over the bytes received.
        computed: u8,
        /// CRC byte received.
        received: u8,
    },
    /// The frame's header is not the one expected (wrong address, register, length or R/W).
    Header,
    /// The request came back unchanged: no board answered it.
    Unanswered,
    /// A read of 0 bytes or more than [`MAX_READ_LEN`].
    BadLength(u8),
}

impl Request {
    /// Longest request on the wire.
    pub const MAX_LEN: usize = 4;

    /// A write of `value` to `register` at `address`.
    pub const fn write(address: u8, register: u8, value: u8) -> Request {
        Request::Write { address, register, value }
    }

    /// A read without CRC (collin80/TeslaBMS style).
    pub const fn read(address: u8, register: u8, len: u8) -> Request {
        Request::Read { address, register, len, crc: false }
    }

    /// A read with CRC (pyBMS style).
    pub const fn read_with_crc(address: u8, register: u8, len: u8) -> Request {
        Request::Read { address, register, len, crc: true }
    }

    /// The addressed board (or [`BROADCAST`]).
    pub const fn address(&self) -> u8 {
        match *self {
            Request::Write { address, .. } | Request::Read { address, .. } => address,
        }
    }

    /// Bytes on the wire.
    pub const fn wire_len(&self) -> usize {
        match *self {
            Request::Write { .. } | Request::Read { crc: true, .. } => 4,
            Request::Read { crc: false, .. } => 3,
        }
    }

    /// Bytes that come back to the master when a board handles the request.
    pub const fn reply_len(&self) -> usize {
        match *self {
            Request::Write { .. } => 4,
            Request::Read { len, .. } => len as usize + 4,
        }
    }

    /// The bytes to send; the first [`wire_len`](Self::wire_len) of them are the frame.
    pub fn encode(&self) -> [u8; 4] {
        let (head, third) = match *self {
            Request::Write { address, register, value } => {
                ([address_byte(address, true), register], value)
            }
            Request::Read { address, register, len, .. } => {
                ([address_byte(address, false), register], len)
            }
        };
        let bytes = [head[0], head[1], third];
        [bytes[0], bytes[1], bytes[2], frame_crc(&bytes)]
    }

    /// Decodes the request at the start of `bytes` (a board's view), returning it and how many
    /// bytes it takes. A read followed by the right CRC byte takes 4 bytes; a read followed by
    /// anything else (or nothing) takes 3. A write with a bad CRC is
    /// [`DecodeError::Crc`]: it still takes 4 bytes on the ring.
    pub fn decode(bytes: &[u8]) -> Result<(Request, usize), DecodeError> {
        let [b0, register, third, rest @ ..] = bytes else {
            let need = match bytes.first() {
                Some(b) if Address::from_byte(*b).write => 4,
                _ => 3,
            };
            return Err(DecodeError::Incomplete { need });
        };
        let head = Address::from_byte(*b0);
        let crc = frame_crc(&[*b0, *register, *third]);
        if head.write {
            let Some(&received) = rest.first() else {
                return Err(DecodeError::Incomplete { need: 4 });
            };
            if received != crc {
                return Err(DecodeError::Crc { computed: crc, received });
            }
            let request =
                Request::Write { address: head.address, register: *register, value: *third };
            return Ok((request, 4));
        }
        if *third == 0 || *third > MAX_READ_LEN {
            return Err(DecodeError::BadLength(*third));
        }
        let with_crc = rest.first() == Some(&crc);
        let request = Request::Read {
            address: head.address,
            register: *register,
            len: *third,
            crc: with_crc,
        };
        Ok((request, request.wire_len()))
    }
}

/// What came back for a request, decoded by the master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    /// Bit 7 of byte 0: answered by a board at address 0.
    pub marked: bool,
    /// The register bytes of a read, or the one value of a write echo.
    pub data: &'a [u8],
}

impl Request {
    /// Checks `bytes`, everything that came back for this request, as the master must: the
    /// exact length, the echoed header and the CRC. A read that came back as itself is
    /// [`DecodeError::Unanswered`]. For a request to address 0, [`Reply::marked`] tells
    /// whether a board took it (a write nobody took comes back unmarked and decodes). Never
    /// panics, whatever the bytes.
    pub fn decode_reply<'a>(&self, bytes: &'a [u8]) -> Result<Reply<'a>, DecodeError> {
        let sent = self.encode();
        let sent = &sent[..self.wire_len()];
        let expected = self.reply_len();
        if let Request::Read { .. } = self {
            // A read nobody answered returns as it was sent, CRC and all. Checked before the
            // length: it is shorter than any reply.
            if bytes == sent {
                return Err(DecodeError::Unanswered);
            }
        }
        if bytes.len() < expected {
            return Err(DecodeError::Incomplete { need: expected });
        }
        if bytes.len() > expected {
            return Err(DecodeError::TooLong { expected, got: bytes.len() });
        }
        // The length is exactly `expected` (at least 4), so these indexings hold.
        let (body, crc) = bytes.split_at(expected - 1);
        if body[0] & !MARKER != sent[0] || body[1] != sent[1] || body[2] != sent[2] {
            return Err(DecodeError::Header);
        }
        let computed = frame_crc(body);
        if computed != crc[0] {
            return Err(DecodeError::Crc { computed, received: crc[0] });
        }
        let marked = body[0] & MARKER != 0;
        // Only a board at address 0 sets the marker, and the CRC does not cover it: a marked
        // reply to any other address is a corrupted bit 7, not an answer.
        if marked && self.address() != UNASSIGNED {
            return Err(DecodeError::Header);
        }
        let data = match self {
            Request::Write { .. } => &body[2..3],
            Request::Read { .. } => &body[3..],
        };
        Ok(Reply { marked, data })
    }
}

/// Encodes a board's reply to a read: header, `data`, CRC. Returns the length written, or
/// `None` when `out` is too small or `data` is empty or longer than [`MAX_READ_LEN`].
pub fn encode_reply(byte0: u8, register: u8, data: &[u8], out: &mut [u8]) -> Option<usize> {
    let n = u8::try_from(data.len()).ok().filter(|n| (1..=MAX_READ_LEN).contains(n))?;
    let total = data.len() + 4;
    let frame = out.get_mut(..total)?;
    frame[0] = byte0;
    frame[1] = register;
    frame[2] = n;
    frame[3..3 + data.len()].copy_from_slice(data);
    frame[total - 1] = frame_crc(&frame[..total - 1]);
    Some(total)
}

/// The CRC register after `bytes` from `crc`. Byte by byte this is `crc = T[crc ^ b]`, a chain
/// of dependent table look-ups that bounds the speed of every frame both ends check. The table
/// is linear (`T[a ^ b] = T[a] ^ T[b]`: no reflection, no final XOR), so four bytes fold into one
/// dependent look-up, `T⁴[crc ^ b0] ^ T³[b1] ^ T²[b2] ^ T[b3]`, with `Tᵏ` the table applied k
/// times; the result is the same.
fn crc_update(crc: u8, bytes: &[u8]) -> u8 {
    let [t1, t2, t3, t4] = &CRC_TABLES;
    let mut words = bytes.chunks_exact(4);
    let mut crc = crc;
    for w in &mut words {
        crc = t4[usize::from(crc ^ w[0])]
            ^ t3[usize::from(w[1])]
            ^ t2[usize::from(w[2])]
            ^ t1[usize::from(w[3])];
    }
    words.remainder().iter().fold(crc, |crc, b| t1[usize::from(crc ^ b)])
}

/// `CRC_TABLES[k]` is the byte table applied k + 1 times.
const CRC_TABLES: [[u8; 256]; 4] = crc_tables();

const fn crc_tables() -> [[u8; 256]; 4] {
    let mut tables = [[0u8; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
            bit += 1;
        }
        tables[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 4 {
        let mut i = 0;
        while i < 256 {
            tables[k][i] = tables[0][tables[k - 1][i] as usize];
            i += 1;
        }
        k += 1;
    }
    tables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc8(b"123456789"), 0xF4);
    }

    #[test]
    fn four_bytes_at_a_time_equal_the_bitwise_definition() {
        let bitwise = |bytes: &[u8]| {
            bytes.iter().fold(0u8, |mut crc, b| {
                crc ^= b;
                for _ in 0..8 {
                    crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
                }
                crc
            })
        };
        let mut x: u32 = 0x9E37_79B9;
        let mut bytes = [0u8; 40];
        for len in 0..=bytes.len() {
            for _ in 0..50 {
                for b in bytes.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    *b = x.to_le_bytes()[0];
                }
                assert_eq!(crc8(&bytes[..len]), bitwise(&bytes[..len]), "{len} bytes");
            }
        }
    }

    #[test]
    fn marker_does_not_change_the_crc() {
        assert_eq!(frame_crc(&[0x81, 0x3B, 0x81]), 0x8B);
        assert_eq!(frame_crc(&[0x01, 0x3B, 0x81]), 0x8B);
    }

    #[test]
    fn read_decode_takes_the_crc_only_when_it_matches() {
        let (r, n) = Request::decode(&[0x02, 0x00, 0x13, 0xAF]).unwrap();
        assert_eq!((r, n), (Request::read_with_crc(1, 0, 0x13), 4));
        let (r, n) = Request::decode(&[0x02, 0x00, 0x13, 0x03]).unwrap();
        assert_eq!((r, n), (Request::read(1, 0, 0x13), 3));
    }
}
