//! The periodic full charge across restarts: the time since the last one is persisted and
//! restored, so an adapter that restarts more often than the period does not postpone it for
//! ever.

use cellwarden_core::charge::{ChargeConfig, ChargeController, ChargeInput, Stage, StageReason};
use cellwarden_core::{DeciCelsius, Duration, Instant, MilliAmps, MilliVolts};

const DAY: u64 = 24 * 3_600;

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

/// 16 LFP cells resting on the plateau: no stage rule fires.
fn resting() -> ChargeInput {
    ChargeInput {
        cell_max_mv: MilliVolts(3_305),
        cell_min_mv: MilliVolts(3_295),
        pack_mv: MilliVolts(52_800),
        current_ma: MilliAmps(0),
        temperature_min_dc: DeciCelsius(200),
        temperature_max_dc: DeciCelsius(220),
        soc: None,
    }
}

fn weekly() -> ChargeController {
    let config = ChargeConfig::lfp_16s(100);
    assert_eq!(config.full_charge_every_ms, Some(7 * DAY * 1_000), "the preset is weekly");
    // A 16S pack, the one the preset is for.
    ChargeController::new(config, 16, Instant::ZERO).expect("valid preset")
}

#[test]
fn a_restored_time_since_the_full_charge_counts_towards_the_next_one() {
    // Six days went by before the restart; the adapter's clock starts again at zero.
    let mut ctl = weekly();
    ctl.restore_since_full_charge(secs(10), Duration::from_secs(6 * DAY));
    assert_eq!(ctl.since_full_charge(secs(10)), Duration::from_secs(6 * DAY));
    assert_eq!(ctl.since_full_charge(secs(110)), Duration::from_secs(6 * DAY + 100));
    // Due one day after the restart, not seven.
    assert_eq!(ctl.poll_timeout(), Some(secs(10 + DAY)));
    ctl.update(secs(DAY), &resting());
    assert!(!ctl.status().full_charge_due);
    ctl.handle_timeout(secs(10 + DAY));
    assert!(ctl.status().full_charge_due);
    assert_eq!(ctl.status().stage, Stage::Bulk);
}

#[test]
fn a_restored_time_beyond_the_period_is_due_at_once() {
    let mut ctl = weekly();
    ctl.restore_since_full_charge(secs(5), Duration::from_secs(30 * DAY));
    ctl.update(secs(6), &resting());
    assert!(ctl.status().full_charge_due);
}

#[test]
fn without_a_restore_the_period_counts_from_the_start() {
    let ctl = weekly();
    assert_eq!(ctl.since_full_charge(secs(3_600)), Duration::from_secs(3_600));
    assert_eq!(ctl.poll_timeout(), Some(secs(7 * DAY)));
}

#[test]
fn the_end_of_a_full_charge_starts_the_count_again() {
    let mut ctl = weekly();
    ctl.restore_since_full_charge(secs(1), Duration::from_secs(8 * DAY));
    // At the raised target and converged: absorption, then float, ends the full charge.
    let at_full = ChargeInput {
        cell_max_mv: MilliVolts(3_548),
        cell_min_mv: MilliVolts(3_535),
        pack_mv: MilliVolts(56_650),
        current_ma: MilliAmps(1_000),
        ..resting()
    };
    let mut t = 2;
    while ctl.status().stage != Stage::Float && t < 2 * 3_600 {
        ctl.update(secs(t), &at_full);
        t += 1;
    }
    let s = *ctl.status();
    assert_eq!(
        (s.stage, s.stage_reason, s.full_charge_due),
        (Stage::Float, StageReason::Converged, false)
    );
    let since = ctl.since_full_charge(secs(t + 100));
    assert!(since <= Duration::from_secs(101), "{since:?}");
    assert_eq!(ctl.poll_timeout().map(|at| at > secs(7 * DAY)), Some(true));
}

#[test]
fn the_pack_controller_persists_and_restores_it() {
    use cellwarden_core::{Bms, Config};
    let mut bms = Bms::new(Config::lfp_16s(100), Instant::ZERO).expect("preset is valid");
    assert_eq!(bms.since_full_charge(), Some(Duration::ZERO));
    bms.restore_since_full_charge(Duration::from_secs(6 * DAY));
    assert_eq!(bms.since_full_charge(), Some(Duration::from_secs(6 * DAY)));
    // Due one day later: the controller's next deadline says so.
    let due = bms.poll_timeout().expect("a deadline");
    assert!(due <= secs(DAY), "{due:?}");

    let mut config = Config::lfp_16s(100);
    config.charge = None;
    let mut bms = Bms::new(config, Instant::ZERO).expect("valid");
    bms.restore_since_full_charge(Duration::from_secs(DAY));
    assert_eq!(bms.since_full_charge(), None, "no charge section, nothing to persist");
}
