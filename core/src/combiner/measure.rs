//! The shares of the bank's current each joined pack carries: predicted from the packs'
//! capacities and resistances, measured from their reported currents, and cross-checked
//! against the inverters' currents.
//!
//! A pack's report of its own current is one sensor, and it can be wrong (a failed shunt, a
//! wrong sign, firmware that reports zero). A pack that reports less than it carries would get
//! a small share and constrain nothing, while it carries more than its limit. So the sum of the
//! packs' currents is compared with the sum of the inverters' currents, the bank's current
//! measured a second time. The two are not sampled at the same instant (a pack's report can be
//! a round old), so a comparison counts only while the inverters' current was steady (within
//! the tolerance below) over the last two measurement rounds, and a finding counts only when
//! two such rounds in a row make it: a round that compares a new report with a current that
//! is about to step is followed by one in which the current is not steady.
//!
//! Until the two agree (within [`current_mismatch_ma`](super::CombinerConfig::current_mismatch_ma)
//! plus [`current_mismatch`](super::CombinerConfig::current_mismatch) of the bank's current),
//! no pack's share falls below
//!
//! - its predicted share, the larger of its part of the joined capacity and its part of the
//!   joined conductance (a step in current divides by resistance first, and by capacity once
//!   the voltages follow); this is also every share from a join to the first measurement;
//! - once a disagreement was found, its reported current plus all of the current no pack
//!   reported, divided by the inverters' current: any one pack may be the one whose report is
//!   short, and this is the most it can then carry. These floors hold until the currents agree
//!   again.
//!
//! The bound, with one pack misreporting (the property tests in
//! `core/tests/combiner_currents.rs`): while the bank's current divides as predicted (anywhere
//! between the capacity and the conductance split), no pack ever exceeds its own limit, joins
//! included. However it divides, no pack exceeds its limit once the inverters' current has been
//! steady for the measurement rounds after the last join (the test allows 8 report periods;
//! a comparison needs three rounds, and a changed limit restarts the count); before that a
//! pack can exceed its limit by its true share minus its predicted one, times the bank's limit.
//! A misreport smaller than the tolerance is not detected: the pack can then carry up to the
//! tolerance more than its share says, at the current of the measurement, until a measurement
//! at a larger current finds it.
//!
//! Shares are not the whole of it: packs at different open-circuit voltages exchange current
//! that no inverter limit controls, and a pack whose voltage moves faster than the others'
//! (an NCA string beside LFP racks) hands its part of a long discharge to them and is charged
//! back when the discharge stops. So each pack's offset (its current less its predicted share
//! of the bank's) and the part of the bank's current that comes back through it when that
//! stops are measured too, against the inverters' steady current, and bound the limits
//! (`bound_by_offsets`): in the linear picture (a step in current divides by conductance, and
//! the prediction covers that split), no pack leaves its own limits wherever the bank's current
//! moves within the limits, a stop and a reversal included. The drift until the next
//! measurement is extrapolated by one measured round's growth; the property test in
//! `core/tests/combiner_direction.rs` finds the rest under 2 % of a pack's limit.

use super::share::{self, Part, shares_of};
use super::{CombinedReason, Combiner, MAX_PACKS, bump};
use crate::units::Permille;

/// `value × 1000 / total`, rounded up, 0..=1000; 0 when `total` is not positive.
fn share_up(value: i64, total: i64) -> Permille {
    if total <= 0 {
        return Permille(0);
    }
    let v = value.clamp(0, total);
    // 0 <= v <= total, so the quotient is 0..=1000.
    Permille(((v * 1000 + total - 1) / total) as u16)
}

impl Combiner {
    /// The shares the joined packs (`mask`) are expected to carry: per pack the larger of its
    /// part of the capacity and its part of the conductance, each rounded up. They may add up to
    /// more than 1000, on the safe side.
    pub(super) fn predicted_shares(&self, mask: u16, out: &mut [Permille; MAX_PACKS]) {
        let n = self.config.packs.len();
        let mut capacity = [0i64; MAX_PACKS];
        let mut conductance = [0i64; MAX_PACKS];
        for (i, slot) in self.config.packs.iter().enumerate() {
            if mask & (1 << i) != 0 {
                capacity[i] = i64::from(slot.capacity_mah);
                // Siemens × 10^12 / 10^6: resolution enough for any resistance up to 1 kΩ.
                conductance[i] = 1_000_000_000_000 / i64::from(slot.resistance_uohm.max(1));
            }
        }
        let (c_total, g_total): (i64, i64) = (capacity.iter().sum(), conductance.iter().sum());
        for i in 0..n {
            out[i] = share_up(capacity[i], c_total).max(share_up(conductance[i], g_total));
        }
    }

