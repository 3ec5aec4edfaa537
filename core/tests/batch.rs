//! `handle_inputs` (one evaluation per measurement cycle) against `handle_input` (one per
//! reading): the same story must give the same decisions at the same times.

use cellwarden_core::{
    Action, Bms, Command, Config, DeciCelsius, Input, Instant, MilliAmps, MilliVolts, RuleId,
    SequenceState,
};

const CELLS: usize = 16;

/// What a 16S pack reports at `t_ms`: charging at 40 A from 10 s, the fullest cell rising
/// 1 mV per 100 ms from 30 s until the over-voltage maximum (3750 mV) trips; the bus follows
/// the pack once the precharge relay or the positive contactor is closed.
struct Story {
    bus_mv: i32,
}

impl Story {
    fn cells(&self, t_ms: u64) -> [MilliVolts; CELLS] {
        let mut cells = [MilliVolts(3_300); CELLS];
        let rise = t_ms.saturating_sub(30_000) / 100;
        cells[7] = MilliVolts(3_300 + i32::try_from(rise).unwrap_or(i32::MAX).min(1_000));
        cells
    }

    fn current(t_ms: u64, closed: bool) -> MilliAmps {
        MilliAmps(if closed && t_ms >= 10_000 { 40_000 } else { 0 })
    }
}

/// Runs the story for 90 s with a measurement every 100 ms, either batched or one call per
/// reading, and returns every action with its time plus the final state.
fn run(batched: bool) -> (Vec<(u64, Action)>, SequenceState, Option<RuleId>) {
    let mut bms = Bms::new(Config::lfp_16s(100), Instant::ZERO).expect("preset is valid");
    let mut story = Story { bus_mv: 0 };
    let mut actions = Vec::new();
    let mut precharge_or_main = false;
    let mut closed = false;
    bms.handle_input(Instant::ZERO, Input::Command(Command::Start));
    let mut t_ms = 0;
    while t_ms <= 90_000 {
        let now = Instant::from_millis(t_ms);
        let cells = story.cells(t_ms);
        let pack_mv: i32 = cells.iter().map(|c| c.0).sum();
        story.bus_mv = if precharge_or_main { pack_mv } else { 0 };
        let temps = [DeciCelsius(250); 4];
        let inputs = [
            Input::CellVoltages { sampled_at: now, first: 0, mv: &cells },
            Input::Temperatures { sampled_at: now, first: 0, dc: &temps },
            Input::Current { sampled_at: now, ma: Story::current(t_ms, closed) },
            Input::PackVoltage { sampled_at: now, mv: MilliVolts(pack_mv) },
            Input::BusVoltage { sampled_at: now, mv: MilliVolts(story.bus_mv) },
        ];
        if batched {
            bms.handle_inputs(now, &inputs);
        } else {
            for input in inputs {
                bms.handle_input(now, input);
            }
        }
        if bms.poll_timeout().is_some_and(|d| d <= now) {
            bms.handle_timeout(now);
        }
        while let Some(action) = bms.poll_action() {
            if let Action::Contactor { .. } = action {
                let c = bms.status().contactors;
                precharge_or_main = c[1].commanded_closed || c[2].commanded_closed;
                closed = c[0].commanded_closed && c[2].commanded_closed;
            }
            actions.push((t_ms, action));
        }
        t_ms += 100;
    }
    let status = bms.status();
    (actions, status.sequence, status.latched())
}

#[test]
fn a_batched_cycle_decides_what_single_inputs_decide() {
    let (single, single_state, single_latched) = run(false);
    let (batched, batched_state, batched_latched) = run(true);
    // Every decision but the charge voltage limit is the same. The limit is not: one call per
    // reading evaluates the charge controller with the new cells against the previous pack
    // voltage, its limit falls a millivolt for that moment, and its rate-limited ramp takes
    // time to climb back. The two stay within a millivolt per cell of each other.
    let (single_cvl, single) = split_voltage_limits(single);
    let (batched_cvl, batched) = split_voltage_limits(batched);
    assert_eq!(batched, single);
    let cvl_at =
        |log: &[(u64, i32)], t: u64| log.iter().rev().find(|(at, _)| *at <= t).map(|v| v.1);
    for t in (0..=90_000).step_by(100) {
        let (a, b) = (cvl_at(&single_cvl, t), cvl_at(&batched_cvl, t));
        let (a, b) = (a.expect("sent in the first drain"), b.expect("sent in the first drain"));
        assert!((a - b).abs() <= CELLS as i32, "at {t} ms: {a} mV one by one, {b} mV batched");
    }
    assert_eq!((batched_state, batched_latched), (single_state, single_latched));
    // The story is not vacuous: the pack closed, and the over-voltage trip opened it.
    assert!(single.iter().any(|(_, a)| matches!(a, Action::Contactor { closed: true, .. })));
    assert_eq!(single_latched, Some(RuleId::CellOverVoltage));
    assert_eq!(single_state, SequenceState::Open);
}

/// Actions with the time they were drained, ms.
type Log = Vec<(u64, Action)>;

/// The charge voltage limits sent (time, mV), and every other action.
fn split_voltage_limits(actions: Log) -> (Vec<(u64, i32)>, Log) {
    let mut cvl = Vec::new();
    let mut rest = Vec::new();
    for (t, action) in actions {
        match action {
            Action::VoltageLimits(v) => cvl.push((t, v.charge_mv.0)),
            other => rest.push((t, other)),
        }
    }
    (cvl, rest)
}
