//! The frame layouts of §3.3–3.5: encoders for both sides and the one strict decoder.

use super::{
    ALARM, BATTERY_INFO_TAIL, COLDEST, FIRMWARE, INVERTER_CURRENT_STEP_MA, MODEL_NAME, OPAQUE,
    PRODUCT_UNKNOWN, VENDOR_NAME, id,
};
use crate::proto::can::Frame;
use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};
use crate::view::BatteryView;

/// One frame of the protocol, decoded. Values are in core units and hold exactly what the wire
/// carried, so [`Message::encode`] gives back the frame [`decode`] read (except where the
/// decoder ignores bytes: bytes 1-7 of an identification request, the unused tails of 0x091,
/// 0x0D1 and 0x111).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Message {
    /// 0x110, battery: what the inverter may do.
    Limits {
        /// Charge voltage limit (CVL).
        charge_voltage_mv: MilliVolts,
        /// Discharge voltage limit (DVL).
        discharge_voltage_mv: MilliVolts,
        /// Largest discharge current, magnitude.
        discharge_limit_ma: MilliAmps,
        /// Largest charge current, magnitude.
        charge_limit_ma: MilliAmps,
    },
    /// 0x150, battery: how full and how healthy.
    States {
        /// State of charge in hundredths of a percent (10 000 = 100 %).
        soc_pptt: u16,
        /// State of health in hundredths of a percent.
        soh_pptt: u16,
        /// Charge left, milliamp-hours.
        remaining_mah: u32,
        /// Full-charge capacity, milliamp-hours.
        capacity_mah: u32,
    },
    /// 0x1D0, battery: measurements.
    BatteryInfo {
        /// Battery voltage.
        voltage_mv: MilliVolts,
        /// Battery current, positive when charging.
        current_ma: MilliAmps,
        /// Battery temperature.
        temperature_dc: DeciCelsius,
        /// Bytes 6-7, of unknown meaning: [`BATTERY_INFO_TAIL`](super::BATTERY_INFO_TAIL)
        /// in every source.
        unknown: [u8; 2],
    },
    /// 0x210, battery: cell temperature extremes.
    CellInfo {
        /// Highest cell temperature.
        cell_dc_max: DeciCelsius,
        /// Lowest cell temperature.
        cell_dc_min: DeciCelsius,
        /// Bytes 4-7, of unknown meaning: zero in every source.
        unknown: [u8; 4],
    },
    /// 0x190, battery: the alarm frame, opaque (§3.4).
    Alarm([u8; 8]),
    /// 0x250, 0x290, 0x2D0 or 0x3D0: one frame of the identification burst.
    Ident {
        /// Which frame, and what it says.
        part: IdentPart,
    },
    /// 0x151 with byte 0 bit 0 set, inverter: "battery, identify yourself".
    IdentifyRequest,
    /// 0x151 with byte 0 zero, inverter: its brand.
    InverterBrand {
        /// ASCII, padded with NULs; [`text`] reads it.
        brand: [u8; 7],
    },
    /// 0x091, inverter: its own measurement of the battery.
    InverterBattery {
        /// Battery voltage.
        voltage_mv: MilliVolts,
        /// Battery current, positive when charging, read in steps of
        /// [`INVERTER_CURRENT_STEP_MA`](super::INVERTER_CURRENT_STEP_MA).
        current_ma: MilliAmps,
        /// Battery temperature.
        temperature_dc: DeciCelsius,
    },
    /// 0x0D1, inverter: the state of charge it sees.
    InverterSoc(Permille),
    /// 0x111, inverter: its clock, seconds.
    InverterTime(u32),
    /// 0x191, inverter: status or keep-alive, opaque.
    InverterStatus([u8; 8]),
}

