//! Inverter demand profiles: what the inverter asks of the battery over time.
//!
//! A scenario's timeline sets a profile with `load = { kind = "...", ... }`; its clock starts at
//! that timeline entry. Positive demand charges the battery, negative discharges it. Every kind
//! speaks either amps or watts:
//!
//! - `constant`: `amps = x` or `watts = x`.
//! - `steps`: `unit`, `points = [["0s", 10.0], ["10m", -20.0]]`, optional `repeat = "1h"`.
//! - `ramp`: `unit`, `from`, `to`, `over`: linear, then hold `to`.
//! - `home`: a household day with PV, in watts (battery demand = PV - consumption).
//! - `csv`: `path`, `unit`; columns `time_s,value`, linear interpolation, hold the last value.
//!
//! [`Profile::new`] checks a spec and precomputes everything; [`Profile::demand`] is then a
//! lookup without allocation that never panics.

use std::path::{Path, PathBuf};

use cellwarden_core::Duration;
use serde::Deserialize;

use crate::span::Span;
use crate::text_file::{PROFILE_MAX_BYTES, read_capped};

/// A profile as written in a scenario file, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProfileSpec {
    /// The same demand all the time: exactly one of `amps` and `watts`.
    Constant {
        /// Current, A.
        amps: Option<f64>,
        /// Power, W.
        watts: Option<f64>,
    },
    /// Piecewise constant: each value holds from its time until the next point's time.
    Steps {
        /// Unit of the values.
        unit: Unit,
        /// `(time from the profile's start, value)`, in rising time order, the first at `0s`.
        points: Vec<(Span, f64)>,
        /// Start over after this long; it must be longer than the last point's time.
        repeat: Option<Span>,
    },
    /// A linear change from `from` to `to` over `over`, then `to` for ever.
    Ramp {
        /// Unit of `from` and `to`.
        unit: Unit,
        /// Value at the start.
        from: f64,
        /// Value from `over` on.
        to: f64,
        /// Length of the ramp.
        over: Span,
    },
    /// A household with a PV array, in watts: the battery takes the PV surplus and covers the
    /// deficit.
    Home {
        /// Consumption outside the peaks, W.
        #[serde(default = "default_base_load_w")]
        base_load_w: f64,
        /// Consumption at the morning (7-8 h) and evening (18-21 h) peaks, W.
        #[serde(default = "default_peak_load_w")]
        peak_load_w: f64,
        /// PV output at 13:00; a sine bell from 6:30 to 19:30, W.
        #[serde(default = "default_pv_peak_w")]
        pv_peak_w: f64,
        /// Hour of the day at the profile's start, `0 <= h < 24`.
        #[serde(default)]
        start_hour: f64,
        /// Amplitude of a smooth random wobble (uniform in +-`noise_w`, new every minute).
        #[serde(default)]
        noise_w: f64,
    },
    /// Points read from a CSV file with the columns `time_s,value`.
    Csv {
        /// The file, relative to the scenario file's folder.
        path: PathBuf,
        /// Unit of the `value` column.
        unit: Unit,
    },
}

/// The unit of a profile's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Amperes.
    Amps,
    /// Watts.
    Watts,
}

impl Unit {
    fn demand(self, value: f64) -> Demand {
        match self {
            Unit::Amps => Demand::Amps(value),
            Unit::Watts => Demand::Watts(value),
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Unit::Amps => "A",
            Unit::Watts => "W",
        }
    }
}

/// What the inverter asks of the battery at one moment; positive charges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Demand {
    /// A current, A.
    Amps(f64),
    /// A power, W.
    Watts(f64),
}

/// A checked profile, ready to be sampled.
#[derive(Clone, Debug)]
pub struct Profile {
    unit: Unit,
    shape: Shape,
    description: String,
}

