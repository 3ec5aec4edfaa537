//! End to end in one test: close through precharge, charge, a cell over-voltage trip within its
//! debounce, and a refused clear while the cell is still high.

mod common;

use cellwarden_core::{Command, Duration, MilliAmps, MilliVolts, RuleId, SequenceState};
use common::Rig;

#[test]
fn closes_charges_and_trips_on_cell_over_voltage() {
    let mut rig = Rig::tesla();
    rig.close();
    assert_eq!(rig.applied(), [true, false, true]);
    rig.plant.load = MilliAmps(50_000);
    rig.run(Duration::from_secs(1));
    assert_eq!(rig.bms.status().limits.charge_ma, MilliAmps(100_000));
    rig.plant.cells[5] = MilliVolts(4_300);
    let t0 = rig.now;
    rig.run(Duration::from_secs(1));
    assert_eq!(rig.state(), SequenceState::Open);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellOverVoltage));
    let opened = rig.first_open_at_or_after(t0).expect("opened");
    assert!(opened - t0 <= Duration::from_millis(210), "{:?}", opened - t0);
    rig.command(Command::ClearFaults);
    assert_eq!(rig.bms.status().latched(), Some(RuleId::CellOverVoltage));
}
