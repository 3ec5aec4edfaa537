//! [`BoardBridge`]: the Tesla bus [`Master`] joined to a pack controller, with every decision
//! an adapter would otherwise make about the boards.
//!
//! The master speaks board by board; the pack controller wants one batch of inputs per
//! measurement cycle, one balance mask for the whole string and one hardware fault input. The
//! bridge sits between them and decides:
//!
//! - **One batch per cycle.** Readings are held (fixed capacity, one per board) until the
//!   master reports the cycle done; then [`BridgeEvent::CycleDone`] says a batch is ready and
//!   [`BoardBridge::inputs`] gives it, cells and thermistors of every board read in that
//!   cycle, in board order. One batch means one evaluation of the pack controller per cycle
//!   instead of one per board, and every cell of the cycle is judged together.
//! - **Masks per board.** [`BoardBridge::set_balance`] splits the pack controller's
//!   [`Action::Balance`](crate::Action::Balance) set into each board's six-cell register.
//! - **Protector as hardware fault.** A board's own protector (cell over or under voltage, over
//!   temperature) trips independently of the pack controller; it is as serious as the external
//!   hardware fault line, so [`BoardBridge::hardware_fault`] reports either as the one
//!   hardware fault input.
//! - **What is worth reporting.** Enumeration, lost and recovered boards always; a board's
//!   alert and fault bits only when they differ from the last ones reported for that board,
//!   so a condition that persists (and is re-read every cycle) is reported once. A clean
//!   status re-arms the board.
//!
//! # Driving it
//!
//! The adapter only moves bytes and time, as for [`Master`] and [`Bms`](crate::Bms):
//!
//! ```text
//! on bytes from the UART:   bridge.handle_received(now, bytes)
//! on bridge.poll_timeout(): bridge.handle_timeout(now)
//! after either:
//!     while let Some(n) = bridge.poll_transmit(&mut buf) { uart.write(&buf[..n]) }
//!     while let Some(event) = bridge.poll_event() {
//!         match event {
//!             BridgeEvent::CycleDone { readings, .. } if readings > 0 => {
//!                 bms.handle_batch(now, bridge.inputs());   // before the next poll_event
//!             }
//!             BridgeEvent::Board(event) => log(event),
//!             _ => {}
//!         }
//!     }
//! on Action::Balance(cells) from the pack controller: bridge.set_balance(&cells)
//! when measuring the rest of the pack:
//!     Input::HardwareFault { sampled_at, active: bridge.hardware_fault(fault_line_active) }
//! ```
//!
//! The batch stays valid until the next call to `poll_event` or a `handle_*` method; events are
//! taken from the master one at a time, so a second cycle never overwrites a batch the adapter
//! has not seen.

use heapless::Vec;

use super::frame::MAX_MODULES;
use super::master::{Event, Master, MasterConfig, MasterConfigError, Reading};
use super::regs::{self, status};
use crate::balance::CellMask;
use crate::input::Input;
use crate::time::Instant;

/// Most inputs one batch holds: per board, one for its cells and one per thermistor.
pub const BATCH_CAPACITY: usize = MAX_MODULES as usize * (1 + regs::THERMISTORS);

/// What the bridge reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeEvent {
    /// A measurement cycle ended. When `readings` is not zero, [`BoardBridge::inputs`] holds
    /// its batch until the next `poll_event` or `handle_*` call.
    CycleDone {
        /// When the cycle started.
        started: Instant,
        /// When it ended.
        finished: Instant,
        /// Boards measured, as the master counts them.
        measured: u8,
        /// Boards that failed the cycle.
        missed: u8,
        /// Readings in the batch.
        readings: u8,
    },
    /// A board event worth reporting: [`Event::Enumerated`], [`Event::Lost`],
    /// [`Event::Recovered`], or [`Event::Faults`] whose bits changed.
    Board(Event),
}

/// The bus master with its batch, balance and fault decisions; see the module documentation.
#[derive(Debug)]
pub struct BoardBridge {
    master: Master,
    /// Readings of the cycle in progress.
    pending: Vec<Reading, { MAX_MODULES as usize }>,
    /// Readings of the last finished cycle, handed out by `inputs`.
    batch: Vec<Reading, { MAX_MODULES as usize }>,
    /// Per board, the alert and fault bits last reported, so a persisting condition is
    /// reported once.
    reported_faults: [(u8, u8); MAX_MODULES as usize],
}

impl BoardBridge {
    /// A bridge whose master starts enumerating at `now`.
    pub fn new(config: MasterConfig, now: Instant) -> Result<BoardBridge, MasterConfigError> {
        Ok(BoardBridge {
            master: Master::new(config, now)?,
            pending: Vec::new(),
            batch: Vec::new(),
            reported_faults: [(0, 0); MAX_MODULES as usize],
        })
    }