/// One frame of the identification burst (§3.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IdentPart {
    /// 0x250: firmware version and capacity.
    Product {
        /// Bytes 0-1 (`03 16` = 3.22 for can-service's real HVS).
        firmware: [u8; 2],
        /// Bytes 4-5, carried in 0.1 kWh.
        capacity_wh: u32,
        /// Bytes 2-3 and 6-7, of unknown meaning:
        /// [`PRODUCT_UNKNOWN`](super::PRODUCT_UNKNOWN) in every source.
        unknown: [u8; 4],
    },
    /// 0x290: a constant of unknown meaning ([`OPAQUE`](super::OPAQUE)).
    Opaque([u8; 8]),
    /// 0x2D0: a fragment of the manufacturer name.
    Vendor {
        /// Fragment index: the text starts at character `7 × index`.
        index: u8,
        /// ASCII, NUL-padded.
        text: [u8; 7],
    },
    /// 0x3D0: a fragment of the model name.
    Model {
        /// Fragment index: the text starts at character `7 × index`.
        index: u8,
        /// ASCII, NUL-padded.
        text: [u8; 7],
    },
}

/// Why a frame is not a valid frame of this protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// A 29-bit identifier: this protocol uses 11-bit ones only.
    Extended,
    /// An 11-bit identifier this protocol does not use.
    UnknownId(u16),
    /// A data length other than 8.
    WrongLength {
        /// The frame's identifier.
        id: u16,
        /// Its data length.
        len: u8,
    },
    /// A field holds a value no battery or inverter can mean.
    OutOfRange {
        /// The frame's identifier.
        id: u16,
        /// Which field.
        field: Field,
    },
}

/// The field that made a frame [`DecodeError::OutOfRange`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// 0x110: the charge voltage limit lies below the discharge voltage limit.
    VoltageLimits,
    /// 0x110: a negative charge current limit.
    ChargeLimit,
    /// 0x110: a negative discharge current limit.
    DischargeLimit,
    /// 0x150 or 0x0D1: a state of charge above 100 %.
    Soc,
    /// 0x150: a state of health above 100 %.
    Soh,
    /// 0x150: more charge left than the full capacity.
    RemainingCapacity,
    /// 0x1D0, 0x210 or 0x091: a temperature below absolute zero.
    Temperature,
    /// 0x210: the highest cell temperature lies below the lowest.
    CellTemperatures,
    /// 0x2D0, 0x3D0 or 0x151: a text byte that is not ASCII.
    Text,
    /// 0x151: byte 0 is neither a request (bit 0 set) nor zero.
    Request,
}

impl Message {
    /// The frame's identifier.
    pub const fn id(&self) -> u16 {
        match self {
            Message::Limits { .. } => id::LIMITS,
            Message::States { .. } => id::STATES,
            Message::BatteryInfo { .. } => id::BATTERY_INFO,
            Message::CellInfo { .. } => id::CELL_INFO,
            Message::Alarm(_) => id::ALARM,
            Message::Ident { part: IdentPart::Product { .. } } => id::PRODUCT,
            Message::Ident { part: IdentPart::Opaque(_) } => id::OPAQUE,
            Message::Ident { part: IdentPart::Vendor { .. } } => id::VENDOR,
            Message::Ident { part: IdentPart::Model { .. } } => id::MODEL,
            Message::IdentifyRequest | Message::InverterBrand { .. } => id::INVERTER_IDENTIFY,
            Message::InverterBattery { .. } => id::INVERTER_BATTERY,
            Message::InverterSoc(_) => id::INVERTER_SOC,
            Message::InverterTime(_) => id::INVERTER_TIME,
            Message::InverterStatus(_) => id::INVERTER_STATUS,
        }
    }

    /// Whether the inverter sends this message (the battery sends all the others).
    pub const fn is_from_inverter(&self) -> bool {
        matches!(
            self,
            Message::IdentifyRequest
                | Message::InverterBrand { .. }
                | Message::InverterBattery { .. }
                | Message::InverterSoc(_)
                | Message::InverterTime(_)
                | Message::InverterStatus(_)
        )
    }

    /// The frame on the wire. Values that do not fit are rounded and saturated as the module
    /// documentation describes, so the result always decodes, except for [`Message::Limits`]
    /// with the charge voltage limit below the discharge voltage limit. Text bytes are sent as
    /// they are.
    pub fn encode(&self) -> Frame {
        frame(self.id(), self.data())
    }

