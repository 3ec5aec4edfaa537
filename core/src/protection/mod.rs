//! Protection: one rule table evaluated uniformly.
//!
//! Each rule has up to three tiers (operating, recommended, maximum). A tier trips when its
//! condition has held continuously for the rule's debounce time, counted from the sample time of
//! the first violating sample, and releases when the value is back inside its hysteresis. The
//! maximum tier latches: it stays active until a `ClearFaults` command finds the condition back
//! inside the hysteresis. Rules never decide on data that was never received; data older than its
//! freshness limit is a maximum-safety fault of its own.

mod tier;

pub use crate::rule::{Direction, Kind, Location, RULE_COUNT, RuleId, RuleSpec, Tier};

use crate::action::{CurrentLimits, FaultChange, FaultEvent, LimitReason};
use crate::config::{Config, RawThresholds};
use crate::measure::{Measurements, Sample, Summary};
use crate::outbox::Outbox;
use crate::time::{Duration, Instant};
use crate::units::{MilliAmps, MilliVolts};
use tier::{TierCell, TierState};

/// What the rules look at in one evaluation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Context<'a> {
    pub now: Instant,
    pub summary: &'a Summary,
    pub measurements: &'a Measurements,
    /// Fresh current is flowing into the pack above the idle threshold.
    pub charging: bool,
    /// Sample time of the first current sample of the present charging run, if charging.
    pub charging_since: Option<Instant>,
    /// Every contactor with feedback reports what it is commanded to be.
    pub feedback_consistent: bool,
    /// The bus voltage is needed: a close is requested or a contactor is commanded closed.
    pub bus_needed: bool,
}

/// A rule's value at one moment: what, where, and when it was sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Observed {
    value: i32,
    location: Location,
    at: Instant,
}

/// The state of one rule, for telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RuleStatus {
    /// The most severe active tier, if any.
    pub active: Option<Tier>,
    /// The maximum tier is latched.
    pub latched: bool,
    /// A violation is being debounced.
    pub pending: bool,
    /// Where the most severe active tier was raised.
    pub location: Location,
    /// The value when it was raised.
    pub value: i32,
}

/// The protection engine: per rule and tier, a debounce/hysteresis/latch state.
#[derive(Clone, Debug)]
pub(crate) struct Protection {
    thresholds: [RawThresholds; RULE_COUNT],
    cells: [[TierCell; 3]; RULE_COUNT],
    /// The bus voltage was needed at the last evaluation (its staleness deadline counts then).
    bus_needed: bool,
    /// The direction the cell-imbalance rule restricts while any of its tiers is active.
    imbalance: ImbalanceSide,
}

impl Protection {
    pub fn new(config: &Config) -> Self {
        Protection {
            thresholds: RuleId::ALL.map(|rule| rule.thresholds(config)),
            cells: [[TierCell::CLEAR; 3]; RULE_COUNT],
            bus_needed: false,
            imbalance: ImbalanceSide::Clear,
        }
    }

    /// Evaluates every threshold, freshness and hardware rule at `ctx.now`.
    pub fn evaluate(&mut self, ctx: &Context<'_>, out: &mut Outbox) {
        self.bus_needed = ctx.bus_needed;
        for rule in RuleId::ALL {
            let spec = rule.spec();
            let raw = self.thresholds[rule.index()];
            let observed = observe(rule, ctx);
            for tier in Tier::ALL {
                let Some(threshold) = raw.tiers[tier as usize] else { continue };
                let gated = tier == Tier::Maximum && spec.maximum_only_while_charging;
                let gate_open = !gated || ctx.charging;
                let cell = &mut self.cells[rule.index()][tier as usize];
                let change = match spec.kind {
                    Kind::Threshold => {
                        let violating =
                            gate_open && observed.is_some_and(|o| beyond(spec, o.value, threshold));
                        let released = observed
                            .is_none_or(|o| inside(spec, o.value, threshold, raw.hysteresis));
                        // A tier that only applies while charging is violated from the later of
                        // the value's sample and the start of charging.
                        let mut since = observed.map(|o| o.at);
                        if gated {
                            since = since.max(ctx.charging_since);
                        }
                        cell.step(ctx.now, tier, violating, released, since, raw.debounce)
                    }
                    Kind::Freshness => {
                        let limit = Duration::from_millis(threshold as u64);
                        let stale =
                            observed.is_some_and(|o| ctx.now.saturating_since(o.at) >= limit);
                        cell.step(ctx.now, tier, stale, !stale, None, Duration::ZERO)
                    }
                    Kind::Event => {
                        let active = rule == RuleId::HardwareFault && observed.is_some();
                        cell.step(ctx.now, tier, active, !active, None, Duration::ZERO)
                    }
                };
                if let Some(change) = change {
                    let o = observed.unwrap_or(Observed {
                        value: 0,
                        location: Location::Pack,
                        at: ctx.now,
                    });
                    if change == FaultChange::Raised {
                        cell.location = o.location;
                        cell.value = o.value;
                    }
                    out.event(FaultEvent {
                        at: ctx.now,
                        rule,
                        tier,
                        change,
                        location: o.location,
                        value: o.value,
                    });
                }
            }
        }
        let imbalance = RuleId::CellImbalance;
        let active = self.cells[imbalance.index()].iter().any(|c| c.state == TierState::Active);
        let margin = self.thresholds[imbalance.index()].hysteresis;
        self.imbalance = self.imbalance.next(active, ctx.summary, margin);
    }

