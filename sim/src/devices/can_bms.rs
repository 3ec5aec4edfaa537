//! An emulated Pylontech-style LFP rack battery with its own BMS on the low-voltage CAN
//! protocol (`shared/protocols.md` §2): a battery of the simulated world, not ours.
//!
//! The emulator does not own the cells. The engine measures the plant and hands the result to
//! [`CanBms::update`], which runs the emulated firmware: it derives the limits it announces,
//! raises warnings, and trips (opens its internal MOSFETs, [`CanBms::switch_on`]) on a
//! protection fault, which the engine must apply to the plant. The frames come from the core's
//! own [`lv::Publisher`], so what an inverter emulator decodes went through the same codec,
//! byte for byte, that a real inverter would read from our BMS.
//!
//! # Driving contract
//!
//! Like every sans-IO engine here: feed it readings ([`update`](CanBms::update)) and received
//! frames ([`handle_frame`](CanBms::handle_frame)); drain [`poll_transmit`](CanBms::poll_transmit)
//! until it returns `None`; call it again at [`poll_timeout`](CanBms::poll_timeout). The firmware
//! transmits nothing before its first reading (it has not measured anything yet), so ask for the
//! deadline again after `update`.
//!
//! # The emulated vendor's firmware
//!
//! Invented, but with figures a real LFP rack battery would use (`shared/battery.md`; the US2000
//! announces 53.2 V for its 15 cells, the US5000 a 45.0 V DVL). Per cell, `n` cells in series:
//!
//! | Quantity | Policy |
//! |---|---|
//! | CVL | `n` × 3.55 V (15s: 53.2 V on the wire) |
//! | DVL | `n` × 3.00 V (15s: 45.0 V) |
//! | CCL | the rated charge current while the highest cell is below 3.45 V, linearly down to 0 A at 3.55 V; 0 A below 0 °C or above 50 °C |
//! | DCL | the rated discharge current while the lowest cell is above 3.00 V, linearly down to 0 A at 2.90 V |
//! | enables | charge (discharge) enabled while CCL (DCL) is above 0 A |
//! | force charge | requested below 10 % SoC |
//! | SoC | the plant's SoC, rounded to 1 % (the firmware's own counter, assumed perfect) |
//! | SoH | 100 % |
//! | temperature | the middle of the coldest and the hottest cell |
//!
//! Limits are computed in 0.1 A steps, rounded down, as the wire carries them.
//!
//! Warnings, reported while the condition holds:
//!
//! | Warning | Condition |
//! |---|---|
//! | high voltage | highest cell above 3.50 V |
//! | low voltage | lowest cell below 3.00 V |
//! | high temperature while charging | hottest cell above 50 °C (charging stopped) |
//! | low temperature while charging | coldest cell below 0 °C (charging stopped) |
//! | high temperature | hottest cell above 55 °C |
//! | low temperature | coldest cell below −5 °C |
//! | high charge current | charge current above CCL + 5 A |
//! | high discharge current | discharge current above DCL + 5 A |
//!
//! Protection: the MOSFETs open on the first reading beyond a trip threshold (over-current
//! after a 2 s debounce), the cause is announced as an alarm, and both limits and enables go to
//! zero. The firmware recovers (closes the MOSFETs and clears the alarms) once every latched
//! cause has been back inside its recovery threshold for 10 s without interruption. Faults
//! found while tripped are added to the latched causes.
//!
//! | Alarm | Trip | Recovery |
//! |---|---|---|
//! | high voltage | highest cell ≥ 3.65 V | highest cell < 3.45 V |
//! | low voltage | lowest cell ≤ 2.70 V | lowest cell > 2.90 V |
//! | high temperature | hottest cell > 60 °C | hottest cell < 55 °C |
//! | low temperature | coldest cell < −10 °C | coldest cell > −5 °C |
//! | high charge current | charge current > 1.5 × CCL + 5 A for 2 s | charge current ≤ 1.5 × CCL + 5 A |
//! | high discharge current | discharge current > 1.5 × DCL + 5 A for 2 s | discharge current ≤ 1.5 × DCL + 5 A |
//!
//! The over-current thresholds use the limits the firmware computes from the same reading
//! (before protection zeroes them), so an inverter that ignores a CCL of 0 A at frost trips the
//! battery after 2 s of more than 5 A. The single switch stands for both MOSFETs: a tripped
//! battery neither charges nor discharges, even to recover from under-voltage; the relaxation
//! of a resting LFP cell (well above 2.9 V) is what brings it back.
//!
//! # Timing on the bus
//!
//! The [`lv::Publisher`] runs in push mode: one cycle every [`PERIOD`] (1 s) from the first
//! reading, whether an inverter listens or not, and 0x305 keep-alives are only recorded
//! ([`last_keepalive`](CanBms::last_keepalive)). The frames of a cycle go out back to back
//! ([`FRAME_SPACING`] is zero), as Battery-Emulator sends them: a firmware that queues its whole
//! set to the CAN controller at once. The time each frame takes on the wire (about 0.25 ms at
//! 500 kbit/s) is the transport's business. Frames are always 8 bytes ([`lv::Dlc::Full`]), as
//! the real Pylontech stack in bms_gateway's capture sends them.
//!
//! [`set_silent`](CanBms::set_silent) injects a firmware hang on the CAN side: the battery stops
//! transmitting but keeps protecting. When it ends, the CAN task restarts (as after a watchdog
//! reset) with a fresh cycle at once. [`set_misreport`](CanBms::set_misreport) makes it send a
//! wrong charge voltage limit or a wrong current (zero, halved, negated) while its limits and
//! protection still work on the truth, as a corrupted CAN task or a failed shunt would.

