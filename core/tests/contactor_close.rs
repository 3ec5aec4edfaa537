//! Closing the contactors through the public API: the sequence negative, precharge, positive,
//! precharge off; what holds it back (missing values, a load on the DC link, contactor
//! feedback); and `handle_timeout` called early, twice, late or with a clock that went back.
//! Asserted on the exact contactor commands the adapter receives (with the instant each was
//! drained), the sequence and fault events, the current limits and `status()`.
//!
//! Every run goes through the checked driver in `sequence/mod.rs`, with simulated time and the
//! Tesla preset (4 modules, 24 cells at 3.8 V = 91.2 V).

mod common;
mod sequence;

use cellwarden_core::{
    Action, Blocker, CellMask, Command, ContactorId, Duration, Input, Instant, LimitReason,
    MilliAmps, MilliVolts, OpenKind, PrechargeFailure, RuleId, SequenceEvent, SequenceState,
    VoltageSource,
};
use common::Rig;
use sequence::{
    NEG, POS, PRE, all_feedback, assert_deadline_ahead, assert_full_close, assert_no_action,
    assert_repeat_is_harmless, before, cfg_ms, command, contactor_config, event_at, events, faults,
    feed, input, limits, moves, ms, report, run, run_until, run_until_closed, sequence, start,
    status, tesla_maxima, tesla_with, zero_limits,
};

// ------------------------------------------------------------------------------------------------
// Closing
// ------------------------------------------------------------------------------------------------

#[test]
fn start_closes_negative_precharge_positive_then_opens_precharge() {
    // Without the ramp after a close (`close_ramp.rs`), so the limits open in one step.
    let mut rig = tesla_with(|c| c.contactors.limit_ramp_ms = 0);
    // `Bms::new`: everything open, both limits zero, the voltage limits (the charge
    // controller's bulk target) and no cell bleeding, before anything else.
    let cvl_mv = status(&rig).charge.expect("the preset has charge control").cvl_mv;
    let voltage = match rig.log.get(4) {
        Some((_, Action::VoltageLimits(v))) => *v,
        other => panic!("expected the voltage limits fifth, got {other:?}"),
    };
    assert_eq!((voltage.charge_mv, voltage.charge_source), (cvl_mv, VoltageSource::ChargeControl));
    assert_eq!(
        rig.log,
        [
            (Instant::ZERO, Action::Contactor { contactor: POS, closed: false }),
            (Instant::ZERO, Action::Contactor { contactor: PRE, closed: false }),
            (Instant::ZERO, Action::Contactor { contactor: NEG, closed: false }),
            (Instant::ZERO, Action::Limits(zero_limits(LimitReason::ContactorsOpen))),
            (Instant::ZERO, Action::VoltageLimits(voltage)),
            (Instant::ZERO, Action::Balance(CellMask::EMPTY)),
        ]
    );

    // Every value fresh, nothing blocks, but no `Start`: nothing closes.
    run(&mut rig, Duration::from_secs(2));
    assert_eq!(status(&rig).close_blocker, None);
    assert!(!status(&rig).close_requested);
    assert_eq!(rig.state(), SequenceState::Open);
    assert_eq!(rig.log.len(), 6, "{:?}", &rig.log[6..]);

    let mark = rig.log.len();
    let t0 = start(&mut rig);
    assert_eq!(rig.state(), SequenceState::ClosingNegative { since: t0, attempt: 1 });
    assert!(status(&rig).close_requested);

    // Step a period at a time and check each state's invariants as we go.
    let c = contactor_config(&rig);
    let band = c.precharge_band_mv.0.unsigned_abs();
    let mut states = vec![rig.state()];
    while rig.state() != SequenceState::Closed {
        assert!(rig.now < t0 + Duration::from_secs(5), "did not close: {:?}", status(&rig));
        let before = rig.state();
        run(&mut rig, ms(10));
        let s = status(&rig);
        let pack = s.pack_mv.unwrap().0;
        let bus = s.bus_mv.unwrap().0;
        let current = s.current_ma.unwrap().magnitude();
        let verified = pack.abs_diff(bus) <= band && current < c.precharge_done_current_ma.0;
        if matches!(s.sequence, SequenceState::Precharging { .. }) {
            assert!(!verified, "still precharging with bus {bus} mV, pack {pack} mV, {current} mA");
        }
        if matches!(before, SequenceState::Precharging { .. })
            && matches!(s.sequence, SequenceState::ClosingPositive { .. })
        {
            assert!(verified, "positive closing with bus {bus} mV, pack {pack} mV, {current} mA");
        }
        if s.sequence != SequenceState::Closed {
            assert_eq!(s.limits, zero_limits(LimitReason::ContactorsOpen), "{:?}", s.sequence);
        }
        if states.last() != Some(&s.sequence) {
            states.push(s.sequence);
        }
    }
    let done = assert_full_close(&rig, mark, t0);
    let settle = cfg_ms(c.close_settle_ms);
    assert_eq!(
        states,
        [
            SequenceState::ClosingNegative { since: t0, attempt: 1 },
            SequenceState::Precharging { since: t0 + settle, attempt: 1 },
            SequenceState::ClosingPositive { since: done, attempt: 1 },
            SequenceState::Closed,
        ]
    );
    // The limits open exactly when the sequence is closed, to the configured maxima.
    assert_eq!(limits(&rig, mark), [(done + settle, tesla_maxima())]);
    assert_eq!(rig.applied(), [true, false, true]);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));

    // Closed is a resting state.
    let mark = rig.log.len();
    run(&mut rig, Duration::from_secs(5));
    assert_eq!(rig.state(), SequenceState::Closed);
    assert!(rig.log[mark..].is_empty(), "{:?}", &rig.log[mark..]);
}

