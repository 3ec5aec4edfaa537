//! Configuration: plain data, validated once by [`Config::validate`] (and by `Bms::new`).
//!
//! There is deliberately no `Default` for safety limits: start from a preset
//! ([`Config::tesla_model_s`], [`Config::lfp_16s`]) and change what differs. With the `serde`
//! feature every struct here implements `Deserialize` and rejects unknown fields, so a typo in a
//! TOML file is an error, not a silently ignored limit.

use crate::chemistry::CellChemistry;
use crate::time::Duration;
use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};

mod envelope;
mod rules;
mod targets;

pub use crate::bound::Bound;
pub use crate::problem::{ConfigError, Problem};
pub(crate) use crate::rule::Side;
pub use crate::sizes::{MAX_CELLS, MAX_TEMPERATURES};
/// Most precharge attempts a configuration may ask for.
pub const MAX_PRECHARGE_ATTEMPTS: u8 = 10;
/// Longest debounce, freshness limit or sequencing timeout a configuration may ask for, in ms.
pub const MAX_CONFIG_MS: u32 = 600_000;

/// Everything one pack controller needs to know about its pack.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct Config {
    /// The cells' chemistry, whose physical envelope every protection threshold must lie in
    /// ([`crate::chemistry`]). Left out of a file, it is
    /// [`CellChemistry::GenericLithium`], the widest envelope.
    #[cfg_attr(feature = "serde", serde(default))]
    pub chemistry: CellChemistry,
    /// Series cells (groups) in the pack, `1..=MAX_CELLS`.
    pub cell_count: u16,
    /// Temperature sensors, `1..=MAX_TEMPERATURES`.
    pub temperature_count: u16,
    /// Largest charge current the core will ever allow (magnitude).
    pub charge_current_max_ma: MilliAmps,
    /// Largest discharge current the core will ever allow (magnitude).
    pub discharge_current_max_ma: MilliAmps,
    /// What an active operating-limit (first tier) warning leaves of the maximum current in the
    /// affected direction; 500 halves it.
    pub operating_limit_derate: Permille,
    /// Below this magnitude the pack counts as idle: neither charging nor discharging. Rules that
    /// only apply while charging (the charge temperature window) use it.
    pub idle_current_ma: MilliAmps,
    /// The adapter reports a hardware fault line ([`Input::HardwareFault`](crate::Input)), e.g.
    /// the module boards' own comparators. When it does, the line is a required value: closing
    /// waits until it has been received once, like every cell and sensor.
    pub hardware_fault_line: bool,
    /// The protection rule thresholds.
    pub protection: ProtectionConfig,
    /// How long each measured value stays fresh after it was sampled.
    pub freshness: FreshnessConfig,
    /// Contactor sequencing.
    pub contactors: ContactorConfig,
    /// Passive balancing.
    pub balance: BalanceConfig,
    /// Charge control ([`crate::charge`]): the charge voltage limit and the current-limit
    /// tables, which can only lower the limits protection allows. `None` leaves protection's
    /// limits alone and reports no charge voltage limit of its own.
    #[cfg_attr(feature = "serde", serde(default))]
    pub charge: Option<crate::charge::ChargeConfig>,
    /// State of charge and health ([`crate::soc`]). `None`: no estimate; the charge
    /// controller's SoC tables then do not bind.
    #[cfg_attr(feature = "serde", serde(default))]
    pub soc: Option<crate::soc::SocConfig>,
}

/// Three-tier thresholds for one protected quantity, after foxBMS: operating limit (warn and
/// derate), recommended safety limit (that direction's current limit to zero) and maximum safety
/// limit (open the contactors and latch). A tier left out is not checked.
///
/// For rules that guard a maximum the tiers must rise (`operating < recommended < maximum`); for
/// rules that guard a minimum they must fall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct Thresholds<U> {
    /// Maximum operating limit (MOL): warn and derate.
    #[cfg_attr(feature = "serde", serde(default))]
    pub operating: Option<U>,
    /// Recommended safety limit (RSL): current limit to zero in the affected direction.
    #[cfg_attr(feature = "serde", serde(default))]
    pub recommended: Option<U>,
    /// Maximum safety limit (MSL): open the contactors and latch.
    #[cfg_attr(feature = "serde", serde(default))]
    pub maximum: Option<U>,
    /// How far back inside a threshold the value must come before a tier releases.
    pub hysteresis: U,
    /// How long a violation must last, from its first violating sample, before a tier trips.
    pub debounce_ms: u32,
}

