//! Register-level emulators of the devices a BMS talks to, for the scenario engine (virtual
//! time) and for a real-time server that lets an outside master talk to them.
//!
//! - [`tesla`]: a ring of Tesla Model S module boards (bq76PL536A) on their 612500-baud UART.
//! - [`can_bms`]: a Pylontech-style LFP rack battery with its own BMS on the low-voltage CAN
//!   protocol (Pylontech, SMA, Victron frame sets).
//! - [`inverter`]: inverters on a battery's CAN bus (Victron GX, SMA Sunny Island,
//!   Pylontech-compatible hybrid, BYD-HVS-speaking hybrid), obeying the limits or not.

pub mod can_bms;
pub mod inverter;
pub mod tesla;
