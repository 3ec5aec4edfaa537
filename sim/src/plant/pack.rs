//! The pack: strings of series groups in parallel, stored as structure-of-arrays, on the DC bus.

use cellwarden_core::ContactorId;

use super::bus::{Bus, Contactors};
use super::cell::{Dynamics, GroupState, R_MIN_OHM, step_group};
use super::{CellParams, Energy, MIN_OUTLIER_FACTOR, PlantSpec};
use crate::rng::SimRng;

/// Largest current magnitude the plant accepts from the outside, A (bigger ones are clipped, so
/// that absurd inputs cannot overflow the heat terms).
const MAX_CURRENT_A: f64 = 1e9;
/// Largest heater power the plant accepts, W.
const MAX_POWER_W: f64 = 1e12;
/// Seconds per hour.
const HOUR_S: f64 = 3600.0;

/// Per-string sums of the group quantities the pack's Thevenin equivalent needs, taken at the
/// end of each step for the next one (all resistances at the groups' present temperatures).
#[derive(Clone, Copy, Debug, Default)]
struct StringSums {
    ocv: f64,
    v1: f64,
    r0: f64,
    r1: f64,
    leak_r0: f64,
    leak_r1: f64,
}

impl StringSums {
    /// Thevenin source and resistance of the string for the coming step (`a` = exp(−dt/tau)):
    /// at the end of the step each group is at `ocv + a v1 + (i − leak)(R0 + (1 − a) R1)`.
    #[inline]
    fn thevenin(&self, a: f64, one_minus_a: f64) -> (f64, f64) {
        let e = self.ocv + a * self.v1 - self.leak_r0 - one_minus_a * self.leak_r1;
        let r = (self.r0 + one_minus_a * self.r1).max(R_MIN_OHM);
        (e, r)
    }
}

/// The battery system: `strings × modules × series_per_module` series groups, the contactors and
/// the DC bus. See the module documentation of [`crate::plant`] for the conventions.
#[derive(Clone, Debug)]
pub struct Plant {
    dynamics: Dynamics,
    strings: usize,
    groups_per_string: usize,
    series_per_module: usize,
    modules: usize,
    sensors_per_module: usize,
    // Per-group state (string-major, then module, then group).
    soc: Vec<f64>,
    v1: Vec<f64>,
    temp_c: Vec<f64>,
    resistance_factor: Vec<f64>,
    ocv: Vec<f64>,
    v_group: Vec<f64>,
    // Per-group parameters and inputs.
    inv_capacity: Vec<f64>,
    r0: Vec<f64>,
    r1: Vec<f64>,
    /// The extra current each group's step integrates: the leak set by [`Plant::set_group_leak_a`]
    /// plus the balancing bleed set by [`Plant::set_group_bleed_a`].
    leak_a: Vec<f64>,
    /// The leak part of `leak_a` (a fault such as an internal short), kept apart so that
    /// setting the bleed does not overwrite it.
    fault_leak_a: Vec<f64>,
    /// The balancing part of `leak_a`.
    bleed_a: Vec<f64>,
    heater_w: Vec<f64>,
    // Per string.
    sums: Vec<StringSums>,
    string_current_a: Vec<f64>,
    string_current_end_a: Vec<f64>,
    string_thevenin: Vec<(f64, f64)>,
    /// The leak currents changed since the sums were taken.
    sums_stale: bool,
    /// Some group has a leak current or a heater.
    extras_active: bool,
    ambient_c: f64,
    bus: Bus,
    contactors: Contactors,
    current_a: f64,
    pack_voltage_v: f64,
    energy: Energy,
    /// Steps taken: the group voltages and temperatures change only in a step.
    steps: u64,
    /// Which groups of a module each of its temperature sensors averages (see
    /// [`Plant::sensor_temps_c`]), worked out once.
    sensor_groups: Vec<(usize, usize)>,
    /// Mean capacity (Ah) and mean R0 (µΩ) of the groups as built; they never change.
    mean_capacity_ah: f64,
    mean_r0_uohm: f64,
}

/// `x` if finite, else `default`.
fn finite_or(x: f64, default: f64) -> f64 {
    if x.is_finite() { x } else { default }
}