#[derive(Clone, Debug)]
enum Shape {
    Constant(f64),
    Steps {
        /// Start of each step, µs, strictly rising, the first 0.
        times: Vec<u64>,
        values: Vec<f64>,
        /// Period, µs, longer than the last time.
        period: Option<u64>,
    },
    Ramp {
        from: f64,
        to: f64,
        over_us: u64,
    },
    Home(Home),
    Table {
        /// Seconds, strictly rising.
        times: Vec<f64>,
        values: Vec<f64>,
    },
}

#[derive(Clone, Copy, Debug)]
struct Home {
    base: f64,
    peak: f64,
    pv_peak: f64,
    start_hour: f64,
    noise: f64,
    seed: u64,
}

const US_PER_S: f64 = 1e6;

impl Profile {
    /// Checks `spec` and prepares it; `base_dir` anchors a CSV file's relative path. The `home`
    /// kind's noise is seeded from the spec itself; see [`Profile::with_seed`].
    pub fn new(spec: &ProfileSpec, base_dir: &Path) -> Result<Profile, String> {
        Profile::with_seed(spec, base_dir, 0)
    }

    /// As [`Profile::new`], with the `home` noise also depending on `seed` (the scenario's), so
    /// that the same scenario gives the same noise and another seed another.
    pub fn with_seed(spec: &ProfileSpec, base_dir: &Path, seed: u64) -> Result<Profile, String> {
        match spec {
            ProfileSpec::Constant { amps, watts } => {
                let (unit, value) = match (amps, watts) {
                    (Some(a), None) => (Unit::Amps, *a),
                    (None, Some(w)) => (Unit::Watts, *w),
                    (Some(_), Some(_)) => {
                        return Err("give either `amps` or `watts`, not both".into());
                    }
                    (None, None) => return Err("needs `amps` or `watts`".into()),
                };
                let key = if unit == Unit::Amps { "amps" } else { "watts" };
                finite(key, value)?;
                Ok(Profile {
                    unit,
                    shape: Shape::Constant(value),
                    description: format!("constant {} {}", value, unit.symbol()),
                })
            }
            ProfileSpec::Steps { unit, points, repeat } => steps(*unit, points, *repeat),
            ProfileSpec::Ramp { unit, from, to, over } => {
                finite("from", *from)?;
                finite("to", *to)?;
                Ok(Profile {
                    unit: *unit,
                    shape: Shape::Ramp { from: *from, to: *to, over_us: over.micros() },
                    description: format!(
                        "ramp {from} {u} to {to} {u} over {over}",
                        u = unit.symbol()
                    ),
                })
            }
            ProfileSpec::Home { base_load_w, peak_load_w, pv_peak_w, start_hour, noise_w } => {
                for (key, value) in [
                    ("base_load_w", *base_load_w),
                    ("peak_load_w", *peak_load_w),
                    ("pv_peak_w", *pv_peak_w),
                    ("noise_w", *noise_w),
                ] {
                    finite(key, value)?;
                    if value < 0.0 {
                        return Err(format!("`{key}` = {value} must not be negative"));
                    }
                }
                if peak_load_w < base_load_w {
                    return Err(format!(
                        "`peak_load_w` = {peak_load_w} must not be below `base_load_w` = \
                         {base_load_w}"
                    ));
                }
                if !(start_hour.is_finite() && (0.0..24.0).contains(start_hour)) {
                    return Err(format!("`start_hour` = {start_hour} must be in 0 <= h < 24"));
                }
                let mut hash = Fnv::new();
                for value in [*base_load_w, *peak_load_w, *pv_peak_w, *start_hour, *noise_w] {
                    hash.write(value.to_bits());
                }
                hash.write(seed);
                let home = Home {
                    base: *base_load_w,
                    peak: *peak_load_w,
                    pv_peak: *pv_peak_w,
                    start_hour: *start_hour,
                    noise: *noise_w,
                    seed: hash.0,
                };
                Ok(Profile {
                    unit: Unit::Watts,
                    shape: Shape::Home(home),
                    description: format!(
                        "home day: load {base_load_w}-{peak_load_w} W, PV {pv_peak_w} W, from \
                         {start_hour} h"
                    ),
                })
            }
            ProfileSpec::Csv { path, unit } => {
                let full = base_dir.join(path);
                let (times, values) = read_csv(&full)?;
                Ok(Profile {
                    unit: *unit,
                    description: format!(
                        "{} ({} points, {})",
                        path.display(),
                        times.len(),
                        unit.symbol()
                    ),
                    shape: Shape::Table { times, values },
                })
            }
        }
    }

