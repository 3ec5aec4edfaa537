//! Named configuration presets. Figures and their sources are in `shared/battery.md`; the
//! protection timing (over/under voltage 200 ms, over-current 100 ms, temperature 1 s) follows
//! foxBMS 2.

use crate::chemistry::CellChemistry;
use crate::config::{
    BalanceConfig, Config, ContactorConfig, DcLink, FeedbackConfig, FreshnessConfig,
    ProtectionConfig, Thresholds,
};
use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};

const VOLTAGE_DEBOUNCE_MS: u32 = 200;
const CURRENT_DEBOUNCE_MS: u32 = 100;
const TEMPERATURE_DEBOUNCE_MS: u32 = 1_000;

fn mv(op: i32, rec: i32, max: i32, hysteresis: i32, debounce_ms: u32) -> Thresholds<MilliVolts> {
    Thresholds {
        operating: Some(MilliVolts(op)),
        recommended: Some(MilliVolts(rec)),
        maximum: Some(MilliVolts(max)),
        hysteresis: MilliVolts(hysteresis),
        debounce_ms,
    }
}

fn ma(op: i32, rec: i32, max: i32) -> Thresholds<MilliAmps> {
    Thresholds {
        operating: Some(MilliAmps(op)),
        recommended: Some(MilliAmps(rec)),
        maximum: Some(MilliAmps(max)),
        hysteresis: MilliAmps(op / 20),
        debounce_ms: CURRENT_DEBOUNCE_MS,
    }
}

fn dc(op: i32, rec: i32, max: i32) -> Thresholds<DeciCelsius> {
    Thresholds {
        operating: Some(DeciCelsius(op)),
        recommended: Some(DeciCelsius(rec)),
        maximum: Some(DeciCelsius(max)),
        hysteresis: DeciCelsius(20),
        debounce_ms: TEMPERATURE_DEBOUNCE_MS,
    }
}

/// Per-cell voltage figures of a chemistry, scaled to the pack by the presets.
struct CellWindow {
    over: [i32; 3],
    under: [i32; 3],
}

fn protection(
    cells: i32,
    window: &CellWindow,
    charge_ma: [i32; 3],
    discharge_ma: [i32; 3],
) -> ProtectionConfig {
    let [o1, o2, o3] = window.over;
    let [u1, u2, u3] = window.under;
    ProtectionConfig {
        cell_over_voltage_mv: mv(o1, o2, o3, 50, VOLTAGE_DEBOUNCE_MS),
        cell_under_voltage_mv: mv(u1, u2, u3, 100, VOLTAGE_DEBOUNCE_MS),
        pack_over_voltage_mv: mv(
            o1 * cells,
            o2 * cells,
            o3 * cells,
            20 * cells,
            VOLTAGE_DEBOUNCE_MS,
        ),
        pack_under_voltage_mv: mv(
            u1 * cells,
            u2 * cells,
            u3 * cells,
            50 * cells,
            VOLTAGE_DEBOUNCE_MS,
        ),
        charge_over_current_ma: ma(charge_ma[0], charge_ma[1], charge_ma[2]),
        discharge_over_current_ma: ma(discharge_ma[0], discharge_ma[1], discharge_ma[2]),
        // Panasonic NCA and typical LFP cells both charge from 0 to 45 C and discharge from
        // -20 to 60 C.
        charge_over_temperature_dc: dc(400, 450, 500),
        charge_under_temperature_dc: dc(100, 20, 0),
        discharge_over_temperature_dc: dc(500, 550, 600),
        discharge_under_temperature_dc: dc(-100, -200, -250),
        cell_imbalance_mv: Thresholds {
            operating: Some(MilliVolts(50)),
            recommended: Some(MilliVolts(150)),
            maximum: Some(MilliVolts(400)),
            hysteresis: MilliVolts(10),
            debounce_ms: 2_000,
        },
        // Sum of cells against the pack voltage sensor: 20 mV per cell of disagreement is a
        // warning, 100 mV per cell means a broken sense wire or sensor.
        pack_voltage_mismatch_mv: Thresholds {
            operating: Some(MilliVolts(20 * cells)),
            recommended: None,
            maximum: Some(MilliVolts(100 * cells)),
            hysteresis: MilliVolts(5 * cells),
            debounce_ms: 1_000,
        },
    }
}

