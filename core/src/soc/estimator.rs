//! The estimator: sample checks, counting, filter, anchors, offset and health learning.

use super::config::SocConfig;
use super::ekf::{
    Correction, Ekf, FACTOR_ONE, Model, P11_MAX, SOC_ONE, clamp_i64, decay_q30,
    resistance_factor_ppm, scale_resistance,
};
use super::{Anchor, Initial, SocCounters, SocInput, SocSnapshot, SocStatus};
use crate::time::{Duration, Instant};
use crate::units::{MilliAmpSeconds, MilliAmps, Permille};

/// SoC standard deviation with no information at all: 30 %.
const SIGMA_UNKNOWN_PPB: i64 = 300_000_000;
/// SoC standard deviation right after a full anchor (0.5 %) and an empty one (1 %).
const SIGMA_FULL_PPB: i64 = 5_000_000;
const SIGMA_EMPTY_PPB: i64 = 10_000_000;
/// The standard deviation at which the confidence reaches 0 (10 %), in ppb; 1 permille of
/// confidence is 0.01 % of SoC.
const SIGMA_ZERO_CONFIDENCE_PPB: i64 = 100_000_000;
/// A rested-OCV anchor counts for capacity learning only if the table pins the SoC to 2 %.
const CAPACITY_GRADE_SIGMA_PPB: i64 = 20_000_000;
/// The filter's own estimate counts as a capacity reference point when its standard deviation
/// is at most 1 %.
const FILTER_GRADE_SIGMA_PPB: i64 = 10_000_000;
/// Capacity is learned only between anchors at least 40 % apart...
const CAPACITY_MIN_SPAN_PPB: i64 = 400_000_000;
/// ... and at most two days apart: beyond that, an offset error of the order of
/// `offset_uncertainty_ma` weighs more than the sample is worth.
const CAPACITY_MAX_AGE: Duration = Duration::from_secs(2 * 86_400);
/// An accepted capacity sample must lie within 50–130 % of the configured capacity.
const CAPACITY_MIN_PERMILLE: i64 = 500;
const CAPACITY_MAX_PERMILLE: i64 = 1300;
/// Plausible cell voltages.
const CELL_MV_MIN: i32 = 1_000;
const CELL_MV_MAX: i32 = 5_000;
/// Rested-OCV anchors only between 0 °C and 45 °C: the table is for 25 °C.
const OCV_TEMPERATURE_DC: (i32, i32) = (0, 450);
/// Below 10 °C the model's voltage error counts double.
const COLD_DC: i32 = 100;
/// Weight of a new resistance sample: the mean of the first eight, then 1/8 each.
const RESISTANCE_FILTER_N: i64 = 8;
/// The learned series resistance replaces the configured one in the model after this many
/// samples...
const LEARNED_R0_MIN_SAMPLES: u32 = 3;
/// ... limited to this range of the configured one (permille): enough for a cell that has aged
/// to several times its resistance, not enough for a run of bad samples to wreck the model.
const LEARNED_R0_PERMILLE: (i64, i64) = (500, 4_000);

/// State of charge and health of one pack. See the [module documentation](super).
#[derive(Clone, Debug)]
pub struct SocEstimator {
    config: SocConfig,
    /// The SoC (ppm) at the configured usable-empty and usable-full open-circuit voltages:
    /// the configuration's, worked out once rather than at every status refresh.
    usable_window_ppm: (i64, i64),
    /// The model at the latest sample's temperature (see [`SocEstimator::model_at`]).
    model: Model,
    /// The resistance factor at that temperature, ppm.
    factor_ppm: i64,
    ekf: Ekf,
    capacity_mas: i64,
    capacity_confidence: u16,
    capacity_samples: u32,
    /// Series resistance learned from current steps, scaled to 25 °C (the configured R0 until
    /// the first sample).
    resistance_uohm: u32,
    resistance_samples: u32,
    /// Learned offset in µA.
    offset_ua: i64,
    last: Option<Sample>,
    full_since: Option<Instant>,
    empty_since: Option<Instant>,
    rest_since: Option<Instant>,
    /// The current condition has already produced its anchor; re-armed when it ends.
    full_done: bool,
    empty_done: bool,
    rest_done: bool,
    last_anchor: Option<(Instant, Anchor)>,
    capacity_ref: Option<CapacityRef>,
    counters: SocCounters,
    status: SocStatus,
}

