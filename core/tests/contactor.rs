//! Contactor sequencing through the public API: every transition and failure path of the state
//! machine in `src/contactor.rs`, asserted on the exact contactor commands the adapter receives
//! (with the instant each was drained), the sequence and fault events, the current limits and
//! `status()`.
//!
//! Every run goes through the checked driver below, which replays the rig's adapter loop
//! (`Rig::run`) and, after every `handle_*` call:
//! - asserts that `poll_timeout` lies strictly after `now` (a deadline at or before `now` would
//!   make an adapter spin or miss it);
//! - asserts that the drain respects the `poll_action` order (opens positive, precharge, negative;
//!   then closes negative, precharge, positive; then limits; then events);
//! - calls `handle_timeout` a second time at the same instant and asserts nothing changes;
//! - before each wake-up, calls `handle_timeout` early (half-way there) and asserts nothing
//!   changes.
//!
//! Times are simulated (`Instant`), never wall-clock. The Tesla preset (4 modules, 24 cells at
//! 3.8 V = 91.2 V, band 1.2 V) is used throughout; its contactor timing is read from the config.

mod common;

use cellwarden_core::{
    Action, Blocker, Command, Config, ContactorConfig, ContactorId, CurrentLimits, Duration,
    FaultChange, FaultEvent, FeedbackConfig, Input, Instant, LimitReason, Location, MilliAmps,
    MilliVolts, OpenKind, Permille, PrechargeFailure, RuleId, SequenceEvent, SequenceState, Status,
    Tier,
};
use common::Rig;

const NEG: ContactorId = ContactorId::Negative;
const PRE: ContactorId = ContactorId::Precharge;
const POS: ContactorId = ContactorId::Positive;

// ------------------------------------------------------------------------------------------------
// Checked driver
// ------------------------------------------------------------------------------------------------

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `t - d` (the core's `Instant` only adds).
fn before(t: Instant, d: Duration) -> Instant {
    Instant::from_micros(t.as_micros() - d.as_micros())
}

/// A config field in milliseconds as a `Duration`.
fn cfg_ms(v: u32) -> Duration {
    Duration::from_millis(v.into())
}

fn contactor_config(rig: &Rig) -> ContactorConfig {
    rig.bms.config().contactors
}

/// The Tesla preset (4 modules at 3.8 V per cell), edited.
fn tesla_with(edit: impl FnOnce(&mut Config)) -> Rig {
    let mut config = Config::tesla_model_s(4);
    edit(&mut config);
    Rig::new(config, 3_800)
}

fn all_feedback(config: &mut Config) {
    config.contactors.feedback = FeedbackConfig { negative: true, precharge: true, positive: true };
}

/// A precharge whose bus rises (past the rise check) but never reaches the band in time.
///
/// With the preset's rise check (50 % of pack voltage after 500 ms) an RC precharge circuit with
/// a time constant above ~0.72 s fails the rise check and is reported as `NoVoltageRise`; only a
/// lower rise threshold lets a slow (large capacitance) circuit reach the `TooSlow` path.
fn slow_precharge(config: &mut Config) {
    config.contactors.precharge_min_rise = Permille(50);
}

fn zero_limits(reason: LimitReason) -> CurrentLimits {
    CurrentLimits {
        charge_ma: MilliAmps(0),
        charge_reason: reason,
        discharge_ma: MilliAmps(0),
        discharge_reason: reason,
    }
}

fn tesla_maxima() -> CurrentLimits {
    CurrentLimits {
        charge_ma: MilliAmps(100_000),
        charge_reason: LimitReason::ConfiguredMaximum,
        discharge_ma: MilliAmps(200_000),
        discharge_reason: LimitReason::ConfiguredMaximum,
    }
}

fn assert_deadline_ahead(rig: &Rig, after: &str) {
    if let Some(deadline) = rig.bms.poll_timeout() {
        assert!(
            deadline > rig.now,
            "after {after} at {:?}: poll_timeout {deadline:?} is not in the future ({:?})",
            rig.now,
            rig.bms.status().sequence
        );
    }
}

/// One drain respects the documented `poll_action` order.
fn assert_drain_order(drain: &[(Instant, Action)]) {
    let rank = |a: &Action| match a {
        Action::Contactor { contactor, closed: false } => match contactor {
            ContactorId::Positive => 0,
            ContactorId::Precharge => 1,
            ContactorId::Negative => 2,
        },
        Action::Contactor { contactor, closed: true } => 3 + contactor.index(),
        Action::Limits(_) => 6,
        Action::Fault(_) | Action::Sequence(_) => 7,
    };
    let ranks: Vec<usize> = drain.iter().map(|(_, a)| rank(a)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1] || (w[0] == 7 && w[1] == 7)),
        "drain out of order: {drain:?}"
    );
}

