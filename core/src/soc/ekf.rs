//! An extended Kalman filter on a one-RC equivalent circuit of one cell, in integers.
//!
//! The cell is an OCV source, a series resistance `R0` and one RC pair (`R1`, time constant
//! `tau`). The states are the SoC and the voltage across the RC pair; the measurement is the
//! terminal voltage:
//!
//! ```text
//! soc'  = soc + charge / capacity                    (charge after the charge efficiency)
//! v_rc' = a * v_rc + (1 - a) * R1 * I,  a = exp(-dt / tau)
//! v     = OCV(soc) + v_rc + R0 * I                   (I > 0 charging)
//! ```
//!
//! Number formats (all integers; products are taken in `i128` and clamped back):
//! - SoC in ppb, parts per 10^9 of the capacity ([`SOC_ONE`] is 100 %), so that a 100 mA·s step
//!   on a 233 Ah string (119 ppb) is not lost to rounding;
//! - voltages in µV, currents in mA, resistances in µΩ (µΩ × mA = nV);
//! - the covariance `P` in the states' units: `p11` ppb², `p12` ppb·µV, `p22` µV²;
//! - the OCV slope `H1` in µV per whole SoC (per 10^9 ppb), the derivative of the linearly
//!   interpolated table, so `H1 * dsoc_ppb / SOC_ONE` is µV;
//! - the RC decay `a` in Q30 (2^30 is 1.0).
//!
//! The gain never appears on its own: with `PHt = P Hᵀ` and the innovation variance `S`, the
//! correction is `PHt * e / S` and the covariance update `P - PHt PHtᵀ / S`, both exact integer
//! expressions of products that fit an `i128` for every state the clamps allow.

use super::ocv::Chemistry;

/// 100 % SoC in ppb.
pub(crate) const SOC_ONE: i64 = 1_000_000_000;

/// 1.0 in Q30.
const Q30: i64 = 1 << 30;

/// The largest SoC variance kept: a standard deviation of 50 %.
pub(crate) const P11_MAX: i64 = (SOC_ONE / 2) * (SOC_ONE / 2);
/// The smallest SoC variance kept: a standard deviation of 0.05 %, so the filter never becomes
/// so sure of itself that it stops listening.
const P11_MIN: i64 = 500_000 * 500_000;
/// The RC voltage variance is kept between (0.1 mV)² and (200 mV)².
const P22_MIN: i64 = 100 * 100;
const P22_MAX: i64 = 200_000 * 200_000;
/// The RC voltage is kept within ±1 V: far beyond any real cell, and it bounds the products.
const RC_MAX_UV: i64 = 1_000_000;
/// An innovation is clamped to this many standard deviations (of its own predicted spread), so
/// one wild sample moves the state by a bounded amount while a persistent error still pulls.
const INNOVATION_SIGMAS: i64 = 3;

/// Parameters of the cell model the filter needs at each step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Model {
    pub r0_uohm: i64,
    pub r1_uohm: i64,
    pub tau_ms: i64,
}

/// Filter state: the two states and their covariance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ekf {
    pub soc_ppb: i64,
    pub rc_uv: i64,
    pub p11: i64,
    pub p12: i64,
    pub p22: i64,
}

/// What one correction did, for the caller's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Correction {
    Applied,
    /// The innovation was beyond [`INNOVATION_SIGMAS`] and was clamped before use.
    Clamped,
}

impl Ekf {
    /// A filter at `soc_ppb` with standard deviation `sigma_ppb`, RC voltage `rc_uv` known to
    /// about 10 mV.
    pub fn new(soc_ppb: i64, sigma_ppb: i64, rc_uv: i64) -> Self {
        let mut ekf = Ekf { soc_ppb, rc_uv, p11: 0, p12: 0, p22: 10_000 * 10_000 };
        ekf.set_sigma(sigma_ppb);
        ekf.clamp();
        ekf
    }

    /// The SoC standard deviation in ppb.
    pub fn sigma_ppb(&self) -> i64 {
        isqrt(self.p11.max(0) as u64) as i64
    }

    /// Replaces the SoC uncertainty; the cross term is dropped (an anchor is independent of
    /// the RC voltage estimate).
    pub fn set_sigma(&mut self, sigma_ppb: i64) {
        let s = i128::from(sigma_ppb.clamp(0, SOC_ONE));
        self.p11 = clamp_i64(s * s, P11_MIN, P11_MAX);
        self.p12 = 0;
    }

