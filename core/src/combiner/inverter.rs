//! What each inverter is told: its share of the combined limits, its cap, zero while it is
//! escalated, the ramp of every increase, and its voltage offset where that is stricter.

use super::{CombinedReason, Combiner, CombinerAction, Stage};
use crate::units::{MilliAmps, MilliVolts};

impl Combiner {
    /// Computes inverter `k`'s view from the combined one and announces it when its limits or
    /// their reasons changed.
    pub(super) fn inverter_view(&mut self, k: usize) {
        let slot = self.config.inverters[k];
        let combined = self.status.combined;
        let mut view = combined;
        let share = |ma: MilliAmps| slot.share.of(ma.0);
        let (mut c, mut cr) = (share(combined.charge_limit_ma), self.status.charge_reason);
        let (mut d, mut dr) = (share(combined.discharge_limit_ma), self.status.discharge_reason);
        if slot.charge_cap_ma.0 < c {
            (c, cr) = (slot.charge_cap_ma.0, CombinedReason::InverterCap);
        }
        if slot.discharge_cap_ma.0 < d {
            (d, dr) = (slot.discharge_cap_ma.0, CombinedReason::InverterCap);
        }
        let stage = self.status.inverters[k].stage;
        if stage.is_some_and(|s| s >= Stage::ZeroRequested) && !self.status.halted {
            (c, cr) = (0, CombinedReason::Escalation);
            (d, dr) = (0, CombinedReason::Escalation);
        }
        // Last, so that the ramp holds back every increase and lets every reduction through.
        let ramp_ms = self.config.limit_ramp_ms;
        let (ramped, binds) = self.ramps[k][0].apply(self.now, ramp_ms, slot.charge_cap_ma.0, c);
        if binds {
            (c, cr) = (ramped, CombinedReason::Ramp);
        }
        let (ramped, binds) = self.ramps[k][1].apply(self.now, ramp_ms, slot.discharge_cap_ma.0, d);
        if binds {
            (d, dr) = (ramped, CombinedReason::Ramp);
        }
        let inv = &mut self.status.inverters[k];
        view.charge_limit_ma = MilliAmps(c);
        view.discharge_limit_ma = MilliAmps(d);
        // The offset only ever makes a voltage limit stricter: the combined charge voltage
        // limit is the lowest joined pack's own, and an offset that lifted it would charge that
        // pack above it (a +2 V offset puts a 15-cell rack's 53.25 V at 3.68 V per cell);
        // likewise the discharge voltage limit is never lowered below the highest pack's.
        let offset = slot.voltage_offset_mv.0;
        if view.charge_voltage_mv.0 > 0 {
            view.charge_voltage_mv =
                MilliVolts(view.charge_voltage_mv.0.saturating_add(offset.min(0)));
        }
        if view.discharge_voltage_mv.0 > 0 {
            view.discharge_voltage_mv =
                MilliVolts(view.discharge_voltage_mv.0.saturating_add(offset.max(0)));
        }
        let changed = inv.view.charge_limit_ma != view.charge_limit_ma
            || inv.view.discharge_limit_ma != view.discharge_limit_ma
            || inv.charge_reason != Some(cr)
            || inv.discharge_reason != Some(dr);
        inv.view = view;
        inv.charge_reason = Some(cr);
        inv.discharge_reason = Some(dr);
        if changed {
            self.push(CombinerAction::Limits {
                inverter: k as u8,
                charge_ma: MilliAmps(c),
                charge_reason: cr,
                discharge_ma: MilliAmps(d),
                discharge_reason: dr,
            });
        }
    }
}
