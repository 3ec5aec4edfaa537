use proptest::prelude::*;

use super::*;
use crate::soc::Chemistry;
use crate::units::{DeciCelsius, MilliVolts};

/// A sample at second `t` with the mean cell at `mv` (min and max 10 mV around it).
fn sample(t: u64, current_ma: i32, mv: i32) -> SocInput {
    SocInput {
        sampled_at: Instant::from_secs(t),
        current_ma: MilliAmps(current_ma),
        cell_mean_mv: MilliVolts(mv),
        cell_min_mv: MilliVolts(mv.saturating_sub(10)),
        cell_max_mv: MilliVolts(mv.saturating_add(10)),
        temperature_dc: DeciCelsius(250),
        at_cvl: false,
        contactors_open: false,
    }
}

/// Feeds one sample per second for seconds `from..to`, made by `f`.
fn feed(est: &mut SocEstimator, from: u64, to: u64, f: impl Fn(u64) -> SocInput) {
    for t in from..to {
        est.update(Instant::from_secs(t), &f(t));
    }
}

fn lfp() -> SocEstimator {
    SocEstimator::new(SocConfig::lfp_16s(100), Instant::ZERO, Initial::Soc(Permille(800)))
}

#[test]
fn full_anchor_after_the_hold_time_at_the_charge_voltage_limit() {
    let mut est = lfp();
    let full = |t| SocInput { at_cvl: true, ..sample(t, 1_000, 3_450) };
    feed(&mut est, 1, 60, full);
    assert_eq!(est.status().last_anchor, None, "59 s of tail current is not yet full");
    feed(&mut est, 60, 62, full);
    // The table's SoC at the relaxed voltage (3450 mV less a few µV over R0 and the RC pair),
    // which is the top of the usable window.
    let table = Chemistry::Lfp.soc_from_ocv(MilliVolts(3_450)).0;
    assert!(est.status().soc.0.abs_diff(table) <= 2, "{:?} vs {table}", est.status().soc);
    assert!(est.status().usable.0 >= 995, "{:?}", est.status().usable);
    assert_eq!(est.status().last_anchor, Some((Instant::from_secs(61), Anchor::Full)));
    assert!(est.status().confidence.0 >= 940, "{:?}", est.status().confidence);
    // A tail current above the threshold never anchors, however long.
    let mut est = lfp();
    feed(&mut est, 1, 200, |t| SocInput { at_cvl: true, ..sample(t, 6_000, 3_450) });
    assert_eq!(est.status().last_anchor, None);
}

#[test]
fn empty_anchor_on_the_lowest_cell_at_low_current() {
    let mut est = lfp();
    let low = |t| SocInput { cell_min_mv: MilliVolts(2_790), ..sample(t, -5_000, 3_000) };
    feed(&mut est, 1, 12, low);
    // The table at 3000 mV corrected by the model's drop at 5 A (a few mV either way, as the
    // filter had to explain a voltage far from its start).
    let table = Chemistry::Lfp.soc_from_ocv(MilliVolts(3_000)).0;
    let soc = est.status().soc.0;
    assert!(soc.abs_diff(table) <= 5, "{soc} vs {table}");
    assert_eq!(est.status().usable, Permille(0));
    assert_eq!(est.status().last_anchor.map(|a| a.1), Some(Anchor::Empty));
    // Under a heavy load the same voltage is sag, not empty.
    let mut est = lfp();
    let sag = |t| SocInput { cell_min_mv: MilliVolts(2_790), ..sample(t, -50_000, 3_000) };
    feed(&mut est, 1, 60, sag);
    assert_eq!(est.status().last_anchor, None);
}

#[test]
fn rested_ocv_anchor_trusts_the_steep_nca_curve() {
    let config = SocConfig::tesla_model_s(16);
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(300)));
    // 3674 mV is 50 % on the table. The filter alone already pulls hard on NCA; the anchor
    // then pins it and raises the confidence.
    feed(&mut est, 1, 1_802, |t| sample(t, 0, 3_674));
    let s = est.status();
    assert_eq!(s.last_anchor, Some((Instant::from_secs(1_801), Anchor::RestedOcv)));
    assert!(s.soc.0.abs_diff(500) <= 3, "{:?}", s.soc);
    assert!(s.confidence.0 >= 950, "{:?}", s.confidence);
    assert!(s.resting_since == Some(Instant::from_secs(1)));
    // Current ends the rest.
    est.update(Instant::from_secs(1_802), &sample(1_802, -20_000, 3_669));
    assert_eq!(est.status().resting_since, None);
}