/// Thresholds for every threshold rule. Voltages and currents are magnitudes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct ProtectionConfig {
    /// Highest cell voltage.
    pub cell_over_voltage_mv: Thresholds<MilliVolts>,
    /// Lowest cell voltage.
    pub cell_under_voltage_mv: Thresholds<MilliVolts>,
    /// Measured pack voltage, high side.
    pub pack_over_voltage_mv: Thresholds<MilliVolts>,
    /// Measured pack voltage, low side.
    pub pack_under_voltage_mv: Thresholds<MilliVolts>,
    /// Charge current.
    pub charge_over_current_ma: Thresholds<MilliAmps>,
    /// Discharge current (magnitude).
    pub discharge_over_current_ma: Thresholds<MilliAmps>,
    /// Highest temperature, charge window. The maximum tier only applies while charging.
    pub charge_over_temperature_dc: Thresholds<DeciCelsius>,
    /// Lowest temperature, charge window. The maximum tier only applies while charging.
    pub charge_under_temperature_dc: Thresholds<DeciCelsius>,
    /// Highest temperature, discharge window (the outer window: applies at all times).
    pub discharge_over_temperature_dc: Thresholds<DeciCelsius>,
    /// Lowest temperature, discharge window (the outer window: applies at all times).
    pub discharge_under_temperature_dc: Thresholds<DeciCelsius>,
    /// Highest minus lowest cell voltage.
    pub cell_imbalance_mv: Thresholds<MilliVolts>,
    /// Plausibility: |sum of cell voltages - measured pack voltage|.
    pub pack_voltage_mismatch_mv: Thresholds<MilliVolts>,
}

/// How long after its sample time each kind of value may still be used. Older data is a
/// maximum-safety fault of its own (contactors open and the fault latches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct FreshnessConfig {
    /// Each cell voltage.
    pub cell_voltage_ms: u32,
    /// Each temperature.
    pub temperature_ms: u32,
    /// The pack current.
    pub current_ms: u32,
    /// The pack voltage.
    pub pack_voltage_ms: u32,
    /// The bus (inverter side) voltage, needed while the contactors close and while they are
    /// closed (see [`RuleId::BusVoltageStale`](crate::protection::RuleId::BusVoltageStale)).
    pub bus_voltage_ms: u32,
    /// A cell reading that stays exactly the same while current flows and the other cells move
    /// is frozen, and counts as stale (see `measure/frozen.rs`). It is judged only while the
    /// current's magnitude is at least this...
    pub frozen_current_ma: MilliAmps,
    /// ...once the median cell voltage has moved by at least this since the reading last
    /// changed...
    pub frozen_move_mv: MilliVolts,
    /// ...and it has arrived this many times in a row with the same value.
    pub frozen_samples: u16,
}

/// Which contactors report their position through an auxiliary contact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct FeedbackConfig {
    /// The negative main contactor has feedback.
    pub negative: bool,
    /// The precharge relay has feedback.
    pub precharge: bool,
    /// The positive main contactor has feedback.
    pub positive: bool,
}