    /// The bank's current as the inverters measure it, positive charging: `None` unless every
    /// inverter has a fresh current.
    fn inverters_current_ma(&self) -> Option<i64> {
        let mut total = 0i64;
        for i in self.status.inverters.iter().take(self.config.inverters.len()) {
            let (at, ma) = i.current?;
            if !self.fresh(at) {
                return None;
            }
            total += i64::from(ma.0);
        }
        Some(total)
    }

    /// Widens this round's range of the inverters' current by its value now.
    pub(super) fn note_inverters_current(&mut self) {
        if let Some(ma) = self.inverters_current_ma() {
            let range = &mut self.inverters_range[0];
            *range = Some(range.map_or((ma, ma), |(lo, hi)| (lo.min(ma), hi.max(ma))));
        }
    }

    /// The inverters' current, when it was known and steady (within `tolerance`) over this
    /// round and the one before; the round ends here.
    fn steady_inverters_current_ma(&mut self) -> Option<i64> {
        let [now, before] = self.inverters_range;
        self.inverters_range = [None, now];
        let (lo, hi) = match (now, before) {
            (Some((a, b)), Some((c, d))) => (a.min(c), b.max(d)),
            _ => return None,
        };
        let now_ma = self.inverters_current_ma()?;
        let tolerance = self.mismatch_tolerance_ma(now_ma);
        (hi - lo <= tolerance).then_some(now_ma)
    }

    /// How far the packs' sum may be from a bank current of `bank_ma` and still agree.
    fn mismatch_tolerance_ma(&self, bank_ma: i64) -> i64 {
        i64::from(self.config.current_mismatch_ma.0)
            + i64::from(self.config.current_mismatch.0) * bank_ma.abs() / 1000
    }

    /// Shares restart from the prediction whenever the joined set changes, and are measured
    /// from the packs' currents (cross-checked as the module documentation says) once every
    /// joined pack has reported, while the bank's current is large enough to tell.
    pub(super) fn measure_shares(&mut self) {
        let n = self.config.packs.len();
        let mask = self.joined_mask();
        let mut predicted = [Permille(0); MAX_PACKS];
        self.predicted_shares(mask, &mut predicted);
        if mask != self.shares_for {
            self.shares_for = mask;
            self.fresh_reports = 0;
            for (p, s) in self.status.packs.iter_mut().zip(predicted).take(n) {
                p.charge_share = s;
                p.discharge_share = s;
            }
            self.floors = [[Permille(0); MAX_PACKS]; 2];
            self.offsets_ma = [[0; MAX_PACKS]; 2];
            self.returns = [[Permille(0); MAX_PACKS]; 2];
            self.last_packs_ma = None;
            self.last_offsets_ma = [None; MAX_PACKS];
            self.last_returns = [None; MAX_PACKS];
        }
        if mask == 0 || self.fresh_reports & mask != mask {
            return;
        }
        self.fresh_reports = 0;
        // Read (and end the round) before anything returns early, so rounds stay aligned.
        let inverters_ma = self.steady_inverters_current_ma();
        let mut values = [0i64; MAX_PACKS];
        let mut packs_ma = 0i64;
        for (i, v) in values.iter_mut().enumerate().take(n) {
            if mask & (1 << i) != 0 {
                if let Some((_, view)) = self.status.packs[i].report {
                    *v = i64::from(view.current_ma.0);
                    packs_ma += *v;
                }
            }
        }
        // At rest too: the current packs exchange among themselves is largest then.
        self.measure_offsets(mask, &predicted, &values, packs_ma, inverters_ma);
        // The direction and size of the bank's current: the inverters' measurement when there
        // is one (a pack's report may be the wrong one), else the packs' sum.
        let mut bank_ma = inverters_ma.or(self.inverters_current_ma()).unwrap_or(packs_ma);
        if bank_ma.abs() < i64::from(self.config.share_min_current_ma.0) {
            return;
        }
        let charging = bank_ma > 0;
        if !charging {
            for v in values.iter_mut() {
                *v = -*v;
            }
            packs_ma = -packs_ma;
            bank_ma = -bank_ma;
        }
        let tolerance = self.mismatch_tolerance_ma(bank_ma);
        let verdict = inverters_ma.map(|_| (packs_ma - bank_ma).abs() <= tolerance);
        // A pack's report and the inverters' current are not taken at the same instant: a
        // round in which the current stepped just after the inverters' last sample compares a
        // new report with an old current. Such a round is followed by one in which the
        // inverters' current is not steady, so a finding counts only when two rounds in a row
        // make it.
        let last = &mut self.verdicts[usize::from(!charging)];
        let agree = verdict.filter(|v| *last == Some(*v));
        *last = verdict;
        if agree.is_some() {
            self.status.currents_agree = agree;
        }
        if agree == Some(false) {
            bump(&mut self.status.counters.current_mismatch);
        }
        let mut shares = [Permille(0); MAX_PACKS];
        shares_of(&values[..n], &mut shares[..n]);
        let floors = &mut self.floors[usize::from(!charging)];
        match agree {
            Some(true) => *floors = [Permille(0); MAX_PACKS],
            Some(false) => {
                // Current no pack reported; any one of them may be carrying it. These floors
                // hold until a measurement agrees again.
                let missing = (bank_ma - packs_ma).max(0);
                for i in (0..n).filter(|i| mask & (1 << i) != 0) {
                    floors[i] = predicted[i].max(share_up(values[i] + missing, bank_ma));
                }
            }
            None => {}
        }
        for i in (0..n).filter(|i| mask & (1 << i) != 0) {
            if agree != Some(true) {
                shares[i] = shares[i].max(predicted[i]);
            }
            shares[i] = shares[i].max(floors[i]);
        }
        for (p, s) in self.status.packs.iter_mut().zip(shares).take(n) {
            let old = if charging { &mut p.charge_share } else { &mut p.discharge_share };
            // A larger share is taken at once (it is the safe side); a smaller one only an
            // eighth of the way per measurement, so the packs' reports, which arrive at
            // different instants, do not make the limits flap. One thousandth less is the
            // rounding of the measurement, not a change, and is not followed: a share that
            // followed it would step the limit back and forth each round (the bank's current
            // moves the rounding across the boundary and back), and the inverters' current,
            // following the limit, would never be steady enough for the cross-check to run.
            *old = if s >= *old {
                s
            } else if old.0 - s.0 <= 1 {
                *old
            } else {
                Permille(old.0 - (old.0 - s.0).div_ceil(8))
            };
        }
    }

