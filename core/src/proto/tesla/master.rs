//! The sans-IO bus master for a ring of Tesla module boards.
//!
//! [`Master`] has the same shape as [`Bms`](crate::Bms): the adapter hands it received bytes
//! ([`Master::handle_received`]) and expired deadlines ([`Master::handle_timeout`]), then drains
//! [`Master::poll_transmit`] (bytes to put on the UART) and [`Master::poll_event`] (readings,
//! lost and recovered boards, finished cycles), and asks [`Master::poll_timeout`] for the next
//! deadline. It never reads a clock and never blocks.
//!
//! What it does, in order:
//!
//! 1. **Enumerate**: broadcast reset, then give the first unaddressed board address 1, the next
//!    address 2 and so on, in physical order from the master (`protocols.md` §1.9.1).
//! 2. **Set up**: clear the alerts and faults the reset latched, select the ADC channels, bias
//!    the thermistors and, when configured, program the hardware protector through the
//!    shadow-control unlock (§1.9.6).
//! 3. **Measure**, every scan period: one broadcast conversion, then per board one read of
//!    status, module voltage, six cells and two thermistors (§1.9.3). A board whose status
//!    shows an alert or fault has its latched bits read, reported and cleared. A reading whose
//!    status lacks DRDY (the conversion has not finished, the results are older) is dropped:
//!    the board fails the cycle.
//! 4. **Balance**: boards whose wanted balance mask differs from what they run, or whose
//!    balance timer is due for a refresh, get CB_TIME and CB_CTRL (§1.9.4).
//!
//! Every request is retried a bounded number of times on a bad CRC or a missing reply. A board
//! that fails a whole cycle keeps its last good reading (nothing is reported for it, so the
//! pack controller sees its data age); only after `lost_after` failed cycles in a row is it
//! reported lost.
//!
//! A lost board never makes the master reset the ring: a board that is present but silent
//! would not take an address, every board behind it would move up one address, and their
//! cells would be reported as someone else's. Instead the lost board keeps being read at its
//! own address, and every `rediscover_ms` the master asks whether an unaddressed board (one
//! that lost power and reset) is on the ring, and gives it the lowest lost address: boards that
//! reset come back unaddressed in physical order, so this restores the numbering. Only boards
//! missing since the enumeration (fewer found than configured) make the master reset and
//! enumerate again, every `rediscover_ms`.

use heapless::Deque;

mod run;

use super::frame::{MAX_MODULES, Request};
use super::link::Link;
use super::regs;
use super::scale::{self, Thermistor};
use crate::input::Input;
use crate::time::Instant;
use crate::units::{DeciCelsius, MilliVolts};

/// Events that may wait between two drains: a reading per board plus a few more.
pub const EVENT_CAPACITY: usize = MAX_MODULES as usize + 16;

/// Settings of the bus master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MasterConfig {
    /// Boards on the ring, 1..=62.
    pub modules: u8,
    /// A measurement cycle starts this often (a cycle that takes longer starts the next at
    /// once).
    pub scan_period_ms: u32,
    /// Send reads with a CRC byte (pyBMS style) instead of without (TeslaBMS style).
    pub read_crc: bool,
    /// Waited beyond the wire time of request and reply before a reply counts as missing;
    /// covers the boards' forwarding delay and, on a real port, the UART driver's latency.
    pub reply_margin_us: u32,
    /// Waited after the broadcast conversion before reading the results.
    pub conversion_wait_us: u32,
    /// Extra attempts per request after a bad or missing reply.
    pub retries: u8,
    /// Consecutive failed cycles before a board is reported lost.
    pub lost_after: u8,
    /// While boards are lost or missing, the ring is re-enumerated this often.
    pub rediscover_ms: u32,
    /// Balance timer written with every balance mask, seconds (1..=63). The boards switch
    /// their balance resistors off by themselves when it runs out, so a master that dies
    /// cannot leave them bleeding.
    pub balance_time_s: u8,
    /// Hardware protector thresholds programmed at set-up, if any.
    pub protector: Option<ProtectorConfig>,
    /// Constants of the second thermistor input.
    pub ts2: Thermistor,
}