impl Plant {
    /// Builds the plant: every group at rest at its initial SoC and temperature, all contactors
    /// open, the bus at 0 V. The cell-to-cell spread is drawn from `seed` (streams
    /// `plant.capacity`, `plant.resistance`, `plant.soc`, one draw per group in order):
    /// capacity × (1 + N(0, capacity_pct %)), R0 and R1 × (1 + N(0, resistance_pct %)), SoC +
    /// N(0, soc_pct points) clamped to 0..1, each draw clipped at three sigma (factors at least
    /// 0.05). Then each outlier (`spec.spread.outliers`) scales its group's capacity and its R0
    /// and R1 by `1 + pct / 100` (factors at least [`MIN_OUTLIER_FACTOR`]) and adds its points
    /// to the group's SoC, clamped to 0..1 again; the draws are the same with or without
    /// outliers. Non-finite figures in `spec` are replaced (SoC 0, temperatures 25 °C, spreads
    /// and outlier changes 0); outliers for groups that do not exist are ignored.
    pub fn new(spec: &PlantSpec, seed: u64) -> Plant {
        let params: CellParams = spec.cell.sanitized();
        let dynamics = Dynamics::new(&params);
        let strings = usize::from(spec.strings);
        let series_per_module = usize::from(spec.series_per_module);
        let groups_per_string = usize::from(spec.modules) * series_per_module;
        let n = strings * groups_per_string;
        let initial_soc = finite_or(spec.initial_soc, 0.0).clamp(0.0, 1.0);
        let initial_temp_c = finite_or(spec.initial_temp_c, 25.0);
        let sigma = |pct: f64| finite_or(pct, 0.0) / 100.0;

        let mut capacity_rng = SimRng::stream(seed, "plant.capacity");
        let mut resistance_rng = SimRng::stream(seed, "plant.resistance");
        let mut soc_rng = SimRng::stream(seed, "plant.soc");
        let (capacity_sigma, resistance_sigma, soc_sigma) = (
            sigma(spec.spread.capacity_pct),
            sigma(spec.spread.resistance_pct),
            sigma(spec.spread.soc_pct),
        );

        let mut plant = Plant {
            strings,
            groups_per_string,
            series_per_module,
            modules: usize::from(spec.modules),
            sensors_per_module: usize::from(spec.sensors_per_module),
            soc: Vec::with_capacity(n),
            v1: vec![0.0; n],
            temp_c: vec![initial_temp_c; n],
            resistance_factor: Vec::with_capacity(n),
            ocv: Vec::with_capacity(n),
            v_group: Vec::with_capacity(n),
            inv_capacity: Vec::with_capacity(n),
            r0: Vec::with_capacity(n),
            r1: Vec::with_capacity(n),
            leak_a: vec![0.0; n],
            fault_leak_a: vec![0.0; n],
            bleed_a: vec![0.0; n],
            heater_w: vec![0.0; n],
            sums: vec![StringSums::default(); strings],
            string_current_a: vec![0.0; strings],
            string_current_end_a: vec![0.0; strings],
            string_thevenin: vec![(0.0, R_MIN_OHM); strings],
            sums_stale: true,
            extras_active: false,
            ambient_c: finite_or(spec.ambient_c, 25.0),
            bus: Bus::new(&spec.bus),
            contactors: Contactors::default(),
            current_a: 0.0,
            pack_voltage_v: 0.0,
            energy: Energy::default(),
            steps: 0,
            sensor_groups: Vec::new(),
            mean_capacity_ah: 0.0,
            mean_r0_uohm: 0.0,
            dynamics,
        };
        for group in 0..n {
            let mut capacity_factor = (1.0 + capacity_rng.normal_clipped(capacity_sigma)).max(0.05);
            let mut resistance_factor =
                (1.0 + resistance_rng.normal_clipped(resistance_sigma)).max(0.05);
            let mut soc = (initial_soc + soc_rng.normal_clipped(soc_sigma)).clamp(0.0, 1.0);
            for outlier in spec.spread.outliers.iter().filter(|o| o.group == group) {
                let factor = |pct: f64| (1.0 + finite_or(pct, 0.0) / 100.0).max(MIN_OUTLIER_FACTOR);
                capacity_factor *= factor(outlier.capacity_pct);
                resistance_factor *= factor(outlier.resistance_pct);
                soc = (soc + finite_or(outlier.soc_pct, 0.0) / 100.0).clamp(0.0, 1.0);
            }
            let state = GroupState::new(&plant.dynamics.tables, soc, initial_temp_c);
            plant.soc.push(soc);
            plant.resistance_factor.push(state.resistance_factor);
            plant.ocv.push(state.ocv);
            plant.v_group.push(state.ocv);
            plant.inv_capacity.push(1.0 / (params.capacity_ah * capacity_factor * HOUR_S));
            plant.r0.push(params.r0_ohm * resistance_factor);
            plant.r1.push(params.r1_ohm * resistance_factor);
        }
        plant.refresh_sums();
        plant.pack_voltage_v = plant.mean_string_voltage();
        let (n, sensors) = (plant.series_per_module, plant.sensors_per_module);
        if n > 0 {
            plant.sensor_groups = (0..sensors)
                .map(|k| {
                    let start = (k * n / sensors).min(n - 1);
                    (start, ((k + 1) * n / sensors).clamp(start + 1, n))
                })
                .collect();
        }
        let groups = plant.group_count().max(1);
        plant.mean_capacity_ah =
            (0..groups).filter_map(|g| plant.group_capacity_ah(g)).sum::<f64>() / groups as f64;
        plant.mean_r0_uohm = (0..groups)
            .filter_map(|g| plant.group_resistances_ohm(g))
            .map(|(r0, _)| r0 * 1e6)
            .sum::<f64>()
            / groups as f64;
        plant
    }