/// Contactor sequencing: negative, precharge, verify, positive, precharge off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct ContactorConfig {
    /// Which contactors have feedback. Those that do must confirm every command within
    /// `feedback_timeout_ms`, or a mismatch (failed to close) or weld (failed to open) latches.
    pub feedback: FeedbackConfig,
    /// How long feedback may disagree with the command.
    pub feedback_timeout_ms: u32,
    /// Wait after closing a contactor without feedback before the next step.
    pub close_settle_ms: u32,
    /// Precharge must succeed within this time.
    pub precharge_timeout_ms: u32,
    /// Precharge succeeds when the bus voltage is within this of the pack voltage...
    pub precharge_band_mv: MilliVolts,
    /// ...and the current has fallen below this.
    pub precharge_done_current_ma: MilliAmps,
    /// A current above this during precharge means a short: abort at once, no retry. It must be
    /// above the initial inrush (pack voltage / precharge resistance, e.g. 400 V / 50 ohm = 8 A)
    /// or every precharge of a healthy bus is reported as a short.
    pub precharge_short_current_ma: MilliAmps,
    /// When to check that the bus voltage has started to rise...
    pub precharge_rise_check_ms: u32,
    /// ...to at least this fraction of the pack voltage.
    pub precharge_min_rise: Permille,
    /// Attempts before precharge gives up and latches a fault, `1..=MAX_PRECHARGE_ATTEMPTS`.
    pub precharge_attempts: u8,
    /// Pause between attempts, to let the precharge resistor cool.
    pub precharge_retry_delay_ms: u32,
    /// A graceful stop opens the contactors once the current magnitude is at or below this...
    pub break_current_ma: MilliAmps,
    /// ...or after this long, whatever the current.
    pub graceful_open_timeout_ms: u32,
    /// After an open the DC link (the bus voltage) must fall more than `precharge_band_mv` below
    /// the pack within this time, or a contactor that should have cut it off is welded (the
    /// check that needs no feedback). Cover the bleed: falling by the band takes about
    /// R_bleed × C × band / pack voltage (10 kΩ, 2 mF, 4.8 V of 355 V: 0.3 s).
    pub link_decay_ms: u32,
    /// What the bus voltage input measures: a DC link fed only through this pack's contactors
    /// (`dedicated`, the default and the presets'), or one that something else may hold up
    /// (`shared`: parallel strings on one bus, an inverter whose DC input PV or another battery
    /// keeps live). Only a dedicated link can show a weld without feedback; a shared one turns
    /// those checks off and needs `feedback.positive` and `feedback.negative`.
    #[cfg_attr(feature = "serde", serde(default))]
    pub dc_link: DcLink,
    /// After the contactors close, the current limits rise from zero to the configured
    /// maximum over this time instead of stepping up at once (0: no ramp). Reductions always
    /// apply at once. Left out of a file, [`DEFAULT_LIMIT_RAMP_MS`].
    #[cfg_attr(feature = "serde", serde(default = "default_limit_ramp_ms"))]
    pub limit_ramp_ms: u32,
}

/// The default of [`ContactorConfig::limit_ramp_ms`]: 5 s from zero to the configured maximum,
/// 20 A/s for a 100 A pack. Slow enough that an inverter sees no step at the close, quick enough
/// that the pack is at full current long before a household load notices.
pub const DEFAULT_LIMIT_RAMP_MS: u32 = 5_000;

#[cfg(feature = "serde")]
fn default_limit_ramp_ms() -> u32 {
    DEFAULT_LIMIT_RAMP_MS
}

/// What feeds the DC link on the far side of the contactors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(rename_all = "snake_case")
)]
pub enum DcLink {
    /// Only this pack, through its contactors: with them open, the link discharges through the
    /// inverter's bleed. Its voltage then witnesses welds ([`crate::contactor`]).
    #[default]
    Dedicated,
    /// Other sources may hold the link up with this pack's contactors open. Its voltage says
    /// nothing about them: welds are found by feedback alone, and precharge joins the live
    /// link once it is within the precharge band of the pack.
    Shared,
}

/// Passive balancing: which cells bleed, and when. The policy is described in
/// [`balance`](crate::balance).
///
/// Cells and temperature sensors are spread over boards (the module boards that carry the bleed
/// resistors): board `b` has cells `b * cells_per_board ..` (the last board may have fewer) and,
/// when `temperature_count` is a multiple of the number of boards, the same share of the
/// sensors in order. When it is not, no sensor can be told to belong to a board and the hottest
/// sensor of the pack stands for every board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize, serde::Serialize),
    serde(deny_unknown_fields)
)]
pub struct BalanceConfig {
    /// Balance at all. When off, nothing ever bleeds (the other fields are still checked).
    pub enabled: bool,
    /// Cells at or below this voltage never bleed.
    pub start_mv: MilliVolts,
    /// A cell more than this above the lowest cell starts bleeding...
    pub delta_mv: MilliVolts,
    /// ...and keeps bleeding, window after window, until it is within `delta_mv - hysteresis_mv`
    /// of the lowest cell. Must be below `delta_mv`.
    pub hysteresis_mv: MilliVolts,
    /// Only balance at rest: with a fresh current whose averaged magnitude (`idle_filter_ms`) has
    /// come down to at most [`Config::idle_current_ma`] and not risen above that plus
    /// `idle_hysteresis_ma` since. Voltages under load show the cells' resistance as much as
    /// their charge; LFP packs, whose voltage only tells charge apart at the top knee while
    /// charging, turn this off.
    pub idle_only: bool,
    /// Time constant of the moving average of the current's magnitude that idle is judged on,
    /// `1..` ms.
    /// Longer rides out more noise; a load of `L` leaves idle after about
    /// `idle_filter_ms * ln((L - I0) / (L - idle_current_ma - idle_hysteresis_ma))`.
    pub idle_filter_ms: u32,
    /// How far the averaged current may rise above [`Config::idle_current_ma`] before a pack
    /// that was idle stops being idle, `>= 0`.
    pub idle_hysteresis_ma: MilliAmps,
    /// Most cells bleeding at once; the highest cells are chosen first.
    pub max_cells: u16,
    /// Cells per board, in series order.
    pub cells_per_board: u16,
    /// A board whose hottest sensor is at or above this bleeds nothing.
    pub board_temperature_max_dc: DeciCelsius,
    /// How long the chosen cells bleed before the next measure window.
    pub bleed_window_ms: u32,
    /// How long nothing bleeds before the next choice.
    pub measure_window_ms: u32,
    /// How long after bleeding stops (or balancing resumes) before a cell sample counts for the
    /// next choice: the bleed current distorts the readings while it flows, and the cells take a
    /// moment to recover. Must be below `measure_window_ms`.
    pub settle_ms: u32,
    /// After current has flowed (with `idle_only`), how long the pack must rest before the
    /// first choice, instead of one measure window: the cells' voltages recover from a load
    /// over tens of seconds, and a household load that hovers around the idle current would
    /// otherwise start and stop bleeding every few seconds. Longer than `measure_window_ms`.
    pub rest_after_load_ms: u32,
}

