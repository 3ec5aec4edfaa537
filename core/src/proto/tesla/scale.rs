//! Raw ADC values of the boards to physical units and back (`shared/protocols.md` §1.8), in
//! integer arithmetic.
//!
//! The ADC results are 14-bit (0..=16383). Cells span 0..=6.25 V and the brick (GPAI set to
//! VBAT) 0..=33.33 V; both conversions round to the nearest unit, and the inverses clamp to the
//! 14-bit range. The thermistors go through a lookup table of the bias network's ratio, one entry
//! per 2.5 °C from −40 °C to +125 °C, with linear interpolation; outside that span the reading is
//! treated as an open or shorted sensor. The table was computed from the resistance formula and
//! Steinhart–Hart constants of §1.8, and a unit test recomputes it.
//!
//! The hardware protector (§1.6, §1.9.6) is programmed in codes: [`cov_code`], [`cuv_code`],
//! [`protector_delay_code`], [`ot_code`] and [`ot_delay_code`] turn a wish into the code the
//! pyBMS master would write (every threshold rounds down, as pyBMS's `int(...)` does), and the
//! matching `*_mv`, `*_us`, `*_dc`, `*_ms` functions decode what a board reports.
//!
//! Every function here is total: no input makes it panic or overflow.

use crate::units::{DeciCelsius, MilliVolts};

/// Largest 14-bit ADC result.
pub const RAW_MAX: u16 = 0x3FFF;

/// Cell voltage of a VCELLn reading: `raw × 6.25 V / 16383`, rounded to the nearest millivolt.
///
/// The ADC only ever produces 14 bits. A larger value (a corrupt frame with a good CRC) is
/// clamped to full scale rather than masked, so that it reads as a high voltage instead of an
/// arbitrary one.
pub fn cell_mv(raw: u16) -> MilliVolts {
    MilliVolts(to_i32(div_round(i64::from(clamp_raw(raw)) * CELL_FULL_MV, i64::from(RAW_MAX))))
}

/// The VCELLn reading for a cell voltage: the inverse of [`cell_mv`], rounded to the nearest
/// step and clamped to 0..=16383 (negative voltages read 0, anything above 6.25 V reads full
/// scale).
pub fn cell_raw(mv: MilliVolts) -> u16 {
    let mv = i64::from(mv.get()).clamp(0, CELL_FULL_MV);
    to_raw(div_round(mv * i64::from(RAW_MAX), CELL_FULL_MV))
}

/// Module (brick) voltage of a GPAI reading with GPAI set to VBAT: `raw × 100 V / 49149`, rounded
/// to the nearest millivolt. Values above 14 bits are clamped to full scale, as in [`cell_mv`].
pub fn brick_mv(raw: u16) -> MilliVolts {
    MilliVolts(to_i32(div_round(i64::from(clamp_raw(raw)) * 100_000, BRICK_DIVISOR)))
}

/// The GPAI reading for a module voltage: the inverse of [`brick_mv`], rounded to the nearest
/// step and clamped to 0..=16383.
pub fn brick_raw(mv: MilliVolts) -> u16 {
    // 33 334 mV is already past full scale; clamping there first keeps the product small.
    let mv = i64::from(mv.get()).clamp(0, 33_334);
    to_raw(div_round(mv * BRICK_DIVISOR, 100_000))
}

/// The bias-network constants of one thermistor input: the board reports
/// `raw = ratio × d − k`, where `ratio = 1.78 / (R / 1 kΩ + 3.57)` and `R` is the NTC's
/// resistance (§1.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thermistor {
    /// Offset added to the raw reading before scaling.
    pub k: u16,
    /// Full-scale divisor of the raw reading.
    pub d: u16,
}

impl Thermistor {
    /// `k = 2, d = 33046`: TS1 for every master, and TS2 for pyBMS.
    pub const PYBMS: Thermistor = Thermistor { k: 2, d: 33046 };
    /// `k = 9, d = 33068`: TS2 as collin80/TeslaBMS and TeslaBMSV2 convert it.
    pub const COLLIN_TS2: Thermistor = Thermistor { k: 9, d: 33068 };
}