fn assert_no_action(rig: &mut Rig, what: &str) {
    if let Some(action) = rig.bms.poll_action() {
        panic!("{what} at {:?} produced {action:?}", rig.now);
    }
}

/// What an early `handle_timeout` must leave untouched (everything but `now` and sample ages).
fn decisions(s: &Status) -> impl PartialEq + core::fmt::Debug + use<> {
    (
        s.sequence,
        s.close_requested,
        s.close_blocker,
        s.contactors,
        s.last_precharge_failure,
        s.limits,
        s.rules,
        s.counters,
    )
}

/// `handle_timeout` again at the same instant changes nothing.
fn assert_repeat_is_harmless(rig: &mut Rig) {
    let status = rig.bms.status().clone();
    let deadline = rig.bms.poll_timeout();
    rig.bms.handle_timeout(rig.now);
    assert_no_action(rig, "a second handle_timeout");
    assert_eq!(rig.bms.status(), &status, "a second handle_timeout changed the status");
    assert_eq!(rig.bms.poll_timeout(), deadline, "a second handle_timeout moved the deadline");
}

/// `handle_timeout` at `at`, before the next deadline and without new input, changes nothing.
fn assert_early_call_is_harmless(rig: &mut Rig, at: Instant) {
    let before = decisions(rig.bms.status());
    let deadline = rig.bms.poll_timeout();
    rig.bms.handle_timeout(at);
    assert_no_action(rig, "an early handle_timeout");
    assert_eq!(decisions(rig.bms.status()), before, "an early handle_timeout at {at:?} changed");
    assert_eq!(rig.bms.poll_timeout(), deadline, "an early handle_timeout moved the deadline");
}

/// `handle_input` at `rig.now`, drained and checked.
fn input(rig: &mut Rig, input: Input<'_>) {
    let mark = rig.log.len();
    rig.input(input);
    assert_drain_order(&rig.log[mark..]);
    assert_deadline_ahead(rig, "handle_input");
    assert_repeat_is_harmless(rig);
}

fn command(rig: &mut Rig, command: Command) {
    input(rig, Input::Command(command));
}

fn report(rig: &mut Rig, contactor: ContactorId, closed: bool) {
    let sampled_at = rig.now;
    input(rig, Input::ContactorFeedback { sampled_at, contactor, closed });
}

/// `Rig::feed`, checked after every input.
fn feed(rig: &mut Rig) {
    let now = rig.now;
    let p = rig.plant.clone();
    if rig.feed_cells {
        input(rig, Input::CellVoltages { sampled_at: now, first: 0, mv: &p.cells });
    }
    if rig.feed_temps {
        input(rig, Input::Temperatures { sampled_at: now, first: 0, dc: &p.temps });
    }
    if rig.feed_current {
        input(rig, Input::Current { sampled_at: now, ma: p.current() });
    }
    if rig.feed_pack {
        input(rig, Input::PackVoltage { sampled_at: now, mv: p.pack_mv() });
    }
    if rig.feed_bus {
        input(rig, Input::BusVoltage { sampled_at: now, mv: p.bus });
    }
    if rig.feed_feedback {
        let actual = p.actual();
        let f = rig.bms.config().contactors.feedback;
        for (c, has) in ContactorId::ALL.into_iter().zip([f.negative, f.precharge, f.positive]) {
            if has {
                report(rig, c, actual[c.index()]);
            }
        }
    }
}

