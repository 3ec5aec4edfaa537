//! The equivalent circuit of one series group: OCV(SoC, T) + R0 + one RC pair, capacity,
//! self-discharge, coulombic efficiency, and a lumped thermal mass. [`Cell`] is one group on its
//! own (for fitting against measured data); the pack runs the same [`step_group`] over its
//! groups.

use super::ocv::Tables;
use super::{CellParams, Chemistry};

/// Seconds per day.
const DAY_S: f64 = 86_400.0;
/// A self-discharge of 2 % of capacity per month (30 days), a typical figure for Li-ion cells
/// (NCA and LFP) at room temperature, as a fraction per day.
const SELF_DISCHARGE_2_PCT_PER_MONTH: f64 = 0.02 / 30.0;

impl CellParams {
    /// One 74P group of a Tesla Model S module (74 Panasonic NCR18650-class NCA cells).
    ///
    /// - Capacity 233 Ah (module rating; 74 × 3.15 Ah).
    /// - R0, R1 and tau are the fitted [`CellParams::pan18650pf`] cell (at 1 s resolution)
    ///   divided by 74: R0 = 31.24 mΩ / 74 = 0.42 mΩ, R1 = 29.91 mΩ / 74 = 0.40 mΩ, tau = 31 s.
    ///   The resistance after a 10 s pulse is then 0.53 mΩ, against 0.35 mΩ (100 ms) and
    ///   0.57 mΩ (10 s) from the cell's pulse data divided by 74. Interconnects are not included.
    /// - Heat capacity 3.2 kJ/K (74 cells × 45.6 g × 0.95 J/(g K)).
    /// - Ambient conductance 1.0 W/K: natural convection plus radiation, about 10 W/(m² K) over
    ///   the 0.53 m² surface of a module, shared by its 6 groups (thermal time constant 53 min).
    /// - Self-discharge 2 %/month, coulombic efficiency 0.999.
    pub fn tesla_group() -> CellParams {
        CellParams {
            chemistry: Chemistry::Nca,
            capacity_ah: 233.0,
            r0_ohm: PAN18650PF_R0_OHM / 74.0,
            r1_ohm: PAN18650PF_R1_OHM / 74.0,
            tau1_s: PAN18650PF_TAU1_S,
            self_discharge_per_day: SELF_DISCHARGE_2_PCT_PER_MONTH,
            coulombic_efficiency: 0.999,
            heat_capacity_j_per_k: 3200.0,
            ambient_conductance_w_per_k: 1.0,
        }
    }

    /// One prismatic LFP cell (rack and home batteries) of `capacity_ah` (non-finite or
    /// non-positive capacities give a 100 Ah cell).
    ///
    /// Order-of-magnitude catalogue figures, not fitted to data:
    /// - R0 = 0.5 mΩ × (100 Ah / capacity), R1 = 0.3 mΩ × (100 Ah / capacity), tau = 30 s
    ///   (a 100 Ah prismatic cell: about 0.8 mΩ after 10–30 s; resistance scales inversely with
    ///   electrode area, i.e. capacity).
    /// - Mass 19.4 g/Ah (about 165 Wh/kg at 3.2 V), specific heat 1000 J/(kg K): heat capacity
    ///   19.4 J/K per Ah (1.94 kJ/K for 100 Ah).
    /// - Ambient conductance 0.23 W/K × (capacity / 100 Ah)^(2/3): about 10 W/(m² K) over the
    ///   30 % of a 100 Ah cell's 0.076 m² surface that is exposed in a pack, scaled with surface
    ///   (thermal time constant about 2.3 h at 100 Ah).
    /// - Self-discharge 2 %/month, coulombic efficiency 0.999.
    pub fn lfp_cell(capacity_ah: f64) -> CellParams {
        let capacity_ah =
            if capacity_ah.is_finite() && capacity_ah > 0.0 { capacity_ah } else { 100.0 };
        let scale = 100.0 / capacity_ah;
        CellParams {
            chemistry: Chemistry::Lfp,
            capacity_ah,
            r0_ohm: 0.5e-3 * scale,
            r1_ohm: 0.3e-3 * scale,
            tau1_s: 30.0,
            self_discharge_per_day: SELF_DISCHARGE_2_PCT_PER_MONTH,
            coulombic_efficiency: 0.999,
            heat_capacity_j_per_k: 19.4 * capacity_ah,
            ambient_conductance_w_per_k: 0.23 * libm::pow(capacity_ah / 100.0, 2.0 / 3.0),
        }
    }