/// Temperature of a TSn reading in tenths of a degree, rounded to the nearest tenth; within
/// 0.1 °C of the §1.8 formula over the whole table.
///
/// Returns `None` outside −40.0..=+125.0 °C, which on a module means an open or shorted
/// thermistor rather than a real temperature, and for a thermistor with `d = 0`.
pub fn temperature_dc(raw: u16, t: Thermistor) -> Option<DeciCelsius> {
    let ratio = reading_ratio(raw, t)?;
    if ratio < first_ratio() || ratio > last_ratio() {
        return None;
    }
    // The first entry above the ratio ends the segment; the last entry itself belongs to the
    // last segment, so the index is capped there.
    let above = RATIO_TABLE.partition_point(|&q| i64::from(q) <= ratio);
    let segment = above.saturating_sub(1).min(RATIO_TABLE.len() - 2);
    let low = i64::from(*RATIO_TABLE.get(segment)?);
    let high = i64::from(*RATIO_TABLE.get(segment + 1)?);
    let base = TABLE_FIRST_DC + i64::try_from(segment).ok()? * TABLE_STEP_DC;
    let offset = div_round((ratio - low) * TABLE_STEP_DC, high - low);
    Some(DeciCelsius(to_i32(base + offset)))
}

/// The TSn reading a thermistor at `dc` produces: the inverse of [`temperature_dc`], with the
/// temperature clamped to the table's −40.0..=+125.0 °C and the result to 0..=16383.
pub fn temperature_raw(dc: DeciCelsius, t: Thermistor) -> u16 {
    let from_first = (i64::from(dc.get()) - TABLE_FIRST_DC)
        .clamp(0, TABLE_STEP_DC * (RATIO_TABLE.len() as i64 - 1));
    // `from_first` is at most 1650, so the segment index is at most 66; the top temperature
    // itself is the end of the last segment.
    let segment =
        usize::try_from(from_first / TABLE_STEP_DC).unwrap_or(0).min(RATIO_TABLE.len() - 2);
    let (Some(&low), Some(&high)) = (RATIO_TABLE.get(segment), RATIO_TABLE.get(segment + 1)) else {
        return 0;
    };
    let (low, high) = (i64::from(low), i64::from(high));
    let into = from_first - segment as i64 * TABLE_STEP_DC;
    let ratio = low + div_round((high - low) * into, TABLE_STEP_DC);
    let raw = to_raw(div_round(ratio * i64::from(t.d), RATIO_SCALE) - i64::from(t.k));
    // At the two ends of the table, rounding to a whole raw step can land just outside the
    // span that `temperature_dc` accepts (125.0 °C is raw 14253.6 with the pyBMS constants, and
    // 14254 is 125.01 °C). One step back inside keeps every temperature of the table readable.
    match reading_ratio(raw, t) {
        Some(r) if r > last_ratio() => raw.saturating_sub(1),
        Some(r) if r < first_ratio() => raw.saturating_add(1).min(RAW_MAX),
        _ => raw,
    }
}

/// CONFIG_COV code for an over-voltage threshold: `(mv − 2000) / 50`, rounded down so the
/// programmed threshold never exceeds the one asked for. `None` below 2.000 V or above the top
/// code 63 (5.150 V; anything up to 5.199 V still rounds down to it).
pub fn cov_code(mv: MilliVolts) -> Option<u8> {
    threshold_code(mv, COV_BASE_MV, COV_STEP_MV, COV_MASK)
}

/// The over-voltage threshold of a CONFIG_COV value: `2000 + 50 × (bits 5..0)` mV, or `None`
/// when bit 7 disables the protector. Bit 6 is reserved and ignored.
pub fn cov_mv(code: u8) -> Option<MilliVolts> {
    threshold_mv(code, COV_BASE_MV, COV_STEP_MV, COV_MASK)
}

