//! Opening the contactors through the public API: `Stop` while closing or in a retry wait, the
//! graceful stop (zero limits, then open below the break current or at the deadline), the
//! emergency open on a maximum-tier fault or `EmergencyStop`, and the order in which the
//! contactors open. Asserted on the contactor commands (with the instant each was drained), the
//! sequence and fault events, the current limits and `status()`.
//!
//! Every run goes through the checked driver in `sequence/mod.rs`, with simulated time and the
//! Tesla preset (4 modules, 24 cells at 3.8 V = 91.2 V).

mod common;
mod sequence;

use cellwarden_core::{
    Action, Command, ContactorId, Duration, FaultChange, LimitReason, Location, MilliAmps,
    MilliVolts, OpenKind, RuleId, SequenceEvent, SequenceState, Tier,
};
use common::Rig;
use sequence::{
    NEG, POS, PRE, before, cfg_ms, close, command, contactor_config, events, faults, limits,
    maximum, moves, ms, restart_and_close, run, run_to, run_until, sequence, slow_precharge, start,
    status, tesla_maxima, tesla_with, zero_limits,
};

// ------------------------------------------------------------------------------------------------
// Stop while closing
// ------------------------------------------------------------------------------------------------

/// Starts, runs until `stop_when` holds, sends `Stop`, and checks the abort.
fn stop_while(stop_when: impl Fn(SequenceState) -> bool, open_now: &[ContactorId]) {
    let mut rig = Rig::tesla();
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(5), "in the state to stop in", |r| {
        stop_when(r.state())
    });
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop);
    let expected: Vec<_> = open_now.iter().map(|c| (ts, *c, false)).collect();
    assert_eq!(moves(&rig, mark), expected);
    assert_eq!(events(&rig, mark), [(ts, SequenceEvent::Opened { how: OpenKind::Aborted })]);
    assert_eq!(rig.state(), SequenceState::Open);
    assert!(!status(&rig).close_requested);
    assert_eq!(rig.applied(), [false; 3]);
    run(&mut rig, Duration::from_secs(20));
    assert!(moves(&rig, mark).len() == open_now.len(), "{:?}", moves(&rig, mark));
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

#[test]
fn stop_while_closing_the_negative_aborts() {
    stop_while(|s| matches!(s, SequenceState::ClosingNegative { .. }), &[NEG]);
}

#[test]
fn stop_during_precharge_aborts() {
    stop_while(|s| matches!(s, SequenceState::Precharging { .. }), &[PRE, NEG]);
}

#[test]
fn stop_while_closing_the_positive_aborts() {
    stop_while(|s| matches!(s, SequenceState::ClosingPositive { .. }), &[POS, PRE, NEG]);
}

#[test]
fn stop_during_retry_wait_cancels_the_next_attempt() {
    let mut rig = tesla_with(slow_precharge);
    rig.plant.precharge_tau = Duration::from_secs(5);
    let mark = rig.log.len();
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(5), "waiting to retry", |r| {
        matches!(r.state(), SequenceState::RetryWait { .. })
    });
    let m = moves(&rig, mark).len();
    let e = sequence(&rig, mark).len();
    command(&mut rig, Command::Stop);
    assert_eq!(rig.state(), SequenceState::Open);
    assert!(!status(&rig).close_requested);
    run(&mut rig, Duration::from_secs(20));
    assert_eq!(moves(&rig, mark).len(), m, "{:?}", moves(&rig, mark));
    assert_eq!(sequence(&rig, mark).len(), e, "{:?}", sequence(&rig, mark));
    assert!(faults(&rig, 0).is_empty());
}

// ------------------------------------------------------------------------------------------------
// Graceful open
// ------------------------------------------------------------------------------------------------

/// Closed with 50 A of discharge flowing; returns the rig.
fn closed_under_load() -> Rig {
    let mut rig = Rig::tesla();
    close(&mut rig);
    rig.plant.load = MilliAmps(-50_000);
    run(&mut rig, Duration::from_secs(1));
    assert_eq!(status(&rig).limits, tesla_maxima());
    rig
}

