//! Charge presets, matching the protection presets of [`Config`](crate::Config) (its thresholds
//! are quoted where a figure is chosen to stay inside them). Figures and sources are in
//! `shared/battery.md`.

use super::config::{ChargeConfig, MAX_RAMP_MA_PER_S};
use crate::table::Table;
use crate::units::{MilliAmps, MilliVolts, Permille};

const DAY_MS: u64 = 24 * 3_600 * 1_000;

/// The cell-voltage tables' hysteresis, both chemistries: 10 mV. The highest of many cells,
/// each read with about 1 mV of noise (one standard deviation, as a good front end and the
/// simulator give), wanders over several millivolts from sample to sample; at the steep end of
/// the charge tables (1000 permille over 150 mV) every millivolt of it is 6.7 permille of the
/// maximum current. In a simulated 16S LFP pack held at the top of its charge, the charge limit
/// changed at 6 500 of 9 000 samples without hysteresis, 63 times with 5 mV and twice with
/// 10 mV. The cost: while a cell falls back down a table, the table reads it up to 10 mV high,
/// at most 67 permille less current, only on the taper.
const CELL_TABLE_HYSTERESIS: MilliVolts = MilliVolts(10);

/// Discharge over temperature, both chemistries: full current from 0 °C to 45 °C, half at
/// -10 °C (the operating-tier warning), nothing from -18 °C, so the current is already zero when
/// the recommended tier (-20 °C) would force it there; at the hot end the taper from 45 °C
/// reaches zero at 53 °C, below the recommended tier of 55 °C, and slows the heating the
/// current itself causes.
fn discharge_by_temperature() -> Table {
    Table::unchecked(&[(-180, 0), (-100, 500), (0, 1_000), (450, 1_000), (530, 0)])
}

/// Charge over SoC, both chemistries: full current to 90 %, tapering to 20 % of it at 100 %, so
/// the last ampere-hours go in gently. Never to zero: an SoC estimate that reads 100 % too
/// early must not stop a charge; the cell-voltage table and the voltage limit end it.
fn charge_by_soc() -> Table {
    Table::unchecked(&[(900, 1_000), (1_000, 200)])
}

/// Discharge over SoC, both chemistries: full current down to 10 %, tapering to 20 % of it at
/// 0 %; for the same reason as the charge side never to zero, since the lowest cell voltage is
/// what ends a discharge.
fn discharge_by_soc() -> Table {
    Table::unchecked(&[(0, 200), (100, 1_000)])
}

/// A ramp rate in mA/s, clamped to what [`ChargeConfig::validate`] accepts.
fn ramp(ma_per_s: i32) -> u32 {
    ma_per_s.clamp(1, MAX_RAMP_MA_PER_S.try_into().unwrap_or(i32::MAX)).unsigned_abs()
}

impl ChargeConfig {
    /// A string of `modules` Tesla Model S modules (6 series groups of 233 Ah NCA each), with the
    /// currents of [`Config::tesla_model_s`](crate::Config::tesla_model_s): 100 A charge (0.43 C)
    /// and 200 A discharge. The count is not checked here; [`ChargeConfig::validate`] does that.
    pub fn tesla_model_s(modules: u16) -> ChargeConfig {
        let cells = i32::from(modules).saturating_mul(6);
        ChargeConfig {
            charge_current_max_ma: MilliAmps(100_000),
            discharge_current_max_ma: MilliAmps(200_000),
            // Full current to 4.00 V, where NCA has about 10 % left to take, tapering to zero at
            // 4.15 V, the over-voltage operating tier: the current falls as the top cell climbs,
            // which also shrinks the IR rise it reads.
            charge_by_cell_max_mv: Table::unchecked(&[(4_000, 1_000), (4_150, 0)]),
            // The cells may charge from 0 °C to 45 °C. Cold graphite anodes plate lithium well
            // below their room-temperature rate, so: nothing at 2 °C (the recommended tier of the
            // charge window), 30 A at 10 °C, full current from 20 °C. At the hot end full current
            // to 35 °C and nothing from 43 °C, before the recommended tier at 45 °C.
            charge_by_temperature_dc: Table::unchecked(&[
                (20, 0),
                (100, 300),
                (200, 1_000),
                (350, 1_000),
                (430, 0),
            ]),
            charge_by_soc: charge_by_soc(),
            // Full current down to 3.40 V under load, zero at 3.20 V, the under-voltage operating
            // tier. Less current means less IR drop, so the pack settles where the load it can
            // carry matches what it has left instead of tripping.
            discharge_by_cell_min_mv: Table::unchecked(&[(3_200, 0), (3_400, 1_000)]),
            discharge_by_temperature_dc: discharge_by_temperature(),
            discharge_by_soc: discharge_by_soc(),
            cell_table_hysteresis_mv: CELL_TABLE_HYSTERESIS,
            // 20 A/s, about 0.09 C of 233 Ah per second, close to the LFP preset's 0.1 C: a
            // limit cut to zero is back at the full 100 A charge in 5 s and the full 200 A
            // discharge in 10 s, as on LFP. That spreads a recovery over several of the
            // inverter's updates (CAN limits go out about once a second), yet is quick beside a
            // charge taper of minutes. One rate both ways: it bounds how fast the current may
            // grow, whatever the size of the maximum.
            charge_ramp_ma_per_s: 20_000,
            discharge_ramp_ma_per_s: 20_000,
            // The over-voltage operating tier: the controller holds the top cell 5 mV below it,
            // acting from 50 mV below (about 5 % of SoC on the NCA slope, time enough to act).
            cell_max_mv: MilliVolts(4_150),
            cvl_margin_mv: MilliVolts(5),
            cvl_band_mv: MilliVolts(50),
            // Half gain tolerates a top cell rising twice as fast as the average without
            // overshoot (a cell with 20 % less capacity rises 1.25 times as fast).
            cvl_gain: Permille(500),
            // 1 mV per cell per second: a 10 mV per cell cut recovers in 10 s.
            cvl_ramp_mv_per_s: cells.unsigned_abs(),
            cvl_floor_cell_mv: MilliVolts(3_500),
            // 4.10 V per cell: most of the capacity with headroom, as off-grid users do with these
            // modules (many stop at 4.02 V; lower the figure for longer life).
            absorption_cell_mv: MilliVolts(4_100),
            // 4.00 V per cell in float: NCA ages fastest held near full, so float sits lower.
            float_cell_mv: MilliVolts(4_000),
            full_charge_cell_mv: MilliVolts(4_145),
            absorption_start_margin_mv: MilliVolts(10),
            absorption_start_cell_mv: MilliVolts(4_120),
            stage_debounce_ms: 30_000,
            // 15 mV of spread is about 1.5 % of SoC on NCA; balancing (from 3.90 V) gets there.
            converged_spread_mv: MilliVolts(15),
            // C/50 of 233 Ah.
            tail_current_ma: MilliAmps(5_000),
            absorption_timeout_ms: 2 * 3_600 * 1_000,
            // Enough for the board electronics and balancing, not for cycling at the top.
            float_current_max_ma: MilliAmps(10_000),
            // 3.95 V per cell at rest is about 80 % on NCA.
            rebulk_cell_mv: MilliVolts(3_950),
            rebulk_soc: Some(Permille(900)),
            float_max_ms: None,
            // NCA finds its SoC anchors on the sloped OCV curve at rest, and holding it at
            // 4.15 V ages it: no periodic full charge by default.
            full_charge_every_ms: None,
        }
    }