use cellwarden_core::proto::can::Frame;
use cellwarden_core::proto::lv;
use cellwarden_core::{
    Alarm, AlarmSet, BatteryView, DeciCelsius, Duration, Instant, MilliAmps, MilliVolts, Permille,
};

/// Start of one cycle to the start of the next.
pub const PERIOD: Duration = Duration::from_secs(1);
/// Gap between the frames of one cycle: none, they go out back to back.
pub const FRAME_SPACING: Duration = Duration::ZERO;

/// Charge voltage limit per cell, V.
pub const CVL_PER_CELL_V: f64 = 3.55;
/// Discharge voltage limit per cell, V.
pub const DVL_PER_CELL_V: f64 = 3.0;
/// Highest cell voltage at which the full charge current is still allowed, V.
pub const CHARGE_TAPER_START_V: f64 = 3.45;
/// Highest cell voltage at which the charge current limit reaches 0 A, V.
pub const CHARGE_TAPER_END_V: f64 = 3.55;
/// Lowest cell voltage at which the full discharge current is still allowed, V.
pub const DISCHARGE_TAPER_START_V: f64 = 3.0;
/// Lowest cell voltage at which the discharge current limit reaches 0 A, V.
pub const DISCHARGE_TAPER_END_V: f64 = 2.9;
/// Coldest cell temperature at which charging is allowed, °C.
pub const CHARGE_MIN_C: f64 = 0.0;
/// Hottest cell temperature at which charging is allowed, °C.
pub const CHARGE_MAX_C: f64 = 50.0;
/// Below this SoC the battery asks for a forced charge.
pub const FORCE_CHARGE_BELOW_PERCENT: u16 = 10;

/// Warning: highest cell above this, V.
pub const WARN_CELL_HIGH_V: f64 = 3.5;
/// Warning: lowest cell below this, V.
pub const WARN_CELL_LOW_V: f64 = 3.0;
/// Warning: hottest cell above this, °C.
pub const WARN_TEMP_HIGH_C: f64 = 55.0;
/// Warning: coldest cell below this, °C.
pub const WARN_TEMP_LOW_C: f64 = -5.0;
/// Current above its limit by more than this raises a current warning, and is the constant
/// part of the over-current trip threshold, A.
pub const CURRENT_MARGIN_A: f64 = 5.0;

