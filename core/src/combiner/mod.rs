//! The combiner: n packs in parallel -> one virtual battery -> m inverters.
//!
//! Each pack reports what it would tell an inverter on its own (a [`BatteryView`]): our own
//! pack controllers through [`Bms::battery_view`](crate::Bms::battery_view), CAN BMSes through
//! the frames they send ([`proto::lv::Reader`](crate::proto::lv::Reader)). The combiner decides
//! which packs are on the bus and what every inverter is told:
//!
//! - **Join.** A pack is asked to connect only when its voltage is within
//!   [`join_window_mv`](CombinerConfig::join_window_mv) of the packs already on the bus (two
//!   packs at different voltages in parallel exchange a current limited only by their
//!   resistance), and only while the bank rests (its current at most
//!   [`join_current_max_ma`](CombinerConfig::join_current_max_ma)), when its voltage is close to
//!   its resting voltage. A pack outside the window is refused, reported once, and joins later
//!   if the voltages meet.
//! - **Plausibility.** Every report is checked against the pack's chemistry and cell count
//!   ([`plausible`]): voltage, voltage limits, current limits, current, SoC. A pack that sends
//!   an implausible report is faulty: reported once ([`CombinerAction::PackImplausible`]),
//!   counted, dropped and disconnected if it was on the bus, never joined and never averaged
//!   in, until its reports have been plausible for `rejoin_after_ms`.
//! - **N-1.** A joined pack whose report goes stale, or that reports itself disconnected, is
//!   dropped, asked to disconnect, and the limits are recomputed from the packs that remain.
//! - **Limits.** The charge voltage limit is the lowest of the packs', the discharge voltage
//!   limit the highest. The current limits come from the shares each pack carries of the bank's
//!   current, measured while current flows: the bank may take only as much as keeps the pack
//!   that carries the most for its limit inside that limit ([`share::bank_limit`]), never a
//!   plain sum. A share that grows is taken at once; one that shrinks is followed slowly. Until
//!   the first measurement after a join the shares are predicted from capacity and resistance;
//!   while the packs' currents disagree with the inverters', no share falls below that
//!   prediction or below what the unreported current could add to it (`measure.rs`). The
//!   shares of one direction say nothing of the other, nor of the current packs at different
//!   voltages exchange: each pack's offset beyond its predicted share, and the part of the
//!   bank's current that flows back through it when the current stops, bound the limits so
//!   that the pack stays inside its own wherever the current moves within them, a stop and a
//!   reversal included (`bound_by_offsets`). Alarms
//!   and warnings are OR-ed, enables AND-ed, SoC, SoH, voltage and temperature weighted by
//!   capacity.
//! - **Outputs.** Every inverter gets its configured share of the combined current limits,
//!   capped per inverter, and its own voltage offset where that makes the voltage limits
//!   stricter (never a charge voltage limit above the lowest joined pack's own). A remote
//!   setpoint lowers the limits until it expires. Every increase of an inverter's current
//!   limits ramps ([`limit_ramp_ms`](CombinerConfig::limit_ramp_ms), `ramp.rs`): after the
//!   first join they rise from zero, and a pack that joins starts the rise again from what the
//!   inverter was last told; a reduction applies at once.
//! - **Obedience.** Each inverter's current is compared with the limits it was sent. One that
//!   stays over them is warned about, then sent zero current, then every pack is opened
//!   gracefully and the combiner stays halted until [`CombinerInput::Resume`].
//!
//! Like [`Bms`](crate::Bms), the combiner is sans-IO: `handle_input`, `handle_timeout`, drain
//! `poll_action`, ask `poll_timeout`. It makes no decision on data it never received: a pack it
//! never heard is never joined, and with no pack joined every limit is zero.

mod config;
mod inverter;
mod measure;
mod obedience;
mod operator;
pub mod plausible;
mod ramp;
pub mod share;
mod types;

use heapless::Deque;

