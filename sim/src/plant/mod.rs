//! The physical battery system: series groups of cells (equivalent circuit, thermal), the DC bus
//! with its contactors, precharge resistor and inverter capacitance, and the current sensor.
//!
//! Everything here is SI and `f64`: volts, amps, ohms, farads, seconds, degrees Celsius. Positive
//! current charges the pack. The plant knows nothing about the core; the engine measures it and
//! applies the core's actions to it.
//!
//! - Groups ([`Cell`] is one on its own): OCV(SoC, T) from a uniform-grid table per chemistry
//!   plus an entropic term, series R0, one RC pair (R1, tau), capacity, self-discharge,
//!   coulombic efficiency on charge; R0 and R1 scale with an Arrhenius factor of the group
//!   temperature; a lumped thermal mass per group exchanging heat with the ambient air. Terminal
//!   voltage = OCV + I R0 + v1. The RC pair and the temperature are updated exactly for a
//!   constant current over a step, so any step length works (1 µs to hours).
//! - [`Plant`]: strings × modules × series groups as structure-of-arrays, spread drawn from the
//!   seed with fixed outliers on top; strings share the current by their Thevenin voltages; the
//!   DC bus (contactors, precharge resistor, DC-link capacitor, bleed resistor, optional short,
//!   optional external source holding it up) is one node solved exactly per step.
//! - [`CurrentSensor`]: offset, gain error and noise.
//!
//! No method panics on any input: non-finite inputs are ignored or taken as 0, a step of zero
//! or negative length does nothing, out-of-range group indices are ignored.
//!
//! PUBLIC API CONTRACT (the engine and the scenario loader are written against it):
//! the items declared in this file keep their names and signatures.

mod bus;
mod cell;
mod ocv;
mod pack;
mod sensor;

pub use cell::Cell;
pub use pack::Plant;
pub use sensor::CurrentSensor;

/// Cell chemistry: selects the open-circuit-voltage table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chemistry {
    /// Panasonic NCR18650-class NCA (Tesla Model S modules).
    Nca,
    /// Lithium iron phosphate (rack batteries).
    Lfp,
}

/// Parameters of one series group (a Tesla 74P group, or a single LFP cell).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CellParams {
    /// Which OCV table.
    pub chemistry: Chemistry,
    /// Capacity at 25 °C.
    pub capacity_ah: f64,
    /// Series resistance at 25 °C.
    pub r0_ohm: f64,
    /// RC-pair resistance at 25 °C.
    pub r1_ohm: f64,
    /// RC-pair time constant.
    pub tau1_s: f64,
    /// Self-discharge as a fraction of capacity per day.
    pub self_discharge_per_day: f64,
    /// Fraction of the charge flowing in that is stored.
    pub coulombic_efficiency: f64,
    /// Thermal mass.
    pub heat_capacity_j_per_k: f64,
    /// Heat exchange with the ambient air.
    pub ambient_conductance_w_per_k: f64,
}

/// Cell-to-cell differences: a random spread, one standard deviation (draws clipped at three),
/// and fixed outliers applied on top of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spread {
    /// Capacity, percent.
    pub capacity_pct: f64,
    /// Resistances, percent.
    pub resistance_pct: f64,
    /// Initial state of charge, percentage points.
    pub soc_pct: f64,
    /// Groups that differ from the rest by fixed amounts, applied after the random draws.
    /// Several entries for one group apply one after the other.
    pub outliers: Vec<Outlier>,
}

/// Most outliers a scenario may give.
pub const MAX_OUTLIERS: usize = 32;

/// Smallest factor an outlier scales a group's capacity or resistances by.
pub const MIN_OUTLIER_FACTOR: f64 = 1e-6;

/// One series group that differs from the rest by fixed amounts, on top of the spread.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outlier {
    /// The group, from 0 (string-major, then module, then group, as everywhere in the plant).
    pub group: usize,
    /// Change of its capacity, percent of what it would otherwise have.
    pub capacity_pct: f64,
    /// Change of its resistances (R0 and R1), percent of what they would otherwise be.
    pub resistance_pct: f64,
    /// Added to its initial state of charge, percentage points.
    pub soc_pct: f64,
}

/// The DC bus between the contactors and the inverter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BusParams {
    /// Inverter DC-link capacitance.
    pub capacitance_f: f64,
    /// Precharge resistor.
    pub precharge_ohm: f64,
    /// Bleed resistor across the DC link.
    pub bleed_ohm: f64,
    /// A short circuit across the bus, if any.
    pub short_ohm: Option<f64>,
    /// Another source holding the DC link up whatever our contactors do (parallel strings on
    /// one bus, an inverter fed by PV or another battery), if any.
    pub source: Option<BusSource>,
}

/// A voltage source on the DC link behind a series resistance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BusSource {
    /// Its open-circuit voltage.
    pub volts: f64,
    /// Its series resistance (> 0).
    pub ohms: f64,
}

/// Everything needed to build a plant.
#[derive(Clone, Debug, PartialEq)]
pub struct PlantSpec {
    /// One series group.
    pub cell: CellParams,
    /// Series groups per module (Tesla: 6; a 16S LFP pack is one module of 16).
    pub series_per_module: u16,
    /// Modules in series per string.
    pub modules: u16,
    /// Strings in parallel.
    pub strings: u16,
    /// Temperature sensors per module.
    pub sensors_per_module: u16,
    /// Mean initial state of charge, 0..=1.
    pub initial_soc: f64,
    /// Initial temperature of every group.
    pub initial_temp_c: f64,
    /// Ambient temperature.
    pub ambient_c: f64,
    /// Cell-to-cell spread, drawn from the seed, and the outliers on top of it.
    pub spread: Spread,
    /// The DC bus.
    pub bus: BusParams,
}

/// Energy that crossed the pack terminals and heat made inside the pack since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Energy {
    /// Into the pack (charging), Wh.
    pub charged_wh: f64,
    /// Out of the pack (discharging), Wh.
    pub discharged_wh: f64,
    /// Heat from resistance, leaks and heaters, Wh.
    pub heat_wh: f64,
}
