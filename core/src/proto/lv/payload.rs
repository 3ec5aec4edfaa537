//! The payloads of the battery's measurement and information frames: strict `decode` from
//! the data bytes, `encode` to a frame that decodes again, and `from_view`, which applies the
//! profile's policy.

use super::wire::{
    byte_at, div_ceil, div_round, fields, frame, i16_at, padded, put_i16, put_u16, sat_i16,
    sat_u16, u16_at,
};
use super::{DecodeError, MAX_CELL_MV, MAX_TEMPERATURE, MIN_TEMPERATURE, Profile, id};
use crate::proto::can::Frame;
use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};
use crate::view::BatteryView;

/// 0x351: what the inverter may do. The current limits are magnitudes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Charge voltage limit (CVL), 0.1 V on the wire, rounded down.
    pub charge_voltage_mv: MilliVolts,
    /// Charge current limit (CCL), 0.1 A, rounded toward zero.
    pub charge_limit_ma: MilliAmps,
    /// Discharge current limit (DCL), sent as a positive number, 0.1 A, rounded toward zero.
    pub discharge_limit_ma: MilliAmps,
    /// Discharge voltage limit (DVL), 0.1 V, rounded up; `None` in a 6- or 7-byte frame
    /// (Battery-Emulator), and then the frame is 6 bytes long.
    pub discharge_voltage_mv: Option<MilliVolts>,
}

impl Limits {
    /// The limits `profile` sends for `view`: CCL 0 unless charging is allowed, DCL 0 unless
    /// discharging is allowed, and on [`Profile::Victron`] never CVL 0 (see the module
    /// documentation); `None` when a Victron would get CVL 0 and the battery voltage is 0 too.
    pub fn from_view(profile: Profile, view: &BatteryView) -> Option<Limits> {
        let zero = MilliAmps(0);
        let mut limits = Limits {
            charge_voltage_mv: view.charge_voltage_mv,
            charge_limit_ma: if view.charge_enable { view.charge_limit_ma } else { zero },
            discharge_limit_ma: if view.discharge_enable { view.discharge_limit_ma } else { zero },
            discharge_voltage_mv: Some(view.discharge_voltage_mv),
        };
        if profile == Profile::Victron && volts_down(limits.charge_voltage_mv) == 0 {
            let held = sat_u16(div_ceil(i64::from(view.voltage_mv.0), 100));
            if held == 0 {
                return None;
            }
            limits.charge_voltage_mv = MilliVolts(i32::from(held) * 100);
            limits.charge_limit_ma = zero;
        }
        Some(limits)
    }

    /// Decodes 0x351's data: at least 6 bytes; DVL when there are 8. Negative current limits
    /// are out of range.
    pub fn decode(data: &[u8]) -> Result<Limits, DecodeError> {
        let b = fields(id::LIMITS, data, 6)?;
        let (ccl, dcl) = (i16_at(&b, 2), i16_at(&b, 4));
        if ccl < 0 || dcl < 0 {
            return Err(DecodeError::OutOfRange { id: id::LIMITS });
        }
        Ok(Limits {
            charge_voltage_mv: MilliVolts(i32::from(u16_at(&b, 0)) * 100),
            charge_limit_ma: MilliAmps(i32::from(ccl) * 100),
            discharge_limit_ma: MilliAmps(i32::from(dcl) * 100),
            discharge_voltage_mv: (data.len() >= 8)
                .then(|| MilliVolts(i32::from(u16_at(&b, 6)) * 100)),
        })
    }

    /// The frame: 8 bytes with a DVL, 6 without, whatever `len` asks (a DVL field that is
    /// there is a limit, so an absent one is not sent as 0).
    #[must_use]
    pub fn encode(&self, _len: usize) -> Frame {
        let mut b = [0; 8];
        put_u16(&mut b, 0, volts_down(self.charge_voltage_mv));
        put_i16(&mut b, 2, amps_toward_zero(self.charge_limit_ma));
        put_i16(&mut b, 4, amps_toward_zero(self.discharge_limit_ma));
        let len = match self.discharge_voltage_mv {
            Some(dvl) => {
                put_u16(&mut b, 6, sat_u16(div_ceil(i64::from(dvl.0), 100)));
                8
            }
            None => 6,
        };
        frame(id::LIMITS, &b, len)
    }
}

