//! Rounding to the nearest integer without a library call.
//!
//! `f64::round` is a call into the C library on the baseline x86-64 target (it has no rounding
//! instruction), and the simulator rounds every reading it turns into an integer: some 130 per
//! measurement cycle. This does the same in a few instructions.

/// 2^52: from here on every `f64` is an integer.
const INTEGRAL_FROM: f64 = 4_503_599_627_370_496.0;

/// `x` rounded to the nearest integer, halves away from zero, like `f64::round`, except that a
/// zero result may lose its sign (the callers convert to an integer type). Non-finite values
/// come back unchanged.
#[inline]
pub(crate) fn round(x: f64) -> f64 {
    if x.is_nan() || x.abs() >= INTEGRAL_FROM {
        return x;
    }
    // Below 2^52 the truncation fits an i64 and the fraction `x − t` is exact. The fraction
    // of a measured value is as good as random, so the correction is computed, not branched
    // on.
    let t = x as i64;
    let fraction = x - t as f64;
    let up = i64::from(fraction >= 0.5);
    let down = i64::from(fraction <= -0.5);
    (t + up - down) as f64
}

#[cfg(test)]
mod tests {
    use super::round;
    use crate::rng::SimRng;

    #[test]
    fn agrees_with_the_library() {
        let edges = [
            0.0,
            0.5,
            1.5,
            2.5,
            0.499_999_999_999_999_94,
            1.0 - f64::EPSILON,
            4_503_599_627_370_495.5,
            4_503_599_627_370_496.0,
            9.1e18,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        let mut rng = SimRng::stream(1, "round");
        let random = (0..100_000).map(|k| rng.normal() * 10f64.powi(k % 12));
        for x in edges.into_iter().chain(random) {
            for x in [x, -x] {
                assert_eq!(round(x), x.round(), "{x}");
            }
        }
        assert_eq!(round(f64::INFINITY), f64::INFINITY);
        assert!(round(f64::NAN).is_nan());
    }
}
