//! Passive balancing: which cells bleed charge through their balancing resistors, and when.
//!
//! Balancing alternates two windows. In a *bleed window* the chosen cells bleed; in the
//! *measure window* that follows, nothing bleeds, and the next choice is made at its end from
//! cell voltages sampled at least `settle_ms` after bleeding stopped. Samples taken while bleeding
//! are never used to choose: the bleed current flows through the sense wires and pulls the
//! readings of the bleeding cell and its neighbours down, which would make every bleeding cell
//! look balanced. Sample times, not arrival times, decide what counts as a clean sample, so a
//! reading taken during a bleed window but delivered later is still ignored.
//!
//! The choice is made on each cell's mean over the clean samples of the measure window, not on
//! its latest sample: with a millivolt of noise on 96 readings, the lowest single reading is
//! usually a cell that happened to read low, and choosing against it would bleed cells that are
//! not high (see `balance/filter.rs`). A cell is chosen when its mean is above `start_mv` and
//! more than `delta_mv` above the lowest mean. A cell chosen last time stays chosen while it is
//! more than `delta_mv - hysteresis_mv` above the lowest, so a cell near the threshold does not
//! flap between windows. At most `max_cells` cells bleed at once, the highest first. A board
//! whose hottest temperature sensor is at or above `board_temperature_max_dc` bleeds nothing,
//! checked at every evaluation, not only when choosing.
//!
//! Balancing stops (nothing bleeds) while
//! - it is disabled;
//! - any cell voltage or temperature was never received or is older than its freshness limit,
//!   or, when balancing only at rest, the current is: a decision on missing data could bleed the
//!   wrong cell for a whole window;
//! - one of [`BLOCKING_RULES`] is active at its recommended tier or above (see there why these);
//! - it may only run at rest (`idle_only`) and the pack is not idle. Idle is judged on a moving
//!   average of the current's magnitude with hysteresis (see `balance/filter.rs`): the pack
//!   becomes idle when the average is at most `Config::idle_current_ma` and stops being idle
//!   above that plus `balance.idle_hysteresis_ma`, so noise on a load just under the idle
//!   current neither stops bleeding nor restarts the rest after a load. A real load still stops
//!   bleeding within a fraction of `balance.idle_filter_ms` (the presets: 3 A within 1.4 s, 5 A
//!   within 0.8 s, 50 A within 0.1 s). The raw current must be fresh as before, and the average
//!   starts afresh after it was stale.
//!
//! Every interruption restarts with a full measure window: a reading taken under load shows the
//! cells' resistances as much as their charge, so it must not choose either. After the pack was
//! not idle, the first choice waits `rest_after_load_ms` from the moment it is idle again.

mod filter;

use core::cmp::Reverse;

pub use crate::cell_mask::{CellMask, CellMaskIter};
use crate::config::Config;
use crate::measure::{Measurements, Summary};
use crate::protection::{RULE_COUNT, RuleId, RuleStatus, Tier};
use crate::sizes::MAX_CELLS;
use crate::time::{Duration, Instant};
use crate::units::MilliVolts;
use filter::{CellMeans, IdleFilter};

/// Why balancing is or is not running, in [`BalanceStatus`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BalanceState {
    /// Balancing is switched off in the configuration.
    Disabled,
    /// A cell voltage or temperature (or, when balancing only at rest, the current) was never
    /// received or is stale.
    NoData,
    /// This rule is active at its recommended tier or above; see [`BLOCKING_RULES`].
    Blocked(RuleId),
    /// Balancing only runs at rest, and current is flowing: the filtered current has left idle
    /// (or has not come back to it since it was last fresh).
    NotIdle,
    /// Nothing bleeds; waiting for the end of the measure window (and for clean samples) to
    /// choose.
    Measuring,
    /// The last choice found no cell above the start voltage.
    BelowStart,
    /// The last choice found no cell far enough above the lowest cell.
    Balanced,
    /// Every cell that should bleed is on a board that is too hot: this one is the first.
    BoardHot {
        /// Board index, from 0.
        board: u16,
    },
    /// This many cells are bleeding.
    Bleeding {
        /// How many.
        cells: u16,
    },
}

/// What balancing is doing, for telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BalanceStatus {
    /// What it is doing, or why it is not bleeding.
    pub state: BalanceState,
    /// The cells bleeding now (the last [`Action::Balance`](crate::Action::Balance) set).
    pub cells: CellMask,
    /// When `state` last changed.
    pub since: Instant,
}