    /// The 8 data bytes of [`encode`](Self::encode).
    pub fn data(&self) -> [u8; 8] {
        match *self {
            Message::Limits {
                charge_voltage_mv,
                discharge_voltage_mv,
                discharge_limit_ma,
                charge_limit_ma,
            } => pack([
                sat_u16(div_floor(charge_voltage_mv.0.into(), 100)).to_be_bytes(),
                sat_u16(div_ceil(discharge_voltage_mv.0.into(), 100)).to_be_bytes(),
                limit_da(discharge_limit_ma).to_be_bytes(),
                limit_da(charge_limit_ma).to_be_bytes(),
            ]),
            Message::States { soc_pptt, soh_pptt, remaining_mah, capacity_mah } => pack([
                soc_pptt.min(PPTT_FULL).to_be_bytes(),
                soh_pptt.min(PPTT_FULL).to_be_bytes(),
                // Never more left than the whole: the decoder refuses that.
                sat_u16((remaining_mah.min(capacity_mah) / 100).into()).to_be_bytes(),
                sat_u16((capacity_mah / 100).into()).to_be_bytes(),
            ]),
            Message::BatteryInfo { voltage_mv, current_ma, temperature_dc, unknown } => pack([
                sat_i16(div_nearest(voltage_mv.0.into(), 100)).to_be_bytes(),
                sat_i16(div_nearest(current_ma.0.into(), 100)).to_be_bytes(),
                temperature(temperature_dc).to_be_bytes(),
                unknown,
            ]),
            Message::CellInfo { cell_dc_max, cell_dc_min, unknown } => {
                let [u0, u1, u2, u3] = unknown;
                pack([
                    temperature(cell_dc_max.max(cell_dc_min)).to_be_bytes(),
                    temperature(cell_dc_min.min(cell_dc_max)).to_be_bytes(),
                    [u0, u1],
                    [u2, u3],
                ])
            }
            Message::Alarm(bytes) | Message::InverterStatus(bytes) => bytes,
            Message::Ident { part } => part.data(),
            Message::IdentifyRequest => [1, 0, 0, 0, 0, 0, 0, 0],
            Message::InverterBrand { brand } => tagged(0, brand),
            Message::InverterBattery { voltage_mv, current_ma, temperature_dc } => pack([
                sat_u16(div_nearest(voltage_mv.0.into(), 100)).to_be_bytes(),
                sat_i16(div_nearest(current_ma.0.into(), INVERTER_CURRENT_STEP_MA.into()))
                    .to_be_bytes(),
                temperature(temperature_dc).to_be_bytes(),
                [0, 0],
            ]),
            Message::InverterSoc(soc) => {
                pack([soc.0.min(1000).to_be_bytes(), [0, 0], [0, 0], [0, 0]])
            }
            Message::InverterTime(seconds) => {
                let [a, b, c, d] = seconds.to_be_bytes();
                [a, b, c, d, 0, 0, 0, 0]
            }
        }
    }
}

impl IdentPart {
    /// The 8 data bytes.
    fn data(&self) -> [u8; 8] {
        match *self {
            IdentPart::Product { firmware, capacity_wh, unknown: [u0, u1, u2, u3] } => pack([
                firmware,
                [u0, u1],
                sat_u16((capacity_wh / 100).into()).to_be_bytes(),
                [u2, u3],
            ]),
            IdentPart::Opaque(bytes) => bytes,
            IdentPart::Vendor { index, text } | IdentPart::Model { index, text } => {
                tagged(index, text)
            }
        }
    }
}

// Battery -> inverter --------------------------------------------------------------------------

/// 0x110: charge voltage limit, discharge voltage limit, discharge and charge current limits.
/// A direction whose enable flag is off gets 0 A: BYD has no enable flags. Voltage limits round
/// toward the safe side (CVL down, DVL up), currents toward zero; a negative limit is sent as 0.
pub fn encode_limits(view: &BatteryView) -> Frame {
    let enabled = |on: bool, limit: MilliAmps| if on { limit } else { MilliAmps(0) };
    Message::Limits {
        charge_voltage_mv: view.charge_voltage_mv,
        discharge_voltage_mv: view.discharge_voltage_mv,
        discharge_limit_ma: enabled(view.discharge_enable, view.discharge_limit_ma),
        charge_limit_ma: enabled(view.charge_enable, view.charge_limit_ma),
    }
    .encode()
}

