//! The ramp of the limits the combiner announces to each inverter (`limit_ramp_ms`): after the
//! first join the limits rise from zero at the inverter's cap per ramp time instead of stepping
//! up, a reduction applies at once, a pack that joins starts the ramp again from what the
//! inverter was last told, an early `handle_timeout` changes nothing, a ramp time of 0 turns it
//! off, and the ramp only ever lowers what the combiner computes.

use cellwarden_core::combiner::{
    CombinedReason, Combiner, CombinerAction, CombinerConfig, CombinerConfigError, CombinerInput,
    PackPhase,
};
use cellwarden_core::{
    AlarmSet, BatteryView, DEFAULT_LIMIT_RAMP_MS, DeciCelsius, Duration, Instant, MAX_CONFIG_MS,
    MilliAmps, MilliVolts, Permille,
};
use proptest::prelude::*;

/// The inverter's cap: with the default ramp of 5 s in 50 steps, 3 A every 100 ms.
const CAP_MA: i32 = 150_000;
const STEP_MA: i32 = CAP_MA / 50;
const STEP: Duration = Duration::from_millis(100);

/// `k` steps of the ramp.
fn steps(k: i32) -> Duration {
    Duration::from_micros(STEP.as_micros() * u64::try_from(k).unwrap())
}

fn pack_view(voltage_mv: i32, ccl_a: i32, dcl_a: i32) -> BatteryView {
    BatteryView {
        charge_voltage_mv: MilliVolts(53_200),
        discharge_voltage_mv: MilliVolts(45_000),
        charge_limit_ma: MilliAmps(ccl_a * 1000),
        discharge_limit_ma: MilliAmps(dcl_a * 1000),
        soc: Permille(500),
        soh: Permille(1000),
        voltage_mv: MilliVolts(voltage_mv),
        current_ma: MilliAmps(0),
        temperature_dc: DeciCelsius(200),
        cell_mv: Some((MilliVolts(3_300), MilliVolts(3_310))),
        cell_dc: Some((DeciCelsius(190), DeciCelsius(210))),
        capacity_mah: 100_000,
        alarms: AlarmSet::EMPTY,
        warnings: AlarmSet::EMPTY,
        charge_enable: true,
        discharge_enable: true,
        force_charge: false,
        full_charge: false,
        modules: 1,
    }
}

/// A combiner driven as an adapter drives it: every deadline on time, the packs' reports at the
/// times the test chooses, relays following connect and disconnect.
struct Rig {
    c: Combiner,
    now: Instant,
    relay: [bool; 8],
    views: [BatteryView; 8],
    /// Every `Limits` action with the time it was taken.
    limits: Vec<(Instant, CombinerAction)>,
}

impl Rig {
    fn new(config: CombinerConfig, views: &[BatteryView]) -> Rig {
        let c = Combiner::new(config, Instant::ZERO).expect("valid config");
        let mut all = [BatteryView::default(); 8];
        all[..views.len()].copy_from_slice(views);
        Rig { c, now: Instant::ZERO, relay: [false; 8], views: all, limits: Vec::new() }
    }

    fn drain(&mut self) {
        while let Some(a) = self.c.poll_action() {
            match a {
                CombinerAction::Connect { pack } => self.relay[usize::from(pack)] = true,
                CombinerAction::Disconnect { pack, .. } => self.relay[usize::from(pack)] = false,
                CombinerAction::Limits { .. } => self.limits.push((self.now, a)),
                _ => {}
            }
        }
    }

    /// Every deadline up to and including `t`, then `now = t`.
    fn until(&mut self, t: Instant) {
        while let Some(deadline) = self.c.poll_timeout().filter(|d| *d <= t) {
            self.now = deadline;
            self.c.handle_timeout(deadline);
            self.drain();
        }
        self.now = self.now.max(t);
    }

