//! Everything the core is told. Every measurement carries the time it was sampled, which may be
//! earlier than the `now` of the `handle_input` call that delivers it.

use crate::time::Instant;
use crate::units::{DeciCelsius, MilliAmps, MilliVolts};

/// One event for [`Bms::handle_input`](crate::Bms::handle_input).
///
/// Slices are only read during the call; nothing is borrowed beyond it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input<'a> {
    /// Cell voltages `first .. first + mv.len()`, in series order starting at 0.
    CellVoltages {
        /// When the values were measured.
        sampled_at: Instant,
        /// Index of the first cell in `mv`.
        first: u16,
        /// The voltages.
        mv: &'a [MilliVolts],
    },
    /// Temperature sensors `first .. first + dc.len()`.
    Temperatures {
        /// When the values were measured.
        sampled_at: Instant,
        /// Index of the first sensor in `dc`.
        first: u16,
        /// The temperatures.
        dc: &'a [DeciCelsius],
    },
    /// Pack current, positive when charging.
    Current {
        /// When the value was measured.
        sampled_at: Instant,
        /// The current.
        ma: MilliAmps,
    },
    /// Voltage at the pack terminals, on the battery side of the contactors.
    PackVoltage {
        /// When the value was measured.
        sampled_at: Instant,
        /// The voltage.
        mv: MilliVolts,
    },
    /// Voltage on the bus (inverter) side of the contactors; used to verify precharge.
    BusVoltage {
        /// When the value was measured.
        sampled_at: Instant,
        /// The voltage.
        mv: MilliVolts,
    },
    /// Position reported by a contactor's auxiliary contact.
    ContactorFeedback {
        /// When the position was read.
        sampled_at: Instant,
        /// Which contactor.
        contactor: ContactorId,
        /// `true` when the contact reports closed.
        closed: bool,
    },
    /// A hardware-latched fault line (analogue front end comparator, short-circuit detector).
    /// An active line is a maximum-safety fault without debounce: the hardware has debounced it.
    HardwareFault {
        /// When the line was read.
        sampled_at: Instant,
        /// `true` while the line reports a fault.
        active: bool,
    },
    /// An operator or host command.
    Command(Command),
}

/// Operator or host commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Close the contactors (precharge first) as soon as it is safe; stays requested while
    /// closing is blocked by missing data, until `Stop` or a safety fault. Cancels a graceful
    /// stop that has not opened yet.
    Start,
    /// Graceful stop: ask for zero current, open below the break current or at a deadline.
    Stop,
    /// Open every contactor now, whatever the current.
    EmergencyStop,
    /// Clear latched faults whose condition is back inside its hysteresis. Faults whose
    /// condition persists stay latched and are reported as refused.
    ClearFaults,
}

/// The three contactors of a pack, in closing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactorId {
    /// Negative main contactor.
    Negative,
    /// Precharge relay (in series with the precharge resistor, parallel to the positive main).
    Precharge,
    /// Positive main contactor.
    Positive,
}

impl ContactorId {
    /// All contactors in closing order.
    pub const ALL: [ContactorId; 3] =
        [ContactorId::Negative, ContactorId::Precharge, ContactorId::Positive];

    /// Position in [`ContactorId::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}
