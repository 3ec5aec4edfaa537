//! The `[plant]`, `[sensors]` and `[inverter]` sections.

use cellwarden_core::Config;

use super::system::size_field;
use super::{Checked, Ctx, TEMPERATURE_RANGE, Want};
use crate::plant::{BusParams, BusSource, CellParams, MAX_OUTLIERS, Outlier, PlantSpec, Spread};
use crate::scenario::schema::{BusSpec, PresetName, ScenarioFile, SystemSpec};

/// Largest change an outlier may make to a cell's capacity or resistance, percent.
const MAX_CHANGE_PCT: f64 = 1000.0;

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
        let mut spread = Spread {
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
            outliers: Vec::new(),
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
            source: self
                .bus_source(&p.bus, !file.can_packs.is_empty() || !file.inverters.is_empty())?,
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
        spread.outliers = self.outliers(file, groups, initial_soc)?;
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

    /// `source_v` and `source_ohm` of `[plant.bus]`: both or neither. A parallel system's bus is
    /// the engine's, not our plant's, so the source is for a single pack only.
    fn bus_source(&self, bus: &BusSpec, parallel: bool) -> Checked<Option<BusSource>> {
        let (volts, ohms) = match (bus.source_v, bus.source_ohm) {
            (None, None) => return Ok(None),
            (Some(v), Some(r)) => (v, r),
            (Some(_), None) => {
                return Err(self.key_error(
                    "plant.bus.source_v",
                    "needs `source_ohm` too: the source's series resistance",
                ));
            }
            (None, Some(_)) => {
                return Err(self.key_error(
                    "plant.bus.source_ohm",
                    "needs `source_v` too: the voltage the source holds the link at",
                ));
            }
        };
        if parallel {
            return Err(self.key_error(
                "plant.bus.source_v",
                "a parallel system's packs share the engine's bus already; an external source \
                 on the DC link is for a single pack",
            ));
        }
        Ok(Some(BusSource {
            volts: self.real("plant.bus.source_v", volts, Want::NonNegative)?,
            ohms: self.real("plant.bus.source_ohm", ohms, Want::Positive)?,
        }))
    }

    /// `[[plant.outliers]]`, for a pack of `groups` series groups starting at `initial_soc`.
    fn outliers(
        &self,
        file: &ScenarioFile,
        groups: u32,
        initial_soc: f64,
    ) -> Checked<Vec<Outlier>> {
        let mut outliers = Vec::new();
        let entries = &file.plant.outliers;
        if entries.is_empty() {
            return Ok(outliers);
        }
        if !file.can_packs.is_empty() {
            return Err(self.key_error(
                "plant.outliers",
                "outliers are for our own pack only, and the `[[can_packs]]` racks would take \
                 them over with the rest of `[plant]`; leave them out in a system with CAN packs",
            ));
        }
        for (i, entry) in entries.iter().enumerate() {
            let field = |name: &str| format!("plant.outliers[{i}].{name}");
            let cell = entry.cell;
            if u32::from(cell) >= groups {
                return Err(self.value_error(
                    &field("cell"),
                    format!(
                        "cell {cell} does not exist: this pack has {groups} series groups, \
                         numbered 0..={}",
                        groups.saturating_sub(1)
                    ),
                ));
            }
            if let Some(first) = entries[..i].iter().position(|e| e.cell == cell) {
                return Err(self.value_error(
                    &field("cell"),
                    format!(
                        "cell {cell} is already an outlier in `plant.outliers[{first}]`: give \
                         each cell one entry"
                    ),
                ));
            }
            let capacity_pct =
                self.change_pct(&field("capacity_pct"), entry.capacity_pct, "capacity")?;
            let resistance_pct =
                self.change_pct(&field("resistance_pct"), entry.resistance_pct, "resistance")?;
            let soc_field = field("soc_pct");
            let soc_pct = self.real(&soc_field, entry.soc_pct, Want::Finite)?;
            // Rounded, so that e.g. 0.97 plus 3 points is not refused for 1e-14 over 100 %.
            let start_pct = ((initial_soc * 100.0 + soc_pct) * 1e9).round() / 1e9;
            if !(0.0..=100.0).contains(&start_pct) {
                return Err(self.value_error(
                    &soc_field,
                    format!(
                        "{soc_pct} points on top of `plant.initial_soc` = {initial_soc} would \
                         start the cell at {start_pct} %, outside 0..=100"
                    ),
                ));
            }
            if outliers.len() == MAX_OUTLIERS {
                return Err(self.key_error(
                    &format!("plant.outliers[{i}]"),
                    format!("at most {MAX_OUTLIERS} outliers"),
                ));
            }
            outliers.push(Outlier {
                group: usize::from(cell),
                capacity_pct,
                resistance_pct,
                soc_pct,
            });
        }
        Ok(outliers)
    }

    /// A relative change of a cell's `what` in percent, which must leave it greater than 0:
    /// -100 < x <= [`MAX_CHANGE_PCT`].
    fn change_pct(&self, field: &str, value: f64, what: &str) -> Checked<f64> {
        let value = self.real(field, value, Want::Finite)?;
        if value <= -100.0 {
            return Err(self.value_error(
                field,
                format!("{value} would leave the cell no {what}: must be greater than -100"),
            ));
        }
        if value > MAX_CHANGE_PCT {
            return Err(self.value_error(field, format!("{value} is more than {MAX_CHANGE_PCT}")));
        }
        Ok(value)
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::plant::Plant;
    use crate::scenario::{LoadError, Scenario, load_str};

    const FILE: &str = "scenarios/outliers.toml";

    /// Four Tesla modules (24 series groups) with some spread; `extra` is appended.
    fn text(extra: &str) -> String {
        format!(
            r#"name = "Outliers"
seed = 3
duration = "1m"

[system]
preset = "tesla_model_s"
modules = 4

[plant]
initial_soc = 0.9
spread = {{ capacity_pct = 2.0, resistance_pct = 5.0, soc_pct = 1.0 }}
{extra}"#
        )
    }

    fn ok(text: &str) -> Scenario {
        load_str(Path::new(FILE), text).unwrap_or_else(|e| panic!("expected it to load: {e}"))
    }

    /// The error for `text`: on the line of `line_with`, for `field`, saying `says`.
    fn assert_error(text: &str, line_with: &str, field: &str, says: &str) -> LoadError {
        let Err(e) = load_str(Path::new(FILE), text) else {
            panic!("expected an error for:\n{text}");
        };
        let line = text.lines().position(|l| l.contains(line_with)).expect("line_with") + 1;
        assert_eq!(e.line, Some(line), "{}", e.message);
        assert_eq!(e.field, field, "{}", e.message);
        assert!(e.message.starts_with(&format!("{FILE}:{line}:")), "{}", e.message);
        assert!(e.problem.contains(says), "expected `{says}` in\n  {}", e.message);
        e
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn an_outlier_changes_its_group_on_top_of_the_spread_and_nothing_else() {
        let plain = ok(&text(""));
        let with = ok(&text(
            "\n[[plant.outliers]]\ncell = 17\ncapacity_pct = -8.0\nresistance_pct = 20\n\
             soc_pct = 2.0\n\n[[plant.outliers]]\ncell = 0\nsoc_pct = -1\n",
        ));
        let o = with.plant.spread.outliers.as_slice();
        assert_eq!(o.len(), 2);
        assert_eq!(
            (o[0].group, o[0].capacity_pct, o[0].resistance_pct, o[0].soc_pct),
            (17, -8.0, 20.0, 2.0)
        );
        assert_eq!(
            (o[1].group, o[1].capacity_pct, o[1].resistance_pct, o[1].soc_pct),
            (0, 0.0, 0.0, -1.0)
        );
        assert!(plain.plant.spread.outliers.as_slice().is_empty());

        let (a, b) = (Plant::new(&plain.plant, plain.seed), Plant::new(&with.plant, with.seed));
        assert_eq!(b.group_count(), 24);
        for g in 0..24 {
            let (cap_a, cap_b) = (a.group_capacity_ah(g).unwrap(), b.group_capacity_ah(g).unwrap());
            let ((r0_a, r1_a), (r0_b, r1_b)) =
                (a.group_resistances_ohm(g).unwrap(), b.group_resistances_ohm(g).unwrap());
            let (soc_a, soc_b) = (a.group_socs()[g], b.group_socs()[g]);
            match g {
                17 => {
                    assert!(close(cap_b, cap_a * 0.92), "{cap_b} vs {cap_a}");
                    assert!(close(r0_b, r0_a * 1.2) && close(r1_b, r1_a * 1.2));
                    assert!(close(soc_b, soc_a + 0.02), "{soc_b} vs {soc_a}");
                }
                0 => {
                    assert_eq!((cap_b, r0_b, r1_b), (cap_a, r0_a, r1_a));
                    assert!(close(soc_b, soc_a - 0.01), "{soc_b} vs {soc_a}");
                }
                // The other groups draw exactly what they drew without the outliers.
                _ => assert_eq!((cap_b, r0_b, r1_b, soc_b), (cap_a, r0_a, r1_a, soc_a)),
            }
        }
        // The spread is there: the groups differ without the outliers too.
        assert_ne!(a.group_capacity_ah(1), a.group_capacity_ah(2));
        // Runs are reproducible.
        let again = Plant::new(&with.plant, with.seed);
        assert_eq!(again.group_socs(), b.group_socs());
    }

    #[test]
    fn an_outlier_without_spread_is_exact_and_lfp_counts_sixteen_cells() {
        let text = r#"name = "LFP outlier"
seed = 1
duration = "1m"

[system]
preset = "lfp_16s"
capacity_ah = 100

[plant]
initial_soc = 0.97

[[plant.outliers]]
cell = 15
capacity_pct = -10
soc_pct = 3
"#;
        let s = ok(text);
        let plant = Plant::new(&s.plant, s.seed);
        assert!(close(plant.group_capacity_ah(15).unwrap(), 90.0));
        assert!(close(plant.group_capacity_ah(14).unwrap(), 100.0));
        assert!(close(plant.group_socs()[15], 1.0) && close(plant.group_socs()[14], 0.97));

        let text = text.replace("cell = 15", "cell = 16");
        assert_error(
            &text,
            "cell = 16",
            "plant.outliers[0].cell",
            "cell 16 does not exist: this pack has 16 series groups, numbered 0..=15",
        );
    }

    #[test]
    fn a_cell_beyond_the_pack_is_refused() {
        let text = text("[[plant.outliers]]\ncell = 24\ncapacity_pct = -8\n");
        assert_error(
            &text,
            "cell = 24",
            "plant.outliers[0].cell",
            "cell 24 does not exist: this pack has 24 series groups, numbered 0..=23",
        );
        let text = self::text("[[plant.outliers]]\ncell = -1\n");
        assert_error(&text, "cell = -1", "plant.outliers[0].cell", "u16");
    }

    #[test]
    fn the_same_cell_twice_is_refused() {
        let text = text(
            "[[plant.outliers]]\ncell = 3\nsoc_pct = 1\n\n[[plant.outliers]]\ncell = 5\n\n\
             [[plant.outliers]]\ncell = 3 # again\nsoc_pct = 2\n",
        );
        assert_error(
            &text,
            "cell = 3 # again",
            "plant.outliers[2].cell",
            "cell 3 is already an outlier in `plant.outliers[0]`",
        );
    }

    #[test]
    fn capacity_and_resistance_must_stay_positive() {
        for (value, says) in [
            ("-100", "-100 would leave the cell no capacity: must be greater than -100"),
            ("-150.5", "-150.5 would leave the cell no capacity"),
            ("1001", "1001 is more than 1000"),
            ("nan", "not a finite number"),
        ] {
            let text = text(&format!("[[plant.outliers]]\ncell = 1\ncapacity_pct = {value}\n"));
            let line_with = format!("capacity_pct = {value}");
            assert_error(&text, &line_with, "plant.outliers[0].capacity_pct", says);
        }
        let text = text("[[plant.outliers]]\ncell = 1\nresistance_pct = -100.0\n");
        let says = "would leave the cell no resistance";
        assert_error(&text, "resistance_pct = -100", "plant.outliers[0].resistance_pct", says);
        // Just above -100 is allowed.
        let s = ok(&self::text("[[plant.outliers]]\ncell = 1\ncapacity_pct = -99.5\n"));
        assert!(Plant::new(&s.plant, s.seed).group_capacity_ah(1).unwrap() > 0.0);
    }

    #[test]
    fn the_starting_soc_must_stay_within_0_to_100_percent() {
        // initial_soc 0.9: +10 points is exactly full, +10.5 is over.
        ok(&text("[[plant.outliers]]\ncell = 2\nsoc_pct = 10\n"));
        ok(&text("[[plant.outliers]]\ncell = 2\nsoc_pct = -90\n"));
        let text = text("[[plant.outliers]]\ncell = 2\nsoc_pct = 10.5\n");
        let says = "10.5 points on top of `plant.initial_soc` = 0.9 would start the cell at \
                    100.5 %, outside 0..=100";
        assert_error(&text, "soc_pct = 10.5", "plant.outliers[0].soc_pct", says);
        let text = self::text("[[plant.outliers]]\ncell = 2\nsoc_pct = -91\n");
        assert_error(&text, "soc_pct = -91", "plant.outliers[0].soc_pct", "at -1 %");
    }

    #[test]
    fn unknown_and_missing_keys_are_refused() {
        let text = text("[[plant.outliers]]\ncell = 2\ncapacty_pct = -8\n");
        let e = assert_error(
            &text,
            "capacty_pct",
            "plant.outliers[0].capacty_pct",
            "unknown field `capacty_pct`",
        );
        assert!(e.problem.contains("capacity_pct"), "{}", e.message);
        let text = self::text("\n[[plant.outliers]]\ncapacity_pct = -8\n");
        assert_error(&text, "[[plant.outliers]]", "plant.outliers[0]", "missing field `cell`");
    }

    #[test]
    fn too_many_outliers_are_refused() {
        let mut extra = String::new();
        for cell in 0..=crate::plant::MAX_OUTLIERS {
            extra.push_str(&format!("[[plant.outliers]]\ncell = {cell}\n"));
        }
        // 33 outliers need a pack of more than 24 groups.
        let text = text(&extra).replace("modules = 4", "modules = 8");
        let last = format!("cell = {}", crate::plant::MAX_OUTLIERS);
        let e = load_str(Path::new(FILE), &text).expect_err("too many");
        assert_eq!(e.field, format!("plant.outliers[{}]", crate::plant::MAX_OUTLIERS));
        assert!(e.problem.contains("at most 32 outliers"), "{}", e.message);
        let line = text.lines().position(|l| l == last).unwrap(); // the header above it
        assert_eq!(e.line, Some(line), "{}", e.message);
    }

    #[test]
    fn outliers_are_refused_with_can_packs() {
        let text = r#"name = "Racks"
seed = 1
duration = "1m"

[[plant.outliers]]
cell = 0
soc_pct = 1

[[can_packs]]
capacity_ah = 100.0

[[inverters]]
protocol = "victron"
"#;
        assert_error(text, "[[plant.outliers]]", "plant.outliers", "for our own pack only");
    }
}