    /// Mean capacity of the groups at 25 °C as built, Ah (what [`Plant::group_capacity_ah`]
    /// gives, averaged; 0 without groups).
    pub fn mean_capacity_ah(&self) -> f64 {
        self.mean_capacity_ah
    }

    /// Mean series resistance R0 of the groups at 25 °C as built, µΩ (0 without groups).
    pub fn mean_r0_uohm(&self) -> f64 {
        self.mean_r0_uohm
    }

    /// Advances by `dt_s` seconds with the inverter pushing `inverter_a` into the bus (+) or
    /// drawing it (−); the inverter's current flows only while [`Plant::connected`]. Exact for
    /// a constant inverter current over the step except that each group's OCV and resistance
    /// are held at their start-of-step values while the currents are worked out. `dt_s` ≤ 0
    /// or non-finite: no-op; a non-finite current counts as 0.
    pub fn step(&mut self, dt_s: f64, inverter_a: f64) {
        if !(dt_s > 0.0 && dt_s.is_finite()) {
            return;
        }
        let inverter_a = finite_or(inverter_a, 0.0).clamp(-MAX_CURRENT_A, MAX_CURRENT_A);
        self.steps += 1;
        self.dynamics.prepare(dt_s);
        if self.sums_stale {
            self.refresh_sums();
        }
        let (a, one_minus_a) = (self.dynamics.a, self.dynamics.one_minus_a);

        // 1. The currents: the bus node against the pack's Thevenin equivalent.
        let path_closed =
            !self.soc.is_empty() && (self.contactors.connected() || self.contactors.precharging());
        let mut terminal_power_w = 0.0;
        if path_closed {
            let (e_pack, r_pack) = self.pack_thevenin(a, one_minus_a);
            let connected = self.contactors.connected();
            let (r_series, source_a) = if connected {
                (r_pack, inverter_a)
            } else {
                (r_pack + self.bus.precharge_ohm, 0.0)
            };
            let v_bus_mean = self.bus.drive(dt_s, e_pack, r_series, source_a);
            let i_mean = ((v_bus_mean - e_pack) / r_series).clamp(-MAX_CURRENT_A, MAX_CURRENT_A);
            let i_end =
                ((self.bus.voltage_v - e_pack) / r_series).clamp(-MAX_CURRENT_A, MAX_CURRENT_A);
            self.current_a = i_mean;
            if self.strings == 1 {
                self.string_current_a[0] = i_mean;
                self.string_current_end_a[0] = i_end;
                terminal_power_w = i_mean * (e_pack + i_mean * r_pack);
            } else {
                // Every string sees the pack terminal voltage E + I R.
                let (v_mean, v_end) = (e_pack + i_mean * r_pack, e_pack + i_end * r_pack);
                for (s, &(e, r)) in self.string_thevenin.iter().enumerate() {
                    let i_s = (v_mean - e) / r;
                    self.string_current_a[s] = i_s;
                    self.string_current_end_a[s] = (v_end - e) / r;
                    terminal_power_w += i_s * (e + i_s * r);
                }
            }
        } else {
            self.bus.decay(dt_s);
            self.current_a = 0.0;
            self.string_current_a.fill(0.0);
            self.string_current_end_a.fill(0.0);
        }

        // 2. The groups.
        let (heat_w, voltage_sum) = if self.extras_active {
            self.step_groups::<true>()
        } else {
            self.step_groups::<false>()
        };
        self.pack_voltage_v = voltage_sum / self.strings.max(1) as f64;
        if path_closed && self.contactors.connected() {
            self.bus.voltage_v = self.pack_voltage_v;
        }

        // 3. Energy.
        let wh = terminal_power_w * dt_s / HOUR_S;
        if wh > 0.0 {
            self.energy.charged_wh += wh;
        } else {
            self.energy.discharged_wh -= wh;
        }
        self.energy.heat_wh += heat_w * dt_s / HOUR_S;
    }