/// The previous accepted sample.
#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    current_ma: i32,
    /// Mean cell voltage, if it was plausible.
    mean_mv: Option<i32>,
}

/// The anchor capacity learning counts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct CapacityRef {
    at: Instant,
    soc_ppb: i64,
    /// Charge counted since, efficiency applied, mAs.
    counted_mas: i64,
}

impl SocEstimator {
    /// An estimator for a validated `config`, starting from `initial`.
    pub fn new(config: SocConfig, now: Instant, initial: Initial) -> Self {
        let m = &config.model;
        let model = Model {
            r0_uohm: m.r0_uohm.into(),
            r1_uohm: m.r1_uohm.into(),
            tau_ms: i64::from(m.tau_ms).max(1),
        };
        let window = |mv: crate::units::MilliVolts| {
            i64::from(config.chemistry.soc_ppm_from_ocv_uv(mv.0.saturating_mul(1000)))
        };
        let mut est = SocEstimator {
            config,
            usable_window_ppm: (
                window(config.usable_empty_ocv_mv),
                window(config.usable_full_ocv_mv),
            ),
            model,
            factor_ppm: FACTOR_ONE,
            ekf: Ekf::new(SOC_ONE / 2, SIGMA_UNKNOWN_PPB, 0),
            capacity_mas: mah_to_mas(config.capacity_mah),
            capacity_confidence: 0,
            capacity_samples: 0,
            resistance_uohm: m.r0_uohm,
            resistance_samples: 0,
            offset_ua: 0,
            last: None,
            full_since: None,
            empty_since: None,
            rest_since: None,
            full_done: false,
            empty_done: false,
            rest_done: false,
            last_anchor: None,
            capacity_ref: None,
            counters: SocCounters::default(),
            status: EMPTY_STATUS,
        };
        match initial {
            Initial::Soc(p) => {
                est.ekf = Ekf::new(i64::from(p.0.min(1000)) * 1_000_000, SIGMA_UNKNOWN_PPB, 0);
            }
            Initial::FromOcv { cell_mv } => {
                let (soc_ppb, sigma_ppb) = est.ocv_reading(i64::from(cell_mv.0) * 1000);
                est.ekf = Ekf::new(soc_ppb, sigma_ppb.min(SIGMA_UNKNOWN_PPB), 0);
            }
            Initial::Snapshot(s) => est.restore(now, &s),
        }
        est.refresh_status();
        est
    }

    /// The configuration in use.
    pub fn config(&self) -> &SocConfig {
        &self.config
    }

    /// The current estimate.
    pub fn status(&self) -> &SocStatus {
        &self.status
    }

    /// Takes one measurement. `now` is the present; the sample's own time decides the counting.
    pub fn update(&mut self, now: Instant, input: &SocInput) {
        self.step(now, input, true);
    }

    /// Like [`SocEstimator::update`], but the cell voltages in `input` are unknown (stale, or
    /// frozen readings): the charge is counted and the offset learned, and nothing is taken from
    /// the voltages (no correction, no anchor, no resistance sample).
    pub fn update_counting(&mut self, now: Instant, input: &SocInput) {
        self.step(now, input, false);
    }