    /// Lowers the current limits so that no joined pack leaves its own limits when the bank's
    /// current moves anywhere within them, from where it is now: pack `k` carries its measured
    /// offset plus its predicted share of the bank's current (the larger of its capacity and
    /// conductance parts, so at least what a step in current gives it), and the current that
    /// flowed back through it when the bank's current stopped, measured as a part of that
    /// current, may come back in proportion. The shares measured in one direction say nothing
    /// of the other: a pack that carried little of a discharge may take most of the charge
    /// that follows it.
    pub(super) fn bound_by_offsets(
        &self,
        joined: u16,
        ccl: &mut i32,
        charge_reason: &mut CombinedReason,
        dcl: &mut i32,
        discharge_reason: &mut CombinedReason,
    ) {
        let n = self.config.packs.len();
        let mut predicted = [Permille(0); MAX_PACKS];
        self.predicted_shares(joined, &mut predicted);
        let open = |r: &CombinedReason| {
            matches!(r, CombinedReason::Pack { .. } | CombinedReason::SumOfPacks)
        };
        for i in (0..n).filter(|i| joined & (1 << i) != 0) {
            let Some((_, v)) = self.status.packs[i].report else { continue };
            let (c, d) = (v.charge_limit_ma.0.max(0), v.discharge_limit_ma.0.max(0));
            let pack = i as u8;
            let charge = [
                Part { limit_ma: c.saturating_sub(self.offsets_ma[0][i]), share: predicted[i] },
                Part { limit_ma: d, share: self.returns[0][i] },
            ];
            let discharge = [
                Part { limit_ma: d.saturating_sub(self.offsets_ma[1][i]), share: predicted[i] },
                Part { limit_ma: c, share: self.returns[1][i] },
            ];
            for (parts, limit, reason) in [
                (charge, &mut *ccl, &mut *charge_reason),
                (discharge, &mut *dcl, &mut *discharge_reason),
            ] {
                if !open(reason) {
                    continue;
                }
                for part in parts {
                    if let Some(allowed) = share::allows(part) {
                        if allowed < *limit {
                            *limit = allowed;
                            *reason = CombinedReason::Pack { pack, share: part.share };
                        }
                    }
                }
            }
        }
    }