pub use self::config::{
    CombinerConfig, CombinerConfigError, InverterProtocol, InverterSlot, MAX_CELLS, MAX_INVERTERS,
    MAX_PACKS, ObedienceConfig, PackSlot,
};
pub use self::plausible::Implausible;
use self::ramp::Ramp;
use self::share::{Part, bank_limit};
pub use self::types::{
    CombinedReason, CombinerAction, CombinerCounters, CombinerInput, CombinerStatus, DropReason,
    InverterStatus, OperatorCommand, PackPhase, PackStatus, Stage,
};
use crate::time::{Duration, Instant};
use crate::units::{DeciCelsius, MilliAmps, MilliVolts, Permille};
use crate::view::{AlarmSet, BatteryView};

/// Counts one more, stopping at `u32::MAX`.
fn bump(counter: &mut u32) {
    *counter = counter.saturating_add(1);
}

/// How many actions may wait between two drains.
pub const ACTION_QUEUE_CAPACITY: usize = 64;

/// n packs -> one virtual battery -> m inverters. See the [module documentation](self).
#[derive(Debug)]
pub struct Combiner {
    config: CombinerConfig,
    status: CombinerStatus,
    now: Instant,
    actions: Deque<CombinerAction, ACTION_QUEUE_CAPACITY>,
    /// The joined set the shares were last reset for (bit per pack).
    shares_for: u16,
    /// Packs that reported since the shares were last measured (bit per pack): shares are
    /// measured once every joined pack has, so no pack's current is a round older than another's.
    fresh_reports: u16,
    /// The least and most the inverters' current was (together) in this measurement round and
    /// in the one before: the cross-check of the packs' currents holds only while it was
    /// steady, since the packs' reports are up to a round old.
    inverters_range: [Option<(i64, i64)>; 2],
    /// Per direction (charge, discharge), the shares below which no pack's may fall until the
    /// packs' currents agree with the inverters' again: set by a disagreeing measurement.
    floors: [[Permille; MAX_PACKS]; 2],
    /// Per direction, what the last comparison with a steady inverter current found (`None`
    /// after a round without one): a finding counts when two rounds in a row agree on it.
    verdicts: [Option<bool>; 2],
    /// Per joined pack, the current it carries beyond its predicted share of the bank's
    /// current (`measure.rs`), held on the safe side: [0] towards charging it, [1] towards
    /// discharging it (negated), mA.
    offsets_ma: [[i32; MAX_PACKS]; 2],
    /// Per joined pack, the part of the bank's current that flows back through it, the other
    /// way, when the current stops: [0] measured while charging, [1] while discharging.
    returns: [[Permille; MAX_PACKS]; 2],
    /// The sum of the joined packs' currents in the last measurement round, mA.
    last_packs_ma: Option<i64>,
    /// Per pack, its offset in the last measured round, mA.
    last_offsets_ma: [Option<i32>; MAX_PACKS],
    /// Per pack, the part that returns in the last measured round, and its direction.
    last_returns: [Option<(usize, Permille)>; MAX_PACKS],
    /// When the combiner started: the first packs join once every pack has been heard, or a
    /// report's lifetime after this, whichever comes first.
    started: Instant,
    /// Per inverter, the ramps of the limits it is told: [0] charge, [1] discharge (`ramp.rs`).
    ramps: [[Ramp; 2]; MAX_INVERTERS],
    /// The joined set the ramps last started again for (bit per pack): a pack that joins
    /// starts them again.
    ramped_for: u16,
}

impl Combiner {
    /// A combiner with no pack heard yet; every limit is zero until packs join.
    pub fn new(config: CombinerConfig, now: Instant) -> Result<Combiner, CombinerConfigError> {
        config.validate()?;
        let mut combiner = Combiner {
            config,
            status: CombinerStatus {
                combined: BatteryView::default(),
                charge_reason: CombinedReason::NoPack,
                discharge_reason: CombinedReason::NoPack,
                packs: [PackStatus::default(); MAX_PACKS],
                inverters: [InverterStatus::default(); MAX_INVERTERS],
                halted: false,
                setpoint: None,
                currents_agree: None,
                counters: CombinerCounters::default(),
            },
            now,
            actions: Deque::new(),
            shares_for: 0,
            fresh_reports: 0,
            inverters_range: [None; 2],
            floors: [[Permille(0); MAX_PACKS]; 2],
            verdicts: [None; 2],
            offsets_ma: [[0; MAX_PACKS]; 2],
            returns: [[Permille(0); MAX_PACKS]; 2],
            last_packs_ma: None,
            last_offsets_ma: [None; MAX_PACKS],
            last_returns: [None; MAX_PACKS],
            started: now,
            ramps: [[Ramp::default(); 2]; MAX_INVERTERS],
            ramped_for: 0,
        };
        combiner.update();
        Ok(combiner)
    }

