//! Frozen cell readings: samples that keep arriving on time but no longer follow the cell.
//!
//! A module board whose converter stops converting still answers every read, with a correct
//! CRC, and the adapter stamps each reply with a new sample time: the values look fresh and are
//! not. A real cell reading moves: it has noise of its own, and in series with the others it
//! sees the same current, so when the typical cell of the pack has moved by several millivolts
//! it has moved by at least one. A reading is taken to be frozen when all of these hold:
//!
//! - it has arrived `freshness.frozen_samples` times in a row with exactly the same value;
//! - the median cell voltage has moved by at least `freshness.frozen_move_mv` since the
//!   reading last changed: the others move. The median, not the mean, so that a few cells
//!   running up the steep end of the curve (an LFP pack at its top knee) do not count as "the
//!   pack moved" while the rest sit on the flat plateau;
//! - current flows: its fresh magnitude is at least `freshness.frozen_current_ma`. At rest
//!   nothing has to move, so a pack at rest never freezes, however long it rests;
//! - no cell is bleeding, and none has for `balance.settle_ms`: the bleed current pulls the
//!   bleeding cells' readings (and with most cells bleeding, the median) by the drop on their
//!   sense wires, without moving the others. While it does, the reference follows the median,
//!   so only movement outside bleeding counts.
//!
//! When every cell is frozen at once (the only board of a pack, a whole front end), the median
//! is frozen with them; then the pack voltage, measured apart from the cells, stands in as the
//! reference: every reading unchanged for `frozen_samples` samples while the pack voltage has
//! moved by `frozen_move_mv` per cell freezes them all.
//!
//! A frozen reading is unknown data. It counts as sampled when it last moved, so every rule and
//! every user of the cell voltages that asks for fresh data sees it stale: the freshness rule
//! opens the contactors and latches, balancing stops, the SoC estimator stops reading the
//! voltages. It thaws at the first sample with another value; the latched fault then clears
//! on `ClearFaults` like any other staleness.

use crate::config::{Config, MAX_CELLS};
use crate::measure::Sample;
use crate::time::Instant;
use crate::units::MilliVolts;

/// What the detector remembers of one cell.
#[derive(Clone, Copy, Debug)]
struct Track {
    /// Sample time of the last sample looked at.
    seen_at: Option<Instant>,
    /// The value the reading has held since it last moved.
    mv: i32,
    /// Sample time of the first sample with that value.
    moved_at: Instant,
    /// The median cell voltage then.
    median_mv: i32,
    /// Samples in a row with that value, after the first.
    repeats: u32,
    /// Taken to be frozen; until the value changes.
    frozen: bool,
}

const UNSEEN: Track = Track {
    seen_at: None,
    mv: 0,
    moved_at: Instant::from_micros(0),
    median_mv: 0,
    repeats: 0,
    frozen: false,
};

/// The detector's state for every cell, and for the pack as a whole.
#[derive(Clone, Debug)]
pub(crate) struct Frozen {
    cells: [Track; MAX_CELLS],
    /// Cycles in a row (evaluations with a new sample of some cell) in which no cell changed.
    still_cycles: u32,
    /// The pack voltage at the first of those cycles.
    pack_mv_at_still: Option<i32>,
    /// Some cell is taken to be frozen: worked out after each update, so that the summary of
    /// every evaluation need not ask cell by cell.
    any_frozen: bool,
    /// The median cell voltage of the last update: where the next one is looked for first.
    median_mv: Option<i32>,
}

/// What the detector needs from one evaluation besides the cells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Conditions {
    /// Magnitude of the fresh current, if there is one.
    pub current_ma: Option<i32>,
    /// The latest pack voltage, if any.
    pub pack_mv: Option<i32>,
    /// Some cell is bleeding, or stopped less than the balance settle time ago.
    pub bleeding: bool,
}

impl Frozen {
    pub const fn new() -> Self {
        Frozen {
            cells: [UNSEEN; MAX_CELLS],
            still_cycles: 0,
            pack_mv_at_still: None,
            any_frozen: false,
            median_mv: None,
        }
    }

    /// The sample time a cell's reading counts as: when it last moved if it is frozen.
    pub fn effective_at(&self, index: usize, sample: &Sample<MilliVolts>) -> Instant {
        match self.cells.get(index) {
            Some(t) if t.frozen => t.moved_at.min(sample.at),
            _ => sample.at,
        }
    }

