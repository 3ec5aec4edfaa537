//! The ring: boards in physical order between the master's TX and RX, and what each request
//! becomes on its way round (`shared/protocols.md` §1.2–1.5, §1.13).

use cellwarden_core::Instant;
use cellwarden_core::proto::tesla::frame::{
    Address, BROADCAST, MARKER, MAX_READ_LEN, MAX_REPLY_LEN, encode_reply, frame_crc,
};
use cellwarden_core::proto::tesla::regs;

use super::board::{Board, Heating, Inputs};
use super::faults::{BoardFaults, RingFault};
use super::wire::{Assembler, Cut, Outbox, after, wire_time_us};
use super::{Analog, RingSpec};

/// A ring of module boards behind one master UART.
///
/// Calls may come at any times, but a caller that wants exact timing passes non-decreasing
/// `now`s and calls [`Ring::handle_timeout`] at each [`Ring::poll_timeout`].
#[derive(Clone, Debug)]
pub struct Ring {
    spec: RingSpec,
    boards: Vec<Board>,
    faults: Vec<BoardFaults>,
    assembler: Assembler,
    /// The master's TX line is busy until then: bytes handed in earlier queue behind.
    line_free: Instant,
    outbox: Outbox,
    /// The analogue values of the last observation that reached the boards (cells,
    /// temperatures, module voltages, one after the other), and whether a board has changed
    /// since by a frame or a fault. While both hold and no board deadline has come, an
    /// observation has nothing to do: the engine observes at every bus event, the inputs
    /// change only when its plant moves. (A write that changes a board's thresholds marks the
    /// ring touched.)
    seen: Vec<f64>,
    seen_lens: [usize; 3],
    touched: bool,
    /// The earliest of the boards' own deadlines.
    boards_deadline: Option<Instant>,
    /// Counts the changes of the boards' balance outputs, and holds them as last seen.
    outputs_changes: u64,
    outputs: Vec<u8>,
}

impl Ring {
    /// A ring of `spec.boards` boards as they come out of power-up: all at address 0.
    pub fn new(spec: &RingSpec) -> Ring {
        Ring {
            spec: *spec,
            boards: (0..spec.boards).map(|_| Board::new(spec.ts2, heating(spec))).collect(),
            faults: vec![BoardFaults::default(); spec.boards],
            assembler: Assembler::default(),
            line_free: Instant::ZERO,
            outbox: Outbox::default(),
            seen: Vec::new(),
            seen_lens: [0; 3],
            touched: true,
            boards_deadline: None,
            outputs_changes: 0,
            outputs: vec![0; spec.boards],
        }
    }

    /// Takes bytes the master sends; the first starts on the wire at `now` (or when the
    /// master's earlier bytes have gone out, if later), the rest follow back to back. Writes
    /// act on `analog` (a conversion latches it).
    pub fn receive(&mut self, now: Instant, bytes: &[u8], analog: &Analog<'_>) {
        let base = now.max(self.line_free);
        for (i, &byte) in bytes.iter().enumerate() {
            let start = after(base, wire_time_us(i as u64));
            let end = after(base, wire_time_us(i as u64 + 1));
            self.settle(start);
            if let Some(cut) = self.assembler.push(byte, start, end) {
                self.dispatch(&cut, analog);
            }
        }
        self.line_free = after(base, wire_time_us(bytes.len() as u64));
    }