    /// Bytes received from the ring at `now`, in any chunks.
    pub fn handle_received(&mut self, now: Instant, bytes: &[u8]) {
        self.batch.clear();
        self.master.handle_received(now, bytes);
    }

    /// A deadline passed (calling it early or twice is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.batch.clear();
        self.master.handle_timeout(now);
    }

    /// Bytes to write to the UART now, if any. Drain after every `handle_*`.
    pub fn poll_transmit(&mut self, out: &mut [u8; 4]) -> Option<usize> {
        self.master.poll_transmit(out)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.master.poll_timeout()
    }

    /// The next event worth the adapter's attention. Drain after every `handle_*`; after a
    /// [`BridgeEvent::CycleDone`] with readings, pass [`inputs`](Self::inputs) to the pack
    /// controller before polling again.
    pub fn poll_event(&mut self) -> Option<BridgeEvent> {
        self.batch.clear();
        while let Some(event) = self.master.poll_event() {
            if let Some(out) = self.handle_event(event) {
                return Some(out);
            }
        }
        None
    }

    /// The inputs of the cycle [`BridgeEvent::CycleDone`] just reported: per board read, its
    /// cells, then each thermistor that read a plausible value. Empty at any other time.
    pub fn inputs(&self) -> impl Iterator<Item = Input<'_>> {
        self.batch
            .iter()
            .flat_map(|r| core::iter::once(r.cell_input()).chain(r.temperature_inputs()))
    }

    /// Passes the pack controller's balance decision to the boards: board `m` bleeds cells
    /// `6m..6m+6` of `cells`. Cells beyond the configured boards are ignored.
    pub fn set_balance(&mut self, cells: &CellMask) {
        for module in 0..self.master.config().modules {
            self.master.set_balance(module, board_mask(cells, module));
        }
    }

    /// The hardware fault input for the pack controller, given the external fault line: a
    /// tripped board protector counts as a hardware fault as the line does, since either means
    /// something outside the pack controller's own thresholds saw the pack leave its safe
    /// range.
    pub fn hardware_fault(&self, line_active: bool) -> bool {
        line_active || self.master.protector_tripped()
    }

    /// The master, for its counters, phase and board states.
    pub fn master(&self) -> &Master {
        &self.master
    }

    /// The master, to put the boards to sleep or wake them.
    pub fn master_mut(&mut self) -> &mut Master {
        &mut self.master
    }

    /// Files one event of the master, returning what the adapter should see of it.
    /// [`poll_event`](Self::poll_event) calls it for the master the bridge owns; call it
    /// directly for a master that runs elsewhere (a device reporting its events over a link) or
    /// to replay recorded events. As after `poll_event`, a [`BridgeEvent::CycleDone`] makes
    /// [`inputs`](Self::inputs) the new batch.
    pub fn handle_event(&mut self, event: Event) -> Option<BridgeEvent> {
        self.batch.clear();
        match event {
            Event::Reading(reading) => {
                // A board whose status is clean again has its fault report re-armed.
                if reading.status & (status::FAULT | status::ALERT) == 0 {
                    if let Some(last) = self.reported_faults.get_mut(usize::from(reading.module)) {
                        *last = (0, 0);
                    }
                }
                // One reading per board and cycle, so this fits; a second reading of a board
                // in one cycle would replace nothing and is dropped rather than overflow.
                let _ = self.pending.push(reading);
                None
            }
            Event::CycleDone { started, finished, measured, missed } => {
                core::mem::swap(&mut self.batch, &mut self.pending);
                self.pending.clear();
                // At most MAX_MODULES readings, so the count fits a byte.
                let readings = self.batch.len() as u8;
                Some(BridgeEvent::CycleDone { started, finished, measured, missed, readings })
            }
            Event::Enumerated { .. } | Event::Lost { .. } | Event::Recovered { .. } => {
                Some(BridgeEvent::Board(event))
            }
            Event::Faults { module, alert, fault, .. } => {
                let last = self.reported_faults.get_mut(usize::from(module))?;
                if *last == (alert, fault) {
                    return None;
                }
                *last = (alert, fault);
                Some(BridgeEvent::Board(event))
            }
        }
    }
}

/// Board `module`'s six bits of `cells` (bit k = cell `6 × module + k`).
pub fn board_mask(cells: &CellMask, module: u8) -> u8 {
    let per_board = regs::CELLS as u8;
    cells.bits(u16::from(module) * u16::from(per_board), per_board)
}
