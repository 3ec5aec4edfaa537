//! What sets an end of an allowed range that follows from other settings, so that a refusal can
//! say why the range is what it is.

use core::fmt;

use crate::chemistry::CellChemistry;

/// What sets the violated end of the range in a [`Problem::OutOfRangeFor`](super::Problem).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The physical envelope of the configured chemistry, times `cells` for a pack voltage (1
    /// for a cell voltage or a temperature).
    Chemistry {
        /// The configured chemistry.
        chemistry: CellChemistry,
        /// Series cells the per-cell figures are multiplied by.
        cells: u16,
    },
    /// A magnitude (a current, a difference): above zero.
    Magnitude,
    /// A protection tier of the same quantity.
    Tier {
        /// The rule's field, e.g. `protection.cell_over_voltage_mv`.
        field: &'static str,
        /// The tier: `operating`, `recommended` or `maximum`.
        tier: &'static str,
        /// The tier's threshold.
        value: i64,
        /// For a pack tier against a per-cell value: the cells it is divided by (else 1).
        cells: u16,
    },
    /// The gap between two adjacent tiers of the same rule, which a hysteresis must not exceed:
    /// the harsher tier must release where the milder one would no longer be raised.
    Gap {
        /// The milder tier.
        milder: &'static str,
        /// The harsher tier.
        harsher: &'static str,
        /// Their distance.
        gap: i64,
    },
    /// The mildest tier must be able to release before the value reaches the end of what it can
    /// be (the chemistry's envelope, or zero for a magnitude).
    Release {
        /// The mildest set tier.
        tier: &'static str,
        /// Its threshold.
        value: i64,
        /// The furthest the value can go back.
        limit: i64,
    },
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Bound::Chemistry { chemistry, cells: 1 } => {
                write!(f, "the limits of {chemistry}, chemistry = \"{}\"", chemistry.name())
            }
            Bound::Chemistry { chemistry, cells } => write!(
                f,
                "{cells} cells times the limits of {chemistry}, chemistry = \"{}\"",
                chemistry.name()
            ),
            Bound::Magnitude => f.write_str("a magnitude, above zero"),
            Bound::Tier { field, tier, value, cells: 1 } => {
                write!(f, "set by {field}.{tier} = {value}")
            }
            Bound::Tier { field, tier, value, cells } => {
                write!(f, "set by {field}.{tier} = {value} over {cells} cells")
            }
            Bound::Gap { milder, harsher, gap } => {
                write!(f, "at most the gap between the {milder} and {harsher} tiers, {gap}")
            }
            Bound::Release { tier, value, limit } => write!(
                f,
                "the {tier} tier at {value} must release before the value reaches {limit}"
            ),
        }
    }
}
