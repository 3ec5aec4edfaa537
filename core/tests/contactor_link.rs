//! Welds found through the DC link, without feedback (the presets' default): the staged stop
//! (positive first, the negative held until the link decays), a link that rises while only the
//! negative is closed, a link that never decays after an emergency open, the wait for the link
//! before closing, and healthy links that must never be flagged. Asserted on the contactor
//! commands (with the instant each was drained), the fault and sequence events and `status()`.
//!
//! Every run goes through the checked driver in `sequence/mod.rs`, with simulated time and the
//! Tesla preset (4 modules, 24 cells at 3.8 V = 91.2 V, band 1.2 V); the toy plant's link bleeds
//! with a 2 s time constant, so a healthy link leaves the band about 27 ms after it is cut off.

mod common;
mod sequence;

use cellwarden_core::{
    Blocker, Command, Config, ConfigError, Duration, FaultChange, Instant, Location, MilliVolts,
    OpenKind, RuleId, SequenceEvent, SequenceState,
};
use common::Rig;
use sequence::{
    NEG, POS, PRE, assert_full_close, before, cfg_ms, close, command, contactor_config, events,
    faults, feed, maximum, moves, ms, run, run_to, run_until, run_until_closed, sequence,
    slow_precharge, start, status, tesla_with,
};

const WELDED: RuleId = RuleId::ContactorWelded;

fn decay_time(rig: &Rig) -> Duration {
    cfg_ms(contactor_config(rig).link_decay_ms)
}

fn band_mv(rig: &Rig) -> i32 {
    contactor_config(rig).precharge_band_mv.0
}

/// The weld of `which`, raised at `at`.
fn weld(at: Instant, which: cellwarden_core::ContactorId) -> cellwarden_core::FaultEvent {
    maximum(at, WELDED, FaultChange::Raised, Location::Contactor(which), 1)
}

fn emergency_welded() -> SequenceEvent {
    SequenceEvent::Opened { how: OpenKind::Emergency { rule: WELDED } }
}

/// Closed, then `EmergencyStop` (everything opens at once); returns its instant.
fn closed_then_emergency_stop(rig: &mut Rig) -> Instant {
    close(rig);
    run(rig, Duration::from_secs(1));
    let te = rig.now;
    command(rig, Command::EmergencyStop);
    assert_eq!(rig.applied(), [false; 3]);
    te
}

// ------------------------------------------------------------------------------------------------
// The staged stop
// ------------------------------------------------------------------------------------------------

#[test]
fn stop_opens_the_positive_first_and_the_negative_once_the_link_has_decayed() {
    let mut rig = Rig::tesla();
    close(&mut rig);
    run(&mut rig, Duration::from_secs(1));
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop); // no load: the stop ends at once
    assert_eq!(moves(&rig, mark), [(ts, POS, false)]);
    assert!(
        matches!(rig.state(), SequenceState::WeldCheck { since, how: OpenKind::Graceful } if since == ts)
    );
    assert_eq!(rig.applied(), [true, false, false]);

    run(&mut rig, Duration::from_secs(1));
    let moved = moves(&rig, mark);
    assert_eq!(moved.len(), 2, "{moved:?}");
    let (tn, c, closed) = moved[1];
    assert_eq!((c, closed), (NEG, false));
    // The first sample out of the band: 27 ms of a 2 s bleed on 91.2 V, sampled every 10 ms.
    assert_eq!(tn, ts + ms(30));
    assert!(rig.plant.pack_mv().0 - status(&rig).bus_mv.unwrap().0 > band_mv(&rig));
    assert_eq!(
        events(&rig, mark),
        [(ts, SequenceEvent::Stopping), (tn, SequenceEvent::Opened { how: OpenKind::Graceful })]
    );
    assert_eq!(rig.state(), SequenceState::Open);
    run(&mut rig, Duration::from_secs(10));
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
    assert_eq!(moves(&rig, mark).len(), 2);
}

#[test]
fn welded_positive_holds_the_link_and_latches_at_the_decay_deadline() {
    let mut rig = Rig::tesla();
    close(&mut rig);
    rig.plant.welded[POS.index()] = true;
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop);
    let deadline = ts + decay_time(&rig);
    run_to(&mut rig, before(deadline, ms(1)));
    assert_eq!(moves(&rig, mark), [(ts, POS, false)], "the negative holds until the deadline");
    assert_eq!(status(&rig).latched(), None);

    run(&mut rig, ms(100));
    assert_eq!(moves(&rig, mark), [(ts, POS, false), (deadline, NEG, false)]);
    assert_eq!(faults(&rig, mark), [weld(deadline, POS)]);
    assert_eq!(
        events(&rig, mark),
        [(ts, SequenceEvent::Stopping), (deadline, emergency_welded())],
        "no graceful open is reported for a stop that found a weld"
    );
    let s = status(&rig);
    assert_eq!(s.sequence, SequenceState::Open);
    assert_eq!(s.rules[WELDED.index()].location, Location::Contactor(POS));

    // The restart is refused before the negative closes onto the pack.
    let mark = rig.log.len();
    start(&mut rig);
    run(&mut rig, Duration::from_secs(2));
    assert!(moves(&rig, mark).is_empty(), "{:?}", moves(&rig, mark));
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::Fault(WELDED) }]
    );
}