/// The rules that stop balancing while active at their recommended tier or above. Each is a
/// condition that bleeding would worsen, or one under which the readings that choose the cells
/// cannot be trusted:
///
/// - `CellUnderVoltage`, `PackUnderVoltage`: the pack is at its empty end and every ampere-hour
///   counts; bleeding would spend charge that the lowest cells may need.
/// - `DischargeOverTemperature` (the outer window, which applies at all times): bleeding adds
///   heat to a pack that is already too hot. The charge window is left out: it guards lithium
///   plating while charging, not heat, and bleeding is no charge.
/// - `DischargeUnderTemperature`: genuinely this cold (−20 °C in the presets) balancing can wait,
///   and a reading this low is often a broken sensor, which would leave its board's temperature
///   limit blind.
/// - `PackVoltageMismatch`: the cells do not add up to the pack voltage, which suggests a broken
///   sense wire; a wrong reading would bleed a cell that is not high.
/// - `HardwareFault`: the analogue front end that measures and bleeds reports a fault.
///
/// Not listed on purpose: cell and pack over-voltage and cell imbalance (bleeding is the cure),
/// the under-temperature charge window (a cold garage is no reason not to balance), the current
/// rules (`idle_only` covers current), the freshness rules (freshness is checked directly, so
/// balancing resumes as soon as the data is fresh again, even while the latched fault waits for
/// `ClearFaults`) and the contactor rules (bleeding does not involve the contactors).
pub const BLOCKING_RULES: [RuleId; 6] = [
    RuleId::CellUnderVoltage,
    RuleId::PackUnderVoltage,
    RuleId::DischargeOverTemperature,
    RuleId::DischargeUnderTemperature,
    RuleId::PackVoltageMismatch,
    RuleId::HardwareFault,
];

/// The balancing policy of one pack: which cells bleed now, and why.
#[derive(Clone, Debug)]
pub(crate) struct Balancer {
    layout: Layout,
    phase: Phase,
    /// The cells bleeding now.
    cells: CellMask,
    /// The cells chosen by the last choice, for the hysteresis.
    chosen: CellMask,
    state: BalanceState,
    since: Instant,
    /// Whether the pack rests, on the filtered current.
    idle: IdleFilter,
    /// The clean cell samples of the current measure window, which the next choice is made on.
    means: CellMeans,
}

impl Balancer {
    pub fn new(config: &Config, now: Instant) -> Self {
        let state =
            if config.balance.enabled { BalanceState::NoData } else { BalanceState::Disabled };
        Balancer {
            layout: Layout::new(config),
            phase: Phase::Stopped,
            cells: CellMask::EMPTY,
            chosen: CellMask::EMPTY,
            state,
            since: now,
            idle: IdleFilter::new(),
            means: CellMeans::new(),
        }
    }

    /// The cells to bleed now.
    pub fn cells(&self) -> CellMask {
        self.cells
    }

    pub fn status(&self) -> BalanceStatus {
        BalanceStatus { state: self.state, cells: self.cells, since: self.since }
    }

    /// Feeds the current filter, advances the windows and re-checks the conditions at `now`.
    /// Cheap: every check but the choice itself works on the summary; while resting, one pass
    /// over the cells adds their new clean samples to the means; the choice is two passes over
    /// the means (and one over the sensors when one is at the board limit), at most once per
    /// window.
    pub fn update(
        &mut self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        s: &Summary,
        rules: &[RuleStatus; RULE_COUNT],
    ) {
        let fresh =
            m.current.filter(|c| now.saturating_since(c.at) < ms(config.freshness.current_ms));
        match fresh {
            Some(sample) => self.idle.feed(sample, &config.balance, config.idle_current_ma),
            None => self.idle.reset(),
        }
        if let Some(reason) = stop_reason(now, config, m, s, rules, self.idle.idle()) {
            self.cells = CellMask::EMPTY;
            self.phase = Phase::Stopped;
            self.set_state(now, reason);
            return;
        }
        let b = &config.balance;
        match self.phase {
            Phase::Stopped => {
                let after_load = self.state == BalanceState::NotIdle;
                self.rest(now, config);
                if after_load {
                    if let Phase::Resting { decide_at, .. } = &mut self.phase {
                        *decide_at = now + ms(b.rest_after_load_ms);
                    }
                }
                self.set_state(now, BalanceState::Measuring);
            }
            Phase::Bleeding { until } if now >= until => {
                self.cells = CellMask::EMPTY;
                self.rest(now, config);
                self.set_state(now, BalanceState::Measuring);
            }
            Phase::Bleeding { .. } => {
                let hot = hot_boards(config, &self.layout, m, s);
                let Some(board) = self.layout.remove_boards(&mut self.cells, &hot) else { return };
                if self.cells.is_empty() {
                    self.rest(now, config);
                    self.set_state(now, BalanceState::BoardHot { board });
                } else {
                    self.set_state(now, BalanceState::Bleeding { cells: self.cells.count() });
                }
            }
            Phase::Resting { clean_from, decide_at } => {
                self.means.add(&m.cells[..usize::from(self.layout.cell_count)], clean_from);
                // Every cell's latest sample is clean, and was added just above.
                let clean = s.cell_oldest.is_some_and(|oldest| oldest.at >= clean_from);
                if now < decide_at || !clean {
                    return;
                }
                let hot = hot_boards(config, &self.layout, m, s);
                let (state, chosen) = choose(config, &self.layout, &self.means, self.chosen, &hot);
                self.chosen = chosen;
                self.cells = chosen;
                self.phase = if chosen.is_empty() {
                    // Nothing bled, so the samples stay clean; only the next choice waits, on
                    // the means of the next window.
                    self.means.clear();
                    Phase::Resting { clean_from, decide_at: now + ms(b.measure_window_ms) }
                } else {
                    Phase::Bleeding { until: now + ms(b.bleed_window_ms) }
                };
                self.set_state(now, state);
            }
        }
    }

