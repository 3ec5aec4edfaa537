//! The master's phases: what to send next and what each reply means.

use super::{Event, Master, Phase, Reading, Step};
use crate::proto::tesla::frame::{BROADCAST, MAX_MODULES, Request, UNASSIGNED};
use crate::proto::tesla::link::Progress;
use crate::proto::tesla::regs::{self, alert, fault, status};
use crate::proto::tesla::scale;
use crate::time::{Duration, Instant};
use crate::units::DeciCelsius;

/// Waited after the broadcast reset before addressing (the boards restart).
const RESET_SETTLE: Duration = Duration::from_millis(10);

// Phases.
impl Master {
    pub(super) fn enumerate(&mut self, now: Instant) {
        self.phase = Phase::Enumerating;
        self.counters.enumerations = self.counters.enumerations.saturating_add(1);
        self.last_enumeration = now;
        self.found = 0;
        for board in &mut self.boards {
            board.present = false;
            // A reset switches balancing off.
            board.balance_sent = 0;
            board.balance_written_at = None;
        }
        self.plan.clear();
        self.wait_until = None;
        // The probe waits for the reset to settle (`wait_until`, set when the echo arrives).
        self.push(Step::Reset);
        self.push(Step::Probe);
        self.advance(now);
    }

    fn setup(&mut self, now: Instant) {
        self.phase = Phase::SettingUp;
        self.plan.clear();
        self.plan_setup(BROADCAST);
        self.advance(now);
    }

    /// The writes that clear a reset's latched bits and set a board (or, broadcast, every
    /// board) up.
    fn plan_setup(&mut self, b: u8) {
        for (reg, value) in [
            (regs::ALERT_STATUS, 0xFF),
            (regs::ALERT_STATUS, 0x00),
            (regs::FAULT_STATUS, 0xFF),
            (regs::FAULT_STATUS, 0x00),
            (regs::ADC_CONTROL, regs::ADC_CONTROL_ALL),
            (regs::IO_CONTROL, regs::IO_CONTROL_BIAS),
        ] {
            self.push(Step::Setup(Request::write(b, reg, value)));
        }
        // `validate` refused settings without codes, so `codes` is `Some` whenever a
        // protector is configured.
        if let Some(codes) = self.config.protector.and_then(|p| p.codes()) {
            for (reg, value) in codes {
                // The unlock applies to the very next write only, so each write gets its own.
                self.push(Step::Setup(Request::write(b, regs::SHDW_CTRL, regs::SHADOW_UNLOCK)));
                self.push(Step::Setup(Request::write(b, reg, value)));
            }
        }
    }

    fn start_cycle(&mut self, now: Instant) {
        self.phase = Phase::Measuring;
        self.cycle_started = now;
        self.next_scan = now + Duration::from_millis(u64::from(self.config.scan_period_ms));
        self.measured = 0;
        self.missed = 0;
        self.plan.clear();
        self.push(Step::Convert);
        for m in 0..self.measured_boards() {
            self.push(Step::Measure(m));
        }
        self.advance(now);
    }

    fn finish_cycle(&mut self, now: Instant) {
        self.counters.cycles = self.counters.cycles.saturating_add(1);
        self.emit(Event::CycleDone {
            started: self.cycle_started,
            finished: now,
            measured: self.measured,
            missed: self.missed,
        });
        let since = now.saturating_since(self.last_enumeration);
        if since >= Duration::from_millis(u64::from(self.config.rediscover_ms)) {
            if self.found < self.config.modules {
                self.enumerate(now);
                return;
            }
            if self.boards.iter().any(|b| b.lost) {
                self.phase = Phase::Readdressing;
                self.last_enumeration = now;
                self.plan.clear();
                self.push(Step::Probe);
                self.advance(now);
                return;
            }
        }
        self.plan_balance(now);
        if self.plan.is_empty() {
            self.idle(now);
        } else {
            self.phase = Phase::Balancing;
            self.advance(now);
        }
    }