    /// The Thevenin equivalent (source, resistance) of the whole pack for the coming step; fills
    /// `string_thevenin`.
    /// The pack's Thevenin equivalent over a step of `dt_s` (the RC pairs' voltage included):
    /// EMF (V) and resistance (Ω) at the terminals. Packs in parallel share a current by it.
    pub fn thevenin(&mut self, dt_s: f64) -> (f64, f64) {
        let dt_s = if dt_s > 0.0 && dt_s.is_finite() { dt_s } else { 1e-3 };
        self.dynamics.prepare(dt_s);
        if self.sums_stale {
            self.refresh_sums();
        }
        let (a, one_minus_a) = (self.dynamics.a, self.dynamics.one_minus_a);
        self.pack_thevenin(a, one_minus_a)
    }

    fn pack_thevenin(&mut self, a: f64, one_minus_a: f64) -> (f64, f64) {
        let mut g_sum = 0.0;
        let mut ge_sum = 0.0;
        for (th, sums) in self.string_thevenin.iter_mut().zip(&self.sums) {
            let (e, r) = sums.thevenin(a, one_minus_a);
            *th = (e, r);
            g_sum += 1.0 / r;
            ge_sum += e / r;
        }
        if self.strings == 1 { self.string_thevenin[0] } else { (ge_sum / g_sum, 1.0 / g_sum) }
    }

    /// Runs every group over the prepared step with the string currents set; takes the sums
    /// for the next step; returns the total heat (W) and the sum of all group voltages (V).
    fn step_groups<const EXTRAS: bool>(&mut self) -> (f64, f64) {
        let d = &self.dynamics;
        let ambient_term = d.ambient_term(self.ambient_c);
        let n = self.groups_per_string;
        let mut heat_w = 0.0;
        let mut voltage_sum = 0.0;
        for s in 0..self.strings {
            let range = s * n..(s + 1) * n;
            let soc = &mut self.soc[range.clone()];
            let v1 = &mut self.v1[range.clone()];
            let temp_c = &mut self.temp_c[range.clone()];
            let rfac = &mut self.resistance_factor[range.clone()];
            let ocv = &mut self.ocv[range.clone()];
            let v_group = &mut self.v_group[range.clone()];
            let inv_capacity = &self.inv_capacity[range.clone()];
            let r0 = &self.r0[range.clone()];
            let r1 = &self.r1[range.clone()];
            let leak_a = &self.leak_a[range.clone()];
            let heater_w = &self.heater_w[range];
            let (i_mean, i_end) = (self.string_current_a[s], self.string_current_end_a[s]);
            let mut sums = StringSums::default();
            let mut string_v = 0.0;
            for k in 0..n {
                let mut state = GroupState {
                    soc: soc[k],
                    v1: v1[k],
                    temp_c: temp_c[k],
                    resistance_factor: rfac[k],
                    ocv: ocv[k],
                };
                let (leak, heat_in) = if EXTRAS {
                    (leak_a[k], heater_w[k] + leak_a[k].max(0.0) * v_group[k])
                } else {
                    (0.0, 0.0)
                };
                let out = step_group(
                    d,
                    ambient_term,
                    &mut state,
                    inv_capacity[k],
                    r0[k],
                    r1[k],
                    i_mean,
                    i_end,
                    leak,
                    heat_in,
                );
                soc[k] = state.soc;
                v1[k] = state.v1;
                temp_c[k] = state.temp_c;
                rfac[k] = state.resistance_factor;
                ocv[k] = state.ocv;
                v_group[k] = out.v_term;
                heat_w += out.heat_w;
                string_v += out.v_term;
                let r0_t = r0[k] * state.resistance_factor;
                let r1_t = r1[k] * state.resistance_factor;
                sums.ocv += state.ocv;
                sums.v1 += state.v1;
                sums.r0 += r0_t;
                sums.r1 += r1_t;
                if EXTRAS {
                    sums.leak_r0 += leak * r0_t;
                    sums.leak_r1 += leak * r1_t;
                }
            }
            self.sums[s] = sums;
            voltage_sum += string_v;
        }
        self.sums_stale = false;
        (heat_w, voltage_sum)
    }