/// 0x355: state of charge and health.
///
/// Bytes 4-5 hold a high-resolution SoC in some batteries, in 0.01 % (Battery-Emulator's SMA
/// driver, Victron) or 0.1 % (SimpBMS). The decoder settles the dispute against bytes 0-1: it
/// takes the 0.01 % reading when that lies within 1 % of the whole-percent SoC, else the 0.1 %
/// reading under the same test, else (and when bytes 4-5 are 0, as Pylontech v1.3 and BYD send
/// them) neither. The encoder writes 0.01 %.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Soc {
    /// State of charge. Sent as whole percent (rounded down) and, with
    /// [`high_resolution`](Soc::high_resolution), in bytes 4-5.
    pub soc: Permille,
    /// State of health, whole percent on the wire (rounded down).
    pub soh: Permille,
    /// Bytes 4-5 carry the SoC (decoded: they did, consistently with bytes 0-1).
    pub high_resolution: bool,
}

impl Soc {
    /// SoC and SoH of `view`, capped at 100 %; bytes 4-5 for SMA and Victron.
    pub fn from_view(profile: Profile, view: &BatteryView) -> Soc {
        Soc {
            soc: cap_permille(view.soc),
            soh: cap_permille(view.soh),
            high_resolution: matches!(profile, Profile::Sma | Profile::Victron),
        }
    }

    /// Decodes 0x355's data: at least 4 bytes; SoC and SoH at most 100 %.
    pub fn decode(data: &[u8]) -> Result<Soc, DecodeError> {
        let b = fields(id::SOC, data, 4)?;
        let (soc, soh) = (u16_at(&b, 0), u16_at(&b, 2));
        if soc > 100 || soh > 100 {
            return Err(DecodeError::OutOfRange { id: id::SOC });
        }
        let coarse = soc * 10;
        let fine = u16_at(&b, 4);
        let consistent = |p: u16| p != 0 && p <= 1000 && p.abs_diff(coarse) <= 10;
        let chosen = [fine / 10, fine].into_iter().find(|p| fine != 0 && consistent(*p));
        Ok(Soc {
            soc: Permille(chosen.unwrap_or(coarse)),
            soh: Permille(soh * 10),
            high_resolution: chosen.is_some(),
        })
    }

    /// The frame: `len` bytes, at least 4, at least 6 with the high-resolution SoC.
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        let soc = cap_permille(self.soc).0;
        let mut b = [0; 8];
        put_u16(&mut b, 0, soc / 10);
        put_u16(&mut b, 2, cap_permille(self.soh).0 / 10);
        let mut need = 4;
        if self.high_resolution {
            put_u16(&mut b, 4, soc * 10);
            need = 6;
        }
        frame(id::SOC, &b, len.max(need))
    }
}

/// 0x356: the battery's measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurements {
    /// Battery voltage, 0.01 V on the wire (at most 327.67 V: the field is signed).
    pub voltage_mv: MilliVolts,
    /// Battery current, positive when charging, 0.1 A.
    pub current_ma: MilliAmps,
    /// Battery temperature, 0.1 °C.
    pub temperature_dc: DeciCelsius,
}

impl Measurements {
    /// The measurements of `view`.
    pub fn from_view(view: &BatteryView) -> Measurements {
        Measurements {
            voltage_mv: view.voltage_mv,
            current_ma: view.current_ma,
            temperature_dc: view.temperature_dc,
        }
    }

    /// Decodes 0x356's data: at least 6 bytes; voltage not negative, temperature in range.
    pub fn decode(data: &[u8]) -> Result<Measurements, DecodeError> {
        let b = fields(id::MEASUREMENTS, data, 6)?;
        let voltage = i16_at(&b, 0);
        let temperature = DeciCelsius(i32::from(i16_at(&b, 4)));
        if voltage < 0 || !temperature_ok(temperature) {
            return Err(DecodeError::OutOfRange { id: id::MEASUREMENTS });
        }
        Ok(Measurements {
            voltage_mv: MilliVolts(i32::from(voltage) * 10),
            current_ma: MilliAmps(i32::from(i16_at(&b, 2)) * 100),
            temperature_dc: temperature,
        })
    }

