//! The names scenario files use, and the conversions between the file's enums and the core's
//! types, in one place.
//!
//! Every scenario-file enum is `snake_case` of its variant (`ContactorsOpen` is
//! `contactors_open`), so [`file_name`] derives the name from the variant; a test checks that
//! each name reads back as its variant, so the format and the names shown in reports cannot
//! drift apart.

use core::fmt;

use cellwarden_core::{Command, ContactorId, OpenKind, PrechargeFailure, Tier};

use super::schema::{CauseName, CommandName, ContactorName, OpenHow, TierName};

/// A variant's name as scenario files write it: `ContactorsOpen` as `contactors_open`. Works
/// for the core's plain enums too (`Command::EmergencyStop` is `emergency_stop`).
pub fn file_name(value: impl fmt::Debug) -> String {
    let debug = format!("{value:?}");
    let mut out = String::with_capacity(debug.len() + 4);
    for (i, c) in debug.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

impl From<CommandName> for Command {
    fn from(name: CommandName) -> Command {
        match name {
            CommandName::Start => Command::Start,
            CommandName::Stop => Command::Stop,
            CommandName::EmergencyStop => Command::EmergencyStop,
            CommandName::ClearFaults => Command::ClearFaults,
        }
    }
}

impl From<TierName> for Tier {
    fn from(name: TierName) -> Tier {
        match name {
            TierName::Operating => Tier::Operating,
            TierName::Recommended => Tier::Recommended,
            TierName::Maximum => Tier::Maximum,
        }
    }
}

impl From<ContactorName> for ContactorId {
    fn from(name: ContactorName) -> ContactorId {
        match name {
            ContactorName::Negative => ContactorId::Negative,
            ContactorName::Precharge => ContactorId::Precharge,
            ContactorName::Positive => ContactorId::Positive,
        }
    }
}

impl From<PrechargeFailure> for CauseName {
    fn from(cause: PrechargeFailure) -> CauseName {
        match cause {
            PrechargeFailure::NoVoltageRise => CauseName::NoVoltageRise,
            PrechargeFailure::TooSlow => CauseName::TooSlow,
            PrechargeFailure::Short => CauseName::Short,
        }
    }
}

impl From<OpenKind> for OpenHow {
    fn from(how: OpenKind) -> OpenHow {
        match how {
            OpenKind::Graceful => OpenHow::Graceful,
            OpenKind::GracefulDeadline { .. } => OpenHow::GracefulDeadline,
            OpenKind::Emergency { .. } => OpenHow::Emergency,
            OpenKind::EmergencyStop => OpenHow::EmergencyStop,
            OpenKind::Aborted => OpenHow::Aborted,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde::de::DeserializeOwned;

    use super::file_name;
    use crate::scenario::schema::{
        CauseName, CommandName, ContactorName, EventName, ExpectKind, OpenHow, SensorName, Signal,
        StateName, TierName,
    };

    /// `name` read as the file format reads it.
    fn read<T: DeserializeOwned>(name: &str) -> T {
        #[derive(Deserialize)]
        struct One<T> {
            v: T,
        }
        let one: One<T> = toml::from_str(&format!("v = \"{name}\"")).unwrap_or_else(|e| {
            panic!("`{name}` is not a name the file format accepts: {e}");
        });
        one.v
    }

    fn round_trip<T: DeserializeOwned + PartialEq + core::fmt::Debug + Copy>(all: &[T]) {
        for &v in all {
            assert_eq!(read::<T>(&file_name(v)), v);
        }
    }

    #[test]
    fn every_name_reads_back_as_its_variant() {
        use EventName as E;
        use Signal as S;
        round_trip(&[
            E::Command,
            E::FaultInjected,
            E::CloseBlocked,
            E::PrechargeStarted,
            E::PrechargeDone,
            E::PrechargeFailed,
            E::ContactorsClosed,
            E::Stopping,
            E::ContactorsOpen,
            E::FaultRaised,
            E::FaultReleased,
            E::FaultCleared,
            E::FaultClearRefused,
            E::LimitsChanged,
            E::PackJoined,
            E::PackRefused,
            E::PackDropped,
            E::InverterWarned,
            E::InverterZeroed,
            E::SystemOpened,
            E::InverterMissing,
            E::PackImplausible,
        ]);
        round_trip(&[
            S::CellMvMax,
            S::CellMvMin,
            S::CellSpreadMv,
            S::TempCMax,
            S::TempCMin,
            S::CurrentA,
            S::CurrentAbsA,
            S::PackV,
            S::BusV,
            S::SocPctMin,
            S::SocPctMax,
            S::ChargeLimitA,
            S::DischargeLimitA,
            S::ContactorsClosed,
            S::ClosedWithLatchedFault,
            S::PacksConnected,
            S::PackOverLimitA,
            S::InverterOverLimitA,
            S::InverterCvlV,
            S::InverterCvlOverPackV,
        ]);
        round_trip(&[StateName::Open, StateName::Closed, StateName::Closing]);
        round_trip(&[CauseName::NoVoltageRise, CauseName::TooSlow, CauseName::Short]);
        round_trip(&[
            OpenHow::Graceful,
            OpenHow::GracefulDeadline,
            OpenHow::Emergency,
            OpenHow::EmergencyStop,
            OpenHow::Aborted,
        ]);
        round_trip(&[
            CommandName::Start,
            CommandName::Stop,
            CommandName::EmergencyStop,
            CommandName::ClearFaults,
        ]);
        round_trip(&[TierName::Operating, TierName::Recommended, TierName::Maximum]);
        round_trip(&[ContactorName::Negative, ContactorName::Precharge, ContactorName::Positive]);
        round_trip(&[
            SensorName::Cells,
            SensorName::Temperatures,
            SensorName::Current,
            SensorName::PackVoltage,
            SensorName::BusVoltage,
            SensorName::All,
            SensorName::HardwareFaultLine,
        ]);
        round_trip(&[
            ExpectKind::Within,
            ExpectKind::Never,
            ExpectKind::By,
            ExpectKind::Count,
            ExpectKind::AtEnd,
        ]);
    }
}
