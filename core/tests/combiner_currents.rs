//! The combiner against packs that lie: implausible reports (dropped, reported once, never
//! averaged in) and misreported currents (cross-checked against the inverters' current), the
//! configurations a protocol cannot carry, and the counters.
//!
//! The property tests run a small plant: the bank's current is what the inverter draws (its
//! demand, inside the limit it was last sent), split among the connected packs in fixed
//! proportions; one pack reports its current wrongly (zero, halved, sign flipped).

use cellwarden_core::CellChemistry as Chemistry;
use cellwarden_core::combiner::{
    Combiner, CombinerAction, CombinerConfig, CombinerConfigError, CombinerInput, DropReason,
    Implausible, InverterProtocol, PackPhase, PackSlot,
};
use cellwarden_core::{
    BatteryView, DeciCelsius, Duration, Instant, MilliAmps, MilliVolts, Permille,
};
use proptest::prelude::*;

fn pack_view(limit_ma: i32, current_ma: i32) -> BatteryView {
    BatteryView {
        charge_voltage_mv: MilliVolts(53_200),
        discharge_voltage_mv: MilliVolts(45_000),
        charge_limit_ma: MilliAmps(limit_ma),
        discharge_limit_ma: MilliAmps(limit_ma),
        soc: Permille(500),
        soh: Permille(1000),
        voltage_mv: MilliVolts(52_000),
        current_ma: MilliAmps(current_ma),
        temperature_dc: DeciCelsius(200),
        charge_enable: true,
        discharge_enable: true,
        modules: 1,
        ..BatteryView::default()
    }
}

/// How the lying pack reports its current.
#[derive(Clone, Copy, Debug)]
enum Lie {
    Zero,
    Halved,
    Negated,
}

impl Lie {
    fn apply(self, ma: i64) -> i64 {
        match self {
            Lie::Zero => 0,
            Lie::Halved => ma / 2,
            Lie::Negated => -ma,
        }
    }
}

/// One pack of the plant: its own limit (both ways), capacity and resistance.
#[derive(Clone, Copy, Debug)]
struct Pack {
    limit_ma: i32,
    capacity_mah: u32,
    resistance_uohm: u32,
}

/// One run of the plant.
struct Run<'a> {
    packs: &'a [Pack],
    /// The parts (any positive numbers) the connected packs take of the bank's current.
    weights: &'a [u64],
    /// The pack that misreports, and how.
    liar: usize,
    lie: Lie,
    /// What the inverter would draw without limits, positive charging.
    demand_ma: i64,
    /// Excesses before this are not counted.
    from: Duration,
    /// Length of the run, s (simulated in 100 ms steps).
    secs: u64,
}

/// The worst excess of any connected pack's true current over its own limit, mA, over the
/// counted part of the run.
fn worst_excess_ma(run: &Run<'_>, config: CombinerConfig) -> i64 {
    let Run { packs, weights, liar, lie, demand_ma, from, secs } = *run;
    let n = packs.len();
    let mut c = Combiner::new(config, Instant::ZERO).expect("valid config");
    let mut relay = vec![false; n];
    let mut worst = i64::MIN;
    let mut bank_ma = 0i64;
    for step in 1..=secs * 10 {
        let now = Instant::from_millis(step * 100);
        // The true currents at the bank current the inverter draws now.
        let total: u64 = (0..n).filter(|&i| relay[i]).map(|i| weights[i]).sum();
        let truth: Vec<i64> =
            (0..n)
                .map(|i| {
                    if relay[i] && total > 0 {
                        bank_ma * weights[i] as i64 / total as i64
                    } else {
                        0
                    }
                })
                .collect();
        if now.saturating_since(Instant::ZERO) >= from {
            for i in (0..n).filter(|&i| relay[i]) {
                worst = worst.max(truth[i].abs() - i64::from(packs[i].limit_ma));
            }
        }
        let actual: i64 = truth.iter().sum();
        c.handle_input(
            now,
            CombinerInput::InverterCurrent {
                inverter: 0,
                sampled_at: now,
                ma: MilliAmps(actual as i32),
            },
        );
        // Each pack reports once a second, at its own instant.
        for i in 0..n {
            if (step + 2 * i as u64) % 10 == 0 {
                let reported = if i == liar { lie.apply(truth[i]) } else { truth[i] };
                let view = pack_view(packs[i].limit_ma, reported as i32);
                let input = CombinerInput::Pack {
                    pack: i as u8,
                    sampled_at: now,
                    view,
                    connected: relay[i],
                };
                c.handle_input(now, input);
            }
        }
        c.handle_timeout(now);
        while let Some(a) = c.poll_action() {
            match a {
                CombinerAction::Connect { pack } => relay[usize::from(pack)] = true,
                CombinerAction::Disconnect { pack, .. } => relay[usize::from(pack)] = false,
                _ => {}
            }
        }
        // The inverter follows its demand inside the limit it was sent.
        let view = c.view(0);
        bank_ma = if demand_ma >= 0 {
            demand_ma.min(i64::from(view.charge_limit_ma.0))
        } else {
            -(-demand_ma).min(i64::from(view.discharge_limit_ma.0))
        };
    }
    worst
}

