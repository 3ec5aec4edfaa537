//! Contactor feedback faults through the public API: the weld check after opening (latch, block,
//! refused and accepted clears), two welds falling due at once, and the mismatch of a contactor
//! that never pulls in or drops out while closed, with recovery after `ClearFaults`. Asserted on
//! the contactor commands (with the instant each was drained), the fault and sequence events and
//! `status()`.
//!
//! Every run goes through the checked driver in `sequence/mod.rs`, with simulated time and the
//! Tesla preset (4 modules, 24 cells at 3.8 V = 91.2 V).

mod common;
mod sequence;

use cellwarden_core::{
    Blocker, Command, ContactorId, Duration, FaultChange, Instant, Location, MilliAmps, MilliVolts,
    OpenKind, RuleId, SequenceEvent, SequenceState,
};
use common::Rig;
use sequence::{
    NEG, POS, PRE, all_feedback, assert_cleared, assert_deadline_ahead, assert_repeat_is_harmless,
    before, cfg_ms, close, command, contactor_config, event_at, events, faults, feed, maximum,
    moves, ms, run, run_to, run_until_closed, sequence, start, status, tesla_with,
};

// ------------------------------------------------------------------------------------------------
// Weld check and mismatch
// ------------------------------------------------------------------------------------------------

#[test]
fn weld_check_after_opening_latches_blocks_and_clears_once_open() {
    let mut rig = tesla_with(all_feedback);
    let timeout = cfg_ms(contactor_config(&rig).feedback_timeout_ms);
    close(&mut rig);
    run(&mut rig, Duration::from_secs(1));
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));

    rig.plant.welded[POS.index()] = true;
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop); // no load: the positive opens at once
    assert_eq!(moves(&rig, mark), [(ts, POS, false)], "the negative waits for the link");
    assert_eq!(sequence(&rig, mark), [SequenceEvent::Stopping]);

    run_to(&mut rig, before(ts + timeout, ms(10)));
    assert_eq!(status(&rig).latched(), None);
    assert_eq!(status(&rig).close_blocker, Some(Blocker::FeedbackDisagrees(POS)));
    run(&mut rig, ms(500));
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            ts + timeout,
            RuleId::ContactorWelded,
            FaultChange::Raised,
            Location::Contactor(POS),
            1
        )]
    );
    let s = status(&rig);
    assert_eq!(s.latched(), Some(RuleId::ContactorWelded));
    assert_eq!(s.rules[RuleId::ContactorWelded.index()].location, Location::Contactor(POS));
    assert_eq!(s.close_blocker, Some(Blocker::Fault(RuleId::ContactorWelded)));
    // The weld ends the stop: the negative opens at once, reported as the weld's open.
    assert_eq!(moves(&rig, mark), [(ts, POS, false), (ts + timeout, NEG, false)]);
    assert_eq!(
        sequence(&rig, mark),
        [
            SequenceEvent::Stopping,
            SequenceEvent::Opened { how: OpenKind::Emergency { rule: RuleId::ContactorWelded } }
        ]
    );

    let mark = rig.log.len();
    start(&mut rig);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::Fault(RuleId::ContactorWelded) }]
    );
    command(&mut rig, Command::ClearFaults);
    let refused = faults(&rig, mark);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].rule, refused[0].change),
        (RuleId::ContactorWelded, FaultChange::ClearRefused)
    );
    assert_eq!(status(&rig).latched(), Some(RuleId::ContactorWelded));
    run(&mut rig, Duration::from_secs(2));
    assert!(moves(&rig, mark).is_empty());

    // The weld lets go: feedback agrees, the fault clears, and a new Start closes again.
    rig.plant.welded[POS.index()] = false;
    run(&mut rig, ms(100));
    assert_eq!(status(&rig).latched(), Some(RuleId::ContactorWelded), "latched until cleared");
    let mark = rig.log.len();
    command(&mut rig, Command::ClearFaults);
    assert_cleared(&rig, mark, RuleId::ContactorWelded, Location::Contactor(POS), 1);
    assert_eq!(status(&rig).latched(), None);
    assert_eq!(status(&rig).close_blocker, None);
    rig.plant.bus = MilliVolts(0);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run_until_closed(&mut rig);
    let done = event_at(&rig, mark, |e| matches!(e, SequenceEvent::PrechargeDone { .. }));
    assert_eq!(moves(&rig, mark)[..3], [(t0, NEG, true), (t0, PRE, true), (done, POS, true)]);
    assert_eq!(moves(&rig, mark).len(), 4);
    assert!(done > t0, "a full precharge from a discharged bus");
}