    fn step(&mut self, now: Instant, input: &SocInput, voltages: bool) {
        let at = input.sampled_at;
        if at > now {
            self.counters.from_future = self.counters.from_future.saturating_add(1);
            self.status.counters = self.counters;
            return;
        }
        if self.last.is_some_and(|last| at <= last.at) {
            self.counters.time_reversals = self.counters.time_reversals.saturating_add(1);
            self.status.counters = self.counters;
            return;
        }
        let c = self.config;
        let measured = input.current_ma.0;
        let limit = c.current_max_ma.0.max(1);
        if measured.saturating_abs() > limit {
            self.counters.current_clamped = self.counters.current_clamped.saturating_add(1);
        }
        let measured = measured.clamp(-limit, limit);
        let mean_mv = if voltages { self.plausible_mean(input) } else { None };
        self.factor_ppm =
            resistance_factor_ppm(input.temperature_dc.0, c.model.resistance_activation_k);
        self.model = self.model_at(self.factor_ppm);

        // With the contactors open the true current is zero and the reading is the offset.
        let current_ma = if input.contactors_open {
            self.learn_offset(at, measured);
            0
        } else {
            let corrected = i64::from(measured) - self.offset_ua / 1000;
            clamp_i64(corrected.into(), (-limit).into(), limit.into()) as i32
        };

        if let Some(last) = self.last {
            self.count(at, last, current_ma);
            self.learn_resistance(at, last, current_ma, mean_mv);
        }
        if let Some(mv) = mean_mv {
            self.correct(mv, current_ma, input.temperature_dc.0);
            self.check_anchors(at, input, current_ma, mv);
            self.filter_capacity_point(at);
        }
        self.last = Some(Sample { at, current_ma, mean_mv });
        self.refresh_status();
    }

    /// Everything needed to resume, as of `now`.
    pub fn snapshot(&self, now: Instant) -> SocSnapshot {
        let secs = |at: Instant| (now.saturating_since(at).as_millis() / 1000).min(u32::MAX.into());
        SocSnapshot {
            soc_ppm: self.status.soc_ppm,
            confidence: self.status.confidence,
            rc_uv: self.status.rc_uv,
            offset_ua: clamp_i64(self.offset_ua.into(), i32::MIN.into(), i32::MAX.into()) as i32,
            capacity_mah: self.status.capacity_mah,
            capacity_confidence: Permille(self.capacity_confidence),
            capacity_samples: self.capacity_samples,
            resistance_uohm: self.resistance_uohm,
            resistance_samples: self.resistance_samples,
            last_anchor: self.last_anchor.map(|(at, a)| (a, secs(at) as u32)),
            capacity_reference: self
                .capacity_ref
                .map(|r| ((r.soc_ppb / 1000) as u32, r.counted_mas, secs(r.at) as u32)),
        }
    }

    /// The charge counted since the anchor capacity learning counts from, if there is one.
    pub fn counted_since_reference(&self) -> Option<MilliAmpSeconds> {
        self.capacity_ref.map(|r| MilliAmpSeconds(r.counted_mas))
    }

    fn restore(&mut self, now: Instant, s: &SocSnapshot) {
        let sigma = sigma_from_confidence(s.confidence);
        let rc = i64::from(s.rc_uv).clamp(-1_000_000, 1_000_000);
        self.ekf = Ekf::new(i64::from(s.soc_ppm.min(1_000_000)) * 1000, sigma, rc);
        let max = i64::from(self.config.offset_max_ma.0.max(0)) * 1000;
        self.offset_ua = i64::from(s.offset_ua).clamp(-max, max);
        let nominal = self.config.capacity_mah;
        let (lo, hi) = capacity_bounds(nominal);
        self.capacity_mas = mah_to_mas(s.capacity_mah.clamp(lo, hi));
        self.capacity_confidence = s.capacity_confidence.0.min(1000);
        self.capacity_samples = s.capacity_samples;
        let r0 = self.config.model.r0_uohm;
        self.resistance_uohm = s.resistance_uohm.clamp(1, r0.saturating_mul(20));
        self.resistance_samples = s.resistance_samples;
        let ago = |secs: u32| {
            Instant::from_micros(now.as_micros().saturating_sub(u64::from(secs) * 1_000_000))
        };
        self.last_anchor = s.last_anchor.map(|(a, secs)| (ago(secs), a));
        self.capacity_ref = s.capacity_reference.map(|(soc_ppm, counted_mas, secs)| CapacityRef {
            at: ago(secs),
            soc_ppb: i64::from(soc_ppm.min(1_000_000)) * 1000,
            counted_mas,
        });
    }

