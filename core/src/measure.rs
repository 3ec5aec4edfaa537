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
        let mut sum: i64 = 0;
        for (i, slot) in self.cells[..usize::from(config.cell_count)].iter().enumerate() {
            let index = i as u16; // i < MAX_CELLS, which fits in u16
            let Some(sample) = slot else {
                s.cell_missing.get_or_insert(index);
                continue;
            };
            sum += i64::from(sample.value.0);
            track(&mut s.cell_max, &mut s.cell_min, &mut s.cell_oldest, sample, index, now);
            if self.frozen.is_frozen(i) {
                s.cell_frozen.get_or_insert(index);
                // Only the age changes: the value is still the one the rules compare.
                let at = self.frozen.effective_at(i, sample);
                if s.cell_oldest.is_none_or(|o| at < o.at) {
                    let age_ms = now.saturating_since(at).as_millis().min(i32::MAX as u64) as i32;
                    s.cell_oldest = Some(Extreme { value: age_ms, index, at });
                }
            }
        }
        if s.cell_missing.is_none() {
            s.cell_sum_mv = Some(sum);
            // The mean of i32 values fits in an i32; the count is at least 1 (validated).
            s.cell_mean_mv = Some(sum.div_euclid(i64::from(config.cell_count.max(1))) as i32);
        }
        for (i, slot) in
            self.temperatures[..usize::from(config.temperature_count)].iter().enumerate()
        {
            let index = i as u16; // i < MAX_TEMPERATURES
            let Some(sample) = slot else {
                s.temperature_missing.get_or_insert(index);
                continue;
            };
            track(
                &mut s.temperature_max,
                &mut s.temperature_min,
                &mut s.temperature_oldest,
                sample,
                index,
                now,
            );
        }
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

/// Updates max/min/oldest with one sample.
fn track<T: Copy + Into<i32>>(
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