#[test]
fn start_waits_for_every_value_and_closes_when_the_last_arrives() {
    let mut rig = Rig::tesla();
    let mark = rig.log.len();
    command(&mut rig, Command::Start);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::NoCellVoltage(0) }]
    );
    assert!(status(&rig).close_requested, "a blocked Start stays requested");

    rig.now += ms(10);
    let now = rig.now;
    let p = rig.plant.clone();
    input(&mut rig, Input::CellVoltages { sampled_at: now, first: 0, mv: &p.cells });
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoTemperature(0)));
    input(&mut rig, Input::Temperatures { sampled_at: now, first: 0, dc: &p.temps });
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoCurrent));
    input(&mut rig, Input::Current { sampled_at: now, ma: MilliAmps(0) });
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoPackVoltage));
    input(&mut rig, Input::PackVoltage { sampled_at: now, mv: p.pack_mv() });
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoBusVoltage));
    assert!(moves(&rig, mark).is_empty(), "closed before every value arrived");
    input(&mut rig, Input::BusVoltage { sampled_at: now, mv: MilliVolts(0) });
    // The Tesla preset's boards have a hardware fault line: it is required like the rest.
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoHardwareFaultLine));
    assert!(moves(&rig, mark).is_empty(), "closed before the hardware line arrived");
    input(&mut rig, Input::HardwareFault { sampled_at: now, active: false });
    assert_eq!(status(&rig).close_blocker, None);
    assert_eq!(moves(&rig, mark), [(now, NEG, true)], "the last value starts the sequence");

    run_until_closed(&mut rig);
    assert_eq!(
        sequence(&rig, mark)[0],
        SequenceEvent::CloseBlocked { blocker: Blocker::NoCellVoltage(0) },
        "reported once"
    );
    assert_full_close(&rig, mark + 1, now);
}

#[test]
fn precharge_needs_the_current_to_fall_as_well_as_the_bus_in_band() {
    let mut rig = Rig::tesla();
    let c = contactor_config(&rig);
    // Something on the DC link keeps drawing 1.5 A through the precharge resistor.
    rig.feed_current = false;
    let drawing = MilliAmps(-1_500);
    assert!(drawing.magnitude() >= c.precharge_done_current_ma.0);
    let now = rig.now;
    input(&mut rig, Input::Current { sampled_at: now, ma: drawing });
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    let in_band = |r: &Rig| {
        r.plant.pack_mv().0.abs_diff(r.plant.bus.0) <= c.precharge_band_mv.0.unsigned_abs()
    };
    while rig.now < t0 + ms(2_000) {
        let now = rig.now;
        input(&mut rig, Input::Current { sampled_at: now, ma: drawing });
        run(&mut rig, ms(10));
    }
    assert!(in_band(&rig), "bus {:?}", rig.plant.bus);
    assert!(
        matches!(rig.state(), SequenceState::Precharging { attempt: 1, .. }),
        "{:?}",
        rig.state()
    );
    assert_eq!(moves(&rig, mark).len(), 2, "{:?}", moves(&rig, mark));

    // The load lets go: the positive closes on that sample.
    let t1 = rig.now;
    input(&mut rig, Input::Current { sampled_at: t1, ma: MilliAmps(-500) });
    let settle = cfg_ms(c.close_settle_ms);
    assert_eq!(moves(&rig, mark), [(t0, NEG, true), (t0 + settle, PRE, true), (t1, POS, true)]);
    let elapsed_ms = u32::try_from((t1 - (t0 + settle)).as_millis()).unwrap();
    assert_eq!(
        sequence(&rig, mark),
        [
            SequenceEvent::PrechargeStarted { attempt: 1 },
            SequenceEvent::PrechargeDone { elapsed_ms }
        ]
    );
}

