//! Expectations: what the engine records during a run and how each kind is decided at the end.
//!
//! Events are recorded as they happen. Signal conditions are sampled at every engine step (the
//! steps are at most one measurement period apart), so a signal trigger is seen at the first step
//! at which it holds, exactly as late as the core itself can see it.

use cellwarden_core::{Action, Duration, FaultChange, RuleId, SequenceEvent};

use crate::report::text::fixed;
use crate::report::{Outcome, clock};
use crate::scenario::file_name;
use crate::scenario::{
    Check, Compare, EventFilter, EventName, Expectation, Signal, StateName, Trigger,
};

/// Something that happened, in the terms expectations use: the event and its details, in the
/// same shape as the filters that select it (a detail that does not apply is `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Happened {
    /// When, since the start.
    pub at: Duration,
    /// What, with its details.
    pub what: EventFilter,
}

impl Happened {
    /// An event without details.
    pub fn plain(at: Duration, event: EventName) -> Happened {
        let what =
            EventFilter { event, rule: None, tier: None, how: None, cause: None, command: None };
        Happened { at, what }
    }

    fn matches(&self, f: &EventFilter) -> bool {
        fn ok<T: PartialEq>(want: Option<T>, have: Option<T>) -> bool {
            want.is_none() || want == have
        }
        let w = &self.what;
        w.event == f.event
            && ok(f.rule, w.rule)
            && ok(f.tier, w.tier)
            && ok(f.how, w.how)
            && ok(f.cause, w.cause)
            && ok(f.command, w.command)
    }
}

/// The watchable event a core action amounts to: `None` for contactor coils, voltage limits and
/// balancing, which are states rather than events.
pub fn happened(at: Duration, action: &Action) -> Option<Happened> {
    let mut happened = Happened::plain(at, EventName::LimitsChanged);
    let w = &mut happened.what;
    match *action {
        Action::Contactor { .. } | Action::Balance(_) | Action::VoltageLimits(_) => return None,
        Action::Limits(_) => {}
        Action::Fault(e) => {
            w.event = match e.change {
                FaultChange::Raised => EventName::FaultRaised,
                FaultChange::Released => EventName::FaultReleased,
                FaultChange::Cleared => EventName::FaultCleared,
                FaultChange::ClearRefused => EventName::FaultClearRefused,
            };
            w.rule = Some(e.rule);
            w.tier = Some(e.tier);
        }
        Action::Sequence(e) => match e {
            SequenceEvent::CloseBlocked { .. } => w.event = EventName::CloseBlocked,
            SequenceEvent::PrechargeStarted { .. } => w.event = EventName::PrechargeStarted,
            SequenceEvent::PrechargeDone { .. } => w.event = EventName::PrechargeDone,
            SequenceEvent::PrechargeFailed { cause, .. } => {
                w.event = EventName::PrechargeFailed;
                w.cause = Some(cause.into());
            }
            SequenceEvent::Closed => w.event = EventName::ContactorsClosed,
            SequenceEvent::Stopping => w.event = EventName::Stopping,
            SequenceEvent::Opened { how } => {
                w.event = EventName::ContactorsOpen;
                w.how = Some(how.into());
            }
        },
    }
    Some(happened)
}

/// Every signal's value at one step, indexed by [`signal_index`].
pub type Signals = [f64; SIGNAL_COUNT];

/// Number of signals.
pub const SIGNAL_COUNT: usize = 22;

/// Position of a signal in [`Signals`].
pub fn signal_index(signal: Signal) -> usize {
    match signal {
        Signal::CellMvMax => 0,
        Signal::CellMvMin => 1,
        Signal::CellSpreadMv => 2,
        Signal::TempCMax => 3,
        Signal::TempCMin => 4,
        Signal::CurrentA => 5,
        Signal::CurrentAbsA => 6,
        Signal::PackV => 7,
        Signal::BusV => 8,
        Signal::SocPctMin => 9,
        Signal::SocPctMax => 10,
        Signal::ChargeLimitA => 11,
        Signal::DischargeLimitA => 12,
        Signal::ContactorsClosed => 13,
        Signal::ClosedWithLatchedFault => 14,
        Signal::PacksConnected => 15,
        Signal::PackOverLimitA => 16,
        Signal::InverterOverLimitA => 17,
        Signal::SocEstimatePct => 18,
        Signal::SocErrorPct => 19,
        Signal::InverterCvlV => 20,
        Signal::InverterCvlOverPackV => 21,
    }
}

