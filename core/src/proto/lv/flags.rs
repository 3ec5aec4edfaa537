//! The flag frames: Pylontech's 0x359 and 0x35C and the SMA/Victron 0x35A.

use super::wire::{byte_at, fields, frame, or_at};
use super::{DecodeError, Profile, id};
use crate::proto::can::Frame;
use crate::view::{Alarm, AlarmSet, BatteryView};

/// 0x359: Pylontech's protection (alarm) and alarm (warning) bits, and the module count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PylonFlags {
    /// Protection bits (bytes 0-1), as alarms.
    pub alarms: AlarmSet,
    /// Alarm bits (bytes 2-3), as warnings.
    pub warnings: AlarmSet,
    /// Modules (packs) in the system, byte 4.
    pub modules: u8,
}

/// Byte (0 or 1, plus 2 for the warning byte) and bit of each alarm 0x359 carries.
const PYLON_BITS: [(Alarm, usize, u8); 7] = [
    (Alarm::HighVoltage, 0, 1 << 1),
    (Alarm::LowVoltage, 0, 1 << 2),
    (Alarm::HighTemperature, 0, 1 << 3),
    (Alarm::LowTemperature, 0, 1 << 4),
    (Alarm::HighDischargeCurrent, 0, 1 << 7),
    (Alarm::HighChargeCurrent, 1, 1 << 0),
    (Alarm::BmsInternal, 1, 1 << 3),
];

impl PylonFlags {
    /// The alarms and warnings of `view`, and its module count.
    pub fn from_view(view: &BatteryView) -> PylonFlags {
        PylonFlags { alarms: view.alarms, warnings: view.warnings, modules: view.modules }
    }

    /// What 0x359 can say about `set`: the seven kinds it has bits for, with the others folded
    /// onto the nearest bit so the inverter still learns of them. Charging temperatures become
    /// temperatures, a short circuit becomes discharge over-current, general and contactor
    /// faults become "system error" ([`Alarm::BmsInternal`]). Cell imbalance is dropped: it is
    /// no reason for an inverter to stop.
    pub fn fold(set: AlarmSet) -> AlarmSet {
        let mut out = AlarmSet::EMPTY;
        for alarm in set.iter() {
            let onto = match alarm {
                Alarm::HighTemperatureCharge => Alarm::HighTemperature,
                Alarm::LowTemperatureCharge => Alarm::LowTemperature,
                Alarm::ShortCircuit => Alarm::HighDischargeCurrent,
                Alarm::General | Alarm::Contactor => Alarm::BmsInternal,
                Alarm::CellImbalance => continue,
                other => other,
            };
            out.insert(onto);
        }
        out
    }

    /// Decodes 0x359's data: at least 7 bytes, ending in `'P' 'N'`. Every real sender (the
    /// Pylontech document, the stack and US5000 captures, Battery-Emulator) sends the marker.
    /// Bits without a meaning in the table are ignored.
    pub fn decode(data: &[u8]) -> Result<PylonFlags, DecodeError> {
        let b = fields(id::PYLON_FLAGS, data, 7)?;
        if [b[5], b[6]] != *b"PN" {
            return Err(DecodeError::NoMarker);
        }
        let mut flags =
            PylonFlags { alarms: AlarmSet::EMPTY, warnings: AlarmSet::EMPTY, modules: b[4] };
        for (alarm, byte, mask) in PYLON_BITS {
            if byte_at(&b, byte) & mask != 0 {
                flags.alarms.insert(alarm);
            }
            if byte_at(&b, byte + 2) & mask != 0 {
                flags.warnings.insert(alarm);
            }
        }
        Ok(flags)
    }

    /// The frame: `len` bytes, at least 7. The sets are [folded](PylonFlags::fold) first.
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        let (alarms, warnings) = (PylonFlags::fold(self.alarms), PylonFlags::fold(self.warnings));
        let mut b = [0, 0, 0, 0, self.modules, b'P', b'N', 0];
        for (alarm, byte, mask) in PYLON_BITS {
            if alarms.contains(alarm) {
                or_at(&mut b, byte, mask);
            }
            if warnings.contains(alarm) {
                or_at(&mut b, byte + 2, mask);
            }
        }
        frame(id::PYLON_FLAGS, &b, len.max(7))
    }
}

/// 0x35A: alarms (bytes 0-3) and warnings (bytes 4-7), one two-bit field per [`Alarm`] in
/// [`Alarm::ALL`] order: 01 active, 10 OK, 00 or 11 not supported. The three fields after
/// [`Alarm::CellImbalance`] are reserved (Victron reads warning field 13 as "online" when 10).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alarms {
    /// Alarm fields that are 01.
    pub alarms: AlarmSet,
    /// Warning fields that are 01.
    pub warnings: AlarmSet,
    /// Alarm fields that are 10 (reported OK). An alarm in neither set is not supported.
    pub alarms_ok: AlarmSet,
    /// Warning fields that are 10 (reported OK).
    pub warnings_ok: AlarmSet,
}

/// Every alarm.
const ALL_ALARMS: AlarmSet = AlarmSet((1 << Alarm::ALL.len()) - 1);