#[test]
fn start_during_the_weld_check_precharges_from_the_held_negative() {
    let mut rig = Rig::tesla();
    // A slower bleed (20 s) keeps the check running long enough to start into it.
    rig.plant.bleed_tau = Some(Duration::from_secs(20));
    close(&mut rig);
    let mark = rig.log.len();
    let ts = rig.now;
    command(&mut rig, Command::Stop);
    run(&mut rig, ms(100));
    assert!(matches!(rig.state(), SequenceState::WeldCheck { .. }));
    command(&mut rig, Command::Start);
    run_until_closed(&mut rig);
    let moved = moves(&rig, mark);
    // Positive opens, the negative never does, precharge, positive, precharge off.
    assert_eq!(moved.iter().filter(|(_, c, _)| *c == NEG).count(), 0, "{moved:?}");
    assert_eq!(moved[0], (ts, POS, false));
    assert_eq!(moved[1].1, PRE);
    let tp = moved[1].0;
    assert_eq!(
        sequence(&rig, mark)[..2],
        [SequenceEvent::Stopping, SequenceEvent::PrechargeStarted { attempt: 1 }]
    );
    // It waited for the link to leave the band (about 265 ms on a 20 s bleed).
    assert!(tp >= ts + ms(260) && tp < ts + decay_time(&rig), "{tp:?}");
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

// ------------------------------------------------------------------------------------------------
// The link rising while only the negative is closed
// ------------------------------------------------------------------------------------------------

#[test]
fn positive_welded_at_an_emergency_open_is_found_when_the_negative_closes() {
    let mut rig = Rig::tesla();
    rig.plant.welded[POS.index()] = false;
    close(&mut rig);
    rig.plant.welded[POS.index()] = true;
    closed_then_emergency_stop(&mut rig);
    // Cut off on the negative rail, the link decays as if all were well: nothing is found.
    run(&mut rig, Duration::from_secs(30));
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
    assert!(status(&rig).bus_mv.unwrap().0 < 1_000);

    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run(&mut rig, Duration::from_secs(1));
    // The first sample after the negative closed shows the jump: open again, latch, name it.
    let tf = t0 + rig.period;
    assert_eq!(moves(&rig, mark), [(t0, NEG, true), (tf, NEG, false)]);
    assert_eq!(faults(&rig, mark), [weld(tf, POS)]);
    assert_eq!(sequence(&rig, mark), [emergency_welded()], "precharge never started");
    assert!(!status(&rig).close_requested);
}

#[test]
fn welded_precharge_relay_charges_the_link_while_only_the_negative_is_closed() {
    let mut rig = Rig::tesla();
    rig.plant.welded[PRE.index()] = true;
    feed(&mut rig);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run(&mut rig, Duration::from_secs(1));
    // 10 ms through a 100 ms RC: 8.7 V, far more than the band, far from the pack.
    let tf = t0 + rig.period;
    assert_eq!(moves(&rig, mark), [(t0, NEG, true), (tf, NEG, false)]);
    assert_eq!(faults(&rig, mark), [weld(tf, PRE)]);
    assert_eq!(sequence(&rig, mark), [emergency_welded()]);
}

#[test]
fn precharge_waits_for_a_bus_sample_taken_after_the_negative_settled() {
    let mut rig = Rig::tesla();
    let settle = cfg_ms(contactor_config(&rig).close_settle_ms);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    rig.feed_bus = false;
    run_to(&mut rig, t0 + settle + ms(50));
    assert!(matches!(rig.state(), SequenceState::ClosingNegative { .. }), "{:?}", rig.state());
    assert_eq!(moves(&rig, mark), [(t0, NEG, true)]);
    rig.feed_bus = true;
    let tb = rig.now;
    run(&mut rig, ms(10));
    assert_eq!(moves(&rig, mark)[1], (tb, PRE, true));
    assert_eq!(sequence(&rig, mark), [SequenceEvent::PrechargeStarted { attempt: 1 }]);
    run_until_closed(&mut rig);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

// ------------------------------------------------------------------------------------------------
// The link after an open that could not be staged
// ------------------------------------------------------------------------------------------------

#[test]
fn both_mains_welded_hold_the_link_after_an_emergency_open() {
    let mut rig = Rig::tesla();
    close(&mut rig);
    rig.plant.welded[POS.index()] = true;
    rig.plant.welded[NEG.index()] = true;
    let mark = rig.log.len();
    let te = closed_then_emergency_stop(&mut rig);
    let deadline = te + decay_time(&rig);
    run_to(&mut rig, before(deadline, ms(1)));
    assert_eq!(status(&rig).latched(), None);
    run(&mut rig, ms(100));
    assert_eq!(faults(&rig, mark), [weld(deadline, NEG)]);
    assert_eq!(status(&rig).close_blocker, Some(Blocker::Fault(WELDED)));
    assert_eq!(sequence(&rig, mark), [SequenceEvent::Opened { how: OpenKind::EmergencyStop }]);
}

#[test]
fn an_emergency_stop_during_the_weld_check_still_leaves_the_link_to_be_checked() {
    let mut rig = Rig::tesla();
    close(&mut rig);
    rig.plant.welded[POS.index()] = true;
    rig.plant.welded[NEG.index()] = true;
    let mark = rig.log.len();
    command(&mut rig, Command::Stop);
    run(&mut rig, ms(500));
    assert!(matches!(rig.state(), SequenceState::WeldCheck { .. }));
    let te = rig.now;
    command(&mut rig, Command::EmergencyStop);
    let decay = decay_time(&rig);
    run(&mut rig, decay + ms(100));
    assert_eq!(faults(&rig, mark), [weld(te + decay, NEG)]);
}

#[test]
fn a_start_waits_while_the_link_is_still_at_the_pack_and_closes_once_it_decays() {
    let mut rig = Rig::tesla();
    rig.plant.bleed_tau = Some(Duration::from_secs(20));
    closed_then_emergency_stop(&mut rig);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    // The start says why nothing closes yet.
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::LinkDischarging }]
    );
    assert_eq!(status(&rig).close_blocker, Some(Blocker::LinkDischarging));
    let mark = rig.log.len();
    run_until_closed(&mut rig);
    let moved = moves(&rig, mark);
    let tn = moved[0].0;
    assert_eq!(moved[0].1, NEG);
    // About 265 ms for a 20 s bleed to take the link 1.2 V below 91.2 V.
    assert!(tn >= t0 + ms(260) && tn < t0 + decay_time(&rig), "{tn:?}");
    assert_full_close(&rig, mark, tn);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

