//! Precharge failures through the public API: too slow, no voltage rise, a short, the retries
//! in between and the latched fault that ends them, recovery after `ClearFaults`, and a retry
//! held back by feedback that disagrees. Asserted on the contactor commands (with the instant
//! each was drained), the sequence and fault events and `status()`.
//!
//! Every run goes through the checked driver in `sequence/mod.rs`, with simulated time and the
//! Tesla preset (4 modules, 24 cells at 3.8 V = 91.2 V).

mod common;
mod sequence;

use cellwarden_core::{
    Blocker, Command, Duration, FaultChange, Instant, LimitReason, Location, MilliVolts,
    PrechargeFailure, RuleId, SequenceEvent, SequenceState,
};
use common::Rig;
use sequence::{
    NEG, POS, PRE, all_feedback, assert_cleared, before, cfg_ms, command, contactor_config,
    event_at, events, failed_attempt_moves, faults, maximum, moves, ms, restart_and_close, run,
    run_to, run_until, sequence, slow_precharge, start, status, tesla_maxima, tesla_with,
    zero_limits,
};

// ------------------------------------------------------------------------------------------------
// Precharge failures and retries
// ------------------------------------------------------------------------------------------------

#[test]
fn too_slow_precharge_retries_then_latches_and_blocks_start_until_cleared() {
    let mut rig = tesla_with(slow_precharge);
    rig.plant.precharge_tau = Duration::from_secs(5);
    let c = contactor_config(&rig);
    assert_eq!(c.precharge_attempts, 3);
    let settle = cfg_ms(c.close_settle_ms);
    let timeout = cfg_ms(c.precharge_timeout_ms);
    let delay = cfg_ms(c.precharge_retry_delay_ms);
    let mark = rig.log.len();
    let t0 = start(&mut rig);

    let mut expected_moves = Vec::new();
    let mut expected_events = Vec::new();
    let mut begin = t0;
    for attempt in 1..=3u8 {
        let failed = begin + settle + timeout;
        expected_moves.extend(failed_attempt_moves(begin, settle, failed));
        let will_retry = attempt < 3;
        expected_events.extend([
            (begin + settle, SequenceEvent::PrechargeStarted { attempt }),
            (
                failed,
                SequenceEvent::PrechargeFailed {
                    cause: PrechargeFailure::TooSlow,
                    attempt,
                    will_retry,
                },
            ),
        ]);
        // Just before the deadline the attempt is still running.
        run_to(&mut rig, before(failed, ms(10)));
        assert_eq!(rig.state(), SequenceState::Precharging { since: begin + settle, attempt });
        run_to(&mut rig, failed + ms(10));
        if will_retry {
            let until = failed + delay;
            assert_eq!(rig.state(), SequenceState::RetryWait { until, attempt: attempt + 1 });
            assert_eq!(rig.applied(), [false; 3]);
            assert_eq!(status(&rig).limits, zero_limits(LimitReason::ContactorsOpen));
            assert_eq!(status(&rig).last_precharge_failure, Some(PrechargeFailure::TooSlow));
            assert!(status(&rig).close_requested);
            run_to(&mut rig, before(until, ms(10)));
            assert_eq!(rig.applied(), [false; 3], "all open for the whole retry delay");
            assert_eq!(rig.state(), SequenceState::RetryWait { until, attempt: attempt + 1 });
            begin = until;
        }
    }
    let failed = begin + settle + timeout;
    assert_eq!(moves(&rig, mark), expected_moves);
    assert_eq!(events(&rig, mark), expected_events);
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            failed,
            RuleId::PrechargeFailed,
            FaultChange::Raised,
            Location::Pack,
            PrechargeFailure::TooSlow as i32
        )]
    );
    let s = status(&rig);
    assert_eq!(s.sequence, SequenceState::Open);
    assert_eq!(s.latched(), Some(RuleId::PrechargeFailed));
    assert!(!s.close_requested);
    assert_eq!(s.close_blocker, Some(Blocker::Fault(RuleId::PrechargeFailed)));
    assert_eq!(s.last_precharge_failure, Some(PrechargeFailure::TooSlow));

    // Nothing happens by itself, and `Start` is refused while latched.
    run(&mut rig, Duration::from_secs(20));
    let mark = rig.log.len();
    start(&mut rig);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::Fault(RuleId::PrechargeFailed) }]
    );
    assert!(!status(&rig).close_requested, "a latched fault cancels the request");
    run(&mut rig, Duration::from_secs(10));
    assert!(moves(&rig, mark).is_empty(), "{:?}", moves(&rig, mark));

    // ClearFaults clears it; a fresh Start (the plant repaired) goes through a full precharge
    // with attempts counted from 1 again.
    let mark = rig.log.len();
    command(&mut rig, Command::ClearFaults);
    assert_cleared(
        &rig,
        mark,
        RuleId::PrechargeFailed,
        Location::Pack,
        PrechargeFailure::TooSlow as i32,
    );
    assert_eq!(status(&rig).latched(), None);
    run(&mut rig, Duration::from_secs(1));
    assert!(moves(&rig, mark).is_empty(), "clearing a fault does not start anything");
    rig.plant.precharge_tau = ms(100);
    restart_and_close(&mut rig);
}

