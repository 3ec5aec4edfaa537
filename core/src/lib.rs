//! # cellwarden-core
//!
//! Every decision of the cellwarden battery management system: protection, contactor
//! sequencing, current limits, passive balancing ([`balance`]), charge control ([`charge`]) and
//! state of charge and health ([`soc`]) in the pack controller [`Bms`]; the [`combiner`] that
//! joins packs in parallel and feeds several inverters, and the [`gateway`] that wires it to
//! the packs' readers, the inverters' publishers and the packs' start, stop and relays. It also
//! holds the wire protocols as byte-exact codecs and sans-IO drivers ([`proto`]), such as the
//! bus master for the Tesla Model S module boards and the board bridge between it and the pack
//! controller ([`proto::tesla::bridge`]), which the adapter drives with received bytes and the
//! time just as it drives [`Bms`]. The crate is `#![no_std]`, allocates nothing, contains no
//! `unsafe` and no floating point, and performs no IO: it never reads a clock, touches a pin or
//! sends a byte. The same code runs on an RP2040 next to the battery, in the Linux daemon and in
//! the simulator, and gives bit-identical results everywhere.
//!
//! ## Driving contract
//!
//! An adapter owns one [`Bms`] and runs one loop: wait for the next input or the next deadline,
//! whichever comes first, and then
//!
//! 1. call [`Bms::handle_input`] with the input (every measurement carries its own sample time),
//!    or [`Bms::handle_inputs`] with all the readings of one measurement cycle, or
//!    [`Bms::handle_timeout`] when the deadline from [`Bms::poll_timeout`] has passed
//!    (calling it early, late or twice is harmless);
//! 2. drain [`Bms::poll_action`] until it returns `None`, carrying out each [`Action`]:
//!    contactor commands, current and voltage limits for the inverters, the cells to bleed,
//!    fault and sequencing events;
//! 3. ask [`Bms::poll_timeout`] for the next deadline.
//!
//! Time is always an argument ([`Instant`], microseconds since the adapter's epoch). One call
//! mutates; the drain that follows observes. [`Bms::status`] is a telemetry snapshot that nothing
//! safety-related depends on.
//!
//! ```
//! use cellwarden_core::{Action, Bms, Config, Input, Instant, MilliVolts};
//!
//! let mut bms = Bms::new(Config::lfp_16s(100), Instant::ZERO).expect("preset is valid");
//! let now = Instant::from_millis(10);
//! let cells = [MilliVolts(3_300); 16];
//! bms.handle_input(now, Input::CellVoltages { sampled_at: now, first: 0, mv: &cells });
//! while let Some(action) = bms.poll_action() {
//!     if let Action::Contactor { contactor, closed } = action {
//!         assert!(!closed, "{contactor:?} must stay open: no temperature or current yet");
//!     }
//! }
//! ```
//!
//! ## Guarantees
//!
//! - Contactors are never commanded closed while a maximum-safety fault is latched or while any
//!   required value (every cell, every temperature, current, pack and bus voltage, configured
//!   contactor feedback) has never been received.
//! - Emitted current limits never exceed the configured maxima, and each carries the reason that
//!   binds it.
//! - The same sequence of calls produces the same sequence of actions.
//! - A maximum-safety violation opens the contactors no later than the rule's debounce time after
//!   the sample time of the first violating sample, provided the adapter honours `poll_timeout`.

#![no_std]
#![forbid(unsafe_code)]
#![deny(clippy::float_arithmetic)]
#![warn(missing_docs)]

// Vocabulary: the words every part of the core speaks. Each imports nothing of the core but
// units, time, the input names, the chemistry and other vocabulary, so no module that uses them
// is imported back (`cargo xtask tidy` checks that no module imports one that imports it back).
mod blocker;
mod bound;
mod cell_mask;
mod ocv_chemistry;
mod problem;
mod rule;
mod sizes;
mod table;

mod action;
pub mod balance;
mod bms;
pub mod charge;
mod charging;
pub mod chemistry;
mod close_ramp;
pub mod combiner;
mod config;
mod contactor;
pub mod gateway;
mod input;
mod measure;
mod outbox;
mod pack_view;
mod presets;
pub mod protection;
pub mod proto;
pub mod soc;
mod status;
mod time;
mod units;
mod view;
mod voltage_limits;

pub use action::{
    Action, CurrentLimits, FaultChange, FaultEvent, LimitReason, OpenKind, PrechargeFailure,
    SequenceEvent, VoltageLimits, VoltageSource,
};
pub use balance::{BalanceState, BalanceStatus, CellMask, CellMaskIter};
pub use bms::Bms;
pub use chemistry::{CellChemistry, Envelope};
pub use config::{
    BalanceConfig, Bound, Config, ConfigError, ContactorConfig, DEFAULT_LIMIT_RAMP_MS, DcLink,
    FeedbackConfig, FreshnessConfig, MAX_CELLS, MAX_CONFIG_MS, MAX_PRECHARGE_ATTEMPTS,
    MAX_TEMPERATURES, Problem, ProtectionConfig, RawUnit, Thresholds,
};
pub use contactor::SequenceState;
pub use input::{Command, ContactorId, Input};
pub use measure::{Extreme, Summary};
pub use outbox::EVENT_QUEUE_CAPACITY;
pub use protection::{Location, RuleId, RuleStatus, Tier};
pub use status::{Blocker, ContactorStatus, Counters, Status};
pub use time::{Duration, Instant};
pub use units::{DeciCelsius, MilliAmpSeconds, MilliAmps, MilliVolts, Permille};
pub use view::{Alarm, AlarmSet, BatteryView};