/// Thresholds of the boards' own comparators: the last line of defence, independent of any
/// software. They are set beyond the pack controller's maximum-safety limits so that the
/// software acts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProtectorConfig {
    /// Cell over-voltage threshold.
    pub cov_mv: MilliVolts,
    /// Time above it before the fault latches, ms (up to 3100).
    pub cov_delay_ms: u32,
    /// Cell under-voltage threshold.
    pub cuv_mv: MilliVolts,
    /// Time below it before the fault latches, ms (up to 3100).
    pub cuv_delay_ms: u32,
    /// Over-temperature threshold of both thermistors.
    pub ot_dc: DeciCelsius,
    /// Time above it before the alert latches, ms (up to 2550).
    pub ot_delay_ms: u32,
}

impl ProtectorConfig {
    /// The group-3 registers and the values that program these thresholds, or `None` when
    /// one cannot be programmed.
    pub fn codes(&self) -> Option<[(u8, u8); 6]> {
        let ot = scale::ot_code(self.ot_dc)? & 0x0F;
        Some([
            (regs::CONFIG_COV, scale::cov_code(self.cov_mv)?),
            (regs::CONFIG_COVT, scale::protector_delay_code(self.cov_delay_ms)?),
            (regs::CONFIG_CUV, scale::cuv_code(self.cuv_mv)?),
            (regs::CONFIG_CUVT, scale::protector_delay_code(self.cuv_delay_ms)?),
            (regs::CONFIG_OT, (ot << 4) | ot),
            (regs::CONFIG_OTT, scale::ot_delay_code(self.ot_delay_ms)?),
        ])
    }
}

impl MasterConfig {
    /// Settings for `modules` boards: a scan every 100 ms, TeslaBMS-style reads, 2 ms reply
    /// margin, two retries, lost after three failed cycles, the protector at 4.30 V / 2.50 V /
    /// 65 °C (beyond the Tesla preset's 4.25 V / 2.80 V / 60 °C maximum-safety limits).
    pub const fn tesla(modules: u8) -> MasterConfig {
        MasterConfig {
            modules,
            scan_period_ms: 100,
            read_crc: false,
            reply_margin_us: 2_000,
            conversion_wait_us: 200,
            retries: 2,
            lost_after: 3,
            rediscover_ms: 5_000,
            balance_time_s: 60,
            protector: Some(ProtectorConfig {
                cov_mv: MilliVolts(4_300),
                cov_delay_ms: 1_000,
                cuv_mv: MilliVolts(2_500),
                cuv_delay_ms: 1_000,
                ot_dc: DeciCelsius(650),
                ot_delay_ms: 2_000,
            }),
            ts2: Thermistor::PYBMS,
        }
    }

    /// Checks the settings; the first problem found.
    pub fn validate(&self) -> Result<(), MasterConfigError> {
        use MasterConfigError as E;
        if self.modules == 0 || self.modules > MAX_MODULES {
            return Err(E::Modules);
        }
        if self.balance_time_s == 0 || self.balance_time_s > 63 {
            return Err(E::BalanceTime);
        }
        if let Some(p) = self.protector {
            if p.codes().is_none() {
                return Err(E::Protector);
            }
        }
        Ok(())
    }
}

/// A setting out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MasterConfigError {
    /// `modules` is not in 1..=62.
    Modules,
    /// `balance_time_s` is not in 1..=63.
    BalanceTime,
    /// A protector threshold or delay cannot be programmed into the boards.
    Protector,
}

/// One board's measurement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Board index, 0 for the board nearest the master (address 1).
    pub module: u8,
    /// When the conversion was started.
    pub sampled_at: Instant,
    /// The six cells, cell 1 first.
    pub cells: [MilliVolts; regs::CELLS],
    /// The two thermistors.
    pub temperatures: [DeciCelsius; regs::THERMISTORS],
    /// Which thermistors read a plausible value (an open or shorted one reads outside the
    /// conversion table and is not reported).
    pub temperature_valid: [bool; regs::THERMISTORS],
    /// The module voltage from the board's own divider.
    pub module_mv: MilliVolts,
    /// DEVICE_STATUS.
    pub status: u8,
}

impl Reading {
    /// The cell voltages as an input for the pack controller (cells numbered along the ring,
    /// six per board).
    pub fn cell_input(&self) -> Input<'_> {
        Input::CellVoltages {
            sampled_at: self.sampled_at,
            first: u16::from(self.module) * regs::CELLS as u16,
            mv: &self.cells,
        }
    }

    /// The valid thermistors as inputs for the pack controller (two sensors per board).
    pub fn temperature_inputs(&self) -> impl Iterator<Item = Input<'_>> {
        let first = u16::from(self.module) * regs::THERMISTORS as u16;
        (0..regs::THERMISTORS).filter(|&k| self.temperature_valid[k]).map(move |k| {
            Input::Temperatures {
                sampled_at: self.sampled_at,
                first: first + k as u16,
                dc: core::slice::from_ref(&self.temperatures[k]),
            }
        })
    }
}

