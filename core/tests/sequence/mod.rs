//! The checked driver and log readers shared by the contactor sequencing tests
//! (`contactor_*.rs`).
//!
//! The driver replays the rig's adapter loop (`Rig::run`) and, after every `handle_*` call:
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

#![allow(dead_code)]

use cellwarden_core::{
    Action, Command, Config, ContactorConfig, ContactorId, CurrentLimits, Duration, FaultChange,
    FaultEvent, FeedbackConfig, Input, Instant, LimitReason, Location, MilliAmps, MilliVolts,
    Permille, RuleId, SequenceEvent, SequenceState, Status, Tier,
};

use crate::common::Rig;

pub const NEG: ContactorId = ContactorId::Negative;
pub const PRE: ContactorId = ContactorId::Precharge;
pub const POS: ContactorId = ContactorId::Positive;

// ------------------------------------------------------------------------------------------------
// Checked driver
// ------------------------------------------------------------------------------------------------

pub fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// `t - d` (the core's `Instant` only adds).
pub fn before(t: Instant, d: Duration) -> Instant {
    Instant::from_micros(t.as_micros() - d.as_micros())
}

/// A config field in milliseconds as a `Duration`.
pub fn cfg_ms(v: u32) -> Duration {
    Duration::from_millis(v.into())
}

pub fn contactor_config(rig: &Rig) -> ContactorConfig {
    rig.bms.config().contactors
}

/// The Tesla preset (4 modules at 3.8 V per cell), edited.
pub fn tesla_with(edit: impl FnOnce(&mut Config)) -> Rig {
    let mut config = Config::tesla_model_s(4);
    edit(&mut config);
    Rig::new(config, 3_800)
}

pub fn all_feedback(config: &mut Config) {
    config.contactors.feedback = FeedbackConfig { negative: true, precharge: true, positive: true };
}

/// A precharge whose bus rises (past the rise check) but never reaches the band in time.
///
/// With the preset's rise check (50 % of pack voltage after 500 ms) an RC precharge circuit with
/// a time constant above ~0.72 s fails the rise check and is reported as `NoVoltageRise`; only a
/// lower rise threshold lets a slow (large capacitance) circuit reach the `TooSlow` path.
pub fn slow_precharge(config: &mut Config) {
    config.contactors.precharge_min_rise = Permille(50);
}

pub fn zero_limits(reason: LimitReason) -> CurrentLimits {
    CurrentLimits {
        charge_ma: MilliAmps(0),
        charge_reason: reason,
        discharge_ma: MilliAmps(0),
        discharge_reason: reason,
    }
}

pub fn tesla_maxima() -> CurrentLimits {
    CurrentLimits {
        charge_ma: MilliAmps(100_000),
        charge_reason: LimitReason::ConfiguredMaximum,
        discharge_ma: MilliAmps(200_000),
        discharge_reason: LimitReason::ConfiguredMaximum,
    }
}

pub fn assert_deadline_ahead(rig: &Rig, after: &str) {
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
        Action::VoltageLimits(_) => 7,
        Action::Balance(_) => 8,
        Action::Fault(_) | Action::Sequence(_) => 9,
    };
    let ranks: Vec<usize> = drain.iter().map(|(_, a)| rank(a)).collect();
    assert!(
        ranks.windows(2).all(|w| w[0] < w[1] || (w[0] == 9 && w[1] == 9)),
        "drain out of order: {drain:?}"
    );
}

