//! The specification: every scenario in `scenarios/` runs, passes its expectations, matches its
//! report snapshot, and gives a byte-identical report and trace when run a second time.
//!
//! Review changed snapshots with `cargo insta review` (or accept them with
//! `INSTA_UPDATE=always`); a changed snapshot is a changed behaviour, so say why in the commit.

use std::path::{Path, PathBuf};

use cellwarden_sim::engine;
use cellwarden_sim::report::Report;
use cellwarden_sim::report::csv::write_trace_csv;
use cellwarden_sim::scenario::{self, Scenario};

/// Loads a scenario and names it by its path from the repository root, as users see it, so
/// reports do not depend on where the checkout lives.
fn load(path: &Path) -> Scenario {
    let mut scenario = scenario::load(path).unwrap_or_else(|e| panic!("{e}"));
    let name = path.file_name().expect("a file").to_string_lossy();
    scenario.source = PathBuf::from("scenarios").join(name.as_ref());
    scenario
}

fn trace_csv(report: &Report) -> Vec<u8> {
    let mut bytes = Vec::new();
    write_trace_csv(report, &mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// Each scenario passes, matches its snapshot, and repeats exactly.
#[test]
fn spec() {
    insta::glob!("../../scenarios", "*.toml", |path| {
        let scenario = load(path);
        let first = engine::run(&scenario, &mut |_, _| {});
        let second = engine::run(&scenario, &mut |_, _| {});
        let text = first.render();
        assert_eq!(text, second.render(), "{}: the report differs between runs", path.display());
        assert!(
            trace_csv(&first) == trace_csv(&second),
            "{}: the trace differs between runs",
            path.display()
        );
        assert!(first.passed(), "{}:\n{text}", path.display());
        insta::assert_snapshot!(text);
    });
}

#[test]
fn there_are_enough_scenarios() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let count = std::fs::read_dir(dir)
        .expect("scenarios/ exists")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml")))
        .count();
    assert!(count >= 15, "only {count} scenarios");
}