/// What the master reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Enumeration finished.
    Enumerated {
        /// Boards that took an address.
        found: u8,
        /// Boards configured.
        expected: u8,
    },
    /// A board was measured.
    Reading(Reading),
    /// A board's latched alert and fault bits, as read before clearing them.
    Faults {
        /// Board index.
        module: u8,
        /// ALERT_STATUS.
        alert: u8,
        /// FAULT_STATUS.
        fault: u8,
        /// COV_FAULT (bit k = cell k+1).
        cov: u8,
        /// CUV_FAULT.
        cuv: u8,
    },
    /// A board failed `lost_after` cycles in a row.
    Lost {
        /// Board index.
        module: u8,
    },
    /// A lost board answers again.
    Recovered {
        /// Board index.
        module: u8,
    },
    /// A measurement cycle ended.
    CycleDone {
        /// When it started.
        started: Instant,
        /// When it ended.
        finished: Instant,
        /// Boards measured.
        measured: u8,
        /// Boards that failed.
        missed: u8,
    },
}

/// Where the master stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Resetting and addressing the boards.
    Enumerating,
    /// Clearing faults and writing settings.
    SettingUp,
    /// Waiting for the next cycle.
    Idle,
    /// Measuring.
    Measuring,
    /// Writing balance settings.
    Balancing,
    /// Nothing answered the reset; trying again later.
    NoRing,
    /// Putting the boards to sleep or waking them.
    Sleeping,
    /// The boards sleep: no measurements, no balancing, until [`Master::wake`].
    Asleep,
    /// Looking for lost boards that came back unaddressed (after a power glitch) and giving
    /// them their old addresses, without disturbing the boards that still answer.
    Readdressing,
}

/// One board as the master sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BoardStatus {
    /// It took an address at the last enumeration.
    pub present: bool,
    /// Reported lost and not back yet.
    pub lost: bool,
    /// Consecutive failed cycles.
    pub failed_cycles: u8,
    /// Sample time of its last good reading.
    pub last_good: Option<Instant>,
    /// Its last reading reported a tripped hardware protector.
    pub protector_tripped: bool,
    /// Balance mask it was last told (bit k = cell k+1).
    pub balance_sent: u8,
    /// Balance mask wanted.
    pub balance_wanted: u8,
    /// When the balance mask was last written (its timer restarted).
    pub balance_written_at: Option<Instant>,
}

/// Counters for telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct MasterCounters {
    /// Cycles completed.
    pub cycles: u32,
    /// Replies with a bad CRC.
    pub crc_errors: u32,
    /// Replies that did not come in time.
    pub timeouts: u32,
    /// Reads that came back unanswered.
    pub unanswered: u32,
    /// Requests sent again.
    pub retries: u32,
    /// Bytes received that belonged to no request.
    pub stray_bytes: u32,
    /// Enumerations run.
    pub enumerations: u32,
    /// Events dropped because nobody drained them.
    pub dropped_events: u32,
}

/// The bus master.
#[derive(Debug)]
pub struct Master {
    config: MasterConfig,
    link: Link<Step>,
    phase: Phase,
    /// Boards found by the last enumeration.
    found: u8,
    boards: [BoardStatus; MAX_MODULES as usize],
    /// Requests left in the present phase, in order.
    plan: Deque<Step, PLAN_CAPACITY>,
    /// Start of the present or last cycle.
    cycle_started: Instant,
    /// Conversion time of the present cycle.
    sampled_at: Instant,
    measured: u8,
    missed: u8,
    /// A phase-level wait (after reset, conversion, or until the next cycle).
    wait_until: Option<Instant>,
    next_scan: Instant,
    last_enumeration: Instant,
    /// Whether the boards should sleep (set by `sleep`/`wake`), and whether they do.
    want_asleep: bool,
    asleep: bool,
    /// Enumerations started over in a row because an address assignment went unconfirmed.
    enumeration_restarts: u8,
    events: Deque<Event, EVENT_CAPACITY>,
    counters: MasterCounters,
}