    /// Whether cell `index` is taken to be frozen.
    pub fn is_frozen(&self, index: usize) -> bool {
        self.cells.get(index).is_some_and(|t| t.frozen)
    }

    /// Marks cell `index` frozen since `moved_at`, as a long update would, for the tests of the
    /// summary.
    #[cfg(test)]
    pub fn force(&mut self, index: usize, moved_at: Instant) {
        if let Some(track) = self.cells.get_mut(index) {
            *track = Track { frozen: true, moved_at, ..*track };
            self.any_frozen = true;
        }
    }

    /// Whether any cell is taken to be frozen.
    pub fn any(&self) -> bool {
        self.any_frozen
    }

    /// Looks at every cell sample that arrived since the last call.
    pub fn update(
        &mut self,
        config: &Config,
        cells: &[Option<Sample<MilliVolts>>],
        conditions: Conditions,
    ) {
        if self.update_tracks(config, cells, conditions) {
            // Only the first `count` tracks are ever updated; the rest stay unfrozen.
            let count = usize::from(config.cell_count).min(cells.len()).min(MAX_CELLS);
            self.any_frozen = self.cells[..count].iter().any(|t| t.frozen);
        }
    }

    /// The update itself; false when it changed nothing (no new sample, no cell received).
    fn update_tracks(
        &mut self,
        config: &Config,
        cells: &[Option<Sample<MilliVolts>>],
        conditions: Conditions,
    ) -> bool {
        let count = usize::from(config.cell_count).min(cells.len()).min(MAX_CELLS);
        let cells = &cells[..count];
        let tracks = &mut self.cells[..count];
        let fresh = cells
            .iter()
            .zip(tracks.iter())
            .any(|(c, t)| c.is_some_and(|s| t.seen_at.is_none_or(|seen| s.at > seen)));
        if !fresh {
            return false;
        }
        let Some(median_mv) = median(cells, self.median_mv) else { return false };
        self.median_mv = Some(median_mv);
        let f = &config.freshness;
        let flowing = conditions.current_ma.is_some_and(|i| i >= f.frozen_current_ma.0);
        let judge = flowing && !conditions.bleeding;
        let samples = u32::from(f.frozen_samples);
        let move_mv = f.frozen_move_mv.0;
        let mut changed = false;
        for (slot, track) in cells.iter().zip(tracks.iter_mut()) {
            let Some(sample) = slot else { continue };
            if track.seen_at.is_some_and(|seen| sample.at <= seen) {
                continue;
            }
            let first = track.seen_at.is_none();
            track.seen_at = Some(sample.at);
            if first || sample.value.0 != track.mv {
                changed |= !first;
                *track = Track {
                    seen_at: track.seen_at,
                    mv: sample.value.0,
                    moved_at: sample.at,
                    median_mv,
                    repeats: 0,
                    frozen: false,
                };
                continue;
            }
            track.repeats = track.repeats.saturating_add(1);
            if conditions.bleeding {
                // A jump of the median from the sense-wire drop is no movement of the pack.
                track.median_mv = median_mv;
            }
            let others_moved = median_mv.abs_diff(track.median_mv) >= move_mv.unsigned_abs();
            if judge && track.repeats >= samples && others_moved {
                track.frozen = true;
            }
        }
        // Every reading still while the pack voltage moves: the median moves with none of
        // them, so the pack voltage is the only witness. Its reference is taken at the first
        // still cycle rather than at the last change, so that a pack sample delivered after
        // the cells of its cycle is the one compared against.
        if changed {
            self.still_cycles = 0;
            self.pack_mv_at_still = None;
            return true;
        }
        self.still_cycles = self.still_cycles.saturating_add(1);
        let Some(pack_mv) = conditions.pack_mv else { return true };
        let reference = *self.pack_mv_at_still.get_or_insert(pack_mv);
        let per_cell = i64::from(move_mv) * i64::from(config.cell_count);
        let pack_moved = i64::from(pack_mv).abs_diff(i64::from(reference)) >= per_cell as u64;
        if judge && self.still_cycles > samples && pack_moved {
            for track in tracks.iter_mut().filter(|t| t.seen_at.is_some()) {
                track.frozen = true;
            }
        }
        true
    }
}

