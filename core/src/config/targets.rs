//! Charge control, balancing and the SoC anchors against protection: every cell voltage they
//! aim for or act on lies inside the window protection leaves, so that charge control stops a
//! charge before protection has to, and no setting reaches a voltage protection treats as a
//! fault.
//!
//! The window is bounded by the *mildest* set tier of the under- and over-voltage rules (the
//! operating tier when it is set), of the cells and of the pack (divided by the cell count),
//! and by the chemistry's envelope:
//!
//! - The voltages charge control holds the pack at (`absorption_cell_mv`, `float_cell_mv`,
//!   `full_charge_cell_mv`, `absorption_start_cell_mv`, `rebulk_cell_mv`, `cvl_floor_cell_mv`;
//!   the charge voltage limit is these times the cell count), where balancing starts
//!   (`balance.start_mv`) and the SoC's usable window (`usable_empty_ocv_mv`,
//!   `usable_full_ocv_mv`) lie strictly inside it. A target at or beyond the operating tier
//!   would warn and derate at every full charge, and one beyond the recommended tier would
//!   never be reached at all: the lowest tier, not the recommended or maximum one, is the bound.
//! - `cell_max_mv`, the ceiling the controller keeps the top cell `cvl_margin_mv` below and at
//!   which it cuts the charge current, may equal the mildest over-voltage tier but not pass it:
//!   charging stops *at* the ceiling, and a tier is violated only strictly beyond its threshold.
//!   The same holds for the points where the cell-voltage tables reach a factor of zero: the
//!   charge table's may reach the over-voltage tier, the discharge table's the under-voltage
//!   tier.
//! - The SoC's empty anchor (`empty_cell_mv`) is reached while discharging, often past the
//!   under-voltage operating tier: it need only lie above the *harshest* under-voltage tier,
//!   where the contactors open.
//!
//! The SoC estimator's OCV table must also belong to the pack's chemistry.

use super::envelope::{harshest, mildest};
use super::{Bound, Config, ConfigError, Problem, TIER_PARTS};
use crate::rule::RuleId;

/// Which tier of a rule bounds the window, and whether the bound itself is allowed.
#[derive(Clone, Copy)]
enum Edge {
    /// Strictly inside the mildest tier.
    Mildest,
    /// Up to and including the mildest tier.
    AtMildest,
    /// Strictly inside the harshest tier.
    Harshest,
}

/// Allowed per-cell values and what sets each end.
#[derive(Clone, Copy)]
struct Window {
    min: i64,
    max: i64,
    min_bound: Bound,
    max_bound: Bound,
}

impl Window {
    fn new(config: &Config, low: Edge, high: Edge) -> Window {
        let chemistry = config.chemistry;
        let e = chemistry.envelope();
        let envelope = Bound::Chemistry { chemistry, cells: 1 };
        let mut w = Window {
            min: e.cell_min_mv.0.into(),
            max: e.cell_max_mv.0.into(),
            min_bound: envelope,
            max_bound: envelope,
        };
        let n = i64::from(config.cell_count.max(1));
        for (rule, cells) in [(RuleId::CellUnderVoltage, 1), (RuleId::PackUnderVoltage, n)] {
            if let Some((bound, t)) = tier(config, rule, low, cells) {
                // Per cell, `value * cells` must pass `t`: strictly above, or at least.
                let min = match low {
                    Edge::AtMildest => t.div_euclid(cells) + i64::from(t.rem_euclid(cells) != 0),
                    Edge::Mildest | Edge::Harshest => t.div_euclid(cells) + 1,
                };
                if min > w.min {
                    (w.min, w.min_bound) = (min, bound);
                }
            }
        }
        for (rule, cells) in [(RuleId::CellOverVoltage, 1), (RuleId::PackOverVoltage, n)] {
            if let Some((bound, t)) = tier(config, rule, high, cells) {
                let max = match high {
                    Edge::AtMildest => t.div_euclid(cells),
                    Edge::Mildest | Edge::Harshest => (t - 1).div_euclid(cells),
                };
                if max < w.max {
                    (w.max, w.max_bound) = (max, bound);
                }
            }
        }
        w
    }

    /// `value` lies inside, or the error for `field.part`.
    fn check(
        &self,
        field: &'static str,
        part: Option<&'static str>,
        value: i32,
    ) -> Result<(), ConfigError> {
        let v = i64::from(value);
        let bound = if v < self.min {
            self.min_bound
        } else if v > self.max {
            self.max_bound
        } else {
            return Ok(());
        };
        let problem = Problem::OutOfRangeFor { value: v, min: self.min, max: self.max, bound };
        Err(ConfigError { field, part, problem })
    }
}

/// The threshold of `rule` at `edge`, with the bound that names it (`cells` for a pack rule).
fn tier(config: &Config, rule: RuleId, edge: Edge, cells: i64) -> Option<(Bound, i64)> {
    let t = rule.thresholds(config);
    let (index, value) = match edge {
        Edge::Mildest | Edge::AtMildest => mildest(&t)?,
        Edge::Harshest => harshest(&t)?,
    };
    let bound = Bound::Tier {
        field: rule.spec().field,
        tier: TIER_PARTS[index],
        value: value.into(),
        cells: u16::try_from(cells).unwrap_or(u16::MAX),
    };
    Some((bound, value.into()))
}

/// Checks charge control, balancing and the SoC anchors of `config` against its protection
/// thresholds; the first problem found is returned. Runs after each part passed on its own.
pub(super) fn check(config: &Config) -> Result<(), ConfigError> {
    let target = Window::new(config, Edge::Mildest, Edge::Mildest);
    if let Some(c) = &config.charge {
        let ceiling = Window::new(config, Edge::Mildest, Edge::AtMildest);
        ceiling.check("charge", Some("cell_max_mv"), c.cell_max_mv.0)?;
        for (part, mv) in [
            ("absorption_cell_mv", c.absorption_cell_mv),
            ("full_charge_cell_mv", c.full_charge_cell_mv),
            ("absorption_start_cell_mv", c.absorption_start_cell_mv),
            ("float_cell_mv", c.float_cell_mv),
            ("rebulk_cell_mv", c.rebulk_cell_mv),
            ("cvl_floor_cell_mv", c.cvl_floor_cell_mv),
        ] {
            target.check("charge", Some(part), mv.0)?;
        }
        // Where a cell-voltage table stops the current, it sets a target of its own.
        let stop_discharge = Window::new(config, Edge::AtMildest, Edge::Mildest);
        for (part, table, window) in [
            ("charge_by_cell_max_mv", &c.charge_by_cell_max_mv, ceiling),
            ("discharge_by_cell_min_mv", &c.discharge_by_cell_min_mv, stop_discharge),
        ] {
            for point in table.points().iter().filter(|p| p.y.0 == 0) {
                window.check("charge", Some(part), point.x)?;
            }
        }
    }
    target.check("balance.start_mv", None, config.balance.start_mv.0)?;
    if let Some(s) = &config.soc {
        if !config.chemistry.admits(s.chemistry) {
            let problem =
                Problem::OtherChemistry { value: s.chemistry, chemistry: config.chemistry };
            return Err(ConfigError { field: "soc", part: Some("chemistry"), problem });
        }
        let empty = Window::new(config, Edge::Harshest, Edge::Mildest);
        empty.check("soc", Some("empty_cell_mv"), s.empty_cell_mv.0)?;
        target.check("soc", Some("usable_empty_ocv_mv"), s.usable_empty_ocv_mv.0)?;
        target.check("soc", Some("usable_full_ocv_mv"), s.usable_full_ocv_mv.0)?;
    }
    Ok(())
}