/// The freshness limits, and when a cell reading counts as frozen: 20 samples in a row with
/// the same value (2 s at the usual 100 ms) while the median cell has moved by 5 mV and at least
/// `frozen_current_ma` flows. A frozen reading is then about 5 mV behind the truth of a cell that
/// moves like the median, and a cell running ahead of the pack (a weak cell at the top of
/// charge) that much more. Less would be quicker, but readings without noise are quantised to a
/// millivolt, the median's reference with them: at 3 mV a healthy Tesla group rising at half the
/// median's rate near the top of charge already looked frozen (`boards_16_modules_protect`).
const fn freshness(frozen_current_ma: i32) -> FreshnessConfig {
    FreshnessConfig {
        cell_voltage_ms: 2_000,
        temperature_ms: 5_000,
        current_ms: 500,
        pack_voltage_ms: 1_000,
        bus_voltage_ms: 1_000,
        frozen_current_ma: MilliAmps(frozen_current_ma),
        frozen_move_mv: MilliVolts(5),
        frozen_samples: 20,
    }
}

fn contactors(cells: i32) -> ContactorConfig {
    ContactorConfig {
        feedback: FeedbackConfig::default(),
        feedback_timeout_ms: 250,
        close_settle_ms: 100,
        precharge_timeout_ms: 3_000,
        precharge_band_mv: MilliVolts(50 * cells),
        precharge_done_current_ma: MilliAmps(1_000),
        precharge_short_current_ma: MilliAmps(15_000),
        precharge_rise_check_ms: 500,
        // 20 % of the pack voltage after 500 ms: a precharge time constant up to about 2.2 s
        // still counts as rising (and ends as `TooSlow` if it cannot settle by the deadline).
        precharge_min_rise: Permille(200),
        precharge_attempts: 3,
        precharge_retry_delay_ms: 5_000,
        break_current_ma: MilliAmps(2_000),
        graceful_open_timeout_ms: 5_000,
        // Time for the DC link to fall out of the precharge band after an open: 0.3 s for the
        // simulator's 2 mF behind 10 kohm, 2.7 s for 20 mF; longer links need a longer wait.
        link_decay_ms: 5_000,
        dc_link: DcLink::Dedicated,
        limit_ramp_ms: crate::config::DEFAULT_LIMIT_RAMP_MS,
    }
}

/// Passive balancing shared by the presets: 30 s of bleeding, then 5 s with nothing bleeding
/// whose last 4 s of cell samples, averaged per cell, choose the next cells.
///
/// Idle is judged on the current averaged with a 2 s time constant, which takes the noise of a
/// 0.2 A sensor at 10 samples a second down to about 30 mA, and leaves idle `idle_hysteresis_ma`
/// above the idle current: half of it, far beyond that noise, close enough that a load of a few
/// amperes stops bleeding within a second.
///
/// The board limit is 50.0 °C, the operating tier of the outer (discharge) temperature window:
/// a hot board sits out while the others keep bleeding. At 55.0 °C it would coincide with that
/// window's recommended tier, which stops balancing on every board anyway.
fn balance(
    start_mv: i32,
    delta_mv: i32,
    hysteresis_mv: i32,
    idle_only: bool,
    max_cells: u16,
    cells_per_board: u16,
    idle_hysteresis_ma: i32,
) -> BalanceConfig {
    BalanceConfig {
        enabled: true,
        start_mv: MilliVolts(start_mv),
        delta_mv: MilliVolts(delta_mv),
        hysteresis_mv: MilliVolts(hysteresis_mv),
        idle_only,
        idle_filter_ms: 2_000,
        idle_hysteresis_ma: MilliAmps(idle_hysteresis_ma),
        max_cells,
        cells_per_board,
        board_temperature_max_dc: DeciCelsius(500),
        bleed_window_ms: 30_000,
        measure_window_ms: 5_000,
        settle_ms: 1_000,
        // About four time constants of a Tesla group's 31 s recovery.
        rest_after_load_ms: 120_000,
    }
}

