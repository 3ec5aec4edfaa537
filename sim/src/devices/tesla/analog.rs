//! The boards' analogue front end: physical values to the 14-bit raw ADC results the registers
//! hold (`shared/protocols.md` §1.8).
//!
//! This is the inverse of what a master computes, done in `f64` on purpose: a real board's
//! converter sees a continuous voltage, so the emulator starts from the plant's continuous
//! values and rounds once, instead of reusing the core's integer conversions (which would make
//! a bug in them invisible to tests that use the emulator).

use super::ThermistorConstants;

/// Largest 14-bit ADC result.
pub const RAW_MAX: u16 = 0x3FFF;

/// Steinhart–Hart coefficients of the boards' 10 kΩ NTC thermistors (§1.8).
const SH_A: f64 = 0.000_761_037_357_3;
const SH_B: f64 = 0.000_272_852_483_2;
const SH_C: f64 = 0.000_000_102_282_273_5;
/// The bias network constants of the thermistor divider (§1.8).
const BIAS_GAIN: f64 = 1.78;
const BIAS_OFFSET: f64 = 3.57;
/// Newton steps from ln R = 9: the cubic is monotonic, and six steps reach full `f64` precision
/// over -60..150 °C; eight leave a margin.
const NEWTON_STEPS: usize = 8;

/// Raw VCELL result for a cell at `volts`: round(V × 16383 / 6.25), clamped to 14 bits.
pub fn cell_raw(volts: f64) -> u16 {
    to_raw(volts * 16383.0 / 6.25)
}

/// Raw GPAI result for a module (brick) at `volts`: round(V × 49149 / 100), clamped to 14 bits.
pub fn brick_raw(volts: f64) -> u16 {
    to_raw(volts * 49149.0 / 100.0)
}

/// Raw TS result for a thermistor at `celsius`, with the divider constants `constants`:
/// Steinhart–Hart solved for the resistance, then raw = 1.78 D / (R / 1000 + 3.57) − k.
pub fn temperature_raw(celsius: f64, constants: ThermistorConstants) -> u16 {
    let inv_t = 1.0 / (celsius + 273.15);
    // Solve C x³ + B x + (A − 1/T) = 0 for x = ln R.
    let mut x: f64 = 9.0;
    for _ in 0..NEWTON_STEPS {
        let f = SH_C * x * x * x + SH_B * x + (SH_A - inv_t);
        let next = x - f / (3.0 * SH_C * x * x + SH_B);
        // A step that changes nothing is a fixed point: every later step would repeat it.
        if next.to_bits() == x.to_bits() {
            break;
        }
        x = next;
    }
    let ohms = libm::exp(x);
    let raw = BIAS_GAIN * constants.divisor() / (ohms / 1000.0 + BIAS_OFFSET) - constants.offset();
    to_raw(raw)
}

/// Remembers the temperatures over which the last thermistor result holds, so that a board
/// converting a temperature that moved by less than a count gets the same result without the
/// solve (a thermistor count is about 0.01 K; the plant's temperatures move by far less between
/// two conversions).
///
/// The interval is the result's rounding interval shrunk by [`CACHE_MARGIN`] counts at each
/// end, worked out with the inverse of [`temperature_raw`]: inside it the solve lands at least
/// that far from a rounding boundary, millions of times its own floating-point error, so it
/// would give the same count. Outside it the solve runs as before.
#[derive(Clone, Copy, Debug)]
pub struct ThermistorCache {
    /// Open interval, °C; empty (`lo_c` ≥ `hi_c`) when nothing is remembered.
    lo_c: f64,
    hi_c: f64,
    raw: u16,
    constants: ThermistorConstants,
}

/// How far inside its rounding interval, in counts, a cached result must lie.
const CACHE_MARGIN: f64 = 1e-3;

impl Default for ThermistorCache {
    fn default() -> ThermistorCache {
        ThermistorCache {
            lo_c: f64::INFINITY,
            hi_c: f64::NEG_INFINITY,
            raw: 0,
            constants: ThermistorConstants::PyBms,
        }
    }
}

