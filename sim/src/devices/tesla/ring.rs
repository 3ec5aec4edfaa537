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
    last_observe: Option<Instant>,
}

impl Ring {
    /// A ring of `spec.boards` boards as they come out of power-up: all at address 0.
    pub fn new(spec: &RingSpec) -> Ring {
        Ring {
            spec: *spec,
            boards: (0..spec.boards).map(|_| Board::new(spec.ts2)).collect(),
            faults: vec![BoardFaults::default(); spec.boards],
            assembler: Assembler::default(),
            line_free: Instant::ZERO,
            outbox: Outbox::default(),
            last_observe: None,
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
        let boards = self.boards.iter().filter_map(Board::next_deadline);
        [wire, self.outbox.next_ready()].into_iter().flatten().chain(boards).min()
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

    /// Brings the boards to `now`: their warming since the last call, their balance timers
    /// and their comparators, with the inputs at `now`. The engine calls this every step.
    pub fn observe(&mut self, now: Instant, analog: &Analog<'_>) {
        self.settle(now);
        let since = self.last_observe.unwrap_or(now).min(now);
        let heating = Heating {
            bleed_ohm: self.spec.bleed_ohm,
            k_per_w: self.spec.board_k_per_w,
            tau_s: self.spec.board_tau_s,
        };
        for (i, board) in self.boards.iter_mut().enumerate() {
            board.observe(since, now, &inputs(analog, i), &heating);
        }
        self.last_observe = Some(now.max(self.last_observe.unwrap_or(now)));
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

    /// Walks a request round the ring and queues what comes back.
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
            board.write(at, register, value, &inputs(analog, i), self.faults[i].converter());
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
        board.tick(cut.end);
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

fn is_reset(register: u8, value: u8) -> bool {
    register == regs::RESET && value == regs::RESET_MAGIC
}

/// Board `i`'s inputs.
fn inputs(analog: &Analog<'_>, i: usize) -> Inputs {
    Inputs { cells_v: analog.cells(i), temps_c: analog.temps(i), brick_v: analog.brick(i) }
}
