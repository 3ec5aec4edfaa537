//! The sections of a parallel system: `[[can_packs]]`, `[[inverters]]` and `[combiner]`.

use cellwarden_core::combiner::{
    CombinerConfig, CombinerConfigError, InverterProtocol, InverterSlot, MAX_INVERTERS, MAX_PACKS,
    PackSlot,
};
use cellwarden_core::{CellChemistry, MilliAmps, MilliVolts, Permille};

use super::{Checked, Ctx, Want};
use crate::plant::PlantSpec;
use crate::scenario::parallel::{CombinerSection, InverterProtocolName, Parallel};
use crate::scenario::schema::{PresetName, ScenarioFile, SystemSpec};
use crate::scenario::span::Span;

/// Ohms to whole micro-ohms, at least one.
fn micro_ohms(ohms: f64) -> u32 {
    (ohms * 1e6).round().clamp(1.0, f64::from(u32::MAX)) as u32
}

/// How long an inverter's keep-alive may pause before the combiner reports it missing.
const KEEPALIVE_TIMEOUT_MS: u32 = 10_000;

impl Ctx<'_> {
    /// A `[system]` for checks that need one, in a system without a pack of our own.
    pub(super) fn placeholder_system(&self) -> SystemSpec {
        SystemSpec {
            preset: PresetName::Lfp16s,
            modules: None,
            capacity_ah: Some(100),
            charge_control: true,
            soc_estimate: true,
            initial_soc_estimate: None,
            overrides: toml::Table::new(),
        }
    }

    pub(super) fn index(&self, field: &str, index: u8, count: usize, table: &str) -> Checked<()> {
        if usize::from(index) < count {
            return Ok(());
        }
        Err(self.value_error(
            field,
            format!(
                "{index} does not exist: there are {count} {table}, numbered 0..={}",
                count.saturating_sub(1)
            ),
        ))
    }

    pub(super) fn parallel(
        &self,
        file: &ScenarioFile,
        own_pack: bool,
        plant: &PlantSpec,
    ) -> Checked<Parallel> {
        if file.inverters.is_empty() {
            return Err(self.value_error(
                "can_packs",
                "a parallel system needs at least one `[[inverters]]` to feed",
            ));
        }
        if file.inverter.is_some() {
            return Err(self.key_error(
                "inverter",
                "a parallel system's inverters are `[[inverters]]` entries, not `[inverter]`",
            ));
        }
        if file.boards.is_some() && !own_pack {
            return Err(self.key_error(
                "boards",
                "module boards measure our own pack, and this system has none (`[system]`)",
            ));
        }
        let packs = usize::from(own_pack) + file.can_packs.len();
        if packs > MAX_PACKS {
            return Err(self.value_error(
                "can_packs",
                format!("{packs} packs: the combiner joins at most {MAX_PACKS}"),
            ));
        }
        if file.inverters.len() > MAX_INVERTERS {
            return Err(self.value_error(
                "inverters",
                format!("the combiner feeds at most {MAX_INVERTERS} inverters"),
            ));
        }
        // Which pack a timeline command is for is checked with the timeline (`can_pack`).
        let c = file.combiner.unwrap_or_default();
        let mut config = CombinerConfig::equal_packs(0, 1, MilliAmps(0));
        config.inverters.clear();
        if own_pack {
            let ah = plant.cell.capacity_ah * f64::from(plant.strings);
            let series = u32::from(plant.series_per_module) * u32::from(plant.modules);
            let ohms = plant.cell.r0_ohm * f64::from(series) / f64::from(plant.strings.max(1));
            let _ = config.packs.push(PackSlot {
                capacity_mah: (ah * 1000.0).round() as u32,
                chemistry: match plant.cell.chemistry {
                    crate::plant::Chemistry::Nca => CellChemistry::Nca,
                    crate::plant::Chemistry::Lfp => CellChemistry::Lfp,
                },
                cells: u16::try_from(series).unwrap_or(u16::MAX),
                resistance_uohm: micro_ohms(ohms),
            });
        }
        for (i, p) in file.can_packs.iter().enumerate() {
            let here = format!("can_packs[{i}]");
            if !(4..=24).contains(&p.cells) {
                return Err(self.value_error(
                    &format!("{here}.cells"),
                    format!("{} cells: an LFP rack battery has 4..=24 in series", p.cells),
                ));
            }
            self.real(&format!("{here}.capacity_ah"), p.capacity_ah, Want::Between(1.0, 2000.0))?;
            self.real(&format!("{here}.initial_soc"), p.initial_soc, Want::Between(0.0, 1.0))?;
            for (name, v) in
                [("max_charge_a", p.max_charge_a), ("max_discharge_a", p.max_discharge_a)]
            {
                if let Some(v) = v {
                    self.real(&format!("{here}.{name}"), v, Want::NonNegative)?;
                }
            }
            if let Some(r) = p.r0_mohm {
                self.real(&format!("{here}.r0_mohm"), r, Want::Positive)?;
            }
            let r0_ohm = p
                .r0_mohm
                .map_or(crate::plant::CellParams::lfp_cell(p.capacity_ah).r0_ohm, |mohm| {
                    mohm / 1000.0
                });
            let _ = config.packs.push(PackSlot {
                capacity_mah: (p.capacity_ah * 1000.0).round() as u32,
                chemistry: CellChemistry::Lfp,
                cells: p.cells,
                resistance_uohm: micro_ohms(r0_ohm * f64::from(p.cells)),
            });
        }
        let n = file.inverters.len();
        let mut total_share = 0.0;
        for (i, inv) in file.inverters.iter().enumerate() {
            let here = format!("inverters[{i}]");
            let share = match inv.share {
                Some(s) => self.real(&format!("{here}.share"), s, Want::Fraction)?,
                None => 1.0 / n as f64,
            };
            total_share += share;
            let max_c =
                self.real(&format!("{here}.max_charge_a"), inv.max_charge_a, Want::NonNegative)?;
            let max_d = self.real(
                &format!("{here}.max_discharge_a"),
                inv.max_discharge_a,
                Want::NonNegative,
            )?;
            let cap_c = match inv.charge_cap_a {
                Some(a) => self.real(&format!("{here}.charge_cap_a"), a, Want::NonNegative)?,
                None => max_c,
            };
            let cap_d = match inv.discharge_cap_a {
                Some(a) => self.real(&format!("{here}.discharge_cap_a"), a, Want::NonNegative)?,
                None => max_d,
            };
            if inv.voltage_offset_mv.abs() > 2_000 {
                return Err(self.value_error(
                    &format!("{here}.voltage_offset_mv"),
                    format!("{} mV is outside -2000..=2000", inv.voltage_offset_mv),
                ));
            }
            if inv.keepalive_stops_at.is_some_and(|t| t.0 > file.duration.0) {
                return Err(self.value_error(
                    &format!("{here}.keepalive_stops_at"),
                    "is after the end of the run",
                ));
            }
            let _ = config.inverters.push(InverterSlot {
                protocol: match inv.protocol {
                    InverterProtocolName::Byd => InverterProtocol::BydCan,
                    _ => InverterProtocol::LowVoltageCan,
                },
                // Rounded down so the shares never add up to more than the whole.
                share: Permille((share * 1000.0).floor().max(1.0) as u16),
                voltage_offset_mv: MilliVolts(inv.voltage_offset_mv),
                charge_cap_ma: MilliAmps((cap_c * 1000.0).min(f64::from(i32::MAX)) as i32),
                discharge_cap_ma: MilliAmps((cap_d * 1000.0).min(f64::from(i32::MAX)) as i32),
                keepalive_timeout_ms: KEEPALIVE_TIMEOUT_MS,
            });
        }
        if total_share > 1.0 + 1e-9 {
            return Err(self.value_error(
                "inverters",
                format!("the inverters' shares add up to {total_share:.3}: at most 1"),
            ));
        }
        self.combiner_section(&c, &mut config)?;
        config.validate().map_err(|e| match e {
            CombinerConfigError::PackVoltageBeyondProtocol {
                pack,
                inverter,
                pack_max_mv,
                allowed_max_mv,
            } => {
                // The pack's cells are where the voltage comes from.
                let pack = usize::from(pack);
                let field = if own_pack && pack == 0 {
                    "system.modules".to_string()
                } else {
                    format!("can_packs[{}].cells", pack - usize::from(own_pack))
                };
                self.value_error(
                    &field,
                    format!(
                        "the pack can reach {:.2} V, and inverters[{inverter}]'s protocol \
                         carries at most {:.2} V (0..={allowed_max_mv} mV): it would be told a \
                         wrong voltage",
                        f64::from(pack_max_mv) / 1000.0,
                        f64::from(allowed_max_mv) / 1000.0,
                    ),
                )
            }
            e => self.value_error("combiner", format!("the core refuses it: {e:?}")),
        })?;
        Ok(Parallel {
            own_pack,
            can_packs: file.can_packs.clone(),
            inverters: file.inverters.clone(),
            combiner: config,
        })
    }

    fn combiner_section(&self, c: &CombinerSection, config: &mut CombinerConfig) -> Checked<()> {
        let ms = |field: &str, span: Option<Span>, into: &mut u32| -> Checked<()> {
            if let Some(span) = span {
                let ms = span.0.as_millis();
                if ms == 0 || ms > u64::from(cellwarden_core::MAX_CONFIG_MS) {
                    return Err(self.value_error(
                        &format!("combiner.{field}"),
                        format!("must be 1ms..={}s", cellwarden_core::MAX_CONFIG_MS / 1000),
                    ));
                }
                *into = ms as u32;
            }
            Ok(())
        };
        ms("stale_after", c.stale_after, &mut config.stale_after_ms)?;
        ms("rejoin_after", c.rejoin_after, &mut config.rejoin_after_ms)?;
        ms("warn_after", c.warn_after, &mut config.obedience.warn_after_ms)?;
        ms("zero_after", c.zero_after, &mut config.obedience.zero_after_ms)?;
        ms("open_after", c.open_after, &mut config.obedience.open_after_ms)?;
        if let Some(mv) = c.join_window_mv {
            if !(1..=60_000).contains(&mv) {
                return Err(self.value_error("combiner.join_window_mv", "must be 1..=60000"));
            }
            config.join_window_mv = MilliVolts(mv);
        }
        if let Some(m) = c.share_margin {
            let m = self.real("combiner.share_margin", m, Want::Fraction)?;
            config.share_margin = Permille((m * 1000.0).round().max(1.0) as u16);
        }
        if let Some(span) = c.limit_ramp {
            // Unlike the other times, 0 is allowed: it turns the ramp off.
            let ms = span.0.as_millis();
            if ms > u64::from(cellwarden_core::MAX_CONFIG_MS) {
                return Err(self.value_error(
                    "combiner.limit_ramp",
                    format!("must be 0s..={}s", cellwarden_core::MAX_CONFIG_MS / 1000),
                ));
            }
            config.limit_ramp_ms = ms as u32;
        }
        if let Some(a) = c.tolerance_a {
            let a = self.real("combiner.tolerance_a", a, Want::Between(0.0, 1000.0))?;
            config.obedience.tolerance_ma = MilliAmps((a * 1000.0).round() as i32);
        }
        Ok(())
    }
}