/// CONFIG_CUV code for an under-voltage threshold: `(mv − 700) / 100`, rounded down. `None`
/// below 0.700 V or above the top code 31 (3.800 V; up to 3.899 V rounds down to it).
pub fn cuv_code(mv: MilliVolts) -> Option<u8> {
    threshold_code(mv, CUV_BASE_MV, CUV_STEP_MV, CUV_MASK)
}

/// The under-voltage threshold of a CONFIG_CUV value: `700 + 100 × (bits 4..0)` mV, or `None`
/// when bit 7 disables the protector. Bits 6..5 are ignored: the sources agree only on a 5-bit
/// code.
pub fn cuv_mv(code: u8) -> Option<MilliVolts> {
    threshold_mv(code, CUV_BASE_MV, CUV_STEP_MV, CUV_MASK)
}

/// CONFIG_COVT / CONFIG_CUVT code for a delay in milliseconds: `0x80 | (ms / 100)`, in the
/// millisecond range of the register and rounded down like pyBMS. `None` above 3199 ms, which
/// would need a code beyond 31.
pub fn protector_delay_code(ms: u32) -> Option<u8> {
    let steps = u8::try_from(ms / 100).ok().filter(|&s| s <= DELAY_MASK)?;
    Some(DELAY_MS_UNITS | steps)
}

/// The delay of a CONFIG_COVT / CONFIG_CUVT value in microseconds: `(bits 4..0) × 100`, in
/// milliseconds when bit 7 is set and in microseconds otherwise. Bits 6..5 are ignored.
pub fn protector_delay_us(code: u8) -> u32 {
    let units = u32::from(code & DELAY_MASK) * 100;
    if code & DELAY_MS_UNITS != 0 { units * 1000 } else { units }
}

/// CONFIG_OT nibble for an over-temperature threshold: `(T − 40 °C) / 5 + 1`, rounded down as
/// pyBMS does, so the nominal trip point `35 + 5 k` °C never exceeds the one asked for. `None`
/// outside the codes 1..=11, i.e. below 40.0 °C or from 95.0 °C up.
pub fn ot_code(dc: DeciCelsius) -> Option<u8> {
    let k = (i64::from(dc.get()) - OT_BASE_DC).div_euclid(OT_STEP_DC);
    u8::try_from(k).ok().filter(|k| (1..=OT_MAX_CODE).contains(k))
}

/// The nominal over-temperature threshold of a CONFIG_OT nibble: `35 + 5 k` °C. `None` for
/// 0 (disabled) and for anything above 11, which no source defines. Pass one nibble: shift
/// OT2 down first.
pub fn ot_dc(code_nibble: u8) -> Option<DeciCelsius> {
    (1..=OT_MAX_CODE)
        .contains(&code_nibble)
        .then(|| DeciCelsius(to_i32(OT_BASE_DC + i64::from(code_nibble) * OT_STEP_DC)))
}

/// CONFIG_OTT code for an over-temperature delay: `ms / 10`, rounded down like pyBMS. `None`
/// above 2559 ms, which would need more than 8 bits.
pub fn ot_delay_code(ms: u32) -> Option<u8> {
    u8::try_from(ms / 10).ok()
}

/// The delay of a CONFIG_OTT value in milliseconds: `code × 10`.
pub fn ot_delay_ms(code: u8) -> u32 {
    u32::from(code) * 10
}

/// Millivolts at the full scale of a cell reading.
const CELL_FULL_MV: i64 = 6250;
/// `raw × 100 V / BRICK_DIVISOR` is the brick voltage (pyBMS's form of 33.333 V full scale).
const BRICK_DIVISOR: i64 = 49149;

const COV_BASE_MV: i32 = 2000;
const COV_STEP_MV: i32 = 50;
const COV_MASK: u8 = 0x3F;
const CUV_BASE_MV: i32 = 700;
const CUV_STEP_MV: i32 = 100;
const CUV_MASK: u8 = 0x1F;
/// Bit 7 of CONFIG_COV and CONFIG_CUV turns the protector off.
const THRESHOLD_DISABLE: u8 = 0x80;
/// Bit 7 of CONFIG_COVT and CONFIG_CUVT selects millisecond units.
const DELAY_MS_UNITS: u8 = 0x80;
const DELAY_MASK: u8 = 0x1F;
/// OT code `k` trips at `OT_BASE_DC + k × OT_STEP_DC`.
const OT_BASE_DC: i64 = 350;
const OT_STEP_DC: i64 = 50;
const OT_MAX_CODE: u8 = 11;

