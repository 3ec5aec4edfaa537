//! The low-voltage CAN BMS protocol that 48 V batteries speak to Pylontech-, SMA- and
//! Victron-compatible inverters (`shared/protocols.md` §2), for both ends of the bus.
//!
//! The battery broadcasts a set of frames about once a second; the inverter answers with
//! keep-alives (0x305, and on a Victron GX also 0x306 and 0x307). Nothing is negotiated. The module
//! has three layers:
//!
//! - **Payloads.** One type per frame kind ([`Limits`], [`Soc`], [`Measurements`],
//!   [`PylonFlags`], [`Alarms`], [`Requests`], [`Name`], [`Info`], [`ModuleCounts`],
//!   [`CellExtremes`], [`Energy`], [`Capacity`], ...), in core units. Each has a strict `decode`
//!   and an `encode(len)` that rounds and saturates so that what it writes always decodes again.
//!   [`decode`] turns any [`Frame`] into a [`Message`] or a [`DecodeError`], and
//!   [`Message::encode`] turns a message back into a frame.
//! - **Views.** The `encode_*` functions ([`encode_limits`], [`encode_cycle`], ...) build a
//!   battery's frames from a [`BatteryView`] for one [`Profile`] and [`Dlc`] style, applying the
//!   policies below. [`encode_keepalive`] builds the inverter's frames.
//! - **Drivers.** [`Publisher`] decides when the battery's frames go out; [`Reader`] assembles a
//!   [`BatteryView`] from a battery's frames. Both are sans-IO: time is an argument.
//!
//! ## Wire rules
//!
//! Standard (11-bit) identifiers, little-endian fields, 500 kbit/s (the transport's business).
//! Units on the wire: 0.1 V for the voltage limits, 0.01 V for the battery voltage, 0.1 A for
//! currents, 0.1 °C for the battery temperature, kelvin for 0x373's cell temperatures, 1 % for
//! SoC and SoH.
//!
//! ## Encoding: rounding and policies
//!
//! - Limits round toward the safe side: the charge voltage limit (CVL) down, both current limits
//!   toward zero, the discharge voltage limit (DVL) up. Measurements round to the nearest step.
//!   Every field saturates at the end of its range instead of wrapping, and values a careful
//!   decoder would reject (a negative voltage, a 400 °C temperature, SoC above 100 %) are clamped
//!   into its range, so every frame this module encodes is accepted by [`decode`].
//! - Every profile sends CCL 0 while the view does not allow charging and DCL 0 while it does
//!   not allow discharging (Battery-Emulator's rule).
//! - **A Victron never receives CVL 0**: a GX reads it as over-voltage and discharges hard.
//!   When the CVL would encode as 0, [`Profile::Victron`] sends the battery's present voltage,
//!   rounded *up* to 0.1 V so the GX never sees the battery above its CVL, together with CCL 0.
//!   When that voltage is also 0, 0x351 is left out of the cycle.
//! - 0x355 bytes 4-5 (high-resolution SoC) are written in 0.01 % by [`Profile::Sma`] and
//!   [`Profile::Victron`] (Battery-Emulator's and Victron's scale; SimpBMS writes 0.1 %, see
//!   [`Soc`] for how the decoder settles that) and left 0 by both Pylontech profiles, as the real
//!   v1.3 firmware does.
//! - 0x35A reports every unalarmed field as 10 ("OK") on SMA and Victron. The Pylontech v1.3
//!   profile leaves them 00, as the real US5000 v1.3 firmware does (`35A: 00×8`).
//! - 0x359 carries seven alarm kinds; [`PylonFlags::fold`] says which bit stands in for the others.
//!
//! ## Decoding: strictness
//!
//! [`decode`] is as strict as a careful inverter. It rejects extended identifiers, identifiers
//! outside the protocol, frames too short for the fields their identifier defines, values
//! outside their physical range (SoC or SoH above 100 %, a negative current limit or battery
//! voltage, a temperature outside [`MIN_TEMPERATURE`]..=[`MAX_TEMPERATURE`], a cell voltage
//! above [`MAX_CELL_MV`], a minimum above its maximum), text that is not printable ASCII with
//! NUL padding, and a 0x359 without its `'P' 'N'` marker. Frames longer than their fields are
//! fine; reserved and padding bytes are not checked.

