//! Piecewise-linear tables that map a measured quantity to a fraction of a configured maximum.

use core::fmt;

use crate::units::Permille;

/// Most points a [`Table`] holds.
pub const TABLE_POINTS: usize = 8;

/// One point of a [`Table`]: at input `x` the factor is `y`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct Point {
    /// The input, in the table's unit (mV, 0.1 °C or permille of SoC, as the field name says).
    pub x: i32,
    /// The factor at `x`, at most [`Permille::FULL`].
    pub y: Permille,
}

/// A piecewise-linear function from an input to a factor in `0..=1000` permille.
///
/// Between two points the factor is interpolated linearly and rounded down; below the first
/// point it is the first point's factor and above the last point the last point's, so every
/// input has a factor. A valid table has `1..=TABLE_POINTS` points with strictly increasing `x`
/// and every `y` at most 1000 ([`Table::validate`]). Evaluation never panics on any table: an
/// empty one (which only deserialisation can make) gives 0, and a factor above 1000 counts as
/// 1000.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize), serde(transparent))]
pub struct Table {
    points: heapless::Vec<Point, TABLE_POINTS>,
}

/// Why a [`Table`] cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// It has no point.
    Empty,
    /// It has more than [`TABLE_POINTS`] points.
    TooManyPoints {
        /// How many were given.
        count: usize,
    },
    /// Point `index` does not lie strictly to the right of the point before it.
    NotIncreasing {
        /// The offending point, from 0.
        index: usize,
    },
    /// Point `index` has a factor above 1000 permille.
    AboveFull {
        /// The offending point, from 0.
        index: usize,
    },
}

impl Table {
    /// A table of `(x, y permille)` points, validated.
    pub fn new(points: &[(i32, u16)]) -> Result<Table, TableError> {
        if points.len() > TABLE_POINTS {
            return Err(TableError::TooManyPoints { count: points.len() });
        }
        let table = Table::unchecked(points);
        table.validate()?;
        Ok(table)
    }

    /// A table that gives `y` everywhere.
    pub fn constant(y: Permille) -> Table {
        let mut points = heapless::Vec::new();
        // An empty vector with room for TABLE_POINTS >= 1 points always takes one.
        let _ = points.push(Point { x: 0, y });
        Table { points }
    }

    /// The points, in order. Presets and [`Table::new`] only make valid ones; a deserialised
    /// table is checked by [`ChargeConfig::validate`](super::ChargeConfig::validate).
    pub fn points(&self) -> &[Point] {
        &self.points
    }

    /// Checks the rules in the type's documentation.
    pub fn validate(&self) -> Result<(), TableError> {
        if self.points.is_empty() {
            return Err(TableError::Empty);
        }
        for (index, point) in self.points.iter().enumerate() {
            if point.y > Permille::FULL {
                return Err(TableError::AboveFull { index });
            }
            if index > 0 && point.x <= self.points[index - 1].x {
                return Err(TableError::NotIncreasing { index });
            }
        }
        Ok(())
    }

    /// The factor at `x`.
    pub fn eval(&self, x: i32) -> Permille {
        let points = self.points();
        let Some((first, last)) = points.first().zip(points.last()) else {
            return Permille(0);
        };
        if x <= first.x {
            return cap(first.y);
        }
        if x >= last.x {
            return cap(last.y);
        }
        for pair in points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if x < b.x {
                return interpolate(a, b, x);
            }
        }
        // Unreachable for a table whose x increase (x < last.x was checked above); an invalid
        // table falls through to its last factor rather than panicking.
        cap(last.y)
    }

    /// The smallest factor anywhere in `lo..=hi` (the bounds in either order) and the input where
    /// it is reached first. A piecewise-linear function takes its minimum over an interval at
    /// the interval's ends or at a point inside it, so these are the only candidates.
    pub fn min_over(&self, lo: i32, hi: i32) -> (Permille, i32) {
        let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        let mut best = (self.eval(lo), lo);
        for point in self.points() {
            if point.x > lo && point.x < hi && cap(point.y) < best.0 {
                best = (cap(point.y), point.x);
            }
        }
        let at_hi = self.eval(hi);
        if at_hi < best.0 {
            best = (at_hi, hi);
        }
        best
    }

    /// A table of the first `TABLE_POINTS` of `points`, without validation: for presets, whose
    /// tables the tests validate.
    pub(crate) fn unchecked(points: &[(i32, u16)]) -> Table {
        let mut out = heapless::Vec::new();
        for &(x, y) in points.iter().take(TABLE_POINTS) {
            // At most TABLE_POINTS pushes into a vector of that capacity: none can fail.
            let _ = out.push(Point { x, y: Permille(y) });
        }
        Table { points: out }
    }
}

/// Linear interpolation between `a` and `b` for `a.x <= x < b.x`, rounded down. Rounding down
/// (not toward zero) keeps the result monotone in `x` on falling and rising segments alike, and
/// errs toward the smaller current.
fn interpolate(a: Point, b: Point, x: i32) -> Permille {
    let (ya, yb) = (i64::from(cap(a.y).0), i64::from(cap(b.y).0));
    let span = i64::from(b.x) - i64::from(a.x);
    if span <= 0 {
        return cap(a.y);
    }
    let offset = i64::from(x) - i64::from(a.x);
    // |yb - ya| <= 1000 and offset < span < 2^33, so the product fits an i64 easily.
    let y = ya + ((yb - ya) * offset).div_euclid(span);
    Permille(y.clamp(0, 1000) as u16)
}

fn cap(y: Permille) -> Permille {
    if y > Permille::FULL { Permille::FULL } else { y }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TableError::Empty => f.write_str("a table needs at least one point"),
            TableError::TooManyPoints { count } => {
                write!(f, "{count} points, at most {TABLE_POINTS} allowed")
            }
            TableError::NotIncreasing { index } => {
                write!(f, "point {index}: x must be greater than the previous point's")
            }
            TableError::AboveFull { index } => write!(f, "point {index}: y above 1000 permille"),
        }
    }
}

impl core::error::Error for TableError {}
