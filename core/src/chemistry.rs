//! Cell chemistries and their physical envelopes: the cell voltages and temperatures beyond
//! which a cell of that chemistry is destroyed or unsafe. [`Config::validate`](crate::Config)
//! refuses any protection threshold outside the envelope of [`Config::chemistry`](crate::Config),
//! so a typo such as a maximum of 42 500 mV instead of 4 250 mV cannot switch protection off.
//!
//! The envelope is wider than the cell maker's operating window: the window is where the
//! recommended tier (current to zero) belongs, and the maximum tier (contactors open, latched)
//! must be able to sit a little beyond it, so that noise at the window's edge does not latch a
//! fault. Beyond the envelope the cell is harmed, so no tier may sit there: a tier beyond it
//! would act only after the damage is done.
//!
//! Where each figure comes from is said next to it. Cell figures are in `shared/battery.md`;
//! the others are the common datasheet figures of each chemistry and well-known failure
//! mechanisms, rounded outwards to the nearest 50 mV or 5 °C.

use core::fmt;

use crate::units::{DeciCelsius, MilliVolts};

/// The chemistry of a pack's cells, which sets the physical envelope every protection threshold
/// must lie in. In a configuration file: `chemistry = "nca"`, `"lfp"` or `"generic_lithium"`;
/// left out, it is `"generic_lithium"`, the widest envelope, so that a file written before the
/// field existed still loads (and is checked against the limits every lithium-ion cell shares).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum CellChemistry {
    /// Nickel-rich layered oxide charged to 4.2 V: NCA (the Panasonic NCR18650 cells of Tesla
    /// Model S modules) and NMC of the same voltage class, on a graphite anode.
    Nca,
    /// Lithium iron phosphate on a graphite anode (3.2 V nominal).
    Lfp,
    /// A lithium-ion cell of unknown chemistry: the widest envelope that is still sane for any
    /// of them. The default, for files that do not say.
    #[default]
    GenericLithium,
}

/// The physical limits of one cell of a chemistry. Voltages are per cell; pack figures are these
/// times the number of series cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Lowest cell voltage any threshold may name.
    pub cell_min_mv: MilliVolts,
    /// Highest cell voltage any threshold may name.
    pub cell_max_mv: MilliVolts,
    /// Lowest temperature at which a charge threshold may still allow charging.
    pub charge_min_dc: DeciCelsius,
    /// Highest temperature at which a charge threshold may still allow charging.
    pub charge_max_dc: DeciCelsius,
    /// Lowest temperature any discharge (outer window) threshold may name.
    pub discharge_min_dc: DeciCelsius,
    /// Highest temperature any discharge (outer window) threshold may name.
    pub discharge_max_dc: DeciCelsius,
}

// Temperatures: the graphite anode, common to all three, sets them.
//
// Charging: the datasheets of both chemistries (Panasonic NCR18650PF/B; LFP cells such as the
// LithiumWerks APR18650M1B and the common prismatic 3.2 V cells) allow charging from 0 °C to
// 45 °C. Below 0 °C graphite plates metallic lithium instead of taking it in, and the plated
// lithium stays as a short-circuit risk: no charge threshold may sit below 0 °C. Above 45 °C the
// electrolyte oxidises faster at the charged cathode; 55 °C leaves the maximum tier 10 °C beyond
// the datasheet's limit.
const CHARGE_MIN_DC: DeciCelsius = DeciCelsius(0);
const CHARGE_MAX_DC: DeciCelsius = DeciCelsius(550);
// Discharging: the datasheets allow -20 °C (Panasonic) to -30 °C (LithiumWerks) up to 55-60 °C.
// From about 80 °C the anode's solid-electrolyte interphase decomposes exothermically, the first
// step of thermal runaway, so the hottest threshold is 70 °C: 10 °C beyond the datasheets and
// still short of it. Cold is not unsafe while discharging (resistance rises and the voltage sags,
// which the under-voltage rule guards), but below -30 °C the common carbonate electrolytes
// approach their freezing point and the cell can deliver next to nothing.
const DISCHARGE_MIN_DC: DeciCelsius = DeciCelsius(-300);
const DISCHARGE_MAX_DC: DeciCelsius = DeciCelsius(700);