    /// The model with its resistances at `factor_ppm` of their 25 °C values: the configured R1,
    /// and the configured R0 or, after [`LEARNED_R0_MIN_SAMPLES`] samples, the learned one
    /// (within [`LEARNED_R0_PERMILLE`] of the configured).
    fn model_at(&self, factor_ppm: i64) -> Model {
        let m = &self.config.model;
        let configured = i64::from(m.r0_uohm);
        let r0 = if self.resistance_samples >= LEARNED_R0_MIN_SAMPLES {
            let (lo, hi) = LEARNED_R0_PERMILLE;
            i64::from(self.resistance_uohm).clamp(configured * lo / 1000, configured * hi / 1000)
        } else {
            configured
        };
        Model {
            r0_uohm: scale_resistance(r0, factor_ppm),
            r1_uohm: if m.r1_uohm == 0 {
                0
            } else {
                scale_resistance(m.r1_uohm.into(), factor_ppm)
            },
            tau_ms: i64::from(m.tau_ms).max(1),
        }
    }

    /// The mean cell voltage, if the three voltages are plausible together.
    fn plausible_mean(&mut self, input: &SocInput) -> Option<i32> {
        let (min, mean, max) = (input.cell_min_mv.0, input.cell_mean_mv.0, input.cell_max_mv.0);
        let ok = (CELL_MV_MIN..=CELL_MV_MAX).contains(&min)
            && (CELL_MV_MIN..=CELL_MV_MAX).contains(&max)
            && min <= mean
            && mean <= max;
        if !ok {
            self.counters.voltage_rejected = self.counters.voltage_rejected.saturating_add(1);
        }
        ok.then_some(mean)
    }

    /// Averages a reading taken with the contactors open into the offset estimate.
    fn learn_offset(&mut self, at: Instant, measured_ma: i32) {
        let max_ua = i64::from(self.config.offset_max_ma.0.max(0)) * 1000;
        let reading_ua = i64::from(measured_ma) * 1000;
        // A reading far beyond any offset means the report of open contactors is wrong (or the
        // sensor is): no lesson to learn from it.
        if reading_ua.abs() > 2 * max_ua {
            self.counters.offset_rejected = self.counters.offset_rejected.saturating_add(1);
            return;
        }
        let Some(last) = self.last else { return };
        let gap = self.config.max_sample_gap_ms;
        let dt = i64::try_from(at.saturating_since(last.at).as_millis()).unwrap_or(i64::MAX);
        let dt = dt.min(gap.into());
        let tau = i64::from(self.config.offset_tau_ms.max(1));
        let step = (reading_ua - self.offset_ua) * dt / (tau + dt);
        self.offset_ua = (self.offset_ua + step).clamp(-max_ua, max_ua);
    }

    /// Counts the charge since `last` and runs the filter's time update.
    fn count(&mut self, at: Instant, last: Sample, current_ma: i32) {
        let c = &self.config;
        let elapsed = i64::try_from(at.saturating_since(last.at).as_millis()).unwrap_or(i64::MAX);
        let gap = i64::from(c.max_sample_gap_ms);
        let dt = if elapsed > gap {
            self.counters.gaps = self.counters.gaps.saturating_add(1);
            gap
        } else {
            elapsed
        };
        let raw_mas = i64::from(current_ma) * dt / 1000;
        let charge_mas = if raw_mas > 0 {
            raw_mas * i64::from(c.charge_efficiency.0.min(1000)) / 1000
        } else {
            raw_mas
        };
        // The counted charge is uncertain by the sensor's gain error times the charge, plus
        // its residual offset times the time; a gap adds whatever the current may have been.
        let unknown_ms = elapsed.saturating_sub(dt);
        let cap = i128::from(self.capacity_mas.max(1));
        let bias_mas = i128::from(raw_mas.abs()) * i128::from(c.current_gain_error.0) / 1000
            + i128::from(c.offset_uncertainty_ma.0.max(0)) * i128::from(dt) / 1000
            + i128::from(current_ma.unsigned_abs()) * i128::from(unknown_ms) / 1000;
        let bias_ppb = clamp_i64(bias_mas * i128::from(SOC_ONE) / cap, 0, SOC_ONE);
        let walk_ppm2 = i128::from(c.model.soc_walk_ppm).pow(2);
        // ppm² per s × 10^6 (to ppb²) × dt / 1000 (ms to s).
        let walk_ppb2 = clamp_i64(walk_ppm2 * 1000 * i128::from(dt), 0, P11_MAX);
        let rc_walk_uv2 = 1_000 * dt; // (1 mV)² per second
        self.ekf.predict(
            &self.model,
            self.capacity_mas,
            charge_mas,
            current_ma.into(),
            dt,
            bias_ppb,
            walk_ppb2,
            rc_walk_uv2,
        );
        if let Some(r) = &mut self.capacity_ref {
            r.counted_mas = r.counted_mas.saturating_add(charge_mas);
        }
    }

