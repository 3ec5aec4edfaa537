//! Properties of the core over random readings, through the shared rig.
//!
//! 1. Reaction time: every maximum-tier rule that opens the contactors opens them no earlier than
//!    its debounce after the first violating sample, and no later than that debounce (adapter
//!    honours `poll_timeout`) or that debounce plus one control period (adapter that only runs at
//!    its control period).
//! 2. Values inside the operating window never raise a fault, and `Start` closes.

mod common;
mod props;

use cellwarden_core::{
    Action, Command, Config, DeciCelsius, Duration, Instant, LimitReason, MilliAmps, MilliVolts,
    RuleId, SequenceEvent, SequenceState, Tier,
};
use common::Rig;
use props::{proptest_config, tesla, tesla_with_feedback};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// -------------------------------------------------------------------------------------------------
// 1. Reaction time of every maximum tier that opens the contactors
// -------------------------------------------------------------------------------------------------

/// A violation of one rule's maximum tier, applied to the rig's plant.
#[derive(Clone, Copy, Debug)]
enum Violation {
    CellOverVoltage {
        cell: u16,
        mv: i32,
    },
    CellUnderVoltage {
        cell: u16,
        mv: i32,
    },
    PackOverVoltage {
        mv: i32,
    },
    PackUnderVoltage {
        mv: i32,
    },
    ChargeOverCurrent {
        ma: i32,
    },
    DischargeOverCurrent {
        ma: i32,
    },
    DischargeOverTemperature {
        sensor: u16,
        dc: i32,
    },
    DischargeUnderTemperature {
        sensor: u16,
        dc: i32,
    },
    /// While charging at `charge_ma`.
    ChargeOverTemperature {
        sensor: u16,
        dc: i32,
        charge_ma: i32,
    },
    /// While charging at `charge_ma`.
    ChargeUnderTemperature {
        sensor: u16,
        dc: i32,
        charge_ma: i32,
    },
}

/// Violations of the Tesla preset (12 cells, 4 sensors) that cross exactly one maximum tier.
fn violation() -> impl Strategy<Value = Violation> {
    let cell = 0u16..12;
    let sensor = 0u16..4;
    // Charging: above the idle current, below the charge over-current operating limit.
    let charging = 1_001..=100_000i32;
    prop_oneof![
        (cell.clone(), 4_251..=4_600i32)
            .prop_map(|(cell, mv)| Violation::CellOverVoltage { cell, mv }),
        (cell, 1_000..=2_799i32).prop_map(|(cell, mv)| Violation::CellUnderVoltage { cell, mv }),
        // Maximum 12 x 4 250 mV.
        (51_001..=60_000i32).prop_map(|mv| Violation::PackOverVoltage { mv }),
        // Minimum 12 x 2 800 mV.
        (20_000..=33_599i32).prop_map(|mv| Violation::PackUnderVoltage { mv }),
        (150_001..=400_000i32).prop_map(|ma| Violation::ChargeOverCurrent { ma }),
        (-800_000..=-300_001i32).prop_map(|ma| Violation::DischargeOverCurrent { ma }),
        (sensor.clone(), 601..=900i32)
            .prop_map(|(sensor, dc)| Violation::DischargeOverTemperature { sensor, dc }),
        (sensor.clone(), -600..=-251i32)
            .prop_map(|(sensor, dc)| Violation::DischargeUnderTemperature { sensor, dc }),
        // Above the charge maximum (500), not above the discharge maximum (600).
        (sensor.clone(), 501..=600i32, charging.clone()).prop_map(|(sensor, dc, charge_ma)| {
            Violation::ChargeOverTemperature { sensor, dc, charge_ma }
        }),
        // Below the charge maximum (0), not below the discharge maximum (-250).
        (sensor, -250..=-1i32, charging).prop_map(|(sensor, dc, charge_ma)| {
            Violation::ChargeUnderTemperature { sensor, dc, charge_ma }
        }),
    ]
}

impl Violation {
    fn rule(self) -> RuleId {
        match self {
            Violation::CellOverVoltage { .. } => RuleId::CellOverVoltage,
            Violation::CellUnderVoltage { .. } => RuleId::CellUnderVoltage,
            Violation::PackOverVoltage { .. } => RuleId::PackOverVoltage,
            Violation::PackUnderVoltage { .. } => RuleId::PackUnderVoltage,
            Violation::ChargeOverCurrent { .. } => RuleId::ChargeOverCurrent,
            Violation::DischargeOverCurrent { .. } => RuleId::DischargeOverCurrent,
            Violation::DischargeOverTemperature { .. } => RuleId::DischargeOverTemperature,
            Violation::DischargeUnderTemperature { .. } => RuleId::DischargeUnderTemperature,
            Violation::ChargeOverTemperature { .. } => RuleId::ChargeOverTemperature,
            Violation::ChargeUnderTemperature { .. } => RuleId::ChargeUnderTemperature,
        }
    }

