//! Protection thresholds against the chemistry's physical envelope and against each other.
//!
//! The tier order of each rule is checked with the rule itself ([`super::check_thresholds`]);
//! this adds what a tier order alone lets through:
//!
//! - every set tier inside what its quantity can physically be: cell voltages inside the
//!   chemistry's envelope ([`crate::chemistry`]), pack voltages inside it times the cell count,
//!   temperatures inside its charge or discharge window, currents, the cell spread and the
//!   sum-of-cells mismatch above zero (and the latter two no wider than the envelope);
//! - each window the right way round: the mildest under-voltage (or under-temperature) tier
//!   below the mildest over-voltage (over-temperature) tier of the same quantity;
//! - each hysteresis of a rule with a tier above zero and at most the gap between adjacent
//!   tiers, so the harsher tier releases where the milder one would no longer be raised (with
//!   more, a value that would not even raise the operating tier keeps the charge current at
//!   zero); equal is consistent, since a tier is violated only strictly beyond its threshold.
//!   The mildest tier must also be able to release before the value reaches the end of what it
//!   can be.

use super::{Bound, Config, ConfigError, Problem, RawThresholds, Side, TIER_PARTS};
use crate::rule::{Kind, RuleId};

/// The values a rule's quantity can take, and what sets each end.
struct Quantity {
    /// Smallest threshold allowed.
    min: i64,
    /// Largest threshold allowed.
    max: i64,
    /// How low the value itself can go (0 for a magnitude, else `min`).
    floor: i64,
    min_bound: Bound,
    max_bound: Bound,
}

/// The quantity `rule` guards in `config`, or `None` for a rule with no physical range.
fn quantity(rule: RuleId, config: &Config) -> Option<Quantity> {
    let chemistry = config.chemistry;
    let e = chemistry.envelope();
    let cells = config.cell_count;
    let n = i64::from(cells);
    let window = |min: i32, max: i32, cells: u16| {
        let bound = Bound::Chemistry { chemistry, cells };
        let (min, max) = (i64::from(min) * i64::from(cells), i64::from(max) * i64::from(cells));
        Quantity { min, max, floor: min, min_bound: bound, max_bound: bound }
    };
    let magnitude = |max: i64, max_bound: Bound| Quantity {
        min: 1,
        max,
        floor: 0,
        min_bound: Bound::Magnitude,
        max_bound,
    };
    let (cell_min, cell_max) = (e.cell_min_mv.0, e.cell_max_mv.0);
    Some(match rule {
        RuleId::CellOverVoltage | RuleId::CellUnderVoltage => window(cell_min, cell_max, 1),
        RuleId::PackOverVoltage | RuleId::PackUnderVoltage => window(cell_min, cell_max, cells),
        RuleId::ChargeOverTemperature | RuleId::ChargeUnderTemperature => {
            window(e.charge_min_dc.0, e.charge_max_dc.0, 1)
        }
        RuleId::DischargeOverTemperature | RuleId::DischargeUnderTemperature => {
            window(e.discharge_min_dc.0, e.discharge_max_dc.0, 1)
        }
        RuleId::ChargeOverCurrent | RuleId::DischargeOverCurrent => {
            magnitude(i32::MAX.into(), Bound::Magnitude)
        }
        // Two cells inside the envelope cannot differ by more than its width, nor the sum of
        // the cells from the pack sensor by more than the highest pack voltage.
        RuleId::CellImbalance => magnitude(
            i64::from(cell_max) - i64::from(cell_min),
            Bound::Chemistry { chemistry, cells: 1 },
        ),
        RuleId::PackVoltageMismatch => {
            magnitude(i64::from(cell_max) * n, Bound::Chemistry { chemistry, cells })
        }
        _ => return None,
    })
}

/// Over- and under- rules of the same quantity, low side first.
const WINDOWS: [(RuleId, RuleId); 4] = [
    (RuleId::CellUnderVoltage, RuleId::CellOverVoltage),
    (RuleId::PackUnderVoltage, RuleId::PackOverVoltage),
    (RuleId::ChargeUnderTemperature, RuleId::ChargeOverTemperature),
    (RuleId::DischargeUnderTemperature, RuleId::DischargeOverTemperature),
];