/// `Rig::run`, checked after every call.
fn run(rig: &mut Rig, d: Duration) {
    let end = rig.now + d;
    let mut next_sample = rig.now;
    while rig.now < end {
        if rig.now >= next_sample {
            feed(rig);
            next_sample = rig.now + rig.period;
        }
        let mut next = next_sample.min(end);
        if let Some(deadline) = rig.bms.poll_timeout() {
            next = next.min(deadline);
        }
        let gap = next - rig.now;
        if gap.as_micros() >= 2 {
            let early = rig.now + Duration::from_micros(gap.as_micros() / 2);
            assert_early_call_is_harmless(rig, early);
        }
        rig.plant.step(gap);
        rig.now = next;
        let mark = rig.log.len();
        rig.bms.handle_timeout(rig.now);
        rig.drain();
        assert_drain_order(&rig.log[mark..]);
        assert_deadline_ahead(rig, "handle_timeout");
        assert_repeat_is_harmless(rig);
    }
}

/// Runs until `t`.
fn run_to(rig: &mut Rig, t: Instant) {
    assert!(t >= rig.now, "run_to({t:?}) from {:?}", rig.now);
    run(rig, t - rig.now);
}

/// Runs a control period at a time until `done` holds; panics after `limit`.
fn run_until(rig: &mut Rig, limit: Duration, what: &str, done: impl Fn(&Rig) -> bool) {
    let end = rig.now + limit;
    while !done(rig) {
        assert!(rig.now < end, "not {what} after {limit:?}: {:?}", rig.bms.status());
        let period = rig.period;
        run(rig, period);
    }
}

/// Feeds fresh data, then `Start`; returns the instant of the `Start`.
fn start(rig: &mut Rig) -> Instant {
    feed(rig);
    command(rig, Command::Start);
    rig.now
}

fn close(rig: &mut Rig) {
    start(rig);
    run_until(rig, Duration::from_secs(10), "closed", |r| r.state() == SequenceState::Closed);
}

// ------------------------------------------------------------------------------------------------
// Log readers (from log index `from`)
// ------------------------------------------------------------------------------------------------

fn moves(rig: &Rig, from: usize) -> Vec<(Instant, ContactorId, bool)> {
    rig.picked(from, |t, a| match a {
        Action::Contactor { contactor, closed } => Some((t, *contactor, *closed)),
        _ => None,
    })
}

fn events(rig: &Rig, from: usize) -> Vec<(Instant, SequenceEvent)> {
    rig.picked(from, |t, a| match a {
        Action::Sequence(e) => Some((t, *e)),
        _ => None,
    })
}

fn sequence(rig: &Rig, from: usize) -> Vec<SequenceEvent> {
    events(rig, from).into_iter().map(|(_, e)| e).collect()
}

fn event_at(rig: &Rig, from: usize, wanted: impl Fn(&SequenceEvent) -> bool) -> Instant {
    events(rig, from)
        .into_iter()
        .find(|(_, e)| wanted(e))
        .map(|(t, _)| t)
        .unwrap_or_else(|| panic!("event not found in {:?}", events(rig, from)))
}

fn faults(rig: &Rig, from: usize) -> Vec<FaultEvent> {
    rig.picked(from, |_, a| match a {
        Action::Fault(e) => Some(*e),
        _ => None,
    })
}

fn limits(rig: &Rig, from: usize) -> Vec<(Instant, CurrentLimits)> {
    rig.picked(from, |t, a| match a {
        Action::Limits(l) => Some((t, *l)),
        _ => None,
    })
}