    fn report(&mut self, packs: &[u8]) {
        for &p in packs {
            let input = CombinerInput::Pack {
                pack: p,
                sampled_at: self.now,
                view: self.views[usize::from(p)],
                connected: self.relay[usize::from(p)],
            };
            self.c.handle_input(self.now, input);
            self.drain();
        }
    }

    /// Reports from `packs` every second until `t`.
    fn run(&mut self, t: Instant, packs: &[u8]) {
        while self.now < t {
            let next = (self.now + Duration::from_secs(1)).min(t);
            self.until(next);
            self.report(packs);
        }
    }

    fn discharge(&self) -> (i32, Option<CombinedReason>) {
        let i = &self.c.status().inverters[0];
        (i.view.discharge_limit_ma.0, i.discharge_reason)
    }
}

fn config(packs: usize) -> CombinerConfig {
    CombinerConfig::equal_packs(packs, 100_000, MilliAmps(CAP_MA))
}

/// One pack of 100 A joins at 1 s (asked to connect at 0 s, reports connected at 1 s).
fn joined_single() -> Rig {
    let mut rig = Rig::new(config(1), &[pack_view(52_000, 50, 100)]);
    rig.report(&[0]);
    rig.run(Instant::from_secs(1), &[0]);
    assert_eq!(rig.c.status().packs[0].phase, PackPhase::Joined);
    rig
}