fn config_for(packs: &[Pack]) -> CombinerConfig {
    let mut config = CombinerConfig::equal_packs(packs.len(), 1_000, MilliAmps(10_000_000));
    for (slot, p) in config.packs.iter_mut().zip(packs) {
        *slot = PackSlot {
            capacity_mah: p.capacity_mah,
            chemistry: Chemistry::Lfp,
            cells: 16,
            resistance_uohm: p.resistance_uohm,
        };
    }
    config
}

/// No tolerance in the cross-check, so every misreport is visible to it (the plant here has
/// no sensor error). With a tolerance, a misreport inside it goes undetected: see the bound in
/// the combiner's `measure.rs`.
fn exact(mut config: CombinerConfig) -> CombinerConfig {
    config.current_mismatch_ma = MilliAmps(0);
    config.current_mismatch = Permille(0);
    config
}

fn packs_strategy() -> impl Strategy<Value = Vec<Pack>> {
    proptest::collection::vec((20u32..300, 1_000u32..50_000, 1u32..=10), 2..=5).prop_map(|v| {
        v.into_iter()
            .map(|(ah, r, tenths)| Pack {
                // 0.1 C to 1 C: always inside what the plausibility check allows.
                limit_ma: (ah * 100 * tenths) as i32,
                capacity_mah: ah * 1_000,
                resistance_uohm: r,
            })
            .collect()
    })
}

fn lie_strategy() -> impl Strategy<Value = Lie> {
    prop_oneof![Just(Lie::Zero), Just(Lie::Halved), Just(Lie::Negated)]
}