fn maximum(
    at: Instant,
    rule: RuleId,
    change: FaultChange,
    location: Location,
    value: i32,
) -> FaultEvent {
    FaultEvent { at, rule, tier: Tier::Maximum, change, location, value }
}

fn status(rig: &Rig) -> &Status {
    rig.bms.status()
}

/// A full, successful sequence from `from`: negative at `t0`, precharge after the settle time,
/// positive at `PrechargeDone`, precharge off after the settle time, and the events that go
/// with it. Returns the instant of `PrechargeDone`.
fn assert_full_close(rig: &Rig, from: usize, t0: Instant) -> Instant {
    let settle = cfg_ms(contactor_config(rig).close_settle_ms);
    let done = event_at(rig, from, |e| matches!(e, SequenceEvent::PrechargeDone { .. }));
    assert!(done > t0 + settle, "the precharge took no time at all");
    assert_eq!(
        moves(rig, from),
        [(t0, NEG, true), (t0 + settle, PRE, true), (done, POS, true), (done + settle, PRE, false)]
    );
    let elapsed_ms = u32::try_from((done - (t0 + settle)).as_millis()).unwrap();
    assert_eq!(
        events(rig, from),
        [
            (t0 + settle, SequenceEvent::PrechargeStarted { attempt: 1 }),
            (done, SequenceEvent::PrechargeDone { elapsed_ms }),
            (done + settle, SequenceEvent::Closed),
        ]
    );
    done
}

// ------------------------------------------------------------------------------------------------
// Closing
// ------------------------------------------------------------------------------------------------

