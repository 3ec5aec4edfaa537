//! Contactor sequencing as one explicit state machine:
//!
//! ```text
//! Open --Start, nothing blocks--> ClosingNegative --confirmed--> Precharging
//! Precharging --bus within band of pack AND current below limit--> ClosingPositive
//! Precharging --no rise / too slow--> RetryWait --delay--> ClosingNegative   (bounded attempts)
//! Precharging --short, or attempts exhausted--> Open + latched PrechargeFailed
//! ClosingPositive --confirmed--> Closed (precharge relay opens)
//! Closed --Stop--> Stopping --current at or below break current, or deadline--> Open
//! Stopping --Start--> Closed (the stop is cancelled)
//! any --maximum-safety fault latched, or EmergencyStop--> Open at once
//! ```
//!
//! "Confirmed" means the contactor's feedback reports closed when it has feedback, or the settle
//! time has passed when it has none. Independently of the state, every contactor with feedback is
//! supervised: feedback that disagrees with the command for longer than the feedback timeout
//! latches `ContactorWelded` (commanded open, reports closed: the weld check after opening) or
//! `ContactorMismatch` (commanded closed, reports open).
//!
//! smlang would hide the timing guards and the per-state data this machine needs in macro input,
//! so it is a plain enum with one `match`.

use crate::action::{OpenKind, PrechargeFailure, SequenceEvent};
use crate::config::Config;
use crate::input::ContactorId;
use crate::measure::Measurements;
use crate::outbox::Outbox;
use crate::protection::{Location, RuleId};
use crate::status::Blocker;
use crate::time::{Duration, Instant};

/// Where the closing sequence stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SequenceState {
    /// Everything open.
    Open,
    /// Negative contactor closing.
    ClosingNegative {
        /// When it was commanded.
        since: Instant,
        /// Precharge attempt, from 1.
        attempt: u8,
    },
    /// Negative and precharge closed; waiting for the bus to charge.
    Precharging {
        /// When the precharge relay was commanded.
        since: Instant,
        /// Attempt, from 1.
        attempt: u8,
    },
    /// Precharge verified; positive contactor closing.
    ClosingPositive {
        /// When it was commanded.
        since: Instant,
        /// Attempt, from 1.
        attempt: u8,
    },
    /// Both mains closed, precharge open.
    Closed,
    /// Everything open after a failed precharge attempt, waiting before the next.
    RetryWait {
        /// When the next attempt may start.
        until: Instant,
        /// The attempt that will start then.
        attempt: u8,
    },
    /// Graceful stop: current limits are zero; waiting for the current to fall.
    Stopping {
        /// When the stop began.
        since: Instant,
    },
}

impl SequenceState {
    /// The commanded position of each contactor (indexed by [`ContactorId::index`]).
    pub const fn commanded(self) -> [bool; 3] {
        match self {
            SequenceState::Open | SequenceState::RetryWait { .. } => [false, false, false],
            SequenceState::ClosingNegative { .. } => [true, false, false],
            SequenceState::Precharging { .. } => [true, true, false],
            SequenceState::ClosingPositive { .. } => [true, true, true],
            SequenceState::Closed | SequenceState::Stopping { .. } => [true, false, true],
        }
    }
}

/// A fault the sequencer asks protection to latch.
pub(crate) type Raise = (RuleId, Location, i32);

/// The sequencer: state, the operator's request, and feedback supervision.
#[derive(Clone, Debug)]
pub(crate) struct Sequencer {
    pub state: SequenceState,
    pub close_requested: bool,
    pub last_failure: Option<PrechargeFailure>,
    /// Since when each contactor's feedback has disagreed with its command.
    mismatch_since: [Option<Instant>; 3],
    /// The disagreement was reported; not re-armed until feedback agrees again.
    reported: [bool; 3],
}

/// The most transitions one step may take; each needs a condition that the next state does not
/// re-check, so real chains are at most four long (Open -> negative -> precharge -> positive ->
/// closed with zero settle times and an already charged bus).
const MAX_TRANSITIONS_PER_STEP: usize = 6;

impl Sequencer {
    pub const fn new() -> Self {
        Sequencer {
            state: SequenceState::Open,
            close_requested: false,
            last_failure: None,
            mismatch_since: [None; 3],
            reported: [false; 3],
        }
    }

