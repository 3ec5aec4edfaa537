//! `contactors.dc_link`: a shared DC link (another source may hold it up with our contactors
//! open) turns the link-based weld checks off and leaves welds to feedback, which validation
//! insists on; a dedicated link waits for the link to discharge before closing, says so in
//! `status().close_blocker`, and a link that never discharges ends in a weld, never in a wait
//! without end.
//!
//! Every run goes through the checked driver in `sequence/mod.rs`, with simulated time and the
//! Tesla preset (4 modules, 24 cells at 3.8 V = 91.2 V, band 1.2 V). The toy plant's
//! `external_bus` is a stiff source holding the link at a voltage unless both mains connect the
//! pack.

mod common;
mod sequence;

use cellwarden_core::{
    Blocker, Command, Config, DcLink, Duration, FaultChange, FeedbackConfig, Location, MilliVolts,
    OpenKind, PrechargeFailure, Problem, RuleId, SequenceEvent, SequenceState,
};
use common::Rig;
use sequence::{
    NEG, POS, before, cfg_ms, close, command, contactor_config, events, faults, feed, maximum,
    moves, ms, run, run_to, run_until, run_until_closed, sequence, start, status, tesla_with,
};

const WELDED: RuleId = RuleId::ContactorWelded;

/// A shared link, with the feedback on both mains that it needs.
fn shared(config: &mut Config) {
    config.contactors.dc_link = DcLink::Shared;
    config.contactors.feedback.negative = true;
    config.contactors.feedback.positive = true;
}

/// The same feedback on a dedicated link: only `dc_link` differs.
fn dedicated_with_feedback(config: &mut Config) {
    config.contactors.feedback.negative = true;
    config.contactors.feedback.positive = true;
}

/// Another source holds the link `offset_mv` away from the pack voltage from now on.
fn hold_link(rig: &mut Rig, offset_mv: i32) -> MilliVolts {
    let v = MilliVolts(rig.plant.pack_mv().0 + offset_mv);
    rig.plant.external_bus = Some(v);
    rig.plant.bus = v;
    v
}

fn decay_time(rig: &Rig) -> Duration {
    cfg_ms(contactor_config(rig).link_decay_ms)
}

fn opened(how: OpenKind) -> SequenceEvent {
    SequenceEvent::Opened { how }
}

// ------------------------------------------------------------------------------------------------
// A shared link
// ------------------------------------------------------------------------------------------------

#[test]
fn a_stop_on_a_live_shared_link_opens_both_mains_and_latches_nothing() {
    let mut rig = tesla_with(shared);
    let held = hold_link(&mut rig, -300);
    close(&mut rig);
    run(&mut rig, Duration::from_secs(1));
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop); // no load: the stop ends at once
    // Nothing to stage for: both mains open together, the stop is reported at once.
    assert_eq!(moves(&rig, mark), [(ts, POS, false), (ts, NEG, false)]);
    assert_eq!(
        events(&rig, mark),
        [(ts, SequenceEvent::Stopping), (ts, opened(OpenKind::Graceful))]
    );
    assert_eq!(rig.state(), SequenceState::Open);

    // Well past the decay deadline the link is still held at the pack, and nothing latched.
    run(&mut rig, Duration::from_secs(15));
    assert_eq!(status(&rig).bus_mv, Some(held));
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
    assert_eq!(moves(&rig, mark).len(), 2);
    assert_eq!(status(&rig).close_blocker, None);
}

#[test]
fn a_start_onto_a_live_shared_link_precharges_verifies_and_closes_at_once() {
    let mut rig = tesla_with(shared);
    // Within the band of the pack, as the combiner's voltage-matched join leaves it.
    hold_link(&mut rig, -500);
    for _ in 0..2 {
        feed(&mut rig);
        let mark = rig.log.len();
        let t0 = start(&mut rig);
        run_until_closed(&mut rig);
        let moved = moves(&rig, mark);
        // No wait for a discharge that cannot come: the negative closes at the start.
        assert_eq!(moved[0], (t0, NEG, true), "{moved:?}");
        let seq = sequence(&rig, mark);
        assert!(
            matches!(
                seq[..],
                [
                    SequenceEvent::PrechargeStarted { attempt: 1 },
                    SequenceEvent::PrechargeDone { .. },
                    SequenceEvent::Closed
                ]
            ),
            "{seq:?}"
        );
        assert_eq!(rig.applied(), [true, false, true]);
        command(&mut rig, Command::Stop);
        run(&mut rig, Duration::from_secs(1));
        assert_eq!(rig.state(), SequenceState::Open);
    }
    run(&mut rig, Duration::from_secs(10));
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

#[test]
fn a_shared_link_far_from_the_pack_is_never_joined() {
    // 10 V above the pack: the precharge verify (bus within the band of the pack) is the
    // voltage match of the join, and refuses it.
    let mut rig = tesla_with(shared);
    hold_link(&mut rig, 10_000);
    let mark = rig.log.len();
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(60), "given up", |r| !r.bms.status().close_requested);
    assert!(moves(&rig, mark).iter().all(|&(_, c, closed)| c != POS || !closed));
    let failed = sequence(&rig, mark)
        .into_iter()
        .filter(|e| matches!(e, SequenceEvent::PrechargeFailed { .. }))
        .count();
    assert_eq!(failed, usize::from(contactor_config(&rig).precharge_attempts));
    assert_eq!(status(&rig).last_precharge_failure, Some(PrechargeFailure::TooSlow));
    assert_eq!(status(&rig).latched(), Some(RuleId::PrechargeFailed));
}