    /// Time update over `dt_ms` with `charge_mas` (efficiency applied) flowing at `current_ma`.
    /// `bias_ppb` is a systematic error bound for the counted charge (sensor gain and offset):
    /// it grows the SoC standard deviation linearly, as a bias does. `walk_ppb2` is the random
    /// walk variance added for the same step (model error).
    #[allow(clippy::too_many_arguments)]
    pub fn predict(
        &mut self,
        model: &Model,
        capacity_mas: i64,
        charge_mas: i64,
        current_ma: i64,
        dt_ms: i64,
        bias_ppb: i64,
        walk_ppb2: i64,
        rc_walk_uv2: i64,
    ) {
        let capacity = i128::from(capacity_mas.max(1));
        let dsoc = i128::from(charge_mas) * i128::from(SOC_ONE) / capacity;
        self.soc_ppb = clamp_i64(i128::from(self.soc_ppb) + dsoc, 0, SOC_ONE);

        let a = decay_q30(dt_ms, model.tau_ms);
        // R1 (µΩ) × I (mA) is nV; the target RC voltage in µV.
        let target_uv = i128::from(model.r1_uohm) * i128::from(current_ma) / 1000;
        let rc = (i128::from(a) * i128::from(self.rc_uv) + i128::from(Q30 - a) * target_uv) >> 30;
        self.rc_uv = clamp_i64(rc, -RC_MAX_UV, RC_MAX_UV);

        let sigma = i128::from(self.sigma_ppb()) + i128::from(bias_ppb.max(0));
        self.p11 = clamp_i64(sigma * sigma + i128::from(walk_ppb2.max(0)), P11_MIN, P11_MAX);
        self.p12 = clamp_i64((i128::from(a) * i128::from(self.p12)) >> 30, i64::MIN, i64::MAX);
        let a2 = (i128::from(a) * i128::from(a)) >> 30;
        let p22 = ((a2 * i128::from(self.p22)) >> 30) + i128::from(rc_walk_uv2.max(0));
        self.p22 = clamp_i64(p22, P22_MIN, P22_MAX);
        self.clamp();
    }

    /// Measurement update with the terminal voltage `measured_uv` at `current_ma`, with the
    /// measurement (and model) variance `r_uv2`.
    pub fn correct(
        &mut self,
        chemistry: Chemistry,
        model: &Model,
        measured_uv: i64,
        current_ma: i64,
        r_uv2: i64,
    ) -> Correction {
        let soc_ppm = (self.soc_ppb / 1000) as u32; // 0..=10^6 after the clamps
        let ocv = i128::from(chemistry.ocv_uv(soc_ppm));
        let predicted = ocv
            + i128::from(self.rc_uv)
            + i128::from(model.r0_uohm) * i128::from(current_ma) / 1000;
        let h1 = i128::from(chemistry.ocv_slope_uv_per_full(soc_ppm));
        let one = i128::from(SOC_ONE);
        let (p11, p12, p22) = (i128::from(self.p11), i128::from(self.p12), i128::from(self.p22));

        let pht1 = p11 * h1 / one + p12; // ppb·µV
        let pht2 = p12 * h1 / one + p22; // µV²
        let s = (h1 * pht1 / one + pht2 + i128::from(r_uv2.max(1))).max(1); // µV²

        let mut e = i128::from(measured_uv) - predicted;
        let limit = INNOVATION_SIGMAS * isqrt(clamp_i64(s, 0, i64::MAX) as u64) as i64;
        let limit = i128::from(limit.max(1));
        let outcome = if e.abs() > limit { Correction::Clamped } else { Correction::Applied };
        e = e.clamp(-limit, limit);

        self.soc_ppb = clamp_i64(i128::from(self.soc_ppb) + pht1 * e / s, 0, SOC_ONE);
        self.rc_uv = clamp_i64(i128::from(self.rc_uv) + pht2 * e / s, -RC_MAX_UV, RC_MAX_UV);
        self.p11 = clamp_i64(p11 - pht1 * pht1 / s, P11_MIN, P11_MAX);
        self.p12 = clamp_i64(p12 - pht1 * pht2 / s, i64::MIN, i64::MAX);
        self.p22 = clamp_i64(p22 - pht2 * pht2 / s, P22_MIN, P22_MAX);
        self.clamp();
        outcome
    }