    /// Measures what each joined pack carries beyond its share of a change in the bank's
    /// current: its offset, `i_k - m_k × I` (pack current `i_k`, bank current `I` as the sum of
    /// the packs', predicted share `m_k`). Packs at different open-circuit voltages exchange
    /// current that no inverter limit controls; the offset is that current, and also what a
    /// pack would carry if the bank's current went back to zero now. Under a steady current
    /// it grows as the packs' voltages drift apart (a string whose voltage falls faster with
    /// discharge hands its part to the others, and takes it back, and more, when the current
    /// stops), so its part of the bank's current is kept as well (`returns`), per direction.
    fn measure_offsets(
        &mut self,
        mask: u16,
        predicted: &[Permille; MAX_PACKS],
        values: &[i64; MAX_PACKS],
        packs_ma: i64,
        inverters_ma: Option<i64>,
    ) {
        let n = self.config.packs.len();
        // The packs' reports are not taken at one instant: in a round in which the current
        // stepped, one pack's report is from before the step and another's from after it, and
        // the offsets they give are not the packs'. Only a round whose sum is within the
        // mismatch tolerance of the round before is measured.
        let before = self.last_packs_ma.replace(packs_ma);
        if before.is_none_or(|b| (b - packs_ma).abs() > self.mismatch_tolerance_ma(packs_ma)) {
            return;
        }
        // The bank's current is the inverters' when they measure it, and then only while it
        // is steady: a pack that misreports its current must not also set the direction and
        // size of the bank's (a negated report can turn a discharge into a charge), and the
        // limits must not move with its lie, or the inverters' current never holds still long
        // enough for the cross-check to find it. Without inverters that measure, the packs'
        // sum is all there is.
        let bank_ma = match (inverters_ma, self.inverters_current_ma()) {
            (Some(steady), _) => steady,
            (None, Some(_)) => return,
            (None, None) => packs_ma,
        };
        let large = bank_ma.abs() >= i64::from(self.config.share_min_current_ma.0);
        let direction = usize::from(bank_ma < 0);
        for i in (0..n).filter(|i| mask & (1 << i) != 0) {
            let offset = values[i] - i64::from(predicted[i].0) * bank_ma / 1000;
            let offset = offset.clamp(i32::MIN.into(), i32::MAX.into()) as i32;
            // The packs' voltages keep drifting until the next measurement, a round or more
            // away: an offset that grew since the last measured round is taken as if it grows
            // as much again (and likewise the part that returns).
            let last = self.last_offsets_ma[i].replace(offset);
            let grown = last.map_or(0, |l| offset.saturating_sub(l));
            // [0]: towards charging the pack (binds the charge limit), [1]: towards discharging.
            for (held, new, growth) in
                [(0, offset, grown), (1, offset.saturating_neg(), grown.saturating_neg())]
            {
                let ahead = new.saturating_add(growth.max(0));
                let old = &mut self.offsets_ma[held][i];
                *old = follow_ma(*old, ahead);
            }
            if !large {
                self.last_returns[i] = None;
                continue;
            }
            // The part of the bank's current that flows back into (under discharge) or out of
            // (under charge) this pack when the bank's current stops: [0] measured while
            // charging, [1] while discharging.
            let back = if direction == 0 { -offset } else { offset };
            let part = share_up(i64::from(back), bank_ma.abs());
            let last = self.last_returns[i].replace((direction, part));
            let growth = match last {
                Some((d, l)) if d == direction => part.0.saturating_sub(l.0),
                _ => 0,
            };
            let ahead = Permille(part.0.saturating_add(growth).min(1000));
            let old = &mut self.returns[direction][i];
            *old = follow(*old, ahead);
        }
    }
}

/// How far an offset may shrink without being followed: the packs' reports are not taken at
/// one instant, and a held value that followed every wobble would step the limits each round.
const OFFSET_DEAD_BAND_MA: i32 = 500;

/// A held offset: a larger one is taken at once (the safe side), a smaller one an eighth of
/// the way per measurement, and not at all within the dead band.
fn follow_ma(old: i32, new: i32) -> i32 {
    let gap = i64::from(old) - i64::from(new);
    if gap <= 0 {
        new
    } else if gap <= i64::from(OFFSET_DEAD_BAND_MA) {
        old
    } else {
        // old - ceil(gap / 8) lies between new and old, so it fits.
        (i64::from(old) - (gap + 7) / 8) as i32
    }
}

/// A held share, as [`follow_ma`]: larger at once, smaller slowly, one thousandth not at all.
fn follow(old: Permille, new: Permille) -> Permille {
    if new >= old {
        new
    } else if old.0 - new.0 <= 1 {
        old
    } else {
        Permille(old.0 - (old.0 - new.0).div_ceil(8))
    }
}
