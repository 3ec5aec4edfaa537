//! The gateway: our pack controllers and CAN BMSes into the [combiner](crate::combiner), the
//! combined battery into every inverter's protocol, the combiner's connect and disconnect into
//! each pack's start and stop or relay.
//!
//! It owns the [`Combiner`], one reader per CAN pack ([`lv::Reader`] or [`byd_can::Reader`]) and
//! one publisher per inverter ([`lv::Publisher`] or [`byd_can::Publisher`]), and makes every
//! decision that joins them:
//!
//! - **Reports.** Our own pack controller's report is what the adapter hands in (today its
//!   [`Bms::battery_view`](crate::Bms::battery_view) with whether its contactors are closed);
//!   a controller with nothing to report yet is skipped. A CAN pack's report is its reader's
//!   view, made once the frames that arrived together have all been read (at the next call
//!   that is not a frame from a pack bus), only when a frame the reader stored arrived since
//!   the last report, and only from frames at most [`GatewayConfig::report_max_age`] old. Its
//!   `sampled_at` is when its last frame arrived, and it is connected while the gateway holds
//!   its relay closed.
//! - **Commands.** [`CombinerAction::Connect`] becomes `Start` for our own pack controller and
//!   a closed relay for a CAN pack; [`CombinerAction::Disconnect`] becomes `Stop` (the graceful
//!   one) or an open relay. Only the latest command per pack waits to be carried out: a
//!   connect and a disconnect in one drain leave the disconnect. An operator's stop and start
//!   go through the combiner too ([`handle_operator`](Gateway::handle_operator)): a stop drops
//!   the pack and holds it out, a start only lifts the hold, so nothing closes a pack the
//!   combiner has not admitted.
//! - **Inverters.** A frame from an inverter that its publisher recognises (an LV keep-alive,
//!   any BYD inverter frame) tells the combiner the inverter is alive; in LV sync mode a 0x305
//!   also schedules a cycle. Each publisher sends the combiner's view for its inverter, taken
//!   when a cycle (LV) or frame (BYD) starts. The current each inverter carries, as a meter
//!   reads it, goes to the combiner's obedience check.
//! - **BYD racks** send nothing until they hear an inverter, so the gateway sends a BYD rack the
//!   inverter's status frame (0x191) every [`BYD_WAKE_PERIOD`].
//!
//! # Driving it
//!
//! Sans-IO like [`Bms`](crate::Bms); the adapter moves frames, time and commands and decides
//! nothing:
//!
//! 1. every frame received on a pack's or an inverter's bus: [`handle_frame`](Gateway::handle_frame);
//! 2. each report of one of our own pack controllers:
//!    [`handle_pack_report`](Gateway::handle_pack_report);
//! 3. each inverter's measured current: [`handle_inverter_current`](Gateway::handle_inverter_current);
//!    a setpoint or a resume: [`handle_input`](Gateway::handle_input); an operator's stop or
//!    start for a pack: [`handle_operator`](Gateway::handle_operator);
//! 4. at [`poll_timeout`](Gateway::poll_timeout): [`handle_timeout`](Gateway::handle_timeout);
//! 5. after any of these, drain [`poll_command`](Gateway::poll_command) (carry each to the pack
//!    controller or relay), [`poll_event`](Gateway::poll_event) (every combiner action, for
//!    logs and telemetry; connect and disconnect included) and
//!    [`poll_transmit`](Gateway::poll_transmit) (put each frame on its bus).
//!
//! The simulator's system engine drives it this way, once per tick; the Linux daemon does the
//! same with real buses and its clock.

mod config;

use heapless::{Deque, Vec};

pub use self::config::{
    Bus, DEFAULT_REPORT_MAX_AGE, GatewayCommand, GatewayConfig, GatewayConfigError, InverterLink,
    PackLink,
};
use crate::combiner::{
    ACTION_QUEUE_CAPACITY, Combiner, CombinerAction, CombinerInput, CombinerStatus, MAX_PACKS,
    OperatorCommand,
};
use crate::input::Command;
use crate::proto::can::Frame;
use crate::proto::{byd_can, lv};
use crate::time::{Duration, Instant};
use crate::units::MilliAmps;
use crate::view::BatteryView;

/// How often a BYD rack is sent the inverter's status frame, so that it keeps talking.
pub const BYD_WAKE_PERIOD: Duration = Duration::from_secs(2);

