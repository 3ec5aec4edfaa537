//! The `[[expect]]` entries: what must hold, checked and labelled for the report.

use cellwarden_core::{Command, Duration, RuleId, Tier};

use super::{Checked, Ctx, Want, article};
use crate::scenario::file_name;
use crate::scenario::schema::{
    CommandName, EventName, ExpectKind, ExpectSpec, TierName, TriggerSpec,
};
use crate::scenario::{
    CauseName, Check, Compare, Condition, EventFilter, Expectation, OpenHow, Signal, Span,
    StateName, Trigger,
};

impl Ctx<'_> {
    pub(super) fn expectation(
        &self,
        i: usize,
        spec: &ExpectSpec,
        duration: Duration,
    ) -> Checked<Expectation> {
        let here = format!("expect[{i}]");
        let field = |name: &str| format!("{here}.{name}");
        let kind = file_name(spec.kind);
        let allowed: &[&str] = match spec.kind {
            ExpectKind::Within => {
                &["event", "rule", "tier", "how", "cause", "command", "after", "limit"]
            }
            ExpectKind::Never => &[
                "event", "rule", "tier", "how", "cause", "command", "signal", "above", "below",
                "from", "until",
            ],
            ExpectKind::By => &["event", "rule", "tier", "how", "cause", "command", "by"],
            ExpectKind::Count => {
                &["event", "rule", "tier", "how", "cause", "command", "count", "min", "max"]
            }
            ExpectKind::AtEnd => &["state", "latched", "signal", "above", "below"],
        };
        let present = present_fields(spec);
        if let Some(out_of_place) = present.iter().find(|f| !allowed.contains(f)) {
            let takes: Vec<String> = allowed.iter().map(|f| format!("`{f}`")).collect();
            return Err(self.key_error(
                &field(out_of_place),
                format!(
                    "does not apply to {} `{kind}` expectation; it takes {}",
                    article(&kind),
                    takes.join(", ")
                ),
            ));
        }
        let missing = |name: &str, needs: &str| {
            self.value_error(
                &field(name),
                format!("missing: {} `{kind}` expectation needs {needs}", article(&kind)),
            )
        };
        let parts = FilterParts {
            event: spec.event,
            rule: spec.rule.as_deref(),
            tier: spec.tier,
            how: spec.how,
            cause: spec.cause,
            command: spec.command,
        };
        let within_run = |name: &str, span: Span| -> Checked<Duration> {
            if span.0 > duration {
                Err(self.value_error(
                    &field(name),
                    format!("{span} is after the end of the run (duration = {})", Span(duration)),
                ))
            } else {
                Ok(span.0)
            }
        };
        let (check, label) = match spec.kind {
            ExpectKind::Within => {
                let needs = "`event`, `after` and `limit`";
                if spec.event.is_none() {
                    return Err(missing("event", needs));
                }
                let Some(after) = &spec.after else { return Err(missing("after", needs)) };
                let Some(limit) = spec.limit else { return Err(missing("limit", needs)) };
                let event = self.event_filter(&here, &parts)?;
                let after = self.trigger(&field("after"), after)?;
                let label = format!(
                    "{} within {limit} after {}",
                    filter_label(&event),
                    trigger_label(&after)
                );
                (Check::Within { after, event, limit: limit.0 }, label)
            }
            ExpectKind::Never => {
                let from = match spec.from {
                    Some(from) => within_run("from", from)?,
                    None => Duration::ZERO,
                };
                let until = match spec.until {
                    Some(until) => Some(within_run("until", until)?),
                    None => None,
                };
                if let Some(until) = until
                    && until < from
                {
                    return Err(self.value_error(
                        &field("until"),
                        format!("{} comes before `from` = {}", Span(until), Span(from)),
                    ));
                }
                let window = match (spec.from, spec.until) {
                    (None, None) => String::new(),
                    (Some(f), None) => format!(" from {f}"),
                    (None, Some(u)) => format!(" until {u}"),
                    (Some(f), Some(u)) => format!(" from {f} until {u}"),
                };
                match (spec.event, spec.signal) {
                    (Some(_), Some(_)) => {
                        return Err(self.key_error(
                            &field("signal"),
                            "give either `event` or `signal`, not both",
                        ));
                    }
                    (None, None) => return Err(missing("event", "`event` or `signal`")),
                    (Some(_), None) => {
                        for name in ["above", "below"] {
                            if present.contains(&name) {
                                return Err(self.key_error(
                                    &field(name),
                                    format!(
                                        "`{name}` compares a `signal`; this expectation watches \
                                         an `event`"
                                    ),
                                ));
                            }
                        }
                        let event = self.event_filter(&here, &parts)?;
                        let label = format!("never {}{window}", filter_label(&event));
                        (Check::NeverEvent { event, from, until }, label)
                    }
                    (None, Some(signal)) => {
                        self.no_filters(&here, &present)?;
                        let condition = self.condition(&here, signal, spec.above, spec.below)?;
                        let label = format!("never {}{window}", condition_label(&condition));
                        (Check::NeverSignal { condition, from, until }, label)
                    }
                }
            }
            ExpectKind::By => {
                let needs = "`event` and `by`";
                if spec.event.is_none() {
                    return Err(missing("event", needs));
                }
                let Some(by) = spec.by else { return Err(missing("by", needs)) };
                let by = within_run("by", by)?;
                let event = self.event_filter(&here, &parts)?;
                let label = format!("{} by {}", filter_label(&event), Span(by));
                (Check::By { event, by }, label)
            }
            ExpectKind::Count => {
                let needs = "`event` and `count` (or `min` and/or `max`)";
                if spec.event.is_none() {
                    return Err(missing("event", needs));
                }
                let (min, max) = match (spec.count, spec.min, spec.max) {
                    (Some(_), Some(_), _) => {
                        return Err(self.key_error(
                            &field("min"),
                            "give either `count` or `min`/`max`, not both",
                        ));
                    }
                    (Some(_), None, Some(_)) => {
                        return Err(self.key_error(
                            &field("max"),
                            "give either `count` or `min`/`max`, not both",
                        ));
                    }
                    (Some(count), None, None) => (count, count),
                    (None, None, None) => return Err(missing("count", needs)),
                    (None, min, max) => (min.unwrap_or(0), max.unwrap_or(u32::MAX)),
                };
                if min > max {
                    return Err(
                        self.value_error(&field("max"), format!("{max} is below `min` = {min}"))
                    );
                }
                let event = self.event_filter(&here, &parts)?;
                let times =
                    |n: u32| if n == 1 { "1 time".to_owned() } else { format!("{n} times") };
                let how_often = match (spec.count, spec.min, spec.max) {
                    (Some(n), _, _) => format!("exactly {}", times(n)),
                    (None, Some(_), Some(_)) => format!("between {min} and {}", times(max)),
                    (None, Some(_), None) => format!("at least {}", times(min)),
                    (None, None, _) => format!("at most {}", times(max)),
                };
                let label = format!("{} {how_often}", filter_label(&event));
                (Check::Count { event, min, max }, label)
            }
            ExpectKind::AtEnd => {
                let chosen: Vec<&str> = ["state", "latched", "signal"]
                    .into_iter()
                    .filter(|f| present.contains(f))
                    .collect();
                if chosen.len() > 1 {
                    return Err(self.key_error(
                        &field(chosen[1]),
                        format!(
                            "give one of `state`, `latched` or `signal`, not both `{}` and `{}`",
                            chosen[0], chosen[1]
                        ),
                    ));
                }
                if let Some(state) = spec.state {
                    self.no_comparison(&here, &present, "state")?;
                    (Check::AtEndState(state), format!("at end: {}", state_label(state)))
                } else if let Some(latched) = &spec.latched {
                    self.no_comparison(&here, &present, "latched")?;
                    if latched == "none" {
                        (Check::AtEndLatched(None), "at end: no fault latched".to_owned())
                    } else {
                        let rule = self.rule(&field("latched"), latched)?;
                        (Check::AtEndLatched(Some(rule)), format!("at end: {latched} latched"))
                    }
                } else if let Some(signal) = spec.signal {
                    let condition = self.condition(&here, signal, spec.above, spec.below)?;
                    (
                        Check::AtEndSignal(condition),
                        format!("at end: {}", condition_label(&condition)),
                    )
                } else {
                    return Err(missing("state", "one of `state`, `latched` or `signal`"));
                }
            }
        };
        let label = match &spec.name {
            Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
            _ => label,
        };
        Ok(Expectation { label, line: self.line_of(&here), check })
    }

    /// Filters are only for events.
    fn no_filters(&self, here: &str, present: &[&str]) -> Checked<()> {
        match present.iter().find(|f| FILTERS.contains(f)) {
            Some(name) => Err(self.key_error(
                &format!("{here}.{name}"),
                format!("`{name}` filters an `event`; this expectation watches a `signal`"),
            )),
            None => Ok(()),
        }
    }

    /// `above`/`below` only go with `signal`.
    fn no_comparison(&self, here: &str, present: &[&str], chosen: &str) -> Checked<()> {
        match present.iter().find(|f| **f == "above" || **f == "below") {
            Some(name) => Err(self.key_error(
                &format!("{here}.{name}"),
                format!("`{name}` compares a `signal`; this expectation checks `{chosen}`"),
            )),
            None => Ok(()),
        }
    }

    fn condition(
        &self,
        here: &str,
        signal: Signal,
        above: Option<f64>,
        below: Option<f64>,
    ) -> Checked<Condition> {
        let compare = match (above, below) {
            (Some(_), Some(_)) => {
                return Err(self.key_error(
                    &format!("{here}.below"),
                    "give either `above` or `below`, not both",
                ));
            }
            (None, None) => {
                return Err(self.value_error(
                    &format!("{here}.above"),
                    "missing: `signal` needs `above` or `below`",
                ));
            }
            (Some(v), None) => {
                Compare::Above(self.real(&format!("{here}.above"), v, Want::Finite)?)
            }
            (None, Some(v)) => {
                Compare::Below(self.real(&format!("{here}.below"), v, Want::Finite)?)
            }
        };
        Ok(Condition { signal, compare })
    }

    fn trigger(&self, here: &str, spec: &TriggerSpec) -> Checked<Trigger> {
        let mut present = Vec::new();
        for (name, set) in [
            ("rule", spec.rule.is_some()),
            ("tier", spec.tier.is_some()),
            ("how", spec.how.is_some()),
            ("cause", spec.cause.is_some()),
            ("command", spec.command.is_some()),
            ("above", spec.above.is_some()),
            ("below", spec.below.is_some()),
        ] {
            if set {
                present.push(name);
            }
        }
        match (spec.signal, spec.event) {
            (Some(_), Some(_)) => Err(self
                .key_error(&format!("{here}.event"), "give either `signal` or `event`, not both")),
            (None, None) => Err(self.value_error(
                &format!("{here}.signal"),
                "missing: `after` needs a `signal` (with `above` or `below`) or an `event`",
            )),
            (Some(signal), None) => {
                self.no_filters(here, &present)?;
                Ok(Trigger::Signal(self.condition(here, signal, spec.above, spec.below)?))
            }
            (None, Some(_)) => {
                self.no_comparison(here, &present, "an `event`")?;
                let parts = FilterParts {
                    event: spec.event,
                    rule: spec.rule.as_deref(),
                    tier: spec.tier,
                    how: spec.how,
                    cause: spec.cause,
                    command: spec.command,
                };
                Ok(Trigger::Event(self.event_filter(here, &parts)?))
            }
        }
    }

    fn rule(&self, field: &str, name: &str) -> Checked<RuleId> {
        RuleId::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = RuleId::ALL.iter().map(|r| r.name()).collect();
            self.value_error(
                field,
                format!("unknown rule `{name}`, expected one of {}", names.join(", ")),
            )
        })
    }

    /// The event and its filters, each filter checked against the event kind.
    fn event_filter(&self, here: &str, parts: &FilterParts<'_>) -> Checked<EventFilter> {
        let Some(event) = parts.event else {
            return Err(self.value_error(&format!("{here}.event"), "missing"));
        };
        let fault_event = matches!(
            event,
            EventName::FaultRaised
                | EventName::FaultReleased
                | EventName::FaultCleared
                | EventName::FaultClearRefused
        );
        let misplaced = |name: &str, belongs: &str| {
            self.key_error(
                &format!("{here}.{name}"),
                format!("`{name}` filters {belongs} events, not `{}`", file_name(event)),
            )
        };
        let fault_events = "`fault_raised`, `fault_released`, `fault_cleared` and \
                            `fault_clear_refused`";
        let rule = match parts.rule {
            Some(_) if !fault_event => return Err(misplaced("rule", fault_events)),
            Some(name) => Some(self.rule(&format!("{here}.rule"), name)?),
            None => None,
        };
        if parts.tier.is_some() && !fault_event {
            return Err(misplaced("tier", fault_events));
        }
        if parts.how.is_some() && event != EventName::ContactorsOpen {
            return Err(misplaced("how", "`contactors_open`"));
        }
        if parts.cause.is_some() && event != EventName::PrechargeFailed {
            return Err(misplaced("cause", "`precharge_failed`"));
        }
        if parts.command.is_some() && event != EventName::Command {
            return Err(misplaced("command", "`command`"));
        }
        Ok(EventFilter {
            event,
            rule,
            tier: parts.tier.map(Tier::from),
            how: parts.how,
            cause: parts.cause,
            command: parts.command.map(Command::from),
        })
    }
}

