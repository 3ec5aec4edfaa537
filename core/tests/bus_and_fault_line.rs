//! The bus voltage's freshness rule (needed while a close is requested or a contactor is
//! commanded closed; an open, idle pack does not need it) and the hardware fault line as a
//! required value where the configuration says the line exists.

mod common;
mod support;

use cellwarden_core::{
    Blocker, Command, Config, FaultChange, Input, Location, RuleId, SequenceEvent, SequenceState,
    Tier,
};
use common::Rig;
use support::{BASE_MV, count, events, isolated, ms, opened_at};

/// The LFP preset: bus voltage fresh for 1 s.
fn rig() -> Rig {
    Rig::new(isolated(RuleId::BusVoltageStale), BASE_MV)
}

#[test]
fn a_bus_voltage_that_stops_while_closed_opens_after_its_freshness_limit() {
    let mut rig = rig();
    rig.close();
    rig.feed();
    rig.feed_bus = false;
    let last = rig.now;
    rig.run(ms(990));
    assert_eq!(rig.state(), SequenceState::Closed, "still fresh");
    rig.run(ms(100));
    assert_eq!(rig.state(), SequenceState::Open);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::BusVoltageStale));
    let raised = events(&rig, RuleId::BusVoltageStale, Tier::Maximum, FaultChange::Raised);
    assert_eq!(raised.len(), 1);
    assert_eq!(raised[0].location, Location::Pack);
    assert!(raised[0].value >= 1_000, "its age: {}", raised[0].value);
    // The last sample went out at `last`; the core woke itself at its deadline.
    assert_eq!(opened_at(&rig), Some(last + ms(1_000)));
}

#[test]
fn an_open_idle_pack_does_not_need_its_bus_voltage() {
    let mut rig = rig();
    rig.run(ms(100));
    rig.feed_bus = false;
    rig.run(ms(3_600_000));
    assert_eq!(rig.bms.status().latched(), None);
    assert_eq!(count(&rig, RuleId::BusVoltageStale, Tier::Maximum, FaultChange::Raised), 0);
    // Closing needs it: a start finds it stale and latches, before any contactor closes.
    let mark = rig.log.len();
    rig.command(Command::Start);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::BusVoltageStale));
    assert!(!rig.any_closed(), "nothing closes on a stale bus voltage");
    assert!(
        rig.picked(mark, |_, a| matches!(
            a,
            cellwarden_core::Action::Contactor { closed: true, .. }
        )
        .then_some(()))
            .is_empty()
    );
    assert!(!rig.bms.status().close_requested, "the fault withdrew the start");
}

#[test]
fn a_stale_bus_fault_clears_once_the_pack_is_open_and_closes_again_when_the_bus_is_back() {
    let mut rig = rig();
    rig.close();
    rig.feed_bus = false;
    rig.run(ms(2_000));
    assert_eq!(rig.bms.status().latched(), Some(RuleId::BusVoltageStale));
    // Open and idle: nothing needs the bus voltage, so the fault may be cleared...
    rig.command(Command::ClearFaults);
    assert_eq!(rig.bms.status().latched(), None);
    // ...and a start with the bus still silent trips it again at once.
    rig.command(Command::Start);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::BusVoltageStale));
    rig.feed_bus = true;
    rig.run(ms(100));
    rig.command(Command::ClearFaults);
    rig.close();
    assert_eq!(rig.state(), SequenceState::Closed);
}

#[test]
fn a_configured_hardware_fault_line_never_received_blocks_closing() {
    let mut config = isolated(RuleId::HardwareFault);
    config.hardware_fault_line = true;
    let mut rig = Rig::new(config, BASE_MV);
    rig.feed_hardware_line = false;
    rig.run(ms(100));
    let mark = rig.log.len();
    rig.command(Command::Start);
    assert_eq!(rig.bms.status().close_blocker, Some(Blocker::NoHardwareFaultLine));
    let blocked = rig.picked(mark, |_, a| match a {
        cellwarden_core::Action::Sequence(SequenceEvent::CloseBlocked { blocker }) => {
            Some(*blocker)
        }
        _ => None,
    });
    assert_eq!(blocked, [Blocker::NoHardwareFaultLine]);
    rig.run(ms(5_000));
    assert!(!rig.any_closed(), "no close without the line");
    // Its first (inactive) report lets the waiting start go ahead.
    let now = rig.now;
    rig.input(Input::HardwareFault { sampled_at: now, active: false });
    assert_eq!(rig.bms.status().close_blocker, None);
    rig.run(ms(2_000));
    assert_eq!(rig.state(), SequenceState::Closed);
}

#[test]
fn without_a_hardware_fault_line_closing_does_not_wait_for_one() {
    let config = isolated(RuleId::HardwareFault);
    assert!(!config.hardware_fault_line, "the LFP preset assumes none");
    let mut rig = Rig::new(config, BASE_MV);
    rig.feed_hardware_line = false;
    rig.close();
    assert_eq!(rig.state(), SequenceState::Closed);
}

#[test]
fn the_presets_say_whether_the_line_exists() {
    assert!(Config::tesla_model_s(16).hardware_fault_line, "the module boards' comparators");
    assert!(!Config::lfp_16s(100).hardware_fault_line);
}