#[test]
fn graceful_stop_asks_for_zero_and_opens_once_below_the_break_current() {
    let mut rig = closed_under_load();
    let c = contactor_config(&rig);
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop);
    assert_eq!(
        rig.log[mark..],
        [
            (ts, Action::Limits(zero_limits(LimitReason::Stopping))),
            (ts, Action::Sequence(SequenceEvent::Stopping)),
        ]
    );
    assert_eq!(rig.state(), SequenceState::Stopping { since: ts });
    assert!(!status(&rig).close_requested);

    // Contactors stay closed while the current flows, even just above the break current.
    run(&mut rig, Duration::from_secs(2));
    rig.plant.load = MilliAmps(-(c.break_current_ma.0 + 100));
    run(&mut rig, Duration::from_secs(2));
    assert_eq!(rig.applied(), [true, false, true]);
    assert_eq!(rig.state(), SequenceState::Stopping { since: ts });
    assert!(moves(&rig, mark).is_empty());

    // The inverter follows the zero limit: the next sample below the break current opens.
    // The positive opens first; the negative once the link has decayed out of the band.
    rig.plant.load = MilliAmps(-1_500);
    let tl = rig.now;
    run(&mut rig, ms(10));
    assert_eq!(moves(&rig, mark), [(tl, POS, false)]);
    assert_eq!(rig.state(), SequenceState::WeldCheck { since: tl, how: OpenKind::Graceful });
    run(&mut rig, ms(100));
    let tn = moves(&rig, mark)[1].0;
    assert_eq!(moves(&rig, mark), [(tl, POS, false), (tn, NEG, false)]);
    assert!(tn > tl && tn < tl + cfg_ms(c.link_decay_ms));
    assert_eq!(
        events(&rig, mark),
        [(ts, SequenceEvent::Stopping), (tn, SequenceEvent::Opened { how: OpenKind::Graceful })]
    );
    assert_eq!(
        limits(&rig, mark),
        [(ts, zero_limits(LimitReason::Stopping)), (tl, zero_limits(LimitReason::ContactorsOpen))]
    );
    assert!(tl < ts + cfg_ms(c.graceful_open_timeout_ms));
    assert_eq!(rig.state(), SequenceState::Open);
    run(&mut rig, Duration::from_secs(10));
    assert_eq!(moves(&rig, mark).len(), 2);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

#[test]
fn graceful_stop_opens_at_the_deadline_when_the_current_never_falls() {
    let mut rig = closed_under_load();
    let c = contactor_config(&rig);
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop);
    let deadline = ts + cfg_ms(c.graceful_open_timeout_ms);
    run_to(&mut rig, before(deadline, ms(1)));
    assert_eq!(rig.state(), SequenceState::Stopping { since: ts });
    assert_eq!(status(&rig).limits, zero_limits(LimitReason::Stopping));
    run(&mut rig, Duration::from_secs(2));
    let tn = moves(&rig, mark)[1].0;
    assert_eq!(moves(&rig, mark), [(deadline, POS, false), (tn, NEG, false)]);
    assert!(tn > deadline && tn < deadline + cfg_ms(c.link_decay_ms));
    assert_eq!(
        events(&rig, mark),
        [
            (ts, SequenceEvent::Stopping),
            (
                tn,
                SequenceEvent::Opened {
                    how: OpenKind::GracefulDeadline { current_ma: Some(MilliAmps(-50_000)) }
                }
            ),
        ]
    );
    assert_eq!(rig.state(), SequenceState::Open);
}

#[test]
fn start_during_a_graceful_stop_cancels_it_without_moving_a_contactor() {
    let mut rig = closed_under_load();
    let mark = rig.log.len();
    command(&mut rig, Command::Stop);
    run(&mut rig, Duration::from_secs(1));
    let tc = rig.now;
    command(&mut rig, Command::Start);
    assert_eq!(rig.state(), SequenceState::Closed);
    assert!(status(&rig).close_requested);
    assert_eq!(status(&rig).limits, tesla_maxima());
    // The load falls below the break current: nothing opens any more.
    rig.plant.load = MilliAmps(0);
    run(&mut rig, Duration::from_secs(10));
    assert!(moves(&rig, mark).is_empty(), "{:?}", moves(&rig, mark));
    assert_eq!(rig.applied(), [true, false, true]);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::Stopping, SequenceEvent::Closed],
        "cancelled at {tc:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// Emergency open