/// Expectation fields that filter an event.
const FILTERS: [&str; 5] = ["rule", "tier", "how", "cause", "command"];

/// The event part of an expectation or trigger.
struct FilterParts<'s> {
    event: Option<EventName>,
    rule: Option<&'s str>,
    tier: Option<TierName>,
    how: Option<OpenHow>,
    cause: Option<CauseName>,
    command: Option<CommandName>,
}

/// The optional fields of an expectation that are set, in the schema's order.
fn present_fields(spec: &ExpectSpec) -> Vec<&'static str> {
    let set = [
        ("event", spec.event.is_some()),
        ("rule", spec.rule.is_some()),
        ("tier", spec.tier.is_some()),
        ("how", spec.how.is_some()),
        ("cause", spec.cause.is_some()),
        ("command", spec.command.is_some()),
        ("signal", spec.signal.is_some()),
        ("above", spec.above.is_some()),
        ("below", spec.below.is_some()),
        ("after", spec.after.is_some()),
        ("limit", spec.limit.is_some()),
        ("by", spec.by.is_some()),
        ("count", spec.count.is_some()),
        ("min", spec.min.is_some()),
        ("max", spec.max.is_some()),
        ("state", spec.state.is_some()),
        ("latched", spec.latched.is_some()),
        ("from", spec.from.is_some()),
        ("until", spec.until.is_some()),
    ];
    set.into_iter().filter(|(_, is_set)| *is_set).map(|(name, _)| name).collect()
}

fn filter_label(filter: &EventFilter) -> String {
    let mut parts = Vec::new();
    if let Some(rule) = filter.rule {
        parts.push(format!("rule = {}", rule.name()));
    }
    if let Some(tier) = filter.tier {
        parts.push(format!("tier = {}", tier.name()));
    }
    if let Some(how) = filter.how {
        parts.push(format!("how = {}", file_name(how)));
    }
    if let Some(cause) = filter.cause {
        parts.push(format!("cause = {}", file_name(cause)));
    }
    if let Some(command) = filter.command {
        parts.push(format!("command = {}", file_name(command)));
    }
    if parts.is_empty() {
        file_name(filter.event)
    } else {
        format!("{} ({})", file_name(filter.event), parts.join(", "))
    }
}

fn condition_label(condition: &Condition) -> String {
    match condition.compare {
        Compare::Above(v) => format!("{} > {v}", file_name(condition.signal)),
        Compare::Below(v) => format!("{} < {v}", file_name(condition.signal)),
    }
}

fn trigger_label(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Signal(condition) => condition_label(condition),
        Trigger::Event(filter) => filter_label(filter),
    }
}

fn state_label(state: StateName) -> String {
    format!("contactors {}", file_name(state))
}
