//! A register-level emulator of a ring of Tesla Model S module boards (TI bq76PL536A) on their
//! 612500-baud UART (`shared/protocols.md` §1).
//!
//! The master's bytes go into [`Ring::receive`]; what the last board sends back to the master
//! comes out of [`Ring::take_output`] at the time it would arrive on a real wire. The ring is
//! modelled logically (§1.13): each request is delimited, walked past the boards in physical
//! order and turned into the bytes the master gets back (its echo, or the reply that replaced
//! it). Time is always an argument, so the same code serves the deterministic engine (virtual
//! time) and a real-time server.
//!
//! - [`analog`]: physical values to raw ADC results.
//! - `board`: one board's register file, balance timer, sleep and heating.
//! - `protector`: the hardware over/under-voltage and over-temperature comparators.
//! - `wire`: byte timing, request delimiting and the queue of bytes on their way back.
//! - `ring`: the topology and the public [`Ring`].
//! - `faults`: [`RingFault`] injection.
//!
//! Assumptions that no source settles (see also [`RingSpec`]):
//! - The balance resistors are 47 Ω (about 85 mA at 4 V, inside the 50–100 mA range of
//!   `shared/battery.md`); the Tesla board's real value is not published.
//! - The bleed power warms the board's thermistors by 8 K/W with a 300 s time constant: a
//!   small board screwed to a module's side, guessed, not measured.
//! - A sleeping board's balance outputs are off but its balance timer keeps counting, and its
//!   hardware comparators keep watching.
//! - Conversions follow ADC_CONTROL (channels) and need the thermistor bias of IO_CONTROL;
//!   without the bias a thermistor channel reads 0.

pub mod analog;
mod board;
mod faults;
mod protector;
mod ring;
mod wire;

pub use board::Board;
pub use faults::RingFault;
pub use ring::Ring;
pub use wire::{BAUD, wire_time_us};

/// Which bias-divider constants a thermistor channel follows (§1.8): raw = 1.78 D / (R/1000 +
/// 3.57) − k. The sources agree on TS1 (pyBMS's) and disagree on TS2.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThermistorConstants {
    /// k = 2, D = 33046: pyBMS for both sensors, and everybody's TS1.
    #[default]
    PyBms,
    /// k = 9, D = 33068: collin80 TeslaBMS and TeslaBMSV2 for TS2.
    Collin80,
}

impl ThermistorConstants {
    /// The offset k.
    pub const fn offset(self) -> f64 {
        match self {
            ThermistorConstants::PyBms => 2.0,
            ThermistorConstants::Collin80 => 9.0,
        }
    }

    /// The divisor D.
    pub const fn divisor(self) -> f64 {
        match self {
            ThermistorConstants::PyBms => 33046.0,
            ThermistorConstants::Collin80 => 33068.0,
        }
    }
}

/// How the ring is built. [`RingSpec::new`] gives the defaults listed on each field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RingSpec {
    /// Boards in the ring, in physical order from the master's TX. Default 16 (an 85 kWh pack).
    pub boards: usize,
    /// Each balance resistor, Ω. Default 47 (assumed, see the module documentation).
    pub bleed_ohm: f64,
    /// Forwarding latency of each board, µs. Default 33, about two byte times: a board's UART
    /// must take in a byte before it can pass it on. With 16 boards a 23-byte reply then
    /// arrives within 1 ms, well inside the 2 ms the collin80 masters wait.
    pub hop_delay_us: u32,
    /// The divider constants the TS2 channel follows (TS1 always follows pyBMS's, on which all
    /// sources agree). Default [`ThermistorConstants::PyBms`].
    pub ts2: ThermistorConstants,
    /// Steady-state thermistor temperature rise per watt of bleed power on the board, K/W.
    /// Default 8 (assumed).
    pub board_k_per_w: f64,
    /// Time constant of that rise, s. Default 300 (assumed).
    pub board_tau_s: f64,
    /// Silence after which an incomplete request is abandoned (forwarded unexecuted), µs.
    /// Default 1000: longer than any gap inside a frame from a real master, shorter than the
    /// 2 ms the collin80 masters wait between requests, so the ring resynchronises before
    /// their next request.
    pub frame_gap_us: u32,
    /// How long after a 3-byte read header a 4th byte still counts as that read's CRC, µs
    /// (§1.12.1). Default 33, about two byte times.
    pub read_crc_wait_us: u32,
}

impl RingSpec {
    /// The defaults with `boards` boards.
    pub const fn new(boards: usize) -> RingSpec {
        RingSpec {
            boards,
            bleed_ohm: 47.0,
            hop_delay_us: 33,
            ts2: ThermistorConstants::PyBms,
            board_k_per_w: 8.0,
            board_tau_s: 300.0,
            frame_gap_us: 1_000,
            read_crc_wait_us: 33,
        }
    }
}

impl Default for RingSpec {
    fn default() -> RingSpec {
        RingSpec::new(16)
    }
}

/// What the boards' inputs see at one moment: the plant's values, board 0 first.
#[derive(Clone, Copy, Debug)]
pub struct Analog<'a> {
    /// Six cell (series group) voltages per board, V. Missing entries read 0 V.
    pub cells_v: &'a [f64],
    /// Two thermistor temperatures per board, °C, before the board's own warming from
    /// balancing. Missing entries read 25 °C.
    pub temps_c: &'a [f64],
    /// One module voltage per board for the GPAI channel, V. Empty (or too short): each
    /// board's six cells summed. A separate value lets a test or a fault make the module sense
    /// wire disagree with the cells, as real interconnect drops do.
    pub bricks_v: &'a [f64],
}

impl<'a> Analog<'a> {
    /// Cells and temperatures; the module voltages are the sums of the cells.
    pub const fn new(cells_v: &'a [f64], temps_c: &'a [f64]) -> Analog<'a> {
        Analog { cells_v, temps_c, bricks_v: &[] }
    }

    /// Board `board`'s six cell voltages.
    fn cells(&self, board: usize) -> [f64; 6] {
        core::array::from_fn(|k| self.cells_v.get(board * 6 + k).copied().unwrap_or(0.0))
    }

    /// Board `board`'s two thermistor temperatures, without the board's own warming.
    fn temps(&self, board: usize) -> [f64; 2] {
        core::array::from_fn(|k| self.temps_c.get(board * 2 + k).copied().unwrap_or(25.0))
    }

    /// Board `board`'s module voltage.
    fn brick(&self, board: usize) -> f64 {
        match self.bricks_v.get(board) {
            Some(v) => *v,
            None => self.cells(board).iter().sum(),
        }
    }
}