    /// The next moment the outcome can change without a new input: the end of the window, or a
    /// value the conditions depend on going stale (the protection's own staleness deadline
    /// stops once its fault has latched, but balancing resumes on fresh data and must notice
    /// when that goes stale again).
    pub fn next_deadline(
        &self,
        now: Instant,
        config: &Config,
        m: &Measurements,
        s: &Summary,
    ) -> Option<Instant> {
        let b = &config.balance;
        if !b.enabled {
            return None;
        }
        let f = &config.freshness;
        let expiry = |at: Option<Instant>, limit_ms: u32| at.map(|at| at + ms(limit_ms));
        let window = match self.phase {
            Phase::Stopped => None,
            Phase::Resting { decide_at, .. } => Some(decide_at),
            Phase::Bleeding { until } => Some(until),
        };
        let current =
            if b.idle_only { expiry(m.current.map(|c| c.at), f.current_ms) } else { None };
        [
            window,
            expiry(s.cell_oldest.map(|e| e.at), f.cell_voltage_ms),
            expiry(s.temperature_oldest.map(|e| e.at), f.temperature_ms),
            current,
        ]
        .into_iter()
        .flatten()
        // A past moment is no deadline: a choice waiting for clean samples waits for input.
        .filter(|&t| t > now)
        .min()
    }

    /// Nothing bleeds from `now`: samples count as clean after the settle time, and the choice
    /// is due at the end of the measure window.
    fn rest(&mut self, now: Instant, config: &Config) {
        let b = &config.balance;
        self.means.clear();
        self.phase = Phase::Resting {
            clean_from: now + ms(b.settle_ms),
            decide_at: now + ms(b.measure_window_ms),
        };
    }

    fn set_state(&mut self, now: Instant, state: BalanceState) {
        if state != self.state {
            self.state = state;
            self.since = now;
        }
    }
}

/// Where balancing stands between choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A condition stops balancing; nothing bleeds.
    Stopped,
    /// Nothing bleeds. Cell samples taken at or after `clean_from` are clean; the next choice
    /// is due at `decide_at` (or at the first clean set of samples after it).
    Resting { clean_from: Instant, decide_at: Instant },
    /// The chosen cells bleed until `until`.
    Bleeding { until: Instant },
}

/// How cells and temperature sensors are spread over the boards that bleed them.
#[derive(Clone, Copy, Debug)]
struct Layout {
    cell_count: u16,
    cells_per_board: u16,
    boards: u16,
    /// Sensors per board when the sensors split evenly over the boards. Otherwise (`None`) a
    /// sensor cannot be told to belong to a board, and the hottest sensor of the pack stands for
    /// every board: never less careful than a split would be.
    sensors_per_board: Option<u16>,
}

impl Layout {
    fn new(config: &Config) -> Self {
        let cells_per_board = config.balance.cells_per_board.max(1);
        let boards = config.cell_count.div_ceil(cells_per_board).max(1);
        let sensors = config.temperature_count;
        let even = sensors >= boards && sensors % boards == 0;
        Layout {
            cell_count: config.cell_count,
            cells_per_board,
            boards,
            sensors_per_board: even.then(|| sensors / boards),
        }
    }

