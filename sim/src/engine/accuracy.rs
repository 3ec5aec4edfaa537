//! How well the core's state of charge and capacity estimates follow the plant's truth: the
//! figures of the report's SoC lines ([`SocAccuracy`]).
//!
//! The truth is the plant's mean cell SoC (on the scale of its OCV table) and its mean group
//! capacity; the estimate is the core's [`SocStatus::soc_ppm`] (on the same scale, see
//! `cellwarden_core::soc`) and its learned capacity. One sample per measurement cycle, so the
//! RMS is time-weighted.

use cellwarden_core::Duration;
use cellwarden_core::soc::SocStatus;

pub use crate::report::{CONVERGED_PCT, LFP_PLATEAU_PCT};
use crate::report::{ErrorFigures, SocAccuracy};

/// When the learned capacity is compared a second time.
pub const CAPACITY_CHECK_AT: Duration = Duration::from_secs(10 * 86_400);

/// Running sums for one set of error figures.
#[derive(Clone, Copy, Debug, Default)]
struct Errors {
    sum_sq: f64,
    samples: u64,
    max: f64,
    max_at: Duration,
}

impl Errors {
    fn add(&mut self, at: Duration, error: f64) {
        self.sum_sq += error * error;
        self.samples += 1;
        if error.abs() > self.max.abs() || self.samples == 1 {
            self.max = error;
            self.max_at = at;
        }
    }

    fn figures(&self) -> Option<ErrorFigures> {
        (self.samples > 0).then(|| ErrorFigures {
            rms_pct: (self.sum_sq / self.samples as f64).sqrt(),
            max_pct: self.max,
            max_at: self.max_at,
            samples: self.samples,
        })
    }
}

/// Collects [`SocAccuracy`] during a run.
#[derive(Debug)]
pub struct Accuracy {
    lfp: bool,
    /// When the first estimate came, the estimate and the truth then, %.
    start: Option<(Duration, f64, f64)>,
    /// The first sample within [`CONVERGED_PCT`] after the last one outside it.
    settled_at: Option<Duration>,
    /// Every sample from the first one within [`CONVERGED_PCT`] on.
    after_settling: Errors,
    /// Every sample, from the first.
    all: Errors,
    plateau: Errors,
    capacity_at_check: Option<f64>,
    last: Option<(f64, f64, u32)>,
    resistance: (f64, f64, u32),
}

impl Accuracy {
    /// For a pack of this chemistry.
    pub fn new(lfp: bool) -> Accuracy {
        Accuracy {
            lfp,
            start: None,
            settled_at: None,
            after_settling: Errors::default(),
            all: Errors::default(),
            plateau: Errors::default(),
            capacity_at_check: None,
            last: None,
            resistance: (0.0, 0.0, 0),
        }
    }

    /// One comparison at `at`: the core's estimate against the true mean SoC (fraction), the
    /// true mean group capacity (Ah) and the true mean group series resistance at 25 °C (µΩ).
    pub fn sample(
        &mut self,
        at: Duration,
        soc: &SocStatus,
        true_soc: f64,
        true_ah: f64,
        true_r0_uohm: f64,
    ) {
        let estimate_pct = f64::from(soc.soc_ppm) / 1e4;
        let true_pct = true_soc * 100.0;
        let error = estimate_pct - true_pct;
        self.start.get_or_insert((at, estimate_pct, true_pct));
        self.all.add(at, error);
        if error.abs() <= CONVERGED_PCT {
            if self.settled_at.is_none() {
                self.settled_at = Some(at);
            }
        } else {
            self.settled_at = None;
        }
        if self.after_settling.samples > 0 || error.abs() <= CONVERGED_PCT {
            self.after_settling.add(at, error);
        }
        if self.lfp && (LFP_PLATEAU_PCT.0..=LFP_PLATEAU_PCT.1).contains(&true_pct) {
            self.plateau.add(at, error);
        }
        let learned_ah = f64::from(soc.capacity_mah) / 1000.0;
        if at >= CAPACITY_CHECK_AT && self.capacity_at_check.is_none() {
            self.capacity_at_check = Some(relative_pct(learned_ah, true_ah));
        }
        self.last = Some((learned_ah, true_ah, soc.capacity_samples));
        self.resistance = (f64::from(soc.resistance_uohm), true_r0_uohm, soc.resistance_samples);
    }