    /// The configuration in force.
    pub fn config(&self) -> &CombinerConfig {
        &self.config
    }

    /// Telemetry snapshot.
    pub fn status(&self) -> &CombinerStatus {
        &self.status
    }

    /// What to tell `inverter` now (a default view for a number beyond the configuration).
    pub fn view(&self, inverter: u8) -> BatteryView {
        self.status.inverters.get(usize::from(inverter)).map(|i| i.view).unwrap_or_default()
    }

    /// Takes one input; drain [`poll_action`](Self::poll_action) afterwards.
    pub fn handle_input(&mut self, now: Instant, input: CombinerInput) {
        self.advance(now);
        let now = self.now;
        match input {
            CombinerInput::Pack { pack, sampled_at, view, connected } => {
                let Some(slot) = self.config.packs.get(usize::from(pack)).copied() else {
                    bump(&mut self.status.counters.out_of_range);
                    return;
                };
                let p = &mut self.status.packs[usize::from(pack)];
                let at = if sampled_at > now { now } else { sampled_at };
                if p.report.is_some_and(|(last, _)| last > at) {
                    bump(&mut self.status.counters.out_of_order);
                    return;
                }
                let view = plausible::complete(&slot, view);
                if let Err(what) = plausible::check(&slot, &view) {
                    p.implausible_at = Some(at);
                    let first = p.implausible.is_none();
                    if first {
                        p.implausible = Some(what);
                    }
                    bump(&mut self.status.counters.implausible);
                    if first {
                        self.push(CombinerAction::PackImplausible { pack, what });
                    }
                }
                let p = &mut self.status.packs[usize::from(pack)];
                p.report = Some((at, view));
                p.connected = connected;
                if p.phase == PackPhase::Unheard {
                    p.phase = PackPhase::Waiting;
                }
                // `pack_mut` checked that the pack exists, so it is below MAX_PACKS (8).
                self.fresh_reports |= 1 << pack;
            }
            CombinerInput::InverterAlive { inverter, at } => {
                let Some(i) = self.inverter_mut(inverter) else { return };
                let at = if at > now { now } else { at };
                if i.last_alive.is_none_or(|last| at >= last) {
                    i.last_alive = Some(at);
                }
            }
            CombinerInput::InverterCurrent { inverter, sampled_at, ma } => {
                let Some(i) = self.inverter_mut(inverter) else { return };
                let at = if sampled_at > now { now } else { sampled_at };
                if i.current.is_some_and(|(last, _)| last > at) {
                    bump(&mut self.status.counters.out_of_order);
                    return;
                }
                i.current = Some((at, ma));
                self.note_inverters_current();
            }
            CombinerInput::Setpoint { charge_ma, discharge_ma, until } => {
                let clamp = |ma: MilliAmps| MilliAmps(ma.0.max(0));
                self.status.setpoint =
                    (until > now).then_some((clamp(charge_ma), clamp(discharge_ma), until));
            }
            CombinerInput::ClearSetpoint => self.status.setpoint = None,
            CombinerInput::Resume => {
                self.status.halted = false;
                let n = self.config.inverters.len();
                for i in self.status.inverters.iter_mut().take(n) {
                    i.over_since = None;
                    i.within_since = None;
                    if i.stage.is_some_and(|s| s != Stage::Obeying) {
                        i.stage = Some(Stage::Obeying);
                    }
                }
            }
            CombinerInput::Operator { pack, command } => self.operator(pack, command),
        }
        self.update();
    }

