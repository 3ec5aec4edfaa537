//! What the combiner is told about the packs and inverters it joins.

use heapless::Vec;

use crate::chemistry::CellChemistry;
use crate::config::DEFAULT_LIMIT_RAMP_MS;
use crate::proto::{byd_can, lv};
use crate::time::Duration;
use crate::units::{MilliAmps, MilliVolts, Permille};

/// Most packs one combiner joins.
pub const MAX_PACKS: usize = 8;
/// Most inverters one combiner feeds.
pub const MAX_INVERTERS: usize = 4;
/// Most cells in series in one pack.
pub const MAX_CELLS: u16 = 400;

/// The voltage window, mV, one cell of `chemistry` can be at, and so what a truthful report of
/// its voltage or a voltage limit can hold per cell: the chemistry's physical
/// [`Envelope`](crate::chemistry::Envelope), the same one every protection threshold of our
/// own pack controller must lie in.
pub const fn cell_window_mv(chemistry: CellChemistry) -> (i32, i32) {
    let envelope = chemistry.envelope();
    (envelope.cell_min_mv.0, envelope.cell_max_mv.0)
}

/// The discharge voltage limit per cell, mV, a pack of `chemistry` is given when its report
/// carries none (a 6-byte 0x351, see [`complete`](super::plausible::complete)).
///
/// An inverter needs a floor: an SMA Sunny Island, for one, discharges down to the DVL it
/// reads, and a DVL of 0 V leaves only the rack's own protection between the inverter and an
/// empty pack. 3.0 V a cell is near empty for both chemistries at rest and still clear of
/// their envelope's floor: the voltage LFP racks announce themselves (Pylontech's 15-cell
/// US2000 sends 44.5 V, 2.97 V a cell; 16-cell racks commonly 48.0 V), and 500 mV above the
/// Panasonic NCR18650's 2.5 V discharge end, 200 mV above the Tesla module floor of
/// `shared/battery.md`. A generic lithium pack gets the same figure, which is above LFP's
/// and inside NCA's window.
pub const fn fallback_cell_discharge_mv(chemistry: CellChemistry) -> i32 {
    match chemistry {
        CellChemistry::Nca | CellChemistry::Lfp | CellChemistry::GenericLithium => 3_000,
    }
}

/// One pack as the combiner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct PackSlot {
    /// Nominal capacity: the weight of this pack in the combined SoC, SoH, voltage and
    /// temperature, and with its resistance the share of the current it is expected to carry.
    pub capacity_mah: u32,
    /// Its cells' chemistry: with `cells`, the window of voltages a truthful report can hold
    /// (see [`plausible`](super::plausible)).
    pub chemistry: CellChemistry,
    /// Cells (series groups) in series.
    pub cells: u16,
    /// Its series resistance, µΩ: a pack with less resistance takes more of a change in the
    /// bank's current than its capacity says, until its voltage follows.
    pub resistance_uohm: u32,
}

impl PackSlot {
    /// The window a truthful report of this pack's voltage (and its voltage limits) lies in,
    /// mV: the cells times the chemistry's [`cell_window_mv`].
    pub fn voltage_window_mv(&self) -> (i32, i32) {
        let (low, high) = cell_window_mv(self.chemistry);
        let cells = i32::from(self.cells);
        (low.saturating_mul(cells), high.saturating_mul(cells))
    }

    /// The discharge voltage limit this pack is given when it reports none: its cells times
    /// [`fallback_cell_discharge_mv`](fallback_cell_discharge_mv).
    pub fn fallback_discharge_voltage_mv(&self) -> MilliVolts {
        let per_cell = fallback_cell_discharge_mv(self.chemistry);
        MilliVolts(per_cell.saturating_mul(i32::from(self.cells)))
    }
}

/// The protocol an inverter is spoken to in: it bounds the values that can reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum InverterProtocol {
    /// Low-voltage CAN ([`lv`]): 0x356 carries the battery's voltage in 10 mV steps as a
    /// signed 16-bit number, so at most [`lv::MAX_VOLTAGE_MV`].
    LowVoltageCan,
    /// BYD HVS CAN ([`byd_can`]): voltages in 100 mV steps, at most [`byd_can::MAX_VOLTAGE_MV`].
    BydCan,
}

