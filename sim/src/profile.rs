//! Inverter demand profiles. (Being written.)

use serde::Deserialize;

/// A profile as written in a scenario file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ProfileSpec {}

/// A ready profile.
#[derive(Clone, Debug)]
pub struct Profile {}

/// What the inverter asks of the battery at one moment; positive charges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Demand {
    /// A current, A.
    Amps(f64),
    /// A power, W.
    Watts(f64),
}
