//! The inverter side: what an inverter makes of a BYD battery's frames.

use super::codec::{DecodeError, IdentPart, Message, decode, text};
use crate::proto::can::Frame;
use crate::time::{Duration, Instant};
use crate::units::{MilliAmps, Permille};
use crate::view::{AlarmSet, BatteryView};

/// Name fragments the reader keeps per name (7 characters each): names up to 56 characters.
/// Fragments with a higher index are ignored.
pub const NAME_FRAGMENTS: usize = 8;

/// The inverter side of the protocol: it keeps the latest valid frame of each kind and builds
/// the [`BatteryView`] an inverter sees from them.
///
/// Drive it with every received frame ([`handle_frame`](Self::handle_frame)); read
/// [`view`](Self::view) whenever the inverter needs the battery's state. A frame that does not
/// decode, or decodes to an inverter's message, is counted and changes nothing else. The
/// reader sends nothing: the inverter's own frames come from the `encode_inverter_*` functions,
/// sent on the adapter's schedule.
#[derive(Clone, Debug, Default)]
pub struct Reader {
    limits: Option<Stamped>,
    states: Option<Stamped>,
    battery_info: Option<Stamped>,
    cell_info: Option<Stamped>,
    alarm: Option<[u8; 8]>,
    product: Option<IdentPart>,
    vendor: Name,
    model: Name,
    counters: ReaderCounters,
}

/// How many frames a [`Reader`] took, refused and ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReaderCounters {
    /// Battery frames that decoded and were stored.
    pub accepted: u32,
    /// Frames with an identifier of this protocol that did not decode.
    pub rejected: u32,
    /// Frames that are not the battery's: other identifiers, 29-bit identifiers, and inverter
    /// frames (the reader's own, seen on the bus).
    pub ignored: u32,
    /// Why the last rejected frame was refused.
    pub last_error: Option<DecodeError>,
}

/// A battery frame and when it arrived.
#[derive(Clone, Copy, Debug)]
struct Stamped {
    at: Instant,
    message: Message,
}

/// A name assembled from 7-character fragments.
#[derive(Clone, Copy, Debug, Default)]
struct Name {
    text: [[u8; 7]; NAME_FRAGMENTS],
    /// Bit `i`: fragment `i` received.
    received: u8,
}