impl ThermistorCache {
    /// [`temperature_raw`] of `celsius` with `constants`, from the cache when it holds.
    pub fn raw(&mut self, celsius: f64, constants: ThermistorConstants) -> u16 {
        if celsius > self.lo_c && celsius < self.hi_c && constants == self.constants {
            return self.raw;
        }
        let raw = temperature_raw(celsius, constants);
        *self = ThermistorCache::default();
        // The ends of the range clamp, and have no interval of their own.
        if (1..RAW_MAX).contains(&raw) {
            let lo_c = celsius_at(f64::from(raw) - 0.5 + CACHE_MARGIN, constants);
            let hi_c = celsius_at(f64::from(raw) + 0.5 - CACHE_MARGIN, constants);
            // The count rises with the temperature; anything else (a NaN) remembers nothing.
            if lo_c < celsius && celsius < hi_c {
                *self = ThermistorCache { lo_c, hi_c, raw, constants };
            }
        }
        raw
    }
}

/// The temperature at which the unrounded result of [`temperature_raw`] is `raw`: the divider
/// solved for the resistance, then Steinhart–Hart. NaN where no resistance gives `raw`.
fn celsius_at(raw: f64, constants: ThermistorConstants) -> f64 {
    let kohm = BIAS_GAIN * constants.divisor() / (raw + constants.offset()) - BIAS_OFFSET;
    if kohm.is_nan() || kohm <= 0.0 {
        return f64::NAN;
    }
    let x = libm::log(kohm * 1000.0);
    1.0 / (SH_A + SH_B * x + SH_C * x * x * x) - 273.15
}

/// Rounds to the nearest integer and clamps to 0..=[`RAW_MAX`]; NaN reads 0.
fn to_raw(x: f64) -> u16 {
    // `as` saturates and maps NaN to 0, which is what a converter with a floating input does
    // closely enough.
    crate::round::round(x).clamp(0.0, f64::from(RAW_MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_examples_of_the_protocol_notes() {
        assert_eq!(cell_raw(3.350), 0x224D);
        assert_eq!(brick_raw(20.295), 0x26F7);
        assert_eq!(temperature_raw(25.34, ThermistorConstants::PyBms), 0x1116);
    }

    #[test]
    fn temperature_table_of_the_protocol_notes() {
        let table = [(-20.0, 790), (0.0, 1882), (25.0, 4333), (50.0, 7600), (70.0, 10104)];
        for (celsius, raw) in table {
            let got = temperature_raw(celsius, ThermistorConstants::PyBms);
            assert!(got.abs_diff(raw) <= 1, "{celsius} °C: {got} instead of {raw}");
        }
    }

    #[test]
    fn collin80_ts2_constants_read_a_few_counts_lower() {
        let pybms = temperature_raw(25.34, ThermistorConstants::PyBms);
        let collin = temperature_raw(25.34, ThermistorConstants::Collin80);
        assert_eq!(pybms - collin, 4);
    }

    #[test]
    fn the_cache_gives_what_the_solve_gives() {
        for constants in [ThermistorConstants::PyBms, ThermistorConstants::Collin80] {
            let mut cache = ThermistorCache::default();
            let mut hits = 0;
            // Small steps up and down through -30..90 °C, crossing many count boundaries.
            let mut celsius = -30.0;
            for k in 0..200_000 {
                celsius += if k % 7 == 3 { -0.0004 } else { 0.000_61 };
                let before = cache.lo_c < celsius && celsius < cache.hi_c;
                assert_eq!(cache.raw(celsius, constants), temperature_raw(celsius, constants));
                hits += u32::from(before);
            }
            assert!(hits > 150_000, "{hits} hits");
            assert_eq!(cache.raw(f64::NAN, constants), 0);
            assert_eq!(cache.raw(500.0, constants), temperature_raw(500.0, constants));
        }
    }

    #[test]
    fn out_of_range_inputs_clamp() {
        assert_eq!(cell_raw(-1.0), 0);
        assert_eq!(cell_raw(10.0), RAW_MAX);
        assert_eq!(cell_raw(f64::NAN), 0);
        assert_eq!(brick_raw(f64::INFINITY), RAW_MAX);
        assert_eq!(temperature_raw(f64::NAN, ThermistorConstants::PyBms), 0);
        assert!(temperature_raw(-273.15, ThermistorConstants::PyBms) <= RAW_MAX);
        assert!(temperature_raw(500.0, ThermistorConstants::PyBms) <= RAW_MAX);
    }
}
