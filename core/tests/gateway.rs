//! The gateway: our pack controllers' reports and CAN racks' frames into the combiner, the
//! combined battery out to each inverter in its protocol, connect and disconnect into `Start`,
//! `Stop` and relays.

use cellwarden_core::combiner::{
    CombinerAction, CombinerConfig, DropReason, InverterProtocol, InverterSlot, OperatorCommand,
    PackPhase,
};
use cellwarden_core::gateway::{
    BYD_WAKE_PERIOD, Bus, Gateway, GatewayCommand, GatewayConfig, GatewayConfigError, InverterLink,
    PackLink,
};
use cellwarden_core::proto::can::Frame;
use cellwarden_core::proto::{byd_can, lv};
use cellwarden_core::{
    AlarmSet, BatteryView, Command, DeciCelsius, Duration, Instant, MilliAmps, MilliVolts, Permille,
};

use proptest::prelude::*;

const AH: u32 = 1_000;

fn view(voltage_mv: i32) -> BatteryView {
    BatteryView {
        charge_voltage_mv: MilliVolts(53_200),
        discharge_voltage_mv: MilliVolts(45_000),
        charge_limit_ma: MilliAmps(100_000),
        discharge_limit_ma: MilliAmps(100_000),
        soc: Permille(500),
        soh: Permille(1000),
        voltage_mv: MilliVolts(voltage_mv),
        current_ma: MilliAmps(0),
        temperature_dc: DeciCelsius(200),
        cell_mv: Some((MilliVolts(3_300), MilliVolts(3_310))),
        cell_dc: Some((DeciCelsius(190), DeciCelsius(210))),
        capacity_mah: 100 * AH,
        alarms: AlarmSet::EMPTY,
        warnings: AlarmSet::EMPTY,
        charge_enable: true,
        discharge_enable: true,
        force_charge: false,
        full_charge: false,
        modules: 1,
    }
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn lv_inverter(profile: lv::Profile, mode: lv::Mode) -> InverterLink {
    InverterLink::LvCan { profile, dlc: lv::Dlc::Full, mode, spacing: Duration::ZERO }
}

/// `packs` equal 16-cell LFP packs of 100 Ah, one Pylontech inverter pushing once a second.
fn config(packs: &[PackLink]) -> GatewayConfig {
    let mut c =
        GatewayConfig::new(CombinerConfig::equal_packs(packs.len(), 100 * AH, MilliAmps(500_000)));
    for &p in packs {
        c.packs.push(p).expect("room");
    }
    let push = lv::Mode::Push { period: Duration::from_secs(1) };
    c.inverters.push(lv_inverter(lv::Profile::Pylontech, push)).expect("room");
    c
}

/// One cycle of a rack speaking `profile`, as its BMS would send it.
fn rack_cycle(profile: lv::Profile, v: &BatteryView) -> heapless::Vec<Frame, 16> {
    let mut out = heapless::Vec::new();
    lv::encode_cycle(profile, lv::Dlc::Full, b"PYLON\0\0\0", v, &mut out);
    out
}

fn commands(g: &mut Gateway) -> Vec<GatewayCommand> {
    std::iter::from_fn(|| g.poll_command()).collect()
}

fn events(g: &mut Gateway) -> Vec<CombinerAction> {
    std::iter::from_fn(|| g.poll_event()).collect()
}

fn transmit(g: &mut Gateway, now: Instant) -> Vec<(Bus, Frame)> {
    std::iter::from_fn(|| g.poll_transmit(now)).collect()
}

#[test]
fn our_pack_is_started_joined_and_stopped_through_commands() {
    let mut g = Gateway::new(config(&[PackLink::Controller]), Instant::ZERO).expect("valid");
    // Nothing to report yet: nothing reaches the combiner, nothing is commanded.
    g.handle_pack_report(0, at(100), None, false);
    assert_eq!(g.counters().reports, 0);
    assert_eq!(g.status().packs[0].phase, PackPhase::Unheard);
    assert!(commands(&mut g).is_empty());

    g.handle_pack_report(0, at(1_000), Some(view(52_000)), false);
    assert_eq!(
        commands(&mut g),
        vec![GatewayCommand::Controller { pack: 0, command: Command::Start }]
    );
    assert!(events(&mut g).contains(&CombinerAction::Connect { pack: 0 }));
    // Its contactors closed: it joins and the inverter is given its limits.
    for s in 2..4 {
        g.handle_pack_report(0, at(s * 1_000), Some(view(52_000)), true);
        g.handle_timeout(at(s * 1_000));
    }
    assert_eq!(g.status().packs[0].phase, PackPhase::Joined);
    assert!(g.view(0).charge_limit_ma > MilliAmps(0));
    // Its reports stop: after the combiner's 5 s it is stopped, gracefully.
    let _ = events(&mut g);
    g.handle_timeout(at(9_000));
    assert_eq!(
        commands(&mut g),
        vec![GatewayCommand::Controller { pack: 0, command: Command::Stop }]
    );
    assert!(
        events(&mut g).contains(&CombinerAction::Disconnect { pack: 0, reason: DropReason::Stale })
    );
    assert_eq!(g.view(0).charge_limit_ma, MilliAmps(0));
}

#[test]
fn a_rack_is_reported_once_per_batch_of_frames_and_switched_by_its_relay() {
    let mut g = Gateway::new(config(&[PackLink::LvCan]), Instant::ZERO).expect("valid");
    let frames = rack_cycle(lv::Profile::Pylontech, &view(52_000));
    for f in &frames {
        g.handle_frame(Bus::Pack(0), at(1_000), f);
    }
    // Read, not yet reported: the frames of one burst are reported together.
    assert_eq!(g.counters().reports, 0);
    assert_eq!(g.poll_timeout(), Some(at(1_000)), "a waiting report is due now");
    assert_eq!(commands(&mut g), vec![GatewayCommand::Relay { pack: 0, closed: true }]);
    assert_eq!(g.counters().reports, 1, "one report for the whole cycle");
    assert!(g.relay_closed(0));
    // Once the inverter's cycle is out too, nothing is due before the next deadline.
    let _ = transmit(&mut g, at(1_000));
    assert!(g.poll_timeout().is_some_and(|t| t > at(1_000)));
    // With the relay held closed, its next report says connected, and it joins.
    for s in 2..4 {
        for f in &frames {
            g.handle_frame(Bus::Pack(0), at(s * 1_000), f);
        }
        g.handle_timeout(at(s * 1_000));
    }
    assert_eq!(g.counters().reports, 3);
    assert!(g.status().packs[0].connected);
    assert_eq!(g.status().packs[0].phase, PackPhase::Joined);
    // A frame that does not decode stores nothing: no new report.
    g.handle_frame(Bus::Pack(0), at(3_500), &Frame::standard(0x7FF, &[1, 2]).expect("frame"));
    g.handle_timeout(at(3_500));
    assert_eq!(g.counters().reports, 3);
}

#[test]
fn a_rack_whose_frames_are_too_old_is_not_reported() {
    let mut c = config(&[PackLink::LvCan]);
    c.report_max_age = Duration::from_secs(1);
    let mut g = Gateway::new(c, Instant::ZERO).expect("valid");
    // The frames arrive stamped 2 s before the gateway's time.
    g.handle_timeout(at(5_000));
    for f in &rack_cycle(lv::Profile::Sma, &view(52_000)) {
        g.handle_frame(Bus::Pack(0), at(3_000), f);
    }
    g.handle_timeout(at(5_000));
    assert_eq!(g.counters().reports, 0);
    assert_eq!(g.status().packs[0].phase, PackPhase::Unheard);
    assert!(commands(&mut g).is_empty());
}

#[test]
fn the_combined_battery_is_pushed_to_the_inverter_with_the_name_its_profile_expects() {
    let mut g = Gateway::new(config(&[PackLink::LvCan]), Instant::ZERO).expect("valid");
    let frames = transmit(&mut g, at(0));
    assert!(!frames.is_empty(), "push mode starts at once");
    assert!(frames.iter().all(|(bus, _)| *bus == Bus::Inverter(0)));
    let name = frames.iter().find(|(_, f)| f.id() == u32::from(lv::id::NAME)).expect("0x35E");
    assert_eq!(&name.1.data()[..5], b"PYLON");
    // Nothing joined: the limits sent are zero.
    let limits = frames.iter().find(|(_, f)| f.id() == u32::from(lv::id::LIMITS)).expect("0x351").1;
    let Ok(lv::Message::Limits(l)) = lv::decode(&limits) else { panic!("0x351 decodes") };
    assert_eq!(l.charge_limit_ma, MilliAmps(0));
    assert!(transmit(&mut g, at(500)).is_empty(), "next cycle a second later");
    assert!(!transmit(&mut g, at(1_000)).is_empty());
}

#[test]
fn in_sync_mode_the_inverter_s_keepalive_triggers_a_cycle_and_counts_as_alive() {
    let mut c = config(&[PackLink::LvCan]);
    c.inverters[0] = lv_inverter(lv::Profile::Victron, lv::Mode::Sync);
    let mut g = Gateway::new(c, Instant::ZERO).expect("valid");
    assert!(transmit(&mut g, at(1_000)).is_empty(), "silent until asked");
    assert_eq!(g.status().inverters[0].last_alive, None);
    g.handle_frame(Bus::Inverter(0), at(1_000), &lv::encode_keepalive(lv::KeepAlive::Ack305));
    assert_eq!(g.status().inverters[0].last_alive, Some(at(1_000)));
    let frames = transmit(&mut g, at(1_000));
    let name = frames.iter().find(|(_, f)| f.id() == u32::from(lv::id::NAME)).expect("0x35E");
    assert_eq!(name.1.data(), b"CELLWRDN");
    // A frame that is not a keep-alive is no sign of life.
    g.handle_frame(Bus::Inverter(0), at(2_000), &Frame::standard(0x351, &[0; 8]).expect("frame"));
    assert_eq!(g.status().inverters[0].last_alive, Some(at(1_000)));
}

#[test]
fn the_inverter_s_current_reaches_the_obedience_check() {
    let mut g = Gateway::new(config(&[PackLink::Controller]), Instant::ZERO).expect("valid");
    g.handle_inverter_current(0, at(1_000), MilliAmps(-12_000));
    assert_eq!(g.status().inverters[0].current, Some((at(1_000), MilliAmps(-12_000))));
}

#[test]
fn a_byd_rack_is_woken_read_and_switched() {
    let mut c = config(&[PackLink::BydCan]);
    c.combiner.packs[0].cells = 128;
    c.combiner.inverters[0].protocol = InverterProtocol::BydCan;
    c.inverters[0] = InverterLink::BydCan { capacity_wh: 12_800 };
    let mut g = Gateway::new(c, Instant::ZERO).expect("valid");
    let mut rack = byd_can::Publisher::new(12_800);
    let mut hv = view(409_600);
    hv.charge_voltage_mv = MilliVolts(454_400);
    hv.discharge_voltage_mv = MilliVolts(384_000);
    let mut woken = 0;
    for s in 0..4u64 {
        let now = at(s * 1_000);
        for (bus, frame) in transmit(&mut g, now) {
            if bus == Bus::Pack(0) {
                assert!(byd_can::is_inverter_frame(&frame));
                woken += 1;
                let _ = rack.handle_frame(now, &frame);
            }
        }
        while let Some(frame) = rack.poll_transmit(now, &hv) {
            g.handle_frame(Bus::Pack(0), now, &frame);
        }
        g.handle_timeout(now);
        let _ = commands(&mut g);
    }
    // Woken at 0 s and every BYD_WAKE_PERIOD after.
    assert_eq!(woken, 4_000 / BYD_WAKE_PERIOD.as_millis());
    assert!(g.counters().reports >= 1);
    assert!(g.relay_closed(0), "asked to connect once heard");
    assert_ne!(g.status().packs[0].phase, PackPhase::Unheard);
}

#[test]
fn links_that_do_not_match_the_combiner_are_refused() {
    let mut c = config(&[PackLink::Controller, PackLink::LvCan]);
    c.packs.pop();
    assert_eq!(Gateway::new(c, Instant::ZERO).err(), Some(GatewayConfigError::PackCount));
    let mut c = config(&[PackLink::Controller]);
    c.inverters.pop();
    assert_eq!(Gateway::new(c, Instant::ZERO).err(), Some(GatewayConfigError::InverterCount));
    let mut c = config(&[PackLink::Controller]);
    c.inverters[0] = InverterLink::BydCan { capacity_wh: 5_000 };
    assert_eq!(
        Gateway::new(c, Instant::ZERO).err(),
        Some(GatewayConfigError::InverterProtocol { index: 0 })
    );
    let mut c = config(&[PackLink::Controller]);
    c.report_max_age = Duration::ZERO;
    assert_eq!(Gateway::new(c, Instant::ZERO).err(), Some(GatewayConfigError::ReportMaxAge));
    let mut c = config(&[PackLink::Controller]);
    c.combiner.inverters[0] = InverterSlot { share: Permille(2_000), ..c.combiner.inverters[0] };
    assert!(matches!(Gateway::new(c, Instant::ZERO).err(), Some(GatewayConfigError::Combiner(_))));
}

#[test]
fn input_on_the_wrong_bus_or_for_the_wrong_pack_is_counted_and_changes_nothing() {
    let mut g =
        Gateway::new(config(&[PackLink::Controller, PackLink::LvCan]), Instant::ZERO).expect("ok");
    let frame = Frame::standard(0x351, &[0; 8]).expect("frame");
    g.handle_frame(Bus::Pack(7), at(1), &frame);
    g.handle_frame(Bus::Pack(0), at(1), &frame);
    g.handle_frame(Bus::Inverter(3), at(1), &frame);
    assert_eq!(g.counters().unknown_bus, 3);
    g.handle_pack_report(1, at(2), Some(view(52_000)), false);
    g.handle_pack_report(9, at(2), Some(view(52_000)), false);
    assert_eq!(g.counters().misrouted_reports, 2);
    assert_eq!(g.counters().reports, 0);
    assert!(commands(&mut g).is_empty());
    assert_eq!(g.status().packs[1].phase, PackPhase::Unheard);
}

/// A report of one of our packs carrying `current_ma` (negative: discharging).
fn loaded(voltage_mv: i32, current_ma: i32) -> BatteryView {
    BatteryView { current_ma: MilliAmps(current_ma), ..view(voltage_mv) }
}

/// Two of our own pack controllers, both joined by 3 s.
fn two_joined() -> Gateway {
    let mut g = Gateway::new(config(&[PackLink::Controller, PackLink::Controller]), Instant::ZERO)
        .expect("valid");
    for s in 1..4 {
        for pack in 0..2 {
            g.handle_pack_report(pack, at(s * 1_000), Some(view(52_000)), s > 1);
        }
        g.handle_timeout(at(s * 1_000));
    }
    assert!(g.status().packs.iter().take(2).all(|p| p.phase == PackPhase::Joined));
    let _ = commands(&mut g);
    let _ = events(&mut g);
    g
}

#[test]
fn an_operator_stop_drops_our_pack_and_it_does_not_rejoin_on_its_own() {
    let mut g = two_joined();
    g.handle_operator(at(4_000), 0, OperatorCommand::Stop);
    assert_eq!(
        commands(&mut g),
        vec![GatewayCommand::Controller { pack: 0, command: Command::Stop }]
    );
    let log = events(&mut g);
    assert!(log.contains(&CombinerAction::Disconnect { pack: 0, reason: DropReason::Operator }));
    assert!(log.contains(&CombinerAction::PackDropped { pack: 0, reason: DropReason::Operator }));
    // Both packs report at rest inside the join window for two minutes, well past the
    // combiner's rejoin time: without the hold pack 0 would be asked to connect again.
    for s in 5..125 {
        g.handle_pack_report(0, at(s * 1_000), Some(view(52_000)), false);
        g.handle_pack_report(1, at(s * 1_000), Some(view(52_000)), true);
        g.handle_timeout(at(s * 1_000));
        assert!(commands(&mut g).is_empty(), "commanded at {s} s");
    }
    assert!(g.status().packs[0].held);
    assert_eq!(g.status().packs[0].phase, PackPhase::Waiting);
}

#[test]
fn an_operator_start_waits_for_the_join_rules_before_starting_our_pack() {
    let mut g = two_joined();
    g.handle_operator(at(4_000), 0, OperatorCommand::Stop);
    let _ = commands(&mut g);
    // The start comes while pack 1 carries the bank's 60 A: the bank is not at rest, so our
    // pack is not started, however long that lasts.
    g.handle_operator(at(5_000), 0, OperatorCommand::Start);
    assert!(!g.status().packs[0].held);
    for s in 5..60 {
        g.handle_pack_report(0, at(s * 1_000), Some(view(52_000)), false);
        g.handle_pack_report(1, at(s * 1_000), Some(loaded(51_500, -60_000)), true);
        g.handle_timeout(at(s * 1_000));
        assert!(commands(&mut g).is_empty(), "started under load at {s} s");
    }
    // The bank rests, but pack 1 has sagged outside the window: still no start.
    g.handle_pack_report(0, at(60_000), Some(view(52_000)), false);
    g.handle_pack_report(1, at(60_000), Some(view(50_500)), true);
    g.handle_timeout(at(60_000));
    assert!(commands(&mut g).is_empty(), "started outside the join window");
    // At rest and within the window: now, and only now, the start goes out.
    g.handle_pack_report(1, at(61_000), Some(view(51_800)), true);
    g.handle_timeout(at(61_000));
    assert_eq!(
        commands(&mut g),
        vec![GatewayCommand::Controller { pack: 0, command: Command::Start }]
    );
    g.handle_pack_report(0, at(62_000), Some(view(51_900)), true);
    g.handle_timeout(at(62_000));
    assert_eq!(g.status().packs[0].phase, PackPhase::Joined);
}

#[test]
fn an_operator_stop_opens_a_rack_s_relay_and_a_start_closes_it_only_when_admitted() {
    let mut g = Gateway::new(config(&[PackLink::LvCan]), Instant::ZERO).expect("valid");
    let frames = rack_cycle(lv::Profile::Pylontech, &view(52_000));
    let feed = |g: &mut Gateway, s: u64| {
        for f in &frames {
            g.handle_frame(Bus::Pack(0), at(s * 1_000), f);
        }
        g.handle_timeout(at(s * 1_000));
    };
    for s in 1..4 {
        feed(&mut g, s);
    }
    assert_eq!(g.status().packs[0].phase, PackPhase::Joined);
    let _ = commands(&mut g);
    g.handle_operator(at(4_000), 0, OperatorCommand::Stop);
    assert_eq!(commands(&mut g), vec![GatewayCommand::Relay { pack: 0, closed: false }]);
    assert!(!g.relay_closed(0));
    for s in 5..65 {
        feed(&mut g, s);
        assert!(commands(&mut g).is_empty(), "relay switched at {s} s");
        assert!(!g.relay_closed(0));
    }
    g.handle_operator(at(65_000), 0, OperatorCommand::Start);
    feed(&mut g, 66);
    assert_eq!(commands(&mut g), vec![GatewayCommand::Relay { pack: 0, closed: true }]);
    assert!(g.relay_closed(0));
}

#[test]
fn an_operator_command_for_a_pack_that_does_not_exist_is_counted() {
    let mut g = two_joined();
    let before = g.status().counters.out_of_range;
    g.handle_operator(at(4_000), 2, OperatorCommand::Stop);
    g.handle_operator(at(4_000), 255, OperatorCommand::Start);
    assert_eq!(g.status().counters.out_of_range, before + 2);
    assert!(commands(&mut g).is_empty());
    assert!(g.status().packs.iter().take(2).all(|p| p.phase == PackPhase::Joined && !p.held));
}

/// One thing that can happen to a gateway: a frame on some bus (possibly one it does not have),
/// a report, an inverter current or a deadline, at a time that may go backwards.
#[derive(Clone, Debug)]
enum Event {
    Frame { inverter: bool, bus: u8, id: u16, data: Vec<u8> },
    Report { pack: u8, voltage_mv: i32, connected: bool },
    Current { inverter: u8, ma: i32 },
    Timeout,
    Operator { pack: u8, stop: bool },
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (any::<bool>(), 0u8..10, 0x300u16..0x380, proptest::collection::vec(any::<u8>(), 0..=8))
            .prop_map(|(inverter, bus, id, data)| Event::Frame { inverter, bus, id, data }),
        (0u8..10, 40_000i32..60_000, any::<bool>()).prop_map(|(pack, voltage_mv, connected)| {
            Event::Report { pack, voltage_mv, connected }
        }),
        (0u8..6, any::<i32>()).prop_map(|(inverter, ma)| Event::Current { inverter, ma }),
        Just(Event::Timeout),
        (any::<u8>(), any::<bool>()).prop_map(|(pack, stop)| Event::Operator { pack, stop }),
    ]
}