    /// The frame: `len` bytes, at least 6. Rounds to the nearest step, clamps the voltage to
    /// 0..=327.67 V and the temperature to [`MIN_TEMPERATURE`]..=[`MAX_TEMPERATURE`].
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        let mut b = [0; 8];
        let voltage = div_round(i64::from(self.voltage_mv.0), 10).max(0);
        put_i16(&mut b, 0, sat_i16(voltage));
        put_i16(&mut b, 2, sat_i16(div_round(i64::from(self.current_ma.0), 100)));
        put_i16(&mut b, 4, sat_i16(i64::from(clamp_temperature(self.temperature_dc).0)));
        frame(id::MEASUREMENTS, &b, len.max(6))
    }
}
/// 0x35B: SMA events, kept as bytes (no source gives their layout; BYD and Victron batteries
/// send 8 × 0x00). Any length decodes; missing bytes read as 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Events(pub [u8; 8]);

impl Events {
    /// Decodes 0x35B's data.
    pub fn decode(data: &[u8]) -> Events {
        Events(padded(data))
    }

    /// The frame: `len` bytes, longer if a non-zero byte would be cut off.
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        let used = self.0.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
        frame(id::EVENTS, &self.0, len.max(used))
    }
}
/// 0x35F: battery information.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    /// Bytes 0-1, product or chemistry code: BYD `"Li"`, Pylontech v1.3 `"LI"`.
    pub chemistry: [u8; 2],
    /// Bytes 2-3, firmware version (`01 17` = v1.17).
    pub firmware: [u8; 2],
    /// Bytes 4-5, available capacity, whole Ah on the wire (rounded down).
    pub capacity_mah: u32,
    /// Bytes 6-7, hardware version or unknown (Pylontech v1.3 `AA 00`); zeros when absent.
    pub hardware: [u8; 2],
}

impl Info {
    /// Our battery's information: the capacity of `view`; for [`Profile::PylontechV13`] the
    /// code, versions and hardware bytes of the real US5000 (`"LI"`, `01 03`, `AA 00`), for the
    /// others `"Li"`, firmware `00 01` (cellwarden 0.1) and zeros.
    pub fn from_view(profile: Profile, view: &BatteryView) -> Info {
        let (chemistry, firmware, hardware) = match profile {
            Profile::PylontechV13 => (*b"LI", [0x01, 0x03], [0xAA, 0x00]),
            _ => (*b"Li", [0x00, 0x01], [0x00, 0x00]),
        };
        Info { chemistry, firmware, capacity_mah: view.capacity_mah, hardware }
    }

    /// Decodes 0x35F's data: at least 6 bytes.
    pub fn decode(data: &[u8]) -> Result<Info, DecodeError> {
        let b = fields(id::INFO, data, 6)?;
        Ok(Info {
            chemistry: [b[0], b[1]],
            firmware: [b[2], b[3]],
            capacity_mah: u32::from(u16_at(&b, 4)) * 1000,
            hardware: [b[6], b[7]],
        })
    }

    /// The frame: `len` bytes, at least 6, at least 8 with non-zero hardware bytes.
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        let ([c0, c1], [f0, f1], [h0, h1]) = (self.chemistry, self.firmware, self.hardware);
        let mut b = [c0, c1, f0, f1, 0, 0, h0, h1];
        put_u16(&mut b, 4, ah_down(self.capacity_mah));
        let need = if self.hardware == [0, 0] { 6 } else { 8 };
        frame(id::INFO, &b, len.max(need))
    }
}

/// 0x372: module counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ModuleCounts {
    /// Modules online.
    pub online: u16,
    /// Modules blocking charge.
    pub blocking_charge: u16,
    /// Modules blocking discharge.
    pub blocking_discharge: u16,
    /// Modules offline.
    pub offline: u16,
}