    /// Takes the per-string sums from the present state.
    fn refresh_sums(&mut self) {
        let n = self.groups_per_string;
        for (s, sums) in self.sums.iter_mut().enumerate() {
            let mut acc = StringSums::default();
            for g in s * n..(s + 1) * n {
                let r0_t = self.r0[g] * self.resistance_factor[g];
                let r1_t = self.r1[g] * self.resistance_factor[g];
                acc.ocv += self.ocv[g];
                acc.v1 += self.v1[g];
                acc.r0 += r0_t;
                acc.r1 += r1_t;
                acc.leak_r0 += self.leak_a[g] * r0_t;
                acc.leak_r1 += self.leak_a[g] * r1_t;
            }
            *sums = acc;
        }
        self.sums_stale = false;
    }

    /// Sum of the group voltages of each string, averaged over the strings (0 without groups).
    fn mean_string_voltage(&self) -> f64 {
        if self.strings == 0 {
            return 0.0;
        }
        self.v_group.iter().sum::<f64>() / self.strings as f64
    }

    /// Coil command to a contactor. A welded contactor that is closed stays closed.
    pub fn set_contactor(&mut self, id: ContactorId, closed: bool) {
        self.contactors.command(id, closed);
    }

    /// The contactor's actual position.
    pub fn contactor_closed(&self, id: ContactorId) -> bool {
        self.contactors.is_closed(id)
    }

    /// Welds a contactor: if closed it stays closed; if open, it closes on the next close
    /// command and then stays closed.
    pub fn weld(&mut self, id: ContactorId) {
        self.contactors.weld(id);
    }

    /// Negative and positive mains actually closed.
    pub fn connected(&self) -> bool {
        self.contactors.connected()
    }

    /// True pack current, mean over the last step, A (+ charge).
    pub fn current_a(&self) -> f64 {
        self.current_a
    }

    /// Mean current of each string over the last step, A (+ charge).
    pub fn string_currents_a(&self) -> &[f64] {
        &self.string_current_a
    }

    /// Pack terminal voltage on the battery side of the contactors, at the present current, V.
    /// With several strings, the mean of the strings' voltages (they differ by microvolts).
    pub fn pack_voltage_v(&self) -> f64 {
        self.pack_voltage_v
    }

    /// Inverter DC-link voltage, V.
    pub fn bus_voltage_v(&self) -> f64 {
        self.bus.voltage_v
    }

    /// How many steps the plant has taken. The group voltages, temperatures and SoCs, the
    /// currents and the pack voltage change only when this does, so a reader can keep what it
    /// derived from them until then.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Series groups in total (`strings × modules × series_per_module`).
    pub fn group_count(&self) -> usize {
        self.soc.len()
    }

    /// Terminal voltage of every group at the present current, V (string-major, then module,
    /// then group).
    pub fn group_voltages(&self) -> &[f64] {
        &self.v_group
    }

    /// Temperature of every group, °C.
    pub fn group_temps_c(&self) -> &[f64] {
        &self.temp_c
    }

    /// Capacity of one group at 25 °C as built (chemistry, spread and outliers), Ah; `None`
    /// for a group that does not exist.
    pub fn group_capacity_ah(&self, group: usize) -> Option<f64> {
        self.inv_capacity.get(group).map(|inv| 1.0 / (inv * HOUR_S))
    }

    /// Series (R0) and RC-pair (R1) resistance of one group at 25 °C as built, Ω; `None` for
    /// a group that does not exist.
    pub fn group_resistances_ohm(&self, group: usize) -> Option<(f64, f64)> {
        Some((*self.r0.get(group)?, *self.r1.get(group)?))
    }

    /// State of charge of every group, 0..1 (can leave that range when over-charged or
    /// over-discharged).
    pub fn group_socs(&self) -> &[f64] {
        &self.soc
    }