// ------------------------------------------------------------------------------------------------

#[test]
fn maximum_safety_fault_opens_at_once_without_waiting_for_the_current() {
    let mut rig = closed_under_load();
    let debounce = cfg_ms(rig.bms.config().protection.cell_over_voltage_mv.debounce_ms);
    let mark = rig.log.len();
    rig.plant.cells[3] = MilliVolts(4_300); // above the 4 250 mV maximum
    let tv = rig.now;
    let trip = tv + debounce;
    // Just before the trip: still closed, the full load still flowing.
    run_to(&mut rig, before(trip, ms(1)));
    assert_eq!(rig.state(), SequenceState::Closed);
    assert_eq!(status(&rig).current_ma, Some(MilliAmps(-50_000)));
    run(&mut rig, Duration::from_secs(1));
    assert_eq!(moves(&rig, mark), [(trip, POS, false), (trip, NEG, false)]);
    assert_eq!(
        events(&rig, mark),
        [(
            trip,
            SequenceEvent::Opened { how: OpenKind::Emergency { rule: RuleId::CellOverVoltage } }
        )]
    );
    let over: Vec<_> = faults(&rig, mark)
        .into_iter()
        .filter(|f| f.rule == RuleId::CellOverVoltage && f.tier == Tier::Maximum)
        .collect();
    assert_eq!(
        over,
        [maximum(trip, RuleId::CellOverVoltage, FaultChange::Raised, Location::Cell(3), 4_300)]
    );
    let s = status(&rig);
    assert_eq!(s.sequence, SequenceState::Open);
    assert!(!s.close_requested, "the close request is cleared");
    assert_eq!(s.latched(), Some(RuleId::CellOverVoltage));
    // Both limits zero, bound by the over-voltage rule (its recommended tier already binds
    // charging; the maximum tier binds both directions).
    assert!(matches!(
        s.limits.charge_reason,
        LimitReason::Rule { rule: RuleId::CellOverVoltage, .. }
    ));
    assert!(matches!(
        s.limits.discharge_reason,
        LimitReason::Rule { rule: RuleId::CellOverVoltage, tier: Tier::Maximum, .. }
    ));
    assert_eq!((s.limits.charge_ma, s.limits.discharge_ma), (MilliAmps(0), MilliAmps(0)));

    // Back in range and cleared: nothing closes until a new Start.
    rig.plant.cells[3] = MilliVolts(3_800);
    run(&mut rig, ms(100));
    let mark = rig.log.len();
    command(&mut rig, Command::ClearFaults);
    assert_eq!(status(&rig).latched(), None);
    run(&mut rig, Duration::from_secs(5));
    assert!(moves(&rig, mark).is_empty(), "{:?}", moves(&rig, mark));
    restart_and_close(&mut rig);
}

#[test]
fn maximum_safety_fault_during_graceful_stop_opens_before_the_deadline() {
    let mut rig = closed_under_load();
    let debounce = cfg_ms(rig.bms.config().protection.cell_over_voltage_mv.debounce_ms);
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop);
    run(&mut rig, Duration::from_secs(1));
    rig.plant.cells[0] = MilliVolts(4_300);
    let tv = rig.now;
    run(&mut rig, Duration::from_secs(1));
    let trip = tv + debounce;
    assert_eq!(moves(&rig, mark), [(trip, POS, false), (trip, NEG, false)]);
    assert_eq!(
        events(&rig, mark),
        [
            (ts, SequenceEvent::Stopping),
            (
                trip,
                SequenceEvent::Opened {
                    how: OpenKind::Emergency { rule: RuleId::CellOverVoltage }
                }
            ),
        ]
    );
}