impl ModuleCounts {
    /// The modules of `view`, all online, all blocking charge while charging is not allowed and
    /// all blocking discharge while discharging is not allowed.
    pub fn from_view(view: &BatteryView) -> ModuleCounts {
        let modules = u16::from(view.modules);
        ModuleCounts {
            online: modules,
            blocking_charge: if view.charge_enable { 0 } else { modules },
            blocking_discharge: if view.discharge_enable { 0 } else { modules },
            offline: 0,
        }
    }

    /// Decodes 0x372's data: 8 bytes.
    pub fn decode(data: &[u8]) -> Result<ModuleCounts, DecodeError> {
        let b = fields(id::MODULE_COUNTS, data, 8)?;
        Ok(ModuleCounts {
            online: u16_at(&b, 0),
            blocking_charge: u16_at(&b, 2),
            blocking_discharge: u16_at(&b, 4),
            offline: u16_at(&b, 6),
        })
    }

    /// The frame, always 8 bytes.
    #[must_use]
    pub fn encode(&self, _len: usize) -> Frame {
        let mut b = [0; 8];
        put_u16(&mut b, 0, self.online);
        put_u16(&mut b, 2, self.blocking_charge);
        put_u16(&mut b, 4, self.blocking_discharge);
        put_u16(&mut b, 6, self.offline);
        frame(id::MODULE_COUNTS, &b, 8)
    }
}

/// 0x373: the lowest and highest cell voltage and temperature.
///
/// Temperatures are whole kelvin on the wire. The decoder reads K as `10·K − 2731` d°C
/// (273.15 K rounded half up), so 290 K is 16.9 °C; the encoder rounds to the nearest kelvin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellExtremes {
    /// Lowest cell voltage, mV.
    pub min_mv: MilliVolts,
    /// Highest cell voltage, mV.
    pub max_mv: MilliVolts,
    /// Lowest cell temperature.
    pub min_dc: DeciCelsius,
    /// Highest cell temperature.
    pub max_dc: DeciCelsius,
}

/// d°C per kelvin offset used by the decoder: 0 °C is 273.1 K.
const ZERO_CELSIUS_DK: i32 = 2_731;
/// Coldest and hottest kelvin that decode inside the temperature range.
const KELVIN_MIN: i64 = (MIN_TEMPERATURE.0 + ZERO_CELSIUS_DK + 9) as i64 / 10;
const KELVIN_MAX: i64 = (MAX_TEMPERATURE.0 + ZERO_CELSIUS_DK) as i64 / 10;

impl CellExtremes {
    /// The cell extremes of `view`, when it knows both voltages and temperatures.
    pub fn from_view(view: &BatteryView) -> Option<CellExtremes> {
        let ((min_mv, max_mv), (min_dc, max_dc)) = (view.cell_mv?, view.cell_dc?);
        Some(CellExtremes { min_mv, max_mv, min_dc, max_dc })
    }

    /// Decodes 0x373's data: 8 bytes; voltages at most [`MAX_CELL_MV`], temperatures in
    /// range, each minimum no larger than its maximum.
    pub fn decode(data: &[u8]) -> Result<CellExtremes, DecodeError> {
        let b = fields(id::CELL_EXTREMES, data, 8)?;
        let mv = |at| MilliVolts(i32::from(u16_at(&b, at)));
        let dc = |at| DeciCelsius(i32::from(u16_at(&b, at)) * 10 - ZERO_CELSIUS_DK);
        let cells = CellExtremes { min_mv: mv(0), max_mv: mv(2), min_dc: dc(4), max_dc: dc(6) };
        let ok = cells.max_mv <= MAX_CELL_MV
            && cells.min_mv <= cells.max_mv
            && temperature_ok(cells.min_dc)
            && temperature_ok(cells.max_dc)
            && cells.min_dc <= cells.max_dc;
        if !ok {
            return Err(DecodeError::OutOfRange { id: id::CELL_EXTREMES });
        }
        Ok(cells)
    }