use crate::charge::ChargeConfig;
use crate::soc::SocConfig;

impl Config {
    /// A string of `modules` Tesla Model S modules (6 series groups of 74 Panasonic NCA cells
    /// each, 233 Ah), two temperature sensors per module, charged up to 4.15 V per cell before
    /// derating. The count is not checked here; [`Config::validate`] does that.
    pub fn tesla_model_s(modules: u16) -> Config {
        let cells = i32::from(modules).saturating_mul(6);
        Config {
            chemistry: CellChemistry::Nca,
            cell_count: modules.saturating_mul(6),
            temperature_count: modules.saturating_mul(2),
            charge_current_max_ma: MilliAmps(100_000),
            discharge_current_max_ma: MilliAmps(200_000),
            operating_limit_derate: Permille(500),
            idle_current_ma: MilliAmps(1_000),
            // The module boards' comparators (over/under voltage, over-temperature) drive a
            // fault line of their own.
            hardware_fault_line: true,
            protection: protection(
                cells,
                &CellWindow { over: [4_150, 4_200, 4_250], under: [3_200, 3_000, 2_800] },
                [110_000, 125_000, 150_000],
                [220_000, 250_000, 300_000],
            ),
            // 5 A, C/50: enough to move a cell's voltage measurably within minutes.
            freshness: freshness(5_000),
            contactors: contactors(cells),
            // Balance at rest from 3.90 V, near the top of charge, every cell at once if need be,
            // one module board per 6 cells. With 1 mV of measurement noise a 5 mV delta and 2 mV
            // of hysteresis bring the spread below about 6 mV.
            balance: balance(3_900, 5, 2, true, modules.saturating_mul(6), 6, 500),
            charge: Some(ChargeConfig::tesla_model_s(modules)),
            soc: Some(SocConfig::tesla_model_s(modules)),
        }
    }

    /// A 16-cell LFP pack of `capacity_ah` (51.2 V nominal) with four temperature sensors,
    /// charging at up to 0.5 C and discharging at up to 1 C.
    pub fn lfp_16s(capacity_ah: u16) -> Config {
        let c = i32::from(capacity_ah) * 1_000; // 1 C in mA
        Config {
            chemistry: CellChemistry::Lfp,
            cell_count: 16,
            temperature_count: 4,
            charge_current_max_ma: MilliAmps(c / 2),
            discharge_current_max_ma: MilliAmps(c),
            operating_limit_derate: Permille(500),
            idle_current_ma: MilliAmps(500),
            // A generic 16S pack: no hardware fault line is assumed.
            hardware_fault_line: false,
            protection: protection(
                16,
                &CellWindow { over: [3_550, 3_650, 3_750], under: [2_900, 2_800, 2_500] },
                // c is a multiple of 1000, so dividing first is exact; multiplying first
                // overflows an i32 from about 14 300 Ah.
                [c / 100 * 55, c / 100 * 60, c / 100 * 75],
                [c / 100 * 110, c / 100 * 120, c / 100 * 150],
            ),
            freshness: freshness(c / 50),
            contactors: contactors(16),
            // LFP cells only differ in voltage at the top knee, which they reach while charging:
            // balance from 3.40 V whatever the current, with a wider delta for the steep knee.
            // One board carries all 16 cells and the four sensors.
            balance: balance(3_400, 10, 5, false, 16, 16, 250),
            charge: Some(ChargeConfig::lfp_16s(capacity_ah)),
            soc: Some(SocConfig::lfp_16s(capacity_ah)),
        }
    }
}
