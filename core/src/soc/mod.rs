//! State of charge and state of health of one pack, in integer arithmetic.
//!
//! A [`SocEstimator`] follows the pack's *mean cell*: the adapter passes the mean cell voltage
//! (pack voltage / cells in series, or the mean of the cell readings), the lowest and highest
//! cell for the empty anchor and plausibility, and the pack current, which flows through every
//! series cell alike. Five mechanisms work together:
//!
//! - **Coulomb counting**: the charge `I·dt` in [`MilliAmpSeconds`](crate::MilliAmpSeconds), charging current scaled by
//!   the charge efficiency, divided by the capacity estimate. The current of a sample is taken to
//!   have flowed since the previous sample (the sensor averages over its period).
//! - **Model-based correction**: an extended Kalman filter on a 1-RC equivalent circuit of the
//!   mean cell (`soc/ekf.rs`, with its number formats) compares the measured voltage with the
//!   model's and corrects the SoC in proportion to the OCV slope: strongly on NCA, where a
//!   millivolt is about 0.1 %, hardly at all on the LFP plateau, where it can be 2.5 %. The
//!   model's resistances follow the cell temperature (Arrhenius, `model.resistance_activation_k`):
//!   a cold cell's larger drop under load must not read as a different SoC.
//! - **Anchors**: full (the caller reports the charge voltage limit reached and the current
//!   stays at or below the tail current for `full_hold_ms`), empty (the lowest cell at or below
//!   `empty_cell_mv` at low current for `empty_hold_ms`) and rested OCV (the current at or below
//!   `rest_current_ma` for `rest_ms`: the table's SoC is blended in, weighted by how precisely
//!   the voltage pins the SoC at that point of the curve).
//! - **Offset learning**: while the contactors are open the true current is zero, so the
//!   reading is the sensor's offset; it is averaged slowly into a bounded estimate that is
//!   subtracted from every reading.
//! - **State of health**: the capacity from the charge counted between two anchors at least
//!   40 % apart (or between points where the filter itself pins the SoC), filtered, with a
//!   confidence; the series resistance from the voltage step over one sample period on a
//!   current step of at least `resistance_step_ma`, scaled to 25 °C and filtered. From the third
//!   sample on the model uses it in place of the configured R0 (within ½–4 times that), so a
//!   guessed or aged resistance does not bias the SoC under load.
//!
//! The confidence figure is the filter's own: a function of the SoC standard deviation, which
//! shrinks at anchors (and on steep parts of the curve under load) and grows linearly with the
//! charge counted (sensor gain) and the time elapsed (sensor offset) since.
//!
//! [`SocStatus::soc`] is on the scale of the chemistry's OCV table (0 % and 100 % are its ends:
//! 2.51 V and 4.18 V for NCA, 2.01 V and 3.60 V for LFP), which is the cells' true state of
//! charge as far as the table is right; the full and empty anchors read the table at the
//! relaxed voltage the model gives (the terminal voltage less the drop over R0 and the RC pair),
//! so they agree with it. [`SocStatus::usable`] maps the window the pack is actually run in to
//! 0–100 %, so a pack charged to its target reads 100 %.
//!
//! Every input is hostile: a sample older than the previous one, from the future, or with
//! implausible values is ignored or clamped and counted in [`SocCounters`], never a panic, and
//! all arithmetic is saturating or done in `i128` and clamped.

mod config;
mod ekf;
mod estimator;
mod ocv;

pub use config::{CellModel, SocConfig, SocConfigError};
pub use estimator::SocEstimator;
pub use ocv::{Chemistry, OCV_POINTS};

use crate::time::Instant;
use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};

/// One measurement for [`SocEstimator::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocInput {
    /// When the values were sampled.
    pub sampled_at: Instant,
    /// Pack current, positive charging, as measured (the learned offset is subtracted inside).
    pub current_ma: MilliAmps,
    /// Mean cell voltage.
    pub cell_mean_mv: MilliVolts,
    /// Lowest cell voltage.
    pub cell_min_mv: MilliVolts,
    /// Highest cell voltage.
    pub cell_max_mv: MilliVolts,
    /// Cell temperature (the mean or the sensor the adapter trusts).
    pub temperature_dc: DeciCelsius,
    /// The charger holds the pack at its charge voltage limit.
    pub at_cvl: bool,
    /// The contactors are open, so the true current is zero.
    pub contactors_open: bool,
}

/// Where the estimator starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initial {
    /// A persisted [`SocSnapshot`].
    Snapshot(SocSnapshot),
    /// A rested mean cell voltage, read through the OCV table.
    FromOcv {
        /// Mean cell voltage at rest.
        cell_mv: MilliVolts,
    },
    /// A SoC from elsewhere (a user, another device), with no confidence.
    Soc(Permille),
}