    fn plan_balance(&mut self, now: Instant) {
        // Half the boards' timer: a refresh is never late, and a dead master leaves the
        // resistors on for at most one timer.
        let refresh = Duration::from_secs(u64::from(self.config.balance_time_s) / 2 + 1);
        for m in 0..self.measured_boards() {
            let board = self.boards[usize::from(m)];
            if board.lost || !board.present {
                continue;
            }
            let want = board.balance_wanted;
            let due = want != 0
                && board.balance_written_at.is_none_or(|at| now.saturating_since(at) >= refresh);
            if want != board.balance_sent || due {
                if want != 0 {
                    self.push(Step::BalanceTime(m));
                }
                self.push(Step::BalanceMask(m, want));
            }
        }
    }

    fn idle(&mut self, now: Instant) {
        if self.want_asleep != self.asleep {
            self.plan_sleep(now);
            return;
        }
        if self.asleep {
            self.phase = Phase::Asleep;
            self.wait_until = None;
            return;
        }
        self.phase = Phase::Idle;
        self.wait_until = Some(self.next_scan.max(now));
    }

    /// Acts on a sleep or wake request at once when nothing else is going on; otherwise the
    /// next `idle` does.
    pub(super) fn change_sleep(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Idle | Phase::Asleep) && self.link.in_flight.is_none() {
            self.wait_until = None;
            self.idle(now);
        }
    }

    /// Sleep: IO_CONTROL = SLEEP to every board. Wake: IO_CONTROL back to the thermistor bias,
    /// then clear the SLEEP alert (1 then 0), as the masters do (§1.9.5).
    fn plan_sleep(&mut self, now: Instant) {
        self.phase = Phase::Sleeping;
        self.plan.clear();
        let b = BROADCAST;
        if self.want_asleep {
            self.push(Step::Sleep(Request::write(b, regs::IO_CONTROL, regs::IO_CONTROL_SLEEP)));
        } else {
            for (reg, value) in [
                (regs::IO_CONTROL, regs::IO_CONTROL_BIAS),
                (regs::ALERT_STATUS, alert::SLEEP),
                (regs::ALERT_STATUS, 0),
            ] {
                self.push(Step::Sleep(Request::write(b, reg, value)));
            }
        }
        self.asleep = self.want_asleep;
        // Sleeping boards switch their balance outputs off; after waking they are written
        // again from what is wanted.
        for board in &mut self.boards {
            board.balance_sent = 0;
            board.balance_written_at = None;
        }
        self.advance(now);
    }

    fn measured_boards(&self) -> u8 {
        self.found.min(self.config.modules)
    }

    pub(super) fn push(&mut self, step: Step) {
        // The plan never holds more than one phase's requests and PLAN_CAPACITY covers the
        // largest phase, so this cannot fail; if it did, the step would be skipped, not
        // misread.
        let _ = self.plan.push_back(step);
    }

    pub(super) fn emit(&mut self, event: Event) {
        if self.events.push_back(event).is_err() {
            self.counters.dropped_events = self.counters.dropped_events.saturating_add(1);
        }
    }
}

// Requests and replies.
impl Master {
    /// Sends the next planned request, or moves to the next phase when the plan is done.
    /// Waits (reset settle, conversion, next scan) are set by the step that needs them and end
    /// in `handle_timeout`.
    pub(super) fn advance(&mut self, now: Instant) {
        if self.link.in_flight.is_some() || self.wait_until.is_some() {
            return;
        }
        if let Some(step) = self.plan.pop_front() {
            let request = self.request(step);
            self.send(now, request, step, 1);
            return;
        }
        match self.phase {
            Phase::Enumerating => {
                self.enumeration_restarts = 0;
                self.emit(Event::Enumerated { found: self.found, expected: self.config.modules });
                for m in 0..self.found {
                    self.boards[usize::from(m)].present = true;
                }
                if self.found == 0 {
                    self.phase = Phase::NoRing;
                    self.wait_until =
                        Some(now + Duration::from_millis(u64::from(self.config.rediscover_ms)));
                } else {
                    self.setup(now);
                }
            }
            Phase::SettingUp | Phase::Balancing | Phase::Readdressing | Phase::Sleeping => {
                self.idle(now)
            }
            Phase::Asleep => {}
            Phase::Measuring => self.finish_cycle(now),
            Phase::NoRing => self.enumerate(now),
            Phase::Idle => self.start_cycle(now),
        }
    }