    /// A 16-cell LFP pack of `capacity_ah`, with the currents of
    /// [`Config::lfp_16s`](crate::Config::lfp_16s): 0.5 C charge, 1 C discharge.
    pub fn lfp_16s(capacity_ah: u16) -> ChargeConfig {
        let c = i32::from(capacity_ah) * 1_000; // 1 C in mA
        ChargeConfig {
            charge_current_max_ma: MilliAmps(c / 2),
            discharge_current_max_ma: MilliAmps(c),
            // The top knee begins at 3.40 V: from there a cell's voltage rises about 100 mV per
            // % of SoC, so the current tapers to zero at 3.55 V, the over-voltage operating tier.
            charge_by_cell_max_mv: Table::unchecked(&[(3_400, 1_000), (3_550, 0)]),
            // No charging at or below 2 °C (the recommended tier of the charge window, so never
            // at 0 °C); 0.1 C at 3 °C rising to 0.2 C at 9 °C, the rate LFP datasheets allow
            // between 0 °C and 10 °C; full 0.5 C from 10 °C. Full current to 35 °C and nothing
            // from 43 °C, before the recommended tier at 45 °C.
            charge_by_temperature_dc: Table::unchecked(&[
                (20, 0),
                (30, 200),
                (90, 400),
                (100, 1_000),
                (350, 1_000),
                (430, 0),
            ]),
            charge_by_soc: charge_by_soc(),
            // The bottom knee: full current down to 3.10 V, zero at 2.90 V, the under-voltage
            // operating tier.
            discharge_by_cell_min_mv: Table::unchecked(&[(2_900, 0), (3_100, 1_000)]),
            discharge_by_temperature_dc: discharge_by_temperature(),
            discharge_by_soc: discharge_by_soc(),
            cell_table_hysteresis_mv: CELL_TABLE_HYSTERESIS,
            // 0.1 C per second both ways: a limit cut to zero is back at the full 0.5 C charge
            // in 5 s and the full 1 C discharge in 10 s, spread over several of the inverter's
            // updates (CAN limits go out about once a second), yet quick beside a charge taper
            // of minutes. Clamped to the validated range, which only a pack above 10 000 Ah
            // would exceed.
            charge_ramp_ma_per_s: ramp(c / 10),
            discharge_ramp_ma_per_s: ramp(c / 10),
            // The over-voltage operating tier; on the knee 50 mV is only half a % of SoC, so
            // the band is as wide as on NCA in mV and the gain as cautious.
            cell_max_mv: MilliVolts(3_550),
            cvl_margin_mv: MilliVolts(5),
            cvl_band_mv: MilliVolts(50),
            cvl_gain: Permille(500),
            cvl_ramp_mv_per_s: 16,
            cvl_floor_cell_mv: MilliVolts(3_200),
            // 56.0 V: the usual absorption voltage of a 16S LFP battery.
            absorption_cell_mv: MilliVolts(3_500),
            // 54.0 V: above the plateau's resting voltage, so a full pack neither charges nor
            // discharges in float.
            float_cell_mv: MilliVolts(3_375),
            full_charge_cell_mv: MilliVolts(3_545),
            absorption_start_margin_mv: MilliVolts(10),
            absorption_start_cell_mv: MilliVolts(3_520),
            stage_debounce_ms: 30_000,
            // 20 mV on the steep knee is a fraction of a % of SoC.
            converged_spread_mv: MilliVolts(20),
            // C/20.
            tail_current_ma: MilliAmps(c / 20),
            absorption_timeout_ms: 2 * 3_600 * 1_000,
            float_current_max_ma: MilliAmps(c / 20),
            // 52.8 V: down on the plateau, well below full.
            rebulk_cell_mv: MilliVolts(3_300),
            rebulk_soc: Some(Permille(900)),
            float_max_ms: None,
            // Voltage says little about SoC on the LFP plateau: a weekly charge to the knee lets
            // the cells balance and re-anchors the SoC at full.
            full_charge_every_ms: Some(7 * DAY_MS),
        }
    }
}