/// The parts the prediction covers: `mix` thousandths of the capacity split, the rest of the
/// conductance split (in ppm of each, so exact enough).
fn predicted_weights(packs: &[Pack], mix: u64) -> Vec<u64> {
    let c_total: u64 = packs.iter().map(|p| u64::from(p.capacity_mah)).sum();
    let g: Vec<u64> =
        packs.iter().map(|p| 1_000_000_000_000 / u64::from(p.resistance_uohm)).collect();
    let g_total: u64 = g.iter().sum();
    packs
        .iter()
        .zip(&g)
        .map(|(p, g)| {
            let c = u64::from(p.capacity_mah) * 1_000_000 / c_total;
            let g = g * 1_000_000 / g_total;
            (mix * c + (1000 - mix) * g) / 1000
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The stated bound, part one: while the bank's current divides as capacity and resistance
    /// predict (anywhere between the two), no pack's true current ever exceeds its own limit,
    /// the joins and the first measurements included, whichever pack lies and however.
    #[test]
    fn within_the_prediction_no_pack_ever_exceeds_its_limit(
        packs in packs_strategy(),
        liar in any::<prop::sample::Index>(),
        lie in lie_strategy(),
        mix in 0u64..=1000,
        demand_a in -2_000i64..2_000,
    ) {
        let weights = predicted_weights(&packs, mix);
        let liar = liar.index(packs.len());
        let run = Run {
            packs: &packs, weights: &weights, liar, lie, demand_ma: demand_a * 1000,
            from: Duration::ZERO, secs: 30,
        };
        let worst = worst_excess_ma(&run, exact(config_for(&packs)));
        // Integer division in the plant rounds toward zero: at most 1 mA either way.
        prop_assert!(worst <= 1, "a pack exceeds its limit by {worst} mA");
    }

    /// Part two: however the current divides, once the inverter's current has been steady for
    /// the measurement rounds that follow the last join (here from 10 s on: the joins are over
    /// within 2 s, and every pack reports once a second), no pack's true
    /// current exceeds its own limit. The misreporting pack is caught by the cross-check.
    #[test]
    fn after_the_transient_no_pack_exceeds_its_limit_whatever_the_split(
        packs in packs_strategy(),
        weights in proptest::collection::vec(1u64..1000, 5),
        liar in any::<prop::sample::Index>(),
        lie in lie_strategy(),
        demand_a in prop_oneof![-2_000i64..-20, 20i64..2_000],
    ) {
        let liar = liar.index(packs.len());
        let run = Run {
            packs: &packs, weights: &weights, liar, lie, demand_ma: demand_a * 1000,
            from: Duration::from_secs(10), secs: 40,
        };
        let worst = worst_excess_ma(&run, exact(config_for(&packs)));
        prop_assert!(worst <= 1, "a pack exceeds its limit by {worst} mA");
    }
}

/// A case the property above found (seed-dependent before): pack 0 carries 89 % of the bank's
/// current, predicted 80 %, and reports half of it.
#[test]
fn a_halved_report_from_the_pack_that_carries_most_stays_inside_its_limit_after_the_transient() {
    let packs = [
        Pack { limit_ma: 51_300, capacity_mah: 171_000, resistance_uohm: 1_000 },
        Pack { limit_ma: 30_800, capacity_mah: 44_000, resistance_uohm: 1_088 },
    ];
    let run = Run {
        packs: &packs,
        weights: &[956, 121, 1, 1, 1],
        liar: 0,
        lie: Lie::Halved,
        demand_ma: -58_000,
        from: Duration::from_secs(10),
        secs: 40,
    };
    let worst = worst_excess_ma(&run, exact(config_for(&packs)));
    assert!(worst <= 1, "a pack exceeds its limit by {worst} mA");
}

#[test]
fn a_pack_that_reports_no_current_while_it_carries_most_stays_inside_its_limit() {
    // Three 100 A packs; pack 0 (150 Ah, lower resistance) carries 60 % and reports 0 A.
    let packs = [
        Pack { limit_ma: 100_000, capacity_mah: 150_000, resistance_uohm: 5_000 },
        Pack { limit_ma: 100_000, capacity_mah: 50_000, resistance_uohm: 15_000 },
        Pack { limit_ma: 100_000, capacity_mah: 50_000, resistance_uohm: 15_000 },
    ];
    let run = Run {
        packs: &packs,
        weights: &[600, 200, 200],
        liar: 0,
        lie: Lie::Zero,
        demand_ma: 250_000,
        from: Duration::ZERO,
        secs: 30,
    };
    let worst = worst_excess_ma(&run, config_for(&packs));
    // Trusting the reports would give pack 0 a share of 0: 180 A to the bank, 108 A to it.
    assert!(worst <= 0, "pack 0 over its limit by {worst} mA");
}

fn joined_rig(views: [BatteryView; 3]) -> (Combiner, Vec<CombinerAction>, Instant) {
    let config = CombinerConfig::equal_packs(3, 50_000, MilliAmps(500_000));
    let mut c = Combiner::new(config, Instant::ZERO).unwrap();
    let mut log = Vec::new();
    let mut now = Instant::ZERO;
    for _ in 0..3 {
        now += Duration::from_secs(1);
        for (i, v) in views.iter().enumerate() {
            let input =
                CombinerInput::Pack { pack: i as u8, sampled_at: now, view: *v, connected: true };
            c.handle_input(now, input);
        }
        while let Some(a) = c.poll_action() {
            log.push(a);
        }
    }
    (c, log, now)
}

#[test]
fn an_implausible_charge_voltage_limit_drops_the_pack_once_and_never_reaches_an_inverter() {
    let good = pack_view(25_000, 0);
    let (mut c, mut log, mut now) = joined_rig([good; 3]);
    assert!((0..3).all(|i| c.status().packs[i].phase == PackPhase::Joined));
    let bad = BatteryView { charge_voltage_mv: MilliVolts(500), ..good };
    log.clear();
    for _ in 0..10 {
        now += Duration::from_secs(1);
        for (i, v) in [good, bad, good].iter().enumerate() {
            let input =
                CombinerInput::Pack { pack: i as u8, sampled_at: now, view: *v, connected: i != 1 };
            c.handle_input(now, input);
        }
        while let Some(a) = c.poll_action() {
            log.push(a);
        }
        assert_eq!(c.view(0).charge_voltage_mv, MilliVolts(53_200));
        assert_eq!(c.status().combined.charge_voltage_mv, MilliVolts(53_200));
    }
    let reported = log.iter().filter(|a| matches!(a, CombinerAction::PackImplausible { .. }));
    assert_eq!(reported.count(), 1, "reported once: {log:?}");
    assert!(
        log.contains(&CombinerAction::PackImplausible {
            pack: 1,
            what: Implausible::ChargeVoltage
        })
    );
    assert!(
        log.contains(&CombinerAction::PackDropped { pack: 1, reason: DropReason::Implausible })
    );
    assert!(log.contains(&CombinerAction::Disconnect { pack: 1, reason: DropReason::Implausible }));
    assert_eq!(c.status().counters.implausible, 10, "every implausible report is counted");
    assert_eq!(c.status().packs[1].implausible, Some(Implausible::ChargeVoltage));
    // Two packs of 25 A: the combined view knows nothing of pack 1.
    assert_eq!(c.status().combined.modules, 2);

    // Plausible again: trusted after the rejoin time (30 s) of plausible reports, not before.
    let mut joined_at = None;
    for s in 1..=40u64 {
        now += Duration::from_secs(1);
        for i in 0..3u8 {
            let input = CombinerInput::Pack {
                pack: i,
                sampled_at: now,
                view: good,
                connected: i != 1 || c.status().packs[1].phase != PackPhase::Waiting,
            };
            c.handle_input(now, input);
        }
        while let Some(a) = c.poll_action() {
            if a == (CombinerAction::Connect { pack: 1 }) && joined_at.is_none() {
                joined_at = Some(s);
            }
        }
    }
    let s = joined_at.expect("asked to connect again");
    assert!((30..=32).contains(&s), "asked to connect after {s} s");
}

#[test]
fn a_pack_that_is_implausible_from_the_start_never_joins() {
    let good = pack_view(25_000, 0);
    let soc_lie = BatteryView { soc: Permille(1_500), ..good };
    let (c, log, _) = joined_rig([good, soc_lie, good]);
    assert_eq!(c.status().packs[1].phase, PackPhase::Waiting);
    assert!(!log.contains(&CombinerAction::PackJoined { pack: 1 }));
    assert!(log.contains(&CombinerAction::PackImplausible { pack: 1, what: Implausible::Soc }));
}

#[test]
fn a_pack_voltage_its_inverter_protocol_cannot_carry_is_refused() {
    let mut config = CombinerConfig::equal_packs(2, 100_000, MilliAmps(500_000));
    // 96 NCA cells reach 412.8 V; 0x356 carries at most 327.67 V.
    config.packs[1] = PackSlot {
        capacity_mah: 233_000,
        chemistry: Chemistry::Nca,
        cells: 96,
        resistance_uohm: 80_000,
    };
    assert_eq!(
        config.validate(),
        Err(CombinerConfigError::PackVoltageBeyondProtocol {
            pack: 1,
            inverter: 0,
            pack_max_mv: 412_800,
            allowed_max_mv: 327_670,
        })
    );
    // BYD HVS CAN carries it.
    config.inverters[0].protocol = InverterProtocol::BydCan;
    assert_eq!(config.validate(), Ok(()));
    // 76 NCA cells (326.8 V) still fit low-voltage CAN.
    config.inverters[0].protocol = InverterProtocol::LowVoltageCan;
    config.packs[1].cells = 76;
    assert_eq!(config.validate(), Ok(()));
    config.packs[1].cells = 0;
    assert_eq!(config.validate(), Err(CombinerConfigError::Cells { pack: 1, cells: 0 }));
    config.packs[1].cells = 16;
    config.packs[1].resistance_uohm = 0;
    assert_eq!(config.validate(), Err(CombinerConfigError::ZeroResistance { pack: 1 }));
}