/// Thresholds with the unit stripped, as the rule engine uses them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawThresholds {
    pub tiers: [Option<i32>; 3],
    pub hysteresis: i32,
    pub debounce: Duration,
}

/// Unit types whose raw value is an `i32`.
pub trait RawUnit: Copy {
    /// The raw value.
    fn raw(self) -> i32;
}
impl RawUnit for MilliVolts {
    fn raw(self) -> i32 {
        self.0
    }
}
impl RawUnit for MilliAmps {
    fn raw(self) -> i32 {
        self.0
    }
}
impl RawUnit for DeciCelsius {
    fn raw(self) -> i32 {
        self.0
    }
}

impl<U: RawUnit> Thresholds<U> {
    pub(crate) fn raw(&self) -> RawThresholds {
        RawThresholds {
            tiers: [
                self.operating.map(RawUnit::raw),
                self.recommended.map(RawUnit::raw),
                self.maximum.map(RawUnit::raw),
            ],
            hysteresis: self.hysteresis.raw(),
            debounce: Duration::from_millis(u64::from(self.debounce_ms)),
        }
    }
}

impl Config {
    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        range("cell_count", None, self.cell_count.into(), 1, MAX_CELLS as i64)?;
        range(
            "temperature_count",
            None,
            self.temperature_count.into(),
            1,
            MAX_TEMPERATURES as i64,
        )?;
        range(
            "charge_current_max_ma",
            None,
            self.charge_current_max_ma.0.into(),
            1,
            i32::MAX.into(),
        )?;
        range(
            "discharge_current_max_ma",
            None,
            self.discharge_current_max_ma.0.into(),
            1,
            i32::MAX.into(),
        )?;
        range("operating_limit_derate", None, self.operating_limit_derate.0.into(), 0, 1000)?;
        range("idle_current_ma", None, self.idle_current_ma.0.into(), 0, i32::MAX.into())?;
        for rule in crate::rule::RuleId::ALL {
            let spec = rule.spec();
            if spec.kind != crate::rule::Kind::Threshold {
                continue;
            }
            check_thresholds(spec.field, spec.side, spec.required, &rule.thresholds(self))?;
        }
        // Every tier inside the chemistry's envelope, the windows the right way round, each
        // hysteresis within the gap between its tiers.
        envelope::check(self)?;
        // The largest emitted limit must stay below the over-current trip, or an inverter that
        // obeys us would trip us.
        below_tier(
            "charge_current_max_ma",
            self.charge_current_max_ma,
            "protection.charge_over_current_ma",
            &self.protection.charge_over_current_ma,
        )?;
        below_tier(
            "discharge_current_max_ma",
            self.discharge_current_max_ma,
            "protection.discharge_over_current_ma",
            &self.protection.discharge_over_current_ma,
        )?;
        self.freshness.validate()?;
        self.contactors.validate()?;
        self.balance.validate()?;
        self.validate_estimation()?;
        // Charge control, balancing and the SoC anchors inside protection's window.
        targets::check(self)
    }

    /// The charge and SoC sections, each valid on its own. Both take the series cell count from
    /// [`Config::cell_count`], which holds it once for every part.
    fn validate_estimation(&self) -> Result<(), ConfigError> {
        if let Some(charge) = &self.charge {
            charge.validate().map_err(|e| ConfigError {
                field: "charge",
                part: Some(e.field),
                problem: match e.problem {
                    crate::charge::ChargeProblem::Value(p) => p,
                    crate::charge::ChargeProblem::Table(t) => Problem::Table(t),
                },
            })?;
        }
        if let Some(soc) = &self.soc {
            soc.validate().map_err(|e| ConfigError {
                field: "soc",
                part: Some(e.field),
                problem: e.problem,
            })?;
        }
        Ok(())
    }
}

