//! The filtered readings balancing decides on: the current that says whether the pack is at
//! rest, and the cell voltages that choose which cells bleed.
//!
//! A single noisy sample must not decide either. A household load of 0.8 A read through a
//! sensor with 0.2 A of noise crosses a 1 A idle threshold in about one sample out of five;
//! judged sample by sample, every crossing would stop bleeding and restart the rest after a
//! load, and a pack that rests all night would never bleed. Likewise the lowest of 96 readings
//! with 1 mV of noise is usually a cell that happened to read low, and choosing against it
//! bleeds cells that are not high.

use crate::config::{BalanceConfig, MAX_CELLS};
use crate::measure::Sample;
use crate::time::Instant;
use crate::units::{MilliAmps, MilliVolts};

/// Whether the pack rests, judged on an exponential moving average of the current's magnitude
/// with hysteresis.
///
/// The magnitude, not the signed current, is averaged: a load that swings from discharging to
/// charging, or an inverter hunting around zero, would average out to nothing in a signed
/// average and pass for rest. The average of the magnitude is never below the magnitude of the
/// signed average, so it is the more careful of the two; the noise of a sensor at zero current
/// lifts it by less than the noise itself (0.16 A for 0.2 A of noise), far below an idle current.
///
/// Each new current sample moves the average towards itself by `dt / (dt + tau)` of the
/// difference, where `dt` is the time since the previous sample (by sample time) and `tau` is
/// `balance.idle_filter_ms`: for regular samples that is a first-order low-pass filter with
/// time constant `tau`, and irregular intervals weigh each sample by the time it stands for. A
/// sample after a long gap all but replaces the average. The average is kept in microamperes,
/// so small steps are not lost to rounding; integers only, so every adapter gets the same
/// decisions.
///
/// The pack becomes idle when the average's magnitude is at most `Config::idle_current_ma`, and
/// stops being idle when it is above that plus `balance.idle_hysteresis_ma`. With a time
/// constant `tau`, a load of `L` that starts from an average `I0` leaves idle after about
/// `tau * ln((L - I0) / (L - leave))`: with the presets' 2 s and 1.5 A, a load from rest stops
/// bleeding within 1.4 s at 3 A, 0.8 s at 5 A and 0.1 s at 50 A (at 10 samples a second, a
/// load above 32 A at its first sample).
#[derive(Clone, Copy, Debug)]
pub(super) struct IdleFilter {
    /// The average in µA and the sample time of the last sample fed; `None` until the first.
    average: Option<(i64, Instant)>,
    idle: bool,
}

impl IdleFilter {
    /// No sample yet: not idle.
    pub const fn new() -> Self {
        IdleFilter { average: None, idle: false }
    }

    /// Forgets every sample: the next one starts the average afresh, and until then the pack
    /// does not count as idle. Called when the current goes stale, so a value from before a gap
    /// in the data never decides after it.
    pub fn reset(&mut self) {
        *self = IdleFilter::new();
    }

    /// Whether the pack counts as idle after the samples fed so far.
    pub const fn idle(&self) -> bool {
        self.idle
    }

    /// The average magnitude in mA (rounded down), for the unit tests.
    #[cfg(test)]
    pub fn average_ma(&self) -> Option<i64> {
        self.average.map(|(ua, _)| ua / 1000)
    }

    /// Feeds `sample` unless it is not newer than the last one fed.
    pub fn feed(&mut self, sample: Sample<MilliAmps>, b: &BalanceConfig, idle_ma: MilliAmps) {
        let x_ua = i64::from(sample.value.0.unsigned_abs()) * 1000;
        let average_ua = match self.average {
            Some((_, at)) if sample.at <= at => return,
            Some((avg_ua, at)) => {
                let dt_us = u128::from(sample.at.saturating_since(at).as_micros());
                let tau_us = u128::from(b.idle_filter_ms) * 1000;
                // The step is rounded away from zero, so a steady current is reached exactly
                // instead of stalling a few hundred µA short (a current of exactly the idle
                // current must count as idle). It is at most |x - avg|, since dt + tau > dt
                // (validation keeps tau >= 1 ms): the result lies between the old average and
                // the sample and fits an i64.
                let diff_ua = x_ua - avg_ua;
                let step = (u128::from(diff_ua.unsigned_abs()) * dt_us).div_ceil(dt_us + tau_us);
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                if diff_ua < 0 { avg_ua - step } else { avg_ua + step }
            }
            None => x_ua,
        };
        self.average = Some((average_ua, sample.at));
        // Validation keeps both settings non-negative.
        let enter_ua = u64::from(idle_ma.0.unsigned_abs()) * 1000;
        let leave_ua = enter_ua + u64::from(b.idle_hysteresis_ma.0.unsigned_abs()) * 1000;
        // Between two non-negative values, the average is non-negative.
        let magnitude_ua = average_ua.unsigned_abs();
        self.idle = if self.idle { magnitude_ua <= leave_ua } else { magnitude_ua <= enter_ua };
    }
}

