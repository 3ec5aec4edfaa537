//! The direction the cell-imbalance rule restricts: chosen when the rule is raised and held
//! while it is active, so that a pack whose highest and lowest cell stand out about equally
//! does not flip between stopping charge and stopping discharge with every sample. The side
//! changes when the other end stands out by more than the rule's hysteresis; raised at an exact
//! tie, both directions are restricted until one end stands out.
//!
//! The 16S LFP preset: imbalance tiers at 50 / 150 / 400 mV with 10 mV of hysteresis and 2 s of
//! debounce. Fifteen cells sit at 3.300 V; cell 0 is `high` mV above, cell 1 `low` mV below.
//! With these figures the highest cell stands out from the mean by 7/8 of `high - low` more
//! than the lowest does.

use cellwarden_core::{Duration, LimitReason, MilliVolts, RuleId, Tier};

mod common;
use common::Rig;

fn closed_rig() -> Rig {
    let mut rig = Rig::lfp();
    rig.close();
    rig.run(Duration::from_secs(6));
    rig
}

fn set(rig: &mut Rig, high: i32, low: i32) {
    rig.plant.cells.fill(MilliVolts(3_300));
    rig.plant.cells[0] = MilliVolts(3_300 + high);
    rig.plant.cells[1] = MilliVolts(3_300 - low);
}

/// (charge limit, discharge limit) in A, and whether the imbalance rule binds each.
fn limits(rig: &Rig) -> ((i32, bool), (i32, bool)) {
    let l = rig.bms.status().limits;
    let imbalance =
        |r: LimitReason| matches!(r, LimitReason::Rule { rule: RuleId::CellImbalance, .. });
    (
        (l.charge_ma.0 / 1000, imbalance(l.charge_reason)),
        (l.discharge_ma.0 / 1000, imbalance(l.discharge_reason)),
    )
}

fn recommended_active(rig: &Rig) -> bool {
    rig.bms.status().rules[RuleId::CellImbalance.index()].active == Some(Tier::Recommended)
}

#[test]
fn a_side_chosen_at_the_raise_holds_through_a_tie() {
    let mut rig = closed_rig();
    // 160 mV apart, the highest cell standing out by 35 mV more: charging is stopped.
    set(&mut rig, 100, 60);
    rig.run(Duration::from_secs(3));
    assert!(recommended_active(&rig));
    assert_eq!(limits(&rig), ((0, true), (100, false)));
    // Now the two ends take turns standing out by 3.5 mV: the rule keeps stopping charge and
    // never stops discharge (it used to flip with every sample).
    for k in 0..20 {
        set(&mut rig, 100, if k % 2 == 0 { 96 } else { 104 });
        rig.run(Duration::from_secs(1));
        assert!(recommended_active(&rig));
        assert_eq!(limits(&rig), ((0, true), (100, false)), "second {k}");
    }
}

#[test]
fn the_other_end_standing_out_beyond_the_hysteresis_takes_the_restriction() {
    let mut rig = closed_rig();
    set(&mut rig, 100, 60);
    rig.run(Duration::from_secs(3));
    assert_eq!(limits(&rig), ((0, true), (100, false)));
    // The lowest cell comes to stand out by 35 mV: now it is the one endangered, by
    // discharging, and discharging stops (charging may resume, as it must for a pack at the
    // empty end to recover).
    set(&mut rig, 100, 140);
    rig.run(Duration::from_secs(1));
    assert_eq!(limits(&rig), ((50, false), (0, true)));
    // Back within the hysteresis of a tie, the new side holds.
    set(&mut rig, 100, 96);
    rig.run(Duration::from_secs(2));
    assert_eq!(limits(&rig), ((50, false), (0, true)));
    // The rule clears; raised again by the highest cell, it stops charging.
    set(&mut rig, 0, 0);
    rig.run(Duration::from_secs(3));
    assert!(rig.bms.status().rules[RuleId::CellImbalance.index()].active.is_none());
    set(&mut rig, 100, 60);
    rig.run(Duration::from_secs(3));
    assert_eq!(limits(&rig), ((0, true), (100, false)));
}

#[test]
fn raised_at_an_exact_tie_it_restricts_both_until_one_end_stands_out() {
    let mut rig = closed_rig();
    set(&mut rig, 80, 80);
    rig.run(Duration::from_secs(3));
    assert!(recommended_active(&rig));
    assert_eq!(limits(&rig), ((0, true), (0, true)));
    set(&mut rig, 80, 84);
    rig.run(Duration::from_secs(1));
    assert_eq!(limits(&rig), ((50, false), (0, true)), "the lowest cell stands out");
    set(&mut rig, 84, 80);
    rig.run(Duration::from_secs(2));
    assert_eq!(limits(&rig), ((50, false), (0, true)), "3.5 mV is inside the hysteresis");
}
