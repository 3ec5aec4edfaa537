//! The latest value of every measured quantity, with its sample time, and the one-pass summary
//! the rules are evaluated on.

mod frozen;

pub(crate) use frozen::Conditions;

use crate::config::{Config, MAX_CELLS, MAX_TEMPERATURES};
use crate::input::ContactorId;
use crate::time::{Duration, Instant};
use crate::units::{DeciCelsius, MilliAmps, MilliVolts};

/// A value and when it was sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample<T> {
    /// The value.
    pub value: T,
    /// When it was sampled.
    pub at: Instant,
}

/// What happened to a sample offered to the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Accept {
    Stored,
    /// Older than the value already stored: ignored, so nothing stored is lost.
    OutOfOrder,
}

/// Stores `value` unless it is older than what is stored.
fn offer<T>(slot: &mut Option<Sample<T>>, value: T, at: Instant) -> Accept {
    match slot {
        Some(old) if at < old.at => Accept::OutOfOrder,
        _ => {
            *slot = Some(Sample { value, at });
            Accept::Stored
        }
    }
}

/// The latest measurements.
#[derive(Clone, Debug)]
pub(crate) struct Measurements {
    pub cells: [Option<Sample<MilliVolts>>; MAX_CELLS],
    pub temperatures: [Option<Sample<DeciCelsius>>; MAX_TEMPERATURES],
    pub current: Option<Sample<MilliAmps>>,
    pub pack: Option<Sample<MilliVolts>>,
    pub bus: Option<Sample<MilliVolts>>,
    pub feedback: [Option<Sample<bool>>; 3],
    pub hardware_fault: Option<Sample<bool>>,
    /// Which cell readings have stopped following their cells (see [`frozen`]).
    frozen: frozen::Frozen,
}

/// An extreme value with where and when it was seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extreme {
    /// The value in its unit.
    pub value: i32,
    /// Cell or sensor index.
    pub index: u16,
    /// When it was sampled.
    pub at: Instant,
}

/// One pass over the stored measurements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Summary {
    /// Highest cell voltage.
    pub cell_max: Option<Extreme>,
    /// Lowest cell voltage.
    pub cell_min: Option<Extreme>,
    /// Sum of all cell voltages, when every cell has been received.
    pub cell_sum_mv: Option<i64>,
    /// Mean cell voltage (rounded down), when every cell has been received.
    pub cell_mean_mv: Option<i32>,
    /// First cell never received, if any.
    pub cell_missing: Option<u16>,
    /// The cell with the oldest sample (value = age in ms). A frozen reading counts as sampled
    /// when it last moved.
    pub cell_oldest: Option<Extreme>,
    /// First cell whose reading is frozen (arrives on time but no longer moves while current
    /// flows and the other cells move), if any.
    pub cell_frozen: Option<u16>,
    /// Highest temperature.
    pub temperature_max: Option<Extreme>,
    /// Lowest temperature.
    pub temperature_min: Option<Extreme>,
    /// First temperature sensor never received, if any.
    pub temperature_missing: Option<u16>,
    /// The sensor with the oldest sample (value = age in ms).
    pub temperature_oldest: Option<Extreme>,
}

impl Measurements {
    pub const fn new() -> Self {
        Measurements {
            cells: [None; MAX_CELLS],
            temperatures: [None; MAX_TEMPERATURES],
            current: None,
            pack: None,
            bus: None,
            feedback: [None; 3],
            hardware_fault: None,
            frozen: frozen::Frozen::new(),
        }
    }

    /// Looks for frozen cell readings among the samples that arrived since the last call.
    pub fn track_frozen(&mut self, config: &Config, conditions: Conditions) {
        self.frozen.update(config, &self.cells, conditions);
    }

    /// Stores `values` for cells `first..`; returns (stored, rejected) counts. Rejected values
    /// lie beyond the configured count or are older than the stored value.
    pub fn store_cells(
        &mut self,
        count: u16,
        first: u16,
        values: &[MilliVolts],
        at: Instant,
    ) -> (u32, u32) {
        store_block(&mut self.cells[..usize::from(count)], first, values, at)
    }

    pub fn store_temperatures(
        &mut self,
        count: u16,
        first: u16,
        values: &[DeciCelsius],
        at: Instant,
    ) -> (u32, u32) {
        store_block(&mut self.temperatures[..usize::from(count)], first, values, at)
    }

    pub fn store_current(&mut self, value: MilliAmps, at: Instant) -> Accept {
        offer(&mut self.current, value, at)
    }

    pub fn store_pack(&mut self, value: MilliVolts, at: Instant) -> Accept {
        offer(&mut self.pack, value, at)
    }

    pub fn store_bus(&mut self, value: MilliVolts, at: Instant) -> Accept {
        offer(&mut self.bus, value, at)
    }

    pub fn store_feedback(&mut self, which: ContactorId, closed: bool, at: Instant) -> Accept {
        offer(&mut self.feedback[which.index()], closed, at)
    }