/// The median of the cells received (the upper one of an even count), `None` when none was.
///
/// The median is the smallest value `v` with more than `n / 2` values at or below it. The pack's
/// median moves by a few millivolts from one cycle to the next, so one pass counts the values
/// below a window of [`WINDOW_MV`] around `hint` (the last median) and each value inside it;
/// adding the window's counts up from below finds the median when it lies in the window. When
/// it does not (the first cycle, a jump), the values are gathered and a selection finds it.
/// Either way the result is the same; the hint only decides how much work it takes.
fn median(cells: &[Option<Sample<MilliVolts>>], hint: Option<i32>) -> Option<i32> {
    if let Some(hint) = hint {
        let low = i64::from(hint) - WINDOW_MV as i64 / 2;
        let mut window = [0u16; WINDOW_MV];
        let (mut n, mut below) = (0usize, 0usize);
        for sample in cells.iter().flatten() {
            let offset = i64::from(sample.value.0) - low;
            n += 1;
            if offset < 0 {
                below += 1;
            } else if let Some(count) = usize::try_from(offset).ok().and_then(|o| window.get_mut(o))
            {
                *count += 1;
            }
        }
        if n == 0 {
            return None;
        }
        let wanted = n / 2 + 1;
        let mut at_or_below = below;
        if at_or_below < wanted {
            for (offset, count) in window.iter().enumerate() {
                at_or_below += usize::from(*count);
                if at_or_below >= wanted {
                    // A value lies at this offset (the count grew to it), so it fits an i32.
                    return Some((low + offset as i64) as i32);
                }
            }
        }
    }
    median_by_selection(cells)
}

/// The width of the window [`median`] counts in, mV.
const WINDOW_MV: usize = 32;

/// The median by gathering the values and selecting the middle one.
fn median_by_selection(cells: &[Option<Sample<MilliVolts>>]) -> Option<i32> {
    let mut values = [0i32; MAX_CELLS];
    let mut n = 0;
    for (slot, value) in cells.iter().flatten().zip(values.iter_mut()) {
        *value = slot.value.0;
        n += 1;
    }
    if n == 0 {
        return None;
    }
    let (_, middle, _) = values[..n].select_nth_unstable(n / 2);
    Some(*middle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The median as it was found before, by sorting: the oracle.
    fn median_by_sorting(cells: &[Option<Sample<MilliVolts>>]) -> Option<i32> {
        let mut values: [i32; MAX_CELLS] = [0; MAX_CELLS];
        let mut n = 0;
        for (slot, value) in cells.iter().flatten().zip(values.iter_mut()) {
            *value = slot.value.0;
            n += 1;
        }
        values[..n].sort_unstable();
        (n > 0).then(|| values[n / 2])
    }

    const HINTS: [Option<i32>; 8] = [
        None,
        Some(i32::MIN),
        Some(i32::MAX),
        Some(3_000),
        Some(3_040),
        Some(3_070),
        Some(0),
        Some(3_100),
    ];

    fn cells(readings: &[Option<i32>]) -> [Option<Sample<MilliVolts>>; MAX_CELLS] {
        let mut cells = [None; MAX_CELLS];
        for (cell, mv) in cells.iter_mut().zip(readings) {
            *cell = mv.map(|mv| Sample { value: MilliVolts(mv), at: Instant::from_micros(7) });
        }
        cells
    }

    #[test]
    fn median_of_extremes_and_gaps() {
        for readings in [
            &[][..],
            &[None, None],
            &[Some(i32::MIN)],
            &[Some(i32::MAX), Some(i32::MIN)],
            &[Some(i32::MAX), Some(i32::MAX - 1), Some(i32::MIN), None],
            &[Some(3_700), None, Some(3_702), Some(3_701), Some(3_701)],
            &[Some(-5), Some(2_043), Some(2_044), Some(0)],
            &[Some(3_000); 5],
        ] {
            let cells = cells(readings);
            for hint in HINTS.into_iter().chain(readings.iter().flatten().map(|&mv| Some(mv))) {
                assert_eq!(
                    median(&cells, hint),
                    median_by_sorting(&cells),
                    "{readings:?} {hint:?}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn median_equals_selection(
            readings in proptest::collection::vec(
                proptest::option::weighted(0.95, 3_000i32..3_080), 0..=MAX_CELLS),
            wild in proptest::collection::vec((0..MAX_CELLS, proptest::num::i32::ANY), 0..3),
            near in 2_980i32..3_100,
        ) {
            let mut readings = readings;
            for (i, mv) in wild {
                if let Some(r) = readings.get_mut(i) {
                    *r = Some(mv);
                }
            }
            let cells = cells(&readings);
            for hint in HINTS.into_iter().chain([Some(near)]) {
                proptest::prop_assert_eq!(median(&cells, hint), median_by_sorting(&cells));
            }
        }
    }
}
