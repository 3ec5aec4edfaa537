//! The plants between two instants: the inverters' demand and how the bank's current splits
//! among the connected packs.

use cellwarden_core::{ContactorId, Instant};

use super::SystemWorld;
use crate::profile::Demand;

impl SystemWorld<'_> {
    /// Integrates every plant from where they stand to now, with the currents of the state at
    /// the start of the jump held constant (each plant's solution is exact for that): the
    /// inverters' currents at the bus voltage they saw, split among the connected packs by
    /// their Thevenin equivalents over the jump, so packs at different voltages share unevenly
    /// and circulate current, as they do.
    pub(super) fn catch_up(&mut self) {
        if self.plant_at >= self.now {
            return;
        }
        let (from, span) = (self.plant_at, self.now.saturating_since(self.plant_at));
        let dt = span.as_micros() as f64 / 1e6;
        // Thevenin equivalents of the connected packs (own first, then the CAN packs).
        let mut th: Vec<Option<(f64, f64)>> = Vec::with_capacity(self.packs.len());
        if let Some(o) = &mut self.own {
            th.push(o.plant.connected().then(|| o.plant.thevenin(dt)));
        }
        for p in &mut self.cans {
            let on = p.relay && p.bms.switch_on();
            th.push(on.then(|| p.plant.thevenin(dt)));
        }
        let (g, ge) =
            th.iter().flatten().fold((0.0, 0.0), |(g, ge), (e, r)| (g + 1.0 / r, ge + e / r));
        let open_v = if g > 0.0 { ge / g } else { 0.0 };
        // The inverters' currents at the bus voltage they see at the start of the jump: the
        // last one's, or the packs' resting voltage on the first jump with a pack on the bus.
        let demand = self.demand_a(from, open_v);
        let seen_v = if self.bus_v > 0.0 { self.bus_v } else { open_v };
        let mut total = 0.0;
        for inv in &mut self.invs {
            inv.current_a =
                if g > 0.0 { inv.emu.current_a(from, demand * inv.weight, seen_v) } else { 0.0 };
            total += inv.current_a;
        }
        self.bus_v = if g > 0.0 { (total + ge) / g } else { 0.0 };
        let mut k = 0;
        if let Some(o) = &mut self.own {
            let i = th[0].map_or(0.0, |(e, r)| (self.bus_v - e) / r);
            o.plant.step(dt, i);
            self.packs[0].current_a = o.plant.current_a();
            k = 1;
        }
        for (j, p) in self.cans.iter_mut().enumerate() {
            let i = th[k + j].map_or(0.0, |(e, r)| (self.bus_v - e) / r);
            // A pack off the bus carries nothing: its plant's path is open.
            p.plant.set_contactor(ContactorId::Positive, th[k + j].is_some());
            p.plant.step(dt, i);
            self.packs[k + j].current_a = if th[k + j].is_some() { i } else { 0.0 };
        }
        for (f, t) in self.packs.iter_mut().zip(&th) {
            if t.is_some() {
                f.connected = f.connected.saturating_add(span);
            }
        }
        self.summary.plant_steps += 1;
        self.plant_at = self.now;
    }

    /// The timeline's total demand at `at`, A (positive charging).
    pub(super) fn demand_a(&self, at: Instant, bus_v: f64) -> f64 {
        let Some((profile, since)) = &self.profile else { return 0.0 };
        let a = match profile.demand(at.saturating_since(*since)) {
            Demand::Amps(a) => a,
            Demand::Watts(w) if bus_v > 1.0 => w / bus_v,
            Demand::Watts(_) => 0.0,
        };
        if a.is_finite() { a } else { 0.0 }
    }
}
