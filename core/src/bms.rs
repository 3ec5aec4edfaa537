//! [`Bms`]: one pack controller, driven by `handle_*` and drained by `poll_*`.

use crate::action::{Action, CurrentLimits, LimitReason, SequenceEvent, VoltageLimits};
use crate::balance::{Balancer, CellMask};
use crate::charging::Charging;
use crate::close_ramp::CloseRamp;
use crate::config::{Config, ConfigError};
use crate::contactor::{SequenceState, Sequencer, has_feedback};
use crate::input::{Command, ContactorId, Input};
use crate::measure::{Accept, Measurements, Summary};
use crate::outbox::Outbox;
use crate::protection::{Context, Protection};
use crate::status::{Blocker, ContactorStatus, Counters, Status};
use crate::time::{Duration, Instant};
use crate::units::MilliAmps;

/// One pack controller: protection, contactor sequencing and balancing for one pack.
///
/// See the crate documentation for the driving contract.
#[derive(Debug)]
pub struct Bms {
    config: Config,
    measurements: Measurements,
    protection: Protection,
    sequencer: Sequencer,
    balancer: Balancer,
    charging: Charging,
    outbox: Outbox,
    /// Last contactor command delivered per contactor; `None` until first delivered.
    sent_contactors: [Option<bool>; 3],
    /// Last limits delivered.
    sent_limits: Option<CurrentLimits>,
    /// Last voltage limits delivered.
    sent_voltage: Option<VoltageLimits>,
    /// Last set of bleeding cells delivered.
    sent_balance: Option<CellMask>,
    /// Sample time of the first current sample of the present charging run.
    charging_since: Option<Instant>,
    /// The last moment some cell was bleeding (for the frozen-reading check).
    bled_at: Option<Instant>,
    /// A `ClearFaults` arrived; the next evaluation pass clears what it can.
    clear_requested: bool,
    /// A `Start` arrived; report once whether it is blocked.
    report_start: bool,
    /// The current limits' ramp from zero after the contactors close.
    close_ramp: CloseRamp,
    /// The limits the inverter is told: `status.limits` capped by the ramp after a close.
    told_limits: CurrentLimits,
    deadline: Option<Instant>,
    status: Status,
}

impl Bms {
    /// Validates `config` and starts with everything open, no data and no faults. The first
    /// drain of [`poll_action`](Self::poll_action) commands every contactor open, both current
    /// limits to zero, the voltage limits and no cell bleeding, so the hardware starts from a
    /// known state.
    pub fn new(config: Config, now: Instant) -> Result<Bms, ConfigError> {
        config.validate()?;
        let protection = Protection::new(&config);
        let balancer = Balancer::new(&config, now);
        let charging = Charging::new(&config, now);
        let limits = CurrentLimits {
            charge_ma: MilliAmps(0),
            charge_reason: LimitReason::ContactorsOpen,
            discharge_ma: MilliAmps(0),
            discharge_reason: LimitReason::ContactorsOpen,
        };
        let status = Status {
            now,
            sequence: SequenceState::Open,
            close_requested: false,
            close_blocker: None,
            contactors: [ContactorStatus::default(); 3],
            last_precharge_failure: None,
            limits,
            balance: balancer.status(),
            rules: protection.status(),
            summary: Summary::default(),
            current_ma: None,
            pack_mv: None,
            bus_mv: None,
            charge: charging.charge_status(),
            soc: None,
            counters: Counters::default(),
        };
        let mut bms = Bms {
            config,
            measurements: Measurements::new(),
            protection,
            sequencer: Sequencer::new(),
            balancer,
            charging,
            outbox: Outbox::new(),
            sent_contactors: [None; 3],
            sent_limits: None,
            sent_voltage: None,
            sent_balance: None,
            charging_since: None,
            bled_at: None,
            clear_requested: false,
            report_start: false,
            close_ramp: CloseRamp::default(),
            told_limits: limits,
            deadline: None,
            status,
        };
        bms.update(now);
        Ok(bms)
    }