    /// Keeps the state in range and the covariance positive definite: variances within their
    /// bounds, and the cross term no larger than their geometric mean allows.
    pub fn clamp(&mut self) {
        self.soc_ppb = self.soc_ppb.clamp(0, SOC_ONE);
        self.rc_uv = self.rc_uv.clamp(-RC_MAX_UV, RC_MAX_UV);
        self.p11 = self.p11.clamp(P11_MIN, P11_MAX);
        self.p22 = self.p22.clamp(P22_MIN, P22_MAX);
        // |p12| < sqrt(p11 * p22) keeps the determinant positive; 99 % leaves a margin.
        // Both variances are positive after the clamps above; the root is below 2^47.
        let product = self.p11 as u128 * self.p22 as u128;
        if cross_term_within(self.p12, product) {
            // The usual case: the bound does not bind, and its square root is not needed.
            return;
        }
        let root = isqrt_u128(product);
        let bound = i64::try_from(root).unwrap_or(i64::MAX).saturating_mul(99) / 100;
        self.p12 = self.p12.clamp(-bound, bound);
    }
}

/// Whether `|p12| <= isqrt(product) * 99 / 100` (the bound of [`Ekf::clamp`], rounded down as
/// it is there), decided without the square root. With `r = isqrt(product)`, `|p12| <= r * 99
/// / 100` rounded down holds exactly when `100 |p12| <= 99 r`, that is when `q = ceil(100 |p12|
/// / 99) <= r`, and for whole numbers `q <= isqrt(product)` exactly when `q * q <= product`.
/// A `|p12|` of 2^56 or more is left to the square root (the bound is below 2^47 anyway), so
/// `q` stays in a `u64` and its square in a `u128`.
fn cross_term_within(p12: i64, product: u128) -> bool {
    let magnitude = p12.unsigned_abs();
    if magnitude >= 1 << 56 {
        return false;
    }
    let q = u128::from((magnitude * 100).div_ceil(99));
    q * q <= product
}

/// `exp(-dt / tau)` in Q30, for `dt >= 0` and `tau > 0`: the (1,1) Padé approximant
/// `(2 - x) / (2 + x)` of a reduced argument `x / 2^k <= 1/256`, squared `k` times (at most
/// 14 times below the cut-off). Error below 2 · 10^-5 of 1.0 (tested against `exp`); the result
/// is 0 beyond 40 time constants.
pub(crate) fn decay_q30(dt_ms: i64, tau_ms: i64) -> i64 {
    if dt_ms <= 0 {
        return Q30;
    }
    if tau_ms <= 0 || dt_ms / tau_ms.max(1) >= 40 {
        return 0;
    }
    // x = dt / tau in Q30; dt / tau < 40, so x < 2^36.
    let mut x = (i128::from(dt_ms) << 30) / i128::from(tau_ms);
    let mut halvings = 0;
    while x > i128::from(Q30 / 256) && halvings < 24 {
        x >>= 1;
        halvings += 1;
    }
    let two = 2 * i128::from(Q30);
    let mut a = ((two - x) << 30) / (two + x);
    for _ in 0..halvings {
        a = (a * a) >> 30;
    }
    a as i64 // 0 <= a <= 2^30
}

/// 25 °C in centikelvin: the temperature the configured resistances are for.
const T25_CK: i64 = 29_815;
/// The temperature range the resistance factor follows; beyond it the factor stays at the
/// range's end (a sensor gone wild must not make the model's resistance absurd).
const FACTOR_TEMPERATURE_DC: (i32, i32) = (-300, 600);
/// 1.0 as a resistance factor: ppm.
pub(crate) const FACTOR_ONE: i64 = 1_000_000;