/// 0x150: state of charge and health (0.01 %, capped at 100 %), remaining capacity (the full
/// capacity times the state of charge) and full capacity (0.1 Ah), both rounded down.
pub fn encode_states(view: &BatteryView) -> Frame {
    let soc = view.soc.0.min(1000);
    let remaining = u64::from(view.capacity_mah) * u64::from(soc) / 1000;
    Message::States {
        soc_pptt: soc * 10,
        soh_pptt: view.soh.0.min(1000) * 10,
        // At most capacity_mah, since soc <= 1000.
        remaining_mah: u32::try_from(remaining).unwrap_or(view.capacity_mah),
        capacity_mah: view.capacity_mah,
    }
    .encode()
}

/// 0x1D0: battery voltage (0.1 V), current (0.1 A, positive when charging) and temperature
/// (0.1 °C), each rounded to the nearest step, then the constant `03 08`.
pub fn encode_battery_info(view: &BatteryView) -> Frame {
    Message::BatteryInfo {
        voltage_mv: view.voltage_mv,
        current_ma: view.current_ma,
        temperature_dc: view.temperature_dc,
        unknown: BATTERY_INFO_TAIL,
    }
    .encode()
}

/// 0x210: highest and lowest cell temperature (0.1 °C), from
/// [`cell_dc`](BatteryView::cell_dc) or, when the view has no cell temperatures, the battery
/// temperature for both.
pub fn encode_cell_info(view: &BatteryView) -> Frame {
    let (low, high) = view.cell_dc.unwrap_or((view.temperature_dc, view.temperature_dc));
    Message::CellInfo { cell_dc_max: high, cell_dc_min: low, unknown: [0; 4] }.encode()
}

/// 0x190: the alarm frame, always [`ALARM`](super::ALARM) (can-service's
/// `00 00 00 04 00 00 00 00`). Its layout is unknown, so it says nothing about the battery;
/// alarms reach the inverter only through the limits.
pub fn encode_alarm() -> Frame {
    Message::Alarm(ALARM).encode()
}

/// The identification burst of §3.5, in sending order: 0x250 with can-service's firmware
/// bytes `03 16` and the capacity in 0.1 kWh (rounded down, saturating at 6553.5 kWh), 0x290,
/// the manufacturer name "BYD" in one 0x2D0 frame, and the model name
/// "Battery-Box Premium HVS" in four 0x3D0 frames.
pub fn identification(capacity_wh: u32) -> [Frame; 7] {
    let product = IdentPart::Product { firmware: FIRMWARE, capacity_wh, unknown: PRODUCT_UNKNOWN };
    let vendor = |index| IdentPart::Vendor { index, text: fragment(VENDOR_NAME, index) };
    let model = |index| IdentPart::Model { index, text: fragment(MODEL_NAME, index) };
    [product, IdentPart::Opaque(OPAQUE), vendor(0), model(0), model(1), model(2), model(3)]
        .map(|part| Message::Ident { part }.encode())
}

// Inverter -> battery --------------------------------------------------------------------------

/// 0x151 `01 00 00 00 00 00 00 00`: asks the battery for its identification burst.
pub fn encode_identify_request() -> Frame {
    Message::IdentifyRequest.encode()
}

/// 0x151 with byte 0 zero: the inverter's brand in bytes 1-7, NUL-padded. Bytes beyond the
/// seventh are dropped, and bytes that are not ASCII are sent as `?`, so the frame always
/// decodes.
pub fn encode_inverter_brand(brand: &[u8]) -> Frame {
    let mut text = [0; 7];
    for (slot, &b) in text.iter_mut().zip(brand) {
        *slot = if b.is_ascii() { b } else { b'?' };
    }
    Message::InverterBrand { brand: text }.encode()
}