    /// Takes one input at `now`, then re-evaluates everything. Drain
    /// [`poll_action`](Self::poll_action) afterwards.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) {
        let now = self.monotonic(now);
        self.store(now, input);
        self.update(now);
    }

    /// Takes the inputs of one measurement cycle at `now`, in order, then re-evaluates once.
    /// Drain [`poll_action`](Self::poll_action) afterwards.
    ///
    /// Each input is stored exactly as [`handle_input`](Self::handle_input) stores it; only the
    /// evaluations between them are skipped. Every decision depends on stored values and their
    /// sample times, not on the order they arrived in, so a batch decides what the last of the
    /// single calls would have decided, for a fraction of the cost: one pass over the cells
    /// instead of one per input.
    pub fn handle_inputs(&mut self, now: Instant, inputs: &[Input<'_>]) {
        self.handle_batch(now, inputs.iter().copied());
    }

    /// [`handle_inputs`](Self::handle_inputs) for a batch that is not a slice, such as
    /// [`BoardBridge::inputs`](crate::proto::tesla::bridge::BoardBridge::inputs): stores each
    /// input in order, then re-evaluates once.
    pub fn handle_batch<'a>(&mut self, now: Instant, inputs: impl IntoIterator<Item = Input<'a>>) {
        let now = self.monotonic(now);
        for input in inputs {
            self.store(now, input);
        }
        self.update(now);
    }

    /// Stores one input (or applies a command) without evaluating.
    fn store(&mut self, now: Instant, input: Input<'_>) {
        let counters = &mut self.status.counters;
        let mut stamp = |at: Instant| {
            if at > now {
                counters.from_the_future = counters.from_the_future.saturating_add(1);
                now
            } else {
                at
            }
        };
        let cells = self.config.cell_count;
        let temperatures = self.config.temperature_count;
        let m = &mut self.measurements;
        let accepted = match input {
            Input::CellVoltages { sampled_at, first, mv } => {
                let at = stamp(sampled_at);
                let (_, rejected) = m.store_cells(cells, first, mv, at);
                self.count_rejected_block(first, mv.len(), cells, rejected);
                None
            }
            Input::Temperatures { sampled_at, first, dc } => {
                let at = stamp(sampled_at);
                let (_, rejected) = m.store_temperatures(temperatures, first, dc, at);
                self.count_rejected_block(first, dc.len(), temperatures, rejected);
                None
            }
            Input::Current { sampled_at, ma } => {
                let at = stamp(sampled_at);
                let accepted = m.store_current(ma, at);
                if accepted == Accept::Stored {
                    let charging = ma.0 > self.config.idle_current_ma.0;
                    self.charging_since =
                        if charging { self.charging_since.or(Some(at)) } else { None };
                }
                Some(accepted)
            }
            Input::PackVoltage { sampled_at, mv } => Some(m.store_pack(mv, stamp(sampled_at))),
            Input::BusVoltage { sampled_at, mv } => Some(m.store_bus(mv, stamp(sampled_at))),
            Input::ContactorFeedback { sampled_at, contactor, closed } => {
                Some(m.store_feedback(contactor, closed, stamp(sampled_at)))
            }
            Input::HardwareFault { sampled_at, active } => {
                Some(m.store_hardware_fault(active, stamp(sampled_at)))
            }
            Input::Command(command) => {
                self.command(now, command);
                None
            }
        };
        if accepted == Some(Accept::OutOfOrder) {
            let c = &mut self.status.counters;
            c.out_of_order = c.out_of_order.saturating_add(1);
        }
    }

    /// Re-evaluates at `now`: debounce timers, freshness, sequencing deadlines. Safe to call
    /// early, late or twice.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.monotonic(now);
        self.update(now);
    }

    /// The next thing the adapter must do. Drain until `None` after every `handle_*` call.
    /// Contactor openings come first, then closings (in closing order), then current limits,
    /// then voltage limits, then the cells to bleed, then events.
    pub fn poll_action(&mut self) -> Option<Action> {
        let commanded = self.sequencer.state.commanded();
        let opening = [ContactorId::Positive, ContactorId::Precharge, ContactorId::Negative];
        for contactor in opening {
            let i = contactor.index();
            if !commanded[i] && self.sent_contactors[i] != Some(false) {
                self.sent_contactors[i] = Some(false);
                return Some(Action::Contactor { contactor, closed: false });
            }
        }
        for contactor in ContactorId::ALL {
            let i = contactor.index();
            if commanded[i] && self.sent_contactors[i] != Some(true) {
                self.sent_contactors[i] = Some(true);
                return Some(Action::Contactor { contactor, closed: true });
            }
        }
        if self.sent_limits != Some(self.told_limits) {
            self.sent_limits = Some(self.told_limits);
            return Some(Action::Limits(self.told_limits));
        }
        let voltage =
            crate::voltage_limits::voltage_limits(&self.config, self.status.charge.as_ref());
        if self.sent_voltage != Some(voltage) {
            self.sent_voltage = Some(voltage);
            return Some(Action::VoltageLimits(voltage));
        }
        let cells = self.balancer.cells();
        if self.sent_balance != Some(cells) {
            self.sent_balance = Some(cells);
            return Some(Action::Balance(cells));
        }
        self.outbox.pop()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The telemetry snapshot as of the last call.
    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Restarts the SoC estimator from `initial` (a persisted snapshot, a known SoC) with the
    /// next current sample. Without a call, it starts from the OCV table at the first complete
    /// set of cell voltages, which is right for a pack that has rested with its contactors
    /// open. Does nothing without a `soc` section in the configuration.
    pub fn restore_soc(&mut self, initial: crate::soc::Initial) {
        self.charging.restore_soc(initial);
    }

    /// How long ago the charge controller's last periodic full charge ended (or it started),
    /// for the adapter to persist next to the SoC snapshot; `None` without a `charge` section.
    pub fn since_full_charge(&self) -> Option<crate::time::Duration> {
        self.charging.since_full_charge(self.status.now)
    }

    /// Restores what [`Bms::since_full_charge`] returned before a restart, so a periodic full
    /// charge falls due on time however often the adapter restarts. Does nothing without a
    /// `charge` section. Re-evaluates at once, so [`Bms::poll_timeout`] already reflects it
    /// (drain the actions as after any `handle_*` call).
    pub fn restore_since_full_charge(&mut self, ago: crate::time::Duration) {
        let now = self.status.now;
        self.charging.restore_since_full_charge(now, ago);
        self.update(now);
    }

    /// What the adapter should persist to resume the SoC estimate after a restart; `None`
    /// before the estimator has started or without a `soc` section.
    pub fn soc_snapshot(&self) -> Option<crate::soc::SocSnapshot> {
        self.charging.soc_snapshot(self.status.now)
    }

    fn monotonic(&mut self, now: Instant) -> Instant {
        if now < self.status.now {
            let c = &mut self.status.counters;
            c.clock_went_back = c.clock_went_back.saturating_add(1);
            self.status.now
        } else {
            now
        }
    }

    fn count_rejected_block(&mut self, first: u16, len: usize, count: u16, rejected: u32) {
        let end = usize::from(first).saturating_add(len);
        let beyond = end.saturating_sub(usize::from(count).max(usize::from(first)));
        let beyond = u32::try_from(beyond.min(len)).unwrap_or(u32::MAX);
        let c = &mut self.status.counters;
        c.out_of_range = c.out_of_range.saturating_add(beyond);
        c.out_of_order = c.out_of_order.saturating_add(rejected.saturating_sub(beyond));
    }

    fn command(&mut self, now: Instant, command: Command) {
        match command {
            Command::Start => {
                self.sequencer.start(now, &self.config, &mut self.outbox);
                self.report_start = true;
            }
            Command::Stop => self.sequencer.stop(now, &self.config, &mut self.outbox),
            Command::EmergencyStop => {
                self.sequencer.emergency_stop(now, &self.config, &mut self.outbox);
            }
            // Cleared in the evaluation pass that follows, on the same values it evaluates.
            Command::ClearFaults => self.clear_requested = true,
        }
    }

    /// The one evaluation pass every `handle_*` ends with.
    fn update(&mut self, now: Instant) {
        self.track_frozen(now);
        let summary = self.measurements.summarize(&self.config, now);
        let ctx = context(
            &self.config,
            &self.measurements,
            &self.sequencer,
            self.charging_since,
            now,
            &summary,
        );
        if core::mem::take(&mut self.clear_requested) {
            self.protection.clear_latched(&ctx, &mut self.outbox);
        }
        self.protection.evaluate(&ctx, &mut self.outbox);
        for (rule, location, value) in
            self.sequencer.supervise(now, &self.config, &self.measurements).into_iter().flatten()
        {
            self.protection.raise(now, rule, location, value, &mut self.outbox);
        }
        let latched = self.protection.latched();
        let blocker = self.blocker(latched, &summary);
        let (config, m) = (&self.config, &self.measurements);
        self.charging.update(now, config, m, &summary, self.sequencer.state);
        if let Some((rule, location, value)) = self.sequencer.step(
            now,
            &self.config,
            &self.measurements,
            latched,
            blocker,
            &mut self.outbox,
        ) {
            self.protection.raise(now, rule, location, value, &mut self.outbox);
        }
        // A fault raised by the sequencer itself blocks the next start too, and a start that
        // waits for the DC link says so. (Not an input to the step: the sequencer keeps that
        // wait itself, and releases it in the step that sees the link decayed.)
        let latched = self.protection.latched();
        let blocker = self
            .blocker(latched, &summary)
            .or(self.sequencer.waiting_for_link().then_some(Blocker::LinkDischarging));
        if self.report_start {
            self.report_start = false;
            if let (SequenceState::Open, Some(blocker)) = (self.sequencer.state, blocker) {
                self.outbox.sequence(SequenceEvent::CloseBlocked { blocker });
            }
        }
        let limits = self.limits(&summary);
        // What the inverter is told rises from zero after a close; the limits in force (the
        // status, and the battery view a combiner reads, which must not understate what the
        // pack can carry when other packs share its bus) do not.
        self.close_ramp.track(now, self.sequencer.state);
        self.told_limits = limits;
        self.close_ramp.apply(now, &self.config, &mut self.told_limits);
        // Written into the status here rather than in `refresh_status`, so balancing reads the
        // rules without another copy of the table.
        self.status.rules = self.protection.status();
        let rules = &self.status.rules;
        self.balancer.update(now, &self.config, &self.measurements, &summary, rules);
        self.deadline = [
            self.protection.next_deadline(&summary, &self.measurements),
            self.sequencer.next_deadline(now, &self.config),
            self.balancer.next_deadline(now, &self.config, &self.measurements, &summary),
            self.charging.next_deadline(),
            self.close_ramp.next_deadline(now, &self.config),
        ]
        .into_iter()
        .flatten()
        .min();
        self.refresh_status(now, summary, blocker, limits);
    }

    /// Looks for cell readings that arrive but no longer move (`measure/frozen.rs`).
    fn track_frozen(&mut self, now: Instant) {
        let m = &self.measurements;
        let fresh_ms = Duration::from_millis(self.config.freshness.current_ms.into());
        let current = Measurements::fresh(m.current, now, fresh_ms);
        let bleeding_now = !self.balancer.cells().is_empty();
        if bleeding_now {
            self.bled_at = Some(now);
        }
        let settle = Duration::from_millis(self.config.balance.settle_ms.into());
        let conditions = crate::measure::Conditions {
            current_ma: current.map(|i| i.magnitude()),
            pack_mv: m.pack.map(|p| p.value.0),
            bleeding: bleeding_now || self.bled_at.is_some_and(|at| now < at + settle),
        };
        self.measurements.track_frozen(&self.config, conditions);
    }

    /// Rule limits, lowered by the charge controller, overridden by the sequence: nothing flows
    /// unless closed, and a graceful stop asks for zero.
    fn limits(&self, summary: &Summary) -> CurrentLimits {
        let mut limits = self.protection.limits(&self.config, summary);
        let override_reason = match self.sequencer.state {
            SequenceState::Closed => {
                self.charging.apply(&mut limits);
                None
            }
            SequenceState::Stopping { .. } => Some(LimitReason::Stopping),
            _ => Some(LimitReason::ContactorsOpen),
        };
        if let Some(reason) = override_reason {
            if limits.charge_ma.0 > 0 {
                limits.charge_ma = MilliAmps(0);
                limits.charge_reason = reason;
            }
            if limits.discharge_ma.0 > 0 {
                limits.discharge_ma = MilliAmps(0);
                limits.discharge_reason = reason;
            }
        }
        limits
    }

    /// The first reason closing may not start, in order of importance.
    fn blocker(&self, latched: Option<crate::protection::RuleId>, s: &Summary) -> Option<Blocker> {
        if let Some(rule) = latched {
            return Some(Blocker::Fault(rule));
        }
        let m = &self.measurements;
        if let Some(cell) = s.cell_missing {
            return Some(Blocker::NoCellVoltage(cell));
        }
        if let Some(sensor) = s.temperature_missing {
            return Some(Blocker::NoTemperature(sensor));
        }
        if m.current.is_none() {
            return Some(Blocker::NoCurrent);
        }
        if m.pack.is_none() {
            return Some(Blocker::NoPackVoltage);
        }
        if m.bus.is_none() {
            return Some(Blocker::NoBusVoltage);
        }
        if self.config.hardware_fault_line && m.hardware_fault.is_none() {
            return Some(Blocker::NoHardwareFaultLine);
        }
        let commanded = self.sequencer.state.commanded();
        for c in ContactorId::ALL {
            if !has_feedback(&self.config, c) {
                continue;
            }
            match m.feedback[c.index()] {
                None => return Some(Blocker::NoFeedback(c)),
                Some(f) if f.value && !commanded[c.index()] => {
                    return Some(Blocker::FeedbackDisagrees(c));
                }
                Some(_) => {}
            }
        }
        None
    }

    fn refresh_status(
        &mut self,
        now: Instant,
        summary: Summary,
        blocker: Option<Blocker>,
        limits: CurrentLimits,
    ) {
        let commanded = self.sequencer.state.commanded();
        let m = &self.measurements;
        let s = &mut self.status;
        s.now = now;
        s.sequence = self.sequencer.state;
        s.close_requested = self.sequencer.close_requested;
        s.close_blocker = blocker;
        for c in ContactorId::ALL {
            let i = c.index();
            s.contactors[i] = ContactorStatus {
                commanded_closed: commanded[i],
                reported_closed: m.feedback[i].map(|f| f.value),
            };
        }
        s.last_precharge_failure = self.sequencer.last_failure;
        s.limits = limits;
        s.balance = self.balancer.status();
        s.summary = summary;
        s.current_ma = m.current.map(|v| v.value);
        s.pack_mv = m.pack.map(|v| v.value);
        s.bus_mv = m.bus.map(|v| v.value);
        s.charge = self.charging.charge_status();
        s.soc = self.charging.soc_status();
        s.counters.dropped_events = self.outbox.dropped;
    }
}

fn context<'a>(
    config: &Config,
    measurements: &'a Measurements,
    sequencer: &Sequencer,
    charging_since: Option<Instant>,
    now: Instant,
    summary: &'a Summary,
) -> Context<'a> {
    let current_freshness = Duration::from_millis(config.freshness.current_ms.into());
    let current = Measurements::fresh(measurements.current, now, current_freshness);
    Context {
        now,
        summary,
        measurements,
        charging: current.is_some_and(|i| i.0 > config.idle_current_ma.0),
        charging_since,
        feedback_consistent: sequencer.feedback_consistent(config, measurements),
        bus_needed: sequencer.close_requested || sequencer.state.commanded().contains(&true),
    }
}