    /// One Panasonic NCR18650PF cell, fitted to the measured 25 °C drive cycle
    /// (`pan18650pf_25C_Cycle_1_1s.csv`, Kollmeyer, CC-BY-4.0).
    ///
    /// How: this model (the NCA table, Arrhenius factor, thermal model below, starting at the
    /// measured 21.8 °C in 25 °C ambient, from SoC 1 at the start of the cycle), driven with the
    /// measured current at 1 s steps; R0, R1, tau and capacity by nonlinear least squares on the
    /// terminal voltage where the SoC is above 20 % (SciPy `least_squares`, offline). The OCV
    /// table is not fitted: it is the C/20 discharge curve plus the C/20 overpotential computed
    /// with the fitted R0 + R1. The thermal figures matter little: starting at 25 °C, or
    /// without the resistance's temperature dependence, the RMS error changes by under 1 mV.
    /// - R0 = 31.24 mΩ at 25 °C (pulse data: 25.5 mΩ at 100 ms; at 1 s steps R0 also holds the
    ///   sub-second dynamics), R1 = 29.91 mΩ, tau = 31.0 s (10 s pulse resistance 39.5 mΩ,
    ///   pulse data 41.7 mΩ).
    /// - Capacity 2.756 Ah (datasheet: 2.9 Ah typical, 2.75 Ah minimum).
    /// - Heat capacity 45 J/K (48 g × 0.95 J/(g K)); ambient conductance 0.0875 W/K fitted to
    ///   the measured cell temperature with the heat capacity fixed (0.67 K RMS).
    /// - Self-discharge 2 %/month, coulombic efficiency 0.999.
    ///
    /// Voltage RMS error over the cycle (SoC 20–100 %): about 16 mV; the largest errors are at
    /// the 6 C pulses, where a linear 1-RC model cannot follow the cell.
    pub fn pan18650pf() -> CellParams {
        CellParams {
            chemistry: Chemistry::Nca,
            capacity_ah: 2.756,
            r0_ohm: PAN18650PF_R0_OHM,
            r1_ohm: PAN18650PF_R1_OHM,
            tau1_s: PAN18650PF_TAU1_S,
            self_discharge_per_day: SELF_DISCHARGE_2_PCT_PER_MONTH,
            coulombic_efficiency: 0.999,
            heat_capacity_j_per_k: 45.0,
            ambient_conductance_w_per_k: 0.0875,
        }
    }

    /// The same parameters with every non-finite or out-of-range figure replaced by a usable
    /// one, so that the model never divides by zero or produces NaN.
    pub(crate) fn sanitized(&self) -> CellParams {
        let positive = |x: f64, min: f64, default: f64| {
            if x.is_finite() { x.max(min) } else { default }
        };
        let non_negative = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
        CellParams {
            chemistry: self.chemistry,
            capacity_ah: positive(self.capacity_ah, 1e-6, 1.0),
            r0_ohm: non_negative(self.r0_ohm),
            r1_ohm: positive(self.r1_ohm, R_MIN_OHM, R_MIN_OHM),
            tau1_s: positive(self.tau1_s, 1e-6, 1.0),
            self_discharge_per_day: non_negative(self.self_discharge_per_day),
            coulombic_efficiency: if self.coulombic_efficiency.is_finite() {
                self.coulombic_efficiency.clamp(0.0, 1.0)
            } else {
                1.0
            },
            heat_capacity_j_per_k: positive(self.heat_capacity_j_per_k, 1e-6, 1.0),
            ambient_conductance_w_per_k: non_negative(self.ambient_conductance_w_per_k),
        }
    }
}