    /// The frame, always 8 bytes. Voltages are clamped to 0..=[`MAX_CELL_MV`], temperatures to
    /// the decoder's range, and each pair is sent in order.
    #[must_use]
    pub fn encode(&self, _len: usize) -> Frame {
        let mv = |v: MilliVolts| sat_u16(i64::from(v.0.clamp(0, MAX_CELL_MV.0)));
        let kelvin = |t: DeciCelsius| {
            let k = div_round(2 * i64::from(t.0) + 2 * i64::from(ZERO_CELSIUS_DK) + 1, 20);
            sat_u16(k.clamp(KELVIN_MIN, KELVIN_MAX))
        };
        let (v0, v1) = (mv(self.min_mv), mv(self.max_mv));
        let (t0, t1) = (kelvin(self.min_dc), kelvin(self.max_dc));
        let mut b = [0; 8];
        put_u16(&mut b, 0, v0.min(v1));
        put_u16(&mut b, 2, v0.max(v1));
        put_u16(&mut b, 4, t0.min(t1));
        put_u16(&mut b, 6, t0.max(t1));
        frame(id::CELL_EXTREMES, &b, 8)
    }
}

/// 0x378: energy throughput, 0.1 kWh steps on the wire (rounded down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Energy {
    /// Energy charged into the battery, Wh.
    pub charged_wh: u64,
    /// Energy discharged from the battery, Wh.
    pub discharged_wh: u64,
}

impl Energy {
    /// Decodes 0x378's data: 8 bytes.
    pub fn decode(data: &[u8]) -> Result<Energy, DecodeError> {
        let b = fields(id::ENERGY, data, 8)?;
        let wh = |at: usize| {
            let raw =
                [byte_at(&b, at), byte_at(&b, at + 1), byte_at(&b, at + 2), byte_at(&b, at + 3)];
            u64::from(u32::from_le_bytes(raw)) * 100
        };
        Ok(Energy { charged_wh: wh(0), discharged_wh: wh(4) })
    }

    /// The frame, always 8 bytes; saturates at 429 496 729.5 kWh.
    #[must_use]
    pub fn encode(&self, _len: usize) -> Frame {
        let hwh = |wh: u64| u32::try_from(wh / 100).unwrap_or(u32::MAX).to_le_bytes();
        let (c, d) = (hwh(self.charged_wh), hwh(self.discharged_wh));
        frame(id::ENERGY, &[c[0], c[1], c[2], c[3], d[0], d[1], d[2], d[3]], 8)
    }
}

/// 0x379: installed capacity, whole Ah on the wire (rounded down).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Capacity {
    /// Installed capacity, mAh.
    pub capacity_mah: u32,
}

impl Capacity {
    /// The capacity of `view`.
    pub fn from_view(view: &BatteryView) -> Capacity {
        Capacity { capacity_mah: view.capacity_mah }
    }

    /// Decodes 0x379's data: at least 2 bytes.
    pub fn decode(data: &[u8]) -> Result<Capacity, DecodeError> {
        let b = fields(id::CAPACITY, data, 2)?;
        Ok(Capacity { capacity_mah: u32::from(u16_at(&b, 0)) * 1000 })
    }

    /// The frame: `len` bytes, at least 2; saturates at 65 535 Ah.
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        let mut b = [0; 8];
        put_u16(&mut b, 0, ah_down(self.capacity_mah));
        frame(id::CAPACITY, &b, len.max(2))
    }
}
// Unit conversions ----------------------------------------------------------------------

/// 0.1 V, rounded down, saturating.
fn volts_down(mv: MilliVolts) -> u16 {
    sat_u16(i64::from(mv.0).div_euclid(100))
}

/// 0.1 A of a limit, rounded toward zero, negative treated as 0, saturating.
fn amps_toward_zero(ma: MilliAmps) -> i16 {
    sat_i16((i64::from(ma.0) / 100).max(0))
}

/// Whole Ah, rounded down, saturating.
fn ah_down(mah: u32) -> u16 {
    u16::try_from(mah / 1000).unwrap_or(u16::MAX)
}

fn cap_permille(p: Permille) -> Permille {
    Permille(p.0.min(1000))
}

fn temperature_ok(t: DeciCelsius) -> bool {
    (MIN_TEMPERATURE..=MAX_TEMPERATURE).contains(&t)
}

fn clamp_temperature(t: DeciCelsius) -> DeciCelsius {
    t.clamp(MIN_TEMPERATURE, MAX_TEMPERATURE)
}