mod cycle;
mod flags;
mod payload;
mod publisher;
mod reader;
mod text;
mod wire;

pub use cycle::{
    encode_alarms, encode_capacity, encode_cell_extremes, encode_cycle, encode_events, encode_info,
    encode_limits, encode_measurements, encode_module_counts, encode_name, encode_pylon_flags,
    encode_requests, encode_soc,
};
pub use flags::{Alarms, PylonFlags, Requests};
pub use payload::{
    Capacity, CellExtremes, Energy, Events, Info, Limits, Measurements, ModuleCounts, Soc,
};
pub use publisher::{MIN_PERIOD, Mode, Publisher, SYNC_MIN_GAP};
pub use reader::{Reader, ReaderCounters};
pub use text::{Name, TextId};

use crate::proto::can::Frame;
use crate::units::{DeciCelsius, MilliVolts};
#[cfg(doc)]
use crate::view::BatteryView;

/// The frame identifiers of the protocol.
pub mod id {
    /// Inverter → battery: keep-alive ("acknowledge"), 8 × 0x00 from Pylontech-compatible
    /// inverters and Victron GX; the SMA Sunny Island puts its own measurements in it.
    pub const KEEPALIVE: u16 = 0x305;
    /// Inverter → battery: SMA Sunny Island status; 8 × 0x00 from a Victron GX.
    pub const INVERTER_STATUS: u16 = 0x306;
    /// Inverter → battery: Victron GX identification, `12 34 56 78 56 49 43 00`.
    pub const VICTRON_GX: u16 = 0x307;
    /// Charge and discharge limits (CVL, CCL, DCL, DVL).
    pub const LIMITS: u16 = 0x351;
    /// State of charge and health.
    pub const SOC: u16 = 0x355;
    /// Battery voltage, current and temperature.
    pub const MEASUREMENTS: u16 = 0x356;
    /// Pylontech protection and alarm flags, module count, `"PN"`.
    pub const PYLON_FLAGS: u16 = 0x359;
    /// SMA/Victron alarms and warnings, 32 two-bit fields.
    pub const ALARMS: u16 = 0x35A;
    /// SMA events (BYD and Victron batteries send 8 × 0x00).
    pub const EVENTS: u16 = 0x35B;
    /// Pylontech charge/discharge request flags.
    pub const REQUESTS: u16 = 0x35C;
    /// Manufacturer name, 8 ASCII bytes.
    pub const NAME: u16 = 0x35E;
    /// Chemistry, firmware version, capacity, hardware version.
    pub const INFO: u16 = 0x35F;
    /// BMS or manufacturer name, first 8 characters.
    pub const BMS_NAME_1: u16 = 0x370;
    /// BMS or manufacturer name, next 8 characters.
    pub const BMS_NAME_2: u16 = 0x371;
    /// Modules online, blocking charge, blocking discharge, offline.
    pub const MODULE_COUNTS: u16 = 0x372;
    /// Lowest and highest cell voltage and temperature.
    pub const CELL_EXTREMES: u16 = 0x373;
    /// Name of the cell with the lowest voltage.
    pub const MIN_VOLTAGE_CELL: u16 = 0x374;
    /// Name of the cell with the highest voltage.
    pub const MAX_VOLTAGE_CELL: u16 = 0x375;
    /// Name of the cell with the lowest temperature.
    pub const MIN_TEMPERATURE_CELL: u16 = 0x376;
    /// Name of the cell with the highest temperature.
    pub const MAX_TEMPERATURE_CELL: u16 = 0x377;
    /// Charged and discharged energy.
    pub const ENERGY: u16 = 0x378;
    /// Installed capacity.
    pub const CAPACITY: u16 = 0x379;
    /// Product name (BYD: `"PREMIUM"`).
    pub const PRODUCT_NAME: u16 = 0x382;
}