    /// The figures, if the estimator ever ran.
    pub fn finish(self) -> Option<SocAccuracy> {
        let (start_at, start_estimate_pct, start_true_pct) = self.start?;
        let (learned_ah, true_ah, capacity_samples) = self.last?;
        Some(SocAccuracy {
            lfp: self.lfp,
            start_at,
            start_estimate_pct,
            start_true_pct,
            start_error_pct: start_estimate_pct - start_true_pct,
            settled_at: self.settled_at,
            all: self.all.figures()?,
            after_settling: self.after_settling.figures(),
            plateau: self.plateau.figures(),
            capacity_learned_ah: learned_ah,
            capacity_true_ah: true_ah,
            capacity_samples,
            capacity_error_at_check_pct: self.capacity_at_check,
            resistance_learned_uohm: self.resistance.0,
            resistance_true_uohm: self.resistance.1,
            resistance_samples: self.resistance.2,
        })
    }
}

/// `value` against `truth`, percent.
fn relative_pct(value: f64, truth: f64) -> f64 {
    if truth > 0.0 { (value / truth - 1.0) * 100.0 } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwarden_core::Permille;

    fn status(soc_ppm: u32, capacity_mah: u32) -> SocStatus {
        let mut s = SocStatus {
            soc: Permille((soc_ppm / 1000) as u16),
            soc_ppm,
            usable: Permille(0),
            confidence: Permille(0),
            sigma_ppm: 0,
            capacity_mah,
            capacity_confidence: Permille(0),
            capacity_samples: 0,
            resistance_uohm: 0,
            resistance_samples: 0,
            offset_ma: cellwarden_core::MilliAmps(0),
            rc_uv: 0,
            last_anchor: None,
            resting_since: None,
            counters: Default::default(),
        };
        s.capacity_samples = 1;
        s
    }

    #[test]
    fn a_wrong_start_settles_and_the_figures_after_it_exclude_the_start() {
        let mut a = Accuracy::new(false);
        let secs = Duration::from_secs;
        // 20 points off, then 5, then 1 and -2: settled at the third sample.
        for (t, ppm) in [(0, 700_000), (60, 550_000), (120, 510_000), (180, 480_000)] {
            a.sample(secs(t), &status(ppm, 230_000), 0.5, 233.0, 420.0);
        }
        let f = a.finish().expect("figures");
        assert!((f.start_error_pct - 20.0).abs() < 1e-9);
        assert!((f.start_estimate_pct - 70.0).abs() < 1e-9);
        assert!((f.start_true_pct - 50.0).abs() < 1e-9);
        assert_eq!(f.settled_at, Some(secs(120)));
        assert!((f.all.max_pct - 20.0).abs() < 1e-9);
        let after = f.after_settling.expect("settled");
        assert_eq!(after.samples, 2);
        assert!((after.max_pct + 2.0).abs() < 1e-9, "{after:?}");
        assert!((after.rms_pct - (2.5f64).sqrt()).abs() < 1e-9);
        assert!((f.capacity_learned_ah - 230.0).abs() < 1e-9);
        assert_eq!(f.capacity_error_at_check_pct, None);
        assert_eq!(f.plateau, None, "NCA has no plateau figures");
    }

    #[test]
    fn leaving_the_band_unsettles_and_lfp_reports_its_plateau() {
        let mut a = Accuracy::new(true);
        let secs = Duration::from_secs;
        a.sample(secs(0), &status(500_000, 100_000), 0.5, 100.0, 500.0);
        a.sample(secs(1), &status(560_000, 100_000), 0.5, 100.0, 500.0);
        assert_eq!(a.settled_at, None);
        a.sample(CAPACITY_CHECK_AT, &status(990_000, 97_000), 0.98, 100.0, 500.0);
        let f = a.finish().expect("figures");
        assert_eq!(f.settled_at, Some(CAPACITY_CHECK_AT));
        let plateau = f.plateau.expect("plateau");
        assert_eq!(plateau.samples, 2, "98 % is above the plateau");
        assert!((f.capacity_error_at_check_pct.expect("checked") + 3.0).abs() < 1e-9);
    }
}