/// Trip: highest cell at or above this, V.
pub const TRIP_CELL_HIGH_V: f64 = 3.65;
/// Trip: lowest cell at or below this, V.
pub const TRIP_CELL_LOW_V: f64 = 2.7;
/// Trip: hottest cell above this, °C.
pub const TRIP_TEMP_HIGH_C: f64 = 60.0;
/// Trip: coldest cell below this, °C.
pub const TRIP_TEMP_LOW_C: f64 = -10.0;
/// Over-current trip threshold: this many times the limit, plus [`CURRENT_MARGIN_A`].
pub const OVER_CURRENT_FACTOR: f64 = 1.5;
/// How long an over-current must last before the battery trips.
pub const OVER_CURRENT_DELAY: Duration = Duration::from_secs(2);
/// Recovery after over-voltage: highest cell below this, V.
pub const RECOVER_CELL_HIGH_V: f64 = 3.45;
/// Recovery after under-voltage: lowest cell above this, V.
pub const RECOVER_CELL_LOW_V: f64 = 2.9;
/// Recovery after over-temperature: hottest cell below this, °C.
pub const RECOVER_TEMP_HIGH_C: f64 = 55.0;
/// Recovery after under-temperature: coldest cell above this, °C.
pub const RECOVER_TEMP_LOW_C: f64 = -5.0;
/// How long every latched cause must stay recovered before the MOSFETs close again.
pub const RECOVERY_DELAY: Duration = Duration::from_secs(10);

/// The emulated battery: its protocol and ratings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CanBmsSpec {
    /// Which frame set it sends.
    pub profile: lv::Profile,
    /// Cells in series: 15 or 16.
    pub cells: u16,
    /// Rated capacity, Ah.
    pub capacity_ah: f64,
    /// Rated (largest) charge current, A.
    pub max_charge_a: f64,
    /// Rated (largest) discharge current, A.
    pub max_discharge_a: f64,
    /// The 8 bytes of 0x35E, such as `*b"PYLON\0\0\0"`.
    pub name: [u8; 8],
}

impl CanBmsSpec {
    /// A 15-cell, 74 Ah rack module in the manner of a Pylontech US3000C (catalogue figures,
    /// unverified): 37 A (0.5 C) both ways, named `"PYLON"`.
    pub fn us3000c_like(profile: lv::Profile) -> CanBmsSpec {
        CanBmsSpec {
            profile,
            cells: 15,
            capacity_ah: 74.0,
            max_charge_a: 37.0,
            max_discharge_a: 37.0,
            name: *b"PYLON\0\0\0",
        }
    }
}

/// What the battery's own sensors read: the engine takes it from the plant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PackReading {
    /// Lowest cell voltage, V.
    pub cell_min_v: f64,
    /// Highest cell voltage, V.
    pub cell_max_v: f64,
    /// Pack voltage, V.
    pub pack_v: f64,
    /// Pack current, A, positive when charging.
    pub current_a: f64,
    /// Coldest cell, °C.
    pub temp_min_c: f64,
    /// Hottest cell, °C.
    pub temp_max_c: f64,
    /// State of charge, 0..=1: the plant's truth, standing in for the firmware's own counter.
    pub soc: f64,
}

/// The emulated BMS. See the module documentation for its firmware.
#[derive(Clone, Debug)]
pub struct CanBms {
    spec: CanBmsSpec,
    publisher: lv::Publisher,
    view: BatteryView,
    measured: bool,
    silent: bool,
    trip: Option<Trip>,
    /// Since when the charge (discharge) current has been above its trip threshold.
    over_charge_since: Option<Instant>,
    over_discharge_since: Option<Instant>,
    last_keepalive: Option<Instant>,
    trips: u32,
    misreport: Misreport,
}