proptest! {
    /// Whatever arrives, in whatever order and at whatever times, the gateway does not panic,
    /// commands only packs it has, and never closes a relay of a rack that never sent a
    /// complete report.
    #[test]
    fn hostile_input_never_panics_nor_switches_an_unheard_rack(
        events in proptest::collection::vec((event(), 0u64..20_000), 0..200)
    ) {
        let mut g = Gateway::new(
            config(&[PackLink::Controller, PackLink::LvCan, PackLink::LvCan]),
            Instant::ZERO,
        ).expect("valid");
        for (e, ms) in events {
            let now = at(ms);
            match e {
                Event::Frame { inverter, bus, id, data } => {
                    let frame = Frame::standard(id, &data).expect("at most 8 bytes");
                    let bus = if inverter { Bus::Inverter(bus) } else { Bus::Pack(bus) };
                    g.handle_frame(bus, now, &frame);
                }
                Event::Report { pack, voltage_mv, connected } => {
                    g.handle_pack_report(pack, now, Some(view(voltage_mv)), connected);
                }
                Event::Current { inverter, ma } => {
                    g.handle_inverter_current(inverter, now, MilliAmps(ma));
                }
                Event::Timeout => g.handle_timeout(now),
                Event::Operator { pack, stop } => {
                    let command = if stop { OperatorCommand::Stop } else { OperatorCommand::Start };
                    g.handle_operator(now, pack, command);
                }
            }
            while let Some(c) = g.poll_command() {
                match c {
                    GatewayCommand::Controller { pack, .. } => prop_assert_eq!(pack, 0),
                    GatewayCommand::Relay { pack, .. } => prop_assert!(pack == 1 || pack == 2),
                }
            }
            while g.poll_event().is_some() {}
            while g.poll_transmit(now).is_some() {}
            let _ = g.poll_timeout();
        }
        for pack in 1..3u8 {
            if g.status().packs[usize::from(pack)].phase == PackPhase::Unheard {
                prop_assert!(!g.relay_closed(pack));
            }
        }
    }
}
