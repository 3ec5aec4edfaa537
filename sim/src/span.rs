//! Durations as people write them in scenario files: `"250ms"`, `"30s"`, `"1m30s"`, `"2h"`,
//! `"1d"`. A bare number is refused: the unit is the part people get wrong.

use core::fmt;

use cellwarden_core::Duration;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// A span of simulated time, exact to the microsecond.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Span(pub Duration);

impl Span {
    /// The longest span a file may give, for a run's duration and every time in it: a year.
    /// The longest scenarios run for 30 days; without a bound, `"213503982d"` was a valid
    /// duration, a run that would never end.
    pub const MAX: Span = Span(Duration::from_secs(366 * 86_400));

    /// Parses `"1h30m"`, `"250ms"`, `"1.5s"`, `"20us"`; parts must come largest first. Spans
    /// longer than [`Span::MAX`] are refused.
    pub fn parse(text: &str) -> Result<Span, String> {
        const UNITS: [(&str, u64); 7] = [
            ("d", 86_400_000_000),
            ("h", 3_600_000_000),
            ("ms", 1_000),
            ("us", 1),
            ("m", 60_000_000),
            ("s", 1_000_000),
            ("µs", 1),
        ];
        let text = text.trim();
        if text.is_empty() {
            return Err("empty duration; write e.g. \"500ms\", \"30s\", \"2h\"".into());
        }
        let mut rest = text;
        let mut total: u64 = 0;
        let mut last_scale = u64::MAX;
        while !rest.is_empty() {
            let digits =
                rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("`{text}`: expected a number before `{rest}`"));
            }
            let (number, after) = rest.split_at(digits);
            let Some(&(unit, scale)) = UNITS.iter().find(|(u, _)| after.starts_with(u)) else {
                return Err(format!("`{text}`: `{number}` needs a unit (d, h, m, s, ms or us)"));
            };
            if scale >= last_scale {
                return Err(format!("`{text}`: write the parts largest first, each once"));
            }
            last_scale = scale;
            let too_long = || {
                format!(
                    "`{text}` is longer than {}, the longest span allowed (0s to {0})",
                    Span::MAX
                )
            };
            let micros = match parse_scaled(number, scale) {
                Some(micros) => micros,
                // Digits only, but too many for a u64: too long, not malformed.
                None if number.bytes().all(|b| b.is_ascii_digit()) => return Err(too_long()),
                None => return Err(format!("`{text}`: `{number}{unit}` is not a usable number")),
            };
            total = total
                .checked_add(micros)
                .filter(|t| *t <= Span::MAX.micros())
                .ok_or_else(too_long)?;
            rest = &after[unit.len()..];
        }
        Ok(Span(Duration::from_micros(total)))
    }

    /// The span in microseconds.
    pub fn micros(self) -> u64 {
        self.0.as_micros()
    }

    /// The span in seconds, for plant maths.
    pub fn secs_f64(self) -> f64 {
        self.0.as_micros() as f64 / 1e6
    }
}

/// `number` (decimal, at most 6 fractional digits) times `scale` microseconds, exactly.
fn parse_scaled(number: &str, scale: u64) -> Option<u64> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 6 || frac.contains('.') {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let mut micros = whole.checked_mul(scale)?;
    if !frac.is_empty() {
        let digits: u64 = frac.parse().ok()?;
        let denominator = 10u64.pow(frac.len() as u32);
        let part = digits.checked_mul(scale)?;
        if part % denominator != 0 {
            return None; // finer than a microsecond
        }
        micros = micros.checked_add(part / denominator)?;
    }
    Some(micros)
}

impl fmt::Display for Span {
    /// The shortest exact form: `1h30m`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut us = self.micros();
        if us == 0 {
            return f.write_str("0s");
        }
        for (unit, scale) in [
            ("d", 86_400_000_000u64),
            ("h", 3_600_000_000),
            ("m", 60_000_000),
            ("s", 1_000_000),
            ("ms", 1_000),
            ("us", 1),
        ] {
            if us >= scale {
                write!(f, "{}{unit}", us / scale)?;
                us %= scale;
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Span, D::Error> {
        struct SpanVisitor;
        impl Visitor<'_> for SpanVisitor {
            type Value = Span;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"500ms\", \"30s\" or \"2h\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
                Span::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(SpanVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::Span;

    #[test]
    fn parses_and_prints() {
        for (text, us, shown) in [
            ("250ms", 250_000, "250ms"),
            ("1m30s", 90_000_000, "1m30s"),
            ("2h", 7_200_000_000, "2h"),
            ("1.5s", 1_500_000, "1s500ms"),
            ("1d", 86_400_000_000, "1d"),
            ("20us", 20, "20us"),
            ("0s", 0, "0s"),
        ] {
            let span = Span::parse(text).unwrap();
            assert_eq!(span.micros(), us, "{text}");
            assert_eq!(span.to_string(), shown);
        }
    }

    #[test]
    fn refuses_what_is_ambiguous() {
        for text in ["", "10", "s", "1x", "30s1m", "1s1s", "0.0000001s", "1..2s", "-1s"] {
            assert!(Span::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_longer_than_a_year() {
        assert_eq!(Span::parse("366d").unwrap(), Span::MAX);
        assert_eq!(Span::parse("365d23h59m59s999ms").unwrap().micros(), Span::MAX.micros() - 1_000);
        for text in ["366d1us", "367d", "213503982d", "99999999999999999999d", "9000h"] {
            let err = Span::parse(text).unwrap_err();
            assert_eq!(
                err,
                format!("`{text}` is longer than 366d, the longest span allowed (0s to 366d)")
            );
        }
    }
}