    fn request(&self, step: Step) -> Request {
        let read = |address: u8, register: u8, len: u8| Request::Read {
            address,
            register,
            len,
            crc: self.config.read_crc,
        };
        let addr = |m: u8| m + 1;
        match step {
            Step::Reset => Request::write(BROADCAST, regs::RESET, regs::RESET_MAGIC),
            Step::Probe => read(UNASSIGNED, regs::DEVICE_STATUS, 1),
            Step::Assign(a) => Request::write(UNASSIGNED, regs::ADDRESS_CONTROL, a | 0x80),
            Step::Setup(r) | Step::Clear(_, r) => r,
            Step::Convert => Request::write(BROADCAST, regs::ADC_CONVERT, 1),
            Step::Measure(m) => read(addr(m), regs::DEVICE_STATUS, regs::MEASUREMENT_LEN),
            Step::ReadFaults(m) => read(addr(m), regs::ALERT_STATUS, 4),
            Step::BalanceTime(m) => {
                Request::write(addr(m), regs::CB_TIME, self.config.balance_time_s & 0x3F)
            }
            Step::BalanceMask(m, mask) => Request::write(addr(m), regs::CB_CTRL, mask),
            Step::Readdress(a) => Request::write(UNASSIGNED, regs::ADDRESS_CONTROL, a | 0x80),
            Step::Sleep(r) => r,
        }
    }

    fn send(&mut self, now: Instant, request: Request, step: Step, attempt: u8) {
        let margin = Duration::from_micros(u64::from(self.config.reply_margin_us));
        self.link.send(now, request, step, attempt, margin);
    }

    /// Looks at what has arrived for the request in flight.
    pub(super) fn check_reply(&mut self, now: Instant) {
        let (data, marked) = match self.link.progress() {
            Progress::Waiting => return,
            Progress::Done(data, marked) => {
                let mut buf = [0u8; regs::MEASUREMENT_LEN as usize];
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                (Reply { buf, len: n }, marked)
            }
            Progress::Bad(_) => {
                self.link.crc_errors = self.link.crc_errors.saturating_add(1);
                if let Some(flight) = self.link.finish() {
                    self.failed(now, flight.purpose, flight.request, flight.attempt, false);
                }
                return;
            }
            Progress::Unanswered => {
                self.counters.unanswered = self.counters.unanswered.saturating_add(1);
                if let Some(flight) = self.link.finish() {
                    self.failed(now, flight.purpose, flight.request, flight.attempt, true);
                }
                return;
            }
        };
        let Some(flight) = self.link.finish() else { return };
        self.succeeded(now, flight.purpose, flight.sent_at, data.bytes(), marked);
        self.advance(now);
    }