// ------------------------------------------------------------------------------------------------
// Feedback
// ------------------------------------------------------------------------------------------------

#[test]
fn with_feedback_each_step_waits_for_its_feedback_not_the_settle_time() {
    let mut rig = tesla_with(|c| {
        all_feedback(c);
        c.contactors.feedback_timeout_ms = 1_000;
        c.contactors.limit_ramp_ms = 0;
    });
    let c = contactor_config(&rig);
    rig.feed_feedback = false;
    for contactor in ContactorId::ALL {
        report(&mut rig, contactor, false);
    }
    let mark = rig.log.len();
    let t0 = start(&mut rig);

    // Four settle times pass: the negative has not confirmed, so nothing else closes.
    run(&mut rig, cfg_ms(c.close_settle_ms * 4));
    assert_eq!(rig.state(), SequenceState::ClosingNegative { since: t0, attempt: 1 });
    assert_eq!(moves(&rig, mark), [(t0, NEG, true)]);
    let t1 = rig.now;
    report(&mut rig, NEG, true);
    // Confirmed, but the link must still be seen with the negative closed (the last bus sample
    // is older than the feedback): precharge starts with the next measurement cycle.
    assert_eq!(rig.state(), SequenceState::ClosingNegative { since: t0, attempt: 1 });
    feed(&mut rig);
    assert_eq!(rig.state(), SequenceState::Precharging { since: t1, attempt: 1 });
    report(&mut rig, PRE, true);

    run_until(&mut rig, ms(3_000), "verified", |r| {
        matches!(r.state(), SequenceState::ClosingPositive { .. })
    });
    let done = event_at(&rig, mark, |e| matches!(e, SequenceEvent::PrechargeDone { .. }));
    run(&mut rig, cfg_ms(c.close_settle_ms * 4));
    assert_eq!(rig.state(), SequenceState::ClosingPositive { since: done, attempt: 1 });
    assert_eq!(rig.applied(), [true, true, true], "the precharge stays on until positive confirms");
    let t2 = rig.now;
    report(&mut rig, POS, true);
    assert_eq!(rig.state(), SequenceState::Closed);
    report(&mut rig, PRE, false);

    assert_eq!(
        moves(&rig, mark),
        [(t0, NEG, true), (t1, PRE, true), (done, POS, true), (t2, PRE, false)]
    );
    let elapsed_ms = u32::try_from((done - t1).as_millis()).unwrap();
    assert_eq!(
        events(&rig, mark),
        [
            (t1, SequenceEvent::PrechargeStarted { attempt: 1 }),
            (done, SequenceEvent::PrechargeDone { elapsed_ms }),
            (t2, SequenceEvent::Closed),
        ]
    );
    assert_eq!(limits(&rig, mark), [(t2, tesla_maxima())]);

    // Feedback that agrees keeps it closed without faults.
    rig.feed_feedback = true;
    run(&mut rig, Duration::from_secs(2));
    assert_eq!(rig.state(), SequenceState::Closed);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

#[test]
fn feedback_never_received_blocks_closing() {
    let mut rig = tesla_with(all_feedback);
    rig.feed_feedback = false;
    let mark = rig.log.len();
    start(&mut rig);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::CloseBlocked { blocker: Blocker::NoFeedback(NEG) }]
    );
    run(&mut rig, Duration::from_secs(3));
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoFeedback(NEG)));
    assert!(status(&rig).close_requested);
    assert_eq!(rig.state(), SequenceState::Open);
    assert!(moves(&rig, mark).is_empty(), "{:?}", moves(&rig, mark));
    assert_eq!(sequence(&rig, mark).len(), 1, "reported once per Start");

    report(&mut rig, NEG, false);
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoFeedback(PRE)));
    report(&mut rig, PRE, false);
    assert_eq!(status(&rig).close_blocker, Some(Blocker::NoFeedback(POS)));
    assert!(moves(&rig, mark).is_empty());
    let t0 = rig.now;
    report(&mut rig, POS, false);
    assert_eq!(status(&rig).close_blocker, None);
    assert_eq!(moves(&rig, mark), [(t0, NEG, true)]);

    rig.feed_feedback = true;
    run_until_closed(&mut rig);
    assert_eq!(moves(&rig, mark).len(), 4);
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
}