    /// The rule's debounce, from the configuration.
    fn debounce(self, config: &Config) -> Duration {
        let p = &config.protection;
        let ms = match self.rule() {
            RuleId::CellOverVoltage => p.cell_over_voltage_mv.debounce_ms,
            RuleId::CellUnderVoltage => p.cell_under_voltage_mv.debounce_ms,
            RuleId::PackOverVoltage => p.pack_over_voltage_mv.debounce_ms,
            RuleId::PackUnderVoltage => p.pack_under_voltage_mv.debounce_ms,
            RuleId::ChargeOverCurrent => p.charge_over_current_ma.debounce_ms,
            RuleId::DischargeOverCurrent => p.discharge_over_current_ma.debounce_ms,
            RuleId::ChargeOverTemperature => p.charge_over_temperature_dc.debounce_ms,
            RuleId::ChargeUnderTemperature => p.charge_under_temperature_dc.debounce_ms,
            RuleId::DischargeOverTemperature => p.discharge_over_temperature_dc.debounce_ms,
            RuleId::DischargeUnderTemperature => p.discharge_under_temperature_dc.debounce_ms,
            other => unreachable!("{other:?} is not a threshold rule"),
        };
        Duration::from_millis(ms.into())
    }

    /// The load before the violation: charging for the charge-window rules, otherwise `idle`
    /// (a healthy current that does not count as charging).
    fn load_before(self, idle: i32) -> MilliAmps {
        match self {
            Violation::ChargeOverTemperature { charge_ma, .. }
            | Violation::ChargeUnderTemperature { charge_ma, .. } => MilliAmps(charge_ma),
            _ => MilliAmps(idle),
        }
    }