impl Reader {
    /// A reader that has received nothing.
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Takes a received frame. Never panics; a bad frame is counted and changes nothing else.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) {
        let message = match decode(frame) {
            Ok(message) if !message.is_from_inverter() => message,
            Ok(_) | Err(DecodeError::Extended | DecodeError::UnknownId(_)) => {
                self.counters.ignored = self.counters.ignored.saturating_add(1);
                return;
            }
            Err(error) => {
                self.counters.rejected = self.counters.rejected.saturating_add(1);
                self.counters.last_error = Some(error);
                return;
            }
        };
        self.counters.accepted = self.counters.accepted.saturating_add(1);
        let stamped = Some(Stamped { at: now, message });
        match message {
            Message::Limits { .. } => self.limits = stamped,
            Message::States { .. } => self.states = stamped,
            Message::BatteryInfo { .. } => self.battery_info = stamped,
            Message::CellInfo { .. } => self.cell_info = stamped,
            Message::Alarm(bytes) => self.alarm = Some(bytes),
            Message::Ident { part } => match part {
                IdentPart::Product { .. } => self.product = Some(part),
                IdentPart::Opaque(_) => {}
                IdentPart::Vendor { index, text } => self.vendor.insert(index, text),
                IdentPart::Model { index, text } => self.model.insert(index, text),
            },
            // Inverter messages were counted as ignored above.
            Message::IdentifyRequest
            | Message::InverterBrand { .. }
            | Message::InverterBattery { .. }
            | Message::InverterSoc(_)
            | Message::InverterTime(_)
            | Message::InverterStatus(_) => {}
        }
    }

    /// The battery as the inverter sees it: `Some` once 0x110, 0x150 and 0x1D0 have each been
    /// received, the latest of each at most `max_age` before `now`. Cell temperatures come from
    /// 0x210 when it is that fresh too. Charge (discharge) is enabled when its current limit is
    /// above zero, the only way BYD says it. The state of charge and health lose their second
    /// decimal (rounded down). The frames carry no cell voltages, alarms, warnings, requests or
    /// module count: those fields stay empty.
    pub fn view(&self, now: Instant, max_age: Duration) -> Option<BatteryView> {
        let fresh = |s: &Option<Stamped>| s.filter(|s| now.saturating_since(s.at) <= max_age);
        let Message::Limits {
            charge_voltage_mv,
            discharge_voltage_mv,
            discharge_limit_ma,
            charge_limit_ma,
        } = fresh(&self.limits)?.message
        else {
            return None;
        };
        let Message::States { soc_pptt, soh_pptt, capacity_mah, .. } = fresh(&self.states)?.message
        else {
            return None;
        };
        let Message::BatteryInfo { voltage_mv, current_ma, temperature_dc, .. } =
            fresh(&self.battery_info)?.message
        else {
            return None;
        };
        let cell_dc = fresh(&self.cell_info).and_then(|s| match s.message {
            Message::CellInfo { cell_dc_max, cell_dc_min, .. } => Some((cell_dc_min, cell_dc_max)),
            _ => None,
        });
        Some(BatteryView {
            charge_voltage_mv,
            discharge_voltage_mv,
            charge_limit_ma,
            discharge_limit_ma,
            soc: Permille(soc_pptt / 10),
            soh: Permille(soh_pptt / 10),
            voltage_mv,
            current_ma,
            temperature_dc,
            cell_mv: None,
            cell_dc,
            capacity_mah,
            alarms: AlarmSet::EMPTY,
            warnings: AlarmSet::EMPTY,
            charge_enable: charge_limit_ma > MilliAmps(0),
            discharge_enable: discharge_limit_ma > MilliAmps(0),
            force_charge: false,
            full_charge: false,
            modules: 0,
        })
    }

    /// Whether the identification burst's model name has been assembled (every fragment up to
    /// the one that ends it received, and not empty). A BYD HVS spells
    /// [`MODEL_NAME`](super::MODEL_NAME); [`model`](Self::model) tells which name it was.
    pub fn identified(&self) -> bool {
        self.model().is_some_and(|name| !name.is_empty())
    }

    /// The model name from the 0x3D0 fragments, once complete.
    pub fn model(&self) -> Option<&str> {
        self.model.text()
    }

    /// The manufacturer name from the 0x2D0 fragments, once complete.
    pub fn vendor(&self) -> Option<&str> {
        self.vendor.text()
    }

    /// The capacity announced in 0x250, watt-hours (0.1 kWh resolution).
    pub fn capacity_wh(&self) -> Option<u32> {
        match self.product? {
            IdentPart::Product { capacity_wh, .. } => Some(capacity_wh),
            _ => None,
        }
    }

    /// The firmware version bytes of 0x250.
    pub fn firmware(&self) -> Option<[u8; 2]> {
        match self.product? {
            IdentPart::Product { firmware, .. } => Some(firmware),
            _ => None,
        }
    }

    /// The latest 0x190 alarm frame, opaque.
    pub fn alarm(&self) -> Option<[u8; 8]> {
        self.alarm
    }

    /// The latest decoded frame of each cyclic kind with its arrival time, whatever its age:
    /// 0x110, 0x150, 0x1D0 and 0x210 in that order.
    pub fn latest(&self) -> [Option<(Instant, Message)>; 4] {
        [self.limits, self.states, self.battery_info, self.cell_info]
            .map(|s| s.map(|s| (s.at, s.message)))
    }

    /// How many frames were taken, refused and ignored.
    pub fn counters(&self) -> ReaderCounters {
        self.counters
    }
}

impl Name {
    fn insert(&mut self, index: u8, text: [u8; 7]) {
        if let Some(slot) = self.text.get_mut(usize::from(index)) {
            *slot = text;
            self.received |= 1 << index;
        }
    }

    /// The name up to its first NUL, once every fragment up to that NUL has arrived (or all
    /// [`NAME_FRAGMENTS`] when there is none).
    fn text(&self) -> Option<&str> {
        for (i, fragment) in self.text.iter().enumerate() {
            if self.received & (1 << i) == 0 {
                return None;
            }
            if let Some(nul) = fragment.iter().position(|&b| b == 0) {
                return text(self.text.as_flattened().get(..7 * i + nul)?);
            }
        }
        text(self.text.as_flattened())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_assemble_only_when_complete() {
        let mut name = Name::default();
        name.insert(1, *b"-Box Pr");
        assert_eq!(name.text(), None);
        name.insert(0, *b"Battery");
        assert_eq!(name.text(), None);
        name.insert(2, *b"\0\0\0\0\0\0\0");
        assert_eq!(name.text(), Some("Battery-Box Pr"));
        name.insert(200, *b"ignored");
        assert_eq!(name.text(), Some("Battery-Box Pr"));
        let full = Name { text: [*b"abcdefg"; NAME_FRAGMENTS], received: u8::MAX };
        assert_eq!(full.text().map(str::len), Some(56));
    }
}
