//! The CAN device emulators wired to each other through their frames: an emulated rack BMS (or
//! the core's BYD publisher) and an emulated inverter, stepped in virtual time from deadline to
//! deadline. Every frame one side sends is handed to the other at once.

use cellwarden_core::proto::can::Frame;
use cellwarden_core::proto::{byd_can, lv};
use cellwarden_core::{
    Alarm, AlarmSet, BatteryView, DeciCelsius, Duration, Instant, MilliAmps, MilliVolts, Permille,
};
use cellwarden_sim::devices::can_bms::{CanBms, CanBmsSpec, PackReading};
use cellwarden_sim::devices::inverter::{InverterEmu, InverterProtocol, InverterSpec};
use proptest::prelude::*;

/// How often the engine would measure the plant and run the battery's firmware.
const UPDATE_PERIOD: Duration = Duration::from_millis(100);

/// The battery end of the bus.
enum Battery {
    /// The emulated rack BMS, with the reading it is given at every update.
    Rack { bms: Box<CanBms>, reading: PackReading },
    /// The core's BYD publisher, with the view it announces.
    Byd { publisher: byd_can::Publisher, view: BatteryView },
}

impl Battery {
    fn poll_transmit(&mut self, now: Instant) -> Option<Frame> {
        match self {
            Battery::Rack { bms, .. } => bms.poll_transmit(now),
            Battery::Byd { publisher, view } => publisher.poll_transmit(now, view),
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: &Frame) {
        match self {
            Battery::Rack { bms, .. } => bms.handle_frame(now, frame),
            Battery::Byd { publisher, .. } => {
                let _ = publisher.handle_frame(now, frame);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Battery::Rack { bms, .. } => bms.poll_timeout(),
            Battery::Byd { publisher, .. } => publisher.poll_timeout(),
        }
    }

    fn rack(&mut self) -> &mut CanBms {
        match self {
            Battery::Rack { bms, .. } => bms,
            Battery::Byd { .. } => panic!("not a rack battery"),
        }
    }

    fn set_reading(&mut self, r: PackReading) {
        match self {
            Battery::Rack { reading, .. } => *reading = r,
            Battery::Byd { .. } => panic!("not a rack battery"),
        }
    }
}

/// A battery and an inverter on one bus, with a virtual clock and the log of every frame.
struct Pair {
    battery: Battery,
    inverter: InverterEmu,
    now: Instant,
    next_update: Instant,
    /// (time, sent by the battery, frame).
    log: Vec<(Instant, bool, Frame)>,
}

impl Pair {
    fn new(battery: Battery, inverter: InverterEmu) -> Pair {
        Pair { battery, inverter, now: Instant::ZERO, next_update: Instant::ZERO, log: Vec::new() }
    }

    /// Runs the firmware when an update is due, then passes frames both ways until neither side
    /// has anything more to send at `now`.
    fn exchange(&mut self) {
        if self.now >= self.next_update {
            if let Battery::Rack { bms, reading } = &mut self.battery {
                bms.update(self.now, reading);
            }
            self.next_update = self.now + UPDATE_PERIOD;
        }
        for _ in 0..1_000 {
            let mut moved = false;
            while let Some(frame) = self.battery.poll_transmit(self.now) {
                self.inverter.handle_frame(self.now, &frame);
                self.log.push((self.now, true, frame));
                moved = true;
            }
            while let Some(frame) = self.inverter.poll_transmit(self.now) {
                self.battery.handle_frame(self.now, &frame);
                self.log.push((self.now, false, frame));
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the devices never stop sending at {:?}", self.now);
    }

    /// Steps from deadline to deadline up to and including `until`.
    fn run_until(&mut self, until: Instant) {
        for _ in 0..1_000_000 {
            self.exchange();
            let next = [self.battery.poll_timeout(), self.inverter.poll_timeout()]
                .into_iter()
                .flatten()
                .chain([self.next_update])
                .min()
                .expect("the update is always due some time");
            assert!(next > self.now, "a deadline at {next:?} did not move past {:?}", self.now);
            if next > until {
                self.now = until;
                return;
            }
            self.now = next;
        }
        panic!("too many steps");
    }

    fn frames(&self, from_battery: bool, id: u32) -> Vec<(Instant, Frame)> {
        self.log
            .iter()
            .filter(|(_, b, f)| *b == from_battery && f.id() == id)
            .map(|(t, _, f)| (*t, *f))
            .collect()
    }

    fn current(&self, demand_a: f64, battery_v: f64) -> f64 {
        self.inverter.current_a(self.now, demand_a, battery_v)
    }
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

fn millis(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

/// A 15-cell pack at rest-ish: every cell between `cell_v` and `cell_v + 10 mV`.
fn reading(cell_v: f64, current_a: f64, temp_c: f64, soc: f64) -> PackReading {
    PackReading {
        cell_min_v: cell_v,
        cell_max_v: cell_v + 0.010,
        pack_v: 15.0 * (cell_v + 0.005),
        current_a,
        temp_min_c: temp_c - 1.0,
        temp_max_c: temp_c + 1.0,
        soc,
    }
}

fn inverter(protocol: InverterProtocol) -> InverterSpec {
    InverterSpec {
        protocol,
        obeys_limits: true,
        start_at: Duration::ZERO,
        keepalive_stops_at: None,
        max_charge_a: 100.0,
        max_discharge_a: 100.0,
    }
}

fn rack_pair(profile: lv::Profile, protocol: InverterProtocol, r: PackReading) -> Pair {
    let bms = CanBms::new(CanBmsSpec::us3000c_like(profile));
    Pair::new(
        Battery::Rack { bms: Box::new(bms), reading: r },
        InverterEmu::new(inverter(protocol)),
    )
}

fn data(frame: &Frame) -> String {
    frame.data().iter().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn pylontech_limits_reach_the_inverter_byte_for_byte() {
    let mut pair = rack_pair(
        lv::Profile::Pylontech,
        InverterProtocol::Pylontech,
        reading(3.30, -10.0, 25.0, 0.8),
    );
    pair.run_until(millis(1_500));
    // One cycle at 0 s, back to back, in Pylontech order.
    let cycle: Vec<(u32, String)> = pair
        .log
        .iter()
        .filter(|(t, from_battery, _)| *from_battery && *t == Instant::ZERO)
        .map(|(_, _, f)| (f.id(), data(f)))
        .collect();
    let expected = [
        // No protection or alarm bits, 1 module, "PN".
        (0x359, "0000000001504E00"),
        // CVL 53.2 V (the US2000's), CCL 37.0 A, DCL 37.0 A, DVL 45.0 V.
        (0x351, "140272017201C201"),
        // SoC 80 %, SoH 100 %.
        (0x355, "5000640000000000"),
        // 49.58 V, -10.0 A, 25.0 °C.
        (0x356, "5E139CFFFA000000"),
        // Charge and discharge enabled.
        (0x35C, "C000000000000000"),
        (0x35E, "50594C4F4E000000"),
    ]
    .map(|(id, hex)| (id, hex.to_string()));
    assert_eq!(cycle, expected);
    // The inverter keeps 0x305 coming, and the battery hears it.
    assert_eq!(pair.frames(false, 0x305).len(), 2);
    assert_eq!(pair.battery.rack().last_keepalive(), Some(secs(1)));

    let view = pair.inverter.battery(pair.now).expect("a fresh view");
    assert_eq!(view.charge_voltage_mv, MilliVolts(53_200));
    assert_eq!(view.discharge_voltage_mv, MilliVolts(45_000));
    assert_eq!(
        (view.charge_limit_ma, view.discharge_limit_ma),
        (MilliAmps(37_000), MilliAmps(37_000))
    );
    assert_eq!((view.soc, view.soh, view.modules), (Permille(800), Permille(1000), 1));
    assert_eq!((view.voltage_mv, view.current_ma), (MilliVolts(49_580), MilliAmps(-10_000)));
    assert!(view.charge_enable && view.discharge_enable && !view.force_charge);
    assert!(view.alarms.is_empty() && view.warnings.is_empty());
    assert!(pair.inverter.identified());
    assert_eq!(pair.inverter.counters().decode_errors, 0);
    assert_eq!(pair.current(80.0, 50.0), 37.0);
    assert_eq!(pair.current(-80.0, 50.0), -37.0);
}

#[test]
fn sma_and_victron_profiles_reach_their_inverters() {
    for (profile, protocol, keepalives) in [
        (lv::Profile::Sma, InverterProtocol::Sma, &[0x305, 0x306][..]),
        (lv::Profile::Victron, InverterProtocol::Victron, &[0x305, 0x306, 0x307]),
        (lv::Profile::PylontechV13, InverterProtocol::Pylontech, &[0x305]),
    ] {
        let mut pair = rack_pair(profile, protocol, reading(3.30, 5.0, 25.0, 0.456));
        pair.run_until(millis(1_500));
        let battery_ids: Vec<u16> = pair
            .log
            .iter()
            .filter(|(t, from_battery, _)| *from_battery && *t == Instant::ZERO)
            .map(|(_, _, f)| f.id() as u16)
            .collect();
        assert_eq!(battery_ids, profile.cycle_ids(), "{profile:?}");
        let inverter_ids: Vec<u32> = pair
            .log
            .iter()
            .filter(|(t, from_battery, _)| !*from_battery && *t == Instant::ZERO)
            .map(|(_, _, f)| f.id())
            .collect();
        assert_eq!(inverter_ids, keepalives, "{protocol:?}");
        // 0x351 is the same on every profile: 53.2 V, 37.0 A, 37.0 A, 45.0 V.
        assert_eq!(data(&pair.frames(true, 0x351)[0].1), "140272017201C201");

        let view = pair.inverter.battery(pair.now).expect("a fresh view");
        assert_eq!(view.charge_voltage_mv, MilliVolts(53_200), "{profile:?}");
        assert_eq!(view.discharge_voltage_mv, MilliVolts(45_000));
        assert_eq!(
            (view.charge_limit_ma, view.discharge_limit_ma),
            (MilliAmps(37_000), MilliAmps(37_000))
        );
        assert!(view.charge_enable && view.discharge_enable);
        // SoC: 45.6 % is announced as 46 %.
        assert_eq!(view.soc, Permille(460), "{profile:?}");
        assert!(view.alarms.is_empty() && view.warnings.is_empty(), "{profile:?}: {view:?}");
        if profile == lv::Profile::Victron {
            // 0x373 and 0x379: cell extremes (temperatures in whole kelvin) and capacity.
            assert_eq!(view.cell_mv, Some((MilliVolts(3_300), MilliVolts(3_310))));
            assert_eq!(view.capacity_mah, 74_000);
            assert!(view.cell_dc.is_some());
        }
        assert_eq!(pair.current(60.0, 50.0), 37.0, "{profile:?}");
    }
}

#[test]
fn byd_battery_waits_for_the_inverter_then_its_limits_reach_it() {
    // A 16-module HVS: 233.6 V, 160.0 V, 25.6 A both ways.
    let view = BatteryView {
        charge_voltage_mv: MilliVolts(233_600),
        discharge_voltage_mv: MilliVolts(160_000),
        charge_limit_ma: MilliAmps(25_600),
        discharge_limit_ma: MilliAmps(25_600),
        soc: Permille(974),
        soh: Permille(1000),
        voltage_mv: MilliVolts(212_100),
        current_ma: MilliAmps(0),
        temperature_dc: DeciCelsius(180),
        cell_mv: None,
        cell_dc: Some((DeciCelsius(180), DeciCelsius(190))),
        capacity_mah: 25_000,
        alarms: AlarmSet::EMPTY,
        warnings: AlarmSet::EMPTY,
        charge_enable: true,
        discharge_enable: true,
        force_charge: false,
        full_charge: false,
        modules: 1,
    };
    let battery = Battery::Byd { publisher: byd_can::Publisher::new(5_100), view };
    let spec = InverterSpec { start_at: Duration::from_secs(5), ..inverter(InverterProtocol::Byd) };
    let mut pair = Pair::new(battery, InverterEmu::new(spec));
    pair.run_until(millis(4_999));
    assert!(pair.log.is_empty(), "both silent before the inverter starts: {:?}", pair.log);
    assert_eq!(pair.battery.poll_timeout(), None);

    pair.run_until(secs(6));
    let first: Vec<(bool, u32)> = pair.log.iter().take(8).map(|(_, b, f)| (*b, f.id())).collect();
    // The inverter speaks first (identify request, brand, then its cyclic frames); its first
    // frame wakes the battery, which answers with its identification burst.
    let inverter_first = [0x151, 0x151, 0x091, 0x0D1, 0x111, 0x191].map(|id| (false, id));
    assert_eq!(first[..6], inverter_first);
    assert_eq!(first[6..], [(true, 0x250), (true, 0x290)]);
    assert!(pair.log.iter().all(|(t, _, _)| *t >= secs(5)));
    assert!(pair.inverter.identified());
    assert_eq!(pair.inverter.counters().decode_errors, 0);
    // 0x110 byte for byte: 233.6 V, 160.0 V, 25.6 A discharge, 25.6 A charge.
    assert_eq!(data(&pair.frames(true, 0x110)[0].1), "0920064001000100");

    let seen = pair.inverter.battery(pair.now).expect("a fresh view");
    assert_eq!(seen.charge_voltage_mv, MilliVolts(233_600));
    assert_eq!(seen.discharge_voltage_mv, MilliVolts(160_000));
    assert_eq!(
        (seen.charge_limit_ma, seen.discharge_limit_ma),
        (MilliAmps(25_600), MilliAmps(25_600))
    );
    assert_eq!(seen.soc, Permille(974));
    assert_eq!(pair.current(50.0, 212.0), 25.6);
    assert_eq!(pair.current(-50.0, 212.0), -25.6);
    // It reports back what it learnt: 0x091 echoes 212.1 V, 0 A, 18.0 °C; 0x0D1 97.4 %.
    pair.run_until(secs(8));
    let (_, last_091) = *pair.frames(false, 0x091).last().unwrap();
    assert_eq!(data(&last_091), "0849000000B40000");
    let (_, last_0d1) = *pair.frames(false, 0x0D1).last().unwrap();
    assert_eq!(data(&last_0d1), "03CE000000000000");
    // The inverter stops asking once identified: one request only, at 5 s.
    assert_eq!(
        pair.log.iter().filter(|(_, b, f)| !*b && f.id() == 0x151 && f.data()[0] == 1).count(),
        1
    );
}

#[test]
fn obeying_inverters_clamp_and_disobedient_ones_trip_the_battery() {
    // Below 0 °C the battery allows no charge.
    let mut pair = rack_pair(
        lv::Profile::Pylontech,
        InverterProtocol::Pylontech,
        reading(3.30, 0.0, -3.0, 0.5),
    );
    pair.run_until(millis(1_500));
    let view = pair.inverter.battery(pair.now).unwrap();
    assert_eq!(view.charge_limit_ma, MilliAmps(0));
    assert!(!view.charge_enable);
    // Pylontech's 0x359 folds the "low temperature while charging" warning onto its low
    // temperature bit (byte 2 bit 4).
    assert!(view.warnings.contains(Alarm::LowTemperature));
    assert_eq!(pair.current(30.0, 50.0), 0.0);
    assert_eq!(pair.current(-30.0, 50.0), -30.0);

    pair.inverter.set_obeys(false);
    assert_eq!(pair.current(30.0, 50.0), 30.0);
    assert_eq!(pair.current(300.0, 50.0), 100.0, "its own rating still holds");
    // The plant follows the disobedient inverter from the 1.6 s reading on; the battery trips
    // 2 s later, as the current exceeds 1.5 × 0 A + 5 A.
    pair.battery.set_reading(reading(3.30, 30.0, -3.0, 0.5));
    pair.run_until(millis(3_550));
    assert!(pair.battery.rack().switch_on());
    pair.run_until(millis(3_600));
    assert!(!pair.battery.rack().switch_on());
    pair.run_until(millis(4_500));
    let view = pair.inverter.battery(pair.now).unwrap();
    assert!(view.alarms.contains(Alarm::HighChargeCurrent), "{view:?}");
    assert!(!view.charge_enable && !view.discharge_enable);
    // 0x359 byte 1 bit 0: charge over-current protection.
    let (_, flags) = *pair.frames(true, 0x359).last().unwrap();
    assert_eq!(flags.data()[1] & 0x01, 0x01);
    // Still disobedient: it would push current into a tripped battery.
    assert_eq!(pair.current(30.0, 50.0), 30.0);
    pair.inverter.set_obeys(true);
    assert_eq!(pair.current(30.0, 50.0), 0.0);
    assert_eq!(pair.current(-30.0, 50.0), 0.0);
}

#[test]
fn charge_taper_and_constant_voltage_through_the_bus() {
    // Highest cell 3.50 V: half the rated charge current.
    let mut pair =
        rack_pair(lv::Profile::Victron, InverterProtocol::Victron, reading(3.49, 0.0, 25.0, 0.95));
    pair.run_until(millis(1_500));
    let view = pair.inverter.battery(pair.now).unwrap();
    assert_eq!(view.charge_limit_ma, MilliAmps(18_500));
    assert!(view.warnings.is_empty());
    assert_eq!(pair.current(100.0, 52.0), 18.5);
    // 0.1 V below the CVL (53.2 V on the wire): a fifth of the ceiling.
    assert!((pair.current(100.0, 53.1) - 3.7).abs() < 1e-9);
    assert_eq!(pair.current(100.0, 53.2), 0.0);
    // Above the warning threshold.
    pair.battery.set_reading(reading(3.52, 0.0, 25.0, 0.99));
    pair.run_until(millis(2_500));
    let view = pair.inverter.battery(pair.now).unwrap();
    assert_eq!(view.charge_limit_ma, MilliAmps(7_400));
    assert!(view.warnings.contains(Alarm::HighVoltage));
}

#[test]
fn over_voltage_trip_and_recovery_through_the_bus() {
    let mut pair =
        rack_pair(lv::Profile::Sma, InverterProtocol::Sma, reading(3.30, 0.0, 25.0, 0.9));
    pair.run_until(millis(1_500));
    pair.battery.set_reading(reading(3.645, 10.0, 25.0, 1.0));
    pair.run_until(millis(2_500));
    assert!(!pair.battery.rack().switch_on());
    let view = pair.inverter.battery(pair.now).unwrap();
    assert_eq!(view.alarms, AlarmSet::EMPTY.with(Alarm::HighVoltage));
    assert!(!view.charge_enable && !view.discharge_enable);
    assert_eq!(pair.current(10.0, 52.0), 0.0);
    // 0x35A byte 0: high-voltage alarm active (01 in bits 3..2), every other field OK.
    let (_, alarms) = *pair.frames(true, 0x35A).last().unwrap();
    assert_eq!(alarms.data()[0], 0xA6);

    // At rest the cells relax below 3.45 V from the 2.6 s reading on; the battery is back
    // 10 s later.
    pair.battery.set_reading(reading(3.40, 0.0, 25.0, 1.0));
    pair.run_until(millis(12_550));
    assert!(!pair.battery.rack().switch_on());
    pair.run_until(millis(12_600));
    assert!(pair.battery.rack().switch_on());
    pair.run_until(secs(14));
    let view = pair.inverter.battery(pair.now).unwrap();
    assert!(view.alarms.is_empty());
    assert!(view.charge_enable && view.discharge_enable);
    assert_eq!(pair.battery.rack().trips(), 1);
}

#[test]
fn inverter_start_and_keepalive_stop() {
    let spec = InverterSpec {
        start_at: Duration::from_secs(5),
        keepalive_stops_at: Some(Duration::from_millis(20_500)),
        ..inverter(InverterProtocol::Victron)
    };
    let bms = CanBms::new(CanBmsSpec::us3000c_like(lv::Profile::Victron));
    let mut pair = Pair::new(
        Battery::Rack { bms: Box::new(bms), reading: reading(3.3, 0.0, 25.0, 0.5) },
        InverterEmu::new(spec),
    );
    pair.run_until(millis(4_900));
    // The battery pushes from the start; the inverter is off, hears nothing and draws nothing.
    assert!(!pair.frames(true, 0x351).is_empty());
    assert!(pair.frames(false, 0x305).is_empty());
    assert_eq!(pair.inverter.battery(pair.now), None);
    assert_eq!(pair.current(-50.0, 50.0), 0.0);
    assert_eq!(pair.inverter.counters().received, pair.inverter.counters().ignored);

    pair.run_until(secs(40));
    let keepalives = pair.frames(false, 0x305);
    assert_eq!(keepalives.first().map(|(t, _)| *t), Some(secs(5)));
    assert_eq!(keepalives.last().map(|(t, _)| *t), Some(secs(20)));
    assert_eq!(keepalives.len(), 16);
    assert_eq!(pair.battery.rack().last_keepalive(), Some(secs(20)));
    // Silent, but still running on the battery's pushed frames.
    assert_eq!(pair.inverter.poll_timeout(), None);
    assert_eq!(pair.current(-50.0, 50.0), -37.0);
    // Resumed by hand.
    pair.inverter.set_keepalive(true);
    pair.run_until(millis(41_500));
    assert_eq!(pair.frames(false, 0x305).len(), 18);
}

#[test]
fn a_silent_battery_goes_stale_and_the_inverter_stops() {
    let mut pair = rack_pair(
        lv::Profile::Pylontech,
        InverterProtocol::Pylontech,
        reading(3.3, 0.0, 25.0, 0.5),
    );
    pair.run_until(millis(10_500));
    pair.battery.rack().set_silent(true);
    // The last cycle went out at 10 s: the view holds for 10 s after it.
    pair.run_until(secs(20));
    assert_eq!(pair.current(-20.0, 50.0), -20.0);
    pair.run_until(millis(20_001));
    assert_eq!(pair.inverter.battery(pair.now), None);
    assert_eq!(pair.current(-20.0, 50.0), 0.0);
    assert!(pair.frames(true, 0x351).iter().all(|(t, _)| *t <= secs(10)));
    // It keeps protecting while hung.
    pair.battery.set_reading(reading(2.65, 0.0, 25.0, 0.0));
    pair.run_until(secs(21));
    assert!(!pair.battery.rack().switch_on());
    // Back after the hang: a cycle at once, and the inverter sees the alarm.
    pair.battery.rack().set_silent(false);
    pair.run_until(millis(21_001));
    let view = pair.inverter.battery(pair.now).unwrap();
    assert!(view.alarms.contains(Alarm::LowVoltage));
    assert!(view.force_charge);
}

#[test]
fn refused_frames_are_counted() {
    let mut inv = InverterEmu::new(inverter(InverterProtocol::Pylontech));
    let now = Instant::ZERO;
    // A 0x351 too short for its fields, a 0x355 with SoC 200 %, a 0x359 without "PN".
    for (id, bytes) in [(0x351, &[1, 2][..]), (0x355, &[200, 0, 100, 0]), (0x359, &[0; 8])] {
        inv.handle_frame(now, &Frame::standard(id, bytes).unwrap());
    }
    inv.handle_frame(now, &Frame::new(0x1234_5678, true, &[0; 8]).unwrap());
    let c = inv.counters();
    assert_eq!((c.received, c.decode_errors, c.ignored), (4, 3, 1));
    assert_eq!(inv.battery(now), None);

    let mut inv = InverterEmu::new(inverter(InverterProtocol::Byd));
    inv.handle_frame(now, &Frame::standard(0x110, &[0; 4]).unwrap());
    inv.handle_frame(now, &Frame::standard(0x351, &[0; 8]).unwrap());
    let c = inv.counters();
    assert_eq!((c.received, c.decode_errors, c.ignored), (2, 1, 1));
}

fn any_frame() -> impl Strategy<Value = Frame> {
    let standard = (0u32..=0x7FF, proptest::collection::vec(any::<u8>(), 0..=8))
        .prop_map(|(id, data)| Frame::new(id, false, &data).unwrap());
    // Mostly the identifiers the devices listen to, so that the decoders see them.
    let known = (
        proptest::sample::select(vec![
            0x091u32, 0x0D1, 0x110, 0x111, 0x150, 0x151, 0x190, 0x191, 0x1D0, 0x210, 0x250, 0x290,
            0x2D0, 0x305, 0x306, 0x307, 0x351, 0x355, 0x356, 0x359, 0x35A, 0x35B, 0x35C, 0x35E,
            0x35F, 0x370, 0x372, 0x373, 0x374, 0x378, 0x379, 0x382, 0x3D0,
        ]),
        proptest::collection::vec(any::<u8>(), 0..=8),
    )
        .prop_map(|(id, data)| Frame::new(id, false, &data).unwrap());
    let extended = (0u32..=0x1FFF_FFFF, proptest::collection::vec(any::<u8>(), 0..=8))
        .prop_map(|(id, data)| Frame::new(id, true, &data).unwrap());
    prop_oneof![3 => known, 1 => standard, 1 => extended]
}

proptest! {
    #[test]
    fn hostile_frames_never_panic(
        frames in proptest::collection::vec((0u64..30_000_000, any_frame()), 0..200),
        demand in -500.0f64..500.0,
        volts in 0.0f64..300.0,
    ) {
        let mut inverters = [
            InverterProtocol::Victron,
            InverterProtocol::Sma,
            InverterProtocol::Pylontech,
            InverterProtocol::Byd,
        ]
        .map(|p| InverterEmu::new(inverter(p)));
        let mut bms = CanBms::new(CanBmsSpec::us3000c_like(lv::Profile::Victron));
        bms.update(Instant::ZERO, &reading(3.3, 0.0, 25.0, 0.5));
        let mut sorted = frames.clone();
        sorted.sort_by_key(|(t, _)| *t);
        for (t, frame) in &sorted {
            let now = Instant::from_micros(*t);
            bms.handle_frame(now, frame);
            for inv in &mut inverters {
                inv.handle_frame(now, frame);
                let current = inv.current_a(now, demand, volts);
                prop_assert!(current.is_finite() && current.abs() <= 100.0);
                let _ = inv.battery(now);
            }
            while bms.poll_transmit(now).is_some() {}
            for inv in &mut inverters {
                for _ in 0..100 {
                    if inv.poll_transmit(now).is_none() {
                        break;
                    }
                }
                prop_assert!(inv.poll_timeout().is_none_or(|t| t > now));
            }
        }
        for inv in &inverters {
            let c = inv.counters();
            prop_assert_eq!(c.received as usize, sorted.len());
            prop_assert!(c.decode_errors + c.ignored <= c.received);
        }
    }
}