/// Per cell, the mean of the clean samples since the accumulation was last cleared: the
/// readings a choice is made on.
///
/// A sample counts once (by its sample time: a cell whose reading has not changed since the last
/// update adds nothing) and only when taken at or after `clean_from`, so samples taken while
/// bleeding or before the settle time are excluded exactly as before.
#[derive(Clone, Debug)]
pub(super) struct CellMeans {
    sum_mv: [i64; MAX_CELLS],
    count: [u32; MAX_CELLS],
    /// Sample time of the last sample added, meaningful where `count > 0`.
    last_at: [Instant; MAX_CELLS],
}

impl CellMeans {
    pub const fn new() -> Self {
        CellMeans {
            sum_mv: [0; MAX_CELLS],
            count: [0; MAX_CELLS],
            last_at: [Instant::ZERO; MAX_CELLS],
        }
    }

    /// Forgets every sample.
    pub fn clear(&mut self) {
        self.sum_mv = [0; MAX_CELLS];
        self.count = [0; MAX_CELLS];
    }

    /// Adds the stored sample of every cell that is clean and not yet added.
    pub fn add(&mut self, cells: &[Option<Sample<MilliVolts>>], clean_from: Instant) {
        let slots = self.sum_mv.iter_mut().zip(&mut self.count).zip(&mut self.last_at);
        for (((sum, count), last_at), slot) in slots.zip(cells) {
            let Some(sample) = slot else { continue };
            if sample.at < clean_from || (*count > 0 && sample.at <= *last_at) {
                continue;
            }
            // At most u32::MAX samples of an i32 each: the sum cannot overflow an i64. A full
            // count stops adding, which leaves a mean of the samples already counted.
            if let Some(next) = count.checked_add(1) {
                *sum += i64::from(sample.value.0);
                *count = next;
                *last_at = sample.at;
            }
        }
    }

    /// The mean of `cell`'s clean samples in µV (rounded down), or `None` without one.
    pub fn mean_uv(&self, cell: u16) -> Option<i64> {
        let i = usize::from(cell);
        let (sum, count) = (*self.sum_mv.get(i)?, *self.count.get(i)?);
        (count > 0).then(|| (sum * 1000).div_euclid(i64::from(count)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::time::Duration;

    fn at_ms(ms: u64) -> Instant {
        Instant::ZERO + Duration::from_millis(ms)
    }

    fn amps(ma: i32, ms: u64) -> Sample<MilliAmps> {
        Sample { value: MilliAmps(ma), at: at_ms(ms) }
    }

    #[test]
    fn the_average_follows_a_step_with_the_time_constant() {
        let config = Config::tesla_model_s(2);
        let b = &config.balance;
        let mut f = IdleFilter::new();
        f.feed(amps(0, 0), b, config.idle_current_ma);
        assert!(f.idle());
        // One time constant in one step moves half way (dt / (dt + tau) = 1/2)...
        f.feed(amps(4_000, u64::from(b.idle_filter_ms)), b, config.idle_current_ma);
        assert_eq!(f.average_ma(), Some(2_000));
        assert!(!f.idle());
        // ...a sample that is not newer changes nothing...
        f.feed(amps(-50_000, u64::from(b.idle_filter_ms)), b, config.idle_current_ma);
        assert_eq!(f.average_ma(), Some(2_000));
        // ...and after a reset the first sample is the average.
        f.reset();
        assert!(!f.idle());
        f.feed(amps(-700, 10_000), b, config.idle_current_ma);
        assert_eq!(f.average_ma(), Some(700));
        assert!(f.idle());
        // A load that reverses direction is no rest on its way through zero.
        f.reset();
        f.feed(amps(-5_000, 0), b, config.idle_current_ma);
        for k in 1..=100 {
            f.feed(amps(5_000, 10 * k), b, config.idle_current_ma);
            assert!(!f.idle());
        }
        assert!(f.average_ma().is_some_and(|ma| ma >= 4_999));
    }

    #[test]
    fn extreme_values_and_gaps_do_not_overflow() {
        let config = Config::tesla_model_s(2);
        let b = &config.balance;
        let mut f = IdleFilter::new();
        f.feed(amps(i32::MIN, 0), b, config.idle_current_ma);
        f.feed(amps(i32::MAX, u64::MAX / 2_000), b, config.idle_current_ma);
        assert!(f.average_ma().is_some_and(|ma| ma > 0));
        assert!(!f.idle());
    }

    #[test]
    fn means_count_each_clean_sample_once() {
        let mut means = CellMeans::new();
        let cell = |mv: i32, ms: u64| Some(Sample { value: MilliVolts(mv), at: at_ms(ms) });
        means.add(&[cell(4_000, 500), None], at_ms(1_000)); // before clean_from
        assert_eq!(means.mean_uv(0), None);
        means.add(&[cell(4_000, 1_000)], at_ms(1_000));
        means.add(&[cell(4_000, 1_000)], at_ms(1_000)); // the same sample again
        means.add(&[cell(4_003, 1_100)], at_ms(1_000));
        assert_eq!(means.mean_uv(0), Some(4_001_500));
        assert_eq!(means.mean_uv(1), None);
        assert_eq!(means.mean_uv(u16::MAX), None);
        means.clear();
        assert_eq!(means.mean_uv(0), None);
    }
}