impl InverterProtocol {
    /// The highest battery voltage this protocol can tell an inverter.
    pub const fn max_voltage_mv(self) -> MilliVolts {
        match self {
            InverterProtocol::LowVoltageCan => lv::MAX_VOLTAGE_MV,
            InverterProtocol::BydCan => byd_can::MAX_VOLTAGE_MV,
        }
    }
}

/// One inverter output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct InverterSlot {
    /// What it is spoken to in; every pack's highest plausible voltage must fit in it.
    pub protocol: InverterProtocol,
    /// The part of the combined current limits this inverter is given. The shares of all
    /// inverters add up to at most 1000, so together they never exceed the combined limits.
    pub share: Permille,
    /// Added to the charge and discharge voltage limits sent to this inverter (at most ±2 V),
    /// but only where it makes them stricter: the charge voltage limit sent is never above the
    /// lowest joined pack's own, the discharge voltage limit never below the highest one's. A
    /// positive offset therefore lifts only the discharge voltage limit, a negative one lowers
    /// only the charge voltage limit.
    pub voltage_offset_mv: MilliVolts,
    /// Largest charge current ever sent to this inverter.
    pub charge_cap_ma: MilliAmps,
    /// Largest discharge current ever sent to this inverter.
    pub discharge_cap_ma: MilliAmps,
    /// The inverter counts as missing when its keep-alive is older than this; `0` when it sends
    /// none.
    pub keepalive_timeout_ms: u32,
}

/// How the combiner checks that the inverters keep to the limits they were sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct ObedienceConfig {
    /// Current beyond the limit that still counts as obeying (sensor error, regulation).
    pub tolerance_ma: MilliAmps,
    /// Plus this part of the limit.
    pub tolerance: Permille,
    /// An inverter over its limit this long is warned about.
    pub warn_after_ms: u32,
    /// An inverter over its limit this long is sent zero current in both directions.
    pub zero_after_ms: u32,
    /// An inverter over its limit this long makes the combiner open every pack gracefully (ask
    /// for zero current, then open), and stay open until [`Resume`](super::CombinerInput::Resume).
    pub open_after_ms: u32,
}

/// Everything the combiner needs to know, validated once by [`Combiner::new`](super::Combiner::new).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct CombinerConfig {
    /// The packs, in the order of their `pack` numbers.
    pub packs: Vec<PackSlot, MAX_PACKS>,
    /// The inverters, in the order of their `inverter` numbers.
    pub inverters: Vec<InverterSlot, MAX_INVERTERS>,
    /// A joined pack whose report is older than this is dropped and disconnected (N-1 operation).
    pub stale_after_ms: u32,
    /// A pack joins only when its voltage is within this of the joined packs' voltage (or, when
    /// none is joined yet, of the other candidates').
    pub join_window_mv: MilliVolts,
    /// A pack joins only while the bank's current is at most this (magnitude): under load the
    /// bank's terminal voltage is not its resting voltage, and a pack that matches it now would
    /// exchange a large current with the bank once the load stops.
    pub join_current_max_ma: MilliAmps,
    /// A pack asked to connect that does not report connected within this is given up on.
    pub join_timeout_ms: u32,
    /// After a pack was dropped or gave up joining, it is not asked to connect again for this
    /// long.
    pub rejoin_after_ms: u32,
    /// Part of what the measured shares allow that is actually sent: shares move when the
    /// current changes, so some headroom keeps the first pack to reach its limit inside it.
    pub share_margin: Permille,
    /// Shares are measured only while the total current is at least this large.
    pub share_min_current_ma: MilliAmps,
    /// The packs' currents together agree with the inverters' when they differ by at most this
    /// plus [`current_mismatch`](Self::current_mismatch) of the inverters' current. Until they
    /// agree, no pack's share falls below what its capacity and resistance predict, nor below
    /// its reported current plus all of the current no pack reported.
    pub current_mismatch_ma: MilliAmps,
    /// The relative part of that agreement.
    pub current_mismatch: Permille,
    /// How the inverters' obedience is checked.
    pub obedience: ObedienceConfig,
    /// Every increase of a current limit sent to an inverter rises at that inverter's cap per
    /// this time (from zero to the cap in this time) instead of stepping up, and a pack that
    /// joins starts the rise again from what the inverter was last told; reductions apply at
    /// once (0: no ramp). Left out of a file, [`DEFAULT_LIMIT_RAMP_MS`], a pack's own default.
    #[cfg_attr(feature = "serde", serde(default = "default_limit_ramp_ms"))]
    pub limit_ramp_ms: u32,
}

