//! Helpers for the protection and input tests, on top of the shared rig in `common`.

#![allow(dead_code)]

use cellwarden_core::{
    Action, Config, CurrentLimits, Duration, FaultChange, FaultEvent, Instant, LimitReason,
    Location, MilliVolts, RuleId, SequenceEvent, Thresholds, Tier,
};

use crate::common::Rig;

/// Cell voltage of the healthy LFP pack the tests start from.
pub const BASE_MV: i32 = 3_300;

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

pub fn before(t: Instant, d: Duration) -> Instant {
    Instant::from_micros(t.as_micros() - d.as_micros())
}

pub fn off() -> Thresholds<MilliVolts> {
    Thresholds {
        operating: None,
        recommended: None,
        maximum: None,
        hysteresis: MilliVolts(0),
        debounce_ms: 0,
    }
}

/// lfp_16s(100) with the plausibility rules (imbalance, sum-of-cells mismatch) switched off
/// unless `keep` is one of them, so moving one cell or the pack sensor trips only `keep`. The
/// charge controller is off too: these tests are about protection's own limits, which must
/// hold without it (core/tests/charging.rs covers the two together), and so is the ramp of the
/// limits after a close, whose step deadlines would come before protection's
/// (core/tests/close_ramp.rs covers it).
pub fn isolated(keep: RuleId) -> Config {
    let mut config = Config::lfp_16s(100);
    config.charge = None;
    config.contactors.limit_ramp_ms = 0;
    if keep != RuleId::CellImbalance {
        config.protection.cell_imbalance_mv = off();
    }
    if keep != RuleId::PackVoltageMismatch {
        config.protection.pack_voltage_mismatch_mv = off();
    }
    config
}

/// A closed LFP pack with only `keep`'s plausibility rule on.
pub fn closed(keep: RuleId) -> Rig {
    let mut rig = Rig::new(isolated(keep), BASE_MV);
    rig.close();
    rig
}

pub fn faults(rig: &Rig) -> Vec<FaultEvent> {
    rig.picked(0, |_, a| match a {
        Action::Fault(e) => Some(*e),
        _ => None,
    })
}

pub fn events(rig: &Rig, rule: RuleId, tier: Tier, change: FaultChange) -> Vec<FaultEvent> {
    faults(rig)
        .into_iter()
        .filter(|e| e.rule == rule && e.tier == tier && e.change == change)
        .collect()
}

pub fn limits(rig: &Rig) -> CurrentLimits {
    rig.bms.status().limits
}

pub fn reason(rule: RuleId, tier: Tier, location: Location, value: i32) -> LimitReason {
    LimitReason::Rule { rule, tier, location, value }
}

pub fn names(reason: LimitReason, rule: RuleId) -> bool {
    matches!(reason, LimitReason::Rule { rule: r, .. } if r == rule)
}

/// When the sequence reported the contactors opened (the precharge relay opening at the end of
/// closing is not an opening of the pack).
pub fn opened_at(rig: &Rig) -> Option<Instant> {
    rig.log.iter().find_map(|(t, a)| match a {
        Action::Sequence(SequenceEvent::Opened { .. }) => Some(*t),
        _ => None,
    })
}

pub fn close_commands(rig: &Rig) -> usize {
    rig.log.iter().filter(|(_, a)| matches!(a, Action::Contactor { closed: true, .. })).count()
}

pub fn count(rig: &Rig, rule: RuleId, tier: Tier, change: FaultChange) -> usize {
    events(rig, rule, tier, change).len()
}
