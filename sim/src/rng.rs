//! Seeded randomness. Every random choice in a run comes from the scenario seed, through one
//! stream per component, so adding noise to one sensor does not shift the numbers another
//! component draws.

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A deterministic random stream.
#[derive(Clone, Debug)]
pub struct SimRng(Xoshiro256PlusPlus);

impl SimRng {
    /// The stream named `component` of the run seeded with `seed`.
    pub fn stream(seed: u64, component: &str) -> SimRng {
        // FNV-1a of the component name, mixed into the seed: stable across platforms and
        // releases, unlike `std::hash`.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in component.bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        SimRng(Xoshiro256PlusPlus::seed_from_u64(seed ^ hash))
    }

    /// A standard normal draw (mean 0, standard deviation 1).
    pub fn normal(&mut self) -> f64 {
        StandardNormal.sample(&mut self.0)
    }

    /// A normal draw with standard deviation `sigma`, clipped to three sigma so that one unlucky
    /// draw cannot produce a cell with negative capacity.
    pub fn normal_clipped(&mut self, sigma: f64) -> f64 {
        (self.normal() * sigma).clamp(-3.0 * sigma.abs(), 3.0 * sigma.abs())
    }

    /// A uniform draw in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        self.0.random::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn streams_repeat_and_differ() {
        let a: Vec<f64> = (0..4).map(|_| SimRng::stream(7, "cells").unit()).collect();
        let mut s = SimRng::stream(7, "cells");
        let b: Vec<f64> = (0..4).map(|_| s.unit()).collect();
        assert!(a.iter().all(|x| *x == a[0]), "a fresh stream starts at the same point");
        assert_eq!(a[0], b[0]);
        assert_ne!(b[0], b[1]);
        assert_ne!(SimRng::stream(7, "cells").unit(), SimRng::stream(7, "current").unit());
        assert_ne!(SimRng::stream(7, "cells").unit(), SimRng::stream(8, "cells").unit());
    }

    #[test]
    fn clipped_normal_stays_within_three_sigma() {
        let mut s = SimRng::stream(1, "clip");
        for _ in 0..10_000 {
            let x = s.normal_clipped(2.0);
            assert!((-6.0..=6.0).contains(&x));
        }
    }
}
