//! Open-circuit voltage over state of charge, per chemistry, at 25 °C.
//!
//! Each table holds [`OCV_POINTS`] voltages on a uniform grid every 2.5 % from 0 % to 100 %, in
//! units of 100 µV (0.1 mV, the resolution of the source data). Between grid points the curve is
//! interpolated linearly, which keeps it strictly increasing, so the inverse lookup is a function
//! too. Every function here is total: a SoC above 100 % reads as 100 %, a voltage beyond either
//! end of a table reads as that end.
//!
//! How the tables were derived: the rows of the shared data files lie on exactly this grid (41
//! rows, SoC 0.000, 0.025, ..., 1.000), so each entry is the file's voltage in volts times 10 000,
//! rounded to the nearest integer; no resampling is involved. The script that did it checked the
//! grid, the row count and that the result is strictly increasing, and is not kept in the tree:
//!
//! - NCA: `pan18650pf_c20_pseudo_ocv_25C.csv` (Panasonic NCR18650PF, C/20 pseudo-OCV, Kollmeyer,
//!   CC-BY-4.0), the `v_c20_discharge_V` column. The charge column is known to be suspect.
//! - LFP: `measured_pseudo_ocv_cylindrical.csv` (Sunil, Pattipati and Balasingam, MIT licence),
//!   the `LithiumWerks-APR18650M1B_LFP_V` column, a C/32 pseudo-OCV.
//!
//! A pseudo-OCV measured at a slow discharge sits a little below the true rested voltage on
//! discharge and carries no hysteresis information; on LFP the charge/discharge hysteresis is of
//! the same order as the whole plateau, which is why the estimator trusts that part of the table
//! so little (see [`Chemistry::ocv_slope_uv_per_pct`]).

pub use crate::ocv_chemistry::Chemistry;
use crate::units::MilliVolts;

/// Points in each OCV table: 0 % to 100 % every 2.5 %.
pub const OCV_POINTS: usize = 41;

/// SoC between two grid points, in ppm (2.5 %).
const STEP_PPM: u32 = 25_000;

/// One million parts per million.
const PPM_FULL: u32 = 1_000_000;

/// NCA pseudo-OCV, 100 µV units, 0 % to 100 % every 2.5 %: the C/20 discharge curve with the
/// cell's overpotential at C/20 added back (0.145 A × 61.2 mΩ = 8.9 mV), since a C/20
/// discharge sits that far below the open-circuit voltage. Without it every reading would be
/// about 1 % of SoC low.
const NCA_OCV_100UV: [u16; OCV_POINTS] = [
    25084, 31334, 32649, 33096, 33398, 33753, 34114, 34429, 34699, 34961, 35180, 35366, 35533,
    35681, 35823, 35963, 36105, 36246, 36395, 36562, 36743, 36955, 37207, 37509, 37785, 38029,
    38261, 38479, 38685, 38891, 39090, 39309, 39547, 39811, 40088, 40364, 40621, 40833, 41026,
    41290, 41792,
];

/// LFP pseudo-OCV, 100 µV units, 0 % to 100 % every 2.5 %.
const LFP_OCV_100UV: [u16; OCV_POINTS] = [
    20102, 29149, 30721, 31635, 32029, 32096, 32156, 32276, 32413, 32522, 32618, 32708, 32778,
    32834, 32883, 32922, 32948, 32963, 32974, 32982, 32991, 33001, 33010, 33020, 33032, 33047,
    33070, 33106, 33163, 33253, 33329, 33356, 33371, 33382, 33393, 33402, 33411, 33419, 33429,
    33457, 35981,
];