    /// Whether the demand is a current or a power.
    pub fn unit(&self) -> Unit {
        self.unit
    }

    /// The points it keeps in memory: those of a table or of steps, else one.
    pub fn points(&self) -> usize {
        match &self.shape {
            Shape::Steps { times, .. } => times.len(),
            Shape::Table { times, .. } => times.len(),
            Shape::Constant(_) | Shape::Ramp { .. } | Shape::Home(_) => 1,
        }
    }

    /// A short description for logs, e.g. `constant 60 A`.
    pub fn describe(&self) -> &str {
        &self.description
    }

    /// The demand `elapsed` after the profile's start.
    pub fn demand(&self, elapsed: Duration) -> Demand {
        let us = elapsed.as_micros();
        let value = match &self.shape {
            Shape::Constant(value) => *value,
            Shape::Steps { times, values, period } => {
                let t = match period {
                    Some(p) if *p > 0 => us % p,
                    _ => us,
                };
                // `times[0]` is 0, so at least one step has started.
                let started = times.partition_point(|&start| start <= t);
                values.get(started.saturating_sub(1)).copied().unwrap_or(0.0)
            }
            Shape::Ramp { from, to, over_us } => {
                if us >= *over_us {
                    *to
                } else {
                    from + (to - from) * (us as f64 / *over_us as f64)
                }
            }
            Shape::Home(home) => home.demand(us),
            Shape::Table { times, values } => interpolate(times, values, us as f64 / US_PER_S),
        };
        self.unit.demand(value)
    }
}

fn finite(key: &str, value: f64) -> Result<(), String> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(format!("`{key}` = {value} is not a finite number"))
    }
}

fn steps(unit: Unit, points: &[(Span, f64)], repeat: Option<Span>) -> Result<Profile, String> {
    let Some(first) = points.first() else {
        return Err("`points` is empty; give at least [[\"0s\", value]]".into());
    };
    if first.0.micros() != 0 {
        return Err(format!(
            "`points[0]` starts at {}; the first point must be at \"0s\"",
            first.0
        ));
    }
    let mut times = Vec::with_capacity(points.len());
    let mut values = Vec::with_capacity(points.len());
    for (i, (at, value)) in points.iter().enumerate() {
        finite(&format!("points[{i}]"), *value)?;
        if let Some(&previous) = times.last()
            && at.micros() <= previous
        {
            return Err(format!(
                "`points[{i}]` at {at} does not come after the point before it ({}); list the \
                 points in rising time order",
                Span(Duration::from_micros(previous))
            ));
        }
        times.push(at.micros());
        values.push(*value);
    }
    let last = times.last().copied().unwrap_or(0);
    if let Some(period) = repeat
        && period.micros() <= last
    {
        return Err(format!(
            "`repeat` = {period} must be longer than the last point's time ({})",
            Span(Duration::from_micros(last))
        ));
    }
    let mut description = format!("steps ({} points, {})", times.len(), unit.symbol());
    if let Some(period) = repeat {
        description = format!("{description}, every {period}");
    }
    Ok(Profile {
        unit,
        shape: Shape::Steps { times, values, period: repeat.map(Span::micros) },
        description,
    })
}