#[test]
fn maximum_safety_fault_during_precharge_opens_everything() {
    let mut rig = Rig::tesla();
    let debounce = cfg_ms(rig.bms.config().protection.cell_over_voltage_mv.debounce_ms);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    let settle = cfg_ms(contactor_config(&rig).close_settle_ms);
    run_to(&mut rig, t0 + settle + ms(50));
    rig.plant.cells[0] = MilliVolts(4_300);
    let tv = rig.now;
    run(&mut rig, Duration::from_secs(1));
    let trip = tv + debounce;
    // 200 ms is shorter than the precharge of this plant; make sure it was still running.
    assert_eq!(
        moves(&rig, mark),
        [(t0, NEG, true), (t0 + settle, PRE, true), (trip, PRE, false), (trip, NEG, false)]
    );
    assert_eq!(
        sequence(&rig, mark),
        [
            SequenceEvent::PrechargeStarted { attempt: 1 },
            SequenceEvent::Opened { how: OpenKind::Emergency { rule: RuleId::CellOverVoltage } },
        ]
    );
    assert!(!status(&rig).close_requested);
}

#[test]
fn emergency_stop_opens_at_once_and_forgets_the_request() {
    let mut rig = closed_under_load();
    let mark = rig.log.len();
    let te = rig.now;
    command(&mut rig, Command::EmergencyStop);
    assert_eq!(moves(&rig, mark), [(te, POS, false), (te, NEG, false)]);
    assert_eq!(events(&rig, mark), [(te, SequenceEvent::Opened { how: OpenKind::EmergencyStop })]);
    assert_eq!(limits(&rig, mark), [(te, zero_limits(LimitReason::ContactorsOpen))]);
    assert!(!status(&rig).close_requested);
    assert_eq!(status(&rig).latched(), None, "an emergency stop latches nothing");
    run(&mut rig, Duration::from_secs(10));
    assert_eq!(moves(&rig, mark).len(), 2);

    // Already open: nothing to report.
    let mark = rig.log.len();
    command(&mut rig, Command::EmergencyStop);
    assert!(rig.log[mark..].is_empty(), "{:?}", &rig.log[mark..]);

    // During precharge it opens the precharge relay and the negative.
    rig.plant.bus = MilliVolts(0);
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(2), "precharging", |r| {
        matches!(r.state(), SequenceState::Precharging { .. })
    });
    let mark = rig.log.len();
    let te = rig.now;
    command(&mut rig, Command::EmergencyStop);
    assert_eq!(moves(&rig, mark), [(te, PRE, false), (te, NEG, false)]);
    assert_eq!(sequence(&rig, mark), [SequenceEvent::Opened { how: OpenKind::EmergencyStop }]);
    assert_eq!(rig.state(), SequenceState::Open);
    run(&mut rig, Duration::from_secs(10));
    assert_eq!(moves(&rig, mark).len(), 2);
}

// ------------------------------------------------------------------------------------------------
// Opening order
// ------------------------------------------------------------------------------------------------

#[test]
fn positive_opens_before_negative_at_once_in_an_emergency_and_staged_at_a_stop() {
    // Every way of opening from Closed: the emergencies in one drain, the graceful stop staged
    // (the negative only once the link has decayed).
    type Opener = (fn(&mut Rig), bool);
    let openers: [Opener; 3] = [
        (|r| command(r, Command::EmergencyStop), false),
        (
            |r| {
                r.plant.load = MilliAmps(0);
                run(r, ms(10)); // measured: below the break current
                command(r, Command::Stop);
                run(r, ms(100));
            },
            true,
        ),
        (
            |r| {
                r.plant.cells[1] = MilliVolts(4_300);
                run(r, Duration::from_secs(1));
            },
            false,
        ),
    ];
    for (i, (open, staged)) in openers.into_iter().enumerate() {
        let mut rig = closed_under_load();
        let mark = rig.log.len();
        open(&mut rig);
        let m = moves(&rig, mark);
        assert_eq!(m.len(), 2, "opener {i}: {m:?}");
        assert_eq!(m[0].0 < m[1].0, staged, "opener {i}: {m:?}");
        assert_eq!((m[0].1, m[0].2, m[1].1, m[1].2), (POS, false, NEG, false));
    }
}