/// How many events may wait between two drains of [`Gateway::poll_event`].
pub const EVENT_QUEUE_CAPACITY: usize = ACTION_QUEUE_CAPACITY;

/// What the gateway counts; nothing here is an error of the battery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GatewayCounters {
    /// Frames on a bus the configuration does not have.
    pub unknown_bus: u32,
    /// Pack reports for a pack that is not one of our pack controllers.
    pub misrouted_reports: u32,
    /// Reports passed to the combiner, CAN packs and our own together.
    pub reports: u32,
    /// Events dropped because [`Gateway::poll_event`] was not drained (the oldest go first).
    pub events_dropped: u32,
}

/// How a pack is heard.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant, reason = "fixed capacity: no allocation to box into")]
enum Reader {
    Controller,
    Lv(lv::Reader),
    Byd(byd_can::Reader),
}

impl Reader {
    /// When the last frame the reader stored arrived.
    fn heard(&self) -> Option<Instant> {
        match self {
            Reader::Controller => None,
            Reader::Lv(r) => r.last_heard(),
            Reader::Byd(r) => r.latest().iter().flatten().map(|(at, _)| *at).max(),
        }
    }
}

#[derive(Clone, Debug)]
struct Pack {
    reader: Reader,
    /// Whether we hold its relay closed (CAN packs).
    relay_closed: bool,
    /// A frame arrived since the last settle.
    pending: bool,
    /// The arrival time of the last frame a report was made from.
    reported: Option<Instant>,
    /// The next wake-up frame to a BYD rack.
    next_wake: Instant,
}

/// The battery side of one inverter's bus.
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant, reason = "fixed capacity: no allocation to box into")]
enum Side {
    Lv(lv::Publisher),
    Byd(byd_can::Publisher),
}

/// Packs and inverters around one combiner. See the [module documentation](self).
#[derive(Debug)]
pub struct Gateway {
    combiner: Combiner,
    packs: Vec<Pack, MAX_PACKS>,
    sides: Vec<Side, { crate::combiner::MAX_INVERTERS }>,
    report_max_age: Duration,
    now: Instant,
    commands: [Option<GatewayCommand>; MAX_PACKS],
    events: Deque<CombinerAction, EVENT_QUEUE_CAPACITY>,
    counters: GatewayCounters,
}

impl Gateway {
    /// A gateway that has heard nothing; every limit is zero until packs join.
    pub fn new(config: GatewayConfig, now: Instant) -> Result<Gateway, GatewayConfigError> {
        config.validate()?;
        let combiner = Combiner::new(config.combiner, now).map_err(GatewayConfigError::Combiner)?;
        let mut packs = Vec::new();
        for link in &config.packs {
            let reader = match link {
                PackLink::Controller => Reader::Controller,
                PackLink::LvCan => Reader::Lv(lv::Reader::new()),
                PackLink::BydCan => Reader::Byd(byd_can::Reader::new()),
            };
            let pack = Pack {
                reader,
                relay_closed: false,
                pending: false,
                reported: None,
                next_wake: now,
            };
            // Same capacity as the configuration's list.
            let _ = packs.push(pack);
        }
        let mut sides = Vec::new();
        for link in &config.inverters {
            let side = match *link {
                InverterLink::LvCan { profile, dlc, mode, spacing } => {
                    let name = match profile {
                        lv::Profile::Pylontech | lv::Profile::PylontechV13 => *b"PYLON\0\0\0",
                        _ => *b"CELLWRDN",
                    };
                    Side::Lv(lv::Publisher::new(profile, dlc, name, mode, spacing))
                }
                InverterLink::BydCan { capacity_wh } => {
                    Side::Byd(byd_can::Publisher::new(capacity_wh))
                }
            };
            // Same capacity as the configuration's list.
            let _ = sides.push(side);
        }
        Ok(Gateway {
            combiner,
            packs,
            sides,
            report_max_age: config.report_max_age,
            now,
            commands: [None; MAX_PACKS],
            events: Deque::new(),
            counters: GatewayCounters::default(),
        })
    }

    /// The combiner, for its status and configuration.
    pub fn combiner(&self) -> &Combiner {
        &self.combiner
    }

    /// The combiner's telemetry snapshot.
    pub fn status(&self) -> &CombinerStatus {
        self.combiner.status()
    }

    /// What `inverter` is told now.
    pub fn view(&self, inverter: u8) -> BatteryView {
        self.combiner.view(inverter)
    }