    fn board_of(&self, cell: u16) -> u16 {
        cell / self.cells_per_board
    }

    /// Removes the cells of the `hot` boards from `cells`; returns the first board that had a
    /// cell removed.
    fn remove_boards(&self, cells: &mut CellMask, hot: &CellMask) -> Option<u16> {
        let mut first = None;
        for board in hot {
            let start = board.saturating_mul(self.cells_per_board);
            let end = start.saturating_add(self.cells_per_board).min(self.cell_count);
            for cell in start..end {
                if cells.contains(cell) {
                    cells.remove(cell);
                    first.get_or_insert(board);
                }
            }
        }
        first
    }
}

/// Why balancing may not run now, or `None` when it may.
fn stop_reason(
    now: Instant,
    config: &Config,
    m: &Measurements,
    s: &Summary,
    rules: &[RuleStatus; RULE_COUNT],
    idle: bool,
) -> Option<BalanceState> {
    let b = &config.balance;
    if !b.enabled {
        return Some(BalanceState::Disabled);
    }
    let f = &config.freshness;
    let fresh = |missing: Option<u16>, oldest: Option<crate::measure::Extreme>, limit_ms: u32| {
        missing.is_none() && oldest.is_some_and(|o| now.saturating_since(o.at) < ms(limit_ms))
    };
    let current = Measurements::fresh(m.current, now, ms(f.current_ms));
    if !fresh(s.cell_missing, s.cell_oldest, f.cell_voltage_ms)
        || !fresh(s.temperature_missing, s.temperature_oldest, f.temperature_ms)
        || (b.idle_only && current.is_none())
    {
        return Some(BalanceState::NoData);
    }
    let blocked = BLOCKING_RULES
        .into_iter()
        .find(|rule| rules[rule.index()].active.is_some_and(|tier| tier >= Tier::Recommended));
    if let Some(rule) = blocked {
        return Some(BalanceState::Blocked(rule));
    }
    if b.idle_only && !idle {
        return Some(BalanceState::NotIdle);
    }
    None
}

/// The boards whose hottest sensor is at or above the limit, as a set of board indices.
fn hot_boards(config: &Config, layout: &Layout, m: &Measurements, s: &Summary) -> CellMask {
    let limit = config.balance.board_temperature_max_dc.0;
    // Nearly always nothing is that hot, and the summary already knows.
    if s.temperature_max.is_none_or(|t| t.value < limit) {
        return CellMask::EMPTY;
    }
    let Some(per_board) = layout.sensors_per_board else {
        return (0..layout.boards).collect();
    };
    let sensors = &m.temperatures[..usize::from(config.temperature_count)];
    let mut hot = CellMask::EMPTY;
    for (sensor, slot) in (0u16..).zip(sensors) {
        if slot.is_some_and(|t| t.value.0 >= limit) {
            hot.insert(sensor / per_board);
        }
    }
    hot
}

