//! The `[plant]`, `[sensors]` and `[inverter]` sections.

use cellwarden_core::Config;

use super::system::size_field;
use super::{Checked, Ctx, TEMPERATURE_RANGE, Want};
use crate::plant::{BusParams, CellParams, PlantSpec, Spread};
use crate::scenario::schema::{PresetName, ScenarioFile, SystemSpec};

impl Ctx<'_> {
    pub(super) fn plant(
        &self,
        file: &ScenarioFile,
        system: &SystemSpec,
        config: &Config,
    ) -> Checked<PlantSpec> {
        let p = &file.plant;
        let (mut cell, series_per_module, modules, sensors_per_module) = match system.preset {
            PresetName::TeslaModelS => {
                (CellParams::tesla_group(), 6u16, system.modules.unwrap_or(1), 2u16)
            }
            PresetName::Lfp16s => {
                (CellParams::lfp_cell(f64::from(system.capacity_ah.unwrap_or(1))), 16, 1, 4)
            }
        };
        let c = &p.cell;
        if let Some(v) = c.capacity_ah {
            cell.capacity_ah = self.real("plant.cell.capacity_ah", v, Want::Positive)?;
        }
        if let Some(v) = c.r0_mohm {
            cell.r0_ohm = self.real("plant.cell.r0_mohm", v, Want::Positive)? / 1_000.0;
        }
        if let Some(v) = c.r1_mohm {
            cell.r1_ohm = self.real("plant.cell.r1_mohm", v, Want::NonNegative)? / 1_000.0;
        }
        if let Some(v) = c.tau_s {
            cell.tau1_s = self.real("plant.cell.tau_s", v, Want::Positive)?;
        }
        if let Some(v) = c.self_discharge_pct_per_month {
            let field = "plant.cell.self_discharge_pct_per_month";
            cell.self_discharge_per_day =
                self.real(field, v, Want::Between(0.0, 100.0))? / 100.0 / 30.0;
        }
        if let Some(v) = c.coulombic_efficiency {
            cell.coulombic_efficiency =
                self.real("plant.cell.coulombic_efficiency", v, Want::Fraction)?;
        }
        let spread = Spread {
            capacity_pct: self.real(
                "plant.spread.capacity_pct",
                p.spread.capacity_pct,
                Want::Between(0.0, 30.0),
            )?,
            resistance_pct: self.real(
                "plant.spread.resistance_pct",
                p.spread.resistance_pct,
                Want::Between(0.0, 30.0),
            )?,
            soc_pct: self.real(
                "plant.spread.soc_pct",
                p.spread.soc_pct,
                Want::Between(0.0, 50.0),
            )?,
        };
        let (low, high) = TEMPERATURE_RANGE;
        let ambient_c = self.real("plant.ambient_c", p.ambient_c, Want::Between(low, high))?;
        let initial_temp_c = match p.initial_temp_c {
            Some(t) => self.real("plant.initial_temp_c", t, Want::Between(low, high))?,
            None => ambient_c,
        };
        let initial_soc = self.real("plant.initial_soc", p.initial_soc, Want::Between(0.0, 1.0))?;
        let bus = BusParams {
            capacitance_f: self.real(
                "plant.bus.capacitance_uf",
                p.bus.capacitance_uf,
                Want::Positive,
            )? * 1e-6,
            precharge_ohm: self.real(
                "plant.bus.precharge_ohm",
                p.bus.precharge_ohm,
                Want::Positive,
            )?,
            bleed_ohm: self.real("plant.bus.bleed_ohm", p.bus.bleed_ohm, Want::Positive)?,
            short_ohm: match p.bus.short_ohm {
                Some(ohm) => Some(self.real("plant.bus.short_ohm", ohm, Want::Positive)?),
                None => None,
            },
        };
        let groups = u32::from(series_per_module) * u32::from(modules);
        if groups != u32::from(config.cell_count) {
            return Err(self.value_error(
                &size_field(system, "cell_count"),
                format!(
                    "the plant has {groups} series groups ({modules} x {series_per_module}) but the config supervises {}; the preset sets \
                     `cell_count` from its size, leave it as it is",
                    config.cell_count
                ),
            ));
        }
        let sensors = u32::from(sensors_per_module) * u32::from(modules);
        if sensors != u32::from(config.temperature_count) {
            return Err(self.value_error(
                &size_field(system, "temperature_count"),
                format!(
                    "the plant has {sensors} temperature sensors ({sensors_per_module} per \
                     module) but the config expects {}; the preset sets `temperature_count` \
                     from its size, leave it as it is",
                    config.temperature_count
                ),
            ));
        }
        Ok(PlantSpec {
            cell,
            series_per_module,
            modules,
            strings: 1,
            sensors_per_module,
            initial_soc,
            initial_temp_c,
            ambient_c,
            spread,
            bus,
        })
    }

    pub(super) fn sensors_and_inverter(&self, file: &ScenarioFile) -> Checked<()> {
        let s = &file.sensors;
        if s.measure_period.micros() == 0 {
            return Err(self.value_error("sensors.measure_period", "must be longer than 0s"));
        }
        self.real("sensors.cell_noise_mv", s.cell_noise_mv, Want::NonNegative)?;
        self.real("sensors.temperature_noise_c", s.temperature_noise_c, Want::NonNegative)?;
        self.real("sensors.current_offset_a", s.current_offset_a, Want::Finite)?;
        self.real("sensors.current_gain_pct", s.current_gain_pct, Want::Between(-50.0, 50.0))?;
        self.real("sensors.current_noise_a", s.current_noise_a, Want::NonNegative)?;
        let inv = file.inverter.unwrap_or_default();
        self.real("inverter.max_charge_a", inv.max_charge_a, Want::NonNegative)?;
        self.real("inverter.max_discharge_a", inv.max_discharge_a, Want::NonNegative)?;
        Ok(())
    }
}