    /// Whether the gateway holds this CAN pack's relay closed.
    pub fn relay_closed(&self, pack: u8) -> bool {
        self.packs.get(usize::from(pack)).is_some_and(|p| p.relay_closed)
    }

    /// The counters.
    pub fn counters(&self) -> GatewayCounters {
        self.counters
    }

    /// Takes a frame received on `bus` at `now`. Frames of a pack's bus are read at once and
    /// reported together at the next call of any other kind.
    pub fn handle_frame(&mut self, bus: Bus, now: Instant, frame: &Frame) {
        match bus {
            Bus::Pack(pack) => {
                self.advance(now);
                let Some(p) = self.packs.get_mut(usize::from(pack)) else {
                    self.counters.unknown_bus = self.counters.unknown_bus.saturating_add(1);
                    return;
                };
                match &mut p.reader {
                    // Our own pack controllers report through `handle_pack_report`, not a bus.
                    Reader::Controller => {
                        self.counters.unknown_bus = self.counters.unknown_bus.saturating_add(1);
                        return;
                    }
                    Reader::Lv(r) => r.handle_frame(now, frame),
                    Reader::Byd(r) => r.handle_frame(now, frame),
                }
                p.pending = true;
            }
            Bus::Inverter(inverter) => {
                self.settle(now);
                let Some(side) = self.sides.get_mut(usize::from(inverter)) else {
                    self.counters.unknown_bus = self.counters.unknown_bus.saturating_add(1);
                    return;
                };
                let alive = match side {
                    Side::Lv(p) => p.handle_frame(now, frame).is_some(),
                    Side::Byd(p) => p.handle_frame(now, frame).is_some(),
                };
                if alive {
                    self.combiner
                        .handle_input(self.now, CombinerInput::InverterAlive { inverter, at: now });
                }
                self.drain_combiner();
            }
        }
    }

    /// Takes a report of one of our own pack controllers: what it would tell an inverter on
    /// its own (`None` while it has nothing to report) and whether its contactors are closed.
    pub fn handle_pack_report(
        &mut self,
        pack: u8,
        now: Instant,
        view: Option<BatteryView>,
        connected: bool,
    ) {
        self.settle(now);
        let ours = self
            .packs
            .get(usize::from(pack))
            .is_some_and(|p| matches!(p.reader, Reader::Controller));
        if !ours {
            self.counters.misrouted_reports = self.counters.misrouted_reports.saturating_add(1);
            return;
        }
        if let Some(view) = view {
            self.counters.reports = self.counters.reports.saturating_add(1);
            let input = CombinerInput::Pack { pack, sampled_at: now, view, connected };
            self.combiner.handle_input(self.now, input);
        }
        self.drain_combiner();
    }

    /// Takes the current `inverter` carries, positive charging the battery, as a meter on its
    /// output read it at `now`.
    pub fn handle_inverter_current(&mut self, inverter: u8, now: Instant, current: MilliAmps) {
        self.settle(now);
        let input = CombinerInput::InverterCurrent { inverter, sampled_at: now, ma: current };
        self.combiner.handle_input(self.now, input);
        self.drain_combiner();
    }

    /// Passes any other input to the combiner: a remote setpoint, its withdrawal, a resume
    /// after an escalation.
    pub fn handle_input(&mut self, now: Instant, input: CombinerInput) {
        self.settle(now);
        self.combiner.handle_input(self.now, input);
        self.drain_combiner();
    }

    /// Takes an operator's stop or start for `pack`. A stop takes the pack out of the bank and
    /// keeps it out (a graceful `Stop` to our own pack controller, an open relay for a CAN pack,
    /// both through [`poll_command`](Self::poll_command)); a start lets it rejoin, and the
    /// `Start` or closed relay follows only when the combiner admits it. A pack number beyond
    /// the configuration is counted in the combiner's `out_of_range`.
    pub fn handle_operator(&mut self, now: Instant, pack: u8, command: OperatorCommand) {
        self.handle_input(now, CombinerInput::Operator { pack, command });
    }

