//! Why the contactors may not start closing.
//!
//! Vocabulary: the sequencer decides it, actions and the status report it, so it lives apart
//! from all three.

use crate::input::ContactorId;
use crate::rule::RuleId;

/// Why the contactors may not start closing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocker {
    /// A maximum-safety fault is latched.
    Fault(RuleId),
    /// This cell's voltage was never received.
    NoCellVoltage(u16),
    /// This temperature sensor was never received.
    NoTemperature(u16),
    /// The current was never received.
    NoCurrent,
    /// The pack voltage was never received.
    NoPackVoltage,
    /// The bus voltage (needed to verify precharge) was never received.
    NoBusVoltage,
    /// This contactor has feedback configured but none was received.
    NoFeedback(ContactorId),
    /// This contactor reports closed while commanded open.
    FeedbackDisagrees(ContactorId),
    /// The configuration says there is a hardware fault line, and it was never received.
    NoHardwareFaultLine,
    /// The DC link is still within the precharge band of the pack after an open (or at a start
    /// onto a charged link): closing waits for it to discharge, and a link still held there
    /// `contactors.link_decay_ms` after the wait began latches `ContactorWelded`. Dedicated
    /// links only (`contactors.dc_link`).
    LinkDischarging,
}