pub fn assert_no_action(rig: &mut Rig, what: &str) {
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
pub fn assert_repeat_is_harmless(rig: &mut Rig) {
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
pub fn input(rig: &mut Rig, input: Input<'_>) {
    let mark = rig.log.len();
    rig.input(input);
    assert_drain_order(&rig.log[mark..]);
    assert_deadline_ahead(rig, "handle_input");
    assert_repeat_is_harmless(rig);
}

pub fn command(rig: &mut Rig, command: Command) {
    input(rig, Input::Command(command));
}

pub fn report(rig: &mut Rig, contactor: ContactorId, closed: bool) {
    let sampled_at = rig.now;
    input(rig, Input::ContactorFeedback { sampled_at, contactor, closed });
}

/// `Rig::feed`, checked after every input.
pub fn feed(rig: &mut Rig) {
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
    if rig.feed_hardware_line {
        input(rig, Input::HardwareFault { sampled_at: now, active: p.hardware_fault });
    }
}

/// `Rig::run`, checked after every call.
pub fn run(rig: &mut Rig, d: Duration) {
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
pub fn run_to(rig: &mut Rig, t: Instant) {
    assert!(t >= rig.now, "run_to({t:?}) from {:?}", rig.now);
    run(rig, t - rig.now);
}

/// Runs a control period at a time until `done` holds; panics after `limit`.
pub fn run_until(rig: &mut Rig, limit: Duration, what: &str, done: impl Fn(&Rig) -> bool) {
    let end = rig.now + limit;
    while !done(rig) {
        assert!(rig.now < end, "not {what} after {limit:?}: {:?}", rig.bms.status());
        let period = rig.period;
        run(rig, period);
    }
}

/// Feeds fresh data, then `Start`; returns the instant of the `Start`.
pub fn start(rig: &mut Rig) -> Instant {
    feed(rig);
    command(rig, Command::Start);
    rig.now
}

pub fn close(rig: &mut Rig) {
    start(rig);
    run_until(rig, Duration::from_secs(10), "closed", |r| r.state() == SequenceState::Closed);
}

// ------------------------------------------------------------------------------------------------
// Log readers (from log index `from`)
// ------------------------------------------------------------------------------------------------

pub fn moves(rig: &Rig, from: usize) -> Vec<(Instant, ContactorId, bool)> {
    rig.picked(from, |t, a| match a {
        Action::Contactor { contactor, closed } => Some((t, *contactor, *closed)),
        _ => None,
    })
}

pub fn events(rig: &Rig, from: usize) -> Vec<(Instant, SequenceEvent)> {
    rig.picked(from, |t, a| match a {
        Action::Sequence(e) => Some((t, *e)),
        _ => None,
    })
}

pub fn sequence(rig: &Rig, from: usize) -> Vec<SequenceEvent> {
    events(rig, from).into_iter().map(|(_, e)| e).collect()
}

pub fn event_at(rig: &Rig, from: usize, wanted: impl Fn(&SequenceEvent) -> bool) -> Instant {
    events(rig, from)
        .into_iter()
        .find(|(_, e)| wanted(e))
        .map(|(t, _)| t)
        .unwrap_or_else(|| panic!("event not found in {:?}", events(rig, from)))
}

pub fn faults(rig: &Rig, from: usize) -> Vec<FaultEvent> {
    rig.picked(from, |_, a| match a {
        Action::Fault(e) => Some(*e),
        _ => None,
    })
}

pub fn limits(rig: &Rig, from: usize) -> Vec<(Instant, CurrentLimits)> {
    rig.picked(from, |t, a| match a {
        Action::Limits(l) => Some((t, *l)),
        _ => None,
    })
}

pub fn maximum(
    at: Instant,
    rule: RuleId,
    change: FaultChange,
    location: Location,
    value: i32,
) -> FaultEvent {
    FaultEvent { at, rule, tier: Tier::Maximum, change, location, value }
}

pub fn status(rig: &Rig) -> &Status {
    rig.bms.status()
}

/// A full, successful sequence from `from`: negative at `t0`, precharge after the settle time,
/// positive at `PrechargeDone`, precharge off after the settle time, and the events that go
/// with it. Returns the instant of `PrechargeDone`.
pub fn assert_full_close(rig: &Rig, from: usize, t0: Instant) -> Instant {
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

/// Runs until the sequence reports `Closed` (panics after 5 s).
pub fn run_until_closed(rig: &mut Rig) {
    run_until(rig, Duration::from_secs(5), "closed", |r| r.state() == SequenceState::Closed);
}

/// Asserts that the faults logged from `from` on are exactly one `Cleared` of `rule`'s maximum
/// tier, now.
pub fn assert_cleared(rig: &Rig, from: usize, rule: RuleId, location: Location, value: i32) {
    assert_eq!(faults(rig, from), [maximum(rig.now, rule, FaultChange::Cleared, location, value)]);
}

/// An emptied DC link, a new `Start`, and a full close through precharge.
pub fn restart_and_close(rig: &mut Rig) {
    rig.plant.bus = MilliVolts(0);
    let mark = rig.log.len();
    let t0 = start(rig);
    run_until_closed(rig);
    assert_full_close(rig, mark, t0);
}

/// The contactor moves of one failed precharge attempt that began at `begin`.
pub fn failed_attempt_moves(
    begin: Instant,
    settle: Duration,
    failed: Instant,
) -> [(Instant, ContactorId, bool); 4] {
    [(begin, NEG, true), (begin + settle, PRE, true), (failed, PRE, false), (failed, NEG, false)]
}