    /// Re-evaluates deadlines (stale packs, join timeouts, setpoint expiry, escalation, keep-
    /// alives). Safe to call early or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        self.update();
    }

    /// The next action to carry out, until `None`.
    pub fn poll_action(&mut self) -> Option<CombinerAction> {
        self.actions.pop_front()
    }

    /// The next instant at which something changes without an input.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| {
            if t > self.now {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        let stale = CombinerConfig::ms(self.config.stale_after_ms);
        for p in self.status.packs.iter().take(self.config.packs.len()) {
            if let Some((at, _)) = p.report {
                consider(at.saturating_add(stale).saturating_add(Duration::from_micros(1)));
            }
            if let PackPhase::Joining { since } = p.phase {
                consider(since.saturating_add(CombinerConfig::ms(self.config.join_timeout_ms)));
            }
            if let Some(until) = p.holdoff_until {
                consider(until);
            }
            if let Some(at) = p.implausible_at {
                consider(at.saturating_add(CombinerConfig::ms(self.config.rejoin_after_ms)));
            }
        }
        if let Some((_, _, until)) = self.status.setpoint {
            consider(until);
        }
        consider(self.started.saturating_add(CombinerConfig::ms(self.config.stale_after_ms)));
        let o = &self.config.obedience;
        for (slot, i) in self.config.inverters.iter().zip(&self.status.inverters) {
            if let Some(since) = i.over_since {
                for ms in [o.warn_after_ms, o.zero_after_ms, o.open_after_ms] {
                    consider(since.saturating_add(CombinerConfig::ms(ms)));
                }
            }
            if let Some(since) = i.within_since {
                consider(since.saturating_add(CombinerConfig::ms(o.warn_after_ms)));
                consider(since.saturating_add(CombinerConfig::ms(o.open_after_ms)));
            }
            if let (Some(at), false) = (i.last_alive, slot.keepalive_timeout_ms == 0) {
                let timeout = CombinerConfig::ms(slot.keepalive_timeout_ms);
                consider(at.saturating_add(timeout).saturating_add(Duration::from_micros(1)));
            }
            if let Some((at, _)) = i.current {
                consider(at.saturating_add(stale).saturating_add(Duration::from_micros(1)));
            }
        }
        for ramps in self.ramps.iter().take(self.config.inverters.len()) {
            for ramp in ramps {
                if let Some(t) = ramp.next_deadline(self.now, self.config.limit_ramp_ms) {
                    consider(t);
                }
            }
        }
        next
    }

    fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
    }

    fn inverter_mut(&mut self, inverter: u8) -> Option<&mut InverterStatus> {
        if usize::from(inverter) >= self.config.inverters.len() {
            bump(&mut self.status.counters.out_of_range);
            return None;
        }
        self.status.inverters.get_mut(usize::from(inverter))
    }

    fn push(&mut self, action: CombinerAction) {
        if self.actions.push_back(action).is_err() {
            bump(&mut self.status.counters.dropped_actions);
        }
    }

    fn fresh(&self, at: Instant) -> bool {
        self.now.saturating_since(at) <= CombinerConfig::ms(self.config.stale_after_ms)
    }

    /// Everything that follows from the state at `now`, in order: packs leave and join, the
    /// combined view and the per-inverter views are recomputed, the inverters are checked.
    fn update(&mut self) {
        self.expire_setpoint();
        self.settle_packs();
        self.join_packs();
        self.measure_shares();
        self.combine();
        self.check_keepalives();
        // Obedience may zero an inverter or open everything; the views then follow at once.
        if self.check_obedience() {
            self.combine();
        }
    }

    fn expire_setpoint(&mut self) {
        if self.status.setpoint.is_some_and(|(_, _, until)| until <= self.now) {
            self.status.setpoint = None;
            self.push(CombinerAction::SetpointExpired);
        }
    }

    /// Joining packs that report connected join; joined packs that went stale or report
    /// disconnected leave; packs that did not connect in time are given up on.
    fn settle_packs(&mut self) {
        let rejoin = CombinerConfig::ms(self.config.rejoin_after_ms);
        let join_timeout = CombinerConfig::ms(self.config.join_timeout_ms);
        for i in 0..self.config.packs.len() {
            let p = self.status.packs[i];
            let pack = i as u8;
            let fresh = p.report.is_some_and(|(at, _)| self.fresh(at));
            let faulty = p.implausible.is_some();
            let reason = match p.phase {
                PackPhase::Joined if !fresh => Some((DropReason::Stale, true)),
                PackPhase::Joined | PackPhase::Joining { .. } if faulty => {
                    Some((DropReason::Implausible, true))
                }
                PackPhase::Joined if !p.connected => Some((DropReason::Disconnected, false)),
                PackPhase::Joining { .. } if !fresh => Some((DropReason::Stale, true)),
                PackPhase::Joining { since }
                    if self.now.saturating_since(since) >= join_timeout =>
                {
                    Some((DropReason::JoinTimeout, true))
                }
                _ => None,
            };
            if matches!(p.phase, PackPhase::Joining { .. }) && reason.is_none() && p.connected {
                self.status.packs[i].phase = PackPhase::Joined;
                self.push(CombinerAction::PackJoined { pack });
            }
            if let Some((reason, disconnect)) = reason {
                if disconnect {
                    self.push(CombinerAction::Disconnect { pack, reason });
                }
                if p.phase == PackPhase::Joined {
                    self.push(CombinerAction::PackDropped { pack, reason });
                }
                let s = &mut self.status.packs[i];
                s.phase = PackPhase::Waiting;
                s.holdoff_until = Some(self.now.saturating_add(rejoin));
            }
            let s = &mut self.status.packs[i];
            if s.holdoff_until.is_some_and(|t| t <= self.now) {
                s.holdoff_until = None;
            }
            // A faulty pack is trusted again only after its reports have been plausible for
            // the rejoin time: the last report is newer than the last implausible one, and that
            // one is old enough.
            let recovered = s.implausible_at.is_some_and(|bad| {
                self.now.saturating_since(bad) >= rejoin && s.report.is_some_and(|(at, _)| at > bad)
            });
            if recovered {
                s.implausible = None;
                s.implausible_at = None;
            }
        }
    }

    /// Packs that may join: heard recently, no alarm, not held off or by an operator, and the
    /// combiner not halted.
    fn candidate(&self, i: usize) -> Option<MilliVolts> {
        let p = &self.status.packs[i];
        let (at, view) = p.report?;
        let free = matches!(p.phase, PackPhase::Waiting | PackPhase::Refused);
        (free
            && !p.held
            && !self.status.halted
            && p.implausible.is_none()
            && p.holdoff_until.is_none()
            && self.fresh(at)
            && view.alarms.is_empty())
        .then_some(view.voltage_mv)
    }

    fn join_packs(&mut self) {
        let n = self.config.packs.len();
        let window = i64::from(self.config.join_window_mv.0);
        // The bank's voltage: the capacity-weighted voltage of the packs on the bus or joining.
        let (mut sum, mut weight) = (0i64, 0i64);
        for i in 0..n {
            let p = &self.status.packs[i];
            if matches!(p.phase, PackPhase::Joined | PackPhase::Joining { .. }) {
                if let Some((_, v)) = p.report {
                    let w = i64::from(self.config.packs[i].capacity_mah);
                    sum += i64::from(v.voltage_mv.0) * w;
                    weight += w;
                }
            }
        }
        let mut reference = (weight > 0).then(|| sum / weight);
        if reference.is_none() {
            // Nothing on the bus: wait until every pack has been heard (or for as long as a
            // report lives), then start with the candidate that has the most others within the
            // window, so a single pack at a wrong voltage cannot lock the others out.
            let all_heard = self.status.packs.iter().take(n).all(|p| p.report.is_some());
            let waited = self.now.saturating_since(self.started)
                >= CombinerConfig::ms(self.config.stale_after_ms);
            if !all_heard && !waited {
                return;
            }
            let mut best: Option<(usize, i64)> = None;
            for i in 0..n {
                let Some(v) = self.candidate(i) else { continue };
                let near = (0..n)
                    .filter_map(|j| self.candidate(j))
                    .filter(|w| (i64::from(w.0) - i64::from(v.0)).abs() <= window)
                    .count();
                if best.is_none_or(|(_, b)| near as i64 > b) {
                    best = Some((i, near as i64));
                }
            }
            reference = best.and_then(|(i, _)| self.candidate(i)).map(|v| i64::from(v.0));
        }
        let Some(reference) = reference else { return };
        // Under load the bank's voltage is not its resting voltage: no pack joins then.
        let bank_current: i64 = (0..n)
            .filter(|&i| self.status.packs[i].phase == PackPhase::Joined)
            .filter_map(|i| self.status.packs[i].report)
            .map(|(_, v)| i64::from(v.current_ma.0))
            .sum();
        let loaded = bank_current.abs() > i64::from(self.config.join_current_max_ma.0);
        for i in 0..n {
            let Some(v) = self.candidate(i) else { continue };
            let pack = i as u8;
            let difference = i64::from(v.0) - reference;
            let connected = self.status.packs[i].connected;
            if difference.abs() <= window && loaded {
                // Within the window, but the bank carries current: wait for it to rest.
                continue;
            }
            if difference.abs() <= window {
                let s = &mut self.status.packs[i];
                if connected {
                    s.phase = PackPhase::Joined;
                    self.push(CombinerAction::PackJoined { pack });
                } else {
                    s.phase = PackPhase::Joining { since: self.now };
                    self.push(CombinerAction::Connect { pack });
                }
            } else {
                let difference_mv =
                    MilliVolts(difference.clamp(i32::MIN.into(), i32::MAX.into()) as i32);
                if connected {
                    // On the bus at the wrong voltage (someone closed it by hand): take it off.
                    self.push(CombinerAction::Disconnect {
                        pack,
                        reason: DropReason::WrongVoltage,
                    });
                }
                if self.status.packs[i].phase != PackPhase::Refused {
                    self.status.packs[i].phase = PackPhase::Refused;
                    self.push(CombinerAction::PackRefused { pack, difference_mv });
                }
            }
        }
    }

    fn joined_mask(&self) -> u16 {
        let mut mask = 0u16;
        for (i, p) in self.status.packs.iter().take(self.config.packs.len()).enumerate() {
            if p.phase == PackPhase::Joined {
                mask |= 1 << i;
            }
        }
        mask
    }

    fn combine(&mut self) {
        let n = self.config.packs.len();
        let mut parts_c = heapless::Vec::<Part, MAX_PACKS>::new();
        let mut parts_d = heapless::Vec::<Part, MAX_PACKS>::new();
        let mut index = heapless::Vec::<u8, MAX_PACKS>::new();
        let mut out =
            BatteryView { charge_enable: true, discharge_enable: true, ..BatteryView::default() };
        let (mut weight, mut soc, mut soh, mut volts, mut temp) = (0i64, 0i64, 0i64, 0i64, 0i64);
        let mut cvl: Option<i32> = None;
        let mut dvl: Option<i32> = None;
        let mut cells: Option<(MilliVolts, MilliVolts)> = None;
        let mut temps: Option<(DeciCelsius, DeciCelsius)> = None;
        let (mut alarms, mut warnings) = (AlarmSet::EMPTY, AlarmSet::EMPTY);
        let mut disabled_c: Option<u8> = None;
        let mut disabled_d: Option<u8> = None;
        let mut current = 0i64;
        // A pack asked to connect may close before it reports so: while the bank has joined
        // packs, a joining one already constrains the current limits (with the share it is
        // predicted to take once on the bus), the voltage limits and the enables. The joined
        // packs keep their shares, which its arrival can only make smaller.
        let joined = self.joined_mask();
        let mut joining = 0u16;
        for (i, p) in self.status.packs.iter().take(n).enumerate() {
            if joined != 0 && matches!(p.phase, PackPhase::Joining { .. }) {
                joining |= 1 << i;
            }
        }
        let mut joining_shares = [Permille(0); MAX_PACKS];
        if joining != 0 {
            self.predicted_shares(joined | joining, &mut joining_shares);
        }
        for (i, &share) in joining_shares.iter().enumerate().take(n) {
            let p = &self.status.packs[i];
            let Some((_, v)) = p.report else { continue };
            if joining & (1 << i) != 0 {
                cvl = Some(cvl.map_or(v.charge_voltage_mv.0, |c| c.min(v.charge_voltage_mv.0)));
                dvl =
                    Some(dvl.map_or(v.discharge_voltage_mv.0, |d| d.max(v.discharge_voltage_mv.0)));
                if !v.charge_enable && disabled_c.is_none() {
                    disabled_c = Some(i as u8);
                }
                if !v.discharge_enable && disabled_d.is_none() {
                    disabled_d = Some(i as u8);
                }
                let _ = parts_c.push(Part { limit_ma: v.charge_limit_ma.0, share });
                let _ = parts_d.push(Part { limit_ma: v.discharge_limit_ma.0, share });
                let _ = index.push(i as u8);
                continue;
            }
            if p.phase != PackPhase::Joined {
                continue;
            }
            let w = i64::from(self.config.packs[i].capacity_mah);
            weight += w;
            soc += i64::from(v.soc.0) * w;
            soh += i64::from(v.soh.0) * w;
            volts += i64::from(v.voltage_mv.0) * w;
            temp += i64::from(v.temperature_dc.0) * w;
            current += i64::from(v.current_ma.0);
            cvl = Some(cvl.map_or(v.charge_voltage_mv.0, |c| c.min(v.charge_voltage_mv.0)));
            dvl = Some(dvl.map_or(v.discharge_voltage_mv.0, |d| d.max(v.discharge_voltage_mv.0)));
            if let Some((lo, hi)) = v.cell_mv {
                cells = Some(cells.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
            if let Some((lo, hi)) = v.cell_dc {
                temps = Some(temps.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
            alarms = alarms.union(v.alarms);
            warnings = warnings.union(v.warnings);
            if !v.charge_enable && disabled_c.is_none() {
                disabled_c = Some(i as u8);
            }
            if !v.discharge_enable && disabled_d.is_none() {
                disabled_d = Some(i as u8);
            }
            out.force_charge |= v.force_charge;
            out.full_charge |= v.full_charge;
            out.capacity_mah = out.capacity_mah.saturating_add(v.capacity_mah);
            out.modules = out.modules.saturating_add(v.modules.max(1));
            let _ = parts_c.push(Part { limit_ma: v.charge_limit_ma.0, share: p.charge_share });
            let _ =
                parts_d.push(Part { limit_ma: v.discharge_limit_ma.0, share: p.discharge_share });
            let _ = index.push(i as u8);
        }
        let pick = |parts: &[Part], disabled: Option<u8>| -> (i32, CombinedReason) {
            if parts.is_empty() {
                return (0, CombinedReason::NoPack);
            }
            if let Some(pack) = disabled {
                return (0, CombinedReason::PackDisabled { pack });
            }
            let (limit, binding) = bank_limit(parts);
            match binding {
                Some(k) => {
                    let pack = index.get(k).copied().unwrap_or(0);
                    let share = parts.get(k).map_or(Permille(0), |p| p.share);
                    (limit, CombinedReason::Pack { pack, share })
                }
                None => (limit, CombinedReason::SumOfPacks),
            }
        };
        let (mut ccl, mut charge_reason) = pick(&parts_c, disabled_c);
        let (mut dcl, mut discharge_reason) = pick(&parts_d, disabled_d);
        self.bound_by_offsets(
            joined,
            &mut ccl,
            &mut charge_reason,
            &mut dcl,
            &mut discharge_reason,
        );
        // Headroom for shares that move with the current, unless a single pack carries it all.
        if parts_c.len() > 1 {
            ccl = self.config.share_margin.of(ccl);
        }
        if parts_d.len() > 1 {
            dcl = self.config.share_margin.of(dcl);
        }
        if let Some((c, d, _)) = self.status.setpoint {
            if c.0 < ccl {
                (ccl, charge_reason) = (c.0, CombinedReason::Setpoint);
            }
            if d.0 < dcl {
                (dcl, discharge_reason) = (d.0, CombinedReason::Setpoint);
            }
        }
        if self.status.halted {
            (ccl, charge_reason) = (0, CombinedReason::Halted);
            (dcl, discharge_reason) = (0, CombinedReason::Halted);
        }
        if weight > 0 {
            let avg = |sum: i64| sum / weight;
            out.soc = Permille(avg(soc).clamp(0, 1000) as u16);
            out.soh = Permille(avg(soh).clamp(0, 1000) as u16);
            out.voltage_mv = MilliVolts(avg(volts) as i32);
            out.temperature_dc = DeciCelsius(avg(temp) as i32);
        }
        out.current_ma = MilliAmps(current.clamp(i32::MIN.into(), i32::MAX.into()) as i32);
        out.charge_voltage_mv = MilliVolts(cvl.unwrap_or(self.status.combined.charge_voltage_mv.0));
        // With no pack to ask, the last limit stands; before any, the highest fallback of the
        // configured packs, so that no inverter is ever told it may discharge to 0 V.
        let last_dvl = self.status.combined.discharge_voltage_mv.0;
        out.discharge_voltage_mv = MilliVolts(dvl.unwrap_or(if last_dvl > 0 {
            last_dvl
        } else {
            self.config.packs.iter().map(|p| p.fallback_discharge_voltage_mv().0).max().unwrap_or(0)
        }));
        out.cell_mv = cells;
        out.cell_dc = temps;
        out.alarms = alarms;
        out.warnings = warnings;
        out.charge_enable = disabled_c.is_none() && !parts_c.is_empty() && !self.status.halted;
        out.discharge_enable = disabled_d.is_none() && !parts_d.is_empty() && !self.status.halted;
        out.charge_limit_ma = MilliAmps(ccl.max(0));
        out.discharge_limit_ma = MilliAmps(dcl.max(0));
        self.status.combined = out;
        self.status.charge_reason = charge_reason;
        self.status.discharge_reason = discharge_reason;
        // A pack that joined (the first one included) starts every inverter's ramps again from
        // what it was last told: its arrival raises the limits, and they rise from there.
        let newly_joined = joined & !self.ramped_for;
        self.ramped_for = joined;
        for k in 0..self.config.inverters.len() {
            if newly_joined != 0 {
                let told = self.status.inverters[k].view;
                self.ramps[k][0].restart(self.now, told.charge_limit_ma.0);
                self.ramps[k][1].restart(self.now, told.discharge_limit_ma.0);
            }
            self.inverter_view(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every counter stops at `u32::MAX` instead of overflowing (a panic in a debug build, a
    /// wrap to zero in a release build).
    #[test]
    fn counters_saturate() {
        let config = CombinerConfig::equal_packs(1, 100_000, MilliAmps(100_000));
        let mut c = Combiner::new(config, Instant::ZERO).unwrap();
        let full = u32::MAX - 1;
        c.status.counters = CombinerCounters {
            out_of_range: full,
            out_of_order: full,
            dropped_actions: full,
            implausible: full,
            current_mismatch: full,
        };
        let at = Instant::from_millis(10);
        let bad = BatteryView::default();
        for _ in 0..3 {
            c.handle_input(
                at,
                CombinerInput::Pack { pack: 7, sampled_at: at, view: bad, connected: false },
            );
            c.handle_input(at, CombinerInput::InverterAlive { inverter: 9, at });
            c.handle_input(
                at,
                CombinerInput::Pack { pack: 0, sampled_at: at, view: bad, connected: false },
            );
            c.handle_input(
                at,
                CombinerInput::InverterCurrent { inverter: 0, sampled_at: at, ma: MilliAmps(0) },
            );
            c.handle_input(
                at,
                CombinerInput::InverterCurrent {
                    inverter: 0,
                    sampled_at: Instant::from_millis(5),
                    ma: MilliAmps(0),
                },
            );
            // Never drained: the queue fills and further actions are counted as dropped.
            for _ in 0..ACTION_QUEUE_CAPACITY {
                c.push(CombinerAction::SetpointExpired);
            }
        }
        let n = c.status().counters;
        assert_eq!(
            (n.out_of_range, n.out_of_order, n.dropped_actions, n.implausible),
            (u32::MAX, u32::MAX, u32::MAX, u32::MAX)
        );
        let mut m = 0u32;
        bump(&mut m);
        assert_eq!(m, 1);
        let mut m = u32::MAX;
        bump(&mut m);
        assert_eq!(m, u32::MAX);
    }
}
