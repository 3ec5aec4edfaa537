//! The battery's frames built from a [`BatteryView`]: one function per frame and
//! [`encode_cycle`] for a profile's whole set.
//!
//! Every function takes the profile and DLC style even where the frame does not depend on
//! them, so callers need not remember which do.

use heapless::Vec;

use super::flags::{Alarms, PylonFlags, Requests};
use super::payload::{
    Capacity, CellExtremes, Events, Info, Limits, Measurements, ModuleCounts, Soc,
};
use super::{Dlc, Profile, id};
use crate::proto::can::Frame;
use crate::view::BatteryView;

/// 0x351, or `None` when a Victron would be sent CVL 0 and the battery voltage is 0 (see
/// [`Limits::from_view`]). Always 8 bytes.
#[must_use]
pub fn encode_limits(profile: Profile, dlc: Dlc, view: &BatteryView) -> Option<Frame> {
    let limits = Limits::from_view(profile, view)?;
    Some(limits.encode(dlc.len(profile, id::LIMITS)))
}

/// 0x355.
#[must_use]
pub fn encode_soc(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    Soc::from_view(profile, view).encode(dlc.len(profile, id::SOC))
}

/// 0x356.
#[must_use]
pub fn encode_measurements(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    Measurements::from_view(view).encode(dlc.len(profile, id::MEASUREMENTS))
}

/// 0x359, with the alarm sets [folded](PylonFlags::fold).
#[must_use]
pub fn encode_pylon_flags(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    PylonFlags::from_view(view).encode(dlc.len(profile, id::PYLON_FLAGS))
}

/// 0x35A, always 8 bytes.
#[must_use]
pub fn encode_alarms(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    Alarms::from_view(profile, view).encode(dlc.len(profile, id::ALARMS))
}

/// 0x35B: no events, 8 × 0x00 (as BYD and Victron batteries send it).
#[must_use]
pub fn encode_events(profile: Profile, dlc: Dlc) -> Frame {
    Events::default().encode(dlc.len(profile, id::EVENTS))
}

/// 0x35C.
#[must_use]
pub fn encode_requests(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    Requests::from_view(view).encode(dlc.len(profile, id::REQUESTS))
}

/// 0x35E: the 8 bytes of `name` exactly as given (NUL- or space-padded; the one frame that is
/// 8 bytes in every capture). Inverters key their battery detection on it: `b"PYLON\0\0\0"`,
/// `b"PYLON   "`, `b"BYD\0\0\0\0\0"`. Anything but printable ASCII and trailing NULs is
/// rejected by careful decoders, [`decode`](super::decode) among them.
#[must_use]
pub fn encode_name(name: &[u8; 8]) -> Frame {
    super::wire::frame(id::NAME, name, 8)
}

/// 0x35F.
#[must_use]
pub fn encode_info(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    Info::from_view(profile, view).encode(dlc.len(profile, id::INFO))
}

/// 0x372, always 8 bytes.
#[must_use]
pub fn encode_module_counts(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    ModuleCounts::from_view(view).encode(dlc.len(profile, id::MODULE_COUNTS))
}

/// 0x373, always 8 bytes; `None` unless the view knows both the cell voltages and the cell
/// temperatures (zeros would read as empty, frozen cells).
#[must_use]
pub fn encode_cell_extremes(profile: Profile, dlc: Dlc, view: &BatteryView) -> Option<Frame> {
    Some(CellExtremes::from_view(view)?.encode(dlc.len(profile, id::CELL_EXTREMES)))
}

/// 0x379.
#[must_use]
pub fn encode_capacity(profile: Profile, dlc: Dlc, view: &BatteryView) -> Frame {
    Capacity::from_view(view).encode(dlc.len(profile, id::CAPACITY))
}

/// Replaces the contents of `out` with the frames of one cycle for `profile`, in send order
/// ([`Profile::cycle_ids`]): at most 9 frames. [`Profile::Victron`] leaves out 0x351 when the
/// battery voltage is 0 and would otherwise be sent CVL 0, and 0x373 when the view does not know
/// both cell extremes.
pub fn encode_cycle(
    profile: Profile,
    dlc: Dlc,
    name: &[u8; 8],
    view: &BatteryView,
    out: &mut Vec<Frame, 16>,
) {
    out.clear();
    for &frame_id in profile.cycle_ids() {
        let frame = match frame_id {
            id::LIMITS => encode_limits(profile, dlc, view),
            id::SOC => Some(encode_soc(profile, dlc, view)),
            id::MEASUREMENTS => Some(encode_measurements(profile, dlc, view)),
            id::PYLON_FLAGS => Some(encode_pylon_flags(profile, dlc, view)),
            id::ALARMS => Some(encode_alarms(profile, dlc, view)),
            id::EVENTS => Some(encode_events(profile, dlc)),
            id::REQUESTS => Some(encode_requests(profile, dlc, view)),
            id::NAME => Some(encode_name(name)),
            id::INFO => Some(encode_info(profile, dlc, view)),
            id::MODULE_COUNTS => Some(encode_module_counts(profile, dlc, view)),
            id::CELL_EXTREMES => encode_cell_extremes(profile, dlc, view),
            id::CAPACITY => Some(encode_capacity(profile, dlc, view)),
            _ => None,
        };
        if let Some(frame) = frame {
            // A cycle has at most 9 frames and `out` room for 16: the push cannot fail.
            let _ = out.push(frame);
        }
    }
}