/// `stuck` never pulls in; with feedback the sequence waits for it and the mismatch latches after
/// the feedback timeout, opening everything.
fn stuck_open(stuck: ContactorId) -> (Rig, usize, Instant) {
    let mut rig = tesla_with(all_feedback);
    let timeout = cfg_ms(contactor_config(&rig).feedback_timeout_ms);
    rig.plant.stuck_open[stuck.index()] = true;
    let mark = rig.log.len();
    start(&mut rig);
    run(&mut rig, Duration::from_secs(5));
    let commanded_at = moves(&rig, mark)
        .into_iter()
        .find(|(_, c, closed)| *c == stuck && *closed)
        .expect("commanded closed")
        .0;
    let trip = commanded_at + timeout;
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            trip,
            RuleId::ContactorMismatch,
            FaultChange::Raised,
            Location::Contactor(stuck),
            0
        )]
    );
    let opened: Vec<_> = moves(&rig, mark).into_iter().filter(|(_, _, closed)| !closed).collect();
    let open_order: Vec<_> = [POS, PRE, NEG]
        .into_iter()
        .filter(|c| moves(&rig, mark).iter().any(|(_, m, closed)| m == c && *closed))
        .map(|c| (trip, c, false))
        .collect();
    assert_eq!(opened, open_order, "everything closed opens at the trip, positive first");
    assert_eq!(
        events(&rig, mark).last(),
        Some(&(
            trip,
            SequenceEvent::Opened { how: OpenKind::Emergency { rule: RuleId::ContactorMismatch } }
        ))
    );
    let s = status(&rig);
    assert_eq!(s.sequence, SequenceState::Open);
    assert_eq!(s.latched(), Some(RuleId::ContactorMismatch));
    assert!(!s.close_requested);
    (rig, mark, trip)
}

#[test]
fn negative_that_never_closes_latches_a_mismatch() {
    let (rig, mark, trip) = stuck_open(NEG);
    let t0 = before(trip, cfg_ms(contactor_config(&rig).feedback_timeout_ms));
    assert_eq!(moves(&rig, mark), [(t0, NEG, true), (trip, NEG, false)]);
    assert_eq!(sequence(&rig, mark).len(), 1, "{:?}", sequence(&rig, mark));
}

#[test]
fn precharge_relay_that_never_closes_latches_a_mismatch_before_the_rise_check() {
    let (rig, mark, trip) = stuck_open(PRE);
    let c = contactor_config(&rig);
    assert!(c.feedback_timeout_ms < c.precharge_rise_check_ms);
    assert_eq!(
        sequence(&rig, mark),
        [
            SequenceEvent::PrechargeStarted { attempt: 1 },
            SequenceEvent::Opened { how: OpenKind::Emergency { rule: RuleId::ContactorMismatch } },
        ]
    );
    assert_eq!(moves(&rig, mark).len(), 4);
    assert_eq!(moves(&rig, mark)[2..], [(trip, PRE, false), (trip, NEG, false)]);
}