    fn succeeded(&mut self, now: Instant, step: Step, sent_at: Instant, data: &[u8], marked: bool) {
        match step {
            Step::Reset => self.wait_until = Some(now + RESET_SETTLE),
            Step::Probe => {
                // Only a marked reply comes from an unaddressed board; anything else would be
                // a board misreading address 0, and the loop stops rather than guess.
                if marked && self.phase == Phase::Readdressing {
                    let lost = self.measured_boards();
                    if let Some(m) = (0..lost).find(|&m| self.boards[usize::from(m)].lost) {
                        self.push_front(Step::Readdress(m + 1));
                    }
                } else if marked && self.found < MAX_MODULES {
                    self.push_front(Step::Assign(self.found + 1));
                }
            }
            Step::Readdress(address) => {
                if marked && data.first() == Some(&(address | 0x80)) {
                    // The board came back from a reset: set it up like the others, then look
                    // for the next one. It counts as back once it is measured.
                    self.plan_setup(address);
                    let m = usize::from(address - 1);
                    self.boards[m].balance_sent = 0;
                    self.boards[m].balance_written_at = None;
                    self.push(Step::Probe);
                }
            }
            Step::Assign(address) => {
                if marked && data.first() == Some(&(address | 0x80)) {
                    self.found = address;
                    self.push_front(Step::Probe);
                }
            }
            Step::Convert => {
                // The boards convert as the write passes them: the samples are as old as the
                // send.
                self.sampled_at = sent_at;
                let wait = Duration::from_micros(u64::from(self.config.conversion_wait_us));
                self.wait_until = Some(now + wait);
            }
            Step::Measure(m) => self.measured_board(m, data),
            Step::ReadFaults(m) => self.read_faults(m, data),
            Step::BalanceMask(m, mask) => {
                let board = &mut self.boards[usize::from(m)];
                board.balance_sent = mask;
                board.balance_written_at = (mask != 0).then_some(now);
            }
            Step::Setup(_) | Step::Clear(..) | Step::BalanceTime(_) | Step::Sleep(_) => {}
        }
    }

    /// A request failed: ask again or give up on it.
    pub(super) fn failed(
        &mut self,
        now: Instant,
        step: Step,
        request: Request,
        attempt: u8,
        unanswered: bool,
    ) {
        // An address-0 probe that comes back unanswered is the normal end of enumeration,
        // not a failure.
        if step == Step::Probe && unanswered {
            self.advance(now);
            return;
        }
        // An address assignment is never sent again: if the first board took it and only
        // the echo was lost, a second copy would give the next board the same address. The
        // enumeration starts over from the reset instead, a bounded number of times.
        if let Step::Readdress(_) = step {
            // Never sent twice, for the same reason as an assignment; the next rediscovery
            // looks again.
            self.plan.clear();
            self.advance(now);
            return;
        }
        if let Step::Assign(_) = step {
            self.enumeration_restarts = self.enumeration_restarts.saturating_add(1);
            if self.enumeration_restarts <= self.config.retries {
                self.counters.retries = self.counters.retries.saturating_add(1);
                self.enumerate(now);
            } else {
                self.plan.clear();
                self.advance(now);
            }
            return;
        }
        if attempt <= self.config.retries {
            self.counters.retries = self.counters.retries.saturating_add(1);
            self.send(now, request, step, attempt + 1);
            return;
        }
        match step {
            Step::Reset => {
                // Nothing echoes the reset: the ring is open or unpowered.
                self.plan.clear();
            }
            Step::Probe | Step::Assign(_) | Step::Readdress(_) => {
                // Enumeration ends with the boards found so far; a later rediscovery tries
                // again for the rest.
                self.plan.clear();
            }
            Step::Convert => {
                // Without a conversion there is nothing new to read: the cycle fails for every
                // board.
                self.plan.clear();
                for m in 0..self.measured_boards() {
                    self.board_missed(m);
                }
            }
            Step::Measure(m) => self.board_missed(m),
            Step::ReadFaults(_)
            | Step::Clear(..)
            | Step::Setup(_)
            | Step::BalanceTime(_)
            | Step::Sleep(_) => {}
            Step::BalanceMask(m, _) => {
                // Unknown whether it took: write it again next cycle.
                self.boards[usize::from(m)].balance_sent = 0xFF;
            }
        }
        self.advance(now);
    }

