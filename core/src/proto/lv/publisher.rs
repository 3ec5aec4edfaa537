//! The battery side: when each frame of the cycle goes out.

use heapless::Vec;

use super::{Dlc, KeepAlive, Message, Profile, decode, encode_cycle};
use crate::proto::can::Frame;
use crate::time::{Duration, Instant};
use crate::view::BatteryView;

/// In [`Mode::Sync`], the shortest time from the start of one cycle to the start of the next,
/// however fast keep-alives arrive. Inverters send one a second; half that keeps a battery
/// answering every one of them without letting a chatty or looping inverter flood the bus.
pub const SYNC_MIN_GAP: Duration = Duration::from_millis(500);

/// In [`Mode::Push`], the shortest period honoured; shorter ones are raised to it so that a
/// zero period cannot make [`Publisher::poll_transmit`] return frames forever at one instant.
pub const MIN_PERIOD: Duration = Duration::from_millis(10);

/// When the battery sends a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A cycle every `period` (at least [`MIN_PERIOD`]), the first one at the first
    /// [`Publisher::poll_transmit`], whether or not an inverter is listening. Cycles are
    /// scheduled from the previous cycle's due time, so they do not drift; a publisher that
    /// falls a whole period behind starts again from the time it caught up, without a burst.
    Push {
        /// Start of one cycle to the start of the next (Pylontech: 1 s).
        period: Duration,
    },
    /// One cycle after each inverter keep-alive (0x305), as bms_gateway's "send only after
    /// 0x305": the cycle starts at once, or [`SYNC_MIN_GAP`] after the previous cycle started if
    /// that is later. Keep-alives that arrive while one is waiting are answered by that one.
    Sync,
}

/// Battery-side sans-IO sender of the protocol.
///
/// Drive it like every engine in the core: pass received frames to
/// [`handle_frame`](Publisher::handle_frame), drain [`poll_transmit`](Publisher::poll_transmit)
/// until it returns `None`, and call it again at [`poll_timeout`](Publisher::poll_timeout).
///
/// A cycle's frames are all built from the view passed to the `poll_transmit` call that starts
/// the cycle, so one cycle is one consistent snapshot even when frames are spaced apart; the view
/// passed to later calls of the same cycle is not used. Frames within a cycle go out at least
/// `spacing` apart, measured from the time each was handed out. A cycle always finishes before
/// the next one starts.
#[derive(Clone, Debug)]
pub struct Publisher {
    profile: Profile,
    dlc: Dlc,
    name: [u8; 8],
    mode: Mode,
    spacing: Duration,
    /// The frames of the current cycle; those before `sent` are out.
    cycle: Vec<Frame, 16>,
    sent: usize,
    /// When the next frame of the current cycle is due.
    next_frame_at: Instant,
    /// When the next cycle is due: always set in push mode, set by a keep-alive in sync mode.
    next_cycle_at: Option<Instant>,
    last_cycle_start: Option<Instant>,
    last_keepalive: Option<Instant>,
    cycles: u32,
}

impl Publisher {
    /// A publisher for `profile` with frame lengths `dlc` and manufacturer name `name` (see
    /// [`encode_name`](super::encode_name)). `spacing` is the gap between frames inside a cycle
    /// (real Pylontech: about 88 ms; zero sends them back to back).
    pub fn new(
        profile: Profile,
        dlc: Dlc,
        name: [u8; 8],
        mode: Mode,
        spacing: Duration,
    ) -> Publisher {
        let next_cycle_at = match mode {
            Mode::Push { .. } => Some(Instant::ZERO),
            Mode::Sync => None,
        };
        Publisher {
            profile,
            dlc,
            name,
            mode,
            spacing,
            cycle: Vec::new(),
            sent: 0,
            next_frame_at: Instant::ZERO,
            next_cycle_at,
            last_cycle_start: None,
            last_keepalive: None,
            cycles: 0,
        }
    }

    /// Takes a frame from the bus. Returns the inverter keep-alive it is, if it is one, so the
    /// adapter can tell whoever tracks the inverter's presence; everything else, valid or not,
    /// is ignored. In [`Mode::Sync`] a 0x305 schedules a cycle.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) -> Option<KeepAlive> {
        let Ok(Message::KeepAlive(kind)) = decode(frame) else {
            return None;
        };
        self.last_keepalive = Some(now);
        if kind == KeepAlive::Ack305 && self.mode == Mode::Sync && self.next_cycle_at.is_none() {
            let earliest = self.last_cycle_start.map_or(now, |t| t + SYNC_MIN_GAP);
            self.next_cycle_at = Some(earliest.max(now));
        }
        Some(kind)
    }

    /// The next frame due at or before `now`, if any. Starts a new cycle from `view` when one
    /// is due and the previous one is out.
    pub fn poll_transmit(&mut self, now: Instant, view: &BatteryView) -> Option<Frame> {
        if self.sent >= self.cycle.len() {
            let due = self.next_cycle_at.filter(|due| *due <= now)?;
            self.start_cycle(now, due, view);
        }
        if now < self.next_frame_at {
            return None;
        }
        let frame = *self.cycle.get(self.sent)?;
        self.sent += 1;
        self.next_frame_at = now + self.spacing;
        Some(frame)
    }

    /// When [`poll_transmit`](Publisher::poll_transmit) next has something to send: the next
    /// frame of the current cycle, else the next cycle. `None` in sync mode while no keep-alive
    /// is waiting for an answer. A time in the past means "now".
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.sent < self.cycle.len() { Some(self.next_frame_at) } else { self.next_cycle_at }
    }

    /// The time of the last inverter keep-alive (any of 0x305, 0x306, 0x307).
    pub fn last_keepalive(&self) -> Option<Instant> {
        self.last_keepalive
    }

    /// Cycles started so far (saturating).
    pub fn cycles(&self) -> u32 {
        self.cycles
    }

    /// The profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn start_cycle(&mut self, now: Instant, due: Instant, view: &BatteryView) {
        encode_cycle(self.profile, self.dlc, &self.name, view, &mut self.cycle);
        self.sent = 0;
        self.next_frame_at = now;
        self.last_cycle_start = Some(now);
        // The first cycle is due whenever the adapter first polls; the schedule starts there.
        let due = if self.cycles == 0 { now } else { due };
        self.next_cycle_at = match self.mode {
            Mode::Push { period } => {
                let period = period.max(MIN_PERIOD);
                let next = due + period;
                Some(if next <= now { now + period } else { next })
            }
            Mode::Sync => None,
        };
        self.cycles = self.cycles.saturating_add(1);
    }
}