/// The ratios in [`RATIO_TABLE`] are in millionths: about 30 units per raw step, so rounding
/// the ratio costs well under a thousandth of a degree.
const RATIO_SCALE: i64 = 1_000_000;
/// Temperature of the first table entry, tenths of a degree.
const TABLE_FIRST_DC: i64 = -400;
/// Temperature step between entries, tenths of a degree. At 5 °C the interpolation error
/// reached 0.15 °C in the cold end; at 2.5 °C it stays below 0.04 °C, which leaves room for
/// rounding to the tenth.
const TABLE_STEP_DC: i64 = 25;

/// `1.78 / (R(T) / 1 kΩ + 3.57)` in millionths for T = −40.0, −37.5, …, +125.0 °C, where
/// `R(T)` solves the Steinhart–Hart equation of §1.8. The ratio rises with temperature
/// because the NTC's resistance falls; `raw = ratio × d − k`.
const RATIO_TABLE: [u32; 67] = [
    8437, 9708, 11139, 12745, 14541, 16543, 18770, 21237, // −40.0 .. −22.5 °C
    23962, 26963, 30257, 33859, 37787, 42055, 46675, 51661, // −20.0 .. −2.5 °C
    57020, 62760, 68885, 75397, 82294, 89568, 97213, 105214, // 0.0 .. 17.5 °C
    113555, 122215, 131172, 140397, 149862, 159533, 169377, 179359, // 20.0 .. 37.5 °C
    189440, 199585, 209757, 219919, 230037, 240076, 250006, 259796, // 40.0 .. 57.5 °C
    269421, 278856, 288080, 297075, 305825, 314317, 322541, 330490, // 60.0 .. 77.5 °C
    338158, 345542, 352641, 359457, 365990, 372246, 378228, 383942, // 80.0 .. 97.5 °C
    389397, 394597, 399553, 404271, 408760, 413030, 417088, 420945, // 100.0 .. 117.5 °C
    424608, 428086, 431388, // 120.0 .. 125.0 °C
];

// Interpolation divides by the difference of neighbouring entries; a strictly rising table makes
// every such difference positive, and this is checked when the crate compiles.
const _: () = assert!(strictly_rising(&RATIO_TABLE));

const fn strictly_rising(table: &[u32]) -> bool {
    let mut i = 1;
    while i < table.len() {
        if table[i] <= table[i - 1] {
            return false;
        }
        i += 1;
    }
    true
}

/// `(raw + k) / d` in millionths, rounded; `None` when `d` is 0.
fn reading_ratio(raw: u16, t: Thermistor) -> Option<i64> {
    (t.d != 0).then(|| div_round((i64::from(raw) + i64::from(t.k)) * RATIO_SCALE, i64::from(t.d)))
}

/// The ratio at −40.0 °C, the coldest temperature read.
fn first_ratio() -> i64 {
    i64::from(RATIO_TABLE[0])
}

/// The ratio at +125.0 °C, the hottest temperature read.
fn last_ratio() -> i64 {
    i64::from(RATIO_TABLE[RATIO_TABLE.len() - 1])
}

/// The 14-bit part of a reading, saturating rather than wrapping.
fn clamp_raw(raw: u16) -> u16 {
    raw.min(RAW_MAX)
}

/// `num / den` rounded to the nearest integer, halves away from zero; 0 when `den` is 0.
/// Callers keep `|num|` below 2^62 so doubling it cannot overflow.
fn div_round(num: i64, den: i64) -> i64 {
    if den == 0 {
        return 0;
    }
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let half = den / 2;
    if num >= 0 { (num + half) / den } else { -((-num + half) / den) }
}

/// A computed raw value, clamped to the 14-bit range.
fn to_raw(value: i64) -> u16 {
    u16::try_from(value.clamp(0, i64::from(RAW_MAX))).unwrap_or(RAW_MAX)
}