/// How many times its 25 °C value a resistance is at `temperature_dc`, in ppm, by the
/// Arrhenius law `R(T) = R25 · exp(k · (1/T − 1/298.15 K))` with the activation temperature `k`
/// in kelvin; 0 turns the dependence off. The temperature is limited to −30..60 °C. Computed
/// with [`decay_q30`] (`exp(−x)` for `x ≥ 0`), inverted for temperatures below 25 °C.
pub(crate) fn resistance_factor_ppm(temperature_dc: i32, activation_k: u32) -> i64 {
    let (lo, hi) = FACTOR_TEMPERATURE_DC;
    let t_ck = i64::from(temperature_dc.clamp(lo, hi)) * 10 + 27_315;
    // k · (1/T − 1/T25) with T in centikelvin: k · 100 · (T25 − T) / (T · T25).
    let num = i64::from(activation_k) * 100 * (T25_CK - t_ck);
    let den = t_ck * T25_CK;
    if num >= 0 {
        // Colder than 25 °C (or no dependence): exp(x) = 1 / exp(−x). At −30 °C and 10 000 K
        // x is 7.6, so exp(−x) is about 5·10^5 in Q30: never zero.
        let decay = decay_q30(num, den).max(1);
        clamp_i64(i128::from(FACTOR_ONE) * i128::from(Q30) / i128::from(decay), 1, i64::MAX)
    } else {
        let decay = decay_q30(-num, den);
        clamp_i64(i128::from(FACTOR_ONE) * i128::from(decay) / i128::from(Q30), 1, FACTOR_ONE)
    }
}

/// `uohm` scaled by `factor_ppm`, at least 1 µΩ.
pub(crate) fn scale_resistance(uohm: i64, factor_ppm: i64) -> i64 {
    clamp_i64(i128::from(uohm) * i128::from(factor_ppm) / i128::from(FACTOR_ONE), 1, i64::MAX)
}