#[test]
fn rested_ocv_anchor_barely_moves_the_soc_on_the_lfp_plateau() {
    let config = SocConfig::lfp_16s(100);
    let start = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(600)));
    let mut snapshot = start.snapshot(Instant::ZERO);
    snapshot.confidence = Permille(950); // a well-known 60 %
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Snapshot(snapshot));
    // 3299 mV is 50 % on the table, but 1 mV is 2.5 % there.
    feed(&mut est, 1, 1_802, |t| sample(t, 0, 3_299));
    let s = est.status();
    assert_eq!(s.last_anchor.map(|a| a.1), Some(Anchor::RestedOcv));
    assert!(s.soc.0.abs_diff(600) <= 5, "plateau moved the SoC to {:?}", s.soc);

    // Where the curve is steeper the same anchor is trusted: 3316 mV is 70 % (2.3-3.6 mV/%).
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(500)));
    feed(&mut est, 1, 1_802, |t| sample(t, 0, 3_316));
    assert!(est.status().soc.0.abs_diff(700) <= 20, "{:?}", est.status().soc);
}

#[test]
fn offset_is_learned_with_the_contactors_open_and_subtracted() {
    let config = SocConfig::tesla_model_s(16);
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(500)));
    let open = |t| SocInput { contactors_open: true, ..sample(t, 150, 3_674) };
    feed(&mut est, 1, 600, open);
    assert_eq!(est.status().offset_ma, MilliAmps(149));
    // With the contactors closed, the same reading is no current at all.
    let before = est.status().soc_ppm;
    feed(&mut est, 600, 4_200, |t| sample(t, 150, 3_674));
    let after = est.status().soc_ppm;
    assert!(after.abs_diff(before) <= 200, "{before} -> {after}");
    // Bounded, and absurd readings are refused rather than learned.
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(500)));
    feed(&mut est, 1, 600, |t| SocInput { contactors_open: true, ..sample(t, 3_000, 3_674) });
    assert_eq!(est.status().offset_ma, config.offset_max_ma);
    feed(&mut est, 600, 610, |t| SocInput { contactors_open: true, ..sample(t, 90_000, 3_674) });
    assert_eq!(est.status().counters.offset_rejected, 10);
    assert_eq!(est.status().offset_ma, config.offset_max_ma);
}

#[test]
fn capacity_is_learned_between_full_and_empty() {
    let mut est = lfp();
    feed(&mut est, 1, 62, |t| SocInput { at_cvl: true, ..sample(t, 1_000, 3_450) });
    assert_eq!(est.status().last_anchor.map(|a| a.1), Some(Anchor::Full));
    let full_ppm = i64::from(est.status().soc_ppm);
    // 90 Ah at 50 A is 6480 s, then the empty anchor at rest reads the table at 2800 mV.
    feed(&mut est, 62, 62 + 6_480, |t| sample(t, -50_000, 3_290));
    let empty = |t| SocInput { cell_min_mv: MilliVolts(2_700), ..sample(t, 0, 2_800) };
    feed(&mut est, 6_542, 6_554, empty);
    let s = est.status();
    assert_eq!(s.last_anchor.map(|a| a.1), Some(Anchor::Empty));
    assert_eq!(s.capacity_samples, 1);
    // The capacity is the counted charge over the SoC span between the two anchors.
    let span_ppm = full_ppm - i64::from(s.soc_ppm);
    let expected = 90_000 * 1_000_000 / span_ppm;
    assert!(
        i64::from(s.capacity_mah).abs_diff(expected) <= 200,
        "{} vs {expected}",
        s.capacity_mah
    );
    // A first sample's confidence is half its span.
    assert_eq!(i64::from(s.capacity_confidence.0), span_ppm / 2_000);
    // Anchors close together in SoC teach nothing.
    feed(&mut est, 6_554, 6_600, |t| sample(t, 20_000, 3_000));
    let empty = |t| SocInput { cell_min_mv: MilliVolts(2_700), ..sample(t, 0, 2_800) };
    feed(&mut est, 6_600, 6_620, empty);
    assert_eq!(est.status().capacity_samples, 1);
}