#[test]
fn short_above_the_short_current_aborts_at_once_and_is_never_retried() {
    let mut rig = Rig::tesla();
    rig.plant.bus_short = true;
    rig.plant.precharge_ohms = 5; // 91.2 V / 5 ohm = 18 A, above the 15 A short limit
    let c = contactor_config(&rig);
    let settle = cfg_ms(c.close_settle_ms);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run(&mut rig, Duration::from_secs(30));
    // The precharge relay closes with the bus sample at the end of the settle time; the sample
    // of that cycle was taken before it closed, so the short shows one control period later.
    let tp = t0 + settle;
    let t = tp + rig.period;
    assert_eq!(
        moves(&rig, mark),
        [(t0, NEG, true), (tp, PRE, true), (t, PRE, false), (t, NEG, false)]
    );
    assert_eq!(
        sequence(&rig, mark),
        [
            SequenceEvent::PrechargeStarted { attempt: 1 },
            SequenceEvent::PrechargeFailed {
                cause: PrechargeFailure::Short,
                attempt: 1,
                will_retry: false
            },
        ]
    );
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            t,
            RuleId::PrechargeFailed,
            FaultChange::Raised,
            Location::Pack,
            PrechargeFailure::Short as i32
        )]
    );
    assert_eq!(status(&rig).latched(), Some(RuleId::PrechargeFailed));
    assert_eq!(status(&rig).last_precharge_failure, Some(PrechargeFailure::Short));
    assert!(!status(&rig).close_requested);
}

#[test]
fn current_without_voltage_rise_is_a_short_at_the_rise_check() {
    let mut rig = Rig::tesla();
    rig.plant.bus_short = true;
    rig.plant.precharge_ohms = 50; // 1.8 A: above the done current, below the short current
    let c = contactor_config(&rig);
    let current = rig.plant.pack_mv().0 / 50;
    assert!(current >= c.precharge_done_current_ma.0 && current <= c.precharge_short_current_ma.0);
    let settle = cfg_ms(c.close_settle_ms);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    let check = t0 + settle + cfg_ms(c.precharge_rise_check_ms);
    run(&mut rig, Duration::from_secs(30));
    assert_eq!(
        moves(&rig, mark),
        [(t0, NEG, true), (t0 + settle, PRE, true), (check, PRE, false), (check, NEG, false)]
    );
    assert_eq!(
        events(&rig, mark),
        [
            (t0 + settle, SequenceEvent::PrechargeStarted { attempt: 1 }),
            (
                check,
                SequenceEvent::PrechargeFailed {
                    cause: PrechargeFailure::Short,
                    attempt: 1,
                    will_retry: false
                }
            ),
        ]
    );
    assert_eq!(status(&rig).latched(), Some(RuleId::PrechargeFailed));
}

#[test]
fn no_voltage_rise_fails_at_the_rise_check_and_exhausts_the_attempts() {
    let mut rig = Rig::tesla();
    rig.plant.stuck_open[PRE.index()] = true; // no current flows, the bus stays at 0 V
    let c = contactor_config(&rig);
    let settle = cfg_ms(c.close_settle_ms);
    let check = cfg_ms(c.precharge_rise_check_ms);
    let delay = cfg_ms(c.precharge_retry_delay_ms);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run(&mut rig, Duration::from_secs(30));

    let mut expected_moves = Vec::new();
    let mut expected_events = Vec::new();
    let mut begin = t0;
    for attempt in 1..=3u8 {
        let failed = begin + settle + check;
        expected_moves.extend(failed_attempt_moves(begin, settle, failed));
        expected_events.extend([
            (begin + settle, SequenceEvent::PrechargeStarted { attempt }),
            (
                failed,
                SequenceEvent::PrechargeFailed {
                    cause: PrechargeFailure::NoVoltageRise,
                    attempt,
                    will_retry: attempt < 3,
                },
            ),
        ]);
        begin = failed + delay;
    }
    assert_eq!(moves(&rig, mark), expected_moves);
    assert_eq!(events(&rig, mark), expected_events);
    let failed = expected_moves.last().unwrap().0;
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            failed,
            RuleId::PrechargeFailed,
            FaultChange::Raised,
            Location::Pack,
            PrechargeFailure::NoVoltageRise as i32
        )]
    );
    assert_eq!(status(&rig).last_precharge_failure, Some(PrechargeFailure::NoVoltageRise));
    assert_eq!(status(&rig).latched(), Some(RuleId::PrechargeFailed));
}

