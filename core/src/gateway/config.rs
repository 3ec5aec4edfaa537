//! What the gateway is told about the packs and inverters it connects, and what it hands out.

use heapless::Vec;

use crate::combiner::{CombinerConfig, InverterProtocol, MAX_INVERTERS, MAX_PACKS};
use crate::input::Command;
use crate::proto::lv;
use crate::time::Duration;

/// How long a CAN pack's frames stay fresh enough to count in its report, unless configured
/// otherwise: three cycles of a BMS that sends once a second.
pub const DEFAULT_REPORT_MAX_AGE: Duration = Duration::from_secs(3);

/// One pack, and how the gateway hears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackLink {
    /// One of our own pack controllers, in the same process or behind a link: the adapter
    /// hands its reports to [`Gateway::handle_pack_report`](super::Gateway::handle_pack_report)
    /// and carries [`GatewayCommand::Controller`] to it.
    Controller,
    /// A rack battery whose BMS speaks a low-voltage CAN profile ([`lv::Reader`]), switched by
    /// a relay we drive ([`GatewayCommand::Relay`]).
    LvCan,
    /// A battery whose BMS speaks BYD HVS CAN ([`byd_can::Reader`](crate::proto::byd_can::Reader)),
    /// switched by a relay we drive.
    BydCan,
}

/// One inverter, and how the gateway speaks to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InverterLink {
    /// A low-voltage CAN profile ([`lv::Publisher`]). The battery name in 0x35E is "PYLON"
    /// for the Pylontech profiles (Pylontech-compatible inverters key their battery detection
    /// on it) and "CELLWRDN" otherwise.
    LvCan {
        /// Which profile.
        profile: lv::Profile,
        /// Frame lengths.
        dlc: lv::Dlc,
        /// Push a cycle every period, or answer each 0x305 keep-alive.
        mode: lv::Mode,
        /// Gap between the frames of one cycle.
        spacing: Duration,
    },
    /// BYD HVS CAN ([`byd_can::Publisher`](crate::proto::byd_can::Publisher)).
    BydCan {
        /// The capacity announced in the identification burst, Wh.
        capacity_wh: u32,
    },
}

impl InverterLink {
    /// The combiner's protocol this link must be configured with.
    pub const fn protocol(&self) -> InverterProtocol {
        match self {
            InverterLink::LvCan { .. } => InverterProtocol::LowVoltageCan,
            InverterLink::BydCan { .. } => InverterProtocol::BydCan,
        }
    }
}

/// Everything the gateway needs, validated once by [`Gateway::new`](super::Gateway::new).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayConfig {
    /// The combiner's configuration: one pack slot per entry of `packs`, one inverter slot per
    /// entry of `inverters`, in the same order.
    pub combiner: CombinerConfig,
    /// How each pack is heard, in the order of the combiner's pack numbers.
    pub packs: Vec<PackLink, MAX_PACKS>,
    /// How each inverter is spoken to, in the order of the combiner's inverter numbers.
    pub inverters: Vec<InverterLink, MAX_INVERTERS>,
    /// A CAN pack's frames older than this do not count in its report (see
    /// [`DEFAULT_REPORT_MAX_AGE`]).
    pub report_max_age: Duration,
}

/// Why a [`GatewayConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayConfigError {
    /// The combiner's own configuration is invalid.
    Combiner(crate::combiner::CombinerConfigError),
    /// `packs` and `combiner.packs` differ in length.
    PackCount,
    /// `inverters` and `combiner.inverters` differ in length.
    InverterCount,
    /// `inverters[index]` speaks another protocol than `combiner.inverters[index].protocol`.
    InverterProtocol {
        /// The inverter.
        index: u8,
    },
    /// `report_max_age` is zero: no CAN pack would ever report.
    ReportMaxAge,
}

impl GatewayConfig {
    /// A configuration around `combiner` with no pack or inverter linked yet (push them onto
    /// `packs` and `inverters`) and the default report age.
    pub fn new(combiner: CombinerConfig) -> GatewayConfig {
        GatewayConfig {
            combiner,
            packs: Vec::new(),
            inverters: Vec::new(),
            report_max_age: DEFAULT_REPORT_MAX_AGE,
        }
    }

    /// Checks what the combiner does not: that the links match its slots.
    pub(super) fn validate(&self) -> Result<(), GatewayConfigError> {
        if self.packs.len() != self.combiner.packs.len() {
            return Err(GatewayConfigError::PackCount);
        }
        if self.inverters.len() != self.combiner.inverters.len() {
            return Err(GatewayConfigError::InverterCount);
        }
        for (index, (link, slot)) in self.inverters.iter().zip(&self.combiner.inverters).enumerate()
        {
            if link.protocol() != slot.protocol {
                // MAX_INVERTERS (4) fits in u8.
                return Err(GatewayConfigError::InverterProtocol { index: index as u8 });
            }
        }
        if self.report_max_age == Duration::ZERO {
            return Err(GatewayConfigError::ReportMaxAge);
        }
        Ok(())
    }
}

/// A CAN bus the gateway is on: one per CAN pack, one per inverter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bus {
    /// The bus a CAN pack's BMS sends on.
    Pack(u8),
    /// The bus an inverter listens on.
    Inverter(u8),
}

/// What the adapter carries out for the gateway: the combiner's connect and disconnect, turned
/// into what each kind of pack understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GatewayCommand {
    /// Hand this command to one of our own pack controllers (`Start` to connect, `Stop`, the
    /// graceful one, to disconnect).
    Controller {
        /// The pack.
        pack: u8,
        /// The command.
        command: Command,
    },
    /// Switch a CAN pack's relay.
    Relay {
        /// The pack.
        pack: u8,
        /// Closed (connected) or open.
        closed: bool,
    },
}