impl FreshnessConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let fields = [
            ("freshness.cell_voltage_ms", self.cell_voltage_ms),
            ("freshness.temperature_ms", self.temperature_ms),
            ("freshness.current_ms", self.current_ms),
            ("freshness.pack_voltage_ms", self.pack_voltage_ms),
            ("freshness.bus_voltage_ms", self.bus_voltage_ms),
        ];
        for (field, ms) in fields {
            range(field, None, ms.into(), 1, MAX_CONFIG_MS.into())?;
        }
        let max = i64::from(i32::MAX);
        range("freshness.frozen_current_ma", None, self.frozen_current_ma.0.into(), 1, max)?;
        // A millivolt is the resolution of a reading: the others must move by more than that.
        range("freshness.frozen_move_mv", None, self.frozen_move_mv.0.into(), 2, 1_000)?;
        range("freshness.frozen_samples", None, self.frozen_samples.into(), 2, 10_000)
    }
}

impl ContactorConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let times = [
            ("contactors.feedback_timeout_ms", self.feedback_timeout_ms, 1),
            ("contactors.close_settle_ms", self.close_settle_ms, 0),
            ("contactors.precharge_timeout_ms", self.precharge_timeout_ms, 1),
            ("contactors.precharge_rise_check_ms", self.precharge_rise_check_ms, 1),
            ("contactors.precharge_retry_delay_ms", self.precharge_retry_delay_ms, 0),
            ("contactors.graceful_open_timeout_ms", self.graceful_open_timeout_ms, 1),
            ("contactors.link_decay_ms", self.link_decay_ms, 1),
            ("contactors.limit_ramp_ms", self.limit_ramp_ms, 0),
        ];
        for (field, ms, min) in times {
            range(field, None, ms.into(), min, MAX_CONFIG_MS.into())?;
        }
        if self.precharge_rise_check_ms >= self.precharge_timeout_ms {
            return Err(ConfigError {
                field: "contactors.precharge_rise_check_ms",
                part: None,
                problem: Problem::MustBeBelow {
                    other: "contactors.precharge_timeout_ms",
                    value: self.precharge_rise_check_ms.into(),
                    other_value: self.precharge_timeout_ms.into(),
                },
            });
        }
        let max = i64::from(i32::MAX);
        range("contactors.precharge_band_mv", None, self.precharge_band_mv.0.into(), 1, max)?;
        range(
            "contactors.precharge_done_current_ma",
            None,
            self.precharge_done_current_ma.0.into(),
            1,
            max,
        )?;
        if self.precharge_short_current_ma.0 <= self.precharge_done_current_ma.0 {
            return Err(ConfigError {
                field: "contactors.precharge_short_current_ma",
                part: None,
                problem: Problem::MustExceed {
                    other: "contactors.precharge_done_current_ma",
                    value: self.precharge_short_current_ma.0.into(),
                    other_value: self.precharge_done_current_ma.0.into(),
                },
            });
        }
        range("contactors.precharge_min_rise", None, self.precharge_min_rise.0.into(), 0, 1000)?;
        range(
            "contactors.precharge_attempts",
            None,
            self.precharge_attempts.into(),
            1,
            MAX_PRECHARGE_ATTEMPTS.into(),
        )?;
        range("contactors.break_current_ma", None, self.break_current_ma.0.into(), 0, max)?;
        // Without a link that only this pack feeds, nothing but feedback can find a weld.
        if self.dc_link == DcLink::Shared {
            for (contactor, has) in
                [("negative", self.feedback.negative), ("positive", self.feedback.positive)]
            {
                if !has {
                    return Err(ConfigError {
                        field: "contactors.dc_link",
                        part: None,
                        problem: Problem::SharedLinkNeedsFeedback { contactor },
                    });
                }
            }
        }
        Ok(())
    }
}