/// Linear interpolation in a table with strictly rising `times` (at least one point); holds the
/// first value before the first time and the last after the last.
fn interpolate(times: &[f64], values: &[f64], t: f64) -> f64 {
    let after = times.partition_point(|&time| time <= t);
    if after == 0 {
        return values.first().copied().unwrap_or(0.0);
    }
    if after >= times.len() {
        return values.last().copied().unwrap_or(0.0);
    }
    let (t0, t1) = (times[after - 1], times[after]);
    let (v0, v1) = (values[after - 1], values[after]);
    v0 + (v1 - v0) * ((t - t0) / (t1 - t0))
}

/// Reads a `time_s,value` CSV file; errors name the file and line.
fn read_csv(path: &Path) -> Result<(Vec<f64>, Vec<f64>), String> {
    let text = read_capped(path, PROFILE_MAX_BYTES, "a CSV profile")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let at = |line: usize, problem: String| format!("{}:{line}: {problem}", path.display());
    let mut header = false;
    let mut times: Vec<f64> = Vec::new();
    let mut values = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = content.split(',').map(str::trim).collect();
        if !header {
            if fields != ["time_s", "value"] {
                return Err(at(
                    line,
                    format!("the first line must be the header `time_s,value`, found `{content}`"),
                ));
            }
            header = true;
            continue;
        }
        let [time, value] = fields[..] else {
            return Err(at(
                line,
                format!(
                    "expected two columns `time_s,value`, found {} in `{content}`",
                    fields.len()
                ),
            ));
        };
        let number = |column: &str, text: &str| -> Result<f64, String> {
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(at(line, format!("{column} `{text}` is not a finite number"))),
            }
        };
        let time = number("time_s", time)?;
        let value = number("value", value)?;
        if time < 0.0 {
            return Err(at(line, format!("time_s {time} is negative")));
        }
        if let Some(&previous) = times.last()
            && time <= previous
        {
            return Err(at(
                line,
                format!("time_s {time} does not come after the previous row's {previous}"),
            ));
        }
        times.push(time);
        values.push(value);
    }
    if !header {
        return Err(format!(
            "{}: empty; expected the header `time_s,value` and rows",
            path.display()
        ));
    }
    if times.is_empty() {
        return Err(format!("{}: no data rows after the header", path.display()));
    }
    Ok((times, values))
}

impl Home {
    /// PV minus consumption (plus the wobble) `us` after the start, W.
    fn demand(&self, us: u64) -> f64 {
        let hours = us as f64 / 3_600e6;
        let hour = (self.start_hour + hours).rem_euclid(24.0);
        let morning = plateau(hour, 7.0, 8.0, 0.75);
        let evening = plateau(hour, 18.0, 21.0, 1.0);
        let load = self.base + (self.peak - self.base) * morning.max(evening);
        let pv = if (PV_START..=PV_END).contains(&hour) {
            self.pv_peak
                * libm::sin(core::f64::consts::PI * (hour - PV_START) / (PV_END - PV_START))
        } else {
            0.0
        };
        let mut demand = pv - load;
        if self.noise > 0.0 {
            demand += self.noise * wobble(self.seed, us);
        }
        demand
    }
}

/// Sunrise and sunset of the PV bell (centred on 13:00).
const PV_START: f64 = 6.5;
const PV_END: f64 = 19.5;

/// 1 from `start` to `end` (hours), 0 more than `ramp` hours outside, a half cosine between.
fn plateau(hour: f64, start: f64, end: f64, ramp: f64) -> f64 {
    use core::f64::consts::PI;
    if (start..=end).contains(&hour) {
        1.0
    } else if hour >= start - ramp && hour < start {
        0.5 - 0.5 * libm::cos(PI * (hour - (start - ramp)) / ramp)
    } else if hour > end && hour <= end + ramp {
        0.5 + 0.5 * libm::cos(PI * (hour - end) / ramp)
    } else {
        0.0
    }
}

/// Smooth deterministic noise in `[-1, 1)`: a random value each minute, linear in between.
fn wobble(seed: u64, us: u64) -> f64 {
    const MINUTE_US: u64 = 60_000_000;
    let bucket = us / MINUTE_US;
    let fraction = (us % MINUTE_US) as f64 / MINUTE_US as f64;
    let a = unit_noise(seed, bucket);
    let b = unit_noise(seed, bucket.wrapping_add(1));
    a + (b - a) * fraction
}

