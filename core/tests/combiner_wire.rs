//! The combined battery as inverters read it off the wire, when the racks leave optional fields
//! out: racks that send a 6-byte 0x351 (no discharge voltage limit) and racks that send no
//! capacity (neither 0x379 nor 0x35F), read back through the real codecs on both sides.

use cellwarden_core::combiner::{
    Combiner, CombinerAction, CombinerConfig, CombinerInput, InverterProtocol,
};
use cellwarden_core::proto::can::Frame;
use cellwarden_core::proto::{byd_can, lv};
use cellwarden_core::{
    AlarmSet, BatteryView, DeciCelsius, Duration, Instant, MilliAmps, MilliVolts, Permille,
};

const PACKS: usize = 3;
const CAPACITY_MAH: u32 = 100_000;

/// What one 16-cell LFP rack knows about itself.
fn rack_state(voltage_mv: i32) -> BatteryView {
    BatteryView {
        charge_voltage_mv: MilliVolts(55_200),
        discharge_voltage_mv: MilliVolts(46_400),
        charge_limit_ma: MilliAmps(50_000),
        discharge_limit_ma: MilliAmps(50_000),
        soc: Permille(600),
        soh: Permille(1000),
        voltage_mv: MilliVolts(voltage_mv),
        current_ma: MilliAmps(0),
        temperature_dc: DeciCelsius(200),
        cell_mv: None,
        cell_dc: None,
        capacity_mah: 100_000,
        alarms: AlarmSet::EMPTY,
        warnings: AlarmSet::EMPTY,
        charge_enable: true,
        discharge_enable: true,
        force_charge: false,
        full_charge: false,
        modules: 1,
    }
}

/// The frames such a rack sends in one cycle: a Pylontech v1.3 set (no 0x379, and 0x35F is
/// left out too, so no capacity reaches the reader), with 0x351 cut to 6 bytes when
/// `short_limits`, as Battery-Emulator's racks send it.
fn rack_frames(state: &BatteryView, short_limits: bool) -> Vec<Frame> {
    let (profile, dlc) = (lv::Profile::PylontechV13, lv::Dlc::Full);
    let mut limits = lv::Limits::from_view(profile, state).expect("a CVL");
    if short_limits {
        limits.discharge_voltage_mv = None;
    }
    vec![
        limits.encode(8),
        lv::encode_soc(profile, dlc, state),
        lv::encode_measurements(profile, dlc, state),
        lv::encode_alarms(profile, dlc, state),
    ]
}

/// Three racks read through `lv::Reader`s into a combiner for 30 s, every relay following the
/// combiner's connect and disconnect; returns the combiner.
fn run(short_limits: bool, protocol: InverterProtocol) -> Combiner {
    let mut config = CombinerConfig::equal_packs(PACKS, CAPACITY_MAH, MilliAmps(500_000));
    config.inverters[0].protocol = protocol;
    let mut combiner = Combiner::new(config, Instant::ZERO).expect("valid config");
    let mut readers: Vec<lv::Reader> = (0..PACKS).map(|_| lv::Reader::new()).collect();
    let mut relay = [false; PACKS];
    let states = [rack_state(52_000), rack_state(52_100), rack_state(52_200)];
    for second in 1..=30u64 {
        let now = Instant::ZERO + Duration::from_secs(second);
        for (k, reader) in readers.iter_mut().enumerate() {
            for frame in rack_frames(&states[k], short_limits) {
                reader.handle_frame(now, &frame);
            }
            let view = reader.view(now, Duration::from_secs(3)).expect("a complete rack");
            let input =
                CombinerInput::Pack { pack: k as u8, sampled_at: now, view, connected: relay[k] };
            combiner.handle_input(now, input);
            while let Some(action) = combiner.poll_action() {
                match action {
                    CombinerAction::Connect { pack } => relay[usize::from(pack)] = true,
                    CombinerAction::Disconnect { pack, .. } => relay[usize::from(pack)] = false,
                    CombinerAction::PackImplausible { pack, what } => {
                        panic!("rack {pack} was found implausible ({what:?})")
                    }
                    _ => {}
                }
            }
        }
        combiner.handle_timeout(now);
        while combiner.poll_action().is_some() {}
    }
    assert_eq!(relay, [true; PACKS], "every rack joined");
    combiner
}

/// The discharge voltage limit an inverter decodes from the combiner's 0x351.
fn inverter_dvl_mv(combiner: &Combiner) -> Option<i32> {
    let view = combiner.view(0);
    let frame = lv::encode_limits(lv::Profile::Sma, lv::Dlc::Full, &view).expect("a CVL");
    match lv::decode(&frame) {
        Ok(lv::Message::Limits(limits)) => limits.discharge_voltage_mv.map(|v| v.0),
        other => panic!("0x351 did not decode: {other:?}"),
    }
}

#[test]
fn racks_with_a_dvl_pass_the_highest_on() {
    let combiner = run(false, InverterProtocol::LowVoltageCan);
    assert_eq!(inverter_dvl_mv(&combiner), Some(46_400));
}

/// Every rack sends a 6-byte 0x351. The inverter must not be told 0.0 V (an SMA Sunny Island
/// takes it as the voltage it may discharge the bank to): it gets the floor derived from the
/// racks' chemistry and cell count, 16 LFP cells at 3.0 V each, which lies inside every
/// rack's window and below its charge voltage limit.
#[test]
fn racks_without_a_dvl_give_the_inverter_the_chemistry_floor() {
    let combiner = run(true, InverterProtocol::LowVoltageCan);
    assert_eq!(inverter_dvl_mv(&combiner), Some(48_000));
    let view = combiner.view(0);
    assert!(view.discharge_voltage_mv < view.charge_voltage_mv);
    // Before any rack is heard the combined battery still says something sane.
    let fresh = Combiner::new(
        CombinerConfig::equal_packs(PACKS, CAPACITY_MAH, MilliAmps(500_000)),
        Instant::ZERO,
    )
    .expect("valid config");
    assert_eq!(fresh.view(0).discharge_voltage_mv, MilliVolts(48_000));
}

/// BYD 0x150 carries the remaining and full capacity. Racks that send no capacity must not
/// make it 0 Ah while the identification burst announces the configured size: the
/// combiner falls back to each rack's configured capacity.
#[test]
fn byd_states_carry_the_configured_capacity_when_racks_send_none() {
    let combiner = run(false, InverterProtocol::BydCan);
    let view = combiner.view(0);
    assert_eq!(view.capacity_mah, 3 * CAPACITY_MAH);
    match byd_can::decode(&byd_can::encode_states(&view)) {
        Ok(byd_can::Message::States { remaining_mah, capacity_mah, .. }) => {
            assert_eq!(capacity_mah, 300_000);
            assert_eq!(remaining_mah, 180_000, "60 % of 300 Ah");
        }
        other => panic!("0x150 did not decode: {other:?}"),
    }
}