/// Lowest temperature a decoder accepts (−100.0 °C). Anything colder is not a measurement.
pub const MIN_TEMPERATURE: DeciCelsius = DeciCelsius(-1_000);
/// Highest temperature a decoder accepts (+200.0 °C). Anything hotter is not a measurement.
pub const MAX_TEMPERATURE: DeciCelsius = DeciCelsius(2_000);
/// Highest cell voltage a decoder accepts in 0x373 (5 V; no lithium cell gets there).
pub const MAX_CELL_MV: MilliVolts = MilliVolts(5_000);
/// Highest battery voltage 0x356 can carry (a signed 16-bit number of 10 mV steps, 327.67 V).
/// The encoder clamps above it; a configuration that could need more is refused
/// ([`CombinerConfigError::PackVoltageBeyondProtocol`](crate::combiner::CombinerConfigError)).
pub const MAX_VOLTAGE_MV: MilliVolts = MilliVolts(i16::MAX as i32 * 10);

/// Which battery (and so which set of frames) to imitate. The frame order of each profile is
/// [`Profile::cycle_ids`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Profile {
    /// Pylontech LV with the original (v1.2) firmware, as Battery-Emulator and the real stack in
    /// bms_gateway's capture: 0x359 and 0x35C, no 0x35A. (That stack also ends its cycle with
    /// 0x373, which Battery-Emulator does not send and this profile leaves out;
    /// [`encode_cell_extremes`] builds it.)
    Pylontech,
    /// Pylontech US5000 with v1.3 firmware: 0x35A (all fields 00 when nothing is wrong) and
    /// 0x35F instead of 0x359 and 0x35C.
    PylontechV13,
    /// SMA Sunny Island battery interface: 0x35A with OK fields, 0x35B events, 0x35F.
    Sma,
    /// Victron GX "CAN-bus BMS": the SMA set plus 0x372, 0x373 and 0x379. Never sends CVL 0.
    Victron,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 4] =
        [Profile::Pylontech, Profile::PylontechV13, Profile::Sma, Profile::Victron];

    /// The identifiers of one cycle, in send order. [`Profile::Victron`] leaves 0x373 out when
    /// the view does not know both cell extremes, and 0x351 in the case described in the
    /// module documentation.
    pub const fn cycle_ids(self) -> &'static [u16] {
        use id::*;
        match self {
            Profile::Pylontech => &[PYLON_FLAGS, LIMITS, SOC, MEASUREMENTS, REQUESTS, NAME],
            Profile::PylontechV13 => &[LIMITS, SOC, MEASUREMENTS, ALARMS, NAME, INFO],
            Profile::Sma => &[LIMITS, SOC, MEASUREMENTS, ALARMS, EVENTS, NAME, INFO],
            Profile::Victron => &[
                LIMITS,
                SOC,
                MEASUREMENTS,
                ALARMS,
                NAME,
                INFO,
                MODULE_COUNTS,
                CELL_EXTREMES,
                CAPACITY,
            ],
        }
    }

    /// The keep-alives an inverter of this kind sends, for an inverter-side simulator: 0x305
    /// from Pylontech-compatible inverters, 0x305 and 0x306 from a Sunny Island (whose real
    /// frames carry measurements; these are zeros), all three from a Victron GX.
    pub const fn inverter_keepalives(self) -> &'static [KeepAlive] {
        match self {
            Profile::Pylontech | Profile::PylontechV13 => &[KeepAlive::Ack305],
            Profile::Sma => &[KeepAlive::Ack305, KeepAlive::Sma306],
            Profile::Victron => &[KeepAlive::Ack305, KeepAlive::Sma306, KeepAlive::VictronGx307],
        }
    }
}

