//! The bq76PL536A's hardware protector: per-cell over- and under-voltage comparators and two
//! over-temperature comparators, each with its own qualification delay, configured by the
//! group-3 registers (`shared/protocols.md` §1.6, §1.9.6).
//!
//! A comparator trips once its condition has held continuously for at least its delay, and
//! stays tripped while the condition holds. The emulator samples the conditions whenever the
//! ring is observed with inputs that changed since the last sample (sampling the same inputs
//! again cannot change a comparator before its delay ends), so a condition that comes and goes
//! between two observations is missed, as it would be by a comparator with a slower filter;
//! [`Protector::next_deadline`] lets a caller observe exactly when a pending delay ends.

use cellwarden_core::proto::tesla::regs;
use cellwarden_core::{Duration, Instant};

/// The comparators of one board.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Protector {
    cov: [Channel; regs::CELLS],
    cuv: [Channel; regs::CELLS],
    ot: [Channel; regs::THERMISTORS],
}

/// Which comparators are tripped now: bit k of `cov`/`cuv` is cell k + 1, bit k of `ot` is
/// TS k + 1 (the layouts of COV_FAULT, CUV_FAULT and ALERT_STATUS.OT1/OT2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Trips {
    pub cov: u8,
    pub cuv: u8,
    pub ot: u8,
}

/// The thresholds and delays the group-3 registers select, decoded once per change of the
/// registers rather than at every sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Settings {
    cov_v: Option<f64>,
    cov_delay: Duration,
    cuv_v: Option<f64>,
    cuv_delay: Duration,
    ot_c: [Option<f64>; regs::THERMISTORS],
    ot_delay: Duration,
}

impl Settings {
    /// The settings in `file` (a board's register file).
    pub fn new(file: &[u8; regs::REGISTER_COUNT]) -> Settings {
        let config_ot = file[usize::from(regs::CONFIG_OT)];
        Settings {
            cov_v: cov_threshold_v(file[usize::from(regs::CONFIG_COV)]),
            cov_delay: voltage_delay(file[usize::from(regs::CONFIG_COVT)]),
            cuv_v: cuv_threshold_v(file[usize::from(regs::CONFIG_CUV)]),
            cuv_delay: voltage_delay(file[usize::from(regs::CONFIG_CUVT)]),
            ot_c: core::array::from_fn(|k| ot_threshold_c((config_ot >> (4 * k)) & 0x0F)),
            ot_delay: ot_delay(file[usize::from(regs::CONFIG_OTT)]),
        }
    }
}

impl Protector {
    /// Updates every comparator with the conditions at `now` and the thresholds in `settings`;
    /// returns which are tripped.
    pub fn evaluate(
        &mut self,
        now: Instant,
        settings: &Settings,
        cells_v: &[f64; regs::CELLS],
        temps_c: &[f64; regs::THERMISTORS],
    ) -> Trips {
        let mut trips = Trips::default();
        for (k, &v) in cells_v.iter().enumerate() {
            let over = settings.cov_v.is_some_and(|limit| v > limit);
            let under = settings.cuv_v.is_some_and(|limit| v < limit);
            trips.cov |= u8::from(self.cov[k].update(now, over, settings.cov_delay)) << k;
            trips.cuv |= u8::from(self.cuv[k].update(now, under, settings.cuv_delay)) << k;
        }
        for (k, &t) in temps_c.iter().enumerate() {
            let hot = settings.ot_c[k].is_some_and(|limit| t > limit);
            trips.ot |= u8::from(self.ot[k].update(now, hot, settings.ot_delay)) << k;
        }
        trips
    }

    /// The earliest instant at which a comparator whose condition holds now will trip, if its
    /// condition still holds then.
    pub fn next_deadline(&self, settings: &Settings) -> Option<Instant> {
        let cov = self.cov.iter().filter_map(|c| c.deadline(settings.cov_delay));
        let cuv = self.cuv.iter().filter_map(|c| c.deadline(settings.cuv_delay));
        let ot = self.ot.iter().filter_map(|c| c.deadline(settings.ot_delay));
        cov.chain(cuv).chain(ot).min()
    }
}

/// The COV threshold CONFIG_COV selects, V: 2.000 V + 50 mV × bits 5..0; bit 7 disables.
pub(super) fn cov_threshold_v(config: u8) -> Option<f64> {
    (config & 0x80 == 0).then(|| 2.0 + 0.05 * f64::from(config & 0x3F))
}