/// Per-expectation memory of the signal checks.
#[derive(Clone, Copy, Debug, Default)]
struct Memory {
    /// `within` with a signal trigger: when it first held, and the value.
    triggered: Option<(Duration, f64)>,
    /// `never` on a signal: the first violation.
    violated: Option<(Duration, f64)>,
    /// `never` on a signal: the extreme seen in the window, in the direction of the check.
    extreme: Option<(Duration, f64)>,
}

/// Records a run and decides its expectations.
#[derive(Debug)]
pub struct Watch {
    expectations: Vec<Expectation>,
    memory: Vec<Memory>,
    events: Vec<Happened>,
}

impl Watch {
    /// Watches for `expectations`.
    pub fn new(expectations: &[Expectation]) -> Watch {
        Watch {
            expectations: expectations.to_vec(),
            memory: vec![Memory::default(); expectations.len()],
            events: Vec::new(),
        }
    }

    /// Records an event.
    pub fn event(&mut self, happened: Happened) {
        self.events.push(happened);
    }

    /// Samples the signal conditions at one step.
    pub fn observe(&mut self, at: Duration, signals: &Signals) {
        for (e, m) in self.expectations.iter().zip(&mut self.memory) {
            match &e.check {
                Check::Within { after: Trigger::Signal(c), .. } if m.triggered.is_none() => {
                    let v = signals[signal_index(c.signal)];
                    if c.holds(v) {
                        m.triggered = Some((at, v));
                    }
                }
                Check::NeverSignal { condition: c, from, until } => {
                    if at < *from || until.is_some_and(|u| at > u) {
                        continue;
                    }
                    let v = signals[signal_index(c.signal)];
                    let more_extreme = match (c.compare, m.extreme) {
                        (_, None) => true,
                        (Compare::Above(_), Some((_, x))) => v > x,
                        (Compare::Below(_), Some((_, x))) => v < x,
                    };
                    if more_extreme {
                        m.extreme = Some((at, v));
                    }
                    if m.violated.is_none() && c.holds(v) {
                        m.violated = Some((at, v));
                    }
                }
                _ => {}
            }
        }
    }

    /// Decides every expectation at the end of the run.
    pub fn finish(
        &self,
        end: Duration,
        signals: &Signals,
        state: StateName,
        latched: &[RuleId],
    ) -> Vec<Outcome> {
        self.expectations
            .iter()
            .zip(&self.memory)
            .map(|(e, m)| {
                let (passed, detail) = self.decide(e, m, end, signals, state, latched);
                Outcome { label: e.label.clone(), line: e.line, passed, detail }
            })
            .collect()
    }

    /// The events seen, in order.
    pub fn events(&self) -> &[Happened] {
        &self.events
    }

    fn first(&self, f: &EventFilter, from: Duration) -> Option<&Happened> {
        self.first_indexed(f, from, None).map(|(_, h)| h)
    }

    /// The first matching event at or after `from`, other than the event at index `not`.
    fn first_indexed(
        &self,
        f: &EventFilter,
        from: Duration,
        not: Option<usize>,
    ) -> Option<(usize, &Happened)> {
        self.events
            .iter()
            .enumerate()
            .find(|(i, h)| Some(*i) != not && h.at >= from && h.matches(f))
    }

