//! The current limits after the contactors close: they rise from zero over
//! `contactors.limit_ramp_ms` instead of stepping up, every close ramps again, a ramp time of 0
//! turns it off, and a reduction protection asks for during the ramp applies at once. Only what
//! the inverter is told ramps: the limits in force (the status, the battery view a combiner
//! reads) do not.
//!
//! The stories use the 16S 100 Ah LFP preset (50 A charge, 100 A discharge at most, the default
//! ramp of 5 s in 50 steps: 10 A/s and 20 A/s) on the shared rig, with a measurement every 10 ms.

use cellwarden_core::{
    Action, Command, Config, CurrentLimits, DEFAULT_LIMIT_RAMP_MS, Duration, LimitReason,
    MilliVolts, RuleId, Tier,
};

mod common;
use common::Rig;

/// The limits the inverter was told last.
fn limits(rig: &Rig) -> CurrentLimits {
    rig.log
        .iter()
        .rev()
        .find_map(|(_, a)| match a {
            Action::Limits(l) => Some(*l),
            _ => None,
        })
        .expect("limits sent")
}

/// Every limit the rig was sent from log index `from` on.
fn sent(rig: &Rig, from: usize) -> Vec<CurrentLimits> {
    rig.picked(from, |_, a| match a {
        Action::Limits(l) => Some(*l),
        _ => None,
    })
}

#[test]
fn the_limits_rise_from_zero_after_the_close() {
    assert_eq!(Config::lfp_16s(100).contactors.limit_ramp_ms, DEFAULT_LIMIT_RAMP_MS);
    let mut rig = Rig::lfp();
    rig.close();
    let from = rig.log.len();
    let l = limits(&rig);
    assert!(l.discharge_ma.0 <= 200, "at the close: {l:?}");
    assert_eq!(l.discharge_reason, LimitReason::ClosingRamp);
    rig.run(Duration::from_secs(1));
    let l = limits(&rig);
    // One fifth of the way: 20 A of 100, 10 A of 50, within one 10 ms measurement.
    assert!((19_600..=20_200).contains(&l.discharge_ma.0), "after 1 s: {l:?}");
    assert!((9_800..=10_100).contains(&l.charge_ma.0), "after 1 s: {l:?}");
    assert_eq!(
        (l.charge_reason, l.discharge_reason),
        (LimitReason::ClosingRamp, LimitReason::ClosingRamp)
    );
    // The limits in force are the full ones all along.
    assert_eq!(rig.bms.status().limits.discharge_ma.0, 100_000);
    assert_eq!(rig.bms.battery_view().map(|v| v.discharge_limit_ma.0), Some(100_000));
    rig.run(Duration::from_millis(4_100));
    let l = limits(&rig);
    assert_eq!(l.discharge_ma.0, 100_000, "after 5.1 s: {l:?}");
    assert_ne!(l.discharge_reason, LimitReason::ClosingRamp);
    // No step anywhere on the way: the ramp rises in 50 steps of 2 % (2 A of discharge), one
    // every 100 ms, each at a deadline of the core.
    let steps = sent(&rig, from);
    assert!(steps.len() >= 50, "{} steps", steps.len());
    for pair in steps.windows(2) {
        let rise = pair[1].discharge_ma.0 - pair[0].discharge_ma.0;
        assert!(rise <= 2_000, "a step of {rise} mA: {pair:?}");
    }
}

#[test]
fn every_close_ramps_again_and_a_ramp_of_zero_steps() {
    let mut rig = Rig::lfp();
    rig.close();
    rig.run(Duration::from_secs(6));
    assert_eq!(limits(&rig).discharge_ma.0, 100_000);
    rig.command(Command::Stop);
    rig.run(Duration::from_secs(10));
    assert_eq!(limits(&rig).discharge_ma.0, 0);
    rig.close();
    rig.run(Duration::from_millis(500));
    let l = limits(&rig);
    assert!((9_600..=10_200).contains(&l.discharge_ma.0), "0.5 s after the second close: {l:?}");

    let mut config = Config::lfp_16s(100);
    config.contactors.limit_ramp_ms = 0;
    let mut rig = Rig::new(config, 3_300);
    rig.close();
    assert_eq!(limits(&rig).discharge_ma.0, 100_000);
}

/// A cell falls under the recommended under-voltage tier (2.8 V) one second into the ramp:
/// the discharge limit goes to zero as soon as the tier is raised (after its 200 ms
/// debounce), not at the ramp's pace, while the charge limit, which that tier does not touch,
/// keeps ramping.
#[test]
fn a_protection_cut_during_the_ramp_applies_at_once() {
    let mut rig = Rig::lfp();
    rig.close();
    rig.run(Duration::from_secs(1));
    let before = limits(&rig).discharge_ma.0;
    assert!(before > 19_000, "{before}");
    rig.plant.cells[5] = MilliVolts(2_750);
    let from = rig.log.len();
    rig.run(Duration::from_millis(300));
    let l = limits(&rig);
    assert_eq!(l.discharge_ma.0, 0, "{l:?}");
    assert!(matches!(
        l.discharge_reason,
        LimitReason::Rule { rule: RuleId::CellUnderVoltage, tier: Tier::Recommended, .. }
    ));
    assert_eq!(l.charge_reason, LimitReason::ClosingRamp);
    // The cut came in one step from the ramp's value, not down a slope: every discharge limit
    // sent meanwhile is either still the ramp's (at least what it was) or zero.
    let sent = sent(&rig, from);
    assert!(sent.iter().any(|l| l.discharge_ma.0 == 0));
    for l in &sent {
        assert!(l.discharge_ma.0 == 0 || l.discharge_ma.0 >= before, "{l:?}");
    }
}