/// Fitted NCR18650PF series resistance at 25 °C, Ω (see [`CellParams::pan18650pf`]).
const PAN18650PF_R0_OHM: f64 = 31.24e-3;
/// Fitted NCR18650PF RC-pair resistance at 25 °C, Ω.
const PAN18650PF_R1_OHM: f64 = 29.91e-3;
/// Fitted NCR18650PF RC-pair time constant, s.
const PAN18650PF_TAU1_S: f64 = 31.0;

/// Smallest resistance used where the model divides by one, Ω.
pub(crate) const R_MIN_OHM: f64 = 1e-9;

/// Constants shared by all groups of a plant and the coefficients of the last time step, which
/// are recomputed only when the step length changes (so steady stepping costs no `exp` per
/// group).
#[derive(Clone, Debug)]
pub(crate) struct Dynamics {
    pub(crate) tables: Tables,
    tau1_s: f64,
    self_discharge_per_s: f64,
    efficiency: f64,
    heat_capacity: f64,
    conductance: f64,
    /// Step length the coefficients below belong to (NaN before the first step).
    dt: f64,
    /// exp(−dt/tau).
    pub(crate) a: f64,
    /// 1 − a.
    pub(crate) one_minus_a: f64,
    /// tau (1 − a) / dt: for the exact mean of v1² over the step.
    m1: f64,
    /// tau (1 − a²) / (2 dt).
    m2: f64,
    /// exp(−dt G / C): thermal relaxation over the step.
    b: f64,
    /// (1 − b) / G (dt / C without conductance): temperature rise per watt over the step.
    c1: f64,
    /// Self-discharge over the step, SoC.
    self_discharge_step: f64,
    /// dt × coulombic efficiency.
    dt_eta: f64,
}

impl Dynamics {
    /// `params` must be sanitised.
    pub(crate) fn new(params: &CellParams) -> Dynamics {
        Dynamics {
            tables: Tables::new(params.chemistry),
            tau1_s: params.tau1_s,
            self_discharge_per_s: params.self_discharge_per_day / DAY_S,
            efficiency: params.coulombic_efficiency,
            heat_capacity: params.heat_capacity_j_per_k,
            conductance: params.ambient_conductance_w_per_k,
            dt: f64::NAN,
            a: 1.0,
            one_minus_a: 0.0,
            m1: 1.0,
            m2: 1.0,
            b: 1.0,
            c1: 0.0,
            self_discharge_step: 0.0,
            dt_eta: 0.0,
        }
    }

    /// Makes the step coefficients belong to `dt` (> 0, finite).
    #[inline]
    pub(crate) fn prepare(&mut self, dt: f64) {
        if dt == self.dt {
            return;
        }
        self.dt = dt;
        let x = dt / self.tau1_s;
        self.a = libm::exp(-x);
        self.one_minus_a = -libm::expm1(-x);
        if x > 1e-9 {
            self.m1 = self.one_minus_a / x;
            self.m2 = self.one_minus_a * (1.0 + self.a) / (2.0 * x);
        } else {
            self.m1 = 1.0 - 0.5 * x;
            self.m2 = 1.0 - x;
        }
        if self.conductance > 0.0 {
            let y = dt * self.conductance / self.heat_capacity;
            self.b = libm::exp(-y);
            self.c1 = -libm::expm1(-y) / self.conductance;
        } else {
            self.b = 1.0;
            self.c1 = dt / self.heat_capacity;
        }
        self.self_discharge_step = self.self_discharge_per_s * dt;
        self.dt_eta = dt * self.efficiency;
    }

    /// The ambient's share of the new temperature: `ambient × (1 − b)`.
    #[inline]
    pub(crate) fn ambient_term(&self, ambient_c: f64) -> f64 {
        ambient_c * (1.0 - self.b)
    }
}

/// The state of one group between steps. `resistance_factor` and `ocv` are functions of the
/// state (temperature, SoC), cached so that the next step and the pack's Thevenin sums need no
/// look-up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupState {
    pub(crate) soc: f64,
    pub(crate) v1: f64,
    pub(crate) temp_c: f64,
    pub(crate) resistance_factor: f64,
    pub(crate) ocv: f64,
}

impl GroupState {
    pub(crate) fn new(tables: &Tables, soc: f64, temp_c: f64) -> GroupState {
        GroupState {
            soc,
            v1: 0.0,
            temp_c,
            resistance_factor: tables.resistance_factor(temp_c),
            ocv: tables.ocv(soc, temp_c),
        }
    }
}