    /// Raises (and latches) the maximum tier of an event rule, once.
    pub fn raise(
        &mut self,
        now: Instant,
        rule: RuleId,
        location: Location,
        value: i32,
        out: &mut Outbox,
    ) {
        let cell = &mut self.cells[rule.index()][Tier::Maximum as usize];
        if cell.state == TierState::Active {
            return;
        }
        *cell = TierCell { state: TierState::Active, location, value };
        out.event(FaultEvent {
            at: now,
            rule,
            tier: Tier::Maximum,
            change: FaultChange::Raised,
            location,
            value,
        });
    }

    /// `ClearFaults`: clears each latched maximum tier whose condition is back inside its
    /// hysteresis, and reports the others as refused.
    pub fn clear_latched(&mut self, ctx: &Context<'_>, out: &mut Outbox) {
        for rule in RuleId::ALL {
            let cell = &mut self.cells[rule.index()][Tier::Maximum as usize];
            if cell.state != TierState::Active {
                continue;
            }
            let spec = rule.spec();
            let raw = self.thresholds[rule.index()];
            let observed = observe(rule, ctx);
            let ok = match spec.kind {
                Kind::Threshold => {
                    let threshold = raw.tiers[Tier::Maximum as usize].unwrap_or(0);
                    (spec.maximum_only_while_charging && !ctx.charging)
                        || observed.is_none_or(|o| inside(spec, o.value, threshold, raw.hysteresis))
                }
                Kind::Freshness => {
                    // Nothing observed: never received (which cannot have latched) or not
                    // needed now (the bus voltage with the pack open and idle).
                    let limit = Duration::from_millis(raw.tiers[2].unwrap_or(0) as u64);
                    observed.is_none_or(|o| ctx.now.saturating_since(o.at) < limit)
                }
                Kind::Event => match rule {
                    RuleId::HardwareFault => observed.is_none(),
                    RuleId::ContactorWelded | RuleId::ContactorMismatch => ctx.feedback_consistent,
                    _ => true,
                },
            };
            let change = if ok {
                cell.state = TierState::Clear;
                FaultChange::Cleared
            } else {
                FaultChange::ClearRefused
            };
            // Report the value as it is now; event rules have none and keep the raised one.
            let (location, value) =
                observed.map_or((cell.location, cell.value), |o| (o.location, o.value));
            out.event(FaultEvent {
                at: ctx.now,
                rule,
                tier: Tier::Maximum,
                change,
                location,
                value,
            });
        }
    }

    /// The first rule (in precedence order) whose maximum tier is latched.
    pub fn latched(&self) -> Option<RuleId> {
        RuleId::ALL.into_iter().find(|rule| {
            self.cells[rule.index()][Tier::Maximum as usize].state == TierState::Active
        })
    }