    fn measured_board(&mut self, m: u8, data: &[u8]) {
        let Some(reading) = decode_measurement(m, self.sampled_at, data, self.config.ts2) else {
            self.board_missed(m);
            return;
        };
        // DRDY clear: the conversion this cycle started has not finished, and the result
        // registers still hold an older one. Reported with this cycle's sample time they would
        // look fresh; the board fails the cycle instead, and its data ages.
        if reading.status & status::DRDY == 0 {
            self.board_missed(m);
            return;
        }
        self.measured = self.measured.saturating_add(1);
        let board = &mut self.boards[usize::from(m)];
        board.failed_cycles = 0;
        board.last_good = Some(reading.sampled_at);
        if reading.status & (status::FAULT | status::ALERT) == 0 {
            board.protector_tripped = false;
        }
        let recovered = board.lost;
        board.lost = false;
        if recovered {
            self.emit(Event::Recovered { module: m });
        }
        if reading.status & (status::FAULT | status::ALERT) != 0 {
            // Read the latched bits next, before the next board.
            self.push_front(Step::ReadFaults(m));
        }
        self.emit(Event::Reading(reading));
    }

    fn read_faults(&mut self, m: u8, data: &[u8]) {
        let [alert_bits, fault_bits, cov, cuv] =
            [0, 1, 2, 3].map(|i| data.get(i).copied().unwrap_or(0));
        let tripped = fault_bits & (fault::COV | fault::CUV) != 0
            || alert_bits & (alert::OT1 | alert::OT2) != 0;
        self.boards[usize::from(m)].protector_tripped = tripped;
        self.emit(Event::Faults { module: m, alert: alert_bits, fault: fault_bits, cov, cuv });
        // Write 1 then 0 to each latched bit; a condition still present sets it again at once,
        // and the next cycle reads it again.
        let a = m + 1;
        let mut clears = [None; 4];
        if alert_bits != 0 {
            clears[0] = Some(Request::write(a, regs::ALERT_STATUS, alert_bits));
            clears[1] = Some(Request::write(a, regs::ALERT_STATUS, 0));
        }
        if fault_bits != 0 {
            clears[2] = Some(Request::write(a, regs::FAULT_STATUS, fault_bits));
            clears[3] = Some(Request::write(a, regs::FAULT_STATUS, 0));
        }
        for r in clears.into_iter().rev().flatten() {
            self.push_front(Step::Clear(m, r));
        }
    }

    fn board_missed(&mut self, m: u8) {
        self.missed = self.missed.saturating_add(1);
        let lost_after = self.config.lost_after;
        let board = &mut self.boards[usize::from(m)];
        board.failed_cycles = board.failed_cycles.saturating_add(1);
        if !board.lost && board.failed_cycles >= lost_after {
            board.lost = true;
            self.emit(Event::Lost { module: m });
        }
    }

    fn push_front(&mut self, step: Step) {
        let _ = self.plan.push_front(step);
    }
}

/// A reply's register bytes, copied out of the receive buffer.
struct Reply {
    buf: [u8; regs::MEASUREMENT_LEN as usize],
    len: usize,
}

impl Reply {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// Decodes the 19 register bytes from DEVICE_STATUS to TS2; `None` when there are not 19.
fn decode_measurement(
    module: u8,
    sampled_at: Instant,
    data: &[u8],
    ts2: scale::Thermistor,
) -> Option<Reading> {
    let data: &[u8; regs::MEASUREMENT_LEN as usize] = data.try_into().ok()?;
    let word = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]) & 0x3FFF;
    let mut cells = [crate::units::MilliVolts(0); regs::CELLS];
    for (k, cell) in cells.iter_mut().enumerate() {
        *cell = scale::cell_mv(word(3 + 2 * k));
    }
    let t1 = scale::temperature_dc(word(15), scale::Thermistor::PYBMS);
    let t2 = scale::temperature_dc(word(17), ts2);
    Some(Reading {
        module,
        sampled_at,
        cells,
        temperatures: [t1.unwrap_or(DeciCelsius(0)), t2.unwrap_or(DeciCelsius(0))],
        temperature_valid: [t1.is_some(), t2.is_some()],
        module_mv: scale::brick_mv(word(1)),
        status: data[0],
    })
}
