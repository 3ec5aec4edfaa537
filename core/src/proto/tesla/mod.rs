//! Tesla Model S module boards (TI bq76PL536A) on their 612500-baud UART ring
//! (`shared/protocols.md` §1).
//!
//! - [`frame`]: the CRC-8 and the frame formats, for both the master's and the boards' side.
//! - [`regs`]: the register map and bit definitions.
//! - [`scale`]: raw ADC values to millivolts and tenths of a degree, and back.
//! - [`master`]: the sans-IO bus master that enumerates, measures, clears faults, programs the
//!   hardware protector and balances.
//! - [`bridge`]: the master joined to a pack controller: one input batch per cycle, balance
//!   masks per board, the boards' protector as a hardware fault, board events worth reporting.

pub mod bridge;
pub mod frame;
mod link;
pub mod master;
pub mod regs;
pub mod scale;

pub use frame::{
    Address, BROADCAST, DecodeError, MAX_MODULES, MAX_READ_LEN, MAX_REPLY_LEN, Reply, Request,
    crc8, frame_crc,
};
pub use link::{BAUD, BITS_PER_BYTE, wire_time};
pub use scale::{Thermistor, brick_mv, cell_mv, temperature_dc};