    pub fn store_hardware_fault(&mut self, active: bool, at: Instant) -> Accept {
        offer(&mut self.hardware_fault, active, at)
    }

    /// One pass over cells and temperatures.
    pub fn summarize(&self, config: &Config, now: Instant) -> Summary {
        let mut s = Summary::default();
        let cells = &self.cells[..usize::from(config.cell_count)];
        // A frozen reading counts as sampled when it last moved; only its age changes, the
        // value is still the one the rules compare. Most passes have no frozen reading, and
        // then the per-cell question is skipped.
        let any_frozen = self.frozen.any();
        let found = scan(cells, now, |i, sample| {
            if any_frozen && self.frozen.is_frozen(i) {
                s.cell_frozen.get_or_insert(i as u16); // i < MAX_CELLS, which fits in u16
                self.frozen.effective_at(i, sample)
            } else {
                sample.at
            }
        });
        (s.cell_max, s.cell_min, s.cell_oldest, s.cell_missing) =
            (found.max, found.min, found.oldest, found.missing);
        if s.cell_missing.is_none() {
            s.cell_sum_mv = Some(found.sum);
            // The mean of i32 values fits in an i32; the count is at least 1 (validated).
            s.cell_mean_mv = Some(found.sum.div_euclid(i64::from(config.cell_count.max(1))) as i32);
        }
        let temperatures = &self.temperatures[..usize::from(config.temperature_count)];
        let found = scan(temperatures, now, |_, sample| sample.at);
        (s.temperature_max, s.temperature_min, s.temperature_oldest, s.temperature_missing) =
            (found.max, found.min, found.oldest, found.missing);
        s
    }

    /// The value of `slot` if it is younger than `limit` at `now`.
    pub fn fresh<T: Copy>(slot: Option<Sample<T>>, now: Instant, limit: Duration) -> Option<T> {
        slot.filter(|s| now.saturating_since(s.at) < limit).map(|s| s.value)
    }
}

/// Stores `values` into `slots[first..]`; returns (stored, rejected). The loop runs over the
/// slots only (at most `MAX_CELLS`), whatever the length of `values`: values beyond the last
/// slot are counted as rejected without being looked at.
fn store_block<T: Copy>(
    slots: &mut [Option<Sample<T>>],
    first: u16,
    values: &[T],
    at: Instant,
) -> (u32, u32) {
    let targets = slots.get_mut(usize::from(first)..).unwrap_or_default();
    let mut stored: u32 = 0;
    for (slot, value) in targets.iter_mut().zip(values) {
        if offer(slot, *value, at) == Accept::Stored {
            stored += 1;
        }
    }
    let total = u32::try_from(values.len()).unwrap_or(u32::MAX);
    (stored, total.saturating_sub(stored))
}

/// What one pass over a block of samples found.
struct Scan {
    /// Highest and lowest value: the first sample holding it.
    max: Option<Extreme>,
    min: Option<Extreme>,
    /// The sample counting as the oldest (value = age in ms): the first one of that time.
    oldest: Option<Extreme>,
    /// First slot never received.
    missing: Option<u16>,
    /// Sum of the values received.
    sum: i64,
}

/// One pass over `slots`: extremes, oldest, first missing slot and sum. `counted_at` gives the
/// time a sample counts as sampled at (its own, or earlier); the oldest is the first slot with
/// the earliest such time. The comparisons are done on plain values and the `Extreme`s built
/// once at the end.
fn scan<T: Copy + Into<i32>>(
    slots: &[Option<Sample<T>>],
    now: Instant,
    mut counted_at: impl FnMut(usize, &Sample<T>) -> Instant,
) -> Scan {
    let mut missing = None;
    let mut slots = slots.iter().enumerate();
    // The first sample received starts every figure; the loop after it needs no `Option`.
    let (mut max, mut min, mut oldest, mut sum) = loop {
        match slots.next() {
            None => return Scan { max: None, min: None, oldest: None, missing, sum: 0 },
            Some((i, None)) => {
                missing.get_or_insert(i as u16); // i < MAX_CELLS, which fits in u16
            }
            Some((i, Some(sample))) => {
                let value: i32 = sample.value.into();
                let at = counted_at(i, sample);
                break ((value, i, sample.at), (value, i, sample.at), (at, i), i64::from(value));
            }
        }
    };
    for (i, slot) in slots {
        let Some(sample) = slot else {
            missing.get_or_insert(i as u16);
            continue;
        };
        let value: i32 = sample.value.into();
        sum += i64::from(value);
        if value > max.0 {
            max = (value, i, sample.at);
        }
        if value < min.0 {
            min = (value, i, sample.at);
        }
        let at = counted_at(i, sample);
        if at < oldest.0 {
            oldest = (at, i);
        }
    }
    let extreme =
        |(value, index, at): (i32, usize, Instant)| Extreme { value, index: index as u16, at };
    let age_ms = now.saturating_since(oldest.0).as_millis().min(i32::MAX as u64) as i32;
    Scan {
        max: Some(extreme(max)),
        min: Some(extreme(min)),
        oldest: Some(extreme((age_ms, oldest.1, oldest.0))),
        missing,
        sum,
    }
}