/// An intermediate result back to `i32`, saturating (the callers' results always fit).
fn to_i32(value: i64) -> i32 {
    i32::try_from(value).unwrap_or(if value < 0 { i32::MIN } else { i32::MAX })
}

/// `(mv − base) / step` rounded down, if that is a code within `mask`.
fn threshold_code(mv: MilliVolts, base: i32, step: i32, mask: u8) -> Option<u8> {
    let above = i64::from(mv.get()) - i64::from(base);
    if above < 0 {
        return None;
    }
    u8::try_from(above / i64::from(step)).ok().filter(|&code| code <= mask)
}

/// `base + step × (code & mask)`, or `None` when the disable bit is set.
fn threshold_mv(code: u8, base: i32, step: i32, mask: u8) -> Option<MilliVolts> {
    if code & THRESHOLD_DISABLE != 0 {
        return None;
    }
    Some(MilliVolts(base + step * i32::from(code & mask)))
}

#[cfg(test)]
#[allow(clippy::float_arithmetic)]
mod tests {
    extern crate std;

    use super::*;

    // The §1.8 constants, used only to check the integer code against the formula.
    const A: f64 = 0.000_761_037_357_3;
    const B: f64 = 0.000_272_852_483_2;
    const C: f64 = 0.000_000_102_282_273_5;

    /// Steinhart–Hart: temperature in °C of a resistance in ohms.
    fn celsius_of_ohms(r: f64) -> f64 {
        let l = r.ln();
        1.0 / (A + B * l + C * l * l * l) - 273.15
    }

    /// The inverse of Steinhart–Hart by Newton's method on `x = ln R`, as §1.8 suggests.
    fn ohms_of_celsius(t: f64) -> f64 {
        let target = 1.0 / (t + 273.15);
        let mut x = 9.0;
        for _ in 0..50 {
            let f = C * x * x * x + B * x + A - target;
            x -= f / (3.0 * C * x * x + B);
        }
        x.exp()
    }

    /// The bias-network ratio `(raw + k) / d` at a temperature.
    fn ratio_of_celsius(t: f64) -> f64 {
        1.78 / (ohms_of_celsius(t) / 1000.0 + 3.57)
    }

    /// The §1.8 formula: temperature of a raw reading, or `None` where the resistance is not
    /// positive.
    fn celsius_of_raw(raw: u16, t: Thermistor) -> Option<f64> {
        let ratio = (f64::from(raw) + f64::from(t.k)) / f64::from(t.d);
        let r = 1000.0 * (1.78 / ratio - 3.57);
        (r > 0.0).then(|| celsius_of_ohms(r))
    }

    #[test]
    fn every_table_entry_follows_from_the_formula() {
        for (i, &entry) in RATIO_TABLE.iter().enumerate() {
            let celsius = (TABLE_FIRST_DC + i as i64 * TABLE_STEP_DC) as f64 / 10.0;
            let expected = (ratio_of_celsius(celsius) * RATIO_SCALE as f64).round();
            assert_eq!(f64::from(entry), expected, "entry {i} ({celsius} °C)");
        }
        assert_eq!(TABLE_FIRST_DC + 66 * TABLE_STEP_DC, 1250);
    }

    /// Compares the integer conversion with the formula for every raw value whose temperature
    /// lies in the table, and returns the worst error in °C and where it occurs.
    fn worst_error(t: Thermistor) -> (f64, u16, usize) {
        let mut worst = (0.0, 0, 0);
        for raw in 0..=RAW_MAX {
            let exact = celsius_of_raw(raw, t);
            let inside = exact.is_some_and(|c| (-40.0..=125.0).contains(&c));
            let got = temperature_dc(raw, t);
            if !inside {
                // Just outside the ends the ratio rounds to the end entry, so allow a raw
                // value's worth of slack there; anything clearly outside must be None.
                if let (Some(c), Some(_)) = (exact, got) {
                    assert!((-40.01..=125.01).contains(&c), "raw {raw}: {c} °C gave {got:?}");
                }
                continue;
            }
            let (Some(exact), Some(got)) = (exact, got) else {
                panic!("raw {raw} is inside the table but gave {got:?}");
            };
            let error = (f64::from(got.get()) / 10.0 - exact).abs();
            if error > worst.0 {
                (worst.0, worst.1) = (error, raw);
            }
            worst.2 += 1;
        }
        worst
    }

