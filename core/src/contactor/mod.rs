//! Contactor sequencing as one explicit state machine:
//!
//! ```text
//! Open --Start, nothing blocks, link not held at the pack--> ClosingNegative
//!   (the link conditions here and below apply to a dedicated link only: see "Shared links")
//! ClosingNegative --confirmed, and a bus sample since--> Precharging
//! ClosingNegative --link rises by more than the band--> Open + latched ContactorWelded
//! Precharging --bus within band of pack AND current below limit--> ClosingPositive
//! Precharging --no rise / too slow--> RetryWait --delay--> ClosingNegative   (bounded attempts)
//! Precharging --short, or attempts exhausted--> Open + latched PrechargeFailed
//! ClosingPositive --confirmed--> Closed (precharge relay opens)
//! Closed --Stop--> Stopping --current at or below break current, or deadline--> WeldCheck
//!   (Open at once on a shared link)
//! Stopping --Start--> Closed (the stop is cancelled)
//! WeldCheck --link falls out of the band--> Open (Precharging if a Start came meanwhile)
//! WeldCheck --link held at the pack for link_decay_ms--> Open + latched ContactorWelded
//! Open --link held at the pack for link_decay_ms after an open--> latched ContactorWelded
//! any --maximum-safety fault latched, or EmergencyStop--> Open at once
//! ```
//!
//! "Confirmed" means the contactor's feedback reports closed when it has feedback, or the settle
//! time has passed when it has none. Independently of the state, every contactor with feedback is
//! supervised: feedback that disagrees with the command for longer than the feedback timeout
//! latches `ContactorWelded` (commanded open, reports closed: the weld check after opening) or
//! `ContactorMismatch` (commanded closed, reports open).
//!
//! # Welds without feedback
//!
//! The presets have no feedback contacts, so a weld must show in the DC-link voltage (the bus
//! input, inverter side of the contactors; the checks are in [`link`], the band is
//! `precharge_band_mv`, the deadline `link_decay_ms`). The link follows the pack only through a
//! closed path on both rails; cut off, it discharges through the inverter's bleed resistor.
//!
//! - **Positive welded.** Once both mains open, the link is cut off on the negative rail and
//!   decays as if all were well: after the open nothing can see this weld. So a graceful stop
//!   opens the positive (and the precharge relay) first and keeps the negative closed in
//!   `WeldCheck` until the link has fallen out of the band; a welded positive keeps it at the
//!   pack, and at `link_decay_ms` the weld latches naming the positive and the negative opens. The
//!   restart is then refused before the negative closes onto a discharged link. An emergency
//!   open cannot wait for that (the positive may be exactly what failed to break the current),
//!   so it opens everything at once; a positive that welded there is found when the negative
//!   next closes: the link jumps to the pack with only the negative commanded, the sequence
//!   opens at the first sample that shows it (before precharge starts) and the weld latches
//!   naming the positive. That one closing onto the discharged link cannot be avoided without
//!   feedback.
//! - **Precharge relay welded.** The link rises through the resistor while only the negative is
//!   closed (named the precharge relay), or holds the link during `WeldCheck` (named the
//!   positive: the two paths cannot be told apart there, and either must be inspected).
//! - **Negative welded.** The positive alone isolates the pack and the link decays after every
//!   open; precharge runs as usual. Nothing the link shows reveals it until a second weld.
//! - **Both mains welded.** The staged stop finds the positive; after an emergency open the link
//!   never decays, and `link_decay_ms` after the open the weld latches naming the negative (a
//!   held link needs it closed). Closing waits while a link is still held at the pack after an
//!   open or at a start, so a quick restart cannot skip this check.
//!
//! There is no separate check of how fast precharge goes. A precharge "done" sooner than the
//! RC time constant allows needs the positive path closed, and that path was just seen not to
//! charge the link with only the negative closed; a healthy precharge, however fast its
//! resistor and capacitance make it, is never judged by these checks.
//!
//! A healthy link is never flagged as long as `link_decay_ms` covers the time the bleed takes to
//! pull it out of the band (about R_bleed × C × band / pack voltage). While closing waits for the
//! link, `Status::close_blocker` says [`Blocker::LinkDischarging`]; a link still held at the
//! pack at `link_decay_ms` latches the weld, so the wait always ends. A weld latched this way
//! clears on `ClearFaults` (no feedback can contradict it): clearing is the operator's statement
//! that the contactor was inspected.
//!
//! # Shared links
//!
//! All of the above needs a link fed only through this pack's contactors
//! (`contactors.dc_link = "dedicated"`, the default). Where another source may hold the link up
//! (parallel strings on one bus, each joining it live; an inverter whose DC input PV or another
//! battery keeps charged) its voltage says nothing about our contactors, and every stop would
//! latch a false weld. With `dc_link = "shared"` none of these checks run: a graceful stop opens
//! both mains at once (no `WeldCheck`), closing never waits for the link to discharge, and the
//! negative's closing is not judged by the link. Welds are then found by feedback alone, so
//! validation refuses a shared link without feedback on both mains. Precharge onto a live link
//! is the join: its verify (bus within `precharge_band_mv` of the pack, current settled) passes
//! at once on a link already at the pack voltage, and refuses to close the positive onto one
//! that is not (the attempts run out as `TooSlow` and latch `PrechargeFailed`).
//!
//! smlang would hide the timing guards and the per-state data this machine needs in macro input,
//! so it is a plain enum with one `match`.

