//! The battery side: what a BYD battery sends, and when.

use super::codec::{
    Message, decode, encode_alarm, encode_battery_info, encode_cell_info, encode_limits,
    encode_states, identification, is_inverter_frame,
};
use crate::proto::can::Frame;
use crate::time::{Duration, Instant};
use crate::view::BatteryView;

/// Period of 0x110 (limits).
pub const LIMITS_PERIOD: Duration = Duration::from_secs(2);
/// Period of 0x150, 0x1D0 and 0x210 (states, battery info, cell info).
pub const STATES_PERIOD: Duration = Duration::from_secs(10);
/// Period of 0x190 (alarm).
pub const ALARM_PERIOD: Duration = Duration::from_secs(60);

/// The battery side of the protocol, sans-IO: it decides which frame goes out when, and the
/// adapter puts the frames on the bus.
///
/// # Driving contract
///
/// The adapter waits for the next received frame or the deadline of
/// [`poll_timeout`](Self::poll_timeout), whichever comes first, and then
///
/// 1. hands a received frame to [`handle_frame`](Self::handle_frame) (any frame: the ones
///    that are not the inverter's are ignored), forwarding the inverter message it returns to
///    whoever wants it;
/// 2. drains [`poll_transmit`](Self::poll_transmit) with the current view of the battery until
///    it returns `None`, sending each frame;
/// 3. asks [`poll_timeout`](Self::poll_timeout) for the next deadline.
///
/// Calling `poll_transmit` early, late or more often than needed is harmless: it only sends
/// what is due at `now`, and a late call sends each overdue frame once, not once per missed
/// period.
///
/// # Behaviour
///
/// The publisher is silent until it hears an inverter frame (any frame with an inverter
/// identifier, §3.2, even one that does not decode). From then on it sends:
///
/// - the identification burst, 7 frames (§3.5): once on the first inverter frame, and again on
///   every identification request (0x151 with byte 0 bit 0 set);
/// - 0x110 limits: every [`LIMITS_PERIOD`] (2 s);
/// - 0x150 states, 0x1D0 battery info, 0x210 cell info: every [`STATES_PERIOD`] (10 s);
/// - 0x190 alarm: every [`ALARM_PERIOD`] (60 s).
///
/// Frames due at the same instant go out in the order of this list: the burst (in §3.5
/// order), then 0x110, 0x150, 0x1D0, 0x210, 0x190. The first inverter frame makes all of them
/// due at once. A request that arrives during a burst restarts it, so the inverter always
/// receives a whole burst after its request.
///
/// It keeps sending when the inverter falls silent: whether a silent inverter is a problem is
/// for the adapter to decide, from [`heard`](Self::heard).
#[derive(Clone, Debug)]
pub struct Publisher {
    capacity_wh: u32,
    heard: Option<Instant>,
    burst: Option<Burst>,
    /// Next due time of each cyclic frame, in [`CYCLIC`] order; `None` until heard.
    due: [Option<Instant>; CYCLIC.len()],
}

/// A pending identification burst.
#[derive(Clone, Copy, Debug)]
struct Burst {
    /// When it became due.
    due: Instant,
    /// The next of its frames to send.
    next: usize,
}

/// The cyclic frames, in sending order, with their periods.
const CYCLIC: [(Cyclic, Duration); 5] = [
    (Cyclic::Limits, LIMITS_PERIOD),
    (Cyclic::States, STATES_PERIOD),
    (Cyclic::BatteryInfo, STATES_PERIOD),
    (Cyclic::CellInfo, STATES_PERIOD),
    (Cyclic::Alarm, ALARM_PERIOD),
];

#[derive(Clone, Copy, Debug)]
enum Cyclic {
    Limits,
    States,
    BatteryInfo,
    CellInfo,
    Alarm,
}

impl Publisher {
    /// A silent publisher for a battery of `capacity_wh` watt-hours (announced in the
    /// identification burst).
    pub fn new(capacity_wh: u32) -> Publisher {
        Publisher { capacity_wh, heard: None, burst: None, due: [None; CYCLIC.len()] }
    }

    /// The capacity announced in the identification burst, watt-hours.
    pub fn capacity_wh(&self) -> u32 {
        self.capacity_wh
    }

    /// Changes the capacity announced by the bursts that start from now on.
    pub fn set_capacity_wh(&mut self, capacity_wh: u32) {
        self.capacity_wh = capacity_wh;
    }

    /// When the last inverter frame arrived, if one ever did.
    pub fn heard(&self) -> Option<Instant> {
        self.heard
    }

    /// Takes a received frame. An inverter frame wakes the publisher (the first one schedules
    /// the burst and every cyclic frame for `now`) and an identification request schedules a
    /// burst. Returns the decoded message when the frame is a valid inverter frame, `None` for
    /// anything else. Never panics.
    pub fn handle_frame(&mut self, now: Instant, frame: &Frame) -> Option<Message> {
        if !is_inverter_frame(frame) {
            return None;
        }
        if self.heard.is_none() {
            self.burst = Some(Burst { due: now, next: 0 });
            self.due = [Some(now); CYCLIC.len()];
        }
        self.heard = Some(now);
        let message = decode(frame).ok().filter(Message::is_from_inverter)?;
        if message == Message::IdentifyRequest {
            self.burst = Some(Burst { due: now, next: 0 });
        }
        Some(message)
    }

    /// The next frame due at `now`, built from `view`, or `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant, view: &BatteryView) -> Option<Frame> {
        if let Some(burst) = self.burst.as_mut().filter(|b| b.due <= now) {
            let frames = identification(self.capacity_wh);
            let frame = frames.get(burst.next).copied();
            burst.next += 1;
            if burst.next >= frames.len() {
                self.burst = None;
            }
            // Always `Some`: `next` is below the burst's length here, since it is reset once it
            // reaches it.
            return frame;
        }
        for ((kind, period), due) in CYCLIC.iter().zip(self.due.iter_mut()) {
            let Some(at) = due.filter(|&at| at <= now) else { continue };
            // Keep the cadence, but never schedule into the past: a late call sends the frame
            // once and resumes one period after `now`.
            let next = at + *period;
            *due = Some(if next > now { next } else { now + *period });
            return Some(match kind {
                Cyclic::Limits => encode_limits(view),
                Cyclic::States => encode_states(view),
                Cyclic::BatteryInfo => encode_battery_info(view),
                Cyclic::CellInfo => encode_cell_info(view),
                Cyclic::Alarm => encode_alarm(),
            });
        }
        None
    }

    /// When the next frame is due: `None` while silent.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let burst = self.burst.map(|b| b.due);
        self.due.iter().copied().chain([burst]).flatten().min()
    }
}