/// What a group step produces besides the new state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GroupStep {
    /// Terminal voltage at the end of the step, at the current `i_end`.
    pub(crate) v_term: f64,
    /// Heat made in the group, mean over the step, W.
    pub(crate) heat_w: f64,
}

/// Advances one group by the step `d` was prepared for.
///
/// - `i_mean`: mean group current over the step (+ charge), A; `i_end`: the current at the end
///   of the step (they differ only while the bus capacitor is charging), for the terminal
///   voltage.
/// - `leak_a`: extra discharge current drawn at the group terminals (bleed, internal short):
///   the cells carry `i − leak_a`.
/// - `heat_in_w`: heat from outside the equivalent circuit (heater, the leak's dissipation).
/// - `inv_capacity`: 1 / capacity in SoC per coulomb.
///
/// Equations (exact for a constant current over the step):
/// v1' = v1 a + i R1 (1 − a); SoC' = SoC + i dt η(i) / Q − self-discharge × dt;
/// heat = i² R0 + mean(v1²)/R1 + extra; T' = T b + T_amb (1 − b) + heat (1 − b)/G;
/// V = OCV(SoC', T') + i R0(T') + v1'. R0 and R1 use the temperature at the start of the step.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn step_group(
    d: &Dynamics,
    ambient_term: f64,
    s: &mut GroupState,
    inv_capacity: f64,
    r0: f64,
    r1: f64,
    i_mean: f64,
    i_end: f64,
    leak_a: f64,
    heat_in_w: f64,
) -> GroupStep {
    let i = i_mean - leak_a;
    let r0_t = r0 * s.resistance_factor;
    let r1_t = r1 * s.resistance_factor;
    // RC pair: v1 relaxes exponentially towards i R1.
    let v_inf = i * r1_t;
    let dv = s.v1 - v_inf;
    let heat_r1 = (v_inf * v_inf + 2.0 * v_inf * dv * d.m1 + dv * dv * d.m2) / r1_t;
    s.v1 = s.v1 * d.a + v_inf * d.one_minus_a;
    // Charge: the efficiency applies to charging; self-discharge stops at empty.
    let dt_eff = if i > 0.0 { d.dt_eta } else { d.dt };
    let self_discharge = if s.soc > 0.0 { d.self_discharge_step } else { 0.0 };
    s.soc += i * dt_eff * inv_capacity - self_discharge;
    // Lumped thermal mass, exact exponential relaxation for a constant heat over the step.
    let heat_w = i * i * r0_t + heat_r1 + heat_in_w;
    s.temp_c = s.temp_c * d.b + ambient_term + heat_w * d.c1;
    s.resistance_factor = d.tables.resistance_factor(s.temp_c);
    s.ocv = d.tables.ocv(s.soc, s.temp_c);
    let v_term = s.ocv + (i_end - leak_a) * r0 * s.resistance_factor + s.v1;
    GroupStep { v_term, heat_w }
}

/// One cell (or group) on its own, driven by a current: the same equations as a pack group.
/// For fitting and checking the model against measured data.
#[derive(Clone, Debug)]
pub struct Cell {
    params: CellParams,
    dynamics: Dynamics,
    state: GroupState,
    inv_capacity: f64,
    ambient_c: f64,
    current_a: f64,
    v_term: f64,
}

impl Cell {
    /// A cell at rest at `soc` (0..1) and `temp_c`, in ambient air at `temp_c`. Non-finite
    /// arguments are taken as 0 (SoC) and 25 °C.
    pub fn new(params: CellParams, soc: f64, temp_c: f64) -> Cell {
        let params = params.sanitized();
        let soc = if soc.is_finite() { soc } else { 0.0 };
        let temp_c = if temp_c.is_finite() { temp_c } else { 25.0 };
        let dynamics = Dynamics::new(&params);
        let state = GroupState::new(&dynamics.tables, soc, temp_c);
        Cell {
            params,
            inv_capacity: 1.0 / (params.capacity_ah * 3600.0),
            dynamics,
            ambient_c: temp_c,
            current_a: 0.0,
            v_term: state.ocv,
            state,
        }
    }