#[test]
fn failed_attempt_then_successful_retry_closes_without_a_fault() {
    let mut rig = tesla_with(slow_precharge);
    rig.plant.precharge_tau = Duration::from_secs(5);
    let c = contactor_config(&rig);
    let settle = cfg_ms(c.close_settle_ms);
    let failed_at = |t0: Instant| t0 + settle + cfg_ms(c.precharge_timeout_ms);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    let failed = failed_at(t0);
    run_to(&mut rig, failed + ms(100));
    let until = failed + cfg_ms(c.precharge_retry_delay_ms);
    assert_eq!(rig.state(), SequenceState::RetryWait { until, attempt: 2 });

    // Repaired during the pause (and the DC link bled down).
    rig.plant.precharge_tau = ms(100);
    rig.plant.bus = MilliVolts(0);
    run_until(&mut rig, Duration::from_secs(10), "closed", |r| r.state() == SequenceState::Closed);
    let done = event_at(&rig, mark, |e| matches!(e, SequenceEvent::PrechargeDone { .. }));
    assert_eq!(
        moves(&rig, mark),
        [
            (t0, NEG, true),
            (t0 + settle, PRE, true),
            (failed, PRE, false),
            (failed, NEG, false),
            (until, NEG, true),
            (until + settle, PRE, true),
            (done, POS, true),
            (done + settle, PRE, false),
        ]
    );
    let elapsed_ms = u32::try_from((done - (until + settle)).as_millis()).unwrap();
    assert_eq!(
        sequence(&rig, mark),
        [
            SequenceEvent::PrechargeStarted { attempt: 1 },
            SequenceEvent::PrechargeFailed {
                cause: PrechargeFailure::TooSlow,
                attempt: 1,
                will_retry: true
            },
            SequenceEvent::PrechargeStarted { attempt: 2 },
            SequenceEvent::PrechargeDone { elapsed_ms },
            SequenceEvent::Closed,
        ]
    );
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
    assert_eq!(status(&rig).latched(), None);
    assert_eq!(status(&rig).limits, tesla_maxima());
    assert_eq!(status(&rig).last_precharge_failure, Some(PrechargeFailure::TooSlow));
}

// ------------------------------------------------------------------------------------------------
// Retry wait held back by feedback
// ------------------------------------------------------------------------------------------------

/// In `RetryWait`, feedback that disagrees when the pause ends holds the next attempt back
/// without leaving the (passed) end of the pause as the next deadline.
fn retry_wait_with_precharge_feedback_stuck_closed(let_go: bool) {
    let mut rig = tesla_with(|c| {
        all_feedback(c);
        slow_precharge(c);
    });
    rig.plant.precharge_tau = Duration::from_secs(5);
    let c = contactor_config(&rig);
    let timeout = cfg_ms(c.feedback_timeout_ms);
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(5), "waiting to retry", |r| {
        matches!(r.state(), SequenceState::RetryWait { .. })
    });
    let SequenceState::RetryWait { until, attempt: 2 } = rig.state() else { unreachable!() };
    run_to(&mut rig, before(until, ms(100)));
    rig.plant.welded[PRE.index()] = true; // the relay sticks, reported from the next sample on
    let mark = rig.log.len();
    let stuck_at = rig.now;
    run_to(&mut rig, until + ms(50));
    assert_eq!(status(&rig).close_blocker, Some(Blocker::FeedbackDisagrees(PRE)));
    assert_eq!(rig.state(), SequenceState::RetryWait { until, attempt: 2 });
    assert!(moves(&rig, mark).is_empty(), "no attempt while blocked: {:?}", moves(&rig, mark));
    if let_go {
        rig.plant.welded[PRE.index()] = false;
        let t = rig.now;
        run(&mut rig, ms(10));
        assert_eq!(moves(&rig, mark), [(t, NEG, true)], "the attempt starts once unblocked");
        run_until(&mut rig, Duration::from_secs(5), "retried", |r| {
            matches!(r.state(), SequenceState::RetryWait { attempt: 3, .. })
        });
    } else {
        run(&mut rig, Duration::from_secs(1));
        assert_eq!(
            faults(&rig, mark),
            [maximum(
                stuck_at + timeout,
                RuleId::ContactorWelded,
                FaultChange::Raised,
                Location::Contactor(PRE),
                1
            )]
        );
        assert_eq!(rig.state(), SequenceState::Open);
        assert!(!status(&rig).close_requested);
        assert!(moves(&rig, mark).is_empty());
    }
}

#[test]
fn retry_wait_blocked_by_a_stuck_relay_latches_the_weld() {
    retry_wait_with_precharge_feedback_stuck_closed(false);
}

#[test]
fn retry_wait_blocked_by_feedback_resumes_when_it_agrees() {
    retry_wait_with_precharge_feedback_stuck_closed(true);
}
