//! The seam between the simulated world and the controller under test.
//!
//! Today the controller is the core's pack controller in this process ([`Bms`]); a bench will put
//! a real board behind the same seam, reached over a link. So the seam carries only what crosses
//! such a link: the inputs of one measurement cycle, the time when a deadline is due, the actions
//! that come back, the next deadline, and the telemetry (`Status`, and the battery as the
//! controller reports it to a combiner). Nothing here reaches into the controller's state.

use cellwarden_core::{Action, BatteryView, Bms, Input, Instant, Status};

/// A pack controller as the engine drives it.
pub trait Controller: std::fmt::Debug {
    /// The inputs of one measurement cycle (or one command) at `now`, in order.
    fn handle_inputs(&mut self, now: Instant, inputs: &[Input<'_>]);
    /// The deadline the controller asked for has come.
    fn handle_timeout(&mut self, now: Instant);
    /// The next action to carry out; the engine drains them after every call.
    fn poll_action(&mut self) -> Option<Action>;
    /// When the controller wants [`handle_timeout`](Self::handle_timeout) next.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The latest telemetry.
    fn status(&self) -> &Status;
    /// The pack as it reports itself to a combiner; `None` before it knows enough.
    fn battery_view(&self) -> Option<BatteryView>;
    /// Whether the pack counts itself on the bus (its mains closed or opening).
    fn connected(&self) -> bool;
}

impl Controller for Bms {
    fn handle_inputs(&mut self, now: Instant, inputs: &[Input<'_>]) {
        Bms::handle_inputs(self, now, inputs);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Bms::handle_timeout(self, now);
    }

    fn poll_action(&mut self) -> Option<Action> {
        Bms::poll_action(self)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        Bms::poll_timeout(self)
    }

    fn status(&self) -> &Status {
        Bms::status(self)
    }

    fn battery_view(&self) -> Option<BatteryView> {
        Bms::battery_view(self)
    }

    fn connected(&self) -> bool {
        Bms::connected(self)
    }
}