/// What the battery sends wrongly (fault injection).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Misreport {
    /// Sent instead of the charge voltage limit.
    pub charge_voltage_mv: Option<MilliVolts>,
    /// The current sent is the true one times this.
    pub current_factor: Option<f64>,
}

impl CanBms {
    /// A battery that has measured nothing yet: silent, switched on, announcing zero currents.
    pub fn new(spec: CanBmsSpec) -> CanBms {
        let mut view = BatteryView {
            capacity_mah: mah(spec.capacity_ah),
            soh: Permille::FULL,
            modules: 1,
            ..BatteryView::default()
        };
        (view.charge_voltage_mv, view.discharge_voltage_mv) = voltage_limits(&spec);
        CanBms {
            spec,
            publisher: publisher(&spec),
            view,
            measured: false,
            silent: false,
            trip: None,
            over_charge_since: None,
            over_discharge_since: None,
            last_keepalive: None,
            trips: 0,
            misreport: Misreport::default(),
        }
    }

    /// Runs the firmware on a reading taken at `now`: limits, warnings, protection trips and
    /// recovery. The next cycle announces the result.
    pub fn update(&mut self, now: Instant, reading: &PackReading) {
        self.measured = true;
        let r = reading;
        let (ccl_a, dcl_a) = current_limits(&self.spec, r);
        let over_charge = r.current_a > OVER_CURRENT_FACTOR * ccl_a + CURRENT_MARGIN_A;
        let over_discharge = -r.current_a > OVER_CURRENT_FACTOR * dcl_a + CURRENT_MARGIN_A;
        self.over_charge_since =
            if over_charge { self.over_charge_since.or(Some(now)) } else { None };
        self.over_discharge_since =
            if over_discharge { self.over_discharge_since.or(Some(now)) } else { None };
        let lasted = |since: Option<Instant>| since.is_some_and(|t| now - t >= OVER_CURRENT_DELAY);

        let mut causes = AlarmSet::EMPTY;
        let trips = [
            (r.cell_max_v >= TRIP_CELL_HIGH_V, Alarm::HighVoltage),
            (r.cell_min_v <= TRIP_CELL_LOW_V, Alarm::LowVoltage),
            (r.temp_max_c > TRIP_TEMP_HIGH_C, Alarm::HighTemperature),
            (r.temp_min_c < TRIP_TEMP_LOW_C, Alarm::LowTemperature),
            (lasted(self.over_charge_since), Alarm::HighChargeCurrent),
            (lasted(self.over_discharge_since), Alarm::HighDischargeCurrent),
        ];
        for (tripped, alarm) in trips {
            if tripped {
                causes.insert(alarm);
            }
        }

        match &mut self.trip {
            None if !causes.is_empty() => {
                self.trip = Some(Trip { causes, clear_since: None });
                self.trips = self.trips.saturating_add(1);
            }
            None => {}
            Some(trip) => {
                trip.causes = trip.causes.union(causes);
                let recovered = trip.causes.iter().all(|alarm| match alarm {
                    Alarm::HighVoltage => r.cell_max_v < RECOVER_CELL_HIGH_V,
                    Alarm::LowVoltage => r.cell_min_v > RECOVER_CELL_LOW_V,
                    Alarm::HighTemperature => r.temp_max_c < RECOVER_TEMP_HIGH_C,
                    Alarm::LowTemperature => r.temp_min_c > RECOVER_TEMP_LOW_C,
                    Alarm::HighChargeCurrent => !over_charge,
                    Alarm::HighDischargeCurrent => !over_discharge,
                    // Never latched by this firmware.
                    _ => true,
                });
                trip.clear_since = if recovered { trip.clear_since.or(Some(now)) } else { None };
                if trip.clear_since.is_some_and(|t| now - t >= RECOVERY_DELAY) {
                    self.trip = None;
                }
            }
        }

        let alarms = self.trip.map_or(AlarmSet::EMPTY, |t| t.causes);
        let (ccl_a, dcl_a) = if self.trip.is_some() { (0.0, 0.0) } else { (ccl_a, dcl_a) };
        let charge_limit_ma = MilliAmps(deciamps_ma(ccl_a));
        let discharge_limit_ma = MilliAmps(deciamps_ma(dcl_a));
        let soc_percent = (r.soc * 100.0).round().clamp(0.0, 100.0) as u16;
        self.view = BatteryView {
            soc: Permille(soc_percent * 10),
            voltage_mv: MilliVolts(round_i32(r.pack_v * 1000.0)),
            current_ma: MilliAmps(round_i32(r.current_a * 1000.0)),
            temperature_dc: deci_celsius((r.temp_min_c + r.temp_max_c) / 2.0),
            cell_mv: Some((
                MilliVolts(round_i32(r.cell_min_v * 1000.0)),
                MilliVolts(round_i32(r.cell_max_v * 1000.0)),
            )),
            cell_dc: Some((deci_celsius(r.temp_min_c), deci_celsius(r.temp_max_c))),
            charge_limit_ma,
            discharge_limit_ma,
            alarms,
            warnings: warnings(r, ccl_a, dcl_a),
            charge_enable: charge_limit_ma.0 > 0,
            discharge_enable: discharge_limit_ma.0 > 0,
            force_charge: soc_percent < FORCE_CHARGE_BELOW_PERCENT,
            full_charge: false,
            ..self.view
        };
    }