    /// The next instant at which something happens without new bytes: an output frame has
    /// arrived complete (until [`Ring::take_output`] takes it), a 3-byte read stops waiting
    /// for its CRC, a partial frame is abandoned, a balance timer ends or a comparator's delay
    /// runs out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let wire = self.assembler.deadline(self.spec.read_crc_wait_us, self.spec.frame_gap_us);
        earliest(earliest(wire, self.outbox.next_ready()), self.boards_deadline)
    }

    /// Acts on everything due by `now` (see [`Ring::poll_timeout`]) with the inputs at `now`.
    pub fn handle_timeout(&mut self, now: Instant, analog: &Analog<'_>) {
        self.observe(now, analog);
    }

    /// Appends to `out` the bytes that have reached the master's RX by `now`.
    pub fn take_output(&mut self, now: Instant, out: &mut Vec<u8>) {
        self.settle(now);
        self.outbox.take(now, out);
    }

    /// Brings the boards to `now`: their balance timers, and with inputs that changed their
    /// warming and their comparators, with the inputs at `now`. The engine calls this every
    /// step; a call with the inputs of the last one, before any board deadline and with no
    /// frame in between, returns at once.
    pub fn observe(&mut self, now: Instant, analog: &Analog<'_>) {
        self.settle(now);
        let due = self.boards_deadline.is_some_and(|d| d <= now);
        if !self.touched && !due && self.seen_matches(analog) {
            return;
        }
        self.observe_boards(now, analog);
    }

    fn observe_boards(&mut self, now: Instant, analog: &Analog<'_>) {
        for (i, board) in self.boards.iter_mut().enumerate() {
            board.observe(now, &inputs(analog, i));
        }
        self.seen.clear();
        self.seen.extend_from_slice(analog.cells_v);
        self.seen.extend_from_slice(analog.temps_c);
        self.seen.extend_from_slice(analog.bricks_v);
        self.seen_lens = [analog.cells_v.len(), analog.temps_c.len(), analog.bricks_v.len()];
        self.touched = false;
        self.refresh_deadline();
    }

    /// The same as [`Ring::observe`] for a caller that knows `analog` holds the values it
    /// passed to the previous call: skips comparing them.
    pub fn observe_unchanged(&mut self, now: Instant, analog: &Analog<'_>) {
        self.settle(now);
        let due = self.boards_deadline.is_some_and(|d| d <= now);
        if self.touched || due || self.seen_lens == [0; 3] {
            self.observe_boards(now, analog);
        }
    }

    /// A count that moves whenever a balance output has switched: while it stands still,
    /// [`Ring::bleed_currents_a`] gives the same currents for the same voltages.
    pub fn outputs_changes(&self) -> u64 {
        self.outputs_changes
    }

    /// Whether any board's balance output is on, as of the last change counted by
    /// [`Ring::outputs_changes`].
    pub fn any_output_on(&self) -> bool {
        self.outputs.iter().any(|&mask| mask != 0)
    }

    /// Writes the balance current of every cell (6 per board, board 0 first) into `out`:
    /// V / `bleed_ohm` for a cell whose output is on, 0 for the others and for entries beyond
    /// the ring or beyond `cells_v`.
    pub fn bleed_currents_a(&self, cells_v: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for (i, board) in self.boards.iter().enumerate() {
            let from = i * regs::CELLS;
            let (Some(cells), Some(currents)) = (cells_v.get(from..), out.get_mut(from..)) else {
                break;
            };
            let cells = &cells[..cells.len().min(regs::CELLS)];
            let take = currents.len().min(regs::CELLS);
            board.bleed_currents_a(cells, self.spec.bleed_ohm, &mut currents[..take]);
        }
    }

    /// The daisy-chained FAULT output: asserted while any board has a FAULT_STATUS bit set.
    pub fn fault_line(&self) -> bool {
        self.boards.iter().any(|b| b.register(regs::FAULT_STATUS) != 0)
    }

    /// Injects `fault`; it acts on frames the ring completes after `now`.
    pub fn inject(&mut self, now: Instant, fault: RingFault) {
        self.settle(now);
        if let Some(f) = self.faults.get_mut(fault.board()) {
            f.inject(fault);
        }
        self.touched = true;
    }

    /// Boards in the ring.
    pub fn board_count(&self) -> usize {
        self.boards.len()
    }

    /// Board `index` (0 = the first after the master's TX).
    pub fn board(&self, index: usize) -> Option<&Board> {
        self.boards.get(index)
    }

    /// All boards in physical order.
    pub fn boards(&self) -> &[Board] {
        &self.boards
    }

    /// The spec the ring was built from.
    pub fn spec(&self) -> &RingSpec {
        &self.spec
    }
}

/// Inputs of a dispatch that cannot contain a write: a read that stopped waiting for its CRC,
/// or abandoned bytes. Neither executes anything that reads the inputs.
const NO_INPUTS: Analog<'static> = Analog::new(&[], &[]);

impl Ring {
    /// Dispatches what the passing of time up to `now` completes on the wire.
    fn settle(&mut self, now: Instant) {
        let (wait, gap) = (self.spec.read_crc_wait_us, self.spec.frame_gap_us);
        if let Some(cut) = self.assembler.expire(now, wait, gap) {
            self.dispatch(&cut, &NO_INPUTS);
        }
    }

    /// Whether `analog` holds exactly the values of the last full observation.
    fn seen_matches(&self, analog: &Analog<'_>) -> bool {
        let [c, t, b] = self.seen_lens;
        self.seen_lens == [analog.cells_v.len(), analog.temps_c.len(), analog.bricks_v.len()]
            && self.seen[..c] == *analog.cells_v
            && self.seen[c..c + t] == *analog.temps_c
            && self.seen[c + t..c + t + b] == *analog.bricks_v
    }

    /// Takes the earliest of the boards' deadlines again after they changed, and counts a
    /// change of the balance outputs.
    fn refresh_deadline(&mut self) {
        self.boards_deadline = self.boards.iter().filter_map(Board::next_deadline).min();
        let mut changed = false;
        for (seen, board) in self.outputs.iter_mut().zip(&self.boards) {
            let mask = board.balance_mask();
            changed |= *seen != mask;
            *seen = mask;
        }
        self.outputs_changes += u64::from(changed);
    }

