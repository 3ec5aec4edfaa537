//! The ring's wire: byte timing, cutting the master's byte stream into requests, and the queue
//! of bytes on their way back to the master's RX.
//!
//! All times are whole microseconds computed from byte counts in one integer division, so
//! they never accumulate rounding and come out the same on every machine.

use std::collections::VecDeque;

use cellwarden_core::Instant;
use cellwarden_core::proto::tesla::frame::frame_crc;
/// The ring's baud rate and bits per byte (8N1): the core's, one fact in one place.
pub use cellwarden_core::proto::tesla::{BAUD, BITS_PER_BYTE};

/// Time `bytes` bytes take on the wire, µs, rounded down: 16.3265 µs per byte. (The master's
/// `wire_time` rounds up, for deadlines; the emulator places each byte at its exact
/// microsecond, rounded down, so times never accumulate rounding.)
pub const fn wire_time_us(bytes: u64) -> u64 {
    bytes * BITS_PER_BYTE * 1_000_000 / BAUD
}

/// `t` plus `us` microseconds.
pub(super) fn after(t: Instant, us: u64) -> Instant {
    Instant::from_micros(t.as_micros().saturating_add(us))
}

/// A request cut from the master's stream, or bytes that never became one.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cut {
    pub bytes: [u8; 4],
    pub len: usize,
    /// The first byte started on the wire.
    pub start: Instant,
    /// The last byte ended.
    pub end: Instant,
    /// When the ring knew the request was complete.
    pub decided: Instant,
    /// False: a partial frame abandoned after a silence, forwarded without being executed.
    pub complete: bool,
}

