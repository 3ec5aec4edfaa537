//! Integer unit newtypes. The unit is in the type; no floats anywhere in the core.
//!
//! Signs: [`MilliAmps`] is positive when current flows into the battery (charging) and negative
//! when it flows out (discharging).

use core::fmt;

macro_rules! unit {
    ($(#[$doc:meta])* $name:ident($raw:ty), $suffix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[cfg_attr(feature = "serde", derive(serde::Deserialize, serde::Serialize), serde(transparent))]
        pub struct $name(pub $raw);

        impl $name {
            /// The raw integer value in this type's unit.
            pub const fn get(self) -> $raw {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", self.0, $suffix)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} {}", self.0, $suffix)
            }
        }
    };
}

unit!(
    /// Voltage in millivolts.
    MilliVolts(i32), "mV"
);
unit!(
    /// Current in milliamps; positive = charging, negative = discharging.
    MilliAmps(i32), "mA"
);
unit!(
    /// Temperature in tenths of a degree Celsius (250 = 25.0 °C).
    DeciCelsius(i32), "dC"
);
unit!(
    /// Charge in milliamp-seconds (1 Ah = 3 600 000 mAs).
    MilliAmpSeconds(i64), "mAs"
);
unit!(
    /// A fraction in thousandths (1000 = 100 %).
    Permille(u16), "permille"
);

impl MilliAmps {
    /// The magnitude of the current, whatever its direction.
    pub const fn magnitude(self) -> i32 {
        self.0.saturating_abs()
    }
}

impl Permille {
    /// All of it.
    pub const FULL: Permille = Permille(1000);

    /// `value * self / 1000`, rounded toward zero, computed without overflow.
    pub const fn of(self, value: i32) -> i32 {
        // |value| <= 2^31 and self <= 65535, so the product fits comfortably in an i64, and the
        // quotient is no larger in magnitude than value * 65.535, clamped back into i32.
        let scaled = (value as i64) * (self.0 as i64) / 1000;
        if scaled > i32::MAX as i64 {
            i32::MAX
        } else if scaled < i32::MIN as i64 {
            i32::MIN
        } else {
            scaled as i32
        }
    }
}

/// The mean of two values, rounded towards zero, without overflow.
pub(crate) fn mean_i32(a: i32, b: i32) -> i32 {
    ((i64::from(a) + i64::from(b)) / 2) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permille_scales_without_overflow() {
        assert_eq!(Permille(500).of(200_000), 100_000);
        assert_eq!(Permille(1000).of(-7), -7);
        assert_eq!(Permille(65_535).of(i32::MAX), i32::MAX);
    }

    #[test]
    fn magnitude_of_the_most_negative_current_does_not_overflow() {
        assert_eq!(MilliAmps(i32::MIN).magnitude(), i32::MAX);
        assert_eq!(MilliAmps(-1500).magnitude(), 1500);
    }
}