/// A value in `[-1, 1)` from `seed` and `n` (splitmix64).
fn unit_noise(seed: u64, n: u64) -> f64 {
    let mut z = seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// FNV-1a over 64-bit words: stable across platforms and releases.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, word: u64) {
        for byte in word.to_le_bytes() {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn default_base_load_w() -> f64 {
    300.0
}
fn default_peak_load_w() -> f64 {
    2_500.0
}
fn default_pv_peak_w() -> f64 {
    4_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_s(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn spec(text: &str) -> ProfileSpec {
        #[derive(Deserialize)]
        struct Wrapper {
            load: ProfileSpec,
        }
        toml::from_str::<Wrapper>(&format!("load = {text}")).unwrap().load
    }

    #[test]
    fn constant_and_ramp() {
        let p = Profile::new(&spec(r#"{ kind = "constant", amps = 60 }"#), Path::new(".")).unwrap();
        assert_eq!(p.demand(at_s(0)), Demand::Amps(60.0));
        assert_eq!(p.demand(at_s(1_000_000)), Demand::Amps(60.0));
        let r = Profile::new(
            &spec(r#"{ kind = "ramp", unit = "watts", from = 0, to = 1000, over = "10s" }"#),
            Path::new("."),
        )
        .unwrap();
        assert_eq!(r.demand(at_s(5)), Demand::Watts(500.0));
        assert_eq!(r.demand(at_s(10)), Demand::Watts(1000.0));
        assert_eq!(r.demand(at_s(99)), Demand::Watts(1000.0));
    }

    #[test]
    fn steps_repeat() {
        let p = Profile::new(
            &spec(
                r#"{ kind = "steps", unit = "amps", points = [["0s", 1], ["10s", 2]], repeat = "30s" }"#,
            ),
            Path::new("."),
        )
        .unwrap();
        let values: Vec<Demand> =
            [0, 9, 10, 29, 30, 41].iter().map(|&s| p.demand(at_s(s))).collect();
        let expected = [1.0, 1.0, 2.0, 2.0, 1.0, 2.0].map(Demand::Amps);
        assert_eq!(values, expected);
    }

    #[test]
    fn noise_is_bounded_and_repeatable() {
        let s = spec(r#"{ kind = "home", noise_w = 100, pv_peak_w = 0, peak_load_w = 300 }"#);
        let a = Profile::with_seed(&s, Path::new("."), 1).unwrap();
        let b = Profile::with_seed(&s, Path::new("."), 1).unwrap();
        let c = Profile::with_seed(&s, Path::new("."), 2).unwrap();
        let mut differs = false;
        for minute in 0..500u64 {
            let t = Duration::from_micros(minute * 37_000_000);
            let Demand::Watts(w) = a.demand(t) else { panic!("watts") };
            assert!((-400.0..=-200.0).contains(&w), "{w}");
            assert_eq!(a.demand(t), b.demand(t));
            differs |= a.demand(t) != c.demand(t);
        }
        assert!(differs);
    }

    #[test]
    fn extreme_times_do_not_panic() {
        for text in [
            r#"{ kind = "constant", watts = -5 }"#,
            r#"{ kind = "steps", unit = "amps", points = [["0s", 1]], repeat = "1s" }"#,
            r#"{ kind = "ramp", unit = "amps", from = 1, to = 2, over = "0s" }"#,
            r#"{ kind = "home", noise_w = 10 }"#,
        ] {
            let p = Profile::new(&spec(text), Path::new(".")).unwrap();
            for us in [0, 1, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
                let demand = p.demand(Duration::from_micros(us));
                let (Demand::Amps(v) | Demand::Watts(v)) = demand;
                assert!(v.is_finite(), "{text} at {us}: {v}");
            }
        }
    }
}