    /// Whether the internal MOSFETs conduct: `false` from a protection trip until recovery.
    pub fn switch_on(&self) -> bool {
        self.trip.is_none()
    }

    /// What the battery announces (and the next cycle will send).
    pub fn view(&self) -> BatteryView {
        self.view
    }

    /// Takes a frame from the bus: inverter keep-alives are recorded, everything else is
    /// ignored. Never panics.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) {
        if self.publisher.handle_frame(now, frame).is_some() {
            self.last_keepalive = Some(now);
        }
    }

    /// The next frame due at `now`, if any. Nothing before the first reading or while silent.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Frame> {
        if self.silent || !self.measured {
            return None;
        }
        let mut sent = self.view;
        if let Some(mv) = self.misreport.charge_voltage_mv {
            sent.charge_voltage_mv = mv;
        }
        if let Some(k) = self.misreport.current_factor {
            sent.current_ma = MilliAmps(round_i32(f64::from(sent.current_ma.0) * k));
        }
        self.publisher.poll_transmit(now, &sent)
    }

    /// Fault injection: from the next frame on, send these values wrongly (the default:
    /// truthfully). The view, the limits and the protection stay true.
    pub fn set_misreport(&mut self, misreport: Misreport) {
        self.misreport = misreport;
    }

    /// When [`poll_transmit`](CanBms::poll_transmit) next has a frame (a time in the past means
    /// now); `None` before the first reading or while silent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.silent || !self.measured {
            return None;
        }
        self.publisher.poll_timeout()
    }

    /// Fault injection: a hung CAN task stops transmitting while protection keeps running.
    /// Ending the silence restarts the CAN task, with a fresh cycle at once.
    pub fn set_silent(&mut self, silent: bool) {
        if self.silent && !silent {
            self.publisher = publisher(&self.spec);
        }
        self.silent = silent;
    }

    /// Whether the CAN side is silenced.
    pub fn silent(&self) -> bool {
        self.silent
    }

    /// When the last inverter keep-alive (0x305, 0x306 or 0x307) arrived.
    pub fn last_keepalive(&self) -> Option<Instant> {
        self.last_keepalive
    }

    /// Protection trips so far (saturating).
    pub fn trips(&self) -> u32 {
        self.trips
    }

    /// The battery's ratings.
    pub fn spec(&self) -> &CanBmsSpec {
        &self.spec
    }
}

/// A latched protection trip.
#[derive(Clone, Copy, Debug)]
struct Trip {
    causes: AlarmSet,
    /// Since when every cause has been inside its recovery threshold.
    clear_since: Option<Instant>,
}

