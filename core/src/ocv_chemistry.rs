//! The chemistry of an OCV table, public as [`crate::soc::Chemistry`].
//!
//! Vocabulary: a configuration refused for an OCV table that does not fit the pack's chemistry
//! names it ([`crate::Problem::OtherChemistry`]), and the SoC estimator, which holds the tables,
//! reports its own configuration problems with [`crate::Problem`]. Defined here, beside neither,
//! so that neither imports the other back. The tables themselves are in `soc/ocv.rs`.

/// Cell chemistry: selects the OCV table and the default model parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Chemistry {
    /// Nickel cobalt aluminium oxide (Panasonic 18650 cells in Tesla Model S modules).
    Nca,
    /// Lithium iron phosphate.
    Lfp,
}