/// The cells to bleed in the next window, and the state that explains the choice, from the
/// cells' means over the window. Called only with every cell fresh and clean.
fn choose(
    config: &Config,
    layout: &Layout,
    means: &CellMeans,
    chosen: CellMask,
    hot: &CellMask,
) -> (BalanceState, CellMask) {
    let b = &config.balance;
    let uv = |mv: MilliVolts| i64::from(mv.0) * 1000;
    let mut extremes: Option<(i64, i64)> = None;
    for cell in 0..layout.cell_count {
        // Every cell has a clean sample when a choice is due; without one there is no choice.
        let Some(mean) = means.mean_uv(cell) else {
            return (BalanceState::NoData, CellMask::EMPTY);
        };
        extremes = Some(extremes.map_or((mean, mean), |(lo, hi)| (lo.min(mean), hi.max(mean))));
    }
    let Some((min_uv, max_uv)) = extremes else {
        return (BalanceState::NoData, CellMask::EMPTY);
    };
    let start_uv = uv(b.start_mv);
    if max_uv <= start_uv {
        return (BalanceState::BelowStart, CellMask::EMPTY);
    }
    // Validation keeps 0 <= hysteresis < delta.
    let delta_uv = uv(b.delta_mv);
    let keep_above_uv = delta_uv - uv(b.hysteresis_mv);
    let spread_uv = max_uv - min_uv;
    if spread_uv <= keep_above_uv || (spread_uv <= delta_uv && chosen.is_empty()) {
        return (BalanceState::Balanced, CellMask::EMPTY);
    }
    let mut candidates = [0u16; MAX_CELLS];
    let mut found = 0;
    let mut hot_board = None;
    for cell in 0..layout.cell_count {
        let Some(mean) = means.mean_uv(cell) else { continue };
        let threshold = if chosen.contains(cell) { keep_above_uv } else { delta_uv };
        if mean <= start_uv || mean - min_uv <= threshold {
            continue;
        }
        let board = layout.board_of(cell);
        if hot.contains(board) {
            hot_board.get_or_insert(board);
            continue;
        }
        // `cell_count` is at most MAX_CELLS, so `found` stays inside `candidates`.
        if let Some(slot) = candidates.get_mut(found) {
            *slot = cell;
            found += 1;
        }
    }
    if found == 0 {
        let state =
            hot_board.map_or(BalanceState::Balanced, |board| BalanceState::BoardHot { board });
        return (state, CellMask::EMPTY);
    }
    let candidates = &mut candidates[..found];
    let max_cells = usize::from(b.max_cells);
    if found > max_cells {
        // Highest first; equal means by index, so the choice is deterministic.
        let mean = |cell: u16| means.mean_uv(cell).unwrap_or(i64::MIN);
        candidates.sort_unstable_by_key(|&cell| (Reverse(mean(cell)), cell));
    }
    let mask: CellMask = candidates.iter().copied().take(max_cells).collect();
    (BalanceState::Bleeding { cells: mask.count() }, mask)
}

fn ms(millis: u32) -> Duration {
    Duration::from_millis(u64::from(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_remove_count() {
        let mut mask = CellMask::EMPTY;
        assert!(mask.is_empty());
        for cell in [0, 31, 32, 100, 191] {
            mask.insert(cell);
        }
        mask.insert(31); // twice is once
        assert_eq!(mask.count(), 5);
        assert!(mask.contains(0) && mask.contains(32) && mask.contains(191));
        assert!(!mask.contains(1) && !mask.contains(33) && !mask.contains(190));
        mask.remove(32);
        mask.remove(33); // not a member: no change
        assert_eq!(mask.count(), 4);
        assert!(!mask.contains(32));
        assert!(!mask.is_empty());
    }

    #[test]
    fn cells_beyond_max_cells_are_ignored_without_panicking() {
        let mut mask = CellMask::EMPTY;
        mask.insert(MAX_CELLS as u16);
        mask.insert(u16::MAX);
        mask.remove(u16::MAX);
        assert!(mask.is_empty());
        assert!(!mask.contains(u16::MAX));
    }

    #[test]
    fn iter_is_ascending_and_complete() {
        let cells = [191, 0, 64, 5, 63, 32, 31];
        let mask: CellMask = cells.into_iter().collect();
        let listed: heapless::Vec<u16, 8> = mask.iter().collect();
        assert_eq!(listed.as_slice(), &[0, 5, 31, 32, 63, 64, 191]);
        assert_eq!(CellMask::EMPTY.iter().next(), None);
        let all: CellMask = (0..MAX_CELLS as u16).collect();
        assert_eq!(all.count(), MAX_CELLS as u16);
        assert_eq!(all.iter().count(), MAX_CELLS);
        assert_eq!(all.iter().last(), Some(MAX_CELLS as u16 - 1));
    }

    #[test]
    fn bits_maps_a_board_onto_one_byte() {
        let mask: CellMask = [6, 8, 11, 12, 190, 191].into_iter().collect();
        // Board 1 of a 6-cell layout: cells 6..12, cell 6 in bit 0.
        assert_eq!(mask.bits(6, 6), 0b10_0101);
        assert_eq!(mask.bits(0, 6), 0);
        assert_eq!(mask.bits(12, 6), 0b1);
        // n above 8 counts as 8; cells past MAX_CELLS are never set.
        assert_eq!(mask.bits(184, 200), 0b1100_0000);
        assert_eq!(mask.bits(190, 8), 0b11);
        assert_eq!(mask.bits(u16::MAX - 2, 8), 0);
        assert_eq!(mask.bits(6, 0), 0);
    }

    #[test]
    fn debug_lists_the_members() {
        let mask: CellMask = [7, 3].into_iter().collect();
        let mut text: heapless::String<32> = heapless::String::new();
        core::fmt::write(&mut text, format_args!("{mask:?} {:?}", CellMask::EMPTY)).expect("fits");
        assert_eq!(text.as_str(), "{3, 7} {}");
    }
}