    /// The filter's measurement update with the mean cell voltage.
    fn correct(&mut self, mean_mv: i32, current_ma: i32, temperature_dc: i32) {
        let m = &self.config.model;
        let mut sigma = i128::from(m.voltage_sigma_uv);
        if temperature_dc < COLD_DC {
            sigma *= 2;
        }
        // The resistances' uncertainty, in proportion to the voltage they drop.
        let r_uohm = self.model.r0_uohm.saturating_add(self.model.r1_uohm);
        let drop_uv = i128::from(r_uohm) * i128::from(current_ma.unsigned_abs()) / 1000
            * i128::from(m.resistance_uncertainty.0)
            / 1000;
        let r_uv2 = clamp_i64(sigma * sigma + drop_uv * drop_uv, 1, i64::MAX);
        let outcome = self.ekf.correct(
            self.config.chemistry,
            &self.model,
            i64::from(mean_mv) * 1000,
            current_ma.into(),
            r_uv2,
        );
        if outcome == Correction::Clamped {
            self.counters.innovations_clamped = self.counters.innovations_clamped.saturating_add(1);
        }
    }

    /// A step of the current between two samples close enough together shows the cell's
    /// resistance over one sample period.
    fn learn_resistance(&mut self, at: Instant, last: Sample, current_ma: i32, mean: Option<i32>) {
        let c = &self.config;
        let (Some(mv), Some(last_mv)) = (mean, last.mean_mv) else { return };
        if at.saturating_since(last.at) > Duration::from_millis(c.resistance_period_ms.into()) {
            return;
        }
        let di = i64::from(current_ma) - i64::from(last.current_ma);
        if di.abs() < i64::from(c.resistance_step_ma.0.max(1)) {
            return;
        }
        let dv_uv = (i64::from(mv) - i64::from(last_mv)) * 1000;
        // µV / mA = mΩ; × 1000 for µΩ. A plausible sample has the voltage follow the current.
        // Over the sample period the RC pair has taken up its share `1 - a` of the step too;
        // what is left is R0 at the present temperature, scaled back to 25 °C.
        let dt_ms = i64::try_from(at.saturating_since(last.at).as_millis()).unwrap_or(i64::MAX);
        let taken_up = (1 << 30) - i128::from(decay_q30(dt_ms, self.model.tau_ms));
        let rc_share = (i128::from(self.model.r1_uohm) * taken_up) >> 30;
        let at_temperature = i128::from(dv_uv * 1000 / di) - rc_share;
        let sample = clamp_i64(
            at_temperature * i128::from(FACTOR_ONE) / i128::from(self.factor_ppm.max(1)),
            0,
            i64::MAX,
        );
        let max = i64::from(c.model.r0_uohm).saturating_mul(20);
        if sample <= 0 || sample > max {
            return;
        }
        let r = i64::from(self.resistance_uohm);
        let n = (i64::from(self.resistance_samples) + 1).min(RESISTANCE_FILTER_N);
        let r = r + (sample - r) / n;
        self.resistance_uohm = r.clamp(1, max) as u32;
        self.resistance_samples = self.resistance_samples.saturating_add(1);
    }