#[test]
fn a_link_at_the_pack_before_the_first_start_is_waited_for_too() {
    // Both welded since before power-up: the link is at the pack with everything open.
    let mut rig = Rig::tesla();
    rig.plant.welded[POS.index()] = true;
    rig.plant.welded[NEG.index()] = true;
    rig.plant.step(ms(1));
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run(&mut rig, Duration::from_secs(6));
    assert!(moves(&rig, mark).is_empty(), "nothing is commanded: {:?}", moves(&rig, mark));
    assert_eq!(faults(&rig, mark), [weld(t0 + decay_time(&rig), NEG)]);
}

// ------------------------------------------------------------------------------------------------
// Healthy links
// ------------------------------------------------------------------------------------------------

#[test]
fn a_slow_precharge_retry_from_a_half_charged_link_is_not_flagged() {
    // Precharge too slow: the retry starts from a link still partly charged (its bleed is slow),
    // and the rise while only the negative is closed is nil.
    let mut rig = tesla_with(slow_precharge);
    rig.plant.precharge_tau = Duration::from_millis(1_500);
    rig.plant.bleed_tau = Some(Duration::from_secs(200));
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(20), "closed", |r| r.state() == SequenceState::Closed);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
    assert!(
        sequence(&rig, 0)
            .iter()
            .filter(|e| matches!(e, SequenceEvent::PrechargeStarted { .. }))
            .count()
            >= 2
    );
}

#[test]
fn repeated_stops_and_starts_of_a_healthy_pack_never_latch() {
    let mut rig = Rig::tesla();
    for _ in 0..5 {
        close(&mut rig);
        run(&mut rig, Duration::from_secs(1));
        command(&mut rig, Command::Stop);
        run(&mut rig, Duration::from_secs(1));
        assert_eq!(rig.state(), SequenceState::Open);
    }
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
    rig.plant.bus = MilliVolts(0);
}

#[test]
fn link_decay_time_must_be_positive() {
    let mut config = Config::tesla_model_s(4);
    config.contactors.link_decay_ms = 0;
    let err: ConfigError = config.validate().unwrap_err();
    assert_eq!(err.field, "contactors.link_decay_ms");
}