/// The integer square root (rounded down), bit by bit in 64-bit words: at most 32 steps, each
/// a few 64-bit additions and shifts (cheap on a 32-bit core too, unlike 128-bit ones).
pub(crate) fn isqrt(n: u64) -> u64 {
    let mut rem = n;
    let mut root: u64 = 0;
    let mut bit: u64 = 1 << 62;
    while bit > rem {
        bit >>= 2;
    }
    while bit != 0 {
        // root + bit cannot overflow: root < 2^32 * 2 and bit <= 2^62 while they overlap.
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root
}

/// The integer square root of a `u128`, bit by bit: at most 64 steps.
fn isqrt_u128(n: u128) -> u64 {
    let mut rem = n;
    let mut root: u128 = 0;
    let mut bit: u128 = 1 << 126;
    while bit > rem {
        bit >>= 2;
    }
    while bit != 0 {
        if rem >= root + bit {
            rem -= root + bit;
            root = (root >> 1) + bit;
        } else {
            root >>= 1;
        }
        bit >>= 2;
    }
    root as u64 // sqrt(2^128) = 2^64, and root < 2^64
}

/// `v` clamped into `lo..=hi` and narrowed.
pub(crate) fn clamp_i64(v: i128, lo: i64, hi: i64) -> i64 {
    v.clamp(i128::from(lo), i128::from(hi)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isqrt_is_exact_at_squares_and_rounds_down() {
        for n in [0u64, 1, 2, 3, 4, 15, 16, 17, 1 << 40, u64::MAX] {
            let r = isqrt(n);
            assert!(r * r <= n, "{n}");
            assert!((r + 1).checked_mul(r + 1).is_none_or(|sq| sq > n), "{n}");
        }
        assert_eq!(isqrt_u128(u128::MAX), u64::MAX);
    }

    /// The cross-term clamp as it was before it learnt to skip the square root: the oracle.
    fn clamp_by_root(p12: i64, p11: i64, p22: i64) -> i64 {
        let root = isqrt_u128(p11 as u128 * p22 as u128);
        let bound = i64::try_from(root).unwrap_or(i64::MAX).saturating_mul(99) / 100;
        p12.clamp(-bound, bound)
    }

    fn clamped(p12: i64, p11: i64, p22: i64) -> Ekf {
        let mut ekf = Ekf { soc_ppb: 0, rc_uv: 0, p11, p12, p22 };
        ekf.clamp();
        ekf
    }

    #[test]
    fn clamp_equals_the_square_root_at_the_bound() {
        // Around the bound's edge in both directions, where rounding decides, for a perfect
        // square product and for ones just beside it.
        for (p11, p22) in [(P11_MIN, P22_MIN), (P11_MAX, P22_MAX), (P11_MIN + 1, 10_001), (4, 9)] {
            let (p11, p22) = (p11.clamp(P11_MIN, P11_MAX), p22.clamp(P22_MIN, P22_MAX));
            let bound = clamp_by_root(i64::MAX, p11, p22);
            for p12 in (bound - 3..=bound + 3).chain([i64::MAX, i64::MIN, 1 << 56, (1 << 56) - 1]) {
                for p12 in [p12, p12.saturating_neg()] {
                    assert_eq!(clamped(p12, p11, p22).p12, clamp_by_root(p12, p11, p22), "{p12}");
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn clamp_equals_the_square_root(
            p11 in P11_MIN..=P11_MAX,
            p22 in P22_MIN..=P22_MAX,
            scale in 0u32..1_100,
            raw in proptest::num::i64::ANY,
        ) {
            // Mostly near the bound (scale per mille of the root, either sign), sometimes anything.
            let root = isqrt_u128(p11 as u128 * p22 as u128) as i64;
            let near = root / 1000 * i64::from(scale) + raw % 1000;
            for p12 in [near, -near, raw] {
                proptest::prop_assert_eq!(clamped(p12, p11, p22).p12, clamp_by_root(p12, p11, p22));
            }
        }

        #[test]
        fn isqrt_equals_the_wide_one(n in proptest::num::u64::ANY, shift in 0u32..64) {
            let n = n >> shift;
            proptest::prop_assert_eq!(isqrt(n), isqrt_u128(u128::from(n)));
        }
    }

    #[test]
    fn decay_matches_the_exponential() {
        // exp(-0.05) = 0.951229..., exp(-1) = 0.367879..., exp(-5) = 0.006737...
        let close = |got: i64, want_ppm: i64| {
            let got_ppm = got * 1_000_000 / Q30;
            assert!((got_ppm - want_ppm).abs() <= 20, "{got_ppm} vs {want_ppm}");
        };
        close(decay_q30(1_000, 20_000), 951_229);
        close(decay_q30(20_000, 20_000), 367_879);
        close(decay_q30(100_000, 20_000), 6_738);
        assert_eq!(decay_q30(0, 20_000), Q30);
        assert_eq!(decay_q30(-5, 20_000), Q30);
        assert_eq!(decay_q30(i64::MAX, 20_000), 0);
        assert_eq!(decay_q30(1_000, 0), 0);
    }

    #[test]
    fn resistance_factor_follows_arrhenius() {
        let exact = |c: f64, k: f64| (k * (1.0 / (c + 273.15) - 1.0 / 298.15)).exp();
        for (dc, k) in [(250, 3500), (0, 3500), (-60, 3500), (-200, 3500), (450, 3500), (100, 3000)]
        {
            let got = resistance_factor_ppm(dc, k) as f64 / 1e6;
            let want = exact(f64::from(dc) / 10.0, f64::from(k));
            assert!((got / want - 1.0).abs() < 1e-4, "{dc} dC, {k} K: {got} vs {want}");
        }
        assert_eq!(resistance_factor_ppm(-400, 0), FACTOR_ONE, "no dependence");
        // Beyond the range the factor stays at its end.
        assert_eq!(resistance_factor_ppm(i32::MIN, 3500), resistance_factor_ppm(-300, 3500));
        assert_eq!(resistance_factor_ppm(i32::MAX, 3500), resistance_factor_ppm(600, 3500));
        assert!(resistance_factor_ppm(-300, 10_000) > 1_000 * FACTOR_ONE);
        assert_eq!(scale_resistance(300, 2_000_000), 600);
        assert_eq!(scale_resistance(0, 2_000_000), 1);
    }

    #[test]
    fn a_steep_curve_pulls_the_soc_and_a_flat_one_barely_does() {
        let model = Model { r0_uohm: 350, r1_uohm: 220, tau_ms: 20_000 };
        // The estimate is 55 % +- 5 %, the truth 50 %; the voltage is known to 10 mV.
        for chem in [Chemistry::Nca, Chemistry::Lfp] {
            let mut ekf = Ekf::new(550_000_000, 50_000_000, 0);
            let v = i64::from(chem.ocv_uv(500_000));
            ekf.correct(chem, &model, v, 0, 10_000 * 10_000);
            // Share of the 5 % error removed by one sample, permille.
            let pull = (550_000_000 - ekf.soc_ppb) / 50_000;
            match chem {
                // 12 mV/% there: one sample removes most of the error (the rest is the
                // linearisation: the curve is steeper at 55 % than on average down to 50 %).
                Chemistry::Nca => assert!(pull >= 600, "NCA: {pull}"),
                // 0.4 mV/% there: 5 % is 2 mV, well inside the voltage's 10 mV.
                Chemistry::Lfp => assert!((0..100).contains(&pull), "LFP: {pull}"),
            }
        }
    }
}
