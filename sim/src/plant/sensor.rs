//! The pack current sensor (shunt or Hall): offset, gain error and white noise.

use crate::rng::SimRng;

/// A current sensor: `measured = true × (1 + gain_error) + offset + N(0, noise)`.
#[derive(Clone, Debug)]
pub struct CurrentSensor {
    offset_a: f64,
    gain_error: f64,
    noise_a: f64,
    rng: SimRng,
}

/// A finite value, or 0.
fn finite_or_zero(x: f64) -> f64 {
    if x.is_finite() { x } else { 0.0 }
}

impl CurrentSensor {
    /// A sensor with a constant `offset_a`, a `gain_error` (fraction: 0.01 reads 1 % high) and
    /// Gaussian noise of standard deviation `noise_a` drawn from `rng`. Non-finite figures count
    /// as 0; a negative noise as its magnitude.
    pub fn new(offset_a: f64, gain_error: f64, noise_a: f64, rng: SimRng) -> CurrentSensor {
        CurrentSensor {
            offset_a: finite_or_zero(offset_a),
            gain_error: finite_or_zero(gain_error),
            noise_a: finite_or_zero(noise_a).abs(),
            rng,
        }
    }

    /// Changes the offset (drift, a fault); non-finite: ignored.
    pub fn set_offset_a(&mut self, offset_a: f64) {
        if offset_a.is_finite() {
            self.offset_a = offset_a;
        }
    }

    /// The present offset, A.
    pub fn offset_a(&self) -> f64 {
        self.offset_a
    }

    /// One reading of `true_a` (non-finite counts as 0). Draws one normal number per reading
    /// when the noise is not zero.
    pub fn measure(&mut self, true_a: f64) -> f64 {
        let noise = if self.noise_a > 0.0 { self.rng.normal() * self.noise_a } else { 0.0 };
        finite_or_zero(true_a) * (1.0 + self.gain_error) + self.offset_a + noise
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_gain_and_noise() {
        let mut s = CurrentSensor::new(0.1, 0.01, 0.0, SimRng::stream(1, "sensor"));
        assert!((s.measure(100.0) - 101.1).abs() < 1e-12);
        s.set_offset_a(-0.5);
        s.set_offset_a(f64::NAN);
        assert!((s.measure(0.0) + 0.5).abs() < 1e-12);
        assert!((s.measure(f64::INFINITY) + 0.5).abs() < 1e-12);

        let mut noisy = CurrentSensor::new(0.0, 0.0, 0.2, SimRng::stream(1, "sensor"));
        let n = 20_000;
        let samples: Vec<f64> = (0..n).map(|_| noisy.measure(5.0)).collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!((mean - 5.0).abs() < 0.01);
        assert!((var.sqrt() - 0.2).abs() < 0.01);
        let mut again = CurrentSensor::new(0.0, 0.0, 0.2, SimRng::stream(1, "sensor"));
        assert_eq!(again.measure(5.0), samples[0]);
    }
}