mod link;

use crate::action::{OpenKind, PrechargeFailure, SequenceEvent};
use crate::blocker::Blocker;
use crate::config::Config;
use crate::input::ContactorId;
use crate::measure::Measurements;
use crate::outbox::Outbox;
use crate::rule::{Location, RuleId};
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
    /// The end of a graceful stop: positive and precharge open, the negative still closed until
    /// the DC link has fallen out of the precharge band (a welded positive holds it at the pack).
    WeldCheck {
        /// When the positive was commanded open.
        since: Instant,
        /// How the stop ends, reported once the negative opens.
        how: OpenKind,
    },
}

impl SequenceState {
    /// The commanded position of each contactor (indexed by [`ContactorId::index`]).
    pub const fn commanded(self) -> [bool; 3] {
        match self {
            SequenceState::Open | SequenceState::RetryWait { .. } => [false, false, false],
            SequenceState::ClosingNegative { .. } | SequenceState::WeldCheck { .. } => {
                [true, false, false]
            }
            SequenceState::Precharging { .. } => [true, true, false],
            SequenceState::ClosingPositive { .. } => [true, true, true],
            SequenceState::Closed | SequenceState::Stopping { .. } => [true, false, true],
        }
    }
}

/// The value of a weld found through the link: the contactor was found closed, as feedback
/// reports it.
const FOUND_CLOSED: i32 = 1;

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
    /// The DC link as the witness of welds without feedback.
    link: link::LinkWatch,
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
            link: link::LinkWatch { before_close: None, decay_since: None },
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
            SequenceState::Open
            | SequenceState::Stopping { .. }
            | SequenceState::WeldCheck { .. } => {}
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

    /// Closing waits for the DC link to discharge: after an open (or at a start onto a link held
    /// at the pack) until it leaves the precharge band, and in a staged stop's weld check a
    /// `Start` waits for the same before precharging from the held negative.
    pub fn waiting_for_link(&self) -> bool {
        match self.state {
            SequenceState::Open | SequenceState::RetryWait { .. } => {
                self.link.decay_since.is_some()
            }
            SequenceState::WeldCheck { .. } => self.close_requested,
            _ => false,
        }
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
        // First, so that a link seen to decay releases a waiting start in this same step.
        let decayed = self.watch_decay(now, config, m);
        let raise = match latched {
            Some(rule) => {
                self.open_now(now, config, OpenKind::Emergency { rule }, out);
                None
            }
            None => self.run_transitions(now, config, m, blocker, out),
        };
        let raise = decayed.or(raise);
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
        // Past a settle time, a closing negative waits for a bus sample (an input, not time).
        let state_deadline = match self.state {
            SequenceState::ClosingNegative { since, .. }
                if !has_feedback(config, ContactorId::Negative)
                    && now < since + ms(c.close_settle_ms) =>
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
            SequenceState::WeldCheck { since, .. } => Some(since + link::decay_time(config)),
            _ => None,
        };
        let decay_deadline = self.link.decay_since.map(|since| since + link::decay_time(config));
        let timeout = ms(c.feedback_timeout_ms);
        self.mismatch_since
            .iter()
            .flatten()
            .map(|since| *since + timeout)
            .chain(state_deadline)
            .chain(decay_deadline)
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
                if self.close_requested && blocker.is_none() && self.link_released(now, config, m) {
                    self.close_negative(now, config, m, 1);
                }
            }
            SequenceState::ClosingNegative { since, attempt } => {
                let before = self.link.before_close;
                let rise = if link::dedicated(config) {
                    link::rise_blame(config, m, now, since, before)
                } else {
                    None
                };
                if let Some(which) = rise {
                    let rule = RuleId::ContactorWelded;
                    self.open_now(now, config, OpenKind::Emergency { rule }, out);
                    return Some((rule, Location::Contactor(which), FOUND_CLOSED));
                }
                let closed_at = self.confirmed_at(config, m, ContactorId::Negative, since);
                // The sample only matters to the rise check, which a shared link does without.
                let looked = |t| !link::dedicated(config) || link::sampled_since(m, t);
                if closed_at.is_some_and(|t| now >= t && looked(t)) {
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
                if now >= until && blocker.is_none() && self.link_released(now, config, m) {
                    self.close_negative(now, config, m, attempt);
                }
            }
            SequenceState::Stopping { since } => {
                let fresh = Measurements::fresh(m.current, now, ms(config.freshness.current_ms));
                let how = if fresh.is_some_and(|i| i.magnitude() <= c.break_current_ma.0) {
                    Some(OpenKind::Graceful)
                } else if now >= since + ms(c.graceful_open_timeout_ms) {
                    Some(OpenKind::GracefulDeadline { current_ma: fresh })
                } else {
                    None
                };
                if let Some(how) = how {
                    if link::dedicated(config) {
                        self.enter(now, config, SequenceState::WeldCheck { since: now, how });
                    } else {
                        // A shared link would hold at the pack whatever the positive did:
                        // nothing to stage for, feedback supervises the open.
                        self.enter(now, config, SequenceState::Open);
                        out.sequence(SequenceEvent::Opened { how });
                    }
                }
            }
            SequenceState::WeldCheck { since, how } => {
                let held = link::held_at_pack(config, m, now, Some(since));
                if held == Some(false) || now >= since + link::decay_time(config) {
                    if held == Some(true) {
                        let rule = RuleId::ContactorWelded;
                        self.open_now(now, config, OpenKind::Emergency { rule }, out);
                        // Found: a second verdict on the same link could add nothing.
                        self.link.decay_since = None;
                        let location = Location::Contactor(ContactorId::Positive);
                        return Some((rule, location, FOUND_CLOSED));
                    }
                    // The link decayed with only the negative closed: neither the positive nor
                    // the precharge relay connects it, which is all the check before a precharge
                    // asks. A `Start` that came meanwhile precharges from here.
                    if held == Some(false) && self.close_requested && blocker.is_none() {
                        let attempt = 1;
                        self.enter(now, config, SequenceState::Precharging { since: now, attempt });
                        out.sequence(SequenceEvent::PrechargeStarted { attempt });
                        return None;
                    }
                    // Out of the band, or no fresh readings to judge by at the deadline.
                    self.enter(now, config, SequenceState::Open);
                    if held == Some(false) {
                        self.link.decay_since = None; // seen to decay already
                    }
                    out.sequence(SequenceEvent::Opened { how });
                }
            }
        }
        None
    }

    /// Commands the negative closed for precharge attempt `attempt`, noting the link voltage
    /// it must keep while only the negative is closed.
    fn close_negative(&mut self, now: Instant, config: &Config, m: &Measurements, attempt: u8) {
        self.link.before_close = m.bus.map(|b| b.value);
        self.enter(now, config, SequenceState::ClosingNegative { since: now, attempt });
    }

    /// Whether closing may begin as far as the link is concerned: no open is still waiting for
    /// the link to decay, and the link is not held at the pack (which starts such a wait).
    fn link_released(&mut self, now: Instant, config: &Config, m: &Measurements) -> bool {
        // Another source may hold a shared link at the pack: precharge joins it instead.
        if !link::dedicated(config) {
            return true;
        }
        if self.link.decay_since.is_some() {
            return false;
        }
        // Any fresh sample will do here: a link at the pack with everything open is suspect
        // whenever it was sampled.
        if link::held_at_pack(config, m, now, None) == Some(true) {
            self.link.decay_since = Some(now);
            return false;
        }
        true
    }

    /// After an open: resolves the wait for the link to decay. Returns the weld of the negative
    /// if the link is still held at the pack when the time is up.
    fn watch_decay(&mut self, now: Instant, config: &Config, m: &Measurements) -> Option<Raise> {
        let since = self.link.decay_since?;
        let held = link::held_at_pack(config, m, now, Some(since));
        if held == Some(false) {
            self.link.decay_since = None;
        } else if now >= since + link::decay_time(config) {
            self.link.decay_since = None;
            if held == Some(true) {
                self.close_requested = false;
                let location = Location::Contactor(ContactorId::Negative);
                return Some((RuleId::ContactorWelded, location, FOUND_CLOSED));
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
        self.confirmed_at(config, m, which, since).is_some_and(|t| now >= t)
    }

    /// From when the contactor commanded closed at `since` counts as closed: the sample time of
    /// feedback reporting closed, or the end of the settle time without feedback. `None`: its
    /// feedback does not report closed.
    fn confirmed_at(
        &self,
        config: &Config,
        m: &Measurements,
        which: ContactorId,
        since: Instant,
    ) -> Option<Instant> {
        if has_feedback(config, which) {
            m.feedback[which.index()].filter(|s| s.value).map(|s| s.at)
        } else {
            Some(since + Duration::from_millis(config.contactors.close_settle_ms.into()))
        }
    }

    /// Changes state; contactors whose command changes start their feedback window now.
    fn enter(&mut self, now: Instant, config: &Config, next: SequenceState) {
        let before = self.state.commanded();
        let after = next.commanded();
        // Everything opens: the link must now decay (the staged stop's verdicts withdraw this
        // again). Something closes: the wait is over.
        self.link.decay_since = if !link::dedicated(config) {
            None
        } else if before.contains(&true) && !after.contains(&true) {
            Some(now)
        } else if after.contains(&true) {
            None
        } else {
            self.link.decay_since
        };
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