    /// Clears `out`, then appends `sensors_per_module` readings per module (string-major, then
    /// module). Sensor k of a module reads the mean temperature of groups
    /// `k n / s .. (k + 1) n / s` of that module (n groups, s sensors; at least one group each).
    /// Modules without groups read the ambient temperature.
    pub fn sensor_temps_c(&self, out: &mut Vec<f64>) {
        out.clear();
        let (n, sensors) = (self.series_per_module, self.sensors_per_module);
        if n == 0 {
            out.resize(self.sensor_count(), self.ambient_c);
            return;
        }
        debug_assert_eq!(self.sensor_groups.len(), sensors);
        out.reserve(self.sensor_count());
        for module in self.temp_c.chunks_exact(n) {
            for &(start, end) in &self.sensor_groups {
                let share = &module[start..end];
                out.push(share.iter().sum::<f64>() / share.len() as f64);
            }
        }
    }

    /// Temperature sensors in total (`strings × modules × sensors_per_module`).
    pub fn sensor_count(&self) -> usize {
        self.strings * self.modules * self.sensors_per_module
    }

    /// Sets the ambient temperature, °C (non-finite: ignored).
    pub fn set_ambient_c(&mut self, c: f64) {
        if c.is_finite() {
            self.ambient_c = c;
        }
    }

    /// The ambient temperature, °C.
    pub fn ambient_c(&self) -> f64 {
        self.ambient_c
    }

    /// Puts a short of `ohms` across the bus, or removes it (`None`). NaN: ignored.
    pub fn set_bus_short(&mut self, ohms: Option<f64>) {
        self.bus.set_short(ohms);
    }

    /// Extra discharge current drawn at the terminals of one group (a balancing bleed, an
    /// internal short), A; its power (current × group voltage) heats the group. Negative values
    /// charge the group (without heating it). Out-of-range group or non-finite current: ignored.
    pub fn set_group_leak_a(&mut self, group: usize, amps: f64) {
        if !amps.is_finite() {
            return;
        }
        if let Some(leak) = self.fault_leak_a.get_mut(group) {
            *leak = amps.clamp(-MAX_CURRENT_A, MAX_CURRENT_A);
            // Without a bleed the leak is stored bit for bit as given, so runs that never
            // balance give the same traces as before the bleed existed.
            let bleed = self.bleed_a[group];
            self.leak_a[group] = if bleed == 0.0 { *leak } else { *leak + bleed };
            self.sums_stale = true;
            self.update_extras();
        }
    }

    /// Balancing bleed current drawn at the terminals of one group (a module board's balance
    /// resistor), A. It is integrated exactly like [`Plant::set_group_leak_a`], its power heats
    /// the group the same way, and it adds to any leak set there instead of replacing it.
    /// Out-of-range group or non-finite current: ignored.
    pub fn set_group_bleed_a(&mut self, group: usize, amps: f64) {
        if !amps.is_finite() {
            return;
        }
        if let Some(bleed) = self.bleed_a.get_mut(group) {
            *bleed = amps.clamp(-MAX_CURRENT_A, MAX_CURRENT_A);
            let leak = self.fault_leak_a[group];
            self.leak_a[group] = if *bleed == 0.0 { leak } else { leak + *bleed };
            self.sums_stale = true;
            self.update_extras();
        }
    }

    /// Extra heat into one group, W (negative: cooling). Out-of-range group or non-finite power:
    /// ignored.
    pub fn set_group_heater_w(&mut self, group: usize, watts: f64) {
        if !watts.is_finite() {
            return;
        }
        if let Some(heater) = self.heater_w.get_mut(group) {
            *heater = watts.clamp(-MAX_POWER_W, MAX_POWER_W);
            self.update_extras();
        }
    }

    /// Notes whether any group has a leak or a heater (the group loop skips them otherwise).
    fn update_extras(&mut self) {
        self.extras_active = self.leak_a.iter().chain(&self.heater_w).any(|x| *x != 0.0);
    }

    /// Energy through the pack terminals and heat made inside, since [`Plant::new`].
    pub fn energy(&self) -> Energy {
        self.energy
    }

    /// Mean state of charge of the groups (0 without groups).
    pub fn mean_soc(&self) -> f64 {
        if self.soc.is_empty() {
            return 0.0;
        }
        self.soc.iter().sum::<f64>() / self.soc.len() as f64
    }
}