/// 0x091: the inverter's measurement of the battery: voltage (0.1 V, unsigned), current
/// (positive when charging) and temperature (0.1 °C), each rounded to the nearest step.
///
/// The current is a signed 16-bit count of 0.1 A
/// ([`INVERTER_CURRENT_STEP_MA`](super::INVERTER_CURRENT_STEP_MA)). `shared/protocols.md` §3.3
/// calls the unit uncertain; checked against the public sources in December 2026:
///
/// - Battery-Emulator @ 62532e94 (`Software/src/inverter/BYD-CAN.cpp`, the newest public
///   battery-side implementation) reads the field as a signed count of 0.01 A (10 mA a step,
///   for its "inverter as shunt" option) since commit d7b7d219 (pull request #1855, December
///   2025). Its code before that implied 0.01 A too (it scaled by 0.1 into deci-amperes).
///   Neither comes with a capture.
/// - Both reports from real inverters read 0.1 A: Battery-Emulator issue #614 (November 2024:
///   bytes 2-3 divided by 10 matched the battery current the inverter gave over Modbus) and
///   issue #1853 (December 2025, a GoodWe: `FF FE` is -0.2 A), the report #1855 set out to fix.
///
/// So this codec keeps 0.1 A: what both observations of real inverters say, the unit of every
/// other current on this bus (0x110, 0x1D0), and a range (±3276.7 A) that a 0.01 A field
/// (±327.67 A) would not give the larger packs. The value is telemetry only: neither the
/// battery side nor the combiner decides anything on it.
///
/// The temperature is documented as unsigned; it is written as a signed 16-bit value, which is
/// the same for every temperature above 0 °C and lets frost be expressed.
pub fn encode_inverter_battery(
    voltage: MilliVolts,
    current: MilliAmps,
    temperature: DeciCelsius,
) -> Frame {
    Message::InverterBattery {
        voltage_mv: voltage,
        current_ma: current,
        temperature_dc: temperature,
    }
    .encode()
}

/// 0x0D1: the state of charge the inverter sees, 0.1 %, capped at 100 %.
pub fn encode_inverter_soc(soc: Permille) -> Frame {
    Message::InverterSoc(soc).encode()
}

/// 0x111: the inverter's clock in seconds, bytes 0-3.
pub fn encode_inverter_time(seconds: u32) -> Frame {
    Message::InverterTime(seconds).encode()
}

/// 0x191: the status frame, always [`GOODWE_STATUS`](super::GOODWE_STATUS)
/// (`04 04 00 17 00 01 04 00`, captured from a real GoodWe). Its layout is unknown.
pub fn encode_inverter_status() -> Frame {
    Message::InverterStatus(super::GOODWE_STATUS).encode()
}

// Decoding -------------------------------------------------------------------------------------

/// Whether `frame` carries one of the identifiers an inverter sends (0x151, 0x091, 0x0D1,
/// 0x111, 0x191) with an 11-bit identifier, whatever its length and content.
pub fn is_inverter_frame(frame: &Frame) -> bool {
    !frame.is_extended() && id::INVERTER.iter().any(|&id| u32::from(id) == frame.id())
}

