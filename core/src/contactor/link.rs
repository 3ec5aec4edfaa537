//! The DC link as the witness of welds that no feedback contact reports.
//!
//! The bus voltage input measures the inverter's DC link, on the far side of the contactors. With
//! the mains open and healthy the link is cut off from the pack and its capacitance discharges
//! through the inverter's bleed resistor (and the inverter's own supply); it can only follow the
//! pack through a closed path on *both* rails. That gives three checks, each against the
//! precharge band (`contactors.precharge_band_mv`), the same margin that decides when precharge
//! is done:
//!
//! - **Held at the pack** (`held_at_pack`): a sample taken after an open that still lies within
//!   the band of the pack. After the positive opened with the negative still closed, a link held
//!   there for `contactors.link_decay_ms` means the positive (or the precharge relay) still
//!   connects it; after everything opened, it means the negative is welded as well as one of the
//!   other two.
//! - **Rise while only the negative is closed** (`rise_blame`): no path can charge the link then,
//!   so a rise of more than the band above what the link read when the negative was commanded
//!   means the positive or the precharge relay is welded. A jump into the band of the pack is
//!   the positive (nothing else charges a link that fast); a smaller rise is the precharge relay
//!   charging it through its resistor.
//! - **Sampled after the negative closed** (`sampled_since`): precharge starts only once a bus
//!   sample taken after the negative counts as closed has been looked at, so the rise check cannot
//!   be skipped when no measurement falls inside the negative's settle time.
//!
//! None of this holds for a link another source may hold up (`contactors.dc_link = "shared"`):
//! `dedicated` says whether the checks apply at all.

use crate::config::{Config, DcLink};
use crate::input::ContactorId;
use crate::measure::Measurements;
use crate::time::{Duration, Instant};
use crate::units::MilliVolts;

/// What the sequencer remembers about the link between evaluations.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LinkWatch {
    /// The link voltage when the negative contactor was last commanded closed.
    pub before_close: Option<MilliVolts>,
    /// Everything is open since then and the link has not yet been seen out of the precharge
    /// band: closing waits, and `link_decay_ms` after this a link still held at the pack latches
    /// a weld of the negative.
    pub decay_since: Option<Instant>,
}

/// Whether the link is fed only through this pack's contactors, so that its voltage can witness
/// welds at all. A shared link (`contactors.dc_link = "shared"`) may be held up by another
/// source with everything open: none of the checks here apply to it.
pub(super) fn dedicated(config: &Config) -> bool {
    config.contactors.dc_link == DcLink::Dedicated
}

/// How long after an open the link may stay at the pack voltage.
pub(super) fn decay_time(config: &Config) -> Duration {
    Duration::from_millis(config.contactors.link_decay_ms.into())
}

/// Fresh pack and bus readings, the bus sampled after `after` (if given).
fn readings(
    config: &Config,
    m: &Measurements,
    now: Instant,
    after: Option<Instant>,
) -> Option<(MilliVolts, MilliVolts)> {
    let f = &config.freshness;
    let ms = |v: u32| Duration::from_millis(v.into());
    let pack = Measurements::fresh(m.pack, now, ms(f.pack_voltage_ms))?;
    let bus = Measurements::fresh(
        m.bus.filter(|b| after.is_none_or(|t| b.at > t)),
        now,
        ms(f.bus_voltage_ms),
    )?;
    Some((pack, bus))
}

/// Whether the link, sampled after `after` (if given), sits within the precharge band of the
/// pack. `None` without fresh readings of both: no verdict either way.
pub(super) fn held_at_pack(
    config: &Config,
    m: &Measurements,
    now: Instant,
    after: Option<Instant>,
) -> Option<bool> {
    let (pack, bus) = readings(config, m, now, after)?;
    Some(pack.0.abs_diff(bus.0) <= config.contactors.precharge_band_mv.0.unsigned_abs())
}

/// With only the negative commanded closed since `since`: the contactor to blame if the link
/// has risen by more than the precharge band above `before`.
pub(super) fn rise_blame(
    config: &Config,
    m: &Measurements,
    now: Instant,
    since: Instant,
    before: Option<MilliVolts>,
) -> Option<ContactorId> {
    let before = before?;
    let (pack, bus) = readings(config, m, now, Some(since))?;
    let band = i64::from(config.contactors.precharge_band_mv.0);
    if i64::from(bus.0) - i64::from(before.0) <= band {
        return None;
    }
    Some(if i64::from(pack.0).abs_diff(bus.0.into()) <= band.unsigned_abs() {
        ContactorId::Positive
    } else {
        ContactorId::Precharge
    })
}

/// A bus sample taken at or after `at` has arrived.
pub(super) fn sampled_since(m: &Measurements, at: Instant) -> bool {
    m.bus.is_some_and(|b| b.at >= at)
}
