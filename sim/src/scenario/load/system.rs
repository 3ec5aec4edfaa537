//! The `[system]` section: the preset, its size and the overrides, giving the core `Config`.

use cellwarden_core::Config;

use super::error::{LoadError, one_line};
use super::{Checked, Ctx, article};
use crate::scenario::schema::{PresetName, SystemSpec};

impl Ctx<'_> {
    pub(super) fn config(&self, system: &SystemSpec) -> Checked<Config> {
        let mut config = self.configured(system)?;
        if !system.charge_control {
            config.charge = None;
        }
        if !system.soc_estimate {
            config.soc = None;
        }
        Ok(config)
    }

    /// The preset with the overrides applied, validated.
    fn configured(&self, system: &SystemSpec) -> Checked<Config> {
        let preset = match system.preset {
            PresetName::TeslaModelS => {
                if system.capacity_ah.is_some() {
                    return Err(self.key_error(
                        "system.capacity_ah",
                        "belongs to the lfp_16s preset; tesla_model_s is sized by `modules`",
                    ));
                }
                let Some(modules) = system.modules else {
                    return Err(self.value_error(
                        "system.modules",
                        format!(
                            "missing: the tesla_model_s preset needs `modules` (1..={MAX_MODULES})"
                        ),
                    ));
                };
                if !(1..=MAX_MODULES).contains(&modules) {
                    return Err(self.value_error(
                        "system.modules",
                        format!("{modules} is outside 1..={MAX_MODULES}"),
                    ));
                }
                Config::tesla_model_s(modules)
            }
            PresetName::Lfp16s => {
                if system.modules.is_some() {
                    return Err(self.key_error(
                        "system.modules",
                        "belongs to the tesla_model_s preset; lfp_16s is sized by `capacity_ah`",
                    ));
                }
                let Some(capacity) = system.capacity_ah else {
                    return Err(self.value_error(
                        "system.capacity_ah",
                        "missing: the lfp_16s preset needs `capacity_ah`",
                    ));
                };
                if capacity == 0 {
                    return Err(self.value_error("system.capacity_ah", "0 must be greater than 0"));
                }
                Config::lfp_16s(capacity)
            }
        };
        if system.overrides.is_empty() {
            preset.validate().map_err(|e| {
                self.value_error("system", format!("the preset itself is not valid: {e}"))
            })?;
            return Ok(preset);
        }
        let base = toml::Table::try_from(&preset).map_err(|e| {
            self.value_error(
                "system",
                format!("internal error: the preset does not serialise: {e}"),
            )
        })?;
        let mut merged = base.clone();
        self.merge(&mut merged, &system.overrides, "system.overrides")?;
        let config: Config = match toml::Value::Table(merged).try_into() {
            Ok(config) => config,
            Err(error) => return Err(self.blame_override(&base, &system.overrides, &error)),
        };
        // The charge and SoC sections are sized with the preset; checked here, a changed size
        // gets this message rather than one about their sizes.
        if config.cell_count != preset.cell_count {
            return Err(self.value_error(
                "system.overrides.cell_count",
                format!(
                    "the preset sets {} series groups from its size and sizes everything else to                      match; leave `cell_count` as it is and change `modules` or `capacity_ah`",
                    preset.cell_count
                ),
            ));
        }
        config.validate().map_err(|e| {
            let field = match e.part {
                Some(part) => format!("system.overrides.{}.{part}", e.field),
                None => format!("system.overrides.{}", e.field),
            };
            let text = e.to_string();
            let problem = text.split_once(": ").map_or(text.as_str(), |(_, p)| p);
            self.value_error(&field, problem)
        })?;
        Ok(config)
    }

    /// Deep-merges `over` into `base`, refusing keys the preset does not have and values of
    /// another type than the preset's.
    fn merge(&self, base: &mut toml::Table, over: &toml::Table, path: &str) -> Checked<()> {
        let thresholds = base.contains_key("hysteresis") && base.contains_key("debounce_ms");
        for (key, value) in over {
            let here = format!("{path}.{key}");
            match base.get_mut(key) {
                Some(toml::Value::Table(inner)) => {
                    let toml::Value::Table(value) = value else {
                        let keys: Vec<&str> = inner.keys().map(String::as_str).collect();
                        return Err(self.value_error(
                            &here,
                            format!(
                                "is a table of settings ({}), not {} {}",
                                keys.join(", "),
                                article(value.type_str()),
                                value.type_str()
                            ),
                        ));
                    };
                    self.merge(inner, value, &here)?;
                }
                Some(existing) => {
                    if !existing.same_type(value) {
                        return Err(self.value_error(
                            &here,
                            format!(
                                "expected {} {} (the preset has {existing}), found {} {}",
                                article(existing.type_str()),
                                existing.type_str(),
                                article(value.type_str()),
                                value.type_str()
                            ),
                        ));
                    }
                    *existing = value.clone();
                }
                None if thresholds && TIERS.contains(&key.as_str()) => {
                    if !value.is_integer() {
                        return Err(self.value_error(
                            &here,
                            format!(
                                "expected an integer, found {} {}",
                                article(value.type_str()),
                                value.type_str()
                            ),
                        ));
                    }
                    base.insert(key.clone(), value.clone());
                }
                None => {
                    let mut valid: Vec<&str> = base.keys().map(String::as_str).collect();
                    if thresholds {
                        valid.extend(TIERS.iter().filter(|t| !base.contains_key(**t)));
                        valid.sort_unstable();
                    }
                    return Err(self.key_error(
                        &here,
                        format!("unknown config field `{key}`; valid here: {}", valid.join(", ")),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The merged table did not deserialise (a value out of its type's range): find the
    /// override that does it by applying each alone.
    fn blame_override(
        &self,
        base: &toml::Table,
        overrides: &toml::Table,
        error: &toml::de::Error,
    ) -> LoadError {
        let mut leaves = Vec::new();
        collect_leaves(overrides, &mut Vec::new(), &mut leaves);
        for (path, value) in leaves {
            let mut single = base.clone();
            set_leaf(&mut single, &path, value.clone());
            if let Err(e) = toml::Value::Table(single).try_into::<Config>() {
                let field = format!("system.overrides.{}", path.join("."));
                return self.value_error(&field, one_line(e.message()));
            }
        }
        self.value_error("system.overrides", one_line(error.message()))
    }
}

/// Tesla Model S modules a string may have.
const MAX_MODULES: u16 = 32;
/// Fields of a `Thresholds` table that the serialised preset leaves out when they are unset.
const TIERS: [&str; 3] = ["operating", "recommended", "maximum"];

/// `system.overrides.<key>` when the file overrides it, else `system`.
pub(super) fn size_field(system: &SystemSpec, key: &str) -> String {
    if system.overrides.contains_key(key) {
        format!("system.overrides.{key}")
    } else {
        "system".to_owned()
    }
}

/// Paths and values of the non-table entries of `table`.
fn collect_leaves(
    table: &toml::Table,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, toml::Value)>,
) {
    for (key, value) in table {
        path.push(key.clone());
        match value {
            toml::Value::Table(inner) => collect_leaves(inner, path, out),
            other => out.push((path.clone(), other.clone())),
        }
        path.pop();
    }
}

fn set_leaf(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [key] => {
            table.insert(key.clone(), value);
        }
        [key, rest @ ..] => {
            if let Some(toml::Value::Table(inner)) = table.get_mut(key) {
                set_leaf(inner, rest, value);
            }
        }
    }
}