    /// The earliest moment a pending debounce completes or a fresh value goes stale.
    pub fn next_deadline(&self, summary: &Summary, measurements: &Measurements) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for rule in RuleId::ALL {
            let raw = self.thresholds[rule.index()];
            let cells = &self.cells[rule.index()];
            for cell in cells {
                if let TierState::Pending { since } = cell.state {
                    consider(since + raw.debounce);
                }
            }
            if rule.spec().kind == Kind::Freshness && cells[2].state != TierState::Active {
                let oldest = match rule {
                    RuleId::CellVoltageStale => summary.cell_oldest.map(|e| e.at),
                    RuleId::TemperatureStale => summary.temperature_oldest.map(|e| e.at),
                    RuleId::CurrentStale => measurements.current.map(|s| s.at),
                    RuleId::BusVoltageStale => {
                        measurements.bus.filter(|_| self.bus_needed).map(|s| s.at)
                    }
                    _ => measurements.pack.map(|s| s.at),
                };
                if let (Some(at), Some(ms)) = (oldest, raw.tiers[2]) {
                    consider(at + Duration::from_millis(ms as u64));
                }
            }
        }
        next
    }

    /// The current limits the active tiers allow, each with the first rule that binds it.
    pub fn limits(&self, config: &Config, summary: &Summary) -> CurrentLimits {
        let mut charge = Binding::new(config.charge_current_max_ma);
        let mut discharge = Binding::new(config.discharge_current_max_ma);
        for rule in RuleId::ALL {
            let direction = match rule {
                // An imbalance endangers the outlier: a low cell is hurt by discharging and
                // helped by charging, a high cell the other way round. Restricting only the
                // dangerous direction lets a pack with a weak cell at the empty end recharge
                // (and one with a full cell at the top discharge); the cell voltage rules still
                // guard every cell in both directions.
                //
                // The side is chosen when the rule is raised and held while it stays active
                // (see [`ImbalanceSide`]): near the point where both ends stand out equally,
                // the outlier changes with every sample, and so did the restricted direction.
                RuleId::CellImbalance => self.imbalance.direction(summary),
                _ => rule.spec().direction,
            };
            for tier in Tier::ALL {
                let cell = &self.cells[rule.index()][tier as usize];
                if cell.state != TierState::Active {
                    continue;
                }
                let reason =
                    LimitReason::Rule { rule, tier, location: cell.location, value: cell.value };
                let allowed = |max: MilliAmps| match tier {
                    Tier::Operating => MilliAmps(config.operating_limit_derate.of(max.0)),
                    Tier::Recommended | Tier::Maximum => MilliAmps(0),
                };
                // A latched maximum tier has opened the contactors: nothing flows either way.
                let both = tier == Tier::Maximum;
                if both || direction.charge() {
                    charge.offer(allowed(config.charge_current_max_ma), tier, reason);
                }
                if both || direction.discharge() {
                    discharge.offer(allowed(config.discharge_current_max_ma), tier, reason);
                }
            }
        }
        CurrentLimits {
            charge_ma: charge.limit,
            charge_reason: charge.reason,
            discharge_ma: discharge.limit,
            discharge_reason: discharge.reason,
        }
    }

    /// Per-rule state for telemetry.
    pub fn status(&self) -> [RuleStatus; RULE_COUNT] {
        core::array::from_fn(|i| {
            let cells = &self.cells[i];
            let active =
                Tier::ALL.into_iter().rev().find(|t| cells[*t as usize].state == TierState::Active);
            let source = active.map_or(&cells[0], |t| &cells[t as usize]);
            RuleStatus {
                active,
                latched: cells[2].state == TierState::Active,
                pending: cells.iter().any(|c| matches!(c.state, TierState::Pending { .. })),
                location: source.location,
                value: source.value,
            }
        })
    }
}

/// The lowest limit offered so far in one direction, and what binds it.
struct Binding {
    limit: MilliAmps,
    tier: Option<Tier>,
    reason: LimitReason,
}

impl Binding {
    fn new(max: MilliAmps) -> Self {
        Binding { limit: max, tier: None, reason: LimitReason::ConfiguredMaximum }
    }

    /// A lower limit wins; between equal limits the more severe tier names the reason (a
    /// latched maximum explains a zero better than a recommended tier), then precedence order.
    fn offer(&mut self, limit: MilliAmps, tier: Tier, reason: LimitReason) {
        if limit < self.limit || (limit == self.limit && Some(tier) > self.tier) {
            *self = Binding { limit, tier: Some(tier), reason };
        }
    }
}