impl Chemistry {
    /// The table: [`OCV_POINTS`] voltages in units of 100 µV, 0 % to 100 % every 2.5 %.
    pub const fn ocv_table_100uv(self) -> &'static [u16; OCV_POINTS] {
        match self {
            Chemistry::Nca => &NCA_OCV_100UV,
            Chemistry::Lfp => &LFP_OCV_100UV,
        }
    }

    /// Open-circuit voltage in µV at `soc_ppm` (clamped to 100 %), interpolated linearly.
    pub fn ocv_uv(self, soc_ppm: u32) -> i32 {
        let (i, frac) = segment(soc_ppm);
        let t = self.ocv_table_100uv();
        let lo = uv(t[i]);
        let hi = uv(t[i + 1]);
        // |hi - lo| < 2^23 µV and frac < 2^15, so the product fits an i64 with room to spare.
        lo + ((i64::from(hi - lo) * i64::from(frac)) / i64::from(STEP_PPM)) as i32
    }

    /// Open-circuit voltage at `soc_ppm`, rounded to the nearest millivolt.
    pub fn ocv_mv(self, soc_ppm: u32) -> MilliVolts {
        MilliVolts((self.ocv_uv(soc_ppm) + 500) / 1000)
    }

    /// The SoC in ppm whose OCV is `ocv_uv`: 0 at or below the bottom of the table, 1 000 000 at
    /// or above the top.
    pub fn soc_ppm_from_ocv_uv(self, ocv_uv: i32) -> u32 {
        let t = self.ocv_table_100uv();
        if ocv_uv <= uv(t[0]) {
            return 0;
        }
        if ocv_uv >= uv(t[OCV_POINTS - 1]) {
            return PPM_FULL;
        }
        // The first point above the voltage; it exists and is not the first point (checked just
        // above), and the table is strictly increasing, so lo < hi.
        let above = t.iter().position(|&p| uv(p) > ocv_uv).unwrap_or(OCV_POINTS - 1).max(1);
        let lo = uv(t[above - 1]);
        let hi = uv(t[above]);
        let frac = i64::from(ocv_uv - lo) * i64::from(STEP_PPM) / i64::from(hi - lo);
        (above as u32 - 1) * STEP_PPM + frac as u32
    }

    /// The lowest and highest voltage of the table, in mV (rounded inwards).
    pub fn ocv_range_mv(self) -> (i64, i64) {
        let t = self.ocv_table_100uv();
        ((i64::from(t[0]) + 9) / 10, i64::from(t[OCV_POINTS - 1]) / 10)
    }

    /// The SoC whose OCV is `ocv`, in permille, rounded down.
    pub fn soc_from_ocv(self, ocv: MilliVolts) -> crate::units::Permille {
        let ocv_uv = ocv.0.saturating_mul(1000);
        crate::units::Permille((self.soc_ppm_from_ocv_uv(ocv_uv) / 1000) as u16)
    }

    /// The slope of the OCV curve at `soc_ppm`, in µV per % SoC: the slope of the table segment
    /// that holds the SoC (at a grid point, the segment above it; at 100 %, the last one). It is
    /// the exact derivative of [`Chemistry::ocv_uv`], which the filter relies on, and it tells how
    /// much a millivolt says about SoC: NCA 8–11 mV/% over most of its range, LFP 0.4–1.7 mV/% on
    /// its plateau and about 100 mV/% at the top knee.
    pub fn ocv_slope_uv_per_pct(self, soc_ppm: u32) -> u32 {
        // One segment is 2.5 %, so µV per % is the segment's rise × 2 / 5.
        (self.ocv_slope_uv_per_full(soc_ppm) / 100) as u32
    }

    /// The same slope in µV per 100 % SoC (the segment's rise × 40), exact.
    pub(crate) fn ocv_slope_uv_per_full(self, soc_ppm: u32) -> i64 {
        let (i, _) = segment(soc_ppm);
        let t = self.ocv_table_100uv();
        i64::from(uv(t[i + 1]) - uv(t[i])) * (OCV_POINTS as i64 - 1)
    }
}

/// The segment index `i` (between points `i` and `i + 1`) and the offset into it in ppm.
fn segment(soc_ppm: u32) -> (usize, u32) {
    let soc = soc_ppm.min(PPM_FULL);
    let i = ((soc / STEP_PPM) as usize).min(OCV_POINTS - 2);
    (i, soc - i as u32 * STEP_PPM)
}