impl Cut {
    pub fn frame(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Cuts the master's bytes into requests (`shared/protocols.md` §1.5, §1.12.1): a write is 4
/// bytes; a read is 3, or 4 when the 4th byte follows soon enough and equals the CRC of the
/// first 3.
#[derive(Clone, Debug, Default)]
pub(super) struct Assembler {
    bytes: [u8; 4],
    len: usize,
    start: Instant,
    /// The end of the last byte taken in.
    last_end: Instant,
}

impl Assembler {
    /// A complete 3-byte read is waiting to see whether a CRC byte follows.
    fn read_waiting(&self) -> bool {
        self.len == 3 && self.bytes[0] & 0x01 == 0
    }

    /// The instant after which [`Assembler::expire`] acts: a waiting read is complete once
    /// `crc_wait_us` have passed without a 4th byte, a partial frame is abandoned after
    /// `gap_us` of silence.
    pub fn deadline(&self, crc_wait_us: u32, gap_us: u32) -> Option<Instant> {
        match self.len {
            0 => None,
            _ if self.read_waiting() => Some(after(self.last_end, u64::from(crc_wait_us) + 1)),
            _ => Some(after(self.last_end, u64::from(gap_us) + 1)),
        }
    }

    /// What the passing of time up to `now` completes or abandons.
    pub fn expire(&mut self, now: Instant, crc_wait_us: u32, gap_us: u32) -> Option<Cut> {
        let deadline = self.deadline(crc_wait_us, gap_us)?;
        if now < deadline {
            return None;
        }
        let complete = self.read_waiting();
        Some(self.take(deadline, complete))
    }

    /// Takes in one byte that occupies the wire from `start` to `end` (after
    /// [`Assembler::expire`] for `start`); returns the request it completes, or the read it
    /// shows to be complete without a CRC (the byte then begins the next request).
    pub fn push(&mut self, byte: u8, start: Instant, end: Instant) -> Option<Cut> {
        let mut done = None;
        if self.read_waiting() {
            if byte == frame_crc(&self.bytes[..3]) {
                self.bytes[3] = byte;
                self.len = 4;
                self.last_end = end;
                return Some(self.take(end, true));
            }
            done = Some(self.take(start, true));
        }
        if self.len == 0 {
            self.start = start;
        }
        self.bytes[self.len] = byte;
        self.len += 1;
        self.last_end = end;
        if self.len == 4 {
            return Some(self.take(end, true));
        }
        done
    }

    fn take(&mut self, decided: Instant, complete: bool) -> Cut {
        let cut = Cut {
            bytes: self.bytes,
            len: self.len,
            start: self.start,
            end: self.last_end,
            decided,
            complete,
        };
        self.len = 0;
        cut
    }
}

/// Bytes on their way to the master, frame by frame, in the order they will arrive.
#[derive(Clone, Debug, Default)]
pub(super) struct Outbox {
    bytes: VecDeque<u8>,
    frames: VecDeque<Queued>,
    /// Bytes of the first queued frame already handed to the master.
    delivered: usize,
    /// When the last frame queued finishes arriving.
    last_ready: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Queued {
    /// The frame's last byte has arrived.
    ready: Instant,
    len: usize,
}

impl Outbox {
    /// Queues `frame` to arrive complete at `ready`, or later if the frame before it still
    /// occupies the master's RX line then: the line carries one byte at a time.
    pub fn push(&mut self, frame: &[u8], ready: Instant) {
        let len = frame.len();
        let behind = after(self.last_ready, wire_time_us(len as u64));
        let ready = ready.max(behind);
        self.last_ready = ready;
        self.bytes.extend(frame);
        self.frames.push_back(Queued { ready, len });
    }

    /// When the first queued frame has arrived complete.
    pub fn next_ready(&self) -> Option<Instant> {
        self.frames.front().map(|f| f.ready)
    }

    /// Appends to `out` every byte that has arrived by `now`.
    pub fn take(&mut self, now: Instant, out: &mut Vec<u8>) {
        while let Some(&Queued { ready, len }) = self.frames.front() {
            // Byte j of the frame arrives wire_time(len − 1 − j) before its last one: all of
            // them by `ready`, which is when a caller at the frame's deadline asks.
            let mut arrived = if now >= ready { len } else { self.delivered };
            while arrived < len {
                let lead = wire_time_us((len - 1 - arrived) as u64);
                if ready.as_micros().saturating_sub(lead) > now.as_micros() {
                    break;
                }
                arrived += 1;
            }
            let n = arrived - self.delivered;
            if n > 0 {
                // The deque's front as one or two slices: copied whole, not byte by byte.
                let (a, b) = self.bytes.as_slices();
                let from_a = n.min(a.len());
                out.extend_from_slice(&a[..from_a]);
                out.extend_from_slice(&b[..n - from_a]);
                self.bytes.drain(..n);
            }
            if arrived < len {
                self.delivered = arrived;
                return;
            }
            self.delivered = 0;
            self.frames.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_time_is_exact_over_many_bytes() {
        assert_eq!(wire_time_us(1), 16);
        assert_eq!(wire_time_us(4), 65);
        assert_eq!(wire_time_us(22), 359);
        assert_eq!(wire_time_us(612_500), 10_000_000);
    }

    #[test]
    fn a_crc_byte_joins_the_read_and_another_byte_starts_the_next_request() {
        let t = |us| Instant::from_micros(us);
        let mut a = Assembler::default();
        for (i, b) in [0x02, 0x00, 0x13].into_iter().enumerate() {
            assert!(a.push(b, t(16 * i as u64), t(16 * i as u64 + 16)).is_none());
        }
        let cut = a.push(0xAF, t(48), t(64)).expect("complete");
        assert_eq!(cut.frame(), &[0x02, 0x00, 0x13, 0xAF]);

        for (i, b) in [0x02, 0x20, 0x04].into_iter().enumerate() {
            assert!(a.push(b, t(100 + 16 * i as u64), t(116 + 16 * i as u64)).is_none());
        }
        let cut = a.push(0x03, t(148), t(164)).expect("the read is complete");
        assert_eq!(cut.frame(), &[0x02, 0x20, 0x04]);
        assert_eq!(a.len, 1, "0x03 begins the next request");
    }

    #[test]
    fn outputs_arrive_byte_by_byte_and_in_order() {
        let mut o = Outbox::default();
        o.push(&[1, 2, 3, 4], Instant::from_micros(1000));
        o.push(&[5, 6, 7, 8], Instant::from_micros(900));
        let mut out = Vec::new();
        o.take(Instant::from_micros(999), &mut out);
        assert_eq!(out, [1, 2, 3]);
        o.take(Instant::from_micros(1000), &mut out);
        assert_eq!(out, [1, 2, 3, 4]);
        assert_eq!(o.next_ready(), Some(Instant::from_micros(1065)));
        o.take(Instant::from_micros(5000), &mut out);
        assert_eq!(out, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(o.next_ready(), None);
    }
}
