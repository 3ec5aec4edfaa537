//! The DC bus: contactors, precharge resistor, DC-link capacitor with its bleed resistor, an
//! optional short circuit across the bus and an optional external source that holds it up.
//!
//! The bus is one node: the capacitor C to the negative rail, the leakage conductance G (bleed
//! plus short) in parallel, the inverter's current source (only while both mains are closed),
//! the external source E_x behind R_x (always), and the pack's Thevenin source E behind a series
//! resistance R (the pack, plus the precharge resistor while only the precharge relay is
//! closed). For constant sources over a step the node equation
//! `C dV/dt = (E − V)/R + I_src + (E_x − V)/R_x − G V` is linear and solved exactly.

use cellwarden_core::ContactorId;

use super::BusParams;

/// The bus's electrical figures, sanitised, and its voltage.
#[derive(Clone, Debug)]
pub(crate) struct Bus {
    /// DC-link capacitance, F (0: none).
    pub(crate) capacitance_f: f64,
    /// Precharge resistor, Ω (≥ 0).
    pub(crate) precharge_ohm: f64,
    /// 1 / bleed resistor, S (0: no bleed resistor).
    pub(crate) bleed_s: f64,
    /// 1 / short-circuit resistance, S (0: no short).
    pub(crate) short_s: f64,
    /// 1 / the external source's resistance, S (0: no external source).
    source_s: f64,
    /// The external source's short-circuit current E_x / R_x, A.
    source_a: f64,
    /// Voltage across the DC link, V.
    pub(crate) voltage_v: f64,
}

/// Smallest short-circuit resistance, Ω (`Some(0.0)` is taken as this).
const SHORT_MIN_OHM: f64 = 1e-6;

impl Bus {
    pub(crate) fn new(params: &BusParams) -> Bus {
        let non_negative = |x: f64| if x.is_finite() { x.max(0.0) } else { 0.0 };
        let bleed_s = if params.bleed_ohm.is_finite() && params.bleed_ohm > 0.0 {
            1.0 / params.bleed_ohm
        } else {
            0.0
        };
        let mut bus = Bus {
            capacitance_f: non_negative(params.capacitance_f),
            precharge_ohm: non_negative(params.precharge_ohm),
            bleed_s,
            short_s: 0.0,
            source_s: 0.0,
            source_a: 0.0,
            voltage_v: 0.0,
        };
        bus.set_short(params.short_ohm);
        if let Some(source) = params.source {
            let usable = source.volts.is_finite() && source.ohms.is_finite() && source.ohms > 0.0;
            if usable {
                bus.source_s = 1.0 / source.ohms;
                bus.source_a = source.volts / source.ohms;
                // Held up before anything happens: the link starts at the source's voltage.
                bus.voltage_v = source.volts * bus.source_s / (bus.source_s + bus.leak_s());
            }
        }
        bus
    }

    /// Sets or removes the short. A NaN resistance is ignored; +∞ removes the short; resistances
    /// below 1 µΩ are taken as 1 µΩ.
    pub(crate) fn set_short(&mut self, ohms: Option<f64>) {
        match ohms {
            None => self.short_s = 0.0,
            Some(r) if r.is_nan() => {}
            Some(r) if r == f64::INFINITY => self.short_s = 0.0,
            Some(r) => self.short_s = 1.0 / r.max(SHORT_MIN_OHM),
        }
    }

    /// Bleed plus short conductance, S.
    pub(crate) fn leak_s(&self) -> f64 {
        self.bleed_s + self.short_s
    }

    /// The bus is cut off from the pack: it discharges through the bleed resistor and the
    /// short, towards what the external source (if any) holds it at.
    pub(crate) fn decay(&mut self, dt_s: f64) {
        let g = self.leak_s() + self.source_s;
        if g <= 0.0 {
            return;
        }
        let v_inf = self.source_a / g;
        self.voltage_v = if self.capacitance_f > 0.0 {
            v_inf + (self.voltage_v - v_inf) * libm::exp(-dt_s * g / self.capacitance_f)
        } else {
            v_inf
        };
    }

    /// Solves the node for one step with the source `e_v` behind `r_series_ohm` and the
    /// current `source_a` injected into the node; moves the bus voltage to the end of the step
    /// and returns the bus voltage averaged over the step.
    pub(crate) fn drive(&mut self, dt_s: f64, e_v: f64, r_series_ohm: f64, source_a: f64) -> f64 {
        let g_series = 1.0 / r_series_ohm;
        let g_total = g_series + self.leak_s() + self.source_s;
        let v_inf = (e_v * g_series + source_a + self.source_a) / g_total;
        let v0 = self.voltage_v;
        // decay = exp(−x), mean = (1 − exp(−x)) / x for x = dt / (C / G).
        let (decay, mean) = if self.capacitance_f > 0.0 {
            let x = dt_s * g_total / self.capacitance_f;
            if x > 700.0 {
                (0.0, 1.0 / x)
            } else if x > 1e-12 {
                (libm::exp(-x), -libm::expm1(-x) / x)
            } else {
                (1.0 - x, 1.0 - 0.5 * x)
            }
        } else {
            (0.0, 0.0)
        };
        self.voltage_v = v_inf + (v0 - v_inf) * decay;
        v_inf + (v0 - v_inf) * mean
    }
}

