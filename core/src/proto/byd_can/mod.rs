//! BYD Battery-Box Premium HVS on CAN towards hybrid inverters (Sungrow, GoodWe and others
//! that speak "BYD"), both sides: `shared/protocols.md` §3.2–3.7.
//!
//! The bus runs at 500 kbit/s with 11-bit identifiers; every frame carries 8 data bytes, and
//! multi-byte fields are big-endian (unlike the low-voltage protocol of [`lv`](super::lv)).
//!
//! - The codec: one `encode_*` function per frame the battery or the inverter sends, the
//!   identification burst ([`identification`]), and one strict [`decode`] for all of them into
//!   [`Message`]. [`Message::encode`] is the inverse of [`decode`].
//! - [`Publisher`]: the battery side. It stays silent until it has heard the inverter, then
//!   sends the identification burst and the cyclic frames on their periods.
//! - [`Reader`]: the inverter side. It assembles the [`BatteryView`](crate::BatteryView) an
//!   inverter sees from the battery's frames.
//!
//! # Mechanism, not policy
//!
//! BYD frames carry no "charge enable" or "discharge enable" flag: a battery that must not be
//! charged says so with a charge current limit of 0 A. The encoders therefore send 0 A for a
//! direction whose enable flag is off, whatever its limit says. Some inverters ignore 0 A
//! limits (Deye, Solis; issue #1534 of Battery-Emulator); the SoC tricks used to stop them are
//! policy and belong to whoever builds the view, not to this codec.
//!
//! Neither side decides when the other has gone away: [`Publisher::heard`] and the `max_age`
//! of [`Reader::view`] give the adapter what it needs to decide.
//!
//! # Rounding
//!
//! The wire carries 0.1 V, 0.1 A, 0.1 °C, 0.01 %, 0.1 Ah and 0.1 kWh. Limits are rounded toward
//! the safe side: the charge voltage limit down, the discharge voltage limit up, current limits
//! and capacities toward zero. Measurements are rounded to the nearest step. Every value
//! saturates at the end of its field instead of wrapping, and the encoders never produce a
//! value that [`decode`] rejects as physically impossible (a temperature below absolute zero, a
//! state of charge above 100 %), with one exception: a view whose charge voltage limit lies
//! below its discharge voltage limit is encoded as it is, and a careful inverter refuses it.

mod codec;
mod publisher;
mod reader;

pub use codec::{
    DecodeError, Field, IdentPart, Message, decode, encode_alarm, encode_battery_info,
    encode_cell_info, encode_identify_request, encode_inverter_battery, encode_inverter_brand,
    encode_inverter_soc, encode_inverter_status, encode_inverter_time, encode_limits,
    encode_states, identification, is_inverter_frame, text,
};
pub use publisher::{ALARM_PERIOD, LIMITS_PERIOD, Publisher, STATES_PERIOD};
pub use reader::{NAME_FRAGMENTS, Reader, ReaderCounters};

use crate::units::{DeciCelsius, MilliVolts};

/// Highest battery voltage 0x1D0 can carry (a signed 16-bit number of 100 mV steps, 3276.7 V).
pub const MAX_VOLTAGE_MV: MilliVolts = MilliVolts(i16::MAX as i32 * 100);

