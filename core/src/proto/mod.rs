//! Wire protocols: byte-exact codecs and the sans-IO drivers built on them.
//!
//! Every decoder here takes hostile bytes: it returns an error for anything malformed and never
//! panics, whatever it is given.
//!
//! - [`tesla`]: the Tesla Model S module boards' UART ring.
//! - [`can`]: the classic CAN frame every CAN codec reads and writes.
//! - [`lv`]: the low-voltage CAN BMS protocol (Pylontech, SMA, Victron), battery and inverter
//!   side.
//! - [`byd_can`]: BYD Battery-Box Premium HVS CAN towards hybrid inverters.

pub mod byd_can;
pub mod can;
pub mod lv;
pub mod tesla;