#[cfg(feature = "serde")]
fn default_limit_ramp_ms() -> u32 {
    DEFAULT_LIMIT_RAMP_MS
}

impl CombinerConfig {
    /// Sensible defaults for `packs` equal packs of `capacity_mah` (16 LFP cells in series,
    /// 10 mΩ) feeding one low-voltage CAN inverter with the whole of the combined limits,
    /// capped at `cap_ma` both ways.
    pub fn equal_packs(packs: usize, capacity_mah: u32, cap_ma: MilliAmps) -> CombinerConfig {
        let mut config = CombinerConfig {
            packs: Vec::new(),
            inverters: Vec::new(),
            stale_after_ms: 5_000,
            join_window_mv: MilliVolts(1_000),
            join_current_max_ma: MilliAmps(5_000),
            join_timeout_ms: 10_000,
            rejoin_after_ms: 30_000,
            share_margin: Permille(900),
            share_min_current_ma: MilliAmps(2_000),
            current_mismatch_ma: MilliAmps(3_000),
            current_mismatch: Permille(50),
            obedience: ObedienceConfig {
                tolerance_ma: MilliAmps(2_000),
                tolerance: Permille(50),
                warn_after_ms: 5_000,
                zero_after_ms: 15_000,
                open_after_ms: 30_000,
            },
            limit_ramp_ms: DEFAULT_LIMIT_RAMP_MS,
        };
        for _ in 0..packs.min(MAX_PACKS) {
            // Bounded by the min above.
            let _ = config.packs.push(PackSlot {
                capacity_mah,
                chemistry: CellChemistry::Lfp,
                cells: 16,
                resistance_uohm: 10_000,
            });
        }
        let _ = config.inverters.push(InverterSlot {
            protocol: InverterProtocol::LowVoltageCan,
            share: Permille::FULL,
            voltage_offset_mv: MilliVolts(0),
            charge_cap_ma: cap_ma,
            discharge_cap_ma: cap_ma,
            keepalive_timeout_ms: 0,
        });
        config
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), CombinerConfigError> {
        use CombinerConfigError as E;
        if self.packs.is_empty() {
            return Err(E::NoPacks);
        }
        if self.inverters.is_empty() {
            return Err(E::NoInverters);
        }
        if let Some(i) = self.packs.iter().position(|p| p.capacity_mah == 0) {
            return Err(E::ZeroCapacity { pack: i as u8 });
        }
        for (i, p) in self.packs.iter().enumerate() {
            let pack = i as u8;
            if !(1..=MAX_CELLS).contains(&p.cells) {
                return Err(E::Cells { pack, cells: p.cells });
            }
            if p.resistance_uohm == 0 {
                return Err(E::ZeroResistance { pack });
            }
            // A pack whose truthful voltage an inverter's protocol cannot carry would be
            // reported wrongly (clamped) to it: refuse the combination.
            let (_, pack_max_mv) = p.voltage_window_mv();
            for (k, inv) in self.inverters.iter().enumerate() {
                let allowed_max_mv = inv.protocol.max_voltage_mv().0;
                if pack_max_mv > allowed_max_mv {
                    return Err(E::PackVoltageBeyondProtocol {
                        pack,
                        inverter: k as u8,
                        pack_max_mv,
                        allowed_max_mv,
                    });
                }
            }
        }
        let shares: u32 = self.inverters.iter().map(|i| u32::from(i.share.0)).sum();
        if shares > 1000 || self.inverters.iter().any(|i| i.share.0 == 0) {
            return Err(E::Shares);
        }
        for (i, inv) in self.inverters.iter().enumerate() {
            if inv.voltage_offset_mv.0.abs() > 2_000 {
                return Err(E::VoltageOffset { inverter: i as u8 });
            }
            if inv.charge_cap_ma.0 < 0 || inv.discharge_cap_ma.0 < 0 {
                return Err(E::NegativeCap { inverter: i as u8 });
            }
        }
        let times = [
            ("stale_after_ms", self.stale_after_ms),
            ("join_timeout_ms", self.join_timeout_ms),
            ("rejoin_after_ms", self.rejoin_after_ms),
            ("obedience.warn_after_ms", self.obedience.warn_after_ms),
            ("obedience.zero_after_ms", self.obedience.zero_after_ms),
            ("obedience.open_after_ms", self.obedience.open_after_ms),
        ];
        for (field, ms) in times {
            if ms == 0 || ms > crate::MAX_CONFIG_MS {
                return Err(E::Time { field });
            }
        }
        if self.limit_ramp_ms > crate::MAX_CONFIG_MS {
            return Err(E::Time { field: "limit_ramp_ms" });
        }
        let o = &self.obedience;
        if !(o.warn_after_ms <= o.zero_after_ms && o.zero_after_ms <= o.open_after_ms) {
            return Err(E::EscalationOrder);
        }
        if self.join_window_mv.0 <= 0
            || self.share_min_current_ma.0 <= 0
            || self.join_current_max_ma.0 < 0
        {
            return Err(E::Window);
        }
        if self.share_margin.0 == 0 || self.share_margin.0 > 1000 {
            return Err(E::ShareMargin);
        }
        if self.current_mismatch_ma.0 < 0 || self.current_mismatch.0 > 1000 {
            return Err(E::CurrentMismatch);
        }
        if o.tolerance_ma.0 < 0 || o.tolerance.0 > 1000 {
            return Err(E::Tolerance);
        }
        Ok(())
    }