#[test]
fn a_welded_positive_on_a_shared_link_is_found_by_its_feedback() {
    let mut rig = tesla_with(shared);
    hold_link(&mut rig, 0);
    close(&mut rig);
    rig.plant.welded[POS.index()] = true;
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop);
    let timeout = cfg_ms(contactor_config(&rig).feedback_timeout_ms);
    run(&mut rig, timeout + ms(100));
    let weld = maximum(ts + timeout, WELDED, FaultChange::Raised, Location::Contactor(POS), 1);
    assert_eq!(faults(&rig, mark), [weld]);
}

// ------------------------------------------------------------------------------------------------
// Validation
// ------------------------------------------------------------------------------------------------

#[test]
fn a_shared_link_without_feedback_on_both_mains_is_refused() {
    let with = |negative, positive| {
        let mut config = Config::tesla_model_s(4);
        config.contactors.dc_link = DcLink::Shared;
        config.contactors.feedback = FeedbackConfig { negative, precharge: false, positive };
        config.validate()
    };
    let err = with(false, false).unwrap_err();
    assert_eq!(err.field, "contactors.dc_link");
    assert_eq!(err.problem, Problem::SharedLinkNeedsFeedback { contactor: "negative" });
    let message = err.to_string();
    assert!(
        message.starts_with(
            "contactors.dc_link: \"shared\" needs contactors.feedback.negative = true: "
        ),
        "{message}"
    );
    assert!(message.contains("weld"), "{message}");
    let err = with(true, false).unwrap_err();
    assert_eq!(err.problem, Problem::SharedLinkNeedsFeedback { contactor: "positive" });
    assert_eq!(
        with(false, true).unwrap_err().problem,
        Problem::SharedLinkNeedsFeedback { contactor: "negative" }
    );
    assert_eq!(with(true, true), Ok(()));
    // A dedicated link needs no feedback: its voltage finds the welds.
    assert_eq!(Config::tesla_model_s(4).contactors.dc_link, DcLink::Dedicated);
    assert_eq!(Config::tesla_model_s(4).validate(), Ok(()));
}

// ------------------------------------------------------------------------------------------------
// A dedicated link: the wait for the discharge, shown and bounded
// ------------------------------------------------------------------------------------------------

#[test]
fn a_dedicated_link_held_up_from_outside_ends_in_a_weld_not_an_endless_wait() {
    // The misconfiguration this option exists for: a link held up by another source, read as a
    // dedicated one. The start waits, says why, and latches a weld at the decay deadline.
    let mut rig = tesla_with(dedicated_with_feedback);
    hold_link(&mut rig, -300);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::LinkDischarging }]
    );
    assert_eq!(status(&rig).close_blocker, Some(Blocker::LinkDischarging));
    let deadline = t0 + decay_time(&rig);
    run_to(&mut rig, before(deadline, ms(10)));
    assert_eq!(status(&rig).close_blocker, Some(Blocker::LinkDischarging));
    assert!(status(&rig).close_requested);
    run(&mut rig, ms(100));
    assert!(moves(&rig, mark).is_empty(), "{:?}", moves(&rig, mark));
    let weld = maximum(deadline, WELDED, FaultChange::Raised, Location::Contactor(NEG), 1);
    assert_eq!(faults(&rig, mark), [weld]);
    assert_eq!(status(&rig).close_blocker, Some(Blocker::Fault(WELDED)));
    assert!(!status(&rig).close_requested);
}

#[test]
fn the_wait_for_a_slow_link_shows_as_the_close_blocker() {
    let mut rig = tesla_with(|_| {});
    // A 20 s bleed takes about 265 ms to pull 91.2 V out of the 1.2 V band.
    rig.plant.bleed_tau = Some(Duration::from_secs(20));
    close(&mut rig);
    command(&mut rig, Command::EmergencyStop);
    assert_eq!(status(&rig).close_blocker, Some(Blocker::LinkDischarging));
    run(&mut rig, ms(50));
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::LinkDischarging }]
    );
    run(&mut rig, ms(100));
    assert_eq!(status(&rig).close_blocker, Some(Blocker::LinkDischarging));
    assert!(moves(&rig, mark).is_empty());
    run_until_closed(&mut rig);
    let tn = moves(&rig, mark)[0].0;
    assert!(tn >= t0 + ms(200) && tn < t0 + decay_time(&rig), "{tn:?}");
    assert_eq!(status(&rig).close_blocker, None);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));

    // A start during a staged stop's weld check waits for the same discharge, and says so.
    command(&mut rig, Command::Stop);
    assert!(matches!(rig.state(), SequenceState::WeldCheck { .. }));
    assert_eq!(status(&rig).close_blocker, None, "nothing waits before a start");
    command(&mut rig, Command::Start);
    assert_eq!(status(&rig).close_blocker, Some(Blocker::LinkDischarging));
    run_until_closed(&mut rig);
    assert_eq!(status(&rig).close_blocker, None);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}