impl BalanceConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let max = i64::from(i32::MAX);
        range("balance.start_mv", None, self.start_mv.0.into(), 0, max)?;
        range("balance.delta_mv", None, self.delta_mv.0.into(), 1, max)?;
        range("balance.hysteresis_mv", None, self.hysteresis_mv.0.into(), 0, max)?;
        below(
            "balance.hysteresis_mv",
            self.hysteresis_mv.0.into(),
            "balance.delta_mv",
            self.delta_mv.0.into(),
        )?;
        range("balance.max_cells", None, self.max_cells.into(), 1, MAX_CELLS as i64)?;
        range("balance.cells_per_board", None, self.cells_per_board.into(), 1, MAX_CELLS as i64)?;
        range("balance.idle_hysteresis_ma", None, self.idle_hysteresis_ma.0.into(), 0, max)?;
        let times = [
            ("balance.bleed_window_ms", self.bleed_window_ms, 1),
            ("balance.measure_window_ms", self.measure_window_ms, 1),
            ("balance.settle_ms", self.settle_ms, 0),
            ("balance.rest_after_load_ms", self.rest_after_load_ms, 1),
            ("balance.idle_filter_ms", self.idle_filter_ms, 1),
        ];
        for (field, ms, min) in times {
            range(field, None, ms.into(), min, MAX_CONFIG_MS.into())?;
        }
        // A settle time as long as the window would leave no sample to choose from.
        below(
            "balance.settle_ms",
            self.settle_ms.into(),
            "balance.measure_window_ms",
            self.measure_window_ms.into(),
        )?;
        // A rest after load no longer than a measure window would make a load no pause at all.
        if self.rest_after_load_ms <= self.measure_window_ms {
            return Err(ConfigError {
                field: "balance.rest_after_load_ms",
                part: None,
                problem: Problem::MustExceed {
                    other: "balance.measure_window_ms",
                    value: self.rest_after_load_ms.into(),
                    other_value: self.measure_window_ms.into(),
                },
            });
        }
        Ok(())
    }
}

/// `value` of `field` must be strictly less than `other_value` of `other`.
fn below(
    field: &'static str,
    value: i64,
    other: &'static str,
    other_value: i64,
) -> Result<(), ConfigError> {
    if value < other_value {
        Ok(())
    } else {
        Err(ConfigError {
            field,
            part: None,
            problem: Problem::MustBeBelow { other, value, other_value },
        })
    }
}

fn range(
    field: &'static str,
    part: Option<&'static str>,
    value: i64,
    min: i64,
    max: i64,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError { field, part, problem: Problem::OutOfRange { value, min, max } })
    }
}

const TIER_PARTS: [&str; 3] = ["operating", "recommended", "maximum"];

fn check_thresholds(
    field: &'static str,
    side: Side,
    required: bool,
    t: &RawThresholds,
) -> Result<(), ConfigError> {
    if required && t.tiers[2].is_none() {
        return Err(ConfigError { field, part: Some("maximum"), problem: Problem::Required });
    }
    range(field, Some("hysteresis"), t.hysteresis.into(), 0, i32::MAX.into())?;
    range(field, Some("debounce_ms"), t.debounce.as_millis() as i64, 0, MAX_CONFIG_MS.into())?;
    // Each set tier must lie beyond the previous set tier, in the direction of danger.
    let mut previous: Option<(usize, i32)> = None;
    for (tier, threshold) in t.tiers.iter().enumerate() {
        let Some(value) = *threshold else { continue };
        if let Some((prev_tier, prev_value)) = previous {
            let other = TIER_PARTS[prev_tier];
            let (v, o) = (i64::from(value), i64::from(prev_value));
            let (ok, problem) = match side {
                Side::High => {
                    (value > prev_value, Problem::MustExceed { other, value: v, other_value: o })
                }
                Side::Low => {
                    (value < prev_value, Problem::MustBeBelow { other, value: v, other_value: o })
                }
            };
            if !ok {
                return Err(ConfigError { field, part: Some(TIER_PARTS[tier]), problem });
            }
        }
        previous = Some((tier, value));
    }
    Ok(())
}

fn below_tier(
    field: &'static str,
    value: MilliAmps,
    tier_field: &'static str,
    t: &Thresholds<MilliAmps>,
) -> Result<(), ConfigError> {
    let first = t.operating.or(t.recommended).or(t.maximum);
    match first {
        Some(limit) if value.0 >= limit.0 => Err(ConfigError {
            field,
            part: None,
            problem: Problem::MustBeBelow {
                other: tier_field,
                value: value.0.into(),
                other_value: limit.0.into(),
            },
        }),
        _ => Ok(()),
    }
}