    /// Advances by `dt_s` at a constant `current_a` (+ charge). `dt_s` ≤ 0 or non-finite: no-op;
    /// a non-finite current counts as 0.
    pub fn step(&mut self, dt_s: f64, current_a: f64) {
        if !(dt_s > 0.0 && dt_s.is_finite()) {
            return;
        }
        let current_a = if current_a.is_finite() { current_a.clamp(-1e9, 1e9) } else { 0.0 };
        self.dynamics.prepare(dt_s);
        let ambient_term = self.dynamics.ambient_term(self.ambient_c);
        let out = step_group(
            &self.dynamics,
            ambient_term,
            &mut self.state,
            self.inv_capacity,
            self.params.r0_ohm,
            self.params.r1_ohm,
            current_a,
            current_a,
            0.0,
            0.0,
        );
        self.current_a = current_a;
        self.v_term = out.v_term;
    }

    /// Terminal voltage at the current of the last step, V.
    pub fn terminal_voltage_v(&self) -> f64 {
        self.v_term
    }

    /// State of charge, 0..1 (can leave that range when over-charged or over-discharged).
    pub fn soc(&self) -> f64 {
        self.state.soc
    }

    /// Temperature, °C.
    pub fn temp_c(&self) -> f64 {
        self.state.temp_c
    }

    /// Open-circuit voltage at the present SoC and temperature, V.
    pub fn ocv_v(&self) -> f64 {
        self.state.ocv
    }

    /// Sets the ambient temperature (non-finite: ignored).
    pub fn set_ambient_c(&mut self, ambient_c: f64) {
        if ambient_c.is_finite() {
            self.ambient_c = ambient_c;
        }
    }

    /// The (sanitised) parameters.
    pub fn params(&self) -> &CellParams {
        &self.params
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_are_sane() {
        for p in [CellParams::tesla_group(), CellParams::lfp_cell(100.0), CellParams::pan18650pf()]
        {
            assert_eq!(p, p.sanitized());
            assert!(p.heat_capacity_j_per_k / p.ambient_conductance_w_per_k > 500.0);
        }
        let lfp = CellParams::lfp_cell(280.0);
        assert!((lfp.r0_ohm - 0.5e-3 * 100.0 / 280.0).abs() < 1e-15);
        assert_eq!(CellParams::lfp_cell(f64::NAN).capacity_ah, 100.0);
        assert_eq!(CellParams::lfp_cell(-5.0).capacity_ah, 100.0);
    }

    #[test]
    fn rc_step_response_is_exact() {
        let p = CellParams::pan18650pf();
        let mut cell = Cell::new(p, 0.5, 25.0);
        let i = -2.0;
        // Freeze the resistance's temperature dependence by stepping briefly.
        cell.step(p.tau1_s, i);
        let v_after_tau = cell.terminal_voltage_v();
        let mut fine = Cell::new(p, 0.5, 25.0);
        for _ in 0..1000 {
            fine.step(p.tau1_s / 1000.0, i);
        }
        assert!((v_after_tau - fine.terminal_voltage_v()).abs() < 1e-4);
        // v1 reached (1 − e⁻¹) of i R1 (temperature barely moved in 31 s).
        let v1 = cell.state.v1;
        let expected = i * p.r1_ohm * (1.0 - libm::exp(-1.0));
        assert!((v1 / expected - 1.0).abs() < 0.01, "{v1} vs {expected}");
    }

    #[test]
    fn cell_ignores_bad_input() {
        let mut cell = Cell::new(CellParams::tesla_group(), f64::NAN, f64::INFINITY);
        assert_eq!(cell.soc(), 0.0);
        assert_eq!(cell.temp_c(), 25.0);
        let before = cell.terminal_voltage_v();
        cell.step(0.0, 10.0);
        cell.step(-1.0, 10.0);
        cell.step(f64::NAN, 10.0);
        cell.step(f64::INFINITY, 10.0);
        assert_eq!(cell.terminal_voltage_v(), before);
        cell.step(1.0, f64::NAN);
        assert!(cell.terminal_voltage_v().is_finite());
    }
}