    /// Walks a request round the ring and queues what comes back. A write may change every
    /// board it reaches, so the boards' deadlines and outputs are taken again; a read changes
    /// at most the board that answers it (see `dispatch_read`).
    fn dispatch(&mut self, cut: &Cut, analog: &Analog<'_>) {
        let frame = cut.frame();
        let head = Address::from_byte(frame[0]);
        if !cut.complete || head.marked {
            // Abandoned bytes, or a request some board already answered: nobody acts.
            self.queue(cut, frame, None);
            return;
        }
        if head.write {
            self.dispatch_write(cut, head.address, analog);
            self.refresh_deadline();
        } else {
            self.dispatch_read(cut, head.address);
        }
    }

    fn dispatch_write(&mut self, cut: &Cut, address: u8, analog: &Analog<'_>) {
        let mut echo = cut.bytes;
        let [_, register, value, crc] = echo;
        let crc_ok = crc == frame_crc(&echo[..3]);
        let at = cut.end;
        let mut answered_by = None;
        for i in 0..self.boards.len() {
            if self.faults[i].silent {
                continue;
            }
            let board = &mut self.boards[i];
            let acts = match address {
                // The reset reaches every board, addressed or not (§1.9.1).
                BROADCAST => board.address() != 0 || is_reset(register, value),
                0 => board.address() == 0 && answered_by.is_none(),
                a => board.address() == a,
            };
            if !acts {
                continue;
            }
            if !crc_ok && !board.crc_check_disabled() {
                // §1.12.2: not executed, flagged, forwarded unchanged.
                board.flag_crc();
                if address == 0 {
                    break;
                }
                continue;
            }
            let converter = self.faults[i].converter();
            self.touched |= board.write(at, register, value, &inputs(analog, i), converter);
            if address != BROADCAST && answered_by.is_none() {
                answered_by = Some(i);
            }
            if address == 0 {
                echo[0] |= MARKER;
                break;
            }
        }
        self.queue(cut, &echo, answered_by);
    }

    fn dispatch_read(&mut self, cut: &Cut, address: u8) {
        let [b0, register, len, _] = cut.bytes;
        let answerable = (1..=MAX_READ_LEN).contains(&len) && address != BROADCAST;
        let responder = (0..self.boards.len())
            .find(|&i| !self.faults[i].silent && self.boards[i].address() == address);
        let Some(i) = responder.filter(|_| answerable) else {
            self.queue(cut, cut.frame(), None);
            return;
        };
        let board = &mut self.boards[i];
        // Reading only lets the board's balance timer run out; if it did, its deadline and
        // outputs changed.
        let before = board.balance_deadline();
        board.tick(cut.end);
        let ticked = board.balance_deadline() != before;
        let board = &self.boards[i];
        let mut data = [0u8; MAX_READ_LEN as usize];
        for (k, d) in data.iter_mut().take(usize::from(len)).enumerate() {
            *d = u8::try_from(usize::from(register) + k).map_or(0, |r| board.register(r));
        }
        let byte0 = if address == 0 { b0 | MARKER } else { b0 };
        let mut reply = [0u8; MAX_REPLY_LEN];
        // The length was checked and the buffer holds the longest reply, so this always
        // encodes; were it not to, the request would pass unanswered.
        match encode_reply(byte0, register, &data[..usize::from(len)], &mut reply) {
            Some(n) => self.queue(cut, &reply[..n], Some(i)),
            None => self.queue(cut, cut.frame(), None),
        }
        if ticked {
            self.refresh_deadline();
        }
    }

    /// Queues `frame`, what comes back for `cut`, applying the faults of the board that
    /// answered it. It arrives once the request and the frame have both passed the first
    /// board, plus every board's forwarding delay.
    fn queue(&mut self, cut: &Cut, frame: &[u8], answered_by: Option<usize>) {
        let mut bytes = [0u8; MAX_REPLY_LEN];
        let bytes = &mut bytes[..frame.len()];
        bytes.copy_from_slice(frame);
        let mut extra_us = 0;
        if let Some(i) = answered_by {
            let outcome = self.faults[i].on_answer(bytes);
            if outcome.dropped {
                return;
            }
            extra_us = outcome.delay_us;
        }
        let (request, reply) = (cut.len as u64, frame.len() as u64);
        let through = after(cut.start, wire_time_us(request + reply))
            .max(after(cut.end, wire_time_us(reply)))
            .max(cut.decided);
        let hops = self.boards.len() as u64 * u64::from(self.spec.hop_delay_us);
        self.outbox.push(bytes, after(through, hops + extra_us));
    }
}

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn is_reset(register: u8, value: u8) -> bool {
    register == regs::RESET && value == regs::RESET_MAGIC
}

/// The boards' warming as `spec` describes it.
fn heating(spec: &RingSpec) -> Heating {
    Heating { bleed_ohm: spec.bleed_ohm, k_per_w: spec.board_k_per_w, tau_s: spec.board_tau_s }
}

/// Board `i`'s inputs.
fn inputs(analog: &Analog<'_>, i: usize) -> Inputs {
    Inputs { cells_v: analog.cells(i), temps_c: analog.temps(i), brick_v: analog.brick(i) }
}