    #[test]
    fn temperature_is_within_a_tenth_of_the_formula_over_the_whole_table() {
        for t in [Thermistor::PYBMS, Thermistor::COLLIN_TS2] {
            let (error, raw, count) = worst_error(t);
            std::println!("{t:?}: worst error {error:.4} °C at raw {raw}, {count} raw values");
            assert!(count > 13_900, "{t:?}: only {count} raw values inside the table");
            assert!(error <= 0.1, "{t:?}: {error} °C at raw {raw}");
        }
    }

    #[test]
    fn temperature_raw_inverts_the_formula_and_temperature_dc() {
        for t in [Thermistor::PYBMS, Thermistor::COLLIN_TS2] {
            // Error measured as temperature: the formula's reading of the raw value produced,
            // against the temperature asked for. One raw step is 0.01..0.04 °C, so a raw error
            // alone would say little.
            let mut worst = 0.0f64;
            for dc in -400..=1250 {
                let raw = temperature_raw(DeciCelsius(dc), t);
                let exact = celsius_of_raw(raw, t).expect("a table temperature has a resistance");
                worst = worst.max((exact - f64::from(dc) / 10.0).abs());
                let back = temperature_dc(raw, t).expect("a table temperature decodes");
                assert!((back.get() - dc).abs() <= 1, "{t:?}: {dc} dC → {raw} → {back:?}");
            }
            std::println!("{t:?}: worst error of temperature_raw {worst:.4} °C");
            assert!(worst <= 0.1, "{t:?}: {worst}");
        }
    }

    #[test]
    fn temperature_matches_the_protocol_table() {
        let table: [(i32, u16); 11] = [
            (-20, 790),
            (-10, 1247),
            (0, 1882),
            (10, 2717),
            (20, 3751),
            (25, 4333),
            (30, 4950),
            (40, 6258),
            (50, 7600),
            (60, 8901),
            (70, 10104),
        ];
        for (celsius, raw) in table {
            let got = temperature_raw(DeciCelsius(celsius * 10), Thermistor::PYBMS);
            assert!(got.abs_diff(raw) <= 1, "{celsius} °C: {got}, table {raw}");
            let dc = temperature_dc(raw, Thermistor::PYBMS).unwrap();
            assert!((dc.get() - celsius * 10).abs() <= 1, "raw {raw}: {dc:?}");
        }
    }

    #[test]
    fn temperature_matches_the_pybms_check() {
        assert_eq!(temperature_dc(0x1116, Thermistor::PYBMS), Some(DeciCelsius(253)));
        assert_eq!(temperature_dc(0x1116, Thermistor::COLLIN_TS2), Some(DeciCelsius(254)));
    }

    #[test]
    fn open_or_shorted_thermistors_and_bad_constants_read_none() {
        for t in [Thermistor::PYBMS, Thermistor::COLLIN_TS2] {
            assert_eq!(temperature_dc(0, t), None);
            assert_eq!(temperature_dc(RAW_MAX, t), None);
            assert_eq!(temperature_dc(u16::MAX, t), None);
        }
        assert_eq!(temperature_dc(4333, Thermistor { k: 2, d: 0 }), None);
        assert_eq!(temperature_raw(DeciCelsius(250), Thermistor { k: 2, d: 0 }), 0);
        for k in [0, 1, 1000, u16::MAX] {
            for d in [1, 2, 33046, u16::MAX] {
                for raw in [0, 1, 4333, RAW_MAX, u16::MAX] {
                    let _ = temperature_dc(raw, Thermistor { k, d });
                }
                for dc in [i32::MIN, -401, 0, 1251, i32::MAX] {
                    assert!(temperature_raw(DeciCelsius(dc), Thermistor { k, d }) <= RAW_MAX);
                }
            }
        }
    }

