//! Register-level emulators of the devices a BMS talks to, for the scenario engine (virtual
//! time) and for a real-time server that lets an outside master talk to them.
//!
//! - [`tesla`]: a ring of Tesla Model S module boards (bq76PL536A) on their 612500-baud UART.

pub mod tesla;
