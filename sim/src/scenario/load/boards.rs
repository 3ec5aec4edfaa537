//! The `[boards]` section and the board faults of the timeline.

use cellwarden_core::Config;
use cellwarden_core::proto::tesla::regs;

use super::{Checked, Ctx, Want};
use crate::scenario::schema::{BoardKind, BoardsSection};

/// Cells and thermistors of one Tesla module board, as the core's register map has them.
const TESLA_CELLS: u16 = regs::CELLS as u16;
const TESLA_THERMISTORS: u16 = regs::THERMISTORS as u16;

impl Ctx<'_> {
    /// Checks the section against the core configuration; returns the number of boards.
    pub(super) fn boards(&self, boards: &BoardsSection, config: &Config) -> Checked<u16> {
        let BoardKind::Tesla = boards.kind;
        if config.cell_count % TESLA_CELLS != 0 {
            return Err(self.value_error(
                "boards.kind",
                format!(
                    "tesla boards measure {TESLA_CELLS} cells each, but the pack has {} series \
                     groups",
                    config.cell_count
                ),
            ));
        }
        let count = config.cell_count / TESLA_CELLS;
        if config.temperature_count != count * TESLA_THERMISTORS {
            return Err(self.value_error(
                "boards.kind",
                format!(
                    "{count} tesla boards have {} thermistors, but the configuration has {} \
                     temperature sensors",
                    count * TESLA_THERMISTORS,
                    config.temperature_count
                ),
            ));
        }
        if boards.scan_period.0.as_micros() == 0 {
            return Err(self.value_error("boards.scan_period", "must be longer than 0s"));
        }
        self.real("boards.balance_ohm", boards.balance_ohm, Want::Positive)?;
        if boards.retries > 10 {
            return Err(
                self.value_error("boards.retries", format!("{} is outside 0..=10", boards.retries))
            );
        }
        if boards.lost_after == 0 {
            return Err(self.value_error("boards.lost_after", "must be at least 1"));
        }
        Ok(count)
    }

    /// Checks that a board fault names a board that exists.
    pub(super) fn board_index(&self, field: &str, module: u8, boards: Option<u16>) -> Checked<()> {
        match boards {
            None => Err(self
                .value_error(field, "board faults need emulated boards: add a [boards] section")),
            Some(n) if u16::from(module) >= n => Err(self.value_error(
                field,
                format!(
                    "board {module} does not exist: there are {n} boards, numbered 0..={}",
                    n - 1
                ),
            )),
            Some(_) => Ok(()),
        }
    }
}