    /// `Start`: close as soon as nothing blocks it; cancels a graceful stop in progress.
    pub fn start(&mut self, now: Instant, config: &Config, out: &mut Outbox) {
        self.close_requested = true;
        if let SequenceState::Stopping { .. } = self.state {
            self.enter(now, config, SequenceState::Closed);
            out.sequence(SequenceEvent::Closed);
        }
    }

    /// `Stop`: graceful open from `Closed`, abandon a closing sequence, forget the request.
    pub fn stop(&mut self, now: Instant, config: &Config, out: &mut Outbox) {
        self.close_requested = false;
        match self.state {
            SequenceState::Closed => {
                self.enter(now, config, SequenceState::Stopping { since: now });
                out.sequence(SequenceEvent::Stopping);
            }
            SequenceState::ClosingNegative { .. }
            | SequenceState::Precharging { .. }
            | SequenceState::ClosingPositive { .. } => {
                self.enter(now, config, SequenceState::Open);
                out.sequence(SequenceEvent::Opened { how: OpenKind::Aborted });
            }
            SequenceState::RetryWait { .. } => self.enter(now, config, SequenceState::Open),
            SequenceState::Open | SequenceState::Stopping { .. } => {}
        }
    }

    /// `EmergencyStop`: open everything now.
    pub fn emergency_stop(&mut self, now: Instant, config: &Config, out: &mut Outbox) {
        self.open_now(now, config, OpenKind::EmergencyStop, out);
    }

    /// Feedback supervision: returns the weld or mismatch faults to latch, one slot per
    /// contactor. Every due fault is returned at once: a fault left for a later call would leave
    /// its deadline in the past.
    pub fn supervise(
        &mut self,
        now: Instant,
        config: &Config,
        m: &Measurements,
    ) -> [Option<Raise>; 3] {
        let commanded = self.state.commanded();
        let timeout = Duration::from_millis(config.contactors.feedback_timeout_ms.into());
        let mut raise = [None; 3];
        for c in ContactorId::ALL {
            let i = c.index();
            let reported = m.feedback[i].map(|s| s.value);
            if !has_feedback(config, c) || reported.is_none_or(|r| r == commanded[i]) {
                self.mismatch_since[i] = None;
                self.reported[i] = false;
                continue;
            }
            if self.reported[i] {
                continue;
            }
            let since = *self.mismatch_since[i].get_or_insert(now);
            if now >= since + timeout {
                let rule =
                    if commanded[i] { RuleId::ContactorMismatch } else { RuleId::ContactorWelded };
                raise[i] = Some((rule, Location::Contactor(c), i32::from(reported == Some(true))));
                self.mismatch_since[i] = None;
                self.reported[i] = true;
            }
        }
        raise
    }

    /// Every contactor with feedback reports what it is commanded to be.
    pub fn feedback_consistent(&self, config: &Config, m: &Measurements) -> bool {
        let commanded = self.state.commanded();
        ContactorId::ALL.into_iter().all(|c| {
            !has_feedback(config, c)
                || m.feedback[c.index()].map(|s| s.value) == Some(commanded[c.index()])
        })
    }

    /// Advances the sequence at `now`. `latched` is the first latched maximum-safety fault;
    /// `blocker` what (if anything) forbids starting to close.
    pub fn step(
        &mut self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        latched: Option<RuleId>,
        blocker: Option<Blocker>,
        out: &mut Outbox,
    ) -> Option<Raise> {
        let raise = match latched {
            Some(rule) => {
                self.open_now(now, config, OpenKind::Emergency { rule }, out);
                None
            }
            None => self.run_transitions(now, config, m, blocker, out),
        };
        // A window opened by this step for a contactor whose feedback already reports the new
        // command would only be closed by the next evaluation: close it now, so it leaves no
        // deadline behind and evaluating twice at one instant stays a no-op.
        let commanded = self.state.commanded();
        for c in ContactorId::ALL {
            let i = c.index();
            if has_feedback(config, c) && m.feedback[i].is_some_and(|s| s.value == commanded[i]) {
                self.mismatch_since[i] = None;
                self.reported[i] = false;
            }
        }
        raise
    }

    /// Transitions until the state settles (bounded), or one raises a fault.
    fn run_transitions(
        &mut self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        blocker: Option<Blocker>,
        out: &mut Outbox,
    ) -> Option<Raise> {
        for _ in 0..MAX_TRANSITIONS_PER_STEP {
            let before = self.state;
            let raise = self.transition(now, config, m, blocker, out);
            if raise.is_some() {
                return raise;
            }
            if self.state == before {
                break;
            }
        }
        None
    }