fn publisher(spec: &CanBmsSpec) -> lv::Publisher {
    lv::Publisher::new(
        spec.profile,
        lv::Dlc::Full,
        spec.name,
        lv::Mode::Push { period: PERIOD },
        FRAME_SPACING,
    )
}

/// CVL and DVL.
fn voltage_limits(spec: &CanBmsSpec) -> (MilliVolts, MilliVolts) {
    let cells = f64::from(spec.cells);
    (
        MilliVolts(round_i32(cells * CVL_PER_CELL_V * 1000.0)),
        MilliVolts(round_i32(cells * DVL_PER_CELL_V * 1000.0)),
    )
}

/// CCL and DCL, A, before protection.
fn current_limits(spec: &CanBmsSpec, r: &PackReading) -> (f64, f64) {
    let charge_window = (CHARGE_MIN_C..=CHARGE_MAX_C).contains(&r.temp_min_c)
        && (CHARGE_MIN_C..=CHARGE_MAX_C).contains(&r.temp_max_c);
    let ccl = if charge_window {
        spec.max_charge_a * taper(r.cell_max_v, CHARGE_TAPER_START_V, CHARGE_TAPER_END_V)
    } else {
        0.0
    };
    let dcl =
        spec.max_discharge_a * taper(r.cell_min_v, DISCHARGE_TAPER_START_V, DISCHARGE_TAPER_END_V);
    (ccl.max(0.0), dcl.max(0.0))
}

/// 1 at or before `start`, 0 at or beyond `end`, linear between (either direction). 0 for a
/// value that is not a number.
fn taper(value: f64, start: f64, end: f64) -> f64 {
    let fraction = (value - end) / (start - end);
    if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) }
}

fn warnings(r: &PackReading, ccl_a: f64, dcl_a: f64) -> AlarmSet {
    let conditions = [
        (r.cell_max_v > WARN_CELL_HIGH_V, Alarm::HighVoltage),
        (r.cell_min_v < WARN_CELL_LOW_V, Alarm::LowVoltage),
        (r.temp_max_c > CHARGE_MAX_C, Alarm::HighTemperatureCharge),
        (r.temp_min_c < CHARGE_MIN_C, Alarm::LowTemperatureCharge),
        (r.temp_max_c > WARN_TEMP_HIGH_C, Alarm::HighTemperature),
        (r.temp_min_c < WARN_TEMP_LOW_C, Alarm::LowTemperature),
        (r.current_a > ccl_a + CURRENT_MARGIN_A, Alarm::HighChargeCurrent),
        (-r.current_a > dcl_a + CURRENT_MARGIN_A, Alarm::HighDischargeCurrent),
    ];
    let mut set = AlarmSet::EMPTY;
    for (active, alarm) in conditions {
        if active {
            set.insert(alarm);
        }
    }
    set
}

/// Amps to milliamps in whole 0.1 A steps, rounded down.
fn deciamps_ma(amps: f64) -> i32 {
    ((amps * 10.0).floor() as i32).saturating_mul(100)
}

fn deci_celsius(celsius: f64) -> DeciCelsius {
    DeciCelsius(round_i32(celsius * 10.0))
}

fn mah(ah: f64) -> u32 {
    (ah * 1000.0).round() as u32
}