/// What set the SoC at an anchor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Anchor {
    /// Held at the charge voltage limit with the current below the tail current: 100 %.
    Full,
    /// The lowest cell at the empty voltage at low current: 0 %.
    Empty,
    /// The rested OCV through the table, blended by the table's local precision.
    RestedOcv,
}

/// Inputs that were ignored or clamped, by reason. Saturating counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocCounters {
    /// Samples ignored because they were not later than the previous one.
    pub time_reversals: u32,
    /// Samples ignored because they were sampled after `now`.
    pub from_future: u32,
    /// Samples whose current was beyond the plausible range and clamped.
    pub current_clamped: u32,
    /// Samples whose voltages were implausible (out of range, or min > mean > max): used for
    /// counting only.
    pub voltage_rejected: u32,
    /// Gaps between samples longer than `max_sample_gap_ms`: only that much was counted.
    pub gaps: u32,
    /// Filter innovations beyond three standard deviations, clamped.
    pub innovations_clamped: u32,
    /// Offset samples refused (contactors reported open with a current too large for an
    /// offset).
    pub offset_rejected: u32,
    /// Capacity samples refused as implausible.
    pub capacity_rejected: u32,
}

/// The estimate, for telemetry and for the pack controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocStatus {
    /// State of charge, rounded down.
    pub soc: Permille,
    /// State of charge in ppm (1 000 000 = 100 %).
    pub soc_ppm: u32,
    /// The state of charge in the window the pack is run in
    /// ([`usable_empty_ocv_mv`](SocConfig::usable_empty_ocv_mv) to
    /// [`usable_full_ocv_mv`](SocConfig::usable_full_ocv_mv)), rounded down: what a user and an
    /// inverter are shown, 100 % when a charge to the target has finished.
    pub usable: Permille,
    /// How far to trust `soc`: 1000 at a standard deviation of 0, falling by 1 per 0.01 %, so
    /// 950 at 0.5 % and 0 at 10 % or more.
    pub confidence: Permille,
    /// SoC standard deviation of the filter, ppm.
    pub sigma_ppm: u32,
    /// Capacity estimate (configured value until learned).
    pub capacity_mah: u32,
    /// Confidence in `capacity_mah`: 0 until a capacity has been learned.
    pub capacity_confidence: Permille,
    /// Capacity samples accepted since start.
    pub capacity_samples: u32,
    /// Series resistance R0 learned from current steps, scaled to 25 °C, µΩ: the voltage step
    /// over one sample period less the model's RC pair's share of it, divided by the current
    /// step and by the resistance factor at the cell temperature. The configured R0 until
    /// learned; the model uses it from the third sample on.
    pub resistance_uohm: u32,
    /// Resistance samples accepted since start.
    pub resistance_samples: u32,
    /// Learned current-sensor offset, subtracted from every reading.
    pub offset_ma: MilliAmps,
    /// Voltage across the model's RC pair, µV.
    pub rc_uv: i32,
    /// The last anchor and when it happened.
    pub last_anchor: Option<(Instant, Anchor)>,
    /// The pack is at rest (current at or below `rest_current_ma`) since this instant.
    pub resting_since: Option<Instant>,
    /// Inputs ignored or clamped.
    pub counters: SocCounters,
}

/// Everything the estimator needs to resume after a restart, as plain integers. Times are
/// durations, since the adapter's epoch may change across a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize))]
pub struct SocSnapshot {
    /// State of charge, ppm.
    pub soc_ppm: u32,
    /// Confidence (see [`SocStatus::confidence`]); restores the SoC uncertainty.
    pub confidence: Permille,
    /// RC voltage, µV.
    pub rc_uv: i32,
    /// Learned offset, µA.
    pub offset_ua: i32,
    /// Capacity estimate.
    pub capacity_mah: u32,
    /// Confidence in the capacity estimate.
    pub capacity_confidence: Permille,
    /// Capacity samples accepted so far.
    pub capacity_samples: u32,
    /// Resistance estimate (R0 at 25 °C), µΩ.
    pub resistance_uohm: u32,
    /// Resistance samples accepted so far.
    pub resistance_samples: u32,
    /// The last anchor, and the seconds from it to the snapshot.
    pub last_anchor: Option<(Anchor, u32)>,
    /// The anchor capacity learning counts from: its SoC (ppm), the charge counted since, and
    /// the seconds from it to the snapshot.
    pub capacity_reference: Option<(u32, i64, u32)>,
}