    /// Reports what waits and lets the combiner act on its deadlines. Safe to call early.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.settle(now);
        if self.combiner.poll_timeout().is_some_and(|t| t <= self.now) {
            self.combiner.handle_timeout(self.now);
        }
        self.drain_combiner();
    }

    /// The next command for a pack, in pack order, until `None`.
    pub fn poll_command(&mut self) -> Option<GatewayCommand> {
        self.settle(self.now);
        self.commands.iter_mut().find_map(Option::take)
    }

    /// The next combiner action, for logs and telemetry, until `None`.
    pub fn poll_event(&mut self) -> Option<CombinerAction> {
        self.settle(self.now);
        self.events.pop_front()
    }

    /// The next frame due at `now` and its bus, until `None`: inverters in order, then the BYD
    /// racks' wake-up frames.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(Bus, Frame)> {
        self.settle(now);
        let now = self.now;
        for (k, side) in self.sides.iter_mut().enumerate() {
            // MAX_INVERTERS (4) fits in u8.
            let view = self.combiner.view(k as u8);
            let frame = match side {
                Side::Lv(p) => p.poll_transmit(now, &view),
                Side::Byd(p) => p.poll_transmit(now, &view),
            };
            if let Some(frame) = frame {
                return Some((Bus::Inverter(k as u8), frame));
            }
        }
        for (k, pack) in self.packs.iter_mut().enumerate() {
            if matches!(pack.reader, Reader::Byd(_)) && pack.next_wake <= now {
                pack.next_wake = now + BYD_WAKE_PERIOD;
                // MAX_PACKS (8) fits in u8.
                return Some((Bus::Pack(k as u8), byd_can::encode_inverter_status()));
            }
        }
        None
    }

    /// The next instant at which the gateway has something to do without an input: now while
    /// frames wait to be reported, else the earliest deadline of the combiner and publishers.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.packs.iter().any(|p| p.pending) {
            return Some(self.now);
        }
        let publishers = self.sides.iter().filter_map(|s| match s {
            Side::Lv(p) => p.poll_timeout(),
            Side::Byd(p) => p.poll_timeout(),
        });
        let wakes =
            self.packs.iter().filter(|p| matches!(p.reader, Reader::Byd(_))).map(|p| p.next_wake);
        self.combiner.poll_timeout().into_iter().chain(publishers).chain(wakes).min()
    }

    /// Time only moves forward: an input stamped earlier than one already taken counts as now.
    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    /// Reports every CAN pack whose frames arrived since the last settle, in pack order.
    fn settle(&mut self, now: Instant) {
        self.advance(now);
        if !self.packs.iter().any(|p| p.pending) {
            return;
        }
        let now = self.now;
        for (k, p) in self.packs.iter_mut().enumerate() {
            if !core::mem::take(&mut p.pending) {
                continue;
            }
            let heard = p.reader.heard();
            if heard == p.reported {
                continue;
            }
            let view = match &p.reader {
                Reader::Controller => None,
                Reader::Lv(r) => r.view(now, self.report_max_age),
                Reader::Byd(r) => r.view(now, self.report_max_age),
            };
            if let (Some(at), Some(view)) = (heard, view) {
                p.reported = heard;
                self.counters.reports = self.counters.reports.saturating_add(1);
                // MAX_PACKS (8) fits in u8.
                let input = CombinerInput::Pack {
                    pack: k as u8,
                    sampled_at: at,
                    view,
                    connected: p.relay_closed,
                };
                self.combiner.handle_input(now, input);
            }
        }
        self.drain_combiner();
    }

    /// Turns the combiner's actions into commands and events.
    fn drain_combiner(&mut self) {
        while let Some(action) = self.combiner.poll_action() {
            let switch = match action {
                CombinerAction::Connect { pack } => Some((pack, true)),
                CombinerAction::Disconnect { pack, .. } => Some((pack, false)),
                _ => None,
            };
            if let Some((pack, connect)) = switch {
                if let Some(p) = self.packs.get_mut(usize::from(pack)) {
                    let command = match p.reader {
                        Reader::Controller => GatewayCommand::Controller {
                            pack,
                            command: if connect { Command::Start } else { Command::Stop },
                        },
                        Reader::Lv(_) | Reader::Byd(_) => {
                            p.relay_closed = connect;
                            GatewayCommand::Relay { pack, closed: connect }
                        }
                    };
                    self.commands[usize::from(pack)] = Some(command);
                }
            }
            if self.events.is_full() {
                let _ = self.events.pop_front();
                self.counters.events_dropped = self.counters.events_dropped.saturating_add(1);
            }
            // Room was made above.
            let _ = self.events.push_back(action);
        }
    }
}
