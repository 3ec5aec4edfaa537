//! The measurement front end: what a hardware adapter would read from its sensors, turned into
//! core inputs with their sample times. Noise comes from the seed; silenced sensors and
//! drifting readings are how fault injection reaches the core.

use cellwarden_core::{
    ContactorId, DeciCelsius, FeedbackConfig, Input, Instant, MilliAmps, MilliVolts,
};

use super::boards::Boards;
use crate::plant::{CurrentSensor, Plant};
use crate::rng::SimRng;
use crate::scenario::{SensorName, SensorSection};

/// Which measurements still arrive.
#[derive(Clone, Copy, Debug, Default)]
struct Silenced {
    cells: bool,
    temperatures: bool,
    current: bool,
    pack_voltage: bool,
    bus_voltage: bool,
}

/// The sensors between the plant and the core.
#[derive(Debug)]
pub struct FrontEnd {
    cell_noise_mv: f64,
    temperature_noise_c: f64,
    cell_rng: SimRng,
    temperature_rng: SimRng,
    current: CurrentSensor,
    feedback: FeedbackConfig,
    silenced: Silenced,
    /// Per group: reading offset (mV) and its drift rate (mV per µs), set by fault injection.
    drift_mv: Vec<f64>,
    drift_rate_mv_per_us: Vec<f64>,
    /// Some rate is not zero.
    drifting: bool,
    last_drift_update: Instant,
    hardware_fault: bool,
    /// The hardware fault line is not delivered (`sensor_silent`, `hardware_fault_line`).
    hardware_line_silent: bool,
    /// Cells and temperatures come from module boards, not from this front end.
    boards: bool,
    /// Scratch buffers, reused so a measurement allocates nothing.
    cells_mv: Vec<MilliVolts>,
    temps_c: Vec<f64>,
    temps_dc: Vec<DeciCelsius>,
    /// The last current reading, for the trace.
    pub last_current_a: f64,
    /// The plant step the board inputs were last taken at, while no reading drifts.
    board_inputs_at: Option<u64>,
}

impl FrontEnd {
    /// Sensors for `plant`, with noise streams from `seed`.
    pub fn new(
        sensors: &SensorSection,
        feedback: FeedbackConfig,
        plant: &Plant,
        seed: u64,
    ) -> Self {
        let groups = plant.group_count();
        FrontEnd {
            cell_noise_mv: sensors.cell_noise_mv,
            temperature_noise_c: sensors.temperature_noise_c,
            cell_rng: SimRng::stream(seed, "sensors.cells"),
            temperature_rng: SimRng::stream(seed, "sensors.temperatures"),
            current: CurrentSensor::new(
                sensors.current_offset_a,
                sensors.current_gain_pct / 100.0,
                sensors.current_noise_a,
                SimRng::stream(seed, "sensors.current"),
            ),
            feedback,
            silenced: Silenced::default(),
            drift_mv: vec![0.0; groups],
            drift_rate_mv_per_us: vec![0.0; groups],
            drifting: false,
            last_drift_update: Instant::from_micros(0),
            hardware_fault: false,
            hardware_line_silent: false,
            boards: false,
            cells_mv: Vec::with_capacity(groups),
            temps_c: Vec::new(),
            temps_dc: Vec::new(),
            last_current_a: 0.0,
            board_inputs_at: None,
        }
    }

    /// Stops (or resumes) delivering a measurement.
    pub fn set_silenced(&mut self, sensor: SensorName, silent: bool) {
        let s = &mut self.silenced;
        match sensor {
            SensorName::Cells => s.cells = silent,
            SensorName::Temperatures => s.temperatures = silent,
            SensorName::Current => s.current = silent,
            SensorName::PackVoltage => s.pack_voltage = silent,
            SensorName::BusVoltage => s.bus_voltage = silent,
            SensorName::HardwareFaultLine => self.hardware_line_silent = silent,
            SensorName::All => {
                *s = Silenced {
                    cells: silent,
                    temperatures: silent,
                    current: silent,
                    pack_voltage: silent,
                    bus_voltage: silent,
                }
            }
        }
    }

    /// The current sensor's offset changes.
    pub fn set_current_offset_a(&mut self, amps: f64) {
        self.current.set_offset_a(amps);
    }

    /// One group's reading starts drifting at this rate (from its present offset).
    pub fn set_drift(&mut self, now: Instant, group: usize, mv_per_min: f64) {
        self.advance_drift(now);
        if let Some(rate) = self.drift_rate_mv_per_us.get_mut(group) {
            *rate = mv_per_min / 60e6;
        }
        self.drifting = self.drift_rate_mv_per_us.iter().any(|r| *r != 0.0);
    }

    /// The hardware fault line changes.
    pub fn set_hardware_fault(&mut self, active: bool) {
        self.hardware_fault = active;
    }

    /// Whether a reading drifts with time, so that the boards' inputs change without a plant
    /// step.
    pub fn drifting(&self) -> bool {
        self.drifting
    }