/// Decodes one frame, as strictly as a careful receiver would: 11-bit identifiers only, exactly
/// 8 data bytes on every frame of either side (§3.2; every capture, GoodWe's included, has 8),
/// ASCII text, and no physically impossible value: a state of charge or health above 100 %,
/// more charge left than the full capacity, a temperature below absolute zero, a negative
/// current limit, a charge voltage limit below the discharge voltage limit, a highest cell
/// temperature below the lowest. Bytes of unknown meaning are not checked; they are kept in the
/// message where the frame has a place for them. Never panics.
pub fn decode(frame: &Frame) -> Result<Message, DecodeError> {
    if frame.is_extended() {
        return Err(DecodeError::Extended);
    }
    // An 11-bit identifier: the mask changes nothing and makes the cast lossless.
    let id = (frame.id() & 0x7FF) as u16;
    if !is_known(id) {
        return Err(DecodeError::UnknownId(id));
    }
    let Ok(data) = <[u8; 8]>::try_from(frame.data()) else {
        let len = u8::try_from(frame.len()).unwrap_or(u8::MAX);
        return Err(DecodeError::WrongLength { id, len });
    };
    let out_of_range = |field| DecodeError::OutOfRange { id, field };
    let [w0, w1, w2, w3] = unpack(data);
    let [b0, rest @ ..] = data;
    let message = match id {
        id::LIMITS => {
            let (cvl, dvl) = (u16::from_be_bytes(w0), u16::from_be_bytes(w1));
            let (dcl, ccl) = (i16::from_be_bytes(w2), i16::from_be_bytes(w3));
            if cvl < dvl {
                return Err(out_of_range(Field::VoltageLimits));
            }
            if dcl < 0 {
                return Err(out_of_range(Field::DischargeLimit));
            }
            if ccl < 0 {
                return Err(out_of_range(Field::ChargeLimit));
            }
            Message::Limits {
                charge_voltage_mv: MilliVolts(i32::from(cvl) * 100),
                discharge_voltage_mv: MilliVolts(i32::from(dvl) * 100),
                discharge_limit_ma: MilliAmps(i32::from(dcl) * 100),
                charge_limit_ma: MilliAmps(i32::from(ccl) * 100),
            }
        }
        id::STATES => {
            let (soc, soh) = (u16::from_be_bytes(w0), u16::from_be_bytes(w1));
            let (remaining, full) = (u16::from_be_bytes(w2), u16::from_be_bytes(w3));
            if soc > PPTT_FULL {
                return Err(out_of_range(Field::Soc));
            }
            if soh > PPTT_FULL {
                return Err(out_of_range(Field::Soh));
            }
            if remaining > full {
                return Err(out_of_range(Field::RemainingCapacity));
            }
            Message::States {
                soc_pptt: soc,
                soh_pptt: soh,
                remaining_mah: u32::from(remaining) * 100,
                capacity_mah: u32::from(full) * 100,
            }
        }
        id::BATTERY_INFO => Message::BatteryInfo {
            voltage_mv: MilliVolts(i32::from(i16::from_be_bytes(w0)) * 100),
            current_ma: MilliAmps(i32::from(i16::from_be_bytes(w1)) * 100),
            temperature_dc: checked_temperature(w2).ok_or(out_of_range(Field::Temperature))?,
            unknown: w3,
        },
        id::CELL_INFO => {
            let max = checked_temperature(w0).ok_or(out_of_range(Field::Temperature))?;
            let min = checked_temperature(w1).ok_or(out_of_range(Field::Temperature))?;
            if max < min {
                return Err(out_of_range(Field::CellTemperatures));
            }
            let ([u0, u1], [u2, u3]) = (w2, w3);
            Message::CellInfo { cell_dc_max: max, cell_dc_min: min, unknown: [u0, u1, u2, u3] }
        }
        id::ALARM => Message::Alarm(data),
        id::PRODUCT => {
            let ([u0, u1], [u2, u3]) = (w1, w3);
            let part = IdentPart::Product {
                firmware: w0,
                capacity_wh: u32::from(u16::from_be_bytes(w2)) * 100,
                unknown: [u0, u1, u2, u3],
            };
            Message::Ident { part }
        }
        id::OPAQUE => Message::Ident { part: IdentPart::Opaque(data) },
        id::VENDOR | id::MODEL => {
            if !rest.is_ascii() {
                return Err(out_of_range(Field::Text));
            }
            let part = if id == id::VENDOR {
                IdentPart::Vendor { index: b0, text: rest }
            } else {
                IdentPart::Model { index: b0, text: rest }
            };
            Message::Ident { part }
        }
        id::INVERTER_IDENTIFY => {
            if b0 & 1 == 1 {
                Message::IdentifyRequest
            } else if b0 != 0 {
                return Err(out_of_range(Field::Request));
            } else if !rest.is_ascii() {
                return Err(out_of_range(Field::Text));
            } else {
                Message::InverterBrand { brand: rest }
            }
        }
        id::INVERTER_BATTERY => Message::InverterBattery {
            voltage_mv: MilliVolts(i32::from(u16::from_be_bytes(w0)) * 100),
            current_ma: MilliAmps(i32::from(i16::from_be_bytes(w1)) * INVERTER_CURRENT_STEP_MA),
            temperature_dc: checked_temperature(w2).ok_or(out_of_range(Field::Temperature))?,
        },
        id::INVERTER_SOC => {
            let soc = u16::from_be_bytes(w0);
            if soc > 1000 {
                return Err(out_of_range(Field::Soc));
            }
            Message::InverterSoc(Permille(soc))
        }
        id::INVERTER_TIME => {
            let ([a, b], [c, d]) = (w0, w1);
            Message::InverterTime(u32::from_be_bytes([a, b, c, d]))
        }
        id::INVERTER_STATUS => Message::InverterStatus(data),
        _ => return Err(DecodeError::UnknownId(id)),
    };
    Ok(message)
}