    /// Advances the three anchor conditions and fires the ones that have held long enough.
    fn check_anchors(&mut self, at: Instant, input: &SocInput, current_ma: i32, mean_mv: i32) {
        let c = self.config;
        let magnitude = current_ma.saturating_abs();
        let held = |since: Option<Instant>, ms: u32| {
            since.is_some_and(|s| at.saturating_since(s) >= Duration::from_millis(ms.into()))
        };

        let full = input.at_cvl && !input.contactors_open && magnitude <= c.tail_current_ma.0;
        track(&mut self.full_since, &mut self.full_done, full, at);
        if full && !self.full_done && held(self.full_since, c.full_hold_ms) {
            self.full_done = true;
            self.relaxed_anchor(at, Anchor::Full, mean_mv, current_ma, SIGMA_FULL_PPB);
        }

        let empty = input.cell_min_mv.0 <= c.empty_cell_mv.0 && magnitude <= c.empty_current_ma.0;
        track(&mut self.empty_since, &mut self.empty_done, empty, at);
        if empty && !self.empty_done && held(self.empty_since, c.empty_hold_ms) {
            self.empty_done = true;
            self.relaxed_anchor(at, Anchor::Empty, mean_mv, current_ma, SIGMA_EMPTY_PPB);
        }

        let rest = magnitude <= c.rest_current_ma.0;
        track(&mut self.rest_since, &mut self.rest_done, rest, at);
        let (lo, hi) = OCV_TEMPERATURE_DC;
        let warm = (lo..=hi).contains(&input.temperature_dc.0);
        if rest && warm && !self.rest_done && held(self.rest_since, c.rest_ms) {
            self.rest_done = true;
            self.rested_ocv_anchor(at, mean_mv);
        }
    }

    /// A full or empty anchor: the table's SoC at the relaxed voltage (the mean cell less the
    /// drop over R0 and the model's RC pair), with the anchor's own standard deviation: the
    /// condition itself (a finished charge, a cell at its cut-off) says the cell is at an end
    /// of its window, even where a coarse table's neighbouring segment is flat. The RC state is
    /// kept: the current still flows.
    fn relaxed_anchor(
        &mut self,
        at: Instant,
        kind: Anchor,
        mean_mv: i32,
        current_ma: i32,
        sigma: i64,
    ) {
        let r0_drop_uv = self.model.r0_uohm.saturating_mul(current_ma.into()) / 1000;
        let relaxed_uv = i64::from(mean_mv) * 1000 - r0_drop_uv - self.ekf.rc_uv;
        let (table_ppb, _) = self.ocv_reading(relaxed_uv);
        let rc = self.ekf.rc_uv;
        self.anchor(at, kind, table_ppb, sigma, rc, true);
    }

    /// Blends the table's SoC at the rested voltage with the estimate, each weighted by the
    /// inverse of its variance: on a steep part of the curve the table wins, on the LFP plateau
    /// the estimate barely moves.
    fn rested_ocv_anchor(&mut self, at: Instant, mean_mv: i32) {
        let (table_ppb, table_sigma) = self.ocv_reading(i64::from(mean_mv) * 1000);
        let p = i128::from(self.ekf.p11);
        let r = i128::from(table_sigma) * i128::from(table_sigma);
        let soc = i128::from(self.ekf.soc_ppb);
        let blended = soc + (i128::from(table_ppb) - soc) * p / (p + r).max(1);
        let posterior_var = p * r / (p + r).max(1);
        let sigma = i64::try_from(ekf_sqrt(posterior_var)).unwrap_or(SOC_ONE);
        let grade = table_sigma <= CAPACITY_GRADE_SIGMA_PPB;
        let soc = clamp_i64(blended, 0, SOC_ONE);
        self.anchor(at, Anchor::RestedOcv, soc, sigma, 0, grade);
    }

    /// The table's SoC at `ocv_uv` and its standard deviation: the configured voltage spread
    /// divided by the local slope (the shallower of the two segments around the point, so a
    /// point next to a knee is not over-trusted).
    fn ocv_reading(&self, ocv_uv: i64) -> (i64, i64) {
        let chem = self.config.chemistry;
        let ocv_uv = clamp_i64(ocv_uv.into(), 0, i32::MAX.into()) as i32;
        let soc_ppm = chem.soc_ppm_from_ocv_uv(ocv_uv);
        let below = chem.ocv_slope_uv_per_full(soc_ppm.saturating_sub(12_500));
        let above = chem.ocv_slope_uv_per_full(soc_ppm.saturating_add(12_500).min(1_000_000));
        let slope = below.min(above).max(1);
        let sigma = i128::from(self.config.ocv_sigma_uv) * i128::from(SOC_ONE) / i128::from(slope);
        (i64::from(soc_ppm) * 1000, clamp_i64(sigma, 0, SOC_ONE))
    }