#[test]
fn positive_reporting_closed_during_precharge_abandons_the_sequence_at_once() {
    // The positive agreed (open) when the sequence started; if it then reports closed, the
    // precharge is being bypassed: everything opens on that sample, before any weld timeout.
    let mut rig = tesla_with(all_feedback);
    let mark = rig.log.len();
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(1), "precharging", |r| {
        matches!(r.state(), SequenceState::Precharging { .. })
    });
    let tw = rig.now;
    rig.plant.welded[POS.index()] = true;
    run(&mut rig, ms(10));
    assert_eq!(rig.applied(), [false; 3]);
    let opened = moves(&rig, mark).into_iter().filter(|(_, _, closed)| !closed).collect::<Vec<_>>();
    assert_eq!(opened, [(tw, PRE, false), (tw, NEG, false)]);
    assert!(sequence(&rig, mark).contains(&SequenceEvent::Opened { how: OpenKind::Aborted }));
    // The weld check then latches it, which withdraws the request.
    run(&mut rig, Duration::from_secs(1));
    assert_eq!(status(&rig).latched(), Some(RuleId::ContactorWelded));
    assert!(!status(&rig).close_requested);
}

// ------------------------------------------------------------------------------------------------
// Deadlines, repeated and early calls
// ------------------------------------------------------------------------------------------------

#[test]
fn handle_timeout_early_twice_or_late_changes_nothing_it_should_not() {
    let mut rig = Rig::tesla();
    let c = contactor_config(&rig);
    let settle = cfg_ms(c.close_settle_ms);
    feed(&mut rig);
    let t0 = start(&mut rig);
    assert_eq!(rig.bms.poll_timeout(), Some(t0 + settle));
    let mark = rig.log.len();

    // Early: before the settle time nothing moves, and the deadline stays.
    for early in [t0 + ms(1), t0 + ms(50), before(t0 + settle, Duration::from_micros(1))] {
        rig.bms.handle_timeout(early);
        assert_no_action(&mut rig, "early handle_timeout");
        assert_eq!(rig.bms.poll_timeout(), Some(t0 + settle));
        assert_eq!(rig.state(), SequenceState::ClosingNegative { since: t0, attempt: 1 });
    }
    // On time: the settle time is over, but precharge waits for a bus sample taken since (the
    // rise check of the link with only the negative closed); no sequencing deadline stands for
    // that, only the freshness of what was fed at `t0`.
    rig.now = t0 + settle;
    rig.bms.handle_timeout(rig.now);
    assert_no_action(&mut rig, "handle_timeout at the settle time without a bus sample");
    assert_eq!(rig.bms.poll_timeout(), Some(t0 + cfg_ms(rig.bms.config().freshness.current_ms)));
    // The sample arrives: the precharge relay closes, once.
    let (sampled_at, mv) = (rig.now, rig.plant.bus);
    input(&mut rig, Input::BusVoltage { sampled_at, mv });
    assert_eq!(moves(&rig, mark), [(t0 + settle, PRE, true)]);
    assert_eq!(sequence(&rig, mark), [SequenceEvent::PrechargeStarted { attempt: 1 }]);
    assert_deadline_ahead(&rig, "handle_timeout");
    assert_repeat_is_harmless(&mut rig);
    assert_repeat_is_harmless(&mut rig);

    // A clock that goes back is treated as the last `now`.
    rig.bms.handle_timeout(t0);
    assert_no_action(&mut rig, "handle_timeout from the past");
    assert_eq!(status(&rig).counters.clock_went_back, 1);
    assert_eq!(status(&rig).now, t0 + settle);

    // Late: a sample 300 ms into the precharge (the bus has not moved: the plant is not
    // stepped here), then the adapter oversleeps the rise check by 200 ms. The attempt fails
    // then, at the late call, and not before.
    let rise = t0 + settle + cfg_ms(c.precharge_rise_check_ms);
    rig.now = t0 + settle + ms(300);
    feed(&mut rig);
    assert_eq!(rig.bms.poll_timeout(), Some(rise));
    let mark = rig.log.len();
    rig.now = rise + ms(200);
    rig.bms.handle_timeout(rig.now);
    rig.drain();
    assert_eq!(moves(&rig, mark), [(rig.now, PRE, false), (rig.now, NEG, false)]);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::PrechargeFailed {
            cause: PrechargeFailure::NoVoltageRise,
            attempt: 1,
            will_retry: true
        }]
    );
    assert!(faults(&rig, 0).is_empty(), "{:?}", faults(&rig, 0));
    assert_deadline_ahead(&rig, "a late handle_timeout");
    assert_repeat_is_harmless(&mut rig);
    let until = rig.now + cfg_ms(c.precharge_retry_delay_ms);
    assert_eq!(rig.state(), SequenceState::RetryWait { until, attempt: 2 });
}