    /// Opens everything at once and withdraws the close request; reports `how` if anything was
    /// closed.
    fn open_now(&mut self, now: Instant, config: &Config, how: OpenKind, out: &mut Outbox) {
        self.close_requested = false;
        let any_closed = self.state.commanded().contains(&true);
        self.enter(now, config, SequenceState::Open);
        if any_closed {
            out.sequence(SequenceEvent::Opened { how });
        }
    }

    /// The earliest moment the sequence needs to look again.
    pub fn next_deadline(&self, now: Instant, config: &Config) -> Option<Instant> {
        let c = &config.contactors;
        let ms = |v: u32| Duration::from_millis(v.into());
        let state_deadline = match self.state {
            SequenceState::ClosingNegative { since, .. }
                if !has_feedback(config, ContactorId::Negative) =>
            {
                Some(since + ms(c.close_settle_ms))
            }
            SequenceState::ClosingPositive { since, .. }
                if !has_feedback(config, ContactorId::Positive) =>
            {
                Some(since + ms(c.close_settle_ms))
            }
            SequenceState::Precharging { since, .. } => {
                let rise = since + ms(c.precharge_rise_check_ms);
                Some(if now < rise { rise } else { since + ms(c.precharge_timeout_ms) })
            }
            // Past `until` only a blocker holds the next attempt back, and blockers change
            // with inputs, not with time: no deadline (it would lie in the past).
            SequenceState::RetryWait { until, .. } if now < until => Some(until),
            SequenceState::Stopping { since } => Some(since + ms(c.graceful_open_timeout_ms)),
            _ => None,
        };
        let timeout = ms(c.feedback_timeout_ms);
        self.mismatch_since
            .iter()
            .flatten()
            .map(|since| *since + timeout)
            .chain(state_deadline)
            .min()
    }

    fn transition(
        &mut self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        blocker: Option<Blocker>,
        out: &mut Outbox,
    ) -> Option<Raise> {
        let c = &config.contactors;
        let ms = |v: u32| Duration::from_millis(v.into());
        // While closing, a contactor that should still be open and reports closed (it agreed
        // when the sequence started) would bypass the precharge: abandon at once rather than
        // wait for the feedback timeout to latch a weld.
        let closing = matches!(
            self.state,
            SequenceState::ClosingNegative { .. } | SequenceState::Precharging { .. }
        );
        if closing && self.uncommanded_closure(config, m) {
            self.enter(now, config, SequenceState::Open);
            out.sequence(SequenceEvent::Opened { how: OpenKind::Aborted });
            return None;
        }
        match self.state {
            SequenceState::Open => {
                if self.close_requested && blocker.is_none() {
                    self.enter(
                        now,
                        config,
                        SequenceState::ClosingNegative { since: now, attempt: 1 },
                    );
                }
            }
            SequenceState::ClosingNegative { since, attempt } => {
                if self.confirmed(now, config, m, ContactorId::Negative, since) {
                    self.enter(now, config, SequenceState::Precharging { since: now, attempt });
                    out.sequence(SequenceEvent::PrechargeStarted { attempt });
                }
            }
            SequenceState::Precharging { since, attempt } => {
                return self.precharge(now, config, m, since, attempt, out);
            }
            SequenceState::ClosingPositive { since, attempt: _ } => {
                if self.confirmed(now, config, m, ContactorId::Positive, since) {
                    self.enter(now, config, SequenceState::Closed);
                    out.sequence(SequenceEvent::Closed);
                }
            }
            SequenceState::Closed => {}
            SequenceState::RetryWait { until, attempt } => {
                if now >= until && blocker.is_none() {
                    self.enter(now, config, SequenceState::ClosingNegative { since: now, attempt });
                }
            }
            SequenceState::Stopping { since } => {
                let fresh = Measurements::fresh(m.current, now, ms(config.freshness.current_ms));
                if fresh.is_some_and(|i| i.magnitude() <= c.break_current_ma.0) {
                    self.enter(now, config, SequenceState::Open);
                    out.sequence(SequenceEvent::Opened { how: OpenKind::Graceful });
                } else if now >= since + ms(c.graceful_open_timeout_ms) {
                    self.enter(now, config, SequenceState::Open);
                    let how = OpenKind::GracefulDeadline { current_ma: fresh };
                    out.sequence(SequenceEvent::Opened { how });
                }
            }
        }
        None
    }