/// The 11-bit identifiers of the protocol.
pub mod id {
    /// Battery: charge and discharge voltage and current limits, every 2 s.
    pub const LIMITS: u16 = 0x110;
    /// Battery: state of charge and health, remaining and full capacity, every 10 s.
    pub const STATES: u16 = 0x150;
    /// Battery: voltage, current and temperature, every 10 s.
    pub const BATTERY_INFO: u16 = 0x1D0;
    /// Battery: highest and lowest cell temperature, every 10 s.
    pub const CELL_INFO: u16 = 0x210;
    /// Battery: alarm frame of unknown layout, every 60 s.
    pub const ALARM: u16 = 0x190;
    /// Battery, identification burst: firmware version and capacity.
    pub const PRODUCT: u16 = 0x250;
    /// Battery, identification burst: a constant of unknown meaning.
    pub const OPAQUE: u16 = 0x290;
    /// Battery, identification burst: manufacturer name fragments.
    pub const VENDOR: u16 = 0x2D0;
    /// Battery, identification burst: model name fragments.
    pub const MODEL: u16 = 0x3D0;
    /// Inverter: identification request (byte 0 bit 0 set) or inverter brand (byte 0 zero).
    pub const INVERTER_IDENTIFY: u16 = 0x151;
    /// Inverter: its own measurement of the battery's voltage, current and temperature.
    pub const INVERTER_BATTERY: u16 = 0x091;
    /// Inverter: the state of charge as it sees it.
    pub const INVERTER_SOC: u16 = 0x0D1;
    /// Inverter: its clock.
    pub const INVERTER_TIME: u16 = 0x111;
    /// Inverter: status or keep-alive of unknown layout.
    pub const INVERTER_STATUS: u16 = 0x191;

    /// Every identifier an inverter sends; hearing any of them wakes the battery (§3.2).
    pub const INVERTER: [u16; 5] =
        [INVERTER_IDENTIFY, INVERTER_BATTERY, INVERTER_SOC, INVERTER_TIME, INVERTER_STATUS];

    /// Every identifier the battery sends.
    pub const BATTERY: [u16; 9] =
        [LIMITS, STATES, BATTERY_INFO, CELL_INFO, ALARM, PRODUCT, OPAQUE, VENDOR, MODEL];

    /// Every identifier of the protocol: the battery's, then the inverter's.
    pub const ALL: [u16; 14] = {
        let mut all = [0; 14];
        let mut i = 0;
        while i < BATTERY.len() {
            all[i] = BATTERY[i];
            i += 1;
        }
        while i < all.len() {
            all[i] = INVERTER[i - BATTERY.len()];
            i += 1;
        }
        all
    };
}

/// The model name the identification burst spells out in its 0x3D0 fragments.
pub const MODEL_NAME: &str = "Battery-Box Premium HVS";
/// The manufacturer name of the 0x2D0 fragment.
pub const VENDOR_NAME: &str = "BYD";
/// Firmware version bytes of 0x250 as can-service sends them (3.22, from a real HVS).
/// Battery-Emulator sends `03 29` instead.
pub const FIRMWARE: [u8; 2] = [0x03, 0x16];
/// The alarm frame the battery sends: can-service's static value. The layout of 0x190 is
/// unknown (a real HVM counts in byte 7, Battery-Emulator sends `00 00 03 00 …`), so this codec
/// replays a value that real inverters have accepted from can-service.
pub const ALARM: [u8; 8] = [0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00];
/// The 0x290 frame of the identification burst; its meaning is unknown.
pub const OPAQUE: [u8; 8] = [0x06, 0x37, 0x10, 0xD9, 0x00, 0x00, 0x00, 0x00];
/// The 0x191 status frame a real GoodWe inverter sends (Battery-Emulator issue #28); the
/// simulated inverter replays it.
pub const GOODWE_STATUS: [u8; 8] = [0x04, 0x04, 0x00, 0x17, 0x00, 0x01, 0x04, 0x00];
/// Bytes 6-7 of 0x1D0, constant in every source; their meaning is unknown.
pub const BATTERY_INFO_TAIL: [u8; 2] = [0x03, 0x08];
/// Bytes 2-3 and 6-7 of 0x250 (`00 66` and `02 09`) in every source; their meaning is unknown.
pub const PRODUCT_UNKNOWN: [u8; 4] = [0x00, 0x66, 0x02, 0x09];
/// The current in 0x091 is counted in this many milliamps (0.1 A), as real inverters send it;
/// Battery-Emulator reads 0.01 A. The sources and the reasoning are at
/// [`encode_inverter_battery`].
pub const INVERTER_CURRENT_STEP_MA: i32 = 100;
/// The coldest temperature the 0.1 °C fields can carry without going below absolute zero
/// (−273.15 °C): −273.1 °C. Anything colder is refused by [`decode`].
pub const COLDEST: DeciCelsius = DeciCelsius(-2731);