    pub(crate) fn ms(ms: u32) -> Duration {
        Duration::from_millis(u64::from(ms))
    }
}

/// What is wrong with a [`CombinerConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CombinerConfigError {
    /// No pack.
    NoPacks,
    /// No inverter.
    NoInverters,
    /// A pack with no capacity cannot be weighted.
    ZeroCapacity {
        /// The pack.
        pack: u8,
    },
    /// `packs[pack].cells` is outside 1..=[`MAX_CELLS`].
    Cells {
        /// The pack.
        pack: u8,
        /// The value given.
        cells: u16,
    },
    /// `packs[pack].resistance_uohm` is zero: its share of a change in current is unknown.
    ZeroResistance {
        /// The pack.
        pack: u8,
    },
    /// The highest voltage `packs[pack]` can truthfully report (its cells times its
    /// chemistry's highest cell voltage) is more than `inverters[inverter].protocol` can carry:
    /// that inverter would be told a clamped, wrong voltage.
    PackVoltageBeyondProtocol {
        /// The pack.
        pack: u8,
        /// The inverter.
        inverter: u8,
        /// The pack's highest plausible voltage, mV.
        pack_max_mv: i32,
        /// The most the inverter's protocol can carry, mV.
        allowed_max_mv: i32,
    },
    /// `current_mismatch_ma` is negative or `current_mismatch` above 1000.
    CurrentMismatch,
    /// Every inverter needs a share, and together at most 1000.
    Shares,
    /// A voltage offset beyond ±2 V.
    VoltageOffset {
        /// The inverter.
        inverter: u8,
    },
    /// A current cap below zero.
    NegativeCap {
        /// The inverter.
        inverter: u8,
    },
    /// A time of zero (`limit_ramp_ms` may be zero) or above the maximum configurable time.
    Time {
        /// The field.
        field: &'static str,
    },
    /// The escalation times must not fall: warn, then zero, then open.
    EscalationOrder,
    /// The join window and the share current must be positive, the join current not negative.
    Window,
    /// The share margin must be 1..=1000.
    ShareMargin,
    /// A negative tolerance, or a relative one above 1000.
    Tolerance,
}