/// The three contactors' actual positions and which of them are welded.
#[derive(Clone, Debug, Default)]
pub(crate) struct Contactors {
    closed: [bool; 3],
    welded: [bool; 3],
}

impl Contactors {
    /// A coil command. A welded contactor that is closed stays closed.
    pub(crate) fn command(&mut self, id: ContactorId, closed: bool) {
        let k = id.index();
        if !(self.welded[k] && self.closed[k]) {
            self.closed[k] = closed;
        }
    }

    /// Welds the contactor: from the moment it is (or next gets) closed it stays closed.
    pub(crate) fn weld(&mut self, id: ContactorId) {
        self.welded[id.index()] = true;
    }

    pub(crate) fn is_closed(&self, id: ContactorId) -> bool {
        self.closed[id.index()]
    }

    /// Negative and positive mains closed: the pack is on the bus.
    pub(crate) fn connected(&self) -> bool {
        self.is_closed(ContactorId::Negative) && self.is_closed(ContactorId::Positive)
    }

    /// Negative main and precharge relay closed, positive main open.
    pub(crate) fn precharging(&self) -> bool {
        self.is_closed(ContactorId::Negative)
            && self.is_closed(ContactorId::Precharge)
            && !self.is_closed(ContactorId::Positive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bus() -> Bus {
        Bus::new(&BusParams {
            capacitance_f: 1e-3,
            precharge_ohm: 50.0,
            bleed_ohm: 100e3,
            short_ohm: None,
            source: None,
        })
    }

    #[test]
    fn node_solution_matches_fine_steps() {
        let mut coarse = bus();
        let mut fine = bus();
        let mean = coarse.drive(0.05, 400.0, 50.0, 0.0);
        let mut sum = 0.0;
        for _ in 0..10_000 {
            sum += fine.drive(0.05 / 10_000.0, 400.0, 50.0, 0.0);
        }
        assert!((coarse.voltage_v - fine.voltage_v).abs() < 1e-9);
        assert!((mean - sum / 10_000.0).abs() < 1e-6);
        // After one time constant: 1 − e⁻¹ of the way (the bleed takes 0.05 %).
        let mut b = bus();
        b.drive(50.0 * 1e-3, 400.0, 50.0, 0.0);
        assert!((b.voltage_v / 400.0 - (1.0 - libm::exp(-1.0))).abs() < 1e-3);
    }

    #[test]
    fn decay_and_short_settings() {
        let mut b = bus();
        b.voltage_v = 400.0;
        b.decay(100.0); // tau = 100 s
        assert!((b.voltage_v - 400.0 * libm::exp(-1.0)).abs() < 1e-9);
        b.set_short(Some(0.0));
        assert_eq!(b.short_s, 1e6);
        b.set_short(Some(f64::NAN));
        assert_eq!(b.short_s, 1e6);
        b.set_short(Some(f64::INFINITY));
        assert_eq!(b.short_s, 0.0);
        b.set_short(Some(0.1));
        b.decay(2e-3); // tau = 0.1 ms
        assert!(b.voltage_v < 1e-3);
    }

    #[test]
    fn an_external_source_holds_the_link_up() {
        use super::super::BusSource;
        let params = |volts, ohms| BusParams {
            capacitance_f: 1e-3,
            precharge_ohm: 50.0,
            bleed_ohm: 100e3,
            short_ohm: None,
            source: Some(BusSource { volts, ohms }),
        };
        let mut b = Bus::new(&params(400.0, 1.0));
        // It starts held: 400 V divided between 1 ohm and the 100 kohm bleed.
        let held = 400.0 * 100e3 / (100e3 + 1.0);
        assert!((b.voltage_v - held).abs() < 1e-9);
        b.decay(100.0);
        assert!((b.voltage_v - held).abs() < 1e-9, "cut off from the pack, it stays up");
        b.voltage_v = 0.0;
        b.decay(1e-3); // tau = 1 ms through the source
        assert!((b.voltage_v - held * (1.0 - libm::exp(-1.0))).abs() < 0.01);
        // Driven by a pack at 390 V behind 1 ohm, the node settles half-way.
        b.drive(1.0, 390.0, 1.0, 0.0);
        assert!((b.voltage_v - 395.0).abs() < 0.01, "{}", b.voltage_v);
        // A source that cannot be used is left out.
        assert_eq!(Bus::new(&params(f64::NAN, 1.0)).source_s, 0.0);
        assert_eq!(Bus::new(&params(400.0, 0.0)).voltage_v, 0.0);
    }

    #[test]
    fn welded_contactor_sticks_once_closed() {
        let mut c = Contactors::default();
        c.weld(ContactorId::Positive);
        assert!(!c.is_closed(ContactorId::Positive));
        c.command(ContactorId::Positive, true);
        c.command(ContactorId::Positive, false);
        assert!(c.is_closed(ContactorId::Positive));
        c.command(ContactorId::Negative, true);
        assert!(c.connected());
        c.command(ContactorId::Negative, false);
        assert!(!c.connected());
    }
}
