//! What both arrangements of the engine record the same way: fault counts, extremes, the report
//! of a refused configuration, and the SoC snapshot a scenario may start from.

use cellwarden_core::soc::{SocConfig, SocSnapshot};
use cellwarden_core::{Duration, Permille, Tier};

use crate::report::{Extreme, FaultCount, LogEntry, Outcome, Report, Summary, TraceRow};
use crate::scenario::Scenario;

/// A persisted SoC snapshot that claims `soc` (a fraction) with 95 % confidence (a standard
/// deviation of 0.5 %) and knows nothing else: the hard case of a wrong start, since the filter
/// must first notice that it is wrong.
pub(crate) fn confident_snapshot(soc: f64, config: &SocConfig) -> SocSnapshot {
    SocSnapshot {
        soc_ppm: (soc * 1e6).round().clamp(0.0, 1e6) as u32,
        confidence: Permille(950),
        rc_uv: 0,
        offset_ua: 0,
        capacity_mah: config.capacity_mah,
        capacity_confidence: Permille(0),
        capacity_samples: 0,
        resistance_uohm: config.model.r0_uohm,
        resistance_samples: 0,
        last_anchor: None,
        capacity_reference: None,
    }
}

/// The report of a run of `scenario` over `duration`: its identity and what the run recorded.
/// Both arrangements and the refused configuration end here.
pub(crate) fn report(
    scenario: &Scenario,
    duration: Duration,
    log: Vec<LogEntry>,
    outcomes: Vec<Outcome>,
    summary: Summary,
    trace: Vec<TraceRow>,
) -> Report {
    Report {
        name: scenario.name.clone(),
        source: scenario.source.display().to_string(),
        description: scenario.description.clone(),
        seed: scenario.seed,
        duration,
        log,
        outcomes,
        summary,
        trace,
    }
}

/// A report for a scenario whose configuration the core refused.
pub(crate) fn refused_report(scenario: &Scenario, why: &str) -> Report {
    let refused = Outcome {
        label: "the core accepts the configuration".into(),
        line: 1,
        passed: false,
        detail: format!("Bms::new refused it: {why}"),
    };
    report(scenario, Duration::ZERO, Vec::new(), vec![refused], Summary::default(), Vec::new())
}

/// Counts one raise of a rule's tier in the summary.
pub(crate) fn count_fault(
    faults: &mut Vec<FaultCount>,
    rule: cellwarden_core::RuleId,
    tier: Tier,
    at: Duration,
) {
    match faults.iter_mut().find(|f| f.rule == rule && f.tier == tier) {
        Some(f) => f.raised += 1,
        None => faults.push(FaultCount { rule, tier, raised: 1, first_at: at }),
    }
}

pub(crate) fn track(
    extreme: &mut Extreme,
    first: bool,
    value: f64,
    at: Duration,
    index: usize,
    better: impl Fn(f64, f64) -> bool,
) {
    if first || better(value, extreme.value) {
        *extreme = Extreme { value, at, index };
    }
}

/// Minimum, mean, maximum and the indices of the extremes; zeros for an empty slice.
pub(crate) fn min_mean_max(values: &[f64]) -> (f64, f64, f64, usize, usize) {
    let Some(&first) = values.first() else { return (0.0, 0.0, 0.0, 0, 0) };
    let (mut lo, mut hi, mut sum, mut i_lo, mut i_hi) = (first, first, 0.0, 0, 0);
    for (i, &v) in values.iter().enumerate() {
        sum += v;
        if v < lo {
            lo = v;
            i_lo = i;
        }
        if v > hi {
            hi = v;
            i_hi = i;
        }
    }
    (lo, sum / values.len() as f64, hi, i_lo, i_hi)
}