/// NCA/NMC charged to 4.2 V.
///
/// - 2.50 V: the discharge end voltage of the Panasonic NCR18650 datasheets (Tesla's own module
///   floor, 2.8 V in battery.md, lies inside). Held lower, the anode's copper current collector
///   starts to dissolve (from about 2 V) and can short the cell on the next charge.
/// - 4.30 V: the charge voltage is 4.20 V (battery.md: cell limits 4.2 V / 2.8 V), and the
///   overcharge detection of single-cell protection ICs for 4.2 V cells sits at 4.25-4.30 V.
///   Beyond it the delithiated nickel-rich cathode releases oxygen and oxidises the electrolyte:
///   overcharge is the classic path to thermal runaway for this chemistry.
const NCA: Envelope = Envelope {
    cell_min_mv: MilliVolts(2_500),
    cell_max_mv: MilliVolts(4_300),
    charge_min_dc: CHARGE_MIN_DC,
    charge_max_dc: CHARGE_MAX_DC,
    discharge_min_dc: DISCHARGE_MIN_DC,
    discharge_max_dc: DISCHARGE_MAX_DC,
};

/// LFP.
///
/// - 2.00 V: the discharge cut-off of the LithiumWerks APR18650M1B datasheet (prismatic cells
///   give 2.5 V). Below it, as for every graphite-anode cell, copper dissolution begins.
/// - 3.80 V: LFP is charged to 3.60-3.65 V and is full there (battery.md: about 100 mV per % at
///   the top knee); what goes in beyond about 3.8 V decomposes the electrolyte and plates
///   lithium. LFP protection boards trip at 3.75-3.90 V.
const LFP: Envelope = Envelope {
    cell_min_mv: MilliVolts(2_000),
    cell_max_mv: MilliVolts(3_800),
    charge_min_dc: CHARGE_MIN_DC,
    charge_max_dc: CHARGE_MAX_DC,
    discharge_min_dc: DISCHARGE_MIN_DC,
    discharge_max_dc: DISCHARGE_MAX_DC,
};

/// Any lithium-ion cell: from LFP's 2.00 V to 4.40 V, the maximum tier of high-voltage LiCoO2
/// and NMC cells charged to 4.35 V (the highest charge voltage in common use). Nothing beyond:
/// above 4.4 V every lithium-ion cathode in use oxidises its electrolyte, and below 2.0 V every
/// graphite-anode cell dissolves its copper. Lithium titanate (1.5-2.8 V) lies outside and would
/// need a chemistry of its own.
const GENERIC_LITHIUM: Envelope = Envelope {
    cell_min_mv: MilliVolts(2_000),
    cell_max_mv: MilliVolts(4_400),
    charge_min_dc: CHARGE_MIN_DC,
    charge_max_dc: CHARGE_MAX_DC,
    discharge_min_dc: DISCHARGE_MIN_DC,
    discharge_max_dc: DISCHARGE_MAX_DC,
};

impl CellChemistry {
    /// Every chemistry.
    pub const ALL: [CellChemistry; 3] =
        [CellChemistry::Nca, CellChemistry::Lfp, CellChemistry::GenericLithium];

    /// The chemistry's physical envelope.
    pub const fn envelope(self) -> Envelope {
        match self {
            CellChemistry::Nca => NCA,
            CellChemistry::Lfp => LFP,
            CellChemistry::GenericLithium => GENERIC_LITHIUM,
        }
    }

    /// The name used in configuration files: `nca`, `lfp` or `generic_lithium`.
    pub const fn name(self) -> &'static str {
        match self {
            CellChemistry::Nca => "nca",
            CellChemistry::Lfp => "lfp",
            CellChemistry::GenericLithium => "generic_lithium",
        }
    }

    /// Whether the SoC estimator's OCV table of `ocv` belongs to cells of this chemistry. A
    /// generic pack may use either table.
    pub const fn admits(self, ocv: crate::ocv_chemistry::Chemistry) -> bool {
        matches!(
            (self, ocv),
            (CellChemistry::GenericLithium, _)
                | (CellChemistry::Nca, crate::ocv_chemistry::Chemistry::Nca)
                | (CellChemistry::Lfp, crate::ocv_chemistry::Chemistry::Lfp)
        )
    }
}

impl fmt::Display for CellChemistry {
    /// How an installer reads it: `an NCA/NMC cell`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CellChemistry::Nca => "an NCA/NMC cell",
            CellChemistry::Lfp => "an LFP cell",
            CellChemistry::GenericLithium => "any lithium-ion cell",
        })
    }
}