#[test]
fn start_closes_negative_precharge_positive_then_opens_precharge() {
    let mut rig = Rig::tesla();
    // `Bms::new`: everything open and both limits zero, before anything else.
    assert_eq!(
        rig.log,
        [
            (Instant::ZERO, Action::Contactor { contactor: POS, closed: false }),
            (Instant::ZERO, Action::Contactor { contactor: PRE, closed: false }),
            (Instant::ZERO, Action::Contactor { contactor: NEG, closed: false }),
            (Instant::ZERO, Action::Limits(zero_limits(LimitReason::ContactorsOpen))),
        ]
    );

    // Every value fresh, nothing blocks, but no `Start`: nothing closes.
    run(&mut rig, Duration::from_secs(2));
    assert_eq!(status(&rig).close_blocker, None);
    assert!(!status(&rig).close_requested);
    assert_eq!(rig.state(), SequenceState::Open);
    assert_eq!(rig.log.len(), 4, "{:?}", &rig.log[4..]);

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
    assert_eq!(status(&rig).close_blocker, None);
    assert_eq!(moves(&rig, mark), [(now, NEG, true)], "the last value starts the sequence");

    run_until(&mut rig, Duration::from_secs(5), "closed", |r| r.state() == SequenceState::Closed);
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
    run_until(&mut rig, Duration::from_secs(5), "closed", |r| r.state() == SequenceState::Closed);
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
        expected_moves.extend([
            (begin, NEG, true),
            (begin + settle, PRE, true),
            (failed, PRE, false),
            (failed, NEG, false),
        ]);
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
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            rig.now,
            RuleId::PrechargeFailed,
            FaultChange::Cleared,
            Location::Pack,
            PrechargeFailure::TooSlow as i32
        )]
    );
    assert_eq!(status(&rig).latched(), None);
    run(&mut rig, Duration::from_secs(1));
    assert!(moves(&rig, mark).is_empty(), "clearing a fault does not start anything");
    rig.plant.precharge_tau = ms(100);
    rig.plant.bus = MilliVolts(0);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run_until(&mut rig, Duration::from_secs(5), "closed", |r| r.state() == SequenceState::Closed);
    assert_full_close(&rig, mark, t0);
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
    let t = t0 + settle; // the first sample with the precharge relay closed
    assert_eq!(
        moves(&rig, mark),
        [(t0, NEG, true), (t, PRE, true), (t, PRE, false), (t, NEG, false)]
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
        expected_moves.extend([
            (begin, NEG, true),
            (begin + settle, PRE, true),
            (failed, PRE, false),
            (failed, NEG, false),
        ]);
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
    rig.plant.load = MilliAmps(-1_500);
    let tl = rig.now;
    run(&mut rig, ms(10));
    assert_eq!(moves(&rig, mark), [(tl, POS, false), (tl, NEG, false)]);
    assert_eq!(
        events(&rig, mark),
        [(ts, SequenceEvent::Stopping), (tl, SequenceEvent::Opened { how: OpenKind::Graceful })]
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
    assert_eq!(moves(&rig, mark), [(deadline, POS, false), (deadline, NEG, false)]);
    assert_eq!(
        events(&rig, mark),
        [
            (ts, SequenceEvent::Stopping),
            (
                deadline,
                SequenceEvent::Opened {
                    how: OpenKind::GracefulDeadline { current_ma: Some(MilliAmps(-50_000)) }
                }
            ),
        ]
    );
    assert_eq!(rig.state(), SequenceState::Open);
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
    rig.plant.bus = MilliVolts(0);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run_until(&mut rig, Duration::from_secs(5), "closed", |r| r.state() == SequenceState::Closed);
    assert_full_close(&rig, mark, t0);
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
    command(&mut rig, Command::Stop); // no load: opens at once
    assert_eq!(moves(&rig, mark), [(ts, POS, false), (ts, NEG, false)]);
    assert_eq!(
        sequence(&rig, mark),
        [SequenceEvent::Stopping, SequenceEvent::Opened { how: OpenKind::Graceful }]
    );

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
    assert_eq!(sequence(&rig, mark).len(), 2, "already open: no emergency open to report");

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
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            rig.now,
            RuleId::ContactorWelded,
            FaultChange::Cleared,
            Location::Contactor(POS),
            1
        )]
    );
    assert_eq!(status(&rig).latched(), None);
    assert_eq!(status(&rig).close_blocker, None);
    rig.plant.bus = MilliVolts(0);
    let mark = rig.log.len();
    let t0 = start(&mut rig);
    run_until(&mut rig, Duration::from_secs(5), "closed", |r| r.state() == SequenceState::Closed);
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
    assert_eq!(
        faults(&rig, mark),
        [maximum(
            rig.now,
            RuleId::ContactorMismatch,
            FaultChange::Cleared,
            Location::Contactor(POS),
            0
        )]
    );
    start(&mut rig);
    run_until(&mut rig, Duration::from_secs(5), "closed", |r| r.state() == SequenceState::Closed);
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

// ------------------------------------------------------------------------------------------------
// Opening order, deadlines, repeated and early calls
// ------------------------------------------------------------------------------------------------

#[test]
fn positive_opens_before_negative_in_every_drain_that_opens_both() {
    // Every way of opening from Closed, each checked in its own drain.
    let openers: [fn(&mut Rig); 3] = [
        |r| command(r, Command::EmergencyStop),
        |r| {
            r.plant.load = MilliAmps(0);
            run(r, ms(10)); // measured: below the break current
            command(r, Command::Stop);
        },
        |r| {
            r.plant.cells[1] = MilliVolts(4_300);
            run(r, Duration::from_secs(1));
        },
    ];
    for (i, open) in openers.into_iter().enumerate() {
        let mut rig = closed_under_load();
        let mark = rig.log.len();
        open(&mut rig);
        let m = moves(&rig, mark);
        assert_eq!(m.len(), 2, "opener {i}: {m:?}");
        assert_eq!(m[0].0, m[1].0, "both in one drain: {m:?}");
        assert_eq!((m[0].1, m[0].2, m[1].1, m[1].2), (POS, false, NEG, false));
    }
}

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
    // On time: the precharge relay closes, once.
    rig.now = t0 + settle;
    rig.bms.handle_timeout(rig.now);
    rig.drain();
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
        command(&mut rig, Command::Stop);
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