/// How long the battery's frames are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dlc {
    /// Every frame 8 bytes, zero-padded, as the real Pylontech stack in bms_gateway's capture.
    Full,
    /// The short frames of the US5000 capture and Battery-Emulator: 0x355 4 bytes (6 where
    /// bytes 4-5 are sent: v1.3, SMA, Victron), 0x356 6, 0x359 7, 0x35C 2. 0x351 stays 8 (the
    /// US5000 sends its DVL), and so does every frame no short capture exists for.
    Short,
}

impl Dlc {
    /// The data length of frame `id` for `profile`.
    pub const fn len(self, profile: Profile, id: u16) -> usize {
        match self {
            Dlc::Full => 8,
            Dlc::Short => match id {
                id::SOC => match profile {
                    Profile::Pylontech => 4,
                    _ => 6,
                },
                id::MEASUREMENTS => 6,
                id::PYLON_FLAGS => 7,
                id::REQUESTS => 2,
                _ => 8,
            },
        }
    }
}

/// A frame an inverter sends to the battery. Only the identifier matters: the content is not
/// interpreted (the Sunny Island fills 0x305 and 0x306 with measurements whose layout no source
/// gives), and [`encode_keepalive`] sends the Victron/Pylontech content.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeepAlive {
    /// 0x305, the "acknowledge" every compatible inverter sends about once a second.
    Ack305,
    /// 0x306: a Sunny Island's status; 8 zeros from a Victron GX.
    Sma306,
    /// 0x307: a Victron GX's `12 34 56 78 56 49 43 00`.
    VictronGx307,
}

impl KeepAlive {
    /// The frame identifier.
    pub const fn id(self) -> u16 {
        match self {
            KeepAlive::Ack305 => id::KEEPALIVE,
            KeepAlive::Sma306 => id::INVERTER_STATUS,
            KeepAlive::VictronGx307 => id::VICTRON_GX,
        }
    }

    /// The 8 bytes [`encode_keepalive`] sends.
    pub const fn payload(self) -> [u8; 8] {
        match self {
            KeepAlive::Ack305 | KeepAlive::Sma306 => [0; 8],
            KeepAlive::VictronGx307 => [0x12, 0x34, 0x56, 0x78, 0x56, 0x49, 0x43, 0x00],
        }
    }
}

/// The inverter's frame: `305#0000000000000000`, `306#0000000000000000` or
/// `307#1234567856494300`.
#[must_use]
pub fn encode_keepalive(kind: KeepAlive) -> Frame {
    wire::frame(kind.id(), &kind.payload(), 8)
}

/// Why a frame is not a valid frame of this protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A 29-bit identifier; the protocol uses 11-bit ones only.
    Extended,
    /// An identifier this protocol does not define (or this module does not decode).
    UnknownId(u16),
    /// Fewer data bytes than the fields of frame `id` need.
    TooShort {
        /// The frame identifier.
        id: u16,
        /// The data length received.
        len: u8,
    },
    /// A value outside its physical range, or a minimum above its maximum.
    OutOfRange {
        /// The frame identifier.
        id: u16,
    },
    /// A text frame with a byte that is neither printable ASCII nor trailing NUL padding.
    NotAscii {
        /// The frame identifier.
        id: u16,
    },
    /// A 0x359 whose bytes 5-6 are not `'P' 'N'`.
    NoMarker,
}

/// One decoded frame, in core units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message {
    /// 0x351.
    Limits(Limits),
    /// 0x355.
    Soc(Soc),
    /// 0x356.
    Measurements(Measurements),
    /// 0x359.
    PylonFlags(PylonFlags),
    /// 0x35A.
    Alarms(Alarms),
    /// 0x35B.
    Events(Events),
    /// 0x35C.
    Requests(Requests),
    /// 0x35E.
    Name(Name),
    /// 0x35F.
    Info(Info),
    /// 0x370, 0x371, 0x374-0x377 and 0x382: ASCII text, which the identifier names.
    Text(TextId, Name),
    /// 0x372.
    ModuleCounts(ModuleCounts),
    /// 0x373.
    CellExtremes(CellExtremes),
    /// 0x378.
    Energy(Energy),
    /// 0x379.
    Capacity(Capacity),
    /// 0x305, 0x306, 0x307 from the inverter.
    KeepAlive(KeepAlive),
}