    /// One look at a running precharge.
    fn precharge(
        &mut self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        since: Instant,
        attempt: u8,
        out: &mut Outbox,
    ) -> Option<Raise> {
        let c = &config.contactors;
        let f = &config.freshness;
        let ms = |v: u32| Duration::from_millis(v.into());
        let pack = Measurements::fresh(m.pack, now, ms(f.pack_voltage_ms)).map(|v| v.0);
        let bus = Measurements::fresh(m.bus, now, ms(f.bus_voltage_ms)).map(|v| v.0);
        let current = Measurements::fresh(m.current, now, ms(f.current_ms)).map(|i| i.magnitude());
        let elapsed = now.saturating_since(since);

        let in_band = match (pack, bus) {
            (Some(p), Some(b)) => p.abs_diff(b) <= c.precharge_band_mv.0.unsigned_abs(),
            _ => false,
        };
        let settled = current.is_some_and(|i| i < c.precharge_done_current_ma.0);
        let risen = match (pack, bus) {
            (Some(p), Some(b)) => b >= c.precharge_min_rise.of(p),
            _ => false,
        };

        let failure = if current.is_some_and(|i| i > c.precharge_short_current_ma.0) {
            Some(PrechargeFailure::Short)
        } else if in_band && settled {
            self.enter(now, config, SequenceState::ClosingPositive { since: now, attempt });
            let elapsed_ms = elapsed.as_millis().min(u64::from(u32::MAX)) as u32;
            out.sequence(SequenceEvent::PrechargeDone { elapsed_ms });
            None
        } else if elapsed >= ms(c.precharge_rise_check_ms) && !risen {
            // Current without voltage means the charge goes somewhere it should not.
            if current.is_some_and(|i| i >= c.precharge_done_current_ma.0) {
                Some(PrechargeFailure::Short)
            } else {
                Some(PrechargeFailure::NoVoltageRise)
            }
        } else if elapsed >= ms(c.precharge_timeout_ms) {
            Some(PrechargeFailure::TooSlow)
        } else {
            None
        };
        let cause = failure?;
        self.last_failure = Some(cause);
        // Retrying into a short would only heat the precharge resistor again.
        let will_retry = cause != PrechargeFailure::Short && attempt < c.precharge_attempts;
        out.sequence(SequenceEvent::PrechargeFailed { cause, attempt, will_retry });
        if will_retry {
            let until = now + ms(c.precharge_retry_delay_ms);
            self.enter(now, config, SequenceState::RetryWait { until, attempt: attempt + 1 });
            None
        } else {
            self.close_requested = false;
            self.enter(now, config, SequenceState::Open);
            Some((RuleId::PrechargeFailed, Location::Pack, cause as i32))
        }
    }

    /// A contactor with feedback reports closed while commanded open.
    fn uncommanded_closure(&self, config: &Config, m: &Measurements) -> bool {
        let commanded = self.state.commanded();
        ContactorId::ALL.into_iter().any(|c| {
            has_feedback(config, c)
                && !commanded[c.index()]
                && m.feedback[c.index()].is_some_and(|s| s.value)
        })
    }

    /// The contactor is closed: feedback says so, or it has none and the settle time passed.
    fn confirmed(
        &self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        which: ContactorId,
        since: Instant,
    ) -> bool {
        if has_feedback(config, which) {
            m.feedback[which.index()].is_some_and(|s| s.value)
        } else {
            now >= since + Duration::from_millis(config.contactors.close_settle_ms.into())
        }
    }

    /// Changes state; contactors whose command changes start their feedback window now.
    fn enter(&mut self, now: Instant, config: &Config, next: SequenceState) {
        let before = self.state.commanded();
        let after = next.commanded();
        for c in ContactorId::ALL {
            let i = c.index();
            if before[i] != after[i] && has_feedback(config, c) {
                self.mismatch_since[i] = Some(now);
                self.reported[i] = false;
            }
        }
        self.state = next;
    }
}

/// Whether `which` has feedback configured.
pub(crate) fn has_feedback(config: &Config, which: ContactorId) -> bool {
    let f = &config.contactors.feedback;
    match which {
        ContactorId::Negative => f.negative,
        ContactorId::Precharge => f.precharge,
        ContactorId::Positive => f.positive,
    }
}