/// Checks every threshold rule of `config` against its quantity and its partner; the first
/// problem found is returned.
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    let rules = || {
        RuleId::ALL.into_iter().filter(|r| r.spec().kind == Kind::Threshold).filter_map(|r| {
            let q = quantity(r, config)?;
            Some((r, q))
        })
    };
    for (rule, q) in rules() {
        inside(rule.spec().field, &rule.thresholds(config), &q)?;
    }
    for (low, high) in WINDOWS {
        ordered(config, low, high)?;
    }
    for (rule, q) in rules() {
        let spec = rule.spec();
        hysteresis(spec.field, spec.side, &rule.thresholds(config), &q)?;
    }
    Ok(())
}

/// Every set tier lies in `q.min..=q.max`.
fn inside(field: &'static str, t: &RawThresholds, q: &Quantity) -> Result<(), ConfigError> {
    for (tier, value) in set_tiers(t) {
        let v = i64::from(value);
        let bound = if v < q.min {
            q.min_bound
        } else if v > q.max {
            q.max_bound
        } else {
            continue;
        };
        let problem = Problem::OutOfRangeFor { value: v, min: q.min, max: q.max, bound };
        return Err(ConfigError { field, part: Some(TIER_PARTS[tier]), problem });
    }
    Ok(())
}

/// The mildest tier of `low` lies below the mildest tier of `high`: otherwise some value would
/// be too low and too high at once.
fn ordered(config: &Config, low: RuleId, high: RuleId) -> Result<(), ConfigError> {
    let (Some((low_tier, low_value)), Some((high_tier, high_value))) =
        (mildest(&low.thresholds(config)), mildest(&high.thresholds(config)))
    else {
        return Ok(());
    };
    if low_value < high_value {
        return Ok(());
    }
    let min = quantity(low, config).map_or(i64::from(i32::MIN), |q| q.min);
    let high_spec = high.spec();
    Err(ConfigError {
        field: low.spec().field,
        part: Some(TIER_PARTS[low_tier]),
        problem: Problem::OutOfRangeFor {
            value: low_value.into(),
            min,
            max: i64::from(high_value) - 1,
            bound: Bound::Tier {
                field: high_spec.field,
                tier: TIER_PARTS[high_tier],
                value: high_value.into(),
                cells: 1,
            },
        },
    })
}

/// A rule with a tier has a hysteresis of at least 1, at most the gap between adjacent tiers,
/// and small enough that the mildest tier can release inside the quantity's range.
fn hysteresis(
    field: &'static str,
    side: Side,
    t: &RawThresholds,
    q: &Quantity,
) -> Result<(), ConfigError> {
    let Some((first_tier, first)) = mildest(t) else { return Ok(()) };
    let h = i64::from(t.hysteresis);
    let first = i64::from(first);
    let room = match side {
        Side::High => first - q.floor,
        Side::Low => q.max - first,
    };
    let limit = match side {
        Side::High => q.floor,
        Side::Low => q.max,
    };
    let mut max = room;
    let mut bound = Bound::Release { tier: TIER_PARTS[first_tier], value: first, limit };
    let mut previous: Option<(usize, i64)> = None;
    for (tier, value) in set_tiers(t) {
        let value = i64::from(value);
        if let Some((prev_tier, prev_value)) = previous {
            let gap = (value - prev_value).abs();
            if gap < max {
                max = gap;
                bound =
                    Bound::Gap { milder: TIER_PARTS[prev_tier], harsher: TIER_PARTS[tier], gap };
            }
        }
        previous = Some((tier, value));
    }
    let part = Some("hysteresis");
    if h < 1 {
        let problem = Problem::OutOfRange { value: h, min: 1, max: max.max(1) };
        return Err(ConfigError { field, part, problem });
    }
    if h > max {
        let problem = Problem::OutOfRangeFor { value: h, min: 1, max, bound };
        return Err(ConfigError { field, part, problem });
    }
    Ok(())
}

/// The set tiers of `t`, mildest first, with their index into [`TIER_PARTS`].
fn set_tiers(t: &RawThresholds) -> impl Iterator<Item = (usize, i32)> + '_ {
    t.tiers.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v)))
}

/// The mildest set tier of `t`.
pub(super) fn mildest(t: &RawThresholds) -> Option<(usize, i32)> {
    set_tiers(t).next()
}

/// The harshest set tier of `t`.
pub(super) fn harshest(t: &RawThresholds) -> Option<(usize, i32)> {
    set_tiers(t).last()
}