#[test]
fn positive_that_never_closes_latches_a_mismatch_then_clears_and_recloses() {
    let (mut rig, mark, trip) = stuck_open(POS);
    let done = event_at(&rig, mark, |e| matches!(e, SequenceEvent::PrechargeDone { .. }));
    assert_eq!(trip, done + cfg_ms(contactor_config(&rig).feedback_timeout_ms));
    assert_eq!(
        moves(&rig, mark)[2..],
        [(done, POS, true), (trip, POS, false), (trip, PRE, false), (trip, NEG, false)]
    );
    assert!(!sequence(&rig, mark).contains(&SequenceEvent::Closed));

    // Everything open now agrees with the feedback, so the mismatch clears; repaired, it closes.
    rig.plant.stuck_open[POS.index()] = false;
    rig.plant.bus = MilliVolts(0);
    let mark = rig.log.len();
    command(&mut rig, Command::ClearFaults);
    assert_cleared(&rig, mark, RuleId::ContactorMismatch, Location::Contactor(POS), 0);
    start(&mut rig);
    run_until_closed(&mut rig);
    assert_eq!(
        sequence(&rig, mark)[..],
        [
            SequenceEvent::PrechargeStarted { attempt: 1 },
            sequence(&rig, mark)[1],
            SequenceEvent::Closed
        ]
    );
    assert!(matches!(sequence(&rig, mark)[1], SequenceEvent::PrechargeDone { .. }));
}

#[test]
fn contactor_dropping_out_while_closed_latches_a_mismatch() {
    let mut rig = tesla_with(all_feedback);
    let timeout = cfg_ms(contactor_config(&rig).feedback_timeout_ms);
    close(&mut rig);
    rig.plant.load = MilliAmps(-50_000);
    run(&mut rig, Duration::from_secs(1));
    rig.plant.stuck_open[NEG.index()] = true;
    let mark = rig.log.len();
    let td = rig.now; // the next sample reports it open
    run(&mut rig, Duration::from_secs(1));
    let trip = td + timeout;
    assert_eq!(moves(&rig, mark), [(trip, POS, false), (trip, NEG, false)]);
    assert_eq!(
        events(&rig, mark),
        [(
            trip,
            SequenceEvent::Opened { how: OpenKind::Emergency { rule: RuleId::ContactorMismatch } }
        )]
    );
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            trip,
            RuleId::ContactorMismatch,
            FaultChange::Raised,
            Location::Contactor(NEG),
            0
        )]
    );
}

#[test]
fn two_welded_contactors_latch_without_leaving_a_deadline_behind() {
    // Both mains weld; their weld checks fall due at the same instant. On time (checked run) and
    // late (one call long after), no deadline may be left at or before `now`.
    for late in [false, true] {
        let mut rig = tesla_with(all_feedback);
        let timeout = cfg_ms(contactor_config(&rig).feedback_timeout_ms);
        close(&mut rig);
        rig.plant.welded = [true, false, true];
        let mark = rig.log.len();
        let ts = rig.now;
        // An emergency stop opens both at once (a graceful stop would stage them).
        command(&mut rig, Command::EmergencyStop);
        assert_eq!(moves(&rig, mark), [(ts, POS, false), (ts, NEG, false)]);
        if late {
            feed(&mut rig);
            // Late, but before the current (fed at `ts`) goes stale.
            rig.now = ts + timeout + ms(200);
            rig.bms.handle_timeout(rig.now);
            rig.drain();
            assert_deadline_ahead(&rig, "a late handle_timeout");
            assert_repeat_is_harmless(&mut rig);
        } else {
            run(&mut rig, Duration::from_secs(1));
        }
        let welded: Vec<_> =
            faults(&rig, mark).into_iter().filter(|f| f.rule == RuleId::ContactorWelded).collect();
        let at = if late { rig.now } else { ts + timeout };
        assert_eq!(
            welded,
            [maximum(
                at,
                RuleId::ContactorWelded,
                FaultChange::Raised,
                Location::Contactor(NEG),
                1
            )]
        );
        assert_eq!(status(&rig).latched(), Some(RuleId::ContactorWelded));
    }
}