/// Most requests one phase plans: set-up writes 2 + 4 + 12, one measurement read per board.
const PLAN_CAPACITY: usize = 2 * MAX_MODULES as usize + 32;

/// One planned request and what its reply means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Reset,
    Probe,
    Assign(u8),
    Setup(Request),
    Convert,
    Measure(u8),
    ReadFaults(u8),
    Clear(u8, Request),
    BalanceTime(u8),
    BalanceMask(u8, u8),
    /// Give the first unaddressed board this lost board's address.
    Readdress(u8),
    /// A broadcast write of the sleep or wake sequence.
    Sleep(Request),
}

impl Master {
    /// A master that starts enumerating at `now`.
    pub fn new(config: MasterConfig, now: Instant) -> Result<Master, MasterConfigError> {
        config.validate()?;
        let mut master = Master {
            config,
            link: Link::new(),
            phase: Phase::Enumerating,
            found: 0,
            boards: [BoardStatus::default(); MAX_MODULES as usize],
            plan: Deque::new(),
            cycle_started: now,
            sampled_at: now,
            measured: 0,
            missed: 0,
            wait_until: None,
            next_scan: now,
            last_enumeration: now,
            enumeration_restarts: 0,
            want_asleep: false,
            asleep: false,
            events: Deque::new(),
            counters: MasterCounters::default(),
        };
        master.enumerate(now);
        Ok(master)
    }

    /// Bytes received from the ring at `now`, in any chunks.
    pub fn handle_received(&mut self, now: Instant, bytes: &[u8]) {
        self.link.receive(bytes);
        self.check_reply(now);
    }

    /// A deadline passed (calling it early or twice is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.link.overdue(now) {
            let unanswered = self.link.came_back();
            if let Some(flight) = self.link.finish() {
                if unanswered {
                    self.counters.unanswered = self.counters.unanswered.saturating_add(1);
                } else {
                    self.counters.timeouts = self.counters.timeouts.saturating_add(1);
                }
                self.failed(now, flight.purpose, flight.request, flight.attempt, unanswered);
            }
        }
        if self.link.in_flight.is_none() && self.wait_until.is_some_and(|t| now >= t) {
            self.wait_until = None;
            self.advance(now);
        }
    }

    /// Bytes to write to the UART now, if any. Drain after every `handle_*`.
    pub fn poll_transmit(&mut self, out: &mut [u8; 4]) -> Option<usize> {
        let (bytes, len) = self.link.take_transmit()?;
        *out = bytes;
        Some(len)
    }

    /// The next event, if any. Drain after every `handle_*`.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.link.deadline(), self.wait_until) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Asks board `module` to bleed the cells in `mask` (bit k = cell k+1; bits 6 and 7 are
    /// ignored). Written at the end of the next cycle, and refreshed before the boards' own
    /// balance timer runs out.
    pub fn set_balance(&mut self, module: u8, mask: u8) {
        if let Some(board) = self.boards.get_mut(usize::from(module)) {
            board.balance_wanted = mask & 0x3F;
        }
    }

    /// Puts the boards to sleep after the present cycle: measuring and balancing stop (their
    /// balance resistors switch off) until [`wake`](Self::wake). For a pack in storage, where
    /// the boards' own supply current would slowly drain it. The boards' hardware protector
    /// keeps watching while they sleep.
    pub fn sleep(&mut self, now: Instant) {
        self.want_asleep = true;
        self.change_sleep(now);
    }

    /// Wakes sleeping boards and resumes measuring.
    pub fn wake(&mut self, now: Instant) {
        self.want_asleep = false;
        self.change_sleep(now);
    }

    /// Where the master stands.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Boards found by the last enumeration.
    pub fn found(&self) -> u8 {
        self.found
    }

    /// One board's state.
    pub fn board(&self, module: u8) -> Option<&BoardStatus> {
        self.boards.get(usize::from(module))
    }

    /// Whether any board's own protector has tripped (cell over or under voltage, over
    /// temperature). The adapter reports it to the pack controller as a hardware fault.
    pub fn protector_tripped(&self) -> bool {
        self.boards.iter().any(|b| b.protector_tripped)
    }

    /// Counters for telemetry.
    pub fn counters(&self) -> MasterCounters {
        let mut c = self.counters;
        c.crc_errors = self.link.crc_errors;
        c.stray_bytes = self.link.stray_bytes;
        c
    }

    /// The settings.
    pub fn config(&self) -> &MasterConfig {
        &self.config
    }
}