    /// Sets the state at an anchor and, for anchors that pin the SoC well, learns capacity
    /// from the charge counted since the previous such anchor.
    fn anchor(
        &mut self,
        at: Instant,
        kind: Anchor,
        soc_ppb: i64,
        sigma: i64,
        rc: i64,
        grade: bool,
    ) {
        self.ekf.soc_ppb = soc_ppb.clamp(0, SOC_ONE);
        self.ekf.rc_uv = rc;
        self.ekf.set_sigma(sigma);
        self.ekf.clamp();
        self.last_anchor = Some((at, kind));
        if !grade {
            return;
        }
        if let Some(r) = self.capacity_ref {
            let span = soc_ppb - r.soc_ppb;
            let fresh = at.saturating_since(r.at) <= CAPACITY_MAX_AGE;
            if span.abs() >= CAPACITY_MIN_SPAN_PPB && fresh {
                self.learn_capacity(r.counted_mas, span);
            }
        }
        self.capacity_ref = Some(CapacityRef { at, soc_ppb, counted_mas: 0 });
    }

    /// Where the curve is steep the filter itself pins the SoC under load (NCA over most of its
    /// range): where the table would pin a rested voltage to [`CAPACITY_GRADE_SIGMA_PPB`],
    /// once the filter's standard deviation is within [`FILTER_GRADE_SIGMA_PPB`] and the SoC
    /// has moved at least the minimum span from the last capacity reference, the charge counted
    /// since is a capacity sample like one between two anchors, and this point becomes the next
    /// reference. On the LFP plateau the filter never gets that sure, so nothing is learned
    /// there.
    fn filter_capacity_point(&mut self, at: Instant) {
        let Some(r) = self.capacity_ref else { return };
        if self.ekf.sigma_ppb() > FILTER_GRADE_SIGMA_PPB {
            return;
        }
        let soc = self.ekf.soc_ppb;
        let span = soc - r.soc_ppb;
        if span.abs() < CAPACITY_MIN_SPAN_PPB {
            return;
        }
        // The voltage must pin the SoC here, or the filter's certainty is only the counting's
        // since the last anchor, and the sample would return the capacity it counted with.
        let soc_ppm = (soc / 1000).clamp(0, 1_000_000) as u32;
        let (_, table_sigma) = self.ocv_reading(self.config.chemistry.ocv_uv(soc_ppm).into());
        if table_sigma > CAPACITY_GRADE_SIGMA_PPB {
            return;
        }
        if at.saturating_since(r.at) <= CAPACITY_MAX_AGE {
            self.learn_capacity(r.counted_mas, span);
        }
        self.capacity_ref = Some(CapacityRef { at, soc_ppb: soc, counted_mas: 0 });
    }

    /// One capacity sample: `counted_mas` moved the SoC by `span_ppb`.
    fn learn_capacity(&mut self, counted_mas: i64, span_ppb: i64) {
        let sample = i128::from(counted_mas) * i128::from(SOC_ONE) / i128::from(span_ppb);
        let nominal = i128::from(mah_to_mas(self.config.capacity_mah));
        let lo = nominal * i128::from(CAPACITY_MIN_PERMILLE) / 1000;
        let hi = nominal * i128::from(CAPACITY_MAX_PERMILLE) / 1000;
        if sample < lo || sample > hi {
            self.counters.capacity_rejected = self.counters.capacity_rejected.saturating_add(1);
            return;
        }
        // The weight of a sample grows with its span: a full cycle moves the estimate half way
        // (a quarter from an uncertain start would be too slow for a first sample).
        let span_permille = i128::from(span_ppb.abs() / 1_000_000);
        let weight = if self.capacity_samples == 0 { 1000 } else { span_permille / 2 };
        let cap = i128::from(self.capacity_mas);
        let cap = cap + (sample - cap) * weight / 1000;
        self.capacity_mas = clamp_i64(cap, lo as i64, hi as i64);
        let conf = i128::from(self.capacity_confidence);
        let conf = conf + (1000 - conf) * span_permille / 2000;
        self.capacity_confidence = conf.clamp(0, 1000) as u16;
        self.capacity_samples = self.capacity_samples.saturating_add(1);
    }