/// Rounded to the nearest integer; `as` saturates and maps NaN to 0.
fn round_i32(x: f64) -> i32 {
    x.round() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(cell_min_v: f64, cell_max_v: f64, current_a: f64, temp_c: f64) -> PackReading {
        PackReading {
            cell_min_v,
            cell_max_v,
            pack_v: 15.0 * (cell_min_v + cell_max_v) / 2.0,
            current_a,
            temp_min_c: temp_c,
            temp_max_c: temp_c,
            soc: 0.5,
        }
    }

    fn bms() -> CanBms {
        CanBms::new(CanBmsSpec::us3000c_like(lv::Profile::Pylontech))
    }

    fn at(secs: f64) -> Instant {
        Instant::from_micros((secs * 1e6) as u64)
    }

    #[test]
    fn announces_the_firmware_limits() {
        let mut b = bms();
        b.update(at(0.0), &reading(3.30, 3.31, 0.0, 25.0));
        let v = b.view();
        assert_eq!(
            (v.charge_voltage_mv, v.discharge_voltage_mv),
            (MilliVolts(53_250), MilliVolts(45_000))
        );
        assert_eq!(
            (v.charge_limit_ma, v.discharge_limit_ma),
            (MilliAmps(37_000), MilliAmps(37_000))
        );
        assert!(v.charge_enable && v.discharge_enable && !v.force_charge);
        assert_eq!(
            (v.soc, v.soh, v.modules, v.capacity_mah),
            (Permille(500), Permille(1000), 1, 74_000)
        );
        assert_eq!(v.cell_mv, Some((MilliVolts(3_300), MilliVolts(3_310))));
        assert!(v.alarms.is_empty() && v.warnings.is_empty());
    }

    #[test]
    fn charge_and_discharge_limits_taper() {
        let mut b = bms();
        // Halfway through the charge taper: 18.5 A.
        b.update(at(0.0), &reading(3.30, 3.50, 0.0, 25.0));
        assert_eq!(b.view().charge_limit_ma, MilliAmps(18_500));
        b.update(at(1.0), &reading(3.30, 3.55, 0.0, 25.0));
        assert_eq!(b.view().charge_limit_ma, MilliAmps(0));
        assert!(!b.view().charge_enable);
        assert!(b.view().warnings.contains(Alarm::HighVoltage));
        // A quarter into the discharge taper: 27.7 A (27.75 rounded down to 0.1 A).
        b.update(at(2.0), &reading(2.975, 3.30, 0.0, 25.0));
        assert_eq!(b.view().discharge_limit_ma, MilliAmps(27_700));
        assert!(b.view().warnings.contains(Alarm::LowVoltage));
        b.update(at(3.0), &reading(2.9, 3.30, 0.0, 25.0));
        assert!(!b.view().discharge_enable);
        assert!(b.switch_on());
    }

    #[test]
    fn charging_stops_outside_its_temperature_window() {
        let mut b = bms();
        b.update(at(0.0), &reading(3.3, 3.3, 0.0, -1.0));
        assert_eq!(b.view().charge_limit_ma, MilliAmps(0));
        assert_eq!(b.view().discharge_limit_ma, MilliAmps(37_000));
        assert!(b.view().warnings.contains(Alarm::LowTemperatureCharge));
        b.update(at(1.0), &reading(3.3, 3.3, 0.0, 51.0));
        assert_eq!(b.view().charge_limit_ma, MilliAmps(0));
        assert!(b.view().warnings.contains(Alarm::HighTemperatureCharge));
    }

    #[test]
    fn over_voltage_trips_at_once_and_recovers_after_ten_seconds_below_hysteresis() {
        let mut b = bms();
        b.update(at(0.0), &reading(3.40, 3.65, 0.0, 25.0));
        assert!(!b.switch_on());
        let v = b.view();
        assert!(v.alarms.contains(Alarm::HighVoltage));
        assert!(!v.charge_enable && !v.discharge_enable);
        assert_eq!((v.charge_limit_ma, v.discharge_limit_ma), (MilliAmps(0), MilliAmps(0)));
        // Relaxed, but not below the recovery threshold: stays off.
        for s in 1..30 {
            b.update(at(f64::from(s)), &reading(3.40, 3.46, 0.0, 25.0));
        }
        assert!(!b.switch_on());
        // Below 3.45 V from 30 s on: back at 40 s, not before.
        for s in 30..40 {
            b.update(at(f64::from(s)), &reading(3.35, 3.44, 0.0, 25.0));
            assert!(!b.switch_on(), "{s}");
        }
        b.update(at(40.0), &reading(3.35, 3.44, 0.0, 25.0));
        assert!(b.switch_on());
        assert!(b.view().alarms.is_empty());
        assert_eq!(b.trips(), 1);
    }

    #[test]
    fn over_current_trips_after_its_debounce() {
        let mut b = bms();
        // CCL 37 A: the threshold is 60.5 A.
        b.update(at(0.0), &reading(3.3, 3.3, 60.0, 25.0));
        assert!(b.view().warnings.contains(Alarm::HighChargeCurrent));
        b.update(at(0.5), &reading(3.3, 3.3, 61.0, 25.0));
        b.update(at(2.4), &reading(3.3, 3.3, 61.0, 25.0));
        assert!(b.switch_on());
        b.update(at(2.5), &reading(3.3, 3.3, 61.0, 25.0));
        assert!(!b.switch_on());
        assert!(b.view().alarms.contains(Alarm::HighChargeCurrent));
        // An interrupted over-current restarts the debounce.
        let mut b = bms();
        b.update(at(0.0), &reading(3.3, 3.3, -61.0, 25.0));
        b.update(at(1.5), &reading(3.3, 3.3, -10.0, 25.0));
        b.update(at(2.0), &reading(3.3, 3.3, -61.0, 25.0));
        b.update(at(3.9), &reading(3.3, 3.3, -61.0, 25.0));
        assert!(b.switch_on());
        b.update(at(4.0), &reading(3.3, 3.3, -61.0, 25.0));
        assert!(b.view().alarms.contains(Alarm::HighDischargeCurrent));
        // Nothing flows once the MOSFETs open: back 10 s later.
        b.update(at(4.1), &reading(3.3, 3.3, 0.0, 25.0));
        b.update(at(14.0), &reading(3.3, 3.3, 0.0, 25.0));
        assert!(!b.switch_on());
        b.update(at(14.1), &reading(3.3, 3.3, 0.0, 25.0));
        assert!(b.switch_on());
    }

    #[test]
    fn temperature_and_under_voltage_trip() {
        for (r, alarm) in [
            (reading(3.3, 3.3, 0.0, 60.5), Alarm::HighTemperature),
            (reading(3.3, 3.3, 0.0, -10.5), Alarm::LowTemperature),
            (reading(2.7, 3.3, 0.0, 25.0), Alarm::LowVoltage),
        ] {
            let mut b = bms();
            b.update(at(0.0), &r);
            assert!(!b.switch_on());
            assert_eq!(b.view().alarms, AlarmSet::EMPTY.with(alarm));
        }
    }

    #[test]
    fn soc_is_rounded_to_a_percent_and_low_soc_forces_charge() {
        let mut b = bms();
        let mut r = reading(3.2, 3.2, 0.0, 25.0);
        r.soc = 0.0949;
        b.update(at(0.0), &r);
        assert_eq!(b.view().soc, Permille(90));
        assert!(b.view().force_charge);
        r.soc = 0.0951;
        b.update(at(1.0), &r);
        assert_eq!(b.view().soc, Permille(100));
        assert!(!b.view().force_charge);
    }

    #[test]
    fn silent_until_measured_and_while_hung() {
        let mut b = bms();
        assert_eq!((b.poll_transmit(at(0.0)), b.poll_timeout()), (None, None));
        b.update(at(0.0), &reading(3.3, 3.3, 0.0, 25.0));
        let ids: Vec<u32> =
            std::iter::from_fn(|| b.poll_transmit(at(0.0))).map(|f| f.id()).collect();
        assert_eq!(ids, [0x359, 0x351, 0x355, 0x356, 0x35C, 0x35E]);
        assert_eq!(b.poll_timeout(), Some(at(1.0)));
        b.set_silent(true);
        assert_eq!((b.poll_transmit(at(1.0)), b.poll_timeout()), (None, None));
        b.set_silent(false);
        assert_eq!(b.poll_timeout(), Some(Instant::ZERO));
        assert_eq!(b.poll_transmit(at(5.0)).map(|f| f.id()), Some(0x359));
    }
}
