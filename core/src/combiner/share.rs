//! The arithmetic of parallel packs: how much current the whole bank may take when each pack
//! takes its own share of it.

use crate::units::Permille;

/// One pack's part in a limit: its own limit (magnitude, mA) and the part of the bank's current
/// it carries in that direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Part {
    /// The pack's own limit, mA (negative values count as zero).
    pub limit_ma: i32,
    /// The part of the bank's current this pack carries.
    pub share: Permille,
}

/// The largest bank current that keeps every pack inside its own limit, and the index of the
/// pack that binds it (`None` when the sum of the limits binds).
///
/// With bank current `I`, pack `i` carries `I × share_i / 1000`, so `I` may be at most
/// `limit_i × 1000 / share_i` for every pack with a share. The result is rounded down, so
/// `result × share_i / 1000 <= limit_i` holds exactly. It never exceeds the sum of the limits
/// (the shares could add to less than 1000 through rounding). A pack with no share constrains
/// nothing; a bank with no pack may take nothing.
pub fn bank_limit(parts: &[Part]) -> (i32, Option<usize>) {
    let sum: i64 = parts.iter().map(|p| i64::from(p.limit_ma.max(0))).sum();
    let mut best = sum;
    let mut binding = None;
    for (i, p) in parts.iter().enumerate() {
        if p.share.0 == 0 {
            continue;
        }
        let limit = i64::from(p.limit_ma.max(0));
        let share = i64::from(p.share.0);
        // floor(limit × 1000 / share) satisfies floor(x × share / 1000) <= limit.
        let allowed = limit * 1000 / share;
        if allowed < best {
            best = allowed;
            binding = Some(i);
        }
    }
    if parts.is_empty() {
        return (0, None);
    }
    (i32::try_from(best).unwrap_or(i32::MAX), binding)
}

/// The largest bank current that keeps this one part inside its limit (rounded down, at
/// least zero), or `None` when it has no share and so constrains nothing.
pub fn allows(part: Part) -> Option<i32> {
    if part.share.0 == 0 {
        return None;
    }
    let allowed = i64::from(part.limit_ma.max(0)) * 1000 / i64::from(part.share.0);
    Some(i32::try_from(allowed).unwrap_or(i32::MAX))
}

/// Each value's part of the total, in thousandths, rounded down; all zero when the total is not
/// positive. Negative values count as zero.
pub fn shares_of(values: &[i64], out: &mut [Permille]) {
    let total: i64 = values.iter().map(|v| (*v).max(0)).sum();
    for (o, v) in out.iter_mut().zip(values) {
        *o = if total > 0 {
            // 0 <= v <= total, so the quotient is 0..=1000.
            Permille((v.max(&0) * 1000 / total) as u16)
        } else {
            Permille(0)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(limit_ma: i32, share: u16) -> Part {
        Part { limit_ma, share: Permille(share) }
    }

    #[test]
    fn equal_shares_allow_the_sum() {
        let parts = [part(100_000, 333), part(100_000, 333), part(100_000, 334)];
        let (limit, binding) = bank_limit(&parts);
        // 100 A / 0.334 = 299.4 A for the third pack; the sum would be 300 A.
        assert_eq!(limit, 299_401);
        assert_eq!(binding, Some(2));
    }

    #[test]
    fn a_pack_that_takes_more_than_its_part_binds_the_bank() {
        // A small pack at 50 A carrying 60 % of the current: the bank may take 83.3 A, not 150 A.
        let parts = [part(50_000, 600), part(100_000, 400)];
        assert_eq!(bank_limit(&parts), (83_333, Some(0)));
    }

    #[test]
    fn a_pack_at_zero_stops_the_bank_when_it_carries_current() {
        assert_eq!(bank_limit(&[part(0, 200), part(100_000, 800)]), (0, Some(0)));
        assert_eq!(bank_limit(&[part(0, 0), part(100_000, 1000)]).0, 100_000);
        assert_eq!(bank_limit(&[]), (0, None));
    }

    #[test]
    fn one_part_allows_its_limit_over_its_share_and_a_spent_limit_allows_nothing() {
        // A pack at 10 A taking 54 % of any change: the bank may move by 18.5 A.
        assert_eq!(allows(part(10_000, 540)), Some(18_518));
        assert_eq!(allows(part(-4_000, 540)), Some(0));
        assert_eq!(allows(part(10_000, 0)), None);
        assert_eq!(allows(part(i32::MAX, 1)), Some(i32::MAX));
    }

    #[test]
    fn shares_round_down_and_ignore_negative_currents() {
        let mut out = [Permille(0); 3];
        shares_of(&[10, 20, -5], &mut out);
        assert_eq!(out, [Permille(333), Permille(666), Permille(0)]);
        shares_of(&[0, -1, 0], &mut out);
        assert_eq!(out, [Permille(0); 3]);
    }
}