    #[test]
    fn temperature_raw_clamps_to_the_table() {
        let t = Thermistor::PYBMS;
        assert_eq!(
            temperature_raw(DeciCelsius(i32::MIN), t),
            temperature_raw(DeciCelsius(-400), t)
        );
        assert_eq!(
            temperature_raw(DeciCelsius(i32::MAX), t),
            temperature_raw(DeciCelsius(1250), t)
        );
    }

    #[test]
    fn cell_and_brick_scaling() {
        assert_eq!(cell_mv(0), MilliVolts(0));
        assert_eq!(cell_mv(RAW_MAX), MilliVolts(6250));
        assert_eq!(cell_mv(u16::MAX), MilliVolts(6250));
        assert_eq!(cell_mv(0x224D), MilliVolts(3350));
        assert_eq!(cell_raw(MilliVolts(3350)), 0x224D);
        assert_eq!(cell_raw(MilliVolts(-5)), 0);
        assert_eq!(cell_raw(MilliVolts(i32::MIN)), 0);
        assert_eq!(cell_raw(MilliVolts(i32::MAX)), RAW_MAX);
        assert_eq!(brick_mv(0x26F7), MilliVolts(20295));
        assert_eq!(brick_mv(RAW_MAX), MilliVolts(33333));
        assert_eq!(brick_mv(u16::MAX), MilliVolts(33333));
        assert_eq!(brick_raw(MilliVolts(20295)), 0x26F7);
        assert_eq!(brick_raw(MilliVolts(i32::MIN)), 0);
        assert_eq!(brick_raw(MilliVolts(i32::MAX)), RAW_MAX);
    }

    #[test]
    fn cell_and_brick_match_the_formula_and_round_trip() {
        for raw in 0..=RAW_MAX {
            let cell = f64::from(raw) * 6.25 / 16383.0 * 1000.0;
            assert!((f64::from(cell_mv(raw).get()) - cell).abs() <= 0.5, "cell raw {raw}");
            let brick = f64::from(raw) * 100.0 / 49149.0 * 1000.0;
            assert!((f64::from(brick_mv(raw).get()) - brick).abs() <= 0.5, "brick raw {raw}");
            // A millivolt is 2.6 cell steps and 0.49 brick steps.
            assert!(cell_raw(cell_mv(raw)).abs_diff(raw) <= 2, "cell raw {raw}");
            assert!(brick_raw(brick_mv(raw)).abs_diff(raw) <= 1, "brick raw {raw}");
        }
        for mv in 0..=6250 {
            assert_eq!(cell_mv(cell_raw(MilliVolts(mv))), MilliVolts(mv));
        }
    }

    #[test]
    fn over_and_under_voltage_codes() {
        assert_eq!(cov_code(MilliVolts(4150)), Some(43));
        assert_eq!(cov_code(MilliVolts(4199)), Some(43));
        assert_eq!(cov_code(MilliVolts(4450)), Some(0x31));
        assert_eq!(cov_code(MilliVolts(2000)), Some(0));
        assert_eq!(cov_code(MilliVolts(1999)), None);
        assert_eq!(cov_code(MilliVolts(5199)), Some(63));
        assert_eq!(cov_code(MilliVolts(5200)), None);
        assert_eq!(cov_code(MilliVolts(i32::MIN)), None);
        assert_eq!(cov_code(MilliVolts(i32::MAX)), None);
        assert_eq!(cov_mv(0x31), Some(MilliVolts(4450)));
        assert_eq!(cov_mv(0x2B), Some(MilliVolts(4150)));
        assert_eq!(cov_mv(0xB1), None);
        for code in 0..=63 {
            assert_eq!(cov_code(cov_mv(code).unwrap()), Some(code));
        }

        assert_eq!(cuv_code(MilliVolts(1500)), Some(8));
        assert_eq!(cuv_code(MilliVolts(700)), Some(0));
        assert_eq!(cuv_code(MilliVolts(699)), None);
        assert_eq!(cuv_code(MilliVolts(3899)), Some(31));
        assert_eq!(cuv_code(MilliVolts(3900)), None);
        assert_eq!(cuv_code(MilliVolts(i32::MIN)), None);
        assert_eq!(cuv_mv(0x08), Some(MilliVolts(1500)));
        assert_eq!(cuv_mv(0x88), None);
        for code in 0..=31 {
            assert_eq!(cuv_code(cuv_mv(code).unwrap()), Some(code));
        }
    }