/// The CUV threshold CONFIG_CUV selects, V: 0.700 V + 100 mV × bits 4..0; bit 7 disables.
/// Some documents give bits 5..0; no master writes a code above 31, so the two readings agree
/// on everything the masters send.
pub(super) fn cuv_threshold_v(config: u8) -> Option<f64> {
    (config & 0x80 == 0).then(|| 0.7 + 0.1 * f64::from(config & 0x1F))
}

/// The delay CONFIG_COVT or CONFIG_CUVT selects: bits 4..0 × 100 units, the units ms when bit
/// 7 is set, else µs.
pub(super) fn voltage_delay(config: u8) -> Duration {
    let unit_us = if config & 0x80 != 0 { 1_000 } else { 1 };
    Duration::from_micros(u64::from(config & 0x1F) * 100 * unit_us)
}

/// The over-temperature threshold of one CONFIG_OT nibble, °C: 35 + 5 × code; 0 disables.
pub(super) fn ot_threshold_c(code: u8) -> Option<f64> {
    (code != 0).then(|| 35.0 + 5.0 * f64::from(code))
}

/// The over-temperature delay CONFIG_OTT selects: 10 ms units.
pub(super) fn ot_delay(config: u8) -> Duration {
    Duration::from_millis(u64::from(config) * 10)
}

/// One comparator and its qualification timer.
#[derive(Clone, Copy, Debug, Default)]
struct Channel {
    /// When the condition was first seen holding, since it last did not.
    since: Option<Instant>,
    tripped: bool,
}

impl Channel {
    /// Feeds the condition at `now`; returns whether the comparator is tripped.
    fn update(&mut self, now: Instant, holds: bool, delay: Duration) -> bool {
        if !holds {
            *self = Channel::default();
            return false;
        }
        let since = *self.since.get_or_insert(now);
        if now.saturating_since(since) >= delay {
            self.tripped = true;
        }
        self.tripped
    }

    /// When a holding, not yet tripped comparator trips.
    fn deadline(&self, delay: Duration) -> Option<Instant> {
        match self.since {
            Some(since) if !self.tripped => Some(since.saturating_add(delay)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tesla_reset_setpoints_decode_as_documented() {
        let [_, _, cov, covt, cuv, cuvt, ot, ott] = regs::GROUP3_RESET;
        assert!((cov_threshold_v(cov).unwrap() - 4.45).abs() < 1e-9);
        assert!((cuv_threshold_v(cuv).unwrap() - 1.50).abs() < 1e-9);
        assert_eq!(voltage_delay(covt), Duration::from_millis(100));
        assert_eq!(voltage_delay(cuvt), Duration::from_millis(100));
        assert_eq!(ot_threshold_c(ot & 0x0F), Some(65.0));
        assert_eq!(ot_threshold_c(ot >> 4), Some(65.0));
        assert_eq!(ot_delay(ott), Duration::from_millis(2550));
        assert_eq!(cov_threshold_v(0x80 | 0x31), None);
        assert_eq!(voltage_delay(0x05), Duration::from_micros(500));
    }

    #[test]
    fn a_comparator_trips_after_its_delay_and_rearms_when_the_condition_goes() {
        let mut file = [0u8; regs::REGISTER_COUNT];
        file[0x40..0x48].copy_from_slice(&regs::GROUP3_RESET);
        let file = Settings::new(&file);
        let mut p = Protector::default();
        let temps = [25.0; 2];
        let mut cells = [3.7; 6];
        cells[2] = 4.5;
        let t0 = Instant::from_secs(1);
        assert_eq!(p.evaluate(t0, &file, &cells, &temps), Trips::default());
        assert_eq!(p.next_deadline(&file), Some(Instant::from_millis(1100)));
        let early = Instant::from_micros(1_099_999);
        assert_eq!(p.evaluate(early, &file, &cells, &temps).cov, 0);
        let due = Instant::from_millis(1100);
        assert_eq!(p.evaluate(due, &file, &cells, &temps).cov, 0b100);
        assert_eq!(p.next_deadline(&file), None);
        cells[2] = 4.0;
        assert_eq!(p.evaluate(Instant::from_millis(1200), &file, &cells, &temps).cov, 0);
    }
}