impl Message {
    /// The frame identifier.
    pub const fn id(&self) -> u16 {
        match self {
            Message::Limits(_) => id::LIMITS,
            Message::Soc(_) => id::SOC,
            Message::Measurements(_) => id::MEASUREMENTS,
            Message::PylonFlags(_) => id::PYLON_FLAGS,
            Message::Alarms(_) => id::ALARMS,
            Message::Events(_) => id::EVENTS,
            Message::Requests(_) => id::REQUESTS,
            Message::Name(_) => id::NAME,
            Message::Info(_) => id::INFO,
            Message::Text(text_id, _) => text_id.id(),
            Message::ModuleCounts(_) => id::MODULE_COUNTS,
            Message::CellExtremes(_) => id::CELL_EXTREMES,
            Message::Energy(_) => id::ENERGY,
            Message::Capacity(_) => id::CAPACITY,
            Message::KeepAlive(kind) => kind.id(),
        }
    }

    /// The frame, `len` bytes long or longer where the fields need more (at most 8). Decoding
    /// it gives this message back whenever the message came from [`decode`].
    #[must_use]
    pub fn encode(&self, len: usize) -> Frame {
        match self {
            Message::Limits(m) => m.encode(len),
            Message::Soc(m) => m.encode(len),
            Message::Measurements(m) => m.encode(len),
            Message::PylonFlags(m) => m.encode(len),
            Message::Alarms(m) => m.encode(len),
            Message::Events(m) => m.encode(len),
            Message::Requests(m) => m.encode(len),
            Message::Name(m) => m.encode(id::NAME, len),
            Message::Info(m) => m.encode(len),
            Message::Text(text_id, m) => m.encode(text_id.id(), len),
            Message::ModuleCounts(m) => m.encode(len),
            Message::CellExtremes(m) => m.encode(len),
            Message::Energy(m) => m.encode(len),
            Message::Capacity(m) => m.encode(len),
            Message::KeepAlive(kind) => encode_keepalive(*kind),
        }
    }
}

/// Decodes one frame, strictly (see the module documentation). Never panics.
pub fn decode(frame: &Frame) -> Result<Message, DecodeError> {
    if frame.is_extended() {
        return Err(DecodeError::Extended);
    }
    // A standard frame's identifier has 11 bits; the fallback is never taken.
    let frame_id = u16::try_from(frame.id()).unwrap_or(u16::MAX);
    let data = frame.data();
    let message = match frame_id {
        id::KEEPALIVE => Message::KeepAlive(KeepAlive::Ack305),
        id::INVERTER_STATUS => Message::KeepAlive(KeepAlive::Sma306),
        id::VICTRON_GX => Message::KeepAlive(KeepAlive::VictronGx307),
        id::LIMITS => Message::Limits(Limits::decode(data)?),
        id::SOC => Message::Soc(Soc::decode(data)?),
        id::MEASUREMENTS => Message::Measurements(Measurements::decode(data)?),
        id::PYLON_FLAGS => Message::PylonFlags(PylonFlags::decode(data)?),
        id::ALARMS => Message::Alarms(Alarms::decode(data)?),
        id::EVENTS => Message::Events(Events::decode(data)),
        id::REQUESTS => Message::Requests(Requests::decode(data)?),
        id::NAME => Message::Name(Name::decode(id::NAME, data)?),
        id::INFO => Message::Info(Info::decode(data)?),
        id::MODULE_COUNTS => Message::ModuleCounts(ModuleCounts::decode(data)?),
        id::CELL_EXTREMES => Message::CellExtremes(CellExtremes::decode(data)?),
        id::ENERGY => Message::Energy(Energy::decode(data)?),
        id::CAPACITY => Message::Capacity(Capacity::decode(data)?),
        other => match TextId::from_id(other) {
            Some(text_id) => Message::Text(text_id, Name::decode(other, data)?),
            None => return Err(DecodeError::UnknownId(other)),
        },
    };
    Ok(message)
}