#[test]
fn the_default_is_a_packs() {
    assert_eq!(config(1).limit_ramp_ms, DEFAULT_LIMIT_RAMP_MS);
    let mut c = config(1);
    c.limit_ramp_ms = MAX_CONFIG_MS + 1;
    assert_eq!(c.validate(), Err(CombinerConfigError::Time { field: "limit_ramp_ms" }));
    c.limit_ramp_ms = 0;
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn after_the_first_join_the_limits_rise_from_zero_in_steps() {
    let mut rig = joined_single();
    let joined = rig.now;
    // At the join the inverter is still told zero, held there by the ramp.
    assert_eq!(rig.discharge(), (0, Some(CombinedReason::Ramp)));
    // The next deadline is the ramp's first step.
    assert_eq!(rig.c.poll_timeout(), Some(joined + STEP));
    // 3 A every 100 ms until the pack's own 100 A binds (34 steps, 102 A > 100 A); the charge
    // limit, 50 A, is reached after 17 steps.
    for k in 1..=40i32 {
        rig.until(joined + steps(k));
        let (d, reason) = rig.discharge();
        if k < 34 {
            assert_eq!((d, reason), (STEP_MA * k, Some(CombinedReason::Ramp)), "step {k}");
        } else {
            assert_eq!(d, 100_000, "step {k}");
            assert_ne!(reason, Some(CombinedReason::Ramp), "step {k}");
        }
        let c = rig.c.status().inverters[0].view.charge_limit_ma.0;
        assert_eq!(c, (STEP_MA * k).min(50_000), "step {k}");
    }
    // Once the ramp is over it sets no deadline of its own: the next is a report's staleness.
    let next = rig.c.poll_timeout().unwrap();
    assert!(next > rig.now + Duration::from_secs(1), "{next:?}");
}

#[test]
fn a_reduction_applies_at_once_and_the_rise_after_it_ramps_again() {
    let mut rig = joined_single();
    let joined = rig.now;
    rig.until(joined + Duration::from_secs(1));
    assert_eq!(rig.discharge().0, 30_000);
    // The pack allows only 20 A: the inverter is told so in the same instant.
    rig.views[0] = pack_view(52_000, 50, 20);
    rig.report(&[0]);
    assert_eq!(rig.discharge().0, 20_000);
    assert_ne!(rig.discharge().1, Some(CombinedReason::Ramp));
    // And 10 A a little later, again at once (the line is above it).
    rig.until(joined + Duration::from_millis(1_450));
    rig.views[0] = pack_view(52_000, 50, 10);
    rig.report(&[0]);
    assert_eq!(rig.discharge().0, 10_000);
    // Back to 100 A: the rise starts from the 10 A the inverter was told, 3 A a step.
    rig.until(joined + Duration::from_secs(2));
    rig.views[0] = pack_view(52_000, 50, 100);
    rig.report(&[0]);
    let back = rig.now;
    assert_eq!(rig.discharge(), (10_000, Some(CombinedReason::Ramp)));
    rig.until(back + steps(10));
    assert_eq!(rig.discharge(), (10_000 + 10 * STEP_MA, Some(CombinedReason::Ramp)));
    rig.until(back + Duration::from_secs(5));
    assert_eq!(rig.discharge().0, 100_000);
}

#[test]
fn a_pack_that_joins_starts_the_ramp_again_from_what_was_told() {
    // Pack 1 is 2 V above pack 0: refused until its voltage comes into the window.
    let views = [pack_view(52_000, 50, 60), pack_view(54_000, 50, 60)];
    let mut rig = Rig::new(config(2), &views);
    rig.run(Instant::from_secs(12), &[0, 1]);
    assert_eq!(rig.c.status().packs[0].phase, PackPhase::Joined);
    assert_eq!(rig.c.status().packs[1].phase, PackPhase::Refused);
    assert_eq!(rig.discharge(), (60_000, Some(CombinedReason::SumOfPacks)));
    rig.views[1] = pack_view(52_100, 50, 60);
    let mut joined = None;
    let mut told = rig.discharge().0;
    while joined.is_none() {
        told = rig.discharge().0;
        let next = rig.now + Duration::from_secs(1);
        rig.run(next, &[0, 1]);
        if rig.c.status().packs[1].phase == PackPhase::Joined {
            joined = Some(rig.now);
        }
        assert!(rig.now < Instant::from_secs(30), "pack 1 never joined");
    }
    let joined = joined.unwrap();
    // While pack 1 was joining, its predicted half share already bound (60 A / 0.5 and pack 0's
    // whole share, less the 10 % margin: 54 A), a reduction sent at once.
    assert_eq!(told, 54_000);
    // Joined, two packs of 60 A with the margin allow 108 A; the inverter is still told the
    // 54 A, and the ramp rises from there at 3 A a step: 18 steps.
    assert_eq!(rig.c.status().combined.discharge_limit_ma, MilliAmps(108_000));
    assert_eq!(rig.discharge(), (told, Some(CombinedReason::Ramp)));
    rig.until(joined + steps(5));
    assert_eq!(rig.discharge(), (told + 5 * STEP_MA, Some(CombinedReason::Ramp)));
    rig.until(joined + steps(17));
    assert_eq!(rig.discharge(), (told + 17 * STEP_MA, Some(CombinedReason::Ramp)));
    rig.until(joined + steps(18));
    assert_eq!(rig.discharge().0, 108_000);
    assert_ne!(rig.discharge().1, Some(CombinedReason::Ramp));
}

#[test]
fn a_ramp_time_of_zero_steps_at_once() {
    let mut c = config(1);
    c.limit_ramp_ms = 0;
    let mut rig = Rig::new(c, &[pack_view(52_000, 50, 100)]);
    rig.report(&[0]);
    rig.run(Instant::from_secs(1), &[0]);
    assert_eq!(rig.discharge().0, 100_000);
    assert_ne!(rig.discharge().1, Some(CombinedReason::Ramp));
}

/// What the inverter is told, and every limits action with its time, for a run in which the
/// packs' limits change at the given seconds; `extra` are further `handle_timeout` calls, ms.
fn story(config: CombinerConfig, dcl_a: &[(u64, i32)], extra: &[u64]) -> Vec<(Instant, i32)> {
    let views = [pack_view(52_000, 50, 100), pack_view(52_000, 50, 100)];
    let mut rig = Rig::new(config, &views);
    let mut seen = Vec::new();
    let mut extra: Vec<u64> = extra.to_vec();
    extra.sort_unstable();
    let mut extra = extra.into_iter().peekable();
    for s in 0..20u64 {
        let second = Instant::from_secs(s);
        // The extra calls come between the deadlines, as an adapter's loop might make them.
        while let Some(ms) = extra.next_if(|ms| Instant::from_millis(*ms) < second) {
            rig.until(Instant::from_millis(ms));
            rig.c.handle_timeout(rig.now);
            rig.drain();
        }
        rig.until(second);
        if let Some(&(_, a)) = dcl_a.iter().find(|(at, _)| *at == s) {
            rig.views[0] = pack_view(52_000, 50, a);
            rig.views[1] = pack_view(52_000, 50, a);
        }
        rig.report(&[0, 1]);
        seen.push((rig.now, rig.discharge().0));
    }
    for (at, a) in &rig.limits {
        if let CombinerAction::Limits { discharge_ma, .. } = a {
            seen.push((*at, discharge_ma.0));
        }
    }
    seen
}

proptest! {
    /// Extra `handle_timeout` calls at any time change nothing: the same limits, announced at
    /// the same instants.
    #[test]
    fn an_early_timeout_changes_nothing(
        extra in prop::collection::vec(0u64..20_000, 0..40),
        changes in prop::collection::vec((2u64..19, 0i32..150), 0..6),
    ) {
        let on_time = story(config(2), &changes, &[]);
        let with_extra = story(config(2), &changes, &extra);
        prop_assert_eq!(on_time, with_extra);
    }

    /// The ramp only lowers: at every instant the inverter is told at most what the combiner
    /// computes without it, exactly that whenever it falls below what was told, and never more
    /// than the ramp's rate above what it was told before.
    #[test]
    fn the_ramp_only_lowers_and_never_steps(
        changes in prop::collection::vec((2u64..19, 0i32..150), 0..8),
    ) {
        let mut off = config(2);
        off.limit_ramp_ms = 0;
        let ramped = story(config(2), &changes, &[]);
        let plain = story(off, &changes, &[]);
        // The first 20 entries are the per-second samples of both runs.
        let mut told = 0;
        for (&(at, r), &(at_plain, p)) in ramped.iter().zip(&plain).take(20) {
            prop_assert_eq!(at, at_plain);
            prop_assert!(r <= p, "at {:?}: ramped {} above computed {}", at, r, p);
            if p < told {
                prop_assert_eq!(r, p, "a reduction at {:?} was held back", at);
            }
            told = r;
        }
        // Between announcements, a rise of at most one step per step of time (plus the one
        // the first step boundary may add).
        let mut announced: Vec<(Instant, i32)> = ramped[20..].to_vec();
        announced.sort_by_key(|(at, _)| *at);
        for pair in announced.windows(2) {
            let ((t1, a1), (t2, a2)) = (pair[0], pair[1]);
            let steps = (t2.saturating_since(t1).as_micros() / STEP.as_micros()) as i32 + 1;
            prop_assert!(a2 - a1 <= steps * STEP_MA, "{} -> {} from {:?} to {:?}", a1, a2, t1, t2);
        }
    }
}

/// A combiner configuration written without the setting still loads, with the default.
#[cfg(feature = "serde")]
#[test]
fn a_file_without_the_setting_loads_with_the_default() {
    let mut written = config(2);
    written.limit_ramp_ms = 1_234;
    let text = toml::to_string(&written).expect("serialises");
    assert!(text.contains("limit_ramp_ms = 1234"), "{text}");
    let without: String =
        text.lines().filter(|l| !l.starts_with("limit_ramp_ms")).collect::<Vec<_>>().join("\n");
    let loaded: CombinerConfig = toml::from_str(&without).expect("loads");
    assert_eq!(loaded.limit_ramp_ms, DEFAULT_LIMIT_RAMP_MS);
    assert_eq!(CombinerConfig { limit_ramp_ms: 1_234, ..loaded }, written);
}
