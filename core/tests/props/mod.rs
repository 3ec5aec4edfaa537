//! Proptest settings and pack presets shared by the property tests (`properties_*.rs`).

#![allow(dead_code)]

pub mod settings;

use cellwarden_core::{Config, FeedbackConfig};
use proptest::prelude::ProptestConfig;

/// Proptest settings shared by every property; `source_file` is the calling test file
/// (`file!()`), next to which proptest persists failing cases.
pub fn proptest_config(cases: u32, source_file: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        source_file: Some(source_file),
        max_shrink_iters: 4_096,
        ..ProptestConfig::default()
    }
}

/// Two Tesla Model S modules: 12 cells, 4 temperature sensors, no contactor feedback.
pub fn tesla() -> Config {
    Config::tesla_model_s(2)
}

/// The same pack with feedback on all three contactors.
pub fn tesla_with_feedback() -> Config {
    let mut config = tesla();
    config.contactors.feedback = FeedbackConfig { negative: true, precharge: true, positive: true };
    config
}
