//! Faults injected into single boards of the ring, each observable from the master's side.
//!
//! Corrupt, drop and delay act on the frames a board answers: the replies to reads it
//! answered and the echoes of writes addressed to it (by its address, or to address 0 when it
//! was the board that took them). Broadcast echoes are nobody's answer and stay untouched.
//! Each injection replaces the earlier one of the same kind on that board.

/// A fault for one board (`board` counts from 0, the first board after the master's TX).
/// Injections naming a board the ring does not have are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingFault {
    /// Flip bit `bit` (taken mod 8) of byte `byte` (taken modulo the frame's length) in each
    /// of the next `count` frames the board answers: a marginal UART line.
    Corrupt {
        /// Board index.
        board: usize,
        /// Frames to corrupt.
        count: u32,
        /// Byte to corrupt, from 0.
        byte: usize,
        /// Bit to flip, 0 = least significant.
        bit: u8,
    },
    /// The next `count` frames the board answers vanish: nothing comes back to the master.
    Drop {
        /// Board index.
        board: usize,
        /// Frames to drop.
        count: u32,
    },
    /// The next `count` frames the board answers reach the master `us` microseconds late.
    Delay {
        /// Board index.
        board: usize,
        /// Frames to delay.
        count: u32,
        /// Extra latency, µs.
        us: u32,
    },
    /// A silent board still forwards every frame but acts on none: it executes no write and
    /// answers no read, so reads addressed to it come back unchanged, as if it were absent.
    Silent {
        /// Board index.
        board: usize,
        /// On or off.
        silent: bool,
    },
    /// A frozen board's conversions keep the last latched results (a stuck converter); its
    /// hardware comparators keep working.
    Frozen {
        /// Board index.
        board: usize,
        /// On or off.
        frozen: bool,
    },
    /// A stalled board's converter starts the next conversion and never finishes it:
    /// DEVICE_STATUS.DRDY stays clear and the results keep their last values.
    Stalled {
        /// Board index.
        board: usize,
        /// On or off.
        stalled: bool,
    },
}

/// What a board's converter does with a conversion request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Converter {
    /// Converts at once.
    Working,
    /// Ignores it; the results and DRDY stay as they were.
    Frozen,
    /// Starts and never finishes: DRDY clear, the results as they were.
    Stalled,
}

impl RingFault {
    /// The board the fault is for.
    pub const fn board(&self) -> usize {
        match *self {
            RingFault::Corrupt { board, .. }
            | RingFault::Drop { board, .. }
            | RingFault::Delay { board, .. }
            | RingFault::Silent { board, .. }
            | RingFault::Frozen { board, .. }
            | RingFault::Stalled { board, .. } => board,
        }
    }
}

/// The faults pending on one board.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct BoardFaults {
    corrupt_left: u32,
    corrupt_byte: usize,
    corrupt_bit: u8,
    drop_left: u32,
    delay_left: u32,
    delay_us: u32,
    pub silent: bool,
    pub frozen: bool,
    pub stalled: bool,
}

/// What the faults did to an answered frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Outcome {
    /// The frame vanishes.
    pub dropped: bool,
    /// Extra latency, µs.
    pub delay_us: u64,
}

impl BoardFaults {
    /// Takes an injection for this board.
    pub fn inject(&mut self, fault: RingFault) {
        match fault {
            RingFault::Corrupt { count, byte, bit, .. } => {
                self.corrupt_left = count;
                self.corrupt_byte = byte;
                self.corrupt_bit = bit % 8;
            }
            RingFault::Drop { count, .. } => self.drop_left = count,
            RingFault::Delay { count, us, .. } => {
                self.delay_left = count;
                self.delay_us = us;
            }
            RingFault::Silent { silent, .. } => self.silent = silent,
            RingFault::Frozen { frozen, .. } => self.frozen = frozen,
            RingFault::Stalled { stalled, .. } => self.stalled = stalled,
        }
    }

    /// What the board's converter does now.
    pub fn converter(&self) -> Converter {
        match (self.stalled, self.frozen) {
            (true, _) => Converter::Stalled,
            (false, true) => Converter::Frozen,
            (false, false) => Converter::Working,
        }
    }

    /// Applies the pending corrupt, delay and drop faults to `frame`, a frame this board
    /// answered, using up one frame of each.
    pub fn on_answer(&mut self, frame: &mut [u8]) -> Outcome {
        let mut outcome = Outcome::default();
        if self.corrupt_left > 0 && !frame.is_empty() {
            self.corrupt_left -= 1;
            let len = frame.len();
            frame[self.corrupt_byte % len] ^= 1 << self.corrupt_bit;
        }
        if self.delay_left > 0 {
            self.delay_left -= 1;
            outcome.delay_us = u64::from(self.delay_us);
        }
        if self.drop_left > 0 {
            self.drop_left -= 1;
            outcome.dropped = true;
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_faults_run_out() {
        let mut f = BoardFaults::default();
        f.inject(RingFault::Corrupt { board: 0, count: 1, byte: 9, bit: 10 });
        f.inject(RingFault::Drop { board: 0, count: 2 });
        let mut frame = [0u8; 4];
        let first = f.on_answer(&mut frame);
        assert_eq!(frame, [0, 0x04, 0, 0], "byte 9 mod 4, bit 10 mod 8");
        assert!(first.dropped);
        assert!(f.on_answer(&mut frame).dropped);
        assert_eq!(f.on_answer(&mut frame), Outcome::default());
        assert_eq!(frame, [0, 0x04, 0, 0]);
    }
}
