//! One request at a time on the ring: what was sent, what has come back, and when to give up.
//!
//! The ring returns exactly one frame per request (the echo, the reply, or the request itself
//! when nobody answered), so the master keeps one request in flight and matches what arrives
//! against it. Bytes that arrive with nothing in flight, or that belong to an earlier attempt,
//! are counted and dropped; they never replace good data.

use heapless::Vec;

use super::frame::{DecodeError, MAX_REPLY_LEN, Request, UNASSIGNED};
use crate::time::{Duration, Instant};

/// Baud rate of the ring.
pub const BAUD: u64 = 612_500;
/// Bits per byte on the wire (8N1).
pub const BITS_PER_BYTE: u64 = 10;

/// Time `bytes` take on the wire, rounded up to whole microseconds.
pub const fn wire_time(bytes: usize) -> Duration {
    let bits = bytes as u64 * BITS_PER_BYTE;
    Duration::from_micros((bits * 1_000_000).div_ceil(BAUD))
}

/// The request in flight.
#[derive(Clone, Debug)]
pub(crate) struct InFlight<P> {
    pub request: Request,
    pub purpose: P,
    pub sent_at: Instant,
    pub deadline: Instant,
    /// Attempts made so far, this one included.
    pub attempt: u8,
}

/// What the bytes received so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress<'a> {
    /// Not a whole frame yet.
    Waiting,
    /// The reply, checked.
    Done(&'a [u8], bool),
    /// A whole frame that is wrong (bad CRC): worth asking again at once.
    Bad(DecodeError),
    /// The request came back unanswered.
    Unanswered,
}

/// Receive buffer and counters.
#[derive(Debug)]
pub(crate) struct Link<P> {
    pub in_flight: Option<InFlight<P>>,
    rx: Vec<u8, { MAX_REPLY_LEN * 2 }>,
    pub stray_bytes: u32,
    pub crc_errors: u32,
    /// Bytes to send, taken by `poll_transmit`.
    tx: Option<([u8; 4], usize)>,
}

impl<P: Copy> Link<P> {
    pub const fn new() -> Self {
        Link { in_flight: None, rx: Vec::new(), stray_bytes: 0, crc_errors: 0, tx: None }
    }

    /// Puts `request` on the wire at `now`; it is missing after the wire time of request and
    /// reply plus `margin`.
    pub fn send(
        &mut self,
        now: Instant,
        request: Request,
        purpose: P,
        attempt: u8,
        margin: Duration,
    ) {
        let deadline =
            now + wire_time(request.wire_len() + request.reply_len()).saturating_add(margin);
        self.in_flight = Some(InFlight { request, purpose, sent_at: now, deadline, attempt });
        self.stray_bytes = self.stray_bytes.saturating_add(self.rx.len() as u32);
        self.rx.clear();
        self.tx = Some((request.encode(), request.wire_len()));
    }

    /// The bytes to send, once.
    pub fn take_transmit(&mut self) -> Option<([u8; 4], usize)> {
        self.tx.take()
    }

    /// Appends received bytes. Bytes with nothing in flight are stray.
    pub fn receive(&mut self, bytes: &[u8]) {
        if self.in_flight.is_none() {
            self.stray_bytes = self.stray_bytes.saturating_add(bytes.len() as u32);
            return;
        }
        for &b in bytes {
            if self.rx.push(b).is_err() {
                // More than two replies' worth without a match: drop the oldest half. The
                // buffer only ever holds garbage this long.
                let keep = self.rx.len() / 2;
                let dropped = self.rx.len() - keep;
                self.rx.rotate_left(dropped);
                self.rx.truncate(keep);
                self.stray_bytes = self.stray_bytes.saturating_add(dropped as u32);
                // Cannot fail: half the buffer was just freed.
                let _ = self.rx.push(b);
            }
        }
    }

    /// Checks the bytes received against the request in flight. Bytes that form a whole frame
    /// with someone else's header (a late reply to an earlier request) are dropped, and the
    /// wait goes on for the real one.
    pub fn progress(&mut self) -> Progress<'_> {
        let Some(flight) = &self.in_flight else { return Progress::Waiting };
        let request = flight.request;
        let expected = request.reply_len();
        loop {
            // A read to address 0 is answered with the marker bit set, so getting the request
            // back unmarked means nobody answered. For any other address the first bytes of a
            // reply equal the request, so only the deadline can tell (see `came_back`).
            if request.address() == UNASSIGNED && self.came_back() {
                return Progress::Unanswered;
            }
            if self.rx.len() < expected {
                return Progress::Waiting;
            }
            match request.decode_reply(&self.rx[..expected]) {
                Ok(reply) => {
                    let marked = reply.marked;
                    let start = if matches!(request, Request::Write { .. }) { 2 } else { 3 };
                    let len = reply.data.len();
                    return Progress::Done(&self.rx[start..start + len], marked);
                }
                Err(DecodeError::Header) => {
                    // Not ours: drop one byte and look again, so a frame that started late in
                    // the buffer is still found.
                    self.rx.remove(0);
                    self.stray_bytes = self.stray_bytes.saturating_add(1);
                }
                Err(e) => return Progress::Bad(e),
            }
        }
    }

    /// Whether exactly the read in flight has come back, unchanged: at its deadline this
    /// means no board answered it.
    pub fn came_back(&self) -> bool {
        let Some(flight) = &self.in_flight else { return false };
        let sent = flight.request.encode();
        matches!(flight.request, Request::Read { .. })
            && self.rx[..] == sent[..flight.request.wire_len()]
    }

    /// Forgets the request in flight and anything received for it.
    pub fn finish(&mut self) -> Option<InFlight<P>> {
        self.rx.clear();
        self.in_flight.take()
    }

    /// Whether the request in flight has passed its deadline at `now`.
    pub fn overdue(&self, now: Instant) -> bool {
        self.in_flight.as_ref().is_some_and(|f| now >= f.deadline)
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.in_flight.as_ref().map(|f| f.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_time_matches_the_baud_rate() {
        assert_eq!(wire_time(1).as_micros(), 17);
        assert_eq!(wire_time(22).as_micros(), 360);
        assert_eq!(wire_time(612_500 / 10).as_micros(), 1_000_000);
    }

    #[test]
    fn a_late_frame_before_the_reply_is_skipped() {
        let mut link: Link<()> = Link::new();
        link.send(Instant::ZERO, Request::write(2, 0x32, 0), (), 1, Duration::from_millis(2));
        let mine = Request::write(2, 0x32, 0).encode();
        let other = Request::write(1, 0x32, 0).encode();
        link.receive(&other);
        assert_eq!(link.progress(), Progress::Waiting);
        link.receive(&mine);
        assert!(matches!(link.progress(), Progress::Done(&[0], false)));
    }
}