    fn apply(self, rig: &mut Rig) {
        let p = &mut rig.plant;
        match self {
            Violation::CellOverVoltage { cell, mv } | Violation::CellUnderVoltage { cell, mv } => {
                p.cells[usize::from(cell)] = MilliVolts(mv);
            }
            Violation::PackOverVoltage { mv } | Violation::PackUnderVoltage { mv } => {
                p.pack_override = Some(MilliVolts(mv));
            }
            Violation::ChargeOverCurrent { ma } | Violation::DischargeOverCurrent { ma } => {
                p.load = MilliAmps(ma);
            }
            Violation::DischargeOverTemperature { sensor, dc }
            | Violation::DischargeUnderTemperature { sensor, dc }
            | Violation::ChargeOverTemperature { sensor, dc, .. }
            | Violation::ChargeUnderTemperature { sensor, dc, .. } => {
                p.temps[usize::from(sensor)] = DeciCelsius(dc);
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct ReactionCase {
    violation: Violation,
    /// Control period: measurements are sampled and fed this often.
    period_ms: u64,
    /// Healthy running time between closing and the violation, in microseconds.
    lead_in_us: u64,
    /// A healthy current that does not count as charging.
    idle_ma: i32,
    feedback: bool,
}

fn reaction_case() -> impl Strategy<Value = ReactionCase> {
    (
        violation(),
        1u64..=100,
        prop_oneof![1 => Just(0u64), 4 => 0u64..=500_000],
        -150_000..=1_000i32,
        any::<bool>(),
    )
        .prop_map(|(violation, period_ms, lead_in_us, idle_ma, feedback)| ReactionCase {
            violation,
            period_ms,
            lead_in_us,
            idle_ma,
            feedback,
        })
}

/// A closed rig with the case's period and load.
fn closed_rig(case: &ReactionCase) -> Rig {
    let config = if case.feedback { tesla_with_feedback() } else { tesla() };
    let mut rig = Rig::new(config, 3_800);
    rig.period = Duration::from_millis(case.period_ms);
    rig.close();
    rig.plant.load = case.violation.load_before(case.idle_ma);
    rig
}

/// When a contactor was first commanded open after the log's first `logged` entries (the
/// violation's onset), and checks that it was the violated rule that opened them.
fn first_open(rig: &Rig, case: &ReactionCase, logged: usize) -> Result<Instant, TestCaseError> {
    let rule = case.violation.rule();
    let opened = rig.log[logged..].iter().find_map(|(at, a)| match a {
        Action::Contactor { closed: false, .. } => Some(*at),
        _ => None,
    });
    prop_assert!(
        opened.is_some(),
        "{rule:?} never opened the contactors: {:?}, latched {:?}",
        rig.state(),
        rig.bms.status().latched()
    );
    let opened = opened.unwrap_or(Instant::ZERO);
    prop_assert_eq!(rig.bms.status().latched(), Some(rule));
    let raised = rig.log.iter().any(|(at, a)| {
        *at == opened
            && matches!(a, Action::Fault(f)
                if f.rule == rule && f.tier == Tier::Maximum && f.at == opened)
    });
    prop_assert!(raised, "no {rule:?} maximum raised at {opened:?}");
    Ok(opened)
}

proptest! {
    #![proptest_config(proptest_config(256, file!()))]

    /// An adapter that honours `poll_timeout`: the contactors open exactly when the debounce,
    /// counted from the sample time of the first violating sample, has passed: not earlier, and
    /// (the documented guarantee) not later.
    #[test]
    fn max_tier_violation_opens_at_debounce_after_first_violating_sample_when_deadlines_honoured(
        case in reaction_case()
    ) {
        let mut rig = closed_rig(&case);
        rig.run(Duration::from_micros(case.lead_in_us));
        prop_assert_eq!(rig.state(), SequenceState::Closed);
        let debounce = case.violation.debounce(rig.bms.config());
        let t0 = rig.now;
        let logged = rig.log.len();
        case.violation.apply(&mut rig);
        // `run` samples and feeds at t0, t0 + period, ... and calls `handle_timeout` at every
        // deadline in between.
        rig.run(debounce + rig.period + rig.period);
        let opened = first_open(&rig, &case, logged)?;
        prop_assert!(opened >= t0 + debounce, "opened {:?} after onset, debounce {debounce:?}",
            opened - t0);
        prop_assert!(opened <= t0 + debounce, "opened {:?} after onset, debounce {debounce:?}",
            opened - t0);
        prop_assert_eq!(rig.applied(), [false, false, false]);
    }

    /// An adapter that ignores `poll_timeout` and only calls `handle_*` at its control period
    /// ticks: the contactors open at the first tick at or after the debounce, so within the
    /// debounce plus one period, and never before the debounce.
    #[test]
    fn max_tier_violation_opens_within_debounce_plus_one_period_when_only_ticking(
        case in reaction_case()
    ) {
        let mut rig = closed_rig(&case);
        let period = rig.period;
        // Samples at the tick, fed at the tick; nothing in between.
        let tick = |rig: &mut Rig| {
            rig.feed();
            rig.plant.step(period);
            rig.now += period;
        };
        for _ in 0..case.lead_in_us / 1_000 / case.period_ms {
            tick(&mut rig);
        }
        prop_assert_eq!(rig.state(), SequenceState::Closed);
        let debounce = case.violation.debounce(rig.bms.config());
        let t0 = rig.now;
        let logged = rig.log.len();
        case.violation.apply(&mut rig);
        while rig.now <= t0 + debounce + period {
            tick(&mut rig);
        }
        let opened = first_open(&rig, &case, logged)?;
        prop_assert!(opened >= t0 + debounce, "opened {:?} after onset, debounce {debounce:?}",
            opened - t0);
        prop_assert!(opened < t0 + debounce + period,
            "opened {:?} after onset, debounce {debounce:?}, period {period:?}", opened - t0);
        prop_assert_eq!(rig.applied(), [false, false, false]);
    }
}

// -------------------------------------------------------------------------------------------------
// 2. Values inside the operating window
// -------------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct HealthyCase {
    period_ms: u64,
    /// Mean cell voltage.
    cell_mv: i32,
    /// Mean temperature.
    temp_dc: i32,
    /// Load once closed.
    load_ma: i32,
    /// Pack voltage sensor minus the sum of the cells.
    pack_offset_mv: i32,
    /// `Start` after this many periods (0: before any data).
    start_after: u32,
    feedback: bool,
    /// Seed of the per-period noise.
    seed: u64,
}

fn healthy_case() -> impl Strategy<Value = HealthyCase> {
    (
        1u64..=100,
        3_300..=4_100i32,
        // The charge window's operating limits are 10.0 and 40.0 C.
        120..=380i32,
        // Below the charge (110 A) and discharge (220 A) operating limits.
        -200_000..=100_000i32,
        -50..=50i32,
        0u32..=20,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                period_ms,
                cell_mv,
                temp_dc,
                load_ma,
                pack_offset_mv,
                start_after,
                feedback,
                seed,
            )| {
                HealthyCase {
                    period_ms,
                    cell_mv,
                    temp_dc,
                    load_ma,
                    pack_offset_mv,
                    start_after,
                    feedback,
                    seed,
                }
            },
        )
}

/// splitmix64: per-period noise that proptest does not need to shrink value by value.
fn next_noise(state: &mut u64, amplitude: i32) -> i32 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let span = u64::from(amplitude.unsigned_abs()) * 2 + 1;
    (z % span) as i32 - amplitude
}

/// New healthy readings: cells within +-10 mV of the mean (imbalance stays far below its 50 mV
/// operating limit), temperatures within +-20 dC, the pack sensor within 50 mV of the sum.
fn wiggle(rig: &mut Rig, case: &HealthyCase, noise: &mut u64) {
    let p = &mut rig.plant;
    for cell in &mut p.cells {
        *cell = MilliVolts(case.cell_mv + next_noise(noise, 10));
    }
    for t in &mut p.temps {
        *t = DeciCelsius(case.temp_dc + next_noise(noise, 20));
    }
    let sum: i32 = p.cells.iter().map(|c| c.0).sum();
    p.pack_override = Some(MilliVolts(sum + case.pack_offset_mv));
}

proptest! {
    #![proptest_config(proptest_config(256, file!()))]

    /// Readings that stay inside every operating limit never raise a fault of any tier, `Start`
    /// closes within the precharge timeout, and the limits are then the configured maxima.
    #[test]
    fn values_inside_the_operating_window_never_fault_and_start_closes(case in healthy_case()) {
        let config = if case.feedback { tesla_with_feedback() } else { tesla() };
        let precharge_timeout = Duration::from_millis(config.contactors.precharge_timeout_ms.into());
        let mut rig = Rig::new(config.clone(), case.cell_mv);
        rig.period = Duration::from_millis(case.period_ms);
        let mut noise = case.seed;
        if case.start_after == 0 {
            rig.command(Command::Start);
        }
        for _ in 0..case.start_after {
            wiggle(&mut rig, &case, &mut noise);
            rig.run(rig.period);
        }
        if case.start_after > 0 {
            rig.command(Command::Start);
        }
        let started = rig.now;
        while rig.state() != SequenceState::Closed && rig.now < started + precharge_timeout {
            wiggle(&mut rig, &case, &mut noise);
            rig.run(rig.period);
        }
        prop_assert_eq!(rig.state(), SequenceState::Closed, "not closed {:?} after Start",
            rig.now - started);
        rig.plant.load = MilliAmps(case.load_ma);
        let closed_at = rig.now;
        while rig.now < closed_at + Duration::from_millis(500) {
            wiggle(&mut rig, &case, &mut noise);
            rig.run(rig.period);
        }
        prop_assert_eq!(rig.state(), SequenceState::Closed);
        prop_assert_eq!(rig.applied(), [true, false, true]);
        let faults: Vec<_> =
            rig.log.iter().filter(|(_, a)| matches!(a, Action::Fault(_))).collect();
        prop_assert!(faults.is_empty(), "faults on healthy values: {faults:?}");
        prop_assert!(
            !rig.sequence_events()
                .iter()
                .any(|e| matches!(e, SequenceEvent::PrechargeFailed { .. })),
            "precharge failed: {:?}", rig.sequence_events()
        );
        // Protection leaves the configured maxima; only the charge controller's tables
        // (which begin to taper inside the operating window) may lower them.
        let status = rig.bms.status();
        let (limits, charge) = (status.limits, status.charge.expect("the preset has charge control"));
        let allowed = |max: MilliAmps, by_charge: MilliAmps| MilliAmps(max.0.min(by_charge.0));
        prop_assert_eq!(limits.charge_ma, allowed(config.charge_current_max_ma, charge.charge_limit_ma));
        prop_assert_eq!(
            limits.discharge_ma,
            allowed(config.discharge_current_max_ma, charge.discharge_limit_ma)
        );
        for reason in [limits.charge_reason, limits.discharge_reason] {
            prop_assert!(
                matches!(reason, LimitReason::ConfiguredMaximum | LimitReason::Charge(_)),
                "a protection rule binds a limit: {reason:?}"
            );
        }
    }
}