/// A table entry in µV.
fn uv(entry_100uv: u16) -> i32 {
    i32::from(entry_100uv) * 100
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEMISTRIES: [Chemistry; 2] = [Chemistry::Nca, Chemistry::Lfp];

    #[test]
    fn tables_are_strictly_increasing() {
        for chem in CHEMISTRIES {
            let t = chem.ocv_table_100uv();
            assert!(t.windows(2).all(|w| w[1] > w[0]), "{chem:?}");
        }
    }

    #[test]
    fn known_points_from_the_data_files_within_one_millivolt() {
        // Rows copied from the CSV files (SoC, volts as millivolts x 10); the NCA table adds
        // the 8.9 mV overpotential of the C/20 discharge back.
        let nca = [(0, 24995), (100_000, 33309), (500_000, 36654), (800_000, 39458)];
        let nca_end = [(1_000_000, 41703)];
        let lfp = [(0, 20102), (500_000, 32991), (700_000, 33163), (975_000, 33457)];
        let lfp_end = [(1_000_000, 35981)];
        for (chem, rows) in [
            (Chemistry::Nca, &nca[..]),
            (Chemistry::Nca, &nca_end[..]),
            (Chemistry::Lfp, &lfp[..]),
            (Chemistry::Lfp, &lfp_end[..]),
        ] {
            for &(soc_ppm, csv_100uv) in rows {
                let got = chem.ocv_uv(soc_ppm);
                let overpotential = if chem == Chemistry::Nca { 8_900 } else { 0 };
                let want = csv_100uv * 100 + overpotential;
                assert!((got - want).abs() <= 1000, "{chem:?} at {soc_ppm} ppm: {got} vs {want}");
            }
        }
        assert_eq!(Chemistry::Nca.ocv_mv(500_000), MilliVolts(3674));
    }

    #[test]
    fn interpolation_is_monotone_and_inverse_round_trips() {
        for chem in CHEMISTRIES {
            let mut last = i32::MIN;
            for soc in (0..=1_000_000).step_by(1_250) {
                let v = chem.ocv_uv(soc);
                assert!(v >= last, "{chem:?} not monotone at {soc}");
                last = v;
                let back = chem.soc_ppm_from_ocv_uv(v);
                // Truncation in both directions costs at most a few ppm on the steep parts and
                // a few hundred on the flattest LFP segment (2.5 % over 0.8 mV).
                assert!(back.abs_diff(soc) <= 400, "{chem:?}: {soc} -> {v} uV -> {back}");
            }
        }
    }

    #[test]
    fn lookups_are_total() {
        for chem in CHEMISTRIES {
            assert_eq!(chem.ocv_uv(u32::MAX), chem.ocv_uv(1_000_000));
            assert_eq!(chem.soc_ppm_from_ocv_uv(i32::MIN), 0);
            assert_eq!(chem.soc_ppm_from_ocv_uv(i32::MAX), 1_000_000);
            assert_eq!(chem.soc_from_ocv(MilliVolts(i32::MAX)).0, 1000);
            assert_eq!(chem.soc_from_ocv(MilliVolts(i32::MIN)).0, 0);
            let _ = chem.ocv_slope_uv_per_pct(u32::MAX);
        }
    }

    #[test]
    fn slopes_match_the_battery_figures() {
        // NCA: 8-11 mV/% over 20-95 % (a few segments of the C/20 curve reach 12 mV/%).
        for soc in (200_000..950_000).step_by(25_000) {
            let s = Chemistry::Nca.ocv_slope_uv_per_pct(soc);
            assert!((5_000..=12_500).contains(&s), "NCA at {soc}: {s} uV/%");
        }
        // LFP: under 2 mV/% on the plateau (40-95 %, the 72.5 % bump aside), ~100 mV/% at the top.
        for soc in (400_000..950_000).step_by(25_000) {
            let s = Chemistry::Lfp.ocv_slope_uv_per_pct(soc);
            assert!(s <= 3_700, "LFP at {soc}: {s} uV/%");
        }
        assert!(Chemistry::Lfp.ocv_slope_uv_per_pct(990_000) > 90_000);
        assert_eq!(Chemistry::Lfp.ocv_slope_uv_per_pct(500_000), 400);
    }
}
