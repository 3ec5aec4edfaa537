//! The listening side: a [`BatteryView`] assembled from a battery's frames.

use super::flags::{Alarms, PylonFlags, Requests};
use super::payload::{Capacity, CellExtremes, Info, Limits, Measurements, ModuleCounts, Soc};
use super::text::Name;
use super::{DecodeError, Message, decode};
use crate::proto::can::Frame;
use crate::time::{Duration, Instant};
use crate::units::MilliVolts;
use crate::view::{AlarmSet, BatteryView};

/// What a [`Reader`] has seen. All counts saturate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ReaderCounters {
    /// Every frame handled.
    pub frames: u32,
    /// Frames with a protocol identifier that did not decode (too short, out of range, ...).
    pub decode_errors: u32,
    /// Frames of other protocols: unknown standard identifiers and every extended one (other
    /// devices may share the bus).
    pub unknown: u32,
}

/// Assembles a [`BatteryView`] from a CAN BMS's frames (on an inverter-side bus, a battery's).
///
/// It keeps the latest decoded value of each frame kind with the time it arrived. A frame that
/// does not decode is counted and changes nothing stored; the inverter's keep-alives are
/// accepted and ignored.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Reader {
    limits: Option<(Instant, Limits)>,
    soc: Option<(Instant, Soc)>,
    measurements: Option<(Instant, Measurements)>,
    pylon_flags: Option<(Instant, PylonFlags)>,
    alarms: Option<(Instant, Alarms)>,
    requests: Option<(Instant, Requests)>,
    name: Option<(Instant, Name)>,
    info: Option<(Instant, Info)>,
    module_counts: Option<(Instant, ModuleCounts)>,
    cells: Option<(Instant, CellExtremes)>,
    capacity: Option<(Instant, Capacity)>,
    last_heard: Option<Instant>,
    counters: ReaderCounters,
}

impl Reader {
    /// A reader that has heard nothing.
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Takes one frame received at `now`.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) {
        let c = &mut self.counters;
        c.frames = c.frames.saturating_add(1);
        let message = match decode(frame) {
            Ok(message) => message,
            Err(DecodeError::Extended | DecodeError::UnknownId(_)) => {
                c.unknown = c.unknown.saturating_add(1);
                return;
            }
            Err(_) => {
                c.decode_errors = c.decode_errors.saturating_add(1);
                return;
            }
        };
        match message {
            Message::KeepAlive(_) => return,
            Message::Limits(m) => self.limits = Some((now, m)),
            Message::Soc(m) => self.soc = Some((now, m)),
            Message::Measurements(m) => self.measurements = Some((now, m)),
            Message::PylonFlags(m) => self.pylon_flags = Some((now, m)),
            Message::Alarms(m) => self.alarms = Some((now, m)),
            Message::Requests(m) => self.requests = Some((now, m)),
            Message::Name(m) => self.name = Some((now, m)),
            Message::Info(m) => self.info = Some((now, m)),
            Message::ModuleCounts(m) => self.module_counts = Some((now, m)),
            Message::CellExtremes(m) => self.cells = Some((now, m)),
            Message::Capacity(m) => self.capacity = Some((now, m)),
            Message::Events(_) | Message::Text(..) | Message::Energy(_) => {}
        }
        self.last_heard = Some(now);
    }

    /// The battery's view, when 0x351, 0x355, 0x356 and a flags frame (0x359 or 0x35A) have
    /// all been received and each is at most `max_age` old at `now`; else `None`.
    ///
    /// The optional frames count only while they are at most `max_age` old too:
    ///
    /// - alarms and warnings are those of every fresh flags frame together;
    /// - charge and discharge enable, force charge (I or II) and full charge come from 0x35C;
    ///   without it, charging is enabled when CCL > 0 and discharging when DCL > 0;
    /// - the module count comes from 0x359, else from 0x372's modules online (saturating);
    /// - cell extremes from 0x373; capacity from 0x379, else 0x35F;
    /// - a 0x351 without DVL gives a discharge voltage limit of 0, which means "not said": the
    ///   combiner replaces it with a floor from the pack's chemistry
    ///   ([`plausible::complete`](crate::combiner::plausible::complete)).
    pub fn view(&self, now: Instant, max_age: Duration) -> Option<BatteryView> {
        let limits = fresh(self.limits, now, max_age)?;
        let soc = fresh(self.soc, now, max_age)?;
        let measurements = fresh(self.measurements, now, max_age)?;
        let pylon = fresh(self.pylon_flags, now, max_age);
        let alarms = fresh(self.alarms, now, max_age);
        if pylon.is_none() && alarms.is_none() {
            return None;
        }
        let requests = fresh(self.requests, now, max_age).unwrap_or(Requests {
            charge_enable: limits.charge_limit_ma.0 > 0,
            discharge_enable: limits.discharge_limit_ma.0 > 0,
            ..Requests::default()
        });
        let cells = fresh(self.cells, now, max_age);
        let modules = match (pylon, fresh(self.module_counts, now, max_age)) {
            (Some(p), _) => p.modules,
            (None, Some(m)) => u8::try_from(m.online).unwrap_or(u8::MAX),
            (None, None) => 0,
        };
        let capacity_mah = fresh(self.capacity, now, max_age)
            .map(|c| c.capacity_mah)
            .or(fresh(self.info, now, max_age).map(|i| i.capacity_mah))
            .unwrap_or(0);
        let union = |a: Option<AlarmSet>, b: Option<AlarmSet>| {
            a.unwrap_or(AlarmSet::EMPTY).union(b.unwrap_or(AlarmSet::EMPTY))
        };
        Some(BatteryView {
            charge_voltage_mv: limits.charge_voltage_mv,
            discharge_voltage_mv: limits.discharge_voltage_mv.unwrap_or(MilliVolts(0)),
            charge_limit_ma: limits.charge_limit_ma,
            discharge_limit_ma: limits.discharge_limit_ma,
            soc: soc.soc,
            soh: soc.soh,
            voltage_mv: measurements.voltage_mv,
            current_ma: measurements.current_ma,
            temperature_dc: measurements.temperature_dc,
            cell_mv: cells.map(|c| (c.min_mv, c.max_mv)),
            cell_dc: cells.map(|c| (c.min_dc, c.max_dc)),
            capacity_mah,
            alarms: union(pylon.map(|p| p.alarms), alarms.map(|a| a.alarms)),
            warnings: union(pylon.map(|p| p.warnings), alarms.map(|a| a.warnings)),
            charge_enable: requests.charge_enable,
            discharge_enable: requests.discharge_enable,
            force_charge: requests.force_charge_1 || requests.force_charge_2,
            full_charge: requests.full_charge,
            modules,
        })
    }

    /// When the last frame that decoded as battery output arrived (keep-alives and frames that
    /// did not decode do not count).
    pub fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }

    /// The counters.
    pub fn counters(&self) -> ReaderCounters {
        self.counters
    }

    /// The last manufacturer name (0x35E) received, however old.
    pub fn name(&self) -> Option<Name> {
        self.name.map(|(_, name)| name)
    }
}

/// The value in `slot` if it arrived at most `max_age` before `now` (or after it).
fn fresh<T: Copy>(slot: Option<(Instant, T)>, now: Instant, max_age: Duration) -> Option<T> {
    slot.filter(|(t, _)| now.saturating_since(*t) <= max_age).map(|(_, value)| value)
}