    fn decide(
        &self,
        e: &Expectation,
        m: &Memory,
        end: Duration,
        signals: &Signals,
        state: StateName,
        latched: &[RuleId],
    ) -> (bool, String) {
        match &e.check {
            Check::Within { after, event, limit } => {
                // Everything the core decides at one instant is simultaneous, whatever order its
                // drain lists it in: an event at the trigger's instant follows it. The trigger
                // event itself never counts as what follows it.
                let trigger = match after {
                    Trigger::Signal(c) => m.triggered.map(|(at, v)| {
                        let what =
                            format!("{} was {} at {}", file_name(c.signal), num(v), clock(at));
                        (at, None, what)
                    }),
                    Trigger::Event(f) => {
                        self.first_indexed(f, Duration::ZERO, None).map(|(i, h)| {
                            (h.at, Some(i), format!("{} at {}", file_name(f.event), clock(h.at)))
                        })
                    }
                };
                let Some((start, trigger_index, what)) = trigger else {
                    return (false, "the trigger never happened, so nothing was tested".into());
                };
                match self.first_indexed(event, start, trigger_index).map(|(_, h)| h) {
                    Some(h) => {
                        let took = h.at.saturating_sub(start);
                        let ok = took <= *limit;
                        let verdict = if ok { "within" } else { "later than" };
                        (
                            ok,
                            format!(
                                "{what}; {} followed at {} ({} ms, {verdict} {} ms)",
                                file_name(event.event),
                                clock(h.at),
                                took.as_millis(),
                                limit.as_millis()
                            ),
                        )
                    }
                    None => (false, format!("{what}; {} never followed", file_name(event.event))),
                }
            }
            Check::NeverEvent { event, from, until } => {
                let hit = self
                    .events
                    .iter()
                    .find(|h| h.at >= *from && until.is_none_or(|u| h.at <= u) && h.matches(event));
                match hit {
                    Some(h) => (false, format!("{} at {}", file_name(h.what.event), clock(h.at))),
                    None => (true, format!("no {} seen", file_name(event.event))),
                }
            }
            Check::NeverSignal { condition, .. } => {
                let name = file_name(condition.signal);
                match (m.violated, m.extreme) {
                    (Some((at, v)), _) => {
                        (false, format!("{name} was {} at {}", num(v), clock(at)))
                    }
                    (None, Some((at, v))) => {
                        (true, format!("{name} peaked at {} at {}", num(v), clock(at)))
                    }
                    (None, None) => {
                        (false, "the window held no step, so nothing was tested".into())
                    }
                }
            }
            Check::By { event, by } => match self.first(event, Duration::ZERO) {
                Some(h) if h.at <= *by => {
                    (true, format!("{} at {}", file_name(event.event), clock(h.at)))
                }
                Some(h) => {
                    (false, format!("{} came late, at {}", file_name(event.event), clock(h.at)))
                }
                None => (false, format!("{} never happened", file_name(event.event))),
            },
            Check::Count { event, min, max } => {
                let n = self.events.iter().filter(|h| h.matches(event)).count();
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                (
                    (*min..=*max).contains(&n),
                    format!("{} happened {n} time{}", file_name(event.event), plural(n)),
                )
            }
            Check::AtEndState(want) => (
                *want == state,
                format!("the sequence ended {} at {}", file_name(state), clock(end)),
            ),
            Check::AtEndLatched(want) => {
                let passed = match want {
                    Some(rule) => latched.contains(rule),
                    None => latched.is_empty(),
                };
                let names: Vec<&str> = latched.iter().map(|r| r.name()).collect();
                let detail = match names.as_slice() {
                    [] => "nothing was latched at the end".to_string(),
                    [one] => format!("{one} was latched at the end"),
                    many => format!("{} were latched at the end", many.join(", ")),
                };
                (passed, detail)
            }
            Check::AtEndSignal(condition) => {
                let v = signals[signal_index(condition.signal)];
                (
                    condition.holds(v),
                    format!("{} was {} at the end", file_name(condition.signal), num(v)),
                )
            }
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Numbers in details: three decimals at most, no trailing zeros, never `-0`.
fn num(x: f64) -> String {
    fixed(x, 3).trim_end_matches('0').trim_end_matches('.').to_string()
}