    /// Cells and temperatures are measured by module boards from now on.
    pub fn use_boards(&mut self) {
        self.boards = true;
    }

    /// What the module boards' inputs see: each group's voltage with its sense drift, V, and
    /// each sensor's temperature, °C. Noise is left to the boards' own converters. Returns
    /// false, leaving the buffers as they are, when they already hold the inputs at `now`: the
    /// plant has not stepped since and no reading drifts.
    pub fn board_inputs(
        &mut self,
        now: Instant,
        plant: &Plant,
        cells_v: &mut Vec<f64>,
        temps_c: &mut Vec<f64>,
    ) -> bool {
        let drifting = self.drifting;
        if !drifting && self.board_inputs_at == Some(plant.steps()) {
            return false;
        }
        self.board_inputs_at = (!drifting).then_some(plant.steps());
        self.advance_drift(now);
        cells_v.clear();
        cells_v
            .extend(plant.group_voltages().iter().zip(&self.drift_mv).map(|(v, d)| v + d / 1000.0));
        plant.sensor_temps_c(temps_c);
        true
    }

    /// Reads every sensor at `now` and hands the readings of this cycle to `deliver` as one
    /// batch, in the order a real front end reads them (cells, temperatures, current, voltages,
    /// feedback, fault line). With module boards, their bridge decides what the hardware fault
    /// input says.
    pub fn measure(
        &mut self,
        now: Instant,
        plant: &Plant,
        boards: Option<&Boards>,
        deliver: &mut dyn FnMut(&[Input<'_>]),
    ) {
        let mut batch: Vec<Input<'_>> = Vec::with_capacity(9);
        self.advance_drift(now);
        let sampled_at = now;
        let cells = !self.silenced.cells && !self.boards;
        if cells {
            self.cells_mv.clear();
            for (i, v) in plant.group_voltages().iter().enumerate() {
                let noise = if self.cell_noise_mv > 0.0 {
                    self.cell_rng.normal() * self.cell_noise_mv
                } else {
                    0.0
                };
                let mv = v * 1000.0 + self.drift_mv.get(i).copied().unwrap_or(0.0) + noise;
                self.cells_mv.push(MilliVolts(to_i32(mv)));
            }
        }
        let temperatures = !self.silenced.temperatures && !self.boards;
        if temperatures {
            plant.sensor_temps_c(&mut self.temps_c);
            self.temps_dc.clear();
            for t in &self.temps_c {
                let noise = if self.temperature_noise_c > 0.0 {
                    self.temperature_rng.normal() * self.temperature_noise_c
                } else {
                    0.0
                };
                self.temps_dc.push(DeciCelsius(to_i32((t + noise) * 10.0)));
            }
        }
        if cells {
            batch.push(Input::CellVoltages { sampled_at, first: 0, mv: &self.cells_mv });
        }
        if temperatures {
            batch.push(Input::Temperatures { sampled_at, first: 0, dc: &self.temps_dc });
        }
        let measured = self.current.measure(plant.current_a());
        if !self.silenced.current {
            self.last_current_a = measured;
            batch.push(Input::Current { sampled_at, ma: MilliAmps(to_i32(measured * 1000.0)) });
        }
        if !self.silenced.pack_voltage {
            let mv = MilliVolts(to_i32(plant.pack_voltage_v() * 1000.0));
            batch.push(Input::PackVoltage { sampled_at, mv });
        }
        if !self.silenced.bus_voltage {
            let mv = MilliVolts(to_i32(plant.bus_voltage_v() * 1000.0));
            batch.push(Input::BusVoltage { sampled_at, mv });
        }
        for (id, has) in [
            (ContactorId::Negative, self.feedback.negative),
            (ContactorId::Precharge, self.feedback.precharge),
            (ContactorId::Positive, self.feedback.positive),
        ] {
            if has {
                let closed = plant.contactor_closed(id);
                batch.push(Input::ContactorFeedback { sampled_at, contactor: id, closed });
            }
        }
        if !self.hardware_line_silent {
            let line = self.hardware_fault;
            let active = boards.map_or(line, |b| b.hardware_fault(line));
            batch.push(Input::HardwareFault { sampled_at, active });
        }
        deliver(&batch);
    }

    fn advance_drift(&mut self, now: Instant) {
        let elapsed_us = now.saturating_since(self.last_drift_update).as_micros() as f64;
        self.last_drift_update = now;
        if !self.drifting {
            // Adding zero drift changes no offset.
            return;
        }
        for (offset, rate) in self.drift_mv.iter_mut().zip(&self.drift_rate_mv_per_us) {
            *offset += rate * elapsed_us;
        }
    }
}

/// Rounds to the nearest integer, saturating (an ADC reads its full scale, not garbage).
fn to_i32(x: f64) -> i32 {
    if x.is_nan() {
        0
    } else {
        crate::round::round(x).clamp(i32::MIN as f64, i32::MAX as f64) as i32
    }
}