    #[test]
    fn protector_delays() {
        assert_eq!(protector_delay_code(100), Some(0x81));
        assert_eq!(protector_delay_code(199), Some(0x81));
        assert_eq!(protector_delay_code(0), Some(0x80));
        assert_eq!(protector_delay_code(3100), Some(0x9F));
        assert_eq!(protector_delay_code(3199), Some(0x9F));
        assert_eq!(protector_delay_code(3200), None);
        assert_eq!(protector_delay_code(u32::MAX), None);
        assert_eq!(protector_delay_us(0x81), 100_000);
        assert_eq!(protector_delay_us(0x01), 100);
        assert_eq!(protector_delay_us(0x9F), 3_100_000);
        assert_eq!(protector_delay_us(0xFF), 3_100_000);
        for ms in (0..3200).step_by(100) {
            let code = protector_delay_code(ms).unwrap();
            assert_eq!(protector_delay_us(code), ms * 1000);
        }
    }

    #[test]
    fn over_temperature_codes() {
        // The boards' reset value 0x66 is 65 °C on both sensors.
        assert_eq!(ot_dc(0x66 & 0x0F), Some(DeciCelsius(650)));
        assert_eq!(ot_dc(0x66 >> 4), Some(DeciCelsius(650)));
        assert_eq!(ot_code(DeciCelsius(650)), Some(6));
        assert_eq!(ot_code(DeciCelsius(699)), Some(6));
        assert_eq!(ot_code(DeciCelsius(400)), Some(1));
        assert_eq!(ot_code(DeciCelsius(399)), None);
        assert_eq!(ot_code(DeciCelsius(949)), Some(11));
        assert_eq!(ot_code(DeciCelsius(950)), None);
        assert_eq!(ot_code(DeciCelsius(i32::MIN)), None);
        assert_eq!(ot_code(DeciCelsius(i32::MAX)), None);
        assert_eq!(ot_dc(0), None);
        assert_eq!(ot_dc(1), Some(DeciCelsius(400)));
        assert_eq!(ot_dc(11), Some(DeciCelsius(900)));
        assert!((12..=u8::MAX).all(|k| ot_dc(k).is_none()));
        for k in 1..=11 {
            assert_eq!(ot_code(ot_dc(k).unwrap()), Some(k));
        }
        // pyBMS's own expression, for every whole degree it accepts.
        for celsius in 40..95 {
            let pybms = ((f64::from(celsius) - 40.0) / 5.0 + 1.0) as u8;
            assert_eq!(ot_code(DeciCelsius(celsius * 10)), Some(pybms), "{celsius} °C");
        }
    }

    #[test]
    fn over_temperature_delays() {
        assert_eq!(ot_delay_code(2550), Some(0xFF));
        assert_eq!(ot_delay_code(2559), Some(0xFF));
        assert_eq!(ot_delay_code(2560), None);
        assert_eq!(ot_delay_code(u32::MAX), None);
        assert_eq!(ot_delay_code(19), Some(1));
        assert_eq!(ot_delay_ms(0xFF), 2550);
        for code in 0..=u8::MAX {
            assert_eq!(ot_delay_code(ot_delay_ms(code)), Some(code));
        }
    }

    #[test]
    fn div_round_rounds_halves_away_from_zero() {
        assert_eq!(div_round(5, 2), 3);
        assert_eq!(div_round(-5, 2), -3);
        assert_eq!(div_round(4, 3), 1);
        assert_eq!(div_round(5, -2), -3);
        assert_eq!(div_round(1, 0), 0);
    }
}