impl Alarms {
    /// The alarms and warnings of `view`. Every other field is OK, except on
    /// [`Profile::PylontechV13`], which leaves the fields of inactive alarms 00 as the real
    /// v1.3 firmware does.
    pub fn from_view(profile: Profile, view: &BatteryView) -> Alarms {
        let ok = |active: AlarmSet| match profile {
            Profile::PylontechV13 => AlarmSet::EMPTY,
            _ => AlarmSet(ALL_ALARMS.0 & !active.0),
        };
        Alarms {
            alarms: view.alarms,
            warnings: view.warnings,
            alarms_ok: ok(view.alarms),
            warnings_ok: ok(view.warnings),
        }
    }

    /// Decodes 0x35A's data: 8 bytes. Reserved fields are ignored.
    pub fn decode(data: &[u8]) -> Result<Alarms, DecodeError> {
        let b = fields(id::ALARMS, data, 8)?;
        let (alarms, alarms_ok) = decode_fields([b[0], b[1], b[2], b[3]]);
        let (warnings, warnings_ok) = decode_fields([b[4], b[5], b[6], b[7]]);
        Ok(Alarms { alarms, warnings, alarms_ok, warnings_ok })
    }

    /// The frame, always 8 bytes. An alarm in both its active and its OK set is active. The
    /// reserved fields of a half are 10 when every field of that half is supported, else 00.
    #[must_use]
    pub fn encode(&self, _len: usize) -> Frame {
        let [a0, a1, a2, a3] = encode_fields(self.alarms, self.alarms_ok);
        let [w0, w1, w2, w3] = encode_fields(self.warnings, self.warnings_ok);
        frame(id::ALARMS, &[a0, a1, a2, a3, w0, w1, w2, w3], 8)
    }
}
/// 0x35C: Pylontech's request flags, byte 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Requests {
    /// Bit 7: the battery accepts charge.
    pub charge_enable: bool,
    /// Bit 6: the battery may be discharged.
    pub discharge_enable: bool,
    /// Bit 5: force charge I (SoC about 15-19 %).
    pub force_charge_1: bool,
    /// Bit 4: force charge II (SoC about 5-10 %).
    pub force_charge_2: bool,
    /// Bit 3: full (balancing) charge requested.
    pub full_charge: bool,
}

impl Requests {
    /// The requests of `view`; [`BatteryView::force_charge`] is sent as force charge I, which
    /// every inverter treats as "charge now".
    pub fn from_view(view: &BatteryView) -> Requests {
        Requests {
            charge_enable: view.charge_enable,
            discharge_enable: view.discharge_enable,
            force_charge_1: view.force_charge,
            force_charge_2: false,
            full_charge: view.full_charge,
        }
    }

    /// Decodes 0x35C's data: at least 1 byte (bms_gateway sends 1, Pylontech 2 or 8). Bits
    /// 2-0 are ignored.
    pub fn decode(data: &[u8]) -> Result<Requests, DecodeError> {
        let b = fields(id::REQUESTS, data, 1)?;
        let bit = |n: u8| b[0] & (1 << n) != 0;
        Ok(Requests {
            charge_enable: bit(7),
            discharge_enable: bit(6),
            force_charge_1: bit(5),
            force_charge_2: bit(4),
            full_charge: bit(3),
        })
    }

    /// The frame: `len` bytes, at least 1.
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        let bits = [
            (self.charge_enable, 7),
            (self.discharge_enable, 6),
            (self.force_charge_1, 5),
            (self.force_charge_2, 4),
            (self.full_charge, 3),
        ];
        let byte = bits.iter().filter(|(set, _)| *set).fold(0u8, |acc, (_, n)| acc | 1 << n);
        frame(id::REQUESTS, &[byte, 0, 0, 0, 0, 0, 0, 0], len.max(1))
    }
}
/// Splits four bytes of 0x35A into the active (01) and OK (10) fields.
fn decode_fields(bytes: [u8; 4]) -> (AlarmSet, AlarmSet) {
    let (mut active, mut ok) = (AlarmSet::EMPTY, AlarmSet::EMPTY);
    for alarm in Alarm::ALL {
        let i = alarm.index();
        let byte = bytes.get(i / 4).copied().unwrap_or(0);
        match (byte >> (2 * (i % 4))) & 0b11 {
            0b01 => active.insert(alarm),
            0b10 => ok.insert(alarm),
            _ => {}
        }
    }
    (active, ok)
}

/// Four bytes of 0x35A from the active and OK fields.
fn encode_fields(active: AlarmSet, ok: AlarmSet) -> [u8; 4] {
    let mut out = [0u8; 4];
    let all_reported = AlarmSet(active.0 | ok.0).0 & ALL_ALARMS.0 == ALL_ALARMS.0;
    for field in 0..16 {
        let value = match Alarm::ALL.get(field) {
            Some(alarm) if active.contains(*alarm) => 0b01,
            Some(alarm) if ok.contains(*alarm) => 0b10,
            Some(_) => 0b00,
            None if all_reported => 0b10,
            None => 0b00,
        };
        if let Some(byte) = out.get_mut(field / 4) {
            *byte |= value << (2 * (field % 4));
        }
    }
    out
}