    fn refresh_status(&mut self) {
        let soc_ppm = (self.ekf.soc_ppb / 1000).clamp(0, 1_000_000) as u32;
        let sigma = self.ekf.sigma_ppb();
        let lost = (sigma.min(SIGMA_ZERO_CONFIDENCE_PPB) / 100_000) as u16;
        let (lo, hi) = self.usable_window_ppm;
        let usable = (i64::from(soc_ppm) - lo) * 1000 / (hi - lo).max(1);
        self.status = SocStatus {
            soc: Permille((soc_ppm / 1000) as u16),
            soc_ppm,
            usable: Permille(usable.clamp(0, 1000) as u16),
            confidence: Permille(1000 - lost),
            sigma_ppm: (sigma / 1000).clamp(0, u32::MAX.into()) as u32,
            capacity_mah: (self.capacity_mas / 3600).clamp(0, u32::MAX.into()) as u32,
            capacity_confidence: Permille(self.capacity_confidence),
            capacity_samples: self.capacity_samples,
            resistance_uohm: self.resistance_uohm,
            resistance_samples: self.resistance_samples,
            offset_ma: MilliAmps(clamp_i64(
                (self.offset_ua / 1000).into(),
                i32::MIN.into(),
                i32::MAX.into(),
            ) as i32),
            rc_uv: clamp_i64(self.ekf.rc_uv.into(), i32::MIN.into(), i32::MAX.into()) as i32,
            last_anchor: self.last_anchor,
            resting_since: self.rest_since,
            counters: self.counters,
        };
    }
}

const EMPTY_STATUS: SocStatus = SocStatus {
    soc: Permille(0),
    soc_ppm: 0,
    usable: Permille(0),
    confidence: Permille(0),
    sigma_ppm: 0,
    capacity_mah: 0,
    capacity_confidence: Permille(0),
    capacity_samples: 0,
    resistance_uohm: 0,
    resistance_samples: 0,
    offset_ma: MilliAmps(0),
    rc_uv: 0,
    last_anchor: None,
    resting_since: None,
    counters: SocCounters {
        time_reversals: 0,
        from_future: 0,
        current_clamped: 0,
        voltage_rejected: 0,
        gaps: 0,
        innovations_clamped: 0,
        offset_rejected: 0,
        capacity_rejected: 0,
    },
};

/// Starts or ends a held condition; its end re-arms its anchor.
fn track(since: &mut Option<Instant>, done: &mut bool, holds: bool, at: Instant) {
    if holds {
        since.get_or_insert(at);
    } else {
        *since = None;
        *done = false;
    }
}

/// The SoC standard deviation a confidence stands for (the inverse of the status mapping; no
/// confidence at all means no information).
fn sigma_from_confidence(confidence: Permille) -> i64 {
    let c = i64::from(confidence.0.min(1000));
    if c == 0 { SIGMA_UNKNOWN_PPB } else { (1000 - c) * 100_000 }
}

fn ekf_sqrt(v: i128) -> u64 {
    super::ekf::isqrt(clamp_i64(v, 0, i64::MAX) as u64)
}

fn mah_to_mas(mah: u32) -> i64 {
    i64::from(mah) * 3600
}

/// The range a capacity estimate may take: 50–130 % of the configured capacity.
fn capacity_bounds(nominal_mah: u32) -> (u32, u32) {
    let n = u64::from(nominal_mah);
    let lo = n * CAPACITY_MIN_PERMILLE as u64 / 1000;
    let hi = n * CAPACITY_MAX_PERMILLE as u64 / 1000;
    (lo as u32, hi.min(u32::MAX.into()) as u32)
}

#[cfg(test)]
mod tests;