impl From<MilliVolts> for i32 {
    fn from(v: MilliVolts) -> i32 {
        v.0
    }
}

impl From<DeciCelsius> for i32 {
    fn from(v: DeciCelsius) -> i32 {
        v.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary's extremes as they were found before the pass was reworked: the oracle.
    fn old_track<T: Copy + Into<i32>>(
        max: &mut Option<Extreme>,
        min: &mut Option<Extreme>,
        oldest: &mut Option<Extreme>,
        sample: &Sample<T>,
        index: u16,
        now: Instant,
    ) {
        let value: i32 = sample.value.into();
        let this = Extreme { value, index, at: sample.at };
        if max.is_none_or(|m| value > m.value) {
            *max = Some(this);
        }
        if min.is_none_or(|m| value < m.value) {
            *min = Some(this);
        }
        if oldest.is_none_or(|o| sample.at < o.at) {
            let age_ms = now.saturating_since(sample.at).as_millis();
            *oldest = Some(Extreme { value: age_ms.min(i32::MAX as u64) as i32, ..this });
        }
    }

    /// The summary as it was computed before: the oracle.
    fn old_summarize(m: &Measurements, config: &Config, now: Instant) -> Summary {
        let mut s = Summary::default();
        let mut sum: i64 = 0;
        for (i, slot) in m.cells[..usize::from(config.cell_count)].iter().enumerate() {
            let index = i as u16;
            let Some(sample) = slot else {
                s.cell_missing.get_or_insert(index);
                continue;
            };
            sum += i64::from(sample.value.0);
            old_track(&mut s.cell_max, &mut s.cell_min, &mut s.cell_oldest, sample, index, now);
            if m.frozen.is_frozen(i) {
                s.cell_frozen.get_or_insert(index);
                let at = m.frozen.effective_at(i, sample);
                if s.cell_oldest.is_none_or(|o| at < o.at) {
                    let age_ms = now.saturating_since(at).as_millis().min(i32::MAX as u64) as i32;
                    s.cell_oldest = Some(Extreme { value: age_ms, index, at });
                }
            }
        }
        if s.cell_missing.is_none() {
            s.cell_sum_mv = Some(sum);
            s.cell_mean_mv = Some(sum.div_euclid(i64::from(config.cell_count.max(1))) as i32);
        }
        for (i, slot) in m.temperatures[..usize::from(config.temperature_count)].iter().enumerate()
        {
            let Some(sample) = slot else {
                s.temperature_missing.get_or_insert(i as u16);
                continue;
            };
            old_track(
                &mut s.temperature_max,
                &mut s.temperature_min,
                &mut s.temperature_oldest,
                sample,
                i as u16,
                now,
            );
        }
        s
    }

    type Reading = Option<(i32, u64)>;

    proptest::proptest! {
        #[test]
        fn summary_equals_the_old_pass(
            // Few distinct values and times, so that ties (first one wins) are common.
            cells in proptest::collection::vec(
                proptest::option::weighted(0.9, (3_000i32..3_004, 0u64..5)), 1..=MAX_CELLS),
            temperatures in proptest::collection::vec(
                proptest::option::weighted(0.9, (-40i32..-37, 0u64..5)), 1..=MAX_TEMPERATURES),
            frozen in proptest::collection::vec((0..MAX_CELLS, 0u64..6), 0..4),
            wild in proptest::option::of((0..MAX_CELLS, proptest::num::i32::ANY)),
            now_ms in 0u64..8,
        ) {
            let config = Config::tesla_model_s(16);
            let mut m = Measurements::new();
            let slot = |r: &Reading| r.map(|(v, ms)| (v, Instant::from_micros(ms * 1_000)));
            for (i, r) in cells.iter().enumerate() {
                m.cells[i] = slot(r).map(|(v, at)| Sample { value: MilliVolts(v), at });
            }
            if let Some((i, v)) = wild {
                m.cells[i] = Some(Sample { value: MilliVolts(v), at: Instant::from_micros(0) });
            }
            for (i, r) in temperatures.iter().enumerate() {
                m.temperatures[i] = slot(r).map(|(v, at)| Sample { value: DeciCelsius(v), at });
            }
            for (i, ms) in frozen {
                m.frozen.force(i, Instant::from_micros(ms * 1_000));
            }
            let mut config = config;
            config.cell_count = cells.len() as u16;
            config.temperature_count = temperatures.len() as u16;
            let now = Instant::from_micros(now_ms * 1_000);
            proptest::prop_assert_eq!(m.summarize(&config, now), old_summarize(&m, &config, now));
        }
    }
}