/// `value` violates `threshold`.
fn beyond(spec: &RuleSpec, value: i32, threshold: i32) -> bool {
    match spec.side {
        crate::rule::Side::High => value > threshold,
        crate::rule::Side::Low => value < threshold,
    }
}

/// `value` is back inside `threshold` by at least `hysteresis`.
fn inside(spec: &RuleSpec, value: i32, threshold: i32, hysteresis: i32) -> bool {
    match spec.side {
        crate::rule::Side::High => value <= threshold.saturating_sub(hysteresis),
        crate::rule::Side::Low => value >= threshold.saturating_add(hysteresis),
    }
}

fn sample_age(now: Instant, s: Sample<impl Copy>, location: Location) -> Observed {
    let age = now.saturating_since(s.at).as_millis().min(i32::MAX as u64) as i32;
    Observed { value: age, location, at: s.at }
}

/// The direction the cell-imbalance rule restricts, with a hysteresis on the chosen side.
///
/// Which end endangers a cell is the end that stands out (see [`outlier`]): a low cell is hurt
/// by discharging, a high one by charging. Read afresh at every evaluation, a pack whose highest
/// and lowest cell stand out about equally flipped the restricted direction from one sample to
/// the next (an LFP rack at the top knee, in a 30-day run: charge, then discharge, then both,
/// once a second for a minute). So the side is held:
///
/// - when the rule is raised, the end that stands out chooses the side; at an exact tie both
///   directions are restricted until one end stands out;
/// - a chosen side stays while the rule is active, and changes only when the other end comes
///   to stand out by more than `margin` (the rule's hysteresis) beyond it: then that end is
///   the one endangered, and its side is restricted instead.
///
/// Within `margin` of a tie neither end is much more endangered than the other, and the held
/// side stands. Beyond it the restricted direction is the one reading the outlier afresh
/// gives, so protection follows a real change of side. Restricting both directions instead
/// would strand a pack at the empty end with the PV unable to recharge it
/// (`lfp_winter_day_csv.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ImbalanceSide {
    /// No tier of the rule is active.
    Clear,
    /// Active, and raised with both ends standing out exactly alike: both directions.
    Both,
    /// Active, restricting the direction that endangers this end.
    Side(Outlier),
}

impl ImbalanceSide {
    /// The state after an evaluation in which the rule is `active`.
    fn next(self, active: bool, summary: &Summary, margin: i32) -> ImbalanceSide {
        if !active {
            return ImbalanceSide::Clear;
        }
        match self {
            ImbalanceSide::Clear | ImbalanceSide::Both => {
                outlier(summary).map_or(ImbalanceSide::Both, ImbalanceSide::Side)
            }
            ImbalanceSide::Side(held) => match outlier_beyond(summary, margin.max(0)) {
                Some(end) if end != held => ImbalanceSide::Side(end),
                _ => self,
            },
        }
    }

    /// The direction restricted while a tier is active. Before the first evaluation that saw
    /// the rule active (a tier raised by this very evaluation is always seen: `next` runs at
    /// the end of `evaluate`), the outlier read afresh.
    fn direction(self, summary: &Summary) -> Direction {
        let side = |end: Outlier| match end {
            Outlier::Low => Direction::Discharge,
            Outlier::High => Direction::Charge,
        };
        match self {
            ImbalanceSide::Side(end) => side(end),
            ImbalanceSide::Both => Direction::Both,
            ImbalanceSide::Clear => outlier(summary).map_or(Direction::Both, side),
        }
    }
}

/// Which end of the cell voltages stands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outlier {
    /// The lowest cell is further from the mean than the highest.
    Low,
    /// The highest cell is further from the mean than the lowest.
    High,
}

/// The outlier of the cell voltages, or `None` when not every cell has been received or both
/// ends are equally far from the mean.
fn outlier(s: &Summary) -> Option<Outlier> {
    let (max, min, mean) = (s.cell_max?, s.cell_min?, i64::from(s.cell_mean_mv?));
    let below = mean - i64::from(min.value);
    let above = i64::from(max.value) - mean;
    match below.cmp(&above) {
        core::cmp::Ordering::Greater => Some(Outlier::Low),
        core::cmp::Ordering::Less => Some(Outlier::High),
        core::cmp::Ordering::Equal => None,
    }
}