#[test]
fn resistance_is_learned_from_current_steps() {
    let config = SocConfig::tesla_model_s(16);
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(500)));
    // 100 A steps that move the cell by 40 mV: 0.4 mOhm.
    feed(&mut est, 1, 200, |t| {
        if (t / 20) % 2 == 0 { sample(t, 0, 3_709) } else { sample(t, -100_000, 3_669) }
    });
    let s = est.status();
    assert!(s.resistance_samples >= 9, "{}", s.resistance_samples);
    // Less what the RC pair takes up in the 1 s sample period: 220 µΩ × (1 − e^(−1/20)).
    assert_eq!(s.resistance_uohm, 390);
}

#[test]
fn learned_resistance_is_scaled_to_25_c_and_feeds_the_model() {
    let mut config = SocConfig::tesla_model_s(16);
    config.model.r1_uohm = 0;
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(500)));
    // At 0 °C the cell shows 2.3 times its 25 °C resistance (activation 3000 K): steps of
    // 100 A and 92 mV are 920 µΩ there, 400 µΩ at 25 °C.
    let cold = |t: u64| {
        let s = if (t / 20) % 2 == 0 { sample(t, 0, 3_709) } else { sample(t, -100_000, 3_617) };
        SocInput { temperature_dc: DeciCelsius(0), ..s }
    };
    feed(&mut est, 1, 400, cold);
    let s = est.status();
    assert!(s.resistance_samples >= LEARNED_R0_MIN_SAMPLES, "{}", s.resistance_samples);
    let factor = resistance_factor_ppm(0, 3_000);
    let want = 920 * FACTOR_ONE / factor;
    assert!((i64::from(s.resistance_uohm) - want).abs() <= 2, "{} vs {want}", s.resistance_uohm);
    // The model now drops the learned resistance at the present temperature.
    assert!((est.model.r0_uohm - 920).abs() <= 3, "{:?}", est.model);
    // Back at 25 °C the same resistance is 400 µΩ.
    est.update(Instant::from_secs(400), &sample(400, 0, 3_709));
    assert!((est.model.r0_uohm - want).abs() <= 2, "{:?}", est.model);
}

#[test]
fn the_model_resistance_follows_temperature_within_its_range() {
    let config = SocConfig::lfp_16s(100);
    let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(500)));
    let at = |est: &mut SocEstimator, t: u64, dc: i32| {
        est.update(
            Instant::from_secs(t),
            &SocInput { temperature_dc: DeciCelsius(dc), ..sample(t, 0, 3_300) },
        );
        est.model
    };
    let warm = at(&mut est, 1, 250);
    assert_eq!((warm.r0_uohm, warm.r1_uohm), (300, 300));
    let cold = at(&mut est, 2, -100);
    assert!(cold.r0_uohm > 2 * warm.r0_uohm && cold.r1_uohm == cold.r0_uohm, "{cold:?}");
    let hot = at(&mut est, 3, 450);
    assert!(hot.r0_uohm < warm.r0_uohm, "{hot:?}");
    // A temperature reading far outside the range is held at its end.
    let wild = at(&mut est, 4, -2_000);
    assert_eq!(wild.r0_uohm, at(&mut est, 5, -300).r0_uohm);
}

#[test]
fn hostile_inputs_are_counted_not_used() {
    let mut est = lfp();
    est.update(Instant::from_secs(10), &sample(10, 0, 3_300));
    let before = *est.status();
    est.update(Instant::from_secs(11), &sample(5, -100_000, 3_300)); // older than the last
    est.update(Instant::from_secs(11), &sample(10, -100_000, 3_300)); // same time
    est.update(Instant::from_secs(11), &sample(20, -100_000, 3_300)); // from the future
    let s = est.status();
    assert_eq!((s.counters.time_reversals, s.counters.from_future), (2, 1));
    assert_eq!(s.soc_ppm, before.soc_ppm);
    est.update(Instant::from_secs(12), &sample(12, i32::MIN, i32::MAX));
    est.update(Instant::from_secs(99_999), &sample(99_999, i32::MAX, 3_300));
    let s = est.status();
    assert_eq!(s.counters.current_clamped, 2);
    assert_eq!(s.counters.voltage_rejected, 1);
    assert_eq!(s.counters.gaps, 1);
}