/// The text of a name or brand field: the ASCII bytes up to the first NUL (or all of them).
/// `None` when a byte before the NUL is not ASCII.
pub fn text(bytes: &[u8]) -> Option<&str> {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let text = bytes.get(..end)?;
    if !text.is_ascii() {
        return None;
    }
    core::str::from_utf8(text).ok()
}

// Helpers --------------------------------------------------------------------------------------

/// 100.00 % in hundredths of a percent.
const PPTT_FULL: u16 = 10_000;

fn is_known(id: u16) -> bool {
    id::ALL.contains(&id)
}

/// A standard data frame. Every identifier used here is below 0x800 and every payload is 8
/// bytes, which are the only two reasons [`Frame::standard`] fails.
fn frame(id: u16, data: [u8; 8]) -> Frame {
    Frame::standard(id, &data).expect("11-bit identifier and 8 bytes")
}

fn pack(words: [[u8; 2]; 4]) -> [u8; 8] {
    let [[a, b], [c, d], [e, f], [g, h]] = words;
    [a, b, c, d, e, f, g, h]
}

fn unpack(data: [u8; 8]) -> [[u8; 2]; 4] {
    let [a, b, c, d, e, f, g, h] = data;
    [[a, b], [c, d], [e, f], [g, h]]
}

/// Byte 0 `tag`, then 7 bytes.
fn tagged(tag: u8, rest: [u8; 7]) -> [u8; 8] {
    let [a, b, c, d, e, f, g] = rest;
    [tag, a, b, c, d, e, f, g]
}

/// Characters `7 × index ..` of `name`, NUL-padded.
fn fragment(name: &str, index: u8) -> [u8; 7] {
    let mut out = [0; 7];
    let chars = name.bytes().skip(7 * usize::from(index));
    for (slot, b) in out.iter_mut().zip(chars) {
        *slot = b;
    }
    out
}

fn sat_u16(value: i64) -> u16 {
    u16::try_from(value).unwrap_or(if value < 0 { 0 } else { u16::MAX })
}

fn sat_i16(value: i64) -> i16 {
    i16::try_from(value).unwrap_or(if value < 0 { i16::MIN } else { i16::MAX })
}

/// A current limit in 0.1 A: negative limits are 0, the rest rounded toward zero.
fn limit_da(limit: MilliAmps) -> i16 {
    sat_i16(i64::from(limit.0.max(0)) / 100)
}

/// A temperature in 0.1 °C, no colder than absolute zero allows.
fn temperature(t: DeciCelsius) -> i16 {
    sat_i16(t.0.max(COLDEST.0).into())
}

fn checked_temperature(word: [u8; 2]) -> Option<DeciCelsius> {
    let t = DeciCelsius(i16::from_be_bytes(word).into());
    (t >= COLDEST).then_some(t)
}

fn div_floor(n: i64, d: i64) -> i64 {
    n.div_euclid(d)
}

fn div_ceil(n: i64, d: i64) -> i64 {
    -(-n).div_euclid(d)
}

/// `n / d` rounded to the nearest integer, halves away from zero (`d` > 0).
fn div_nearest(n: i64, d: i64) -> i64 {
    if n >= 0 { (n + d / 2) / d } else { (n - d / 2) / d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_helpers() {
        assert_eq!((div_floor(-1, 100), div_floor(199, 100)), (-1, 1));
        assert_eq!((div_ceil(-199, 100), div_ceil(101, 100), div_ceil(100, 100)), (-1, 2, 1));
        assert_eq!(
            (div_nearest(150, 100), div_nearest(-150, 100), div_nearest(-149, 100)),
            (2, -2, -1)
        );
        assert_eq!((sat_u16(-5), sat_u16(70_000), sat_i16(-40_000)), (0, u16::MAX, i16::MIN));
    }

    #[test]
    fn name_fragments() {
        assert_eq!(&fragment(MODEL_NAME, 3), b"VS\0\0\0\0\0");
        assert_eq!(&fragment(MODEL_NAME, 9), &[0; 7]);
        assert_eq!(text(b"BYD\0x\0\0"), Some("BYD"));
        assert_eq!(text(b"\xC3\0"), None);
    }
}