/// The end that stands out by more than `margin` mV beyond the other, or `None`.
fn outlier_beyond(s: &Summary, margin: i32) -> Option<Outlier> {
    let (max, min, mean) = (s.cell_max?, s.cell_min?, i64::from(s.cell_mean_mv?));
    let below = mean - i64::from(min.value);
    let above = i64::from(max.value) - mean;
    let margin = i64::from(margin);
    if below > above + margin {
        Some(Outlier::Low)
    } else if above > below + margin {
        Some(Outlier::High)
    } else {
        None
    }
}

/// The value a rule looks at, or `None` when it was never received.
fn observe(rule: RuleId, ctx: &Context<'_>) -> Option<Observed> {
    let s = ctx.summary;
    let m = ctx.measurements;
    let cell = |e: crate::measure::Extreme| Observed {
        value: e.value,
        location: Location::Cell(e.index),
        at: e.at,
    };
    let sensor = |e: crate::measure::Extreme| Observed {
        value: e.value,
        location: Location::Sensor(e.index),
        at: e.at,
    };
    let pack =
        |s: Sample<MilliVolts>| Observed { value: s.value.0, location: Location::Pack, at: s.at };
    match rule {
        RuleId::CellOverVoltage => s.cell_max.map(cell),
        RuleId::CellUnderVoltage => s.cell_min.map(cell),
        RuleId::PackOverVoltage | RuleId::PackUnderVoltage => m.pack.map(pack),
        RuleId::ChargeOverCurrent => {
            m.current.map(|c| Observed { value: c.value.0, location: Location::Pack, at: c.at })
        }
        RuleId::DischargeOverCurrent => m.current.map(|c| Observed {
            value: c.value.0.saturating_neg(),
            location: Location::Pack,
            at: c.at,
        }),
        RuleId::ChargeOverTemperature | RuleId::DischargeOverTemperature => {
            s.temperature_max.map(sensor)
        }
        RuleId::ChargeUnderTemperature | RuleId::DischargeUnderTemperature => {
            s.temperature_min.map(sensor)
        }
        RuleId::CellImbalance => match (s.cell_max, s.cell_min) {
            (Some(max), Some(min)) => {
                // Name the outlier: the extreme cell further from the mean. A single weak or
                // leaking cell is then the one reported, not whichever cell happens to be top.
                let low_is_outlier = outlier(s) == Some(Outlier::Low);
                let outlier = if low_is_outlier { min.index } else { max.index };
                Some(Observed {
                    value: max.value.saturating_sub(min.value),
                    location: Location::Cell(outlier),
                    at: max.at.max(min.at),
                })
            }
            _ => None,
        },
        RuleId::PackVoltageMismatch => match (s.cell_sum_mv, m.pack) {
            (Some(sum), Some(p)) => {
                let diff = (sum - i64::from(p.value.0)).unsigned_abs().min(i32::MAX as u64);
                let latest = s.cell_max.map_or(p.at, |c| c.at.max(p.at));
                Some(Observed { value: diff as i32, location: Location::Pack, at: latest })
            }
            _ => None,
        },
        RuleId::CellVoltageStale => s.cell_oldest.map(|e| Observed {
            value: e.value,
            location: Location::Cell(e.index),
            at: e.at,
        }),
        RuleId::TemperatureStale => s.temperature_oldest.map(|e| Observed {
            value: e.value,
            location: Location::Sensor(e.index),
            at: e.at,
        }),
        RuleId::CurrentStale => m.current.map(|c| sample_age(ctx.now, c, Location::Pack)),
        RuleId::PackVoltageStale => m.pack.map(|p| sample_age(ctx.now, p, Location::Pack)),
        RuleId::BusVoltageStale => {
            m.bus.filter(|_| ctx.bus_needed).map(|b| sample_age(ctx.now, b, Location::Pack))
        }
        RuleId::HardwareFault => m.hardware_fault.filter(|h| h.value).map(|h| Observed {
            value: 1,
            location: Location::Pack,
            at: h.at,
        }),
        RuleId::ContactorWelded | RuleId::ContactorMismatch | RuleId::PrechargeFailed => None,
    }
}