#[test]
fn snapshot_round_trips() {
    let mut est = lfp();
    feed(&mut est, 1, 62, |t| SocInput { at_cvl: true, ..sample(t, 1_000, 3_450) });
    feed(&mut est, 62, 500, |t| SocInput { contactors_open: t > 400, ..sample(t, -30_000, 3_300) });
    let now = Instant::from_secs(600);
    let snap = est.snapshot(now);
    assert_eq!(snap.last_anchor, Some((Anchor::Full, 539)));
    assert!(snap.capacity_reference.is_some());
    let restored = SocEstimator::new(*est.config(), now, Initial::Snapshot(snap));
    assert_eq!(restored.snapshot(now), snap);
    let (a, b) = (est.status(), restored.status());
    assert_eq!((a.soc_ppm, a.confidence, a.rc_uv), (b.soc_ppm, b.confidence, b.rc_uv));
    assert_eq!(
        (a.capacity_mah, a.offset_ma, a.last_anchor),
        (b.capacity_mah, b.offset_ma, b.last_anchor)
    );
}

#[test]
fn starting_from_a_rested_voltage_reads_the_table() {
    let config = SocConfig::tesla_model_s(16);
    let est =
        SocEstimator::new(config, Instant::ZERO, Initial::FromOcv { cell_mv: MilliVolts(3_674) });
    assert_eq!(est.status().soc, Permille(499));
    assert!(est.status().confidence.0 >= 900);
    let config = SocConfig::lfp_16s(100);
    let est =
        SocEstimator::new(config, Instant::ZERO, Initial::FromOcv { cell_mv: MilliVolts(3_299) });
    assert_eq!(est.status().confidence, Permille(0), "the plateau says nearly nothing");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn update_never_panics_and_soc_stays_in_range(
        lfp_chem in any::<bool>(),
        start in 0u16..=1200,
        steps in proptest::collection::vec(
            (-5_000i64..100_000, any::<i32>(), 0i32..6_000, -200i32..200, -200i32..200,
             any::<i16>(), any::<bool>(), any::<bool>()),
            1..200,
        ),
    ) {
        let config =
            if lfp_chem { SocConfig::lfp_16s(100) } else { SocConfig::tesla_model_s(16) };
        let mut est = SocEstimator::new(config, Instant::ZERO, Initial::Soc(Permille(start)));
        let mut t: u64 = 1_000_000;
        for (dt_ms, current, mv, dmin, dmax, temp, cvl, open) in steps {
            t = t.saturating_add_signed(dt_ms);
            let at = Instant::from_millis(t);
            let input = SocInput {
                sampled_at: at,
                current_ma: MilliAmps(current),
                cell_mean_mv: MilliVolts(mv),
                cell_min_mv: MilliVolts(mv.saturating_add(dmin)),
                cell_max_mv: MilliVolts(mv.saturating_add(dmax)),
                temperature_dc: DeciCelsius(temp.into()),
                at_cvl: cvl,
                contactors_open: open,
            };
            est.update(at + Duration::from_millis(dt_ms.unsigned_abs() % 3), &input);
            let s = est.status();
            prop_assert!(s.soc.0 <= 1000 && s.soc_ppm <= 1_000_000);
            prop_assert!(s.confidence.0 <= 1000 && s.capacity_confidence.0 <= 1000);
            prop_assert!(u32::from(s.soc.0) == s.soc_ppm / 1000);
        }
        let snap = est.snapshot(Instant::from_millis(t));
        let again = SocEstimator::new(config, Instant::ZERO, Initial::Snapshot(snap));
        prop_assert!(again.status().soc.0 <= 1000);
    }
}
