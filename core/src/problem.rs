//! What a refused configuration says: the field, the part, and what is wrong with it, worded for
//! the installer who reads it.

use core::fmt;

use crate::bound::Bound;
use crate::chemistry::CellChemistry;
use crate::ocv_chemistry::Chemistry as OcvChemistry;
use crate::table::TableError;

/// A configuration value that cannot be used, with the field that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending field, e.g. `protection.cell_over_voltage_mv`.
    pub field: &'static str,
    /// The part of that field, for structured fields (e.g. `maximum`).
    pub part: Option<&'static str>,
    /// What is wrong with it.
    pub problem: Problem,
}

/// What is wrong with a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A limit table is malformed.
    Table(TableError),
    /// A safety limit that must be set is missing.
    Required,
    /// The value must lie in `min..=max`.
    OutOfRange {
        /// The value found.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// The value must be strictly greater than another one.
    MustExceed {
        /// The other field or part.
        other: &'static str,
        /// The value found.
        value: i64,
        /// The other value.
        other_value: i64,
    },
    /// The value must be strictly less than another one.
    MustBeBelow {
        /// The other field or part.
        other: &'static str,
        /// The value found.
        value: i64,
        /// The other value.
        other_value: i64,
    },
    /// The value must lie in `min..=max`, a range that follows from the chemistry or from
    /// another setting; `bound` says what sets the end the value passed.
    OutOfRangeFor {
        /// The value found.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
        /// What sets the end the value passed.
        bound: Bound,
    },
    /// A shared DC link needs feedback on this main contactor (`negative` or `positive`): with
    /// the link held up by another source its voltage cannot show a weld.
    SharedLinkNeedsFeedback {
        /// The contactor without feedback.
        contactor: &'static str,
    },
    /// The SoC estimator's OCV table belongs to another chemistry than the pack's.
    OtherChemistry {
        /// The table found.
        value: OcvChemistry,
        /// The pack's chemistry.
        chemistry: CellChemistry,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field)?;
        if let Some(part) = self.part {
            write!(f, ".{part}")?;
        }
        write!(f, ": {}", self.problem)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Problem::Required => f.write_str("must be set (a safety limit cannot be left out)"),
            Problem::OutOfRange { value, min, max } => {
                write!(f, "{value} is out of range, allowed {min}..={max}")
            }
            Problem::MustExceed { other, value, other_value } => {
                write!(f, "{value} must be greater than {other} ({other_value})")
            }
            Problem::MustBeBelow { other, value, other_value } => {
                write!(f, "{value} must be less than {other} ({other_value})")
            }
            Problem::OutOfRangeFor { value, min, max, bound } => {
                write!(f, "{value} is out of range, allowed {min}..={max} ({bound})")
            }
            Problem::OtherChemistry { value, chemistry } => {
                let table = match value {
                    OcvChemistry::Nca => "nca",
                    OcvChemistry::Lfp => "lfp",
                };
                write!(
                    f,
                    "the {table} OCV table does not fit {chemistry}, chemistry = \"{}\"",
                    chemistry.name()
                )
            }
            Problem::Table(t) => write!(f, "{t}"),
            Problem::SharedLinkNeedsFeedback { contactor } => write!(
                f,
                "\"shared\" needs contactors.feedback.{contactor} = true: another source holding \
                 the DC link up hides a welded contactor from the link voltage, so only the \
                 contactor's own feedback contact can find it"
            ),
        }
    }
}

impl core::error::Error for ConfigError {}
