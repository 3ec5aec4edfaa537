//! What the run shows: the signals and trace rows at each instant, and the report at the end.

use cellwarden_core::{Duration, MilliAmps, SequenceState};

use super::SystemWorld;
use crate::engine::boards::Boards;
use crate::engine::parallel::{
    implausible_name, pack_protocol_name, phase_name, protocol_name, stage_name,
};
use crate::engine::record::{self, min_mean_max, track};
use crate::engine::watch::signal_index;
use crate::report::{InverterSummary, PackSummary, Report, SystemSummary, TraceRow};
use crate::scenario::{Signal, StateName};

impl SystemWorld<'_> {
    /// Samples the signals, feeds the expectations, writes trace rows.
    pub(super) fn observe(&mut self) {
        let at = self.elapsed();
        let mut cells: Vec<f64> = Vec::new();
        let mut temps: Vec<f64> = Vec::new();
        let mut socs: Vec<f64> = Vec::new();
        let mut connected = 0.0;
        let status = self.gateway.status();
        // Each pack's current against its own limit, as the pack itself reports it.
        let mut over = f64::MIN;
        let mut k = 0;
        if let Some(o) = &self.own {
            cells.extend_from_slice(o.plant.group_voltages());
            temps.extend_from_slice(o.plant.group_temps_c());
            socs.extend_from_slice(o.plant.group_socs());
            connected += f64::from(u8::from(o.plant.connected()));
            k = 1;
        }
        for p in &self.cans {
            cells.extend_from_slice(p.plant.group_voltages());
            temps.extend_from_slice(p.plant.group_temps_c());
            socs.extend_from_slice(p.plant.group_socs());
            connected += f64::from(u8::from(p.relay && p.bms.switch_on()));
        }
        for (i, f) in self.packs.iter_mut().enumerate() {
            let limit_a = |ma: MilliAmps| f64::from(ma.0) / 1000.0;
            let own_limit = if i < k {
                // While its contactors are not closed our pack's limits say "contactors open";
                // its own limits apply from the first measurement after closing.
                self.own
                    .as_ref()
                    .filter(|o| o.bms.status().sequence == SequenceState::Closed)
                    .and_then(|o| {
                        let l = o.bms.status().limits;
                        let open = cellwarden_core::LimitReason::ContactorsOpen;
                        (l.charge_reason != open && l.discharge_reason != open)
                            .then(|| (limit_a(l.charge_ma), limit_a(l.discharge_ma)))
                    })
            } else {
                self.cans.get(i - k).map(|c| {
                    let v = c.bms.view();
                    (limit_a(v.charge_limit_ma), limit_a(v.discharge_limit_ma))
                })
            };
            if let Some((c, d)) = own_limit {
                let excess = if f.current_a >= 0.0 { f.current_a - c } else { -f.current_a - d };
                // Only current that flows counts; a pack at a zero limit carrying nothing is in.
                if f.current_a.abs() > 0.5 {
                    f.over_limit_a_max =
                        Some(f.over_limit_a_max.map_or(excess, |m: f64| m.max(excess)));
                    over = over.max(excess);
                }
            }
            f.charge_a_max = f.charge_a_max.max(f.current_a);
            f.discharge_a_max = f.discharge_a_max.max(-f.current_a);
        }
        // The lowest of the connected packs' own charge voltage limits (the truth, not what a
        // misreporting BMS sends), against what each inverter believes.
        let mut pack_cvl = f64::MAX;
        if let Some(o) = self.own.as_ref().filter(|o| o.plant.connected()) {
            if let Some(v) = o.bms.battery_view() {
                pack_cvl = pack_cvl.min(f64::from(v.charge_voltage_mv.0) / 1000.0);
            }
        }
        for c in self.cans.iter().filter(|c| c.relay && c.bms.switch_on()) {
            pack_cvl = pack_cvl.min(f64::from(c.bms.view().charge_voltage_mv.0) / 1000.0);
        }
        let (mut inv_cvl_min, mut inv_cvl_max) = (f64::MAX, f64::MIN);
        for inv in &self.invs {
            if let Some(v) = inv.emu.battery(self.now) {
                let cvl = f64::from(v.charge_voltage_mv.0) / 1000.0;
                (inv_cvl_min, inv_cvl_max) = (inv_cvl_min.min(cvl), inv_cvl_max.max(cvl));
            }
        }
        let mut inv_over = f64::MIN;
        let mut total = 0.0;
        for (k, (inv, fig)) in self.invs.iter().zip(&mut self.inverters).enumerate() {
            let view = self.gateway.view(k as u8);
            let c = f64::from(view.charge_limit_ma.0) / 1000.0;
            let d = f64::from(view.discharge_limit_ma.0) / 1000.0;
            let excess = if inv.current_a >= 0.0 { inv.current_a - c } else { -inv.current_a - d };
            if inv.current_a.abs() > 0.5 {
                inv_over = inv_over.max(excess);
                fig.over_limit_a_max = fig.over_limit_a_max.max(excess);
            }
            fig.charge_a_max = fig.charge_a_max.max(inv.current_a);
            fig.discharge_a_max = fig.discharge_a_max.max(-inv.current_a);
            total += inv.current_a;
        }
        let (v_min, v_mean, v_max, i_min, i_max) = min_mean_max(&cells);
        let (t_min, _, t_max, it_min, it_max) = min_mean_max(&temps);
        let (soc_min, soc_mean, soc_max, _, _) = min_mean_max(&socs);
        let combined = status.combined;
        let latched = self.own.as_ref().is_some_and(|o| o.bms.status().latched().is_some());
        let s = &mut self.signals;
        s[signal_index(Signal::CellMvMax)] = v_max * 1000.0;
        s[signal_index(Signal::CellMvMin)] = v_min * 1000.0;
        s[signal_index(Signal::CellSpreadMv)] = (v_max - v_min) * 1000.0;
        s[signal_index(Signal::TempCMax)] = t_max;
        s[signal_index(Signal::TempCMin)] = t_min;
        s[signal_index(Signal::CurrentA)] = total;
        s[signal_index(Signal::CurrentAbsA)] = total.abs();
        s[signal_index(Signal::PackV)] = self.bus_v;
        s[signal_index(Signal::BusV)] = self.bus_v;
        s[signal_index(Signal::SocPctMin)] = soc_min * 100.0;
        s[signal_index(Signal::SocPctMax)] = soc_max * 100.0;
        s[signal_index(Signal::ChargeLimitA)] = f64::from(combined.charge_limit_ma.0) / 1000.0;
        s[signal_index(Signal::DischargeLimitA)] =
            f64::from(combined.discharge_limit_ma.0) / 1000.0;
        s[signal_index(Signal::ContactorsClosed)] = f64::from(u8::from(connected > 0.0));
        s[signal_index(Signal::ClosedWithLatchedFault)] =
            f64::from(u8::from(latched && self.own.as_ref().is_some_and(|o| o.plant.connected())));
        s[signal_index(Signal::PacksConnected)] = connected;
        s[signal_index(Signal::PackOverLimitA)] = if over == f64::MIN { -1.0e3 } else { over };
        s[signal_index(Signal::InverterOverLimitA)] =
            if inv_over == f64::MIN { -1.0e3 } else { inv_over };
        s[signal_index(Signal::InverterCvlV)] =
            if inv_cvl_min == f64::MAX { 1.0e3 } else { inv_cvl_min };
        s[signal_index(Signal::InverterCvlOverPackV)] =
            if inv_cvl_max == f64::MIN || pack_cvl == f64::MAX {
                -1.0e3
            } else {
                inv_cvl_max - pack_cvl
            };
        self.watch.observe(at, &self.signals);

        let first = self.trace.is_empty();
        let sm = &mut self.summary;
        track(&mut sm.cell_v_max, first, v_max, at, i_max, |n, o| n > o);
        track(&mut sm.cell_v_min, first, v_min, at, i_min, |n, o| n < o);
        track(&mut sm.temp_c_max, first, t_max, at, it_max, |n, o| n > o);
        track(&mut sm.temp_c_min, first, t_min, at, it_min, |n, o| n < o);
        track(&mut sm.charge_a_max, false, total, at, 0, |n, o| n > o);
        track(&mut sm.discharge_a_max, false, -total, at, 0, |n, o| n > o);

        let periodic = self.now >= self.next_trace || self.now >= self.end;
        // An event asks for one row, kept or left out; either way the request is done.
        let event = std::mem::take(&mut self.trace_now);
        if (periodic || event) && self.summary.keep_trace_row(periodic) {
            while self.next_trace <= self.now {
                self.next_trace += self.scenario.trace_interval.max(Duration::from_micros(1));
            }
            let row = TraceRow {
                at,
                current_a: total,
                current_measured_a: total,
                pack_v: self.bus_v,
                bus_v: self.bus_v,
                cell_v_min: v_min,
                cell_v_mean: v_mean,
                cell_v_max: v_max,
                soc_min_pct: soc_min * 100.0,
                soc_mean_pct: soc_mean * 100.0,
                soc_max_pct: soc_max * 100.0,
                soc_estimate_pct: None,
                temp_c_min: t_min,
                temp_c_max: t_max,
                charge_limit_a: f64::from(combined.charge_limit_ma.0) / 1000.0,
                discharge_limit_a: f64::from(combined.discharge_limit_ma.0) / 1000.0,
                contactors: [connected > 0.0, false, connected > 0.0],
                state: if connected > 0.0 { "closed" } else { "open" },
                latched,
            };
            if self.trace.last().is_some_and(|r| r.at == at) {
                self.trace.pop();
            }
            self.trace.push(row);
        }
    }

    /// Ends the run and reports.
    pub(crate) fn finish(self) -> Report {
        let end = self.elapsed();
        let status = self.gateway.status().clone();
        let mut packs = Vec::new();
        let mut socs_end = Vec::new();
        if let Some(o) = &self.own {
            socs_end.push(("own".to_string(), o.plant.mean_soc()));
        }
        for c in &self.cans {
            socs_end.push((pack_protocol_name(c.protocol).to_string(), c.plant.mean_soc()));
        }
        for (i, ((kind, soc_end), f)) in socs_end.iter().zip(&self.packs).enumerate() {
            packs.push(PackSummary {
                name: self.pack_names[i].clone(),
                kind: kind.clone(),
                soc_start_pct: f.soc_start * 100.0,
                soc_end_pct: soc_end * 100.0,
                charge_a_max: f.charge_a_max,
                discharge_a_max: f.discharge_a_max,
                over_limit_a_max: f.over_limit_a_max.unwrap_or(f64::NAN),
                connected: f.connected,
                final_phase: match status.packs[i].implausible {
                    Some(what) => format!("faulty (implausible {})", implausible_name(what)),
                    None => phase_name(status.packs[i].phase).to_string(),
                },
            });
        }
        let mut inverters = Vec::new();
        for (i, (inv, f)) in self.invs.iter().zip(&self.inverters).enumerate() {
            inverters.push(InverterSummary {
                name: inv.name.clone(),
                protocol: protocol_name(inv.protocol).to_string(),
                frames_from: inv.link.bus.sent(inv.link.device),
                frames_to: inv.link.bus.sent(inv.link.system),
                charge_a_max: f.charge_a_max,
                discharge_a_max: f.discharge_a_max,
                over_limit_a_max: f.over_limit_a_max,
                final_stage: stage_name(status.inverters[i].stage).to_string(),
            });
        }
        let state = if self.signals[signal_index(Signal::PacksConnected)] > 0.0 {
            StateName::Closed
        } else {
            StateName::Open
        };
        let all_latched: Vec<_> = match &self.own {
            Some(o) => cellwarden_core::RuleId::ALL
                .into_iter()
                .filter(|r| o.bms.status().rules[r.index()].latched)
                .collect(),
            None => Vec::new(),
        };
        let outcomes = self.watch.finish(end, &self.signals, state, &all_latched);
        let mut summary = self.summary;
        let n = socs_end.len().max(1) as f64;
        summary.soc_end_pct = socs_end.iter().map(|(_, s)| s).sum::<f64>() / n * 100.0;
        let mut energy = crate::plant::Energy::default();
        if let Some(o) = &self.own {
            add_energy(&mut energy, o.plant.energy());
        }
        for c in &self.cans {
            add_energy(&mut energy, c.plant.energy());
        }
        summary.energy = energy;
        summary.final_state = match state {
            StateName::Closed => "closed".to_string(),
            _ => "open".to_string(),
        };
        if let Some(o) = &self.own {
            summary.latched_at_end = o.bms.status().latched();
            summary.counters = o.bms.status().counters;
        }
        summary.system = Some(SystemSummary { packs, inverters });
        summary.bus = self.own.as_ref().and_then(|o| o.boards.as_ref()).map(Boards::summary);
        let sc = self.scenario;
        record::report(sc, sc.duration, self.log, outcomes, summary, self.trace)
    }
}

fn add_energy(total: &mut crate::plant::Energy, e: crate::plant::Energy) {
    total.charged_wh += e.charged_wh;
    total.discharged_wh += e.discharged_wh;
    total.heat_wh += e.heat_wh;
}
